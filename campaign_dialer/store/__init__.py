"""The store: the only place that speaks SQL.

- `interface`: what the dialer asks of a store (`JournalStore`, `HistoryStore` Protocols);
- `model`: the records they exchange (Attempt, Fate, Claim, PastCall...) and the clock format;
- `policy`: the cross-campaign rule the plan and every `claim` share;
- `lock`: one run per campaign (SQLite; on PostgreSQL the process registry replaces it);
- `open`: `open_stores`, a campaign's journal, history, DNC ledger and coordinator, the
  one place a backend is chosen (the campaign's store URL: PostgreSQL; none: SQLite);
- `sqlite`: the first backend (the default; nothing to install); `postgres`: a team's.
"""

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from campaign_dialer.store.errors import (
    DuplicateAttempt,
    HistoryError,
    JournalError,
    JournalWriteError,
    SchemaTooNew,
)
from campaign_dialer.store.interface import HistoryStore, JournalStore
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
    Fate,
    HttpTally,
    NumberCall,
    NumberRest,
    PastCall,
    iso,
    now_iso,
    parse_iso,
)
from campaign_dialer.store.open import POSTGRESQL, SQLITE, Stores, open_stores
from campaign_dialer.store.policy import hold_back
from campaign_dialer.store.sqlite.history import HOME_ENV, SqliteHistory, default_path, open_history
from campaign_dialer.store.sqlite.journal import Journal

if TYPE_CHECKING:
    from campaign_dialer.store.postgres import (
        Coordinator,
        LeaseLost,
        LiveLimitReached,
        PgJournal,
        SharedRateLimiter,
    )
    from campaign_dialer.store.postgres import limits as shared_limits

# The PostgreSQL backend's names the assembly of a shared run needs, imported on first use:
# the backend imports psycopg (over a second), which a SQLite run never needs.
_POSTGRES_NAMES = {
    "Coordinator": "Coordinator", "LeaseLost": "LeaseLost",
    "LiveLimitReached": "LiveLimitReached", "PgJournal": "PgJournal",
    "SharedRateLimiter": "SharedRateLimiter", "shared_limits": "limits",
}


def __getattr__(name: str) -> Any:
    if name in _POSTGRES_NAMES:
        from campaign_dialer.store import postgres

        return getattr(postgres, _POSTGRES_NAMES[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def open_journal(
    path: Path, campaign: str, *, create: bool = True, now: Callable[[], datetime] | None = None,
) -> JournalStore:
    """The SQLite journal at `path` (`open_stores` chooses the backend from a campaign)."""
    return Journal(path, campaign, create=create, now=now)

__all__ = [
    "ATTEMPT_COLUMNS", "CONTROL_STATES", "ERROR", "FINAL", "HOME_ENV", "INTENT", "NOT_CALLED",
    "NOT_PLACED", "OPEN_STATES", "PLACED", "POSTGRESQL", "REJECTED", "SQLITE", "UNRESOLVED",
    "Attempt", "CallFacts", "Coordinator", "LeaseLost", "LiveLimitReached", "PgJournal",
    "SharedRateLimiter", "shared_limits", "CallerIdFacts", "CallerIdRequest", "CallerPick", "Claim",
    "DuplicateAttempt", "Fate", "HistoryError", "HistoryStore", "HttpTally", "Journal",
    "JournalError", "JournalStore", "JournalWriteError", "NumberCall", "NumberRest", "PastCall",
    "RunLocked", "SchemaTooNew", "SqliteHistory", "Stores", "default_path", "hold_back", "iso",
    "now_iso", "open_history", "open_journal", "open_stores", "parse_iso", "run_lock",
    "run_lock_held",
]
