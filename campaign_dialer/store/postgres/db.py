"""Connections to the store database: one psycopg_pool `ConnectionPool` per process.

Synchronous on purpose: the dialer keeps blocking I/O off the event loop (it calls the
store from a worker thread, `anyio.to_thread`), and a thread-safe pool lets several such
threads share a few connections. Connections are in autocommit: every statement here is its
own transaction unless a method opens `conn.transaction()`, so no connection ever idles
inside a transaction holding row locks. psycopg prepares a statement server-side after its
5th execution (its default `prepare_threshold`): the hot statements (claim, rate slot,
intent) cost one round trip each and no re-planning.

Errors leave as `PgStoreError` subclasses with redacted text (see `errors.redact`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import psycopg
from psycopg import errors as pgerrors
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from campaign_dialer.exitcodes import ExitCode
from campaign_dialer.store.errors import JournalError
from campaign_dialer.store.postgres import schema
from campaign_dialer.store.postgres.errors import (
    DuplicateIntent,
    LiveLimitReached,
    PgStoreError,
    StoreUnavailable,
    StoreWriteError,
    protect,
    redact,
)

T = TypeVar("T")
LIVE_LIMIT_SQLSTATE = "CDL01"  # raised by the attempts_live_calls trigger


def describe(url: str) -> str:
    """`user@host:port/db` for messages: never the password, never query parameters."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        p = conninfo_to_dict(url)
    except Exception:
        return "the store database"
    user = str(p.get("user", ""))
    host = p.get("host", "localhost")
    port = p.get("port", "5432")
    return f"{user + '@' if user else ''}{host}:{port}/{p.get('dbname', '')}"


def translate(e: BaseException, where: str) -> JournalError:
    """A psycopg error as the dialer's error, its text redacted."""
    text = redact(str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__)
    if isinstance(e, pgerrors.UniqueViolation):
        return DuplicateIntent(f"{where}: {text}")
    if isinstance(e, pgerrors.ReadOnlySqlTransaction | pgerrors.InsufficientPrivilege):
        return StoreWriteError(f"cannot write {where}: it is read-only ({text})",
                               ExitCode.CANTCREAT)
    if isinstance(e, pgerrors.DiskFull | pgerrors.InsufficientResources):
        return StoreWriteError(f"cannot write {where}: the disk is full or failing ({text})",
                               ExitCode.IOERR)
    if getattr(e, "sqlstate", None) == LIVE_LIMIT_SQLSTATE:
        return LiveLimitReached(f"{where}: {text}")
    if isinstance(e, psycopg.OperationalError | PoolTimeout):
        return StoreUnavailable(f"cannot reach {where}: {text}")
    return PgStoreError(f"{where}: {text}")


class Database:
    """A pool of connections to one store database, migrated on open."""

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 4,
                 timeout: float = 30.0, migrate: bool = True) -> None:
        protect(url)
        self.where = describe(url)
        self._local = threading.local()
        try:
            self.pool = ConnectionPool(
                url, min_size=min_size, max_size=max_size, timeout=timeout, open=False,
                kwargs={"autocommit": True}, name="campaign-dialer",
            )
            self.pool.open(wait=True, timeout=timeout)
        except (psycopg.Error, PoolTimeout) as e:
            raise translate(e, self.where) from None
        if migrate:
            try:
                with self.connection() as conn:
                    schema.migrate(conn, where=self.where)
            except BaseException:
                self.pool.close()
                raise

    def close(self) -> None:
        self.pool.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection (autocommit; inside `snapshot`, this thread's snapshot
        connection); psycopg errors become the dialer's errors (`translate`)."""
        pinned = getattr(self._local, "conn", None)
        try:
            if pinned is not None:
                yield pinned
                return
            with self.pool.connection() as conn:
                yield conn
        except (psycopg.Error, PoolTimeout) as e:
            raise translate(e, self.where) from None

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Every read of this thread inside sees one consistent state (REPEATABLE READ,
        READ ONLY: a write inside fails)."""
        if getattr(self._local, "conn", None) is not None:
            yield  # already inside one
            return
        with self.connection() as conn:
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            self._local.conn = conn
            try:
                yield
            finally:
                self._local.conn = None
                conn.execute("ROLLBACK")

    @contextmanager
    def transaction(self) -> Iterator[psycopg.Connection[Any]]:
        with self.connection() as conn, conn.transaction():
            yield conn

    def run(self, fn: Callable[[psycopg.Connection[Any]], T]) -> T:
        with self.connection() as conn:
            return fn(conn)

    def execute(self, sql: str, params: Any = None) -> int:
        """Run one statement; returns its row count."""
        with self.connection() as conn:
            return max(conn.execute(sql, params).rowcount, 0)

    def fetchone(self, sql: str, params: Any = None) -> Any:
        with self.connection() as conn:
            return conn.execute(sql, params).fetchone()

    def fetchall(self, sql: str, params: Any = None) -> list[Any]:
        with self.connection() as conn:
            return conn.execute(sql, params).fetchall()

    def dicts(self, sql: str, params: Any = None) -> list[dict[str, Any]]:
        """Rows as dicts by column name."""
        with self.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            return cur.execute(sql, params).fetchall()
