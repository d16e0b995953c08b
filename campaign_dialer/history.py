"""Moved: the contact history is `campaign_dialer.store` (SQLite backend in store.sqlite)."""

from campaign_dialer.store import (
    HOME_ENV,
    Claim,
    HistoryError,
    HistoryStore,
    PastCall,
    SqliteHistory,
    default_path,
    hold_back,
    open_history,
)
from campaign_dialer.store.model import NOT_CALLED
from campaign_dialer.store.sqlite.history import FILE_NAME, SCHEMA_VERSION

__all__ = [
    "FILE_NAME", "HOME_ENV", "NOT_CALLED", "SCHEMA_VERSION", "Claim", "HistoryError",
    "HistoryStore", "PastCall", "SqliteHistory", "default_path", "hold_back", "open_history",
]
