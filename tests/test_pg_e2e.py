"""PostgreSQL end to end: several `run` processes share a campaign, several campaigns share
the contact history, judged by the sandbox's audit; and the seam that picks the backend."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from campaign_dialer.config import load_campaign
from campaign_dialer.config_store import STORE_URL_ENV
from campaign_dialer.store import POSTGRESQL, SQLITE, open_stores

from .e2e_support import numbers, write_campaign
from .pg_cluster import pg_database, pg_url  # noqa: F401 - fixtures

NOW = datetime(2026, 6, 9, 17, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _wired(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("campaign_dialer.config_store.WIRED", True)


def _files(tmp_path: Path, store: str = "", name: str = "e2e") -> Path:
    extra = f"\n[store]\n{store}\n" if store else ""
    return write_campaign(tmp_path, contacts=[{"phone": p} for p in numbers(3)], name=name,
                          extra=extra).path


def test_without_a_store_url_the_stores_are_the_sqlite_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(STORE_URL_ENV, raising=False)
    campaign = load_campaign(_files(tmp_path))
    with open_stores(campaign, now=lambda: NOW) as stores:
        assert stores.kind == SQLITE and stores.coordinator is None and not stores.shared
        assert stores.journal.path == campaign.journal_path
        assert stores.journal.path.exists()
        stores.dnc.add("+12125550100", reason="opt_out", campaign="e2e", evidence="t", at=NOW)
        assert stores.history.is_dnc("+12125550100")


def test_a_store_url_puts_journal_history_and_ledger_in_the_database(
    tmp_path: Path, pg_database: str, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
) -> None:
    monkeypatch.delenv(STORE_URL_ENV, raising=False)
    campaign = load_campaign(_files(tmp_path, f'url = "{pg_database}"\nlease_seconds = 5'))
    with open_stores(campaign, now=lambda: NOW) as stores:
        assert stores.kind == POSTGRESQL and stores.shared
        assert stores.coordinator is not None and stores.coordinator.lease_seconds == 5.0
        assert not campaign.journal_path.exists()
        stores.dnc.add("+12125550100", reason="opt_out", campaign="e2e", evidence="t", at=NOW)
    other = load_campaign(_files(tmp_path / "b", f'url = "{pg_database}"', name="other"))
    with open_stores(other, now=lambda: NOW) as stores:  # another campaign, same database
        assert stores.history.is_dnc("+12125550100")
        assert "+12125550100" in stores.dnc
