"""SQLite scaffolding shared by the journal and the history: one way to open, write, migrate.

WAL mode (readers never block the writer), `synchronous=NORMAL` (a commit survives a process
crash; WAL keeps the file consistent on power loss), a busy timeout for other processes, and
`BEGIN IMMEDIATE` for every write: the write lock is taken before the first read, so what a
transaction checks cannot change under it (a deferred read upgraded to a write is not atomic
and can fail with SQLITE_BUSY at once). One connection per object, used from worker threads
one at a time (an RLock), never on the event loop.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

from campaign_dialer.store.errors import SchemaTooNew

_WRITE_PROBLEMS = ("readonly", "read-only", "full", "i/o", "unable to open", "cannot open")
_BUSY_RETRIES = 3  # on top of the busy timeout: another process held the lock that long


def write_problem(e: BaseException) -> bool:
    """Is this the file or disk refusing a write (read-only, full, I/O), not a bug?"""
    if isinstance(e, PermissionError | IsADirectoryError | NotADirectoryError):
        return True
    if isinstance(e, OSError):
        return e.errno in (errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EIO)
    return isinstance(e, sqlite3.OperationalError | sqlite3.DatabaseError) and any(
        w in str(e).lower() for w in _WRITE_PROBLEMS
    )


def _busy(e: BaseException) -> bool:
    return isinstance(e, sqlite3.OperationalError) and "locked" in str(e).lower()


class Database:
    """One SQLite file: a connection, its lock, write transactions and the schema version.

    `translate` turns a write problem into the caller's error (the journal: exit 73/74);
    without it the sqlite error propagates.
    """

    def __init__(
        self, path: Path, *, timeout: float, dir_mode: int | None = None,
        translate: Callable[[BaseException], Exception | None] | None = None,
    ) -> None:
        self.path = path
        self._translate = translate or (lambda e: None)
        self.lock = threading.RLock()
        if dir_mode is not None and not path.parent.exists():
            path.parent.mkdir(parents=True, mode=dir_mode, exist_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            # Phone numbers and call records: the owner's eyes only. SQLite gives its -wal
            # and -shm files the database file's mode.
            os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        self.db = sqlite3.connect(
            path, isolation_level=None, timeout=timeout, check_same_thread=False
        )
        self.db.row_factory = sqlite3.Row
        # Switching a new file to WAL needs it to itself: several campaigns opening the same
        # history at once got "database is locked" here at once (no busy handler applies),
        # so it is asked again until `timeout`, as the busy timeout does for everything else.
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.db.execute("PRAGMA journal_mode=WAL")
                break
            except sqlite3.OperationalError as e:
                if not _busy(e) or time.monotonic() >= deadline:
                    self.db.close()
                    raise
                time.sleep(0.02)
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
        self.db.execute("PRAGMA foreign_keys=ON")

    def close(self) -> None:
        with self.lock:
            self.db.close()

    def _raise(self, e: BaseException) -> None:
        mine = self._translate(e) if write_problem(e) else None
        if mine is not None:
            raise mine from None

    def _rollback(self) -> None:
        try:
            self.db.execute("ROLLBACK")
        except sqlite3.Error:
            pass

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, committed when the block ends, rolled back if it raises."""
        with self.lock:
            for tries in range(_BUSY_RETRIES + 1):
                try:
                    self.db.execute("BEGIN IMMEDIATE")
                    break
                except sqlite3.Error as e:
                    if _busy(e) and tries < _BUSY_RETRIES:
                        time.sleep(0.05 * (tries + 1))
                        continue
                    self._raise(e)
                    raise
            try:
                yield self.db
            except BaseException as e:
                self._rollback()
                self._raise(e)
                raise
            try:
                self.db.execute("COMMIT")
            except sqlite3.Error as e:
                self._rollback()
                self._raise(e)
                raise

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """One read transaction: every read inside sees the same committed state."""
        with self.lock:
            if self.db.in_transaction:  # already inside one (this thread holds the lock)
                yield
                return
            self.db.execute("BEGIN")
            try:
                yield
            finally:
                self._rollback()  # it wrote nothing: ending it either way is the same

    def read(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self.lock:
            return self.db.execute(sql, params).fetchall()

    # -- the schema -------------------------------------------------------------------
    def schema_version(self) -> int | None:
        """The file's schema version; None for an empty file, 1 for one from before versions."""
        with self.lock:
            has_meta = self.db.execute(
                "SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'"
            ).fetchone()
            if not has_meta:
                return None
            r = self.db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        try:
            return int(r[0]) if r is not None else 1
        except (TypeError, ValueError):
            return 1

    def ensure_schema(
        self, *, what: str, schema: str, version: int, migrations: Mapping[int, str],
    ) -> None:
        """Create the schema, or migrate an older file forward; refuse a newer one.

        `migrations[n]` takes a file from version n-1 to n. The refusal comes before any
        write, so a newer dialer's file is left exactly as it was.
        """
        found = self.schema_version()
        if found is not None and found > version:
            raise SchemaTooNew(what, str(self.path), found, version)
        with self.write() as db:
            if found is not None:
                for n in range(found + 1, version + 1):
                    for stmt in migrations.get(n, "").split(";"):
                        if stmt.strip():
                            db.execute(stmt)
            for stmt in schema.split(";"):
                if stmt.strip():
                    db.execute(stmt)
            db.execute(
                "INSERT INTO meta(key, value) VALUES('schema_version', ?) "
                "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                (str(version),),
            )


class OnDatabase:
    """What the journal and the history share on top of their `Database` (`self._d`): close,
    `with`, and the write/read steps their methods use."""

    _d: Database

    def close(self) -> None:
        self._d.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _write(self) -> Any:
        """One write transaction (`Database.write`): whole or absent; a write problem becomes
        the owner's error (the journal: JournalWriteError, exit 73/74)."""
        return self._d.write()

    def _read(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        return self._d.read(sql, params)
