"""The store's seam: callers reach a backend only through `campaign_dialer.store`.

The errors a caller catches are the store's own classes, the very ones the backends raise;
`open_stores` takes an already open contact history (the demo's plan's) and owns it from
then on; the shared limits a PostgreSQL campaign's processes take slots from are set and
taken through the coordinator, with no `Database` in the caller's hands.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import anyio
import pytest

from campaign_dialer import store
from campaign_dialer.config import load_campaign
from campaign_dialer.config_store import STORE_URL_ENV
from campaign_dialer.store import SQLITE, SqliteHistory, open_stores

from .e2e_support import numbers, write_campaign

pytest_plugins = ["tests.pg_cluster"]

NOW = datetime(2026, 6, 9, 17, 0, tzinfo=UTC)


def test_store_level_errors_are_the_ones_the_backends_raise() -> None:
    """The engine catches `store.LeaseLost`/`store.LiveLimitReached`: the PostgreSQL
    backend must raise those very classes, not look-alikes."""
    from campaign_dialer.store import postgres

    assert postgres.LeaseLost is store.LeaseLost
    assert postgres.LiveLimitReached is store.LiveLimitReached
    assert postgres.PgStoreError is store.StoreError
    assert issubclass(store.LeaseLost, store.JournalError)
    assert store.LiveLimitReached.exit_code == 75  # TEMPFAIL, as before the move


def test_open_stores_owns_the_history_it_is_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(STORE_URL_ENV, raising=False)
    campaign = load_campaign(write_campaign(
        tmp_path, contacts=[{"phone": p} for p in numbers(2)]).path)
    history = SqliteHistory(tmp_path / "history.sqlite")
    stores = open_stores(campaign, now=lambda: NOW, history=history)
    assert stores.kind == SQLITE and stores.history is history
    assert stores.journal.path == campaign.journal_path
    stores.history.add_dnc("+12125550100", reason="opt_out", campaign="e2e", evidence="t",
                           at=NOW)
    stores.close()
    with pytest.raises(sqlite3.ProgrammingError):  # closed with the stores
        history.is_dnc("+12125550100")
    again = SqliteHistory(tmp_path / "history.sqlite")
    try:
        assert again.is_dnc("+12125550100")
    finally:
        again.close()


def test_shared_limits_are_set_and_taken_through_the_coordinator(
    tmp_path: Path, pg_database: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(STORE_URL_ENV, raising=False)
    campaign = load_campaign(write_campaign(
        tmp_path, contacts=[{"phone": p} for p in numbers(2)],
        extra=f'\n[store]\nurl = "{pg_database}"\n').path)
    with open_stores(campaign, now=lambda: NOW) as stores:
        co = stores.coordinator
        assert co is not None
        co.ensure_campaign(max_live_calls=2)
        co.configure_limits(calls_per_second=50.0, requests_per_second=100.0)
        calls, requests = co.calls_limiter, co.requests_limiter

        async def take() -> float:
            start = anyio.current_time()
            for _ in range(6):
                await calls.acquire()
            await requests.acquire()
            return anyio.current_time() - start

        # 6 call slots at 50/s: 5 gaps of 20 ms at least, whatever the host.
        assert anyio.run(take) >= 5 * 0.02 * 0.9
