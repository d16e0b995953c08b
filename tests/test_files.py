"""The one atomic writer: a file appears whole or not at all."""

from __future__ import annotations

from pathlib import Path

import pytest

from campaign_dialer.files import write_atomic, write_text_atomic


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "out" / "report.html"
    write_text_atomic(target, "old")

    def half(p: Path) -> None:
        p.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomic(target, half)
    assert target.read_text() == "old"
    assert [p.name for p in target.parent.iterdir()] == ["report.html"]


def test_the_folder_is_made_and_the_text_replaces_the_file(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "summary.json"
    write_text_atomic(target, "1")
    write_text_atomic(target, "2é")
    assert target.read_text(encoding="utf-8") == "2é"
