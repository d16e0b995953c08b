"""The store: the only place that speaks SQL.

- `interface`: what the dialer asks of a store, by role: a journal's `AttemptLog`, `Controls`,
  `Telemetry` and `ReportReads` (`JournalStore` is all four), the `HistoryStore`, and a shared
  campaign's `Coordination`;
- `errors`: the store's errors, every backend's (`LeaseLost`, `LiveLimitReached`...);
- `model`: the records they exchange (Attempt, Fate, Claim, PastCall...) and the clock format;
- `policy`: the cross-campaign rule the plan and every `claim` share;
- `lock`: one run per campaign (SQLite; on PostgreSQL the process registry replaces it);
- `open`: `open_stores`, a campaign's journal, history, DNC ledger and coordinator, the
  one place a backend is chosen (the campaign's store URL: PostgreSQL; none: SQLite);
- `sqlite`: the first backend (the default; nothing to install); `postgres`: a team's.
  Only the store imports them (import-linter's `store-backends-private` contract): everything
  a caller needs is a name of this package.
"""

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from campaign_dialer.store.errors import (
    DuplicateAttempt,
    HistoryError,
    JournalError,
    JournalWriteError,
    LeaseLost,
    LiveLimitReached,
    PlanNotKept,
    SchemaTooNew,
    StoreError,
)
from campaign_dialer.store.fate_base import FIXED as FATE_FIELDS
from campaign_dialer.store.fate_base import FateSlices, fates_of
from campaign_dialer.store.interface import (
    AttemptLog,
    Controls,
    Coordination,
    HistoryStore,
    HttpEvent,
    JournalStore,
    RateSlots,
    ReportReads,
    Telemetry,
)
from campaign_dialer.store.kept_contacts import (
    KEPT_BATCH_ROWS,
    KeptContacts,
    contacts_path,
    save_contacts,
)
from campaign_dialer.store.lock import RunLocked, run_lock, run_lock_held
from campaign_dialer.store.model import (
    ATTEMPT_COLUMNS,
    CONTROL_STATES,
    ERROR,
    FINAL,
    INTENT,
    NOT_CALLED,
    NOT_PLACED,
    OPEN_STATES,
    PLACED,
    REJECTED,
    UNRESOLVED,
    Attempt,
    CallerIdFacts,
    CallerIdRequest,
    CallerPick,
    CallFacts,
    Claim,
    ClaimedRow,
    Fate,
    HttpTally,
    NumberCall,
    NumberRest,
    OpenIntent,
    PastCall,
    ProcessInfo,
    iso,
    now_iso,
    parse_iso,
)
from campaign_dialer.store.open import (
    POSTGRESQL,
    SQLITE,
    Stores,
    open_plan_store,
    open_stores,
    open_team_history,
)
from campaign_dialer.store.plan_state import EncodedPlan, PlanStore
from campaign_dialer.store.policy import hold_back
from campaign_dialer.store.sqlite.history import HOME_ENV, SqliteHistory, default_path, open_history
from campaign_dialer.store.sqlite.journal import Journal


def open_journal(
    path: Path, campaign: str, *, create: bool = True, now: Callable[[], datetime] | None = None,
) -> JournalStore:
    """The SQLite journal at `path` (`open_stores` chooses the backend from a campaign)."""
    return Journal(path, campaign, create=create, now=now)

__all__ = [
    "ATTEMPT_COLUMNS", "CONTROL_STATES", "ERROR", "FINAL", "HOME_ENV", "INTENT", "NOT_CALLED",
    "NOT_PLACED", "OPEN_STATES", "PLACED", "POSTGRESQL", "REJECTED", "SQLITE", "UNRESOLVED",
    "Attempt", "AttemptLog", "CallFacts", "CallerIdFacts", "CallerIdRequest", "CallerPick",
    "Claim", "ClaimedRow", "Controls", "Coordination", "DuplicateAttempt", "Fate", "HistoryError",
    "HistoryStore", "HttpEvent", "HttpTally", "Journal", "JournalError", "JournalStore",
    "JournalWriteError", "LeaseLost", "LiveLimitReached", "NumberCall", "NumberRest", "OpenIntent",
    "PastCall", "ProcessInfo", "RateSlots", "ReportReads", "RunLocked", "SchemaTooNew",
    "SqliteHistory", "StoreError", "Stores", "Telemetry", "default_path", "hold_back", "iso",
    "now_iso", "open_history", "open_journal", "open_stores", "open_team_history", "parse_iso",
    "run_lock", "run_lock_held",
]

# The stored plan (#25 plan once): its columns, its store, and where a campaign keeps it.
__all__ += ["EncodedPlan", "PlanNotKept", "PlanStore", "open_plan_store"]
__all__ += ["FATE_FIELDS", "FateSlices", "fates_of"]
# The contacts kept beside the plan, for the results of a resumed run.
__all__ += ["KEPT_BATCH_ROWS", "KeptContacts", "contacts_path", "save_contacts"]
