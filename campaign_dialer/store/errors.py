"""The store's errors: each carries the exit code a scheduler gets (see `exitcodes`)."""

from __future__ import annotations

from pathlib import Path

from campaign_dialer.errors import DialerError
from campaign_dialer.exitcodes import ExitCode


class JournalError(DialerError):
    """The journal cannot be used as asked (missing, another campaign's, a rule refused)."""

    exit_code = ExitCode.FAILURE


class DuplicateAttempt(JournalError):
    """The journal refused a second intent for the same person and attempt."""


class JournalWriteError(JournalError):
    """The journal cannot be written: read-only or missing (73), disk full or I/O (74)."""

    def __init__(self, path: Path | str, error: BaseException) -> None:
        text = str(error)
        low = text.lower()
        if "full" in low or "i/o" in low or isinstance(error, OSError) and "space" in low:
            self.exit_code = ExitCode.IOERR
            what = "the disk is full or failing"
        else:
            self.exit_code = ExitCode.CANTCREAT
            what = "it is read-only or cannot be created"
        super().__init__(f"cannot write {path}: {what} ({text})")


class PlanNotKept(DialerError):
    """The plan could not be kept (disk full, a read-only folder): the run that made it goes
    on with it (and meets the disk's trouble at the journal, which names it); the next run
    plans again. Never a reason to dial differently."""

    exit_code = ExitCode.IOERR


class HistoryError(DialerError):
    """The history cannot be opened or read: a person must look (its path, its rights)."""

    exit_code = ExitCode.CONFIG


class SchemaTooNew(DialerError):
    """The journal or history was written by a newer campaign-dialer: refused, never guessed.

    Reading a newer schema could miss a table that records who was called; the operator
    upgrades the dialer instead (exit 78, like a configuration problem).
    """

    exit_code = ExitCode.CONFIG

    def __init__(self, what: str, where: str, found: int, supported: int) -> None:
        self.found = found
        self.supported = supported
        super().__init__(
            f"{where}: this {what} has schema version {found}, newer than this "
            f"campaign-dialer understands ({supported}); upgrade campaign-dialer to use it"
        )


class StoreError(JournalError):
    """A shared store (PostgreSQL) refused or failed an operation; the message is redacted."""

    exit_code = ExitCode.FAILURE


class LeaseLost(StoreError):
    """This process no longer holds the row's lease (it stalled past it and another process
    took the row over): it must not dial that row; the holder resolves it."""


class LiveLimitReached(StoreError):
    """The campaign already has `max_live_calls` open calls across all its processes."""

    exit_code = ExitCode.TEMPFAIL
