"""Every test gets a contact history of its own: no test ever touches the user's."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

_SESSION_HOME: str | None = None


def pytest_configure(config: pytest.Config) -> None:
    """Before any fixture of any scope runs: the session's history is a temp folder."""
    global _SESSION_HOME
    _SESSION_HOME = tempfile.mkdtemp(prefix="dialer-home-")
    os.environ["CAMPAIGN_DIALER_HOME"] = _SESSION_HOME
    os.environ["XDG_DATA_HOME"] = os.path.join(_SESSION_HOME, "xdg")


def pytest_unconfigure(config: pytest.Config) -> None:
    if _SESSION_HOME:
        shutil.rmtree(_SESSION_HOME, ignore_errors=True)


@pytest.fixture(autouse=True)
def own_history(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
                ) -> Iterator[Path]:
    """And each test one of its own, so campaigns of one test never see another test's."""
    home = tmp_path_factory.mktemp("dialer-home")
    monkeypatch.setenv("CAMPAIGN_DIALER_HOME", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "xdg"))
    yield home
