"""All of a campaign's stores at once: the one place a backend is chosen.

`open_stores(campaign, now=...)` gives the journal, the contact history, the DNC ledger and,
on PostgreSQL, the coordinator of the processes sharing the campaign. The campaign's store
URL decides (`config_store.store_url`: `CAMPAIGN_DIALER_STORE_URL` wins over `[store] url`);
without one, the SQLite files of the output folder and the user's history, as always.

Blocking (opens files or a connection pool and migrates): call it off the event loop.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from campaign_dialer.store.interface import HistoryStore, JournalStore
from campaign_dialer.store.ledger_file import DncLedger, SharedDncLedger
from campaign_dialer.store.plan_state import PlanStore
from campaign_dialer.store.sqlite.history import default_path, open_history
from campaign_dialer.store.sqlite.journal import Journal
from campaign_dialer.store.sqlite.plan import SqlitePlanStore, plan_path

if TYPE_CHECKING:
    from campaign_dialer.config import Campaign
    from campaign_dialer.store.postgres import Coordinator, Database

# The PostgreSQL backend is imported inside `_postgres` and `open_team_history`: psycopg and
# its pool load only when a campaign has a store URL.

SQLITE = "sqlite"
POSTGRESQL = "postgresql"
# The PostgreSQL pool: the engine's lane, the heartbeat, the shared rate limiters and the
# webhook sink each hold a connection for one statement at a time.
POOL_SIZE = 8


@dataclass
class Stores:
    """One campaign's journal, contact history and DNC ledger; `coordinator` on PostgreSQL."""

    kind: str  # SQLITE | POSTGRESQL
    journal: JournalStore
    history: HistoryStore
    ledger_path: Any  # the campaign's ledger CSV (`compliance.dnc_ledger`)
    coordinator: Coordinator | None = None
    db: Database | None = None
    _dnc: DncLedger | None = field(default=None, repr=False)

    @property
    def shared(self) -> bool:
        """Several processes may share this campaign (PostgreSQL)."""
        return self.coordinator is not None

    @property
    def dnc(self) -> DncLedger:
        """The DNC ledger backed by the contact history (made on first use: it imports the
        ledger CSV into the history once)."""
        if self._dnc is None:
            self._dnc = SharedDncLedger(self.ledger_path, self.history)
        return self._dnc

    def close(self) -> None:
        self.journal.close()
        self.history.close()
        if self.db is not None:
            self.db.close()

    def __enter__(self) -> Stores:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_stores(
    campaign: Campaign, *, now: Callable[[], datetime] | None = None, create: bool = True,
    history: HistoryStore | None = None,
) -> Stores:
    """The campaign's stores, by its store URL (none: SQLite). `create=False`: a journal
    that does not exist yet is an error (JournalError) rather than made. `history`: the
    campaign's contact history already open (a plan's), used instead of opening another
    (SQLite; the Stores then close it)."""
    url = campaign.store_url
    if url is None:
        return _sqlite(campaign, now=now, create=create, history=history)
    return _postgres(campaign, url, now=now, create=create)


def open_plan_store(
    journal_path: Path, *, db: Database | None = None, campaign: str = ""
) -> PlanStore:
    """The campaign's plan store: in the team's database when given `db` (PostgreSQL),
    else the file beside its SQLite journal."""
    if db is not None:
        from campaign_dialer.store.postgres.plan import PgPlanStore  # lazy: psycopg (see top)

        return PgPlanStore(db, campaign)
    return SqlitePlanStore(plan_path(journal_path))


def open_team_history(url: str) -> HistoryStore:
    """The team database's contact history (and DNC ledger) on a pool of its own, closed
    with it: what `check` and the report read of a campaign with a store URL."""
    from campaign_dialer.store.postgres import PgHistory  # lazy: psycopg (see top)

    return PgHistory.open(url)


def _sqlite(
    campaign: Campaign, *, now: Callable[[], datetime] | None, create: bool,
    history: HistoryStore | None,
) -> Stores:
    journal = Journal(campaign.journal_path, campaign.name, create=create, now=now)
    if history is not None:
        return Stores(SQLITE, journal, history, campaign.dnc_ledger_path)
    try:
        history = open_history(campaign.history_path or default_path())
    except BaseException:
        journal.close()
        raise
    return Stores(SQLITE, journal, history, campaign.dnc_ledger_path)


def _postgres(
    campaign: Campaign, url: str, *, now: Callable[[], datetime] | None, create: bool,
) -> Stores:
    from campaign_dialer.store.postgres import (  # lazy: psycopg (see top)
        Coordinator,
        Database,
        PgHistory,
        PgJournal,
    )

    section = campaign.model.store
    db = Database(url, max_size=POOL_SIZE, connect_timeout_s=section.connect_timeout_s,
                  outage_s=section.outage_s)
    try:
        journal = PgJournal(db, campaign.name, create=create, now=now)
        co = Coordinator(db, campaign.name, lease_seconds=campaign.model.store.lease_seconds)
        journal.attach(co)
        return Stores(POSTGRESQL, journal, PgHistory(db), campaign.dnc_ledger_path, co, db)
    except BaseException:
        db.close()
        raise
