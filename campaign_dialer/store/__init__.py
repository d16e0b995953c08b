"""The store: the only place that speaks SQL.

- `interface`: what the dialer asks of a store (`JournalStore`, `HistoryStore` Protocols);
- `model`: the records they exchange (Attempt, Fate, Claim, PastCall...) and the clock format;
- `policy`: the cross-campaign rule the plan and every `claim` share;
- `lock`: one run per campaign;
- `sqlite`: the first backend (the default; nothing to install).
"""

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
    CallFacts,
    Claim,
    Fate,
    HttpTally,
    PastCall,
    iso,
    now_iso,
    parse_iso,
)
from campaign_dialer.store.policy import hold_back
from campaign_dialer.store.sqlite.history import HOME_ENV, SqliteHistory, default_path, open_history
from campaign_dialer.store.sqlite.journal import Journal

__all__ = [
    "ATTEMPT_COLUMNS", "CONTROL_STATES", "ERROR", "FINAL", "HOME_ENV", "INTENT", "NOT_CALLED",
    "NOT_PLACED", "OPEN_STATES", "PLACED", "REJECTED", "UNRESOLVED", "Attempt", "CallFacts",
    "Claim", "DuplicateAttempt", "Fate", "HistoryError", "HistoryStore", "HttpTally", "Journal",
    "JournalError", "JournalStore", "JournalWriteError", "PastCall", "RunLocked",
    "SchemaTooNew", "SqliteHistory", "default_path", "hold_back", "iso", "now_iso",
    "open_history", "parse_iso", "run_lock", "run_lock_held",
]
