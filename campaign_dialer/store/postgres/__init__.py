"""The PostgreSQL store: one database for a team's campaigns and several dialer processes.

`store.open_stores(campaign)` opens all of it for a campaign whose store URL is set; the
engine's `shared` layer drives the coordinator below during `run`.

Open it once per process, off the event loop (every call below blocks on one round trip
unless said otherwise; run them with `anyio.to_thread.run_sync`):

    db = Database(url)                     # pool + forward migration (SchemaTooNew: exit 78)
    co = Coordinator(db, "spring", lease_seconds=30)
    co.ensure_campaign(max_live_calls=10)  # global cap, enforced in the database
    limits.configure(db, "spring", limits.CALLS, 5.0)     # calls_per_second, shared
    limits.configure(db, "spring", limits.REQUESTS, 20.0) # requests_per_second, shared
    co.load_rows((row, person) for ...)    # idempotent: every process offers the same plan
    co.register()                          # registry entry (host, pid, heartbeat)
    for r in co.claim(8):                  # leased rows; r.open_intents: a dead process's
        ...                                #   intents, to replay/look up, never re-dial
    aid = co.record_intent(...)            # fenced by the lease; LiveLimitReached at cap
    co.heartbeat()                         # every lease/3: renews leases, returns control
    await co.keep_alive(on_control)        # async: that loop, for the run's task group
    co.finish([row]); co.release(row, not_before=t)
    co.end(exit_code, summary)             # leaves the registry, frees unfinished rows
    async with SharedRateLimiter(db, "spring", limits.CALLS): ...   # aiolimiter drop-in

The store interface (`store.interface`), same semantics as the SQLite backend:

    journal = PgJournal(db, "spring", now=clock.now)   # JournalStore; or PgJournal.open(url, ..)
    journal.attach(co)                     # intents fenced by leases + live cap; begin_run()
                                           #   then registers this process (co.process_id)
    history = PgHistory(db)                # HistoryStore: contact history + DNC ledger

`co.processes()` lists the registry for `status` (live calls, last heartbeat, alive);
`co.set_control("paused" | "active" | "canceled")` reaches every process at its next
heartbeat. Errors: `errors.PgStoreError` and subclasses (DialerError, exit codes set),
their text redacted of passwords.
"""

from __future__ import annotations

from campaign_dialer.store.errors import LeaseLost, LiveLimitReached
from campaign_dialer.store.interface import Coordination, HistoryStore, JournalStore
from campaign_dialer.store.postgres import limits
from campaign_dialer.store.postgres.coord import (
    ClaimedRow,
    Coordinator,
    Heartbeat,
    OpenIntent,
    ProcessInfo,
)
from campaign_dialer.store.postgres.db import Database
from campaign_dialer.store.postgres.errors import (
    DuplicateIntent,
    PgStoreError,
    SchemaTooNew,
    StoreUnavailable,
    redact,
)
from campaign_dialer.store.postgres.history import PgHistory
from campaign_dialer.store.postgres.journal import PgJournal
from campaign_dialer.store.postgres.limits import SharedRateLimiter

__all__ = [
    "ClaimedRow", "Coordinator", "Database", "DuplicateIntent", "Heartbeat", "LeaseLost",
    "LiveLimitReached", "OpenIntent", "PgHistory", "PgJournal", "PgStoreError", "ProcessInfo",
    "SchemaTooNew", "SharedRateLimiter", "StoreUnavailable", "limits", "redact",
]


def _conforms(
    j: PgJournal, h: PgHistory, co: Coordinator
) -> tuple[JournalStore, HistoryStore, Coordination]:
    """Never called: mypy checks here that all three implement the store's Protocols."""
    return j, h, co
