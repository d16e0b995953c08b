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
