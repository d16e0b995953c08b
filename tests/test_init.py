"""`init` on real export shapes: the campaign file it writes is read by `check` with the
mapping detection gave, written out where a person sees it; it never overwrites a file and
never holds a key."""

from __future__ import annotations

import codecs
import json
import tomllib
from pathlib import Path

import pytest

from campaign_dialer.cli import main
from campaign_dialer.config import load_campaign
from campaign_dialer.config_checks import AGENT_PLACEHOLDER

from .e2e_support import KEY, MIDDAY

CONSENT = ("phone,event,event_at,source\n"
           "+12125550123,grant,2026-01-01T00:00:00Z,web form\n"
           "+14155550188,grant,2026-01-01T00:00:00Z,web form\n")

# name -> (bytes of the export, expected [inputs.columns], rows the plan holds)
EXPORTS: dict[str, tuple[bytes, dict[str, object], int]] = {
    "hubspot": (
        codecs.BOM_UTF8 + (
            "Record ID,First Name,Last Name,Phone Number,Mobile Phone Number,Email,"
            "Country/Region,State/Region,Postal Code,Lead Status\n"
            "101,Ana,Lee,+1 (212) 555-0123,,a@x.com,United States,NY,10001,NEW\n"
            "102,José,Núñez,,(415) 555-0188,j@x.com,United States,CA,94105,OPEN\n"
            "103,Li,Wu,212.555.0124 ext. 4,,l@x.com,United States,New York,10002,\n"
        ).replace("\n", "\r\n").encode("utf-8"),
        {"phone": ["Phone Number", "Mobile Phone Number"], "contact_id": "Record ID",
         "state": "State/Region"},
        3,
    ),
    "salesforce": (
        ('"Contact ID","First Name","Phone","Mobile","MailingState","Do Not Call",'
         '"Email Opt Out"\n'
         '"0035e00000AbCdE","Renée","(212) 555-0123","","NY","0","1"\n'
         '"0035e00000AbCdF","François","","+1 415 555 0188","CA","1","0"\n'
         '"0035e00000AbCdG","Zoë","212-555-0125","","ny","false","0"\n'
         "\n"
         '"Grand Totals (3 records)"\n'
         '"Contacts report"\n'
         '"Copyright (c) 2000-2026 salesforce.com, inc. All rights reserved."\n'
         '"Confidential Information - Do Not Distribute"\n'
         ).replace("\n", "\r\n").encode("cp1252"),
        {"phone": ["Phone", "Mobile"], "contact_id": "Contact ID", "state": "MailingState"},
        3,
    ),
    "excel_cp1252": (
        ("Name,Phone,Région,Notes\n"
         "Zoë,12125550123.0,NY,café\n"
         "Bo,4155550188.0,CA,\n"
         "Å,,NY,\n").replace("\n", "\r\n").encode("cp1252"),
        {"phone": "Phone", "state": "Région"},
        3,
    ),
}


@pytest.fixture
def shell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CAMPAIGN_DIALER_TEST_CLOCK", MIDDAY)
    monkeypatch.setenv("VANTAX_API_KEY", KEY)
    return tmp_path


@pytest.mark.parametrize("name", sorted(EXPORTS))
def test_init_writes_a_campaign_check_accepts_with_the_detected_mapping_and_never_overwrites(
    shell: Path, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    data, mapping, rows = EXPORTS[name]
    exports = shell / "exports"
    exports.mkdir()
    (exports / f"{name}.csv").write_bytes(data)
    (exports / "consent.csv").write_text(CONSENT)
    (exports / "dnc.csv").write_text("phone\n+12125550125\n")
    out = shell / "campaigns" / "spring.toml"
    argv = ["init", f"exports/{name}.csv", "--dnc", "exports/dnc.csv", "--consent",
            "exports/consent.csv", "--agent", "agt_3d9b21", "--out", str(out),
            "--name", "spring-1"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "Plan for spring-1" in printed and "Columns understood" in printed
    text = out.read_text(encoding="utf-8")
    written = tomllib.loads(text)
    assert written["inputs"]["columns"] == mapping
    assert written["campaign"] == {"name": "spring-1", "agent_id": "agt_3d9b21",
                                   "default_region": "US"}
    # relative to the file's folder, and resolved from there
    assert written["inputs"]["contacts"] == f"../exports/{name}.csv"
    campaign = load_campaign(out)
    assert campaign.contacts_path.resolve() == (exports / f"{name}.csv").resolve()
    assert [p.resolve() for p in campaign.dnc_paths] == [(exports / "dnc.csv").resolve()]
    assert campaign.model.compliance.require_consent is True
    assert KEY not in text and "vx_" not in text

    assert main(["check", str(out), "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["rows"] == rows
    detected = plan["columns"]
    want_phones = mapping["phone"] if isinstance(mapping["phone"], list) else [mapping["phone"]]
    assert detected["phone"] == want_phones
    for role in ("contact_id", "state"):
        assert detected.get(role) == mapping.get(role)
    assert not any("placeholder" in w for w in plan["warnings"])

    before = out.read_bytes()
    assert main(argv) == 64
    assert "already exists" in capsys.readouterr().err
    assert out.read_bytes() == before


def test_the_salesforce_checkbox_is_read_from_the_header_and_holds_the_row_back(
    shell: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (shell / "sf.csv").write_bytes(EXPORTS["salesforce"][0])
    (shell / "consent.csv").write_text(CONSENT)
    assert main(["init", "sf.csv", "--consent", "consent.csv", "--agent", "agt_1"]) == 0
    text = (shell / "campaign.toml").read_text(encoding="utf-8")
    assert '# also read from the header (no key: always detected): Do-Not-Call checkbox ' \
           '"Do Not Call"' in text
    capsys.readouterr()
    assert main(["check", "campaign.toml", "--json"]) == 0
    reasons = {r["reason"] for r in json.loads(capsys.readouterr().out)["by_reason"]}
    assert "dnc_flag" in reasons


def test_without_an_agent_the_placeholder_is_named_by_check_and_refused_by_run(
    shell: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (shell / "c.csv").write_bytes(EXPORTS["hubspot"][0])
    (shell / "consent.csv").write_text(CONSENT)
    assert main(["init", "c.csv", "--consent", "consent.csv"]) == 0
    out = capsys.readouterr().out
    assert AGENT_PLACEHOLDER in out and "set campaign.agent_id" in out
    assert tomllib.loads((shell / "campaign.toml").read_text())["campaign"]["name"] == "c"
    assert main(["run", "campaign.toml", "--base-url", "http://127.0.0.1:9"]) == 78
    err = capsys.readouterr().err
    assert "campaign.agent_id" in err and "placeholder" in err


def test_without_a_consent_ledger_the_file_is_written_and_check_says_what_is_missing(
    shell: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No consent, no call: init never turns consent off to make the plan pass."""
    (shell / "c.csv").write_bytes(EXPORTS["hubspot"][0])
    assert main(["init", "c.csv", "--agent", "agt_1"]) == 78
    err = capsys.readouterr().err
    assert "inputs.consent" in err
    written = tomllib.loads((shell / "campaign.toml").read_text())
    assert written["compliance"]["require_consent"] is True
    assert "consent" not in written["inputs"]


@pytest.mark.parametrize("argv", [
    ["init", "missing.csv"],
    ["init", "c.csv", "--dnc", "missing-dnc.csv"],
    ["init", "c.csv", "--agent", KEY],
    ["init", "c.csv", "--name", "not a name!"],
])
def test_bad_arguments_exit_64_and_write_nothing(
    shell: Path, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    (shell / "c.csv").write_bytes(EXPORTS["hubspot"][0])
    assert main(argv) == 64
    assert not (shell / "campaign.toml").exists()
    assert KEY not in capsys.readouterr().err


def test_headers_with_quotes_and_backslashes_are_written_as_valid_toml(
    shell: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (shell / "c.csv").write_text('"Tel ""main"" \\ 1",Name\n+1 212 555 0123,A\n')
    (shell / "consent.csv").write_text(CONSENT)
    # a header no alias knows: named by hand, so detection fails and nothing is written
    assert main(["init", "c.csv", "--consent", "consent.csv", "--agent", "agt_1"]) == 65
    assert not (shell / "campaign.toml").exists()
    (shell / "d.csv").write_text('Phone,"Notes ""x"" \\ y",Time Zone\n+1 212 555 0123,a,EST\n')
    assert main(["init", "d.csv", "--consent", "consent.csv", "--agent", "agt_1"]) == 0
    written = tomllib.loads((shell / "campaign.toml").read_text())
    assert written["inputs"]["columns"] == {"phone": "Phone", "timezone": "Time Zone"}
    assert '"Notes \\"x\\" \\\\ y"' in (shell / "campaign.toml").read_text()


def test_a_phone_column_with_no_number_is_left_out_and_said(
    shell: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Named explicitly, a phone column none of whose cells is a number is refused (the wrong
    column?); detection reads nothing from it, so init leaves it out and says so."""
    (shell / "c.csv").write_text("Phone Number,Mobile Phone Number\n"
                                 "+1 212 555 0123,ask Bob\n+1 415 555 0188,\n")
    (shell / "consent.csv").write_text(CONSENT)
    assert main(["init", "c.csv", "--consent", "consent.csv", "--agent", "agt_1"]) == 0
    text = (shell / "campaign.toml").read_text()
    assert tomllib.loads(text)["inputs"]["columns"] == {"phone": "Phone Number"}
    assert '# "Mobile Phone Number" is not listed: none of its cells is a phone number' in text
