"""Every test gets a contact history of its own: no test ever touches the user's."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def own_history(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
                ) -> Iterator[Path]:
    """CAMPAIGN_DIALER_HOME (and XDG_DATA_HOME, for good measure) point into a temp folder."""
    home = tmp_path_factory.mktemp("dialer-home")
    monkeypatch.setenv("CAMPAIGN_DIALER_HOME", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "xdg"))
    yield home
