"""The operator's view of a campaign's store: what `status`, `pause`/`resume`/`cancel`,
`release`, `results` and `report` open, whichever backend the campaign uses.

SQLite (no store URL): the journal file in the output folder, "running" is its run lock.
PostgreSQL (`[store] url` / `CAMPAIGN_DIALER_STORE_URL`): the campaign, by name, in the team's
database; "running" is the registry of processes (any of them alive), and a control written
here reaches every process at its next heartbeat. `run` opens its stores elsewhere (the
engine's seam); these commands only read, or write a person's decision.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, cast

from campaign_dialer.store.errors import JournalError, StoreError
from campaign_dialer.store.interface import JournalStore
from campaign_dialer.store.lock import run_lock_held
from campaign_dialer.store.model import NumberRest, ProcessInfo, iso
from campaign_dialer.store.open import open_stores, open_team_history
from campaign_dialer.store.sqlite.history import SqliteHistory, default_path
from campaign_dialer.store.sqlite.journal import Journal

if TYPE_CHECKING:
    from campaign_dialer.config import Campaign

# The PostgreSQL backend (and so psycopg) is imported inside the functions below that need
# it, so the commands of a SQLite campaign never load it.


def on_postgres(campaign: Campaign) -> bool:
    return campaign.store_url is not None


def where(campaign: Campaign) -> str:
    """Where the campaign's journal is, for messages (never a password)."""
    url = campaign.store_url
    if url is None:
        return str(campaign.journal_path)
    from campaign_dialer.store.postgres.db import describe  # lazy: psycopg (see top)

    return f"campaign {campaign.name!r} in {describe(url)}"


def same_journal(a: Campaign, b: Campaign) -> bool:
    """Do two campaign files name one journal (so a comparison has one side)?"""
    if (a.store_url is None) != (b.store_url is None):
        return False
    if a.store_url is None:
        return a.journal_path.resolve() == b.journal_path.resolve()
    return a.store_url == b.store_url and a.name == b.name


@contextmanager
def existing_journal(campaign: Campaign) -> Iterator[JournalStore | None]:
    """The campaign's journal for the block, or None when it has never run (no file; not in
    the database). A journal that is there but unreadable, or a database that cannot be
    reached or is newer than this code, raises."""
    url = campaign.store_url
    if url is None:
        if not campaign.journal_path.exists():
            yield None
            return
        with Journal(campaign.journal_path, campaign.name, create=False) as journal:
            yield journal
        return
    stores = None
    try:
        stores = open_stores(campaign, create=False)
    except StoreError:
        raise  # unreachable, refused, a newer schema: say so, never "never run"
    except JournalError:
        pass  # the database has no such campaign
    if stores is None:
        yield None
        return
    with stores:
        yield stores.journal


@contextmanager
def control_journal(campaign: Campaign) -> Iterator[JournalStore]:
    """The campaign's journal, created if absent (a pause may come before the first run)."""
    if campaign.store_url is None:
        with Journal(campaign.journal_path, campaign.name) as journal:
            yield journal
        return
    with open_stores(campaign, create=True) as stores:
        yield stores.journal


def processes(journal: JournalStore) -> list[ProcessInfo] | None:
    """The processes registered on the campaign and not ended (alive or silent past their
    lease), for `status`; None on SQLite (one run per campaign, its lock says if it runs)."""
    # A PostgreSQL journal exists only once its backend was imported (`open_stores` loads it
    # for a campaign with a store URL): a SQLite campaign's report and status never load
    # psycopg just to learn that (it was ~0.3 s of every run's end).
    postgres = sys.modules.get("campaign_dialer.store.postgres")
    if postgres is None or not isinstance(journal, postgres.PgJournal):
        return None
    return cast("list[ProcessInfo]",
                postgres.Coordinator(journal.db, journal.campaign).processes())


def running(campaign: Campaign, journal: JournalStore | None = None) -> bool:
    """Is a run going now? SQLite: the run lock; PostgreSQL: a live process in the registry
    (a killed process stops heartbeating and counts as gone once its lease expires)."""
    procs = processes(journal) if journal is not None else None
    if procs is not None:
        return any(p.alive for p in procs)
    if campaign.store_url is not None:
        with existing_journal(campaign) as found:
            return found is not None and running(campaign, found)
    return run_lock_held(campaign.output_dir, campaign.name)


def process_rows(procs: list[ProcessInfo]) -> list[dict[str, Any]]:
    """The registry as `status --json` gives it."""
    return [
        {"id": p.id, "host": p.host, "pid": p.pid, "started_at": iso(p.started_at),
         "last_heartbeat": iso(p.heartbeat_at), "alive": p.alive,
         "live_calls": p.live_calls, "rows_held": p.rows_held}
        for p in procs
    ]


def caller_id_rests(campaign: Campaign) -> list[NumberRest]:
    """Every rest of the campaign's `[caller_id]` numbers, from the contact history (or the
    team database) its runs share; [] without a pool or before any history exists."""
    cid = campaign.model.caller_id
    if cid is None:
        return []
    if campaign.store_url is not None:
        pg = open_team_history(campaign.store_url)
        try:
            return pg.caller_id_rests(list(cid.ids))
        finally:
            pg.close()
    path = campaign.history_path or default_path()
    if not path.exists():
        return []
    history = SqliteHistory(path)
    try:
        return history.caller_id_rests(list(cid.ids))
    finally:
        history.close()
