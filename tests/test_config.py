"""The campaign file is a public interface: every bad file is refused, naming file and key."""

from __future__ import annotations

import textwrap
from datetime import time
from pathlib import Path

import pytest

from campaign_dialer.cli import main
from campaign_dialer.config import ConfigError, load_campaign

GOOD = """
[campaign]
name = "spring-renewals"
agent_id = "agt_3d9b21"
from_phone_number_id = "pn_55ad12"
default_region = "US"

[api]
base_url = "https://api.vantaxai.com"
api_key_env = "VANTAX_API_KEY"
requests_per_second = 10
max_live_calls = 20
request_timeout_s = 10
poll_interval_s = 2

[pacing]
calls_per_second = 2

[inputs]
contacts = "contacts.csv"
dnc = ["dnc.csv"]
consent = "consent.csv"

[compliance]
calling_window = ["09:00", "20:00"]
require_consent = true

[output]
dir = "out"
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "contacts.csv").write_text("phone\n+14155550188\n")
    (tmp_path / "dnc.csv").write_text("phone\n")
    (tmp_path / "consent.csv").write_text("phone,event,event_at\n")
    return tmp_path


def write(folder: Path, text: str) -> Path:
    p = folder / "campaign.toml"
    p.write_text(textwrap.dedent(text))
    return p


def test_good_file_loads_with_paths_resolved_against_its_folder(folder: Path) -> None:
    c = load_campaign(write(folder, GOOD))
    assert c.name == "spring-renewals"
    assert c.contacts_path == folder / "contacts.csv"
    assert c.dnc_paths == [folder / "dnc.csv"]
    assert c.output_dir == folder / "out"
    assert c.model.compliance.calling_window == (time(9), time(20))
    assert c.model.pacing.calls_per_second == 2
    assert c.model.redial.max_attempts == 1  # one call per person unless a policy says more


@pytest.mark.parametrize(
    ("old", "new", "key", "words"),
    [
        ("default_region = \"US\"", "default_region = \"US\"\ncolour = 1", "campaign.colour",
         "unknown key"),
        ("requests_per_second = 10", "requests_per_second = \"fast\"", "api.requests_per_second",
         "number"),
        ("max_live_calls = 20", "max_live_calls = 0", "api.max_live_calls", "greater than"),
        ("calls_per_second = 2", "calls_per_second = -1", "pacing.calls_per_second",
         "greater than"),
        ("name = \"spring-renewals\"\n", "", "campaign.name", "required"),
        ("[\"09:00\", \"20:00\"]", "[\"20:00\", \"09:00\"]", "compliance.calling_window",
         "start before"),
        ("[\"09:00\", \"20:00\"]", "[\"9am\", \"20:00\"]", "compliance.calling_window", "HH:MM"),
        ("contacts = \"contacts.csv\"", "contacts = \"missing.csv\"", "inputs.contacts",
         "does not exist"),
        ("dnc = [\"dnc.csv\"]", "dnc = [\"dnc.csv\", \"nope.csv\"]", "inputs.dnc[1]",
         "does not exist"),
        ("https://api.vantaxai.com", "http://api.vantaxai.com", "api.base_url", "loopback"),
        ("calls_per_second = 2", "calls_per_second = 20", "", "exceeds api.requests_per_second"),
        ("default_region = \"US\"", "default_region = \"XX\"", "campaign.default_region",
         "region"),
    ],
)
def test_bad_files_name_file_and_key(
    folder: Path, old: str, new: str, key: str, words: str
) -> None:
    assert old in GOOD
    p = write(folder, GOOD.replace(old, new, 1))
    with pytest.raises(ConfigError) as ei:
        load_campaign(p)
    msg = str(ei.value)
    assert str(p) in msg
    assert key in msg
    assert words in msg
    assert ei.value.exit_code == 78


@pytest.mark.parametrize(
    "text",
    [
        GOOD.replace('api_key_env = "VANTAX_API_KEY"', 'api_key = "vx_live_3fa9c2abcdef"'),
        GOOD.replace('api_key_env = "VANTAX_API_KEY"', 'api_key_env = "vx_live_3fa9c2abcdef"'),
        GOOD.replace('agent_id = "agt_3d9b21"', 'agent_id = "agt_3d9b21"\n# ok\n')
        + '\n[extra]\nnote = "Bearer vx_test_0123456789abcdef"\n',
    ],
)
def test_an_api_key_in_the_file_is_rejected_and_never_echoed(folder: Path, text: str) -> None:
    p = write(folder, text)
    with pytest.raises(ConfigError) as ei:
        load_campaign(p)
    msg = str(ei.value)
    assert "API key" in msg or "environment" in msg
    assert "3fa9c2abcdef" not in msg and "0123456789abcdef" not in msg


def test_invalid_toml_names_the_file(folder: Path) -> None:
    p = write(folder, GOOD + "\n[api\n")
    with pytest.raises(ConfigError, match="not valid TOML") as ei:
        load_campaign(p)
    assert str(p) in str(ei.value)


def test_consent_required_without_ledger_is_rejected(folder: Path) -> None:
    p = write(folder, GOOD.replace('consent = "consent.csv"\n', ""))
    with pytest.raises(ConfigError, match="inputs.consent"):
        load_campaign(p)


@pytest.mark.parametrize("command", ["check", "run", "status"])
def test_cli_exits_78_before_anything_runs(
    folder: Path, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    p = write(folder, GOOD.replace("[output]", "[output]\nformat = \"xlsx\""))
    assert main([command, str(p)]) == 78
    err = capsys.readouterr().err
    assert "output.format" in err and str(p) in err
    assert not (folder / "out").exists()


def test_cli_usage_error_is_64(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as ei:
        main(["run"])
    assert ei.value.code == 64
    with pytest.raises(SystemExit) as ei:
        main(["frobnicate"])
    assert ei.value.code == 64


def test_missing_key_env_is_a_config_error(
    folder: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("VANTAX_API_KEY", raising=False)
    p = write(folder, GOOD)
    assert main(["run", str(p)]) == 78
    assert "VANTAX_API_KEY" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        # where config.py and client.py used to disagree
        ("127.0.0.1.example.com", False),  # a name that may resolve anywhere (client said yes)
        ("127.evil.test", False),
        ("0:0:0:0:0:0:0:1", True),  # ::1 written out (client said no)
        ("127.8.9.10", True),  # all of 127/8 (client said yes, by prefix)
        ("LOCALHOST", True),
        ("[::1]", True),
        ("::ffff:127.0.0.1", True),
        # agreed on
        ("localhost", True),
        ("127.0.0.1", True),
        ("::1", True),
        ("localhost.example.com", False),
        ("10.0.0.1", False),
        ("api.vantaxai.com", False),
        ("", False),
    ],
)
def test_one_loopback_answer_for_config_client_and_clock(host: str, loopback: bool) -> None:
    """Plain http, the simulated clock and the client's proxy bypass ask the same function."""
    from campaign_dialer.client import is_loopback_url
    from campaign_dialer.config import is_loopback_host

    assert is_loopback_host(host) is loopback
    if host:
        url_host = f"[{host}]" if ":" in host and not host.startswith("[") else host
        assert is_loopback_url(f"http://{url_host}:8080/v1") is loopback


def test_the_one_campaign_file_writer_round_trips_and_loads(tmp_path: Path) -> None:
    """tests/campaign_files.py writes what TOML reads back, and the dialer accepts it."""
    import tomllib

    from .campaign_files import campaign_toml, merged, parse_snippet, write_campaign_toml
    from .e2e_support import e2e_sections

    sections = merged(
        e2e_sections("round-trip"),
        parse_snippet("max_live_calls = 3\npoll_interval_s = 0.01", "api"),
        parse_snippet('[inputs.columns]\nphone = ["Mobile", "Work"]\n[history]\npath = "h.sqlite"'),
        {"pacing": {"calls_per_second": float("inf")}, "campaign": {"name": 'q"uote'}},
    )
    text = campaign_toml(sections)
    assert tomllib.loads(text) == sections
    assert 'default_region = "US"' in text.splitlines()  # tests still edit lines by text
    for name in ("contacts.csv", "dnc.csv", "consent.csv"):
        (tmp_path / name).write_text("phone\n")
    sections["campaign"]["name"] = "round-trip"
    sections["pacing"]["calls_per_second"] = 2
    campaign = load_campaign(write_campaign_toml(tmp_path / "campaign.toml", sections))
    assert campaign.name == "round-trip" and campaign.model.api.max_live_calls == 3


def test_a_path_written_relative_to_the_shell_not_the_file_is_named_with_the_rule(
    folder: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`contacts = "spring/contacts.csv"` in spring/campaign.toml, typed from the parent
    folder: the message says relative paths are read from the file's folder, and that the
    file the person meant exists from where they stand."""
    camp = folder / "spring"
    camp.mkdir()
    for name in ("contacts.csv", "dnc.csv", "consent.csv"):
        (camp / name).write_bytes((folder / name).read_bytes())
    p = write(camp, GOOD.replace('contacts = "contacts.csv"',
                                 'contacts = "spring/contacts.csv"'))
    monkeypatch.chdir(folder)
    assert main(["check", "spring/campaign.toml"]) == 78
    err = capsys.readouterr().err
    assert "inputs.contacts" in err and str(camp / "spring" / "contacts.csv") in err
    assert f"a relative path is read from the campaign file's folder {camp}" in err
    assert "spring/contacts.csv exists from the current folder" in err
    monkeypatch.chdir(camp)  # from the file's own folder the hint would be wrong: not given
    with pytest.raises(ConfigError) as ei:
        load_campaign(p)
    assert "exists from the current folder" not in str(ei.value)


def test_an_empty_key_variable_is_called_empty_not_unset(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    c = load_campaign(write(folder, GOOD))
    monkeypatch.setenv("VANTAX_API_KEY", "  ")
    with pytest.raises(ConfigError, match="VANTAX_API_KEY is empty"):
        c.api_key()
    monkeypatch.delenv("VANTAX_API_KEY")
    with pytest.raises(ConfigError, match="VANTAX_API_KEY is not set"):
        c.api_key()
