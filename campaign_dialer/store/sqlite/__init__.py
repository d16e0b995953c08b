"""The SQLite backend: a journal file per campaign, one contact-history file per user/team."""

from campaign_dialer.store.sqlite.history import SqliteHistory, default_path
from campaign_dialer.store.sqlite.journal import Journal

SqliteJournal = Journal

__all__ = ["Journal", "SqliteHistory", "SqliteJournal", "default_path"]
