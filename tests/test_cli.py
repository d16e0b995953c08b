"""What a new user meets first: --help, the demo, the sandbox command, exit codes, errors."""

from __future__ import annotations

import argparse
import os
import pty
import re
import select
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pandas as pd
import pytest

import campaign_dialer
from campaign_dialer import commands, report
from campaign_dialer.cli import build_parser, main
from campaign_dialer.config import ConfigError, load_campaign
from campaign_dialer.engine import Stats
from campaign_dialer.exitcodes import ExitCode
from campaign_dialer.sandbox import SandboxConfig, SandboxServer
from campaign_dialer.store import Journal

from .e2e_support import KEY, cli_env, numbers, run_cli, write_campaign

REFERENCE = Path(__file__).resolve().parents[1] / "docs" / "reference"


def subcommands() -> dict[str, argparse.ArgumentParser]:
    action = build_parser()._subparsers._group_actions[0]  # type: ignore[union-attr]
    return dict(action.choices)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# --help
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("argv", [[], *([name] for name in subcommands())])
def test_help_of_the_program_and_every_command_describes_it_and_exits_0(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as ei:
        main([*argv, "--help"])
    assert ei.value.code in (0, None)
    out = capsys.readouterr().out
    parser = subcommands()[argv[0]] if argv else build_parser()
    assert parser.description and len(parser.description) > 20
    first_words = " ".join(parser.description.split()[:4])
    assert first_words in " ".join(out.split()), out


@pytest.mark.parametrize("name", ["", *subcommands()])
def test_every_option_says_what_it_does(name: str) -> None:
    parser = subcommands()[name] if name else build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            continue
        assert action.help and len(action.help) > 8, (name, action.option_strings)


def test_time_options_say_their_format_and_clock(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--until HH:MM" in out and "this machine's clock" in out
    assert re.search(r"--max-duration DURATION place no new call after this long: a number "
                     r"with s, m, h or d \(e\.g\. 90s, 45m, 2h", out)


def test_sandbox_help_and_h_exit_0_with_defaults_and_agent_ids(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for flag in ("--help", "-h"):
        with pytest.raises(SystemExit) as ei:
            main(["sandbox", flag])
        assert ei.value.code in (0, None)
        out = " ".join(capsys.readouterr().out.split())
        assert "usage: campaign-dialer sandbox" in out
        assert "agt_3d9b21" in out and "agt_7c4e10" in out
        assert "--time-scale TIME_SCALE real seconds per simulated second" in out
        assert "(default: 0.002)" in out and "(default: 127.0.0.1)" in out
    with pytest.raises(SystemExit) as ei:
        main(["sandbox", "--port", "eighty"])
    assert ei.value.code == 64


@pytest.mark.e2e
def test_sandbox_command_takes_port_and_seed_and_lists_its_agents(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "campaign_dialer.cli", "sandbox", "--port", str(port),
         "--seed", "1"],
        env=cli_env(None), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        first = proc.stdout.readline()
        agents = proc.stderr.readline()
        assert first.strip() == f"sandbox listening on http://127.0.0.1:{port}"
        assert "agt_3d9b21" in agents and "agt_7c4e10" in agents
        r = httpx.get(f"http://127.0.0.1:{port}/v1/calls/call_none",
                      headers={"Authorization": f"Bearer {KEY}"})
        assert r.status_code == 404  # served, and the key from the environment accepted
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert proc.returncode == 0


# --------------------------------------------------------------------------------------------
# The demo
# --------------------------------------------------------------------------------------------


def test_demo_data_ships_inside_the_package() -> None:
    src = commands.demo_source()
    assert src.is_relative_to(Path(campaign_dialer.__file__).parent)
    for name in (*commands.DEMO_INPUTS, "sandbox-data.json"):
        assert (src / name).is_file(), name
    assert (src / "campaign.toml").read_bytes().startswith(commands.DEMO_MARKER)


def test_demo_no_run_writes_only_into_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--out", "a/b", "--no-run"]) == 0
    camp = load_campaign(tmp_path / "a" / "b" / "campaign.toml")
    assert camp.output_dir == tmp_path / "a" / "b"
    assert camp.contacts_path.parent == tmp_path / "a" / "b"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]
    assert "a/b/campaign.toml" in capsys.readouterr().out


def test_a_fresh_demo_forgets_the_previous_one_and_resume_keeps_it(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    path = commands.prepare_demo(out)
    camp = load_campaign(path)
    with Journal(camp.journal_path, camp.name) as j:
        j.set_control("paused")
    (out / "results.csv").write_text("row\n")
    commands.prepare_demo(out, fresh=False)
    assert camp.journal_path.exists()
    commands.prepare_demo(out)
    assert not camp.journal_path.exists() and not (out / "results.csv").exists()


@pytest.mark.parametrize("setup", ["foreign_campaign", "other_files"])
def test_demo_refuses_a_folder_that_is_not_a_demo(tmp_path: Path, setup: str,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    if setup == "foreign_campaign":
        (out / "campaign.toml").write_text("[campaign]\nname = 'spring'\n")
    else:
        (out / "results.csv").write_text("precious\n")
    assert main(["demo", "--out", str(out), "--no-run"]) == 64
    assert "give a new or empty folder" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) in (["campaign.toml"], ["results.csv"])


@pytest.mark.e2e
def test_demo_runs_into_out_and_starts_fresh_by_default(tmp_path: Path) -> None:
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = cli_env(None)
    for _ in range(2):
        proc = subprocess.run(
            [sys.executable, "-m", "campaign_dialer.cli", "demo", "--out", "d"],
            cwd=work, env=env, capture_output=True, text=True, timeout=300,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
    assert "(1 run, last exit code 75)" in proc.stdout  # not "2 runs": the second is fresh
    # each file named once: `run` builds the report, the demo lists it with the others
    assert [ln.split()[0] for ln in proc.stdout.splitlines() if ln.startswith("report:")] == [
        "report:"]
    assert sorted(p.name for p in work.iterdir()) == ["d"]
    for name in ("results.csv", "report.html", "summary.json"):
        assert (work / "d" / name).is_file(), name


# --------------------------------------------------------------------------------------------
# Exit codes
# --------------------------------------------------------------------------------------------


def _campaign(tmp_path: Path) -> Path:
    return write_campaign(tmp_path / "c", contacts=[{"phone": p} for p in numbers(2)]).path


def test_resume_or_pause_after_cancel_is_refused_with_64(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(_campaign(tmp_path))
    assert main(["cancel", path]) == 0
    for action in ("resume", "pause"):
        assert main([action, path]) == 64
        err = capsys.readouterr().err
        assert "canceled" in err and f"`{action}` does not apply" in err
    assert main(["cancel", path]) == 0  # canceling again is harmless
    assert main(["status", path]) == 0
    assert "e2e: canceled" in capsys.readouterr().out


@pytest.mark.parametrize("command", [["report"], ["report", "--text"], ["report", "--json"],
                                     ["results"]])
def test_report_and_results_before_any_run_exit_66(
    tmp_path: Path, command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    path = _campaign(tmp_path)
    assert main([*command, str(path)]) == 66
    err = capsys.readouterr().err
    assert "nothing has run yet" in err and "run the campaign first" in err


def test_every_exit_code_is_in_the_docs_table_and_the_help() -> None:
    text = (REFERENCE / "exit-codes.md").read_text(encoding="utf-8")
    table = re.findall(r"^\| (\d+)(?: / (\d+))? \|", text, re.M)
    in_table = {int(c) for row in table for c in row if c}
    epilog = build_parser().epilog or ""
    for code in ExitCode:
        assert code.value in in_table, code
        assert re.search(rf"\b{code.value}\b", epilog), code


# --------------------------------------------------------------------------------------------
# The campaign file's errors
# --------------------------------------------------------------------------------------------


def _toml(tmp_path: Path, text: str) -> Path:
    camp = write_campaign(tmp_path / "f", contacts=[{"phone": numbers(1)[0]}])
    camp.path.write_text(text)
    return camp.path


GOOD = """
[campaign]
name = "t"
agent_id = "agt_1"
[inputs]
contacts = "contacts.csv"
consent = "consent.csv"
"""


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    bad = GOOD.replace('name = "t"', 'name = "t"\ncolour = "red"') + (
        "[pacing]\ncalls_per_second = -1\n[api]\nmax_live_calls = 0\n")
    with pytest.raises(ConfigError) as ei:
        load_campaign(_toml(tmp_path, bad))
    msg = str(ei.value)
    assert "3 problems" in msg and "more problem" not in msg
    for key in ("campaign.colour", "pacing.calls_per_second", "api.max_live_calls"):
        assert f"\n  {key}: " in msg, msg


@pytest.mark.parametrize(
    ("typo", "suggestion", "silent"),
    [
        ('[input]\ncontacts = "contacts.csv"', "did you mean [inputs]?", "inputs: required"),
        ('[inputs]\ncontacts = "contacts.csv"\n[pacing]\ncalls_per_secnd = 2',
         "did you mean pacing.calls_per_second?", None),
        ('[inputs]\ncontact = "contacts.csv"', "did you mean inputs.contacts?",
         "inputs.contacts: required"),
    ],
)
def test_misspelt_sections_and_keys_get_a_did_you_mean(
    tmp_path: Path, typo: str, suggestion: str, silent: str | None
) -> None:
    text = '[campaign]\nname = "t"\nagent_id = "agt_1"\n[compliance]\nrequire_consent = false\n'
    with pytest.raises(ConfigError) as ei:
        load_campaign(_toml(tmp_path, text + typo + "\n"))
    assert suggestion in str(ei.value)
    if silent:
        assert silent not in str(ei.value)  # the typo explains it; not said twice


@pytest.mark.parametrize(
    ("line", "key"),
    [
        ('[pacing]\ncalls_per_second = "5"', "pacing.calls_per_second"),
        ("[api]\nmax_live_calls = 2.5", "api.max_live_calls"),
        ("[api]\nrequests_per_second = true", "api.requests_per_second"),
        ("[compliance]\nrequire_consent = 1", "compliance.require_consent"),
        ('[compliance]\nstate_rules = "yes"', "compliance.state_rules"),
        ("[redial]\nmax_attempts = 1.0", "redial.max_attempts"),
    ],
)
def test_wrong_types_are_rejected_not_coerced(tmp_path: Path, line: str, key: str) -> None:
    with pytest.raises(ConfigError) as ei:
        load_campaign(_toml(tmp_path, GOOD + line + "\n"))
    assert f"{key}: " in str(ei.value)


def test_numbers_and_paths_of_the_right_type_still_load(tmp_path: Path) -> None:
    text = GOOD + "[pacing]\ncalls_per_second = 5\n[api]\nrequest_timeout_s = 3\n"
    camp = load_campaign(_toml(tmp_path, text))
    assert camp.model.pacing.calls_per_second == 5.0
    assert camp.model.api.request_timeout_s == 3.0
    assert camp.contacts_path.name == "contacts.csv"


def _on_a_terminal(argv: list[str], cwd: Path) -> tuple[int, str]:
    """Run the CLI with stdout and stderr on a pseudo-terminal; return its exit code and text."""
    main_fd, sub_fd = pty.openpty()
    env = {**cli_env(None), "COLUMNS": "200", "TERM": "xterm"}
    proc = subprocess.Popen([sys.executable, "-m", "campaign_dialer.cli", *argv], cwd=cwd,
                            stdin=sub_fd, stdout=sub_fd, stderr=sub_fd, env=env)
    os.close(sub_fd)
    chunks = []
    while True:
        ready, _, _ = select.select([main_fd], [], [], 60)
        if not ready:
            break
        try:
            data = os.read(main_fd, 4096)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    os.close(main_fd)
    return proc.wait(timeout=60), b"".join(chunks).decode(errors="replace")


@pytest.mark.parametrize("which", ["config", "usage_after_cancel"])
def test_an_error_is_printed_once_on_a_terminal(tmp_path: Path, which: str) -> None:
    path = _campaign(tmp_path)
    if which == "config":
        path.write_text(path.read_text().replace("[pacing]", "[pacing]\nspeed = 3"))
        code, out = _on_a_terminal(["check", str(path)], tmp_path)
        assert code == 78
        needle = "pacing.speed: unknown key"
    else:
        assert run_cli("cancel", str(path)).returncode == 0
        code, out = _on_a_terminal(["resume", str(path)], tmp_path)
        assert code == 64
        needle = "a canceled campaign stays canceled"
    plain = re.sub(r"\x1b\[[0-9;]*m", "", out)
    assert plain.count(needle) == 1, plain
    lines = [ln for ln in plain.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), plain


# --------------------------------------------------------------------------------------------
# What a run says
# --------------------------------------------------------------------------------------------


@pytest.mark.e2e
def test_run_summary_and_status_say_the_same_thing_in_plain_words(tmp_path: Path) -> None:
    ny, la = numbers(4), numbers(2, areas=("213",))
    camp = write_campaign(tmp_path, contacts=[{"phone": p} for p in ny + la],
                          pacing="calls_per_second = 2")
    with SandboxServer(SandboxConfig(api_keys=(KEY,), seed=3, time_scale=0.002)) as sb:
        run = run_cli("run", str(camp.path), "--base-url", sb.url,
                      clock="2026-06-09T14:00:00Z")  # 10:00 in New York, 07:00 in Los Angeles
    assert run.returncode == 75, run.stderr[-3000:]
    out = run.stdout
    assert out.splitlines()[0].startswith("e2e: incomplete (1 run")
    labels = re.findall(r"│ (\s*[A-Za-z][^│]*?)\s+│", out)
    dialed = labels.index("Dialed")
    assert labels[dialed + 1: dialed + 3] == ["  of which connected", "  of which with an outcome"]
    assert "Outcomes" not in out
    pacing = next(ln for ln in out.splitlines() if ln.startswith("pacing:"))
    assert "configured 2 new calls/s, evenly spaced" in pacing
    assert "in 1 s (configured" not in pacing
    status = run_cli("status", str(camp.path))
    assert status.returncode == 0
    assert "e2e: incomplete" in status.stdout and "active" not in status.stdout


def test_progress_line_fits_80_columns_and_left_goes_down() -> None:
    stats = Stats(rows=10_000, to_dial=9_000)
    seen = []
    for placed in (0, 10, 4_000, 8_990, 9_000):
        stats.placed, stats.completed, stats.live = placed, max(placed - 20, 0), min(placed, 20)
        stats.started = time.monotonic() - 1 - placed / 20
        text = re.sub(r"\[/?[a-z ]*\]", "", commands.progress_line(stats))
        assert len(text) <= 80, text
        seen.append(int(re.search(r"left (\d+)", text).group(1)))  # type: ignore[union-attr]
    assert seen == sorted(seen, reverse=True) and seen[0] == 9_000 and seen[-1] == 0


def _calls(times: list[float]) -> pd.DataFrame:
    t0 = datetime(2026, 6, 9, 17, tzinfo=UTC)
    iso = [(t0 + timedelta(seconds=t)).isoformat() for t in times]
    return pd.DataFrame({"posts": [1] * len(times), "intent_at": iso, "placed_at": iso,
                         "ended_at": iso})


def test_pacing_peak_is_a_rate_like_the_limit() -> None:
    # Evenly spaced at 2/s with a few ms of scheduling jitter: a 1 s window may hold 3 calls,
    # yet the rate never exceeds the limit by more than the jitter.
    even = [i * 0.5 + (0.004 if i % 7 == 0 else 0.0) for i in range(40)]
    tl = report.timeline(_calls(even), 2.0, 20)
    assert tl["peak_requests_in_1s"] == 3
    assert 1.9 <= tl["peak_calls_per_second"] <= 2.05
    burst = even[:10] + [5.0 + i * 0.05 for i in range(8)]
    assert report.timeline(_calls(sorted(burst)), 2.0, 20)["peak_calls_per_second"] > 4


def test_the_cli_reference_documents_every_command_and_option() -> None:
    text = (REFERENCE / "cli.md").read_text(encoding="utf-8")
    for name, parser in subcommands().items():
        assert f"## `{name}`" in text, name
        for action in parser._actions:
            for opt in action.option_strings:
                if opt not in ("-h", "--help"):
                    assert f"`{opt}" in text, (name, opt)
    for action in build_parser()._actions:
        for opt in action.option_strings:
            if opt not in ("-h", "--help"):
                assert f"`{opt}" in text, opt


def test_json_logs_follow_stderr_as_it_is_when_written(monkeypatch: pytest.MonkeyPatch) -> None:
    """Logs configured while stderr was a stream since closed (a test's capture, a redirected
    stream) go to the stderr of the moment, never to the closed one."""
    import io

    from campaign_dialer import log

    first = io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    log.configure("info", json=True)
    first.close()
    now = io.StringIO()
    monkeypatch.setattr(sys, "stderr", now)
    log.get("t").info("still_heard", n=1)
    assert '"event": "still_heard"' in now.getvalue()


def test_the_shipped_systemd_unit_can_write_the_contact_history() -> None:
    """ProtectSystem=strict makes everything read-only but ReadWritePaths, the home folder
    (the history's default place) included: without its own CAMPAIGN_DIALER_HOME among the
    writable paths, every scheduled run stopped with 78 "cannot open the contact history"."""
    unit = Path(campaign_dialer.__file__).parent.parent / "campaigns" / "schedule"
    lines = (unit / "campaign-dialer@.service").read_text().splitlines()
    settings: dict[str, list[str]] = {}
    for line in lines:
        if "=" in line and not line.lstrip().startswith("#"):
            k, _, v = line.partition("=")
            settings.setdefault(k.strip(), []).append(v.strip())
    assert settings["ProtectSystem"] == ["strict"]
    env = dict(e.split("=", 1) for e in settings.get("Environment", []))
    home = env.get("CAMPAIGN_DIALER_HOME")
    assert home, "the unit must give the history a writable home"
    writable = " ".join(settings["ReadWritePaths"]).split()
    assert any(home == w or home.startswith(w.rstrip("/") + "/") for w in writable)
    assert "%i" not in home  # one history for every campaign: recent calls cross campaigns


@pytest.mark.parametrize("days", ["nan", "inf", "-3", "0", "1e12", "ten"])
def test_caller_id_rest_refuses_days_that_are_not_a_rest_with_64(
    tmp_path: Path, days: str, capsys: pytest.CaptureFixture[str],
) -> None:
    """`--days nan` or `1e12` reached timedelta as a bug (exit 1); a negative or zero one
    wrote a rest that had ended before it began and said 'rests until' a past instant."""
    camp = write_campaign(tmp_path, contacts=[{"phone": p} for p in numbers(1)], extra=(
        '[caller_id]\nnumbers = [{ id = "pn_a", number = "+12125550180" }]\n'))
    with pytest.raises(SystemExit) as ei:
        main(["caller-id", "rest", str(camp.path), "--number", "pn_a", "--days", days])
    assert ei.value.code == 64
    assert "--days" in capsys.readouterr().err
