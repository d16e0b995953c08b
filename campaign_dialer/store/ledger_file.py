"""The DNC ledger file (`compliance.dnc_ledger`, ledger.csv): append, lock, fsync, catch up.

The file side of the ledger the gate consults from memory (`compliance.ledger.LedgerView`):
compliance never writes a file, so writing and re-reading ledger.csv lives here, and
`SharedDncLedger` adds the contact history's shared DNC entries. Its format and location are
unchanged: phone,reason,campaign,evidence,at (UTC, seconds).
"""

from __future__ import annotations

import csv
import fcntl
import io
import os
import re
from datetime import UTC, datetime
from pathlib import Path

from campaign_dialer.store.interface import HistoryStore

_E164 = re.compile(r"\+[1-9]\d{5,14}")


def _aware(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"at must be timezone-aware (got naive {at.isoformat()})")
    return at


class DncLedger:
    """Append-only CSV of numbers the platform or a callee put on Do-Not-Call.

    Shared by campaigns. Membership (`in`, what the gate asks at every dial) is answered from
    memory; `reload` catches up with what others appended (only the bytes appended since the
    last read; blocking, so the engine runs it in a worker thread with `Gate.reloaded`). Each
    append takes an exclusive `fcntl` lock, catches up with what others appended, skips a
    number already there (idempotent), writes one line and fsyncs: a crash loses at most the
    line being written, never an earlier one. A torn last line (a crash mid-write) is read
    once its phone field is complete, and closed off by the next append.
    """

    HEADER = ("phone", "reason", "campaign", "evidence", "at")

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._known: set[str] = set()
        self._offset = 0
        self._inode: int | None = None

    @staticmethod
    def _parse(text: str) -> set[str]:
        out = set()
        for rec in csv.reader(io.StringIO(text)):
            # a record counts once its phone field is complete (a separator follows it)
            if len(rec) >= 2 and _E164.fullmatch(rec[0]):
                out.add(rec[0])
        return out

    def _catch_up(self, fd: int) -> bytes:
        """Read what was appended since last time (caller holds a lock); returns the tail."""
        st = os.fstat(fd)
        restart = st.st_ino != self._inode or st.st_size < self._offset
        offset = 0 if restart else self._offset
        data = os.pread(fd, st.st_size - offset, offset) if st.st_size else b""
        end = data.rfind(b"\n") + 1
        found = self._parse(data[:end].decode("utf-8", errors="replace"))
        tail = data[end:]
        if tail:  # torn last line: honour its number if complete, re-read it later
            found |= self._parse(tail.decode("utf-8", errors="replace"))
        # One assignment: the gate asks membership from the event loop while this runs in a
        # worker thread, so it sees the old numbers or the new ones, never an empty set
        # between (a replaced file is read from its start).
        if restart:
            self._known = found
        else:
            self._known |= found  # in place: one C call, no copy of a large ledger per append
        self._offset, self._inode = offset + end, st.st_ino
        return tail

    def reload(self) -> bool:
        """Catch up with appends (blocking); True when the numbers changed. A stat tells
        cheaply when there is nothing new."""
        before = len(self._known), self._inode
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self._known, self._offset, self._inode = set(), 0, None
            return before != (0, None)
        if st.st_ino == self._inode and st.st_size == self._offset:
            return False  # nothing appended, no torn tail pending
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
            self._catch_up(fd)
        finally:
            os.close(fd)
        return (len(self._known), self._inode) != before

    def numbers(self) -> set[str]:
        """Every number in the ledger, caught up first (an absent ledger is empty; blocking)."""
        self.reload()
        return set(self._known)

    def __contains__(self, e164: object) -> bool:
        """From memory: what the last `reload`, `numbers` or `add` saw (never reads the file)."""
        return isinstance(e164, str) and e164 in self._known

    def add(self, e164: str, *, reason: str, campaign: str, evidence: str, at: datetime) -> None:
        """Record a number (idempotent per number), durably, safe with concurrent appenders."""
        if not _E164.fullmatch(e164):
            raise ValueError(f"{e164!r} is not an E.164 number")
        for name, value in (("reason", reason), ("campaign", campaign), ("evidence", evidence)):
            if "\n" in value or "\r" in value:
                raise ValueError(f"{name} must be one line")
        _aware(at)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        created = not self.path.exists()
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            tail = self._catch_up(fd)
            if e164 in self._known:
                return
            buf = io.StringIO()
            if tail:
                buf.write("\n")  # close a torn line left by a crash
            w = csv.writer(buf, lineterminator="\n")
            if self._offset == 0 and not tail:
                w.writerow(self.HEADER)
            w.writerow(
                [e164, reason, campaign, evidence, at.astimezone(UTC).isoformat(timespec="seconds")]
            )
            os.write(fd, buf.getvalue().encode("utf-8"))
            os.fsync(fd)
            self._known.add(e164)
        finally:
            os.close(fd)  # releases the lock
        if created:
            dfd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)



class SharedDncLedger(DncLedger):
    """The DNC ledger in the contact history, plus `compliance.dnc_ledger` as an extra file.

    The file is imported into the history on first use, still caught up on every reload and
    appended to, so no opt-out recorded in a ledger CSV is ever lost; the history shares every
    entry with the campaigns of other folders. The history's numbers are read when built and
    at every `reload` (in a worker thread), so membership never queries it.
    """

    def __init__(self, path: Path, history: HistoryStore) -> None:
        super().__init__(path)
        self.history = history
        history.import_ledger(path)
        self._shared: set[str] = history.dnc_numbers()

    def reload(self) -> bool:
        changed = super().reload()
        shared = self.history.dnc_numbers()
        if shared != self._shared:
            self._shared = shared
            changed = True
        return changed

    def numbers(self) -> set[str]:
        return super().numbers() | self._shared

    def __contains__(self, e164: object) -> bool:
        return super().__contains__(e164) or (isinstance(e164, str) and e164 in self._shared)

    def add(self, e164: str, *, reason: str, campaign: str, evidence: str, at: datetime) -> None:
        self.history.add_dnc(e164, reason=reason, campaign=campaign, evidence=evidence, at=at)
        super().add(e164, reason=reason, campaign=campaign, evidence=evidence, at=at)
        self._shared = self._shared | {e164}
