"""Operator mistakes found in review: each ends with one line and a documented exit code,
never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from campaign_dialer import commands
from campaign_dialer.cli import main

from .e2e_support import numbers, run_cli, write_campaign


@pytest.mark.parametrize(
    ("command", "code"), [("status", 1), ("report", 65), ("results", 1), ("run", 1)]
)
def test_a_journal_that_is_not_a_database_is_one_line_not_a_traceback(
    tmp_path: Path, command: str, code: int
) -> None:
    camp = write_campaign(tmp_path, contacts=[{"phone": p} for p in numbers(2)])
    camp.out.mkdir()
    (camp.out / "e2e.journal.sqlite").write_text("garbage, not SQLite\n")
    r = run_cli(command, str(camp.path))
    assert "Traceback" not in r.stderr
    assert r.returncode == code
    assert "e2e.journal.sqlite" in r.stderr and "cannot be read as a journal" in r.stderr
    assert "never run" not in r.stdout


def test_an_unexpected_exception_is_one_line_and_exit_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    camp = write_campaign(tmp_path, contacts=[{"phone": p} for p in numbers(1)])

    def boom(*_a: object, **_k: object) -> None:
        raise RuntimeError("a bug somewhere")

    monkeypatch.setattr(commands, "status", boom)
    assert main(["status", str(camp.path)]) == 1
    err = capsys.readouterr().err
    assert "a bug somewhere" in err and "Traceback" not in err


def test_release_with_a_row_that_holds_no_unresolved_call_is_64_and_releases_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A mistyped `--row` was "0 unresolved call(s) released" with exit 0: the person
    believed the call decided while the row stayed held."""
    camp = write_campaign(tmp_path, contacts=[{"phone": p} for p in numbers(2)])
    assert main(["pause", str(camp.path)]) == 0  # a journal, no unresolved call
    capsys.readouterr()
    assert main(["release", str(camp.path), "--as", "not-called", "--row", "99999"]) == 64
    err = capsys.readouterr().err
    assert "99999" in err and "unresolved rows: none" in err and "nothing released" in err


def test_release_before_any_run_is_66_not_an_unexpected_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    camp = write_campaign(tmp_path, contacts=[{"phone": p} for p in numbers(2)])
    assert main(["release", str(camp.path), "--as", "called"]) == 66
    assert "nothing has run yet" in capsys.readouterr().err
    assert not camp.out.exists()


@pytest.mark.parametrize(("control", "state"), [("resume", "never_run"), ("pause", "paused"),
                                               ("cancel", "canceled")])
def test_a_control_before_the_first_run_leaves_nothing_to_report(
    tmp_path: Path, control: str, state: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`pause`/`resume`/`cancel` before any run writes a journal: `status --json` says the
    machine word (`never_run`, not "never run"), and `report`/`results` still have nothing
    to show (66), not an empty report with exit 0."""
    import json

    camp = write_campaign(tmp_path, contacts=[{"phone": p} for p in numbers(2)])
    assert main([control, str(camp.path)]) == 0
    capsys.readouterr()
    assert main(["status", str(camp.path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["state"] == state
    for command in (["report", "--text"], ["report", "--json"], ["report"], ["results"]):
        assert main([*command, str(camp.path)]) == 66, command
        err = capsys.readouterr().err
        assert "nothing has run yet" in err and "no run in the journal" in err
    assert not (camp.out / "results.csv").exists()
    assert not (camp.out / "report.html").exists()


def test_results_and_report_after_the_journal_was_deleted_say_the_history_knows_it(
    tmp_path: Path,
) -> None:
    """A cleaned `out/` is not "nothing has run yet": the message says the history holds
    the campaign's calls and that the next run rebuilds the journal (still 66)."""
    from campaign_dialer.sandbox import SandboxConfig, SandboxServer

    from .e2e_support import KEY

    camp = write_campaign(tmp_path, contacts=[{"phone": p} for p in numbers(2)])
    with SandboxServer(SandboxConfig(api_keys=(KEY,), seed=3, time_scale=0.002)) as sb:
        assert run_cli("run", str(camp.path), "--base-url", sb.url).returncode == 0
    for f in camp.out.glob("e2e.journal.sqlite*"):
        f.unlink()
    for command in (["results"], ["report", "--text"], ["report"]):
        r = run_cli(*command, str(camp.path))
        assert r.returncode == 66, (command, r.stderr[-2000:])
        assert "nothing has run yet" not in r.stderr
        assert "contact history holds 2 attempt(s)" in r.stderr and "rebuilds" in r.stderr
