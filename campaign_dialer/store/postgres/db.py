"""Connections to the store database: one psycopg_pool `ConnectionPool` per process.

Synchronous on purpose: the dialer keeps blocking I/O off the event loop (it calls the
store from a worker thread, `anyio.to_thread`), and a thread-safe pool lets several such
threads share a few connections. Connections are in autocommit: every statement here is its
own transaction unless a method opens `conn.transaction()`, so no connection ever idles
inside a transaction holding row locks. psycopg prepares a statement server-side after its
5th execution (its default `prepare_threshold`): the hot statements (claim, rate slot,
intent) cost one round trip each and no re-planning.

Reachability. A database that is down when it is opened is known at once (one direct
connection first, bounded by libpq's `connect_timeout`: `[store] connect_timeout_s`), with
libpq's own words. Once open, an outage (a restart, a failover) is ridden out for up to
`outage_s`: a connection that died is noticed when it is taken from the pool (`_alive`, no
round trip) and replaced; a statement whose connection died under it is sent again when
that cannot change its meaning (reads, upserts, updates to a value), and a statement marked
`once` (whose COMMIT may or may not have happened: the intent, the claim) raises
`OutcomeUnknown` for its caller to resolve with its key. Past `outage_s`: StoreUnavailable
(exit 69), as a database that cannot be reached always was.

Errors leave as `PgStoreError` subclasses with redacted text (see `errors.redact`).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import psycopg
from psycopg import errors as pgerrors
from psycopg import pq
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from campaign_dialer import log
from campaign_dialer.exitcodes import ExitCode
from campaign_dialer.store.errors import JournalError, LiveLimitReached
from campaign_dialer.store.postgres import schema
from campaign_dialer.store.postgres.errors import (
    DuplicateIntent,
    OutcomeUnknown,
    PgStoreError,
    StoreUnavailable,
    StoreWriteError,
    protect,
    redact,
)

T = TypeVar("T")
LIVE_LIMIT_SQLSTATE = "CDL01"  # raised by the attempts_live_calls trigger
# Between two tries while the database is unreachable (seconds).
RETRY_EVERY_S = 0.25


def _alive(conn: psycopg.Connection[Any]) -> None:
    """The pool's check when a connection is taken: reads what the server sent meanwhile
    (a terminated session's FATAL and end of file) without a round trip, and refuses a
    connection that is gone, so the pool replaces it before a statement is sent on it."""
    if conn.closed or conn.broken:
        raise psycopg.OperationalError("the connection is closed")
    conn.pgconn.consume_input()  # raises OperationalError when the server closed it
    if conn.pgconn.status != pq.ConnStatus.OK:
        raise psycopg.OperationalError("the connection is lost")


def connection_lost(e: BaseException, conn: psycopg.Connection[Any] | None = None) -> bool:
    """The error is the connection's (the server went away, refused, timed out), not the
    statement's: the same statement may succeed on a new connection."""
    if isinstance(e, PoolTimeout):
        return True
    if conn is not None and (conn.broken or conn.closed):
        return True
    state = getattr(e, "sqlstate", None) or ""
    if state.startswith(("08", "57P")):  # connection exception; admin/crash shutdown
        return True
    return isinstance(e, psycopg.OperationalError) and not state


def describe(url: str) -> str:
    """`user@host:port/db` for messages: never the password, never query parameters."""
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
                 timeout: float | None = None, migrate: bool = True,
                 connect_timeout_s: float = 10.0, outage_s: float = 0.0) -> None:
        protect(url)
        self.where = describe(url)
        self._local = threading.local()
        self.connect_timeout_s = float(timeout if timeout is not None else connect_timeout_s)
        self.outage_s = float(outage_s)
        self._down_since: float | None = None
        self._down_lock = threading.Lock()
        self.log = log.get("store", database=self.where)
        # libpq's connect_timeout is whole seconds, at least 2 (it treats 1 as 2).
        kwargs = {"autocommit": True,
                  "connect_timeout": max(2, math.ceil(self.connect_timeout_s))}
        try:
            # One connection first, on its own: a database that is down or refuses us is
            # said at once in libpq's words, not after the pool's retries as a timeout.
            psycopg.connect(url, **kwargs).close()  # type: ignore[arg-type]
            self.pool = ConnectionPool(
                url, min_size=min_size, max_size=max_size, timeout=self.connect_timeout_s,
                open=False, kwargs=kwargs, name="campaign-dialer", check=_alive,
                reconnect_timeout=max(self.outage_s, self.connect_timeout_s) + 60.0,
            )
            self.pool.open(wait=True, timeout=self.connect_timeout_s)
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

    # -- outages --------------------------------------------------------------------
    def _down(self, e: BaseException) -> None:
        """The database did not answer: wait a moment and return (try again), or raise
        StoreUnavailable once it has been unreachable for `outage_s`."""
        now = time.monotonic()
        with self._down_lock:
            if self._down_since is None:
                self._down_since = now
                if self.outage_s > 0:
                    self.log.warning("store_unreachable", error=_first_line(e),
                                     outage_s=self.outage_s)
            down = now - self._down_since
        if down >= self.outage_s:
            err = translate(e, self.where)
            if self.outage_s > 0 and isinstance(err, StoreUnavailable):
                raise StoreUnavailable(
                    f"{err} (unreachable for {down:.0f}s; [store] outage_s is "
                    f"{self.outage_s:g})") from None
            raise err from None
        time.sleep(min(RETRY_EVERY_S, self.outage_s - down))

    def _up(self) -> None:
        if self._down_since is None:
            return
        with self._down_lock:
            since, self._down_since = self._down_since, None
        if since is not None:
            self.log.info("store_reconnected", outage_s=round(time.monotonic() - since, 2))

    def _getconn(self) -> psycopg.Connection[Any]:
        """A live connection from the pool, waiting out an outage (see `_down`)."""
        while True:
            left = self.connect_timeout_s
            if self._down_since is not None and self.outage_s > 0:
                left = min(left, max(
                    self.outage_s - (time.monotonic() - self._down_since), RETRY_EVERY_S))
            try:
                return self.pool.getconn(timeout=left)
            except (psycopg.Error, PoolTimeout) as e:
                if not connection_lost(e):
                    raise translate(e, self.where) from None
                self._down(e)

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection (autocommit; inside `snapshot`, this thread's snapshot
        connection); psycopg errors become the dialer's errors (`translate`). Taking it
        waits out an outage; what the block does is not repeated (see `attempt`)."""
        pinned = getattr(self._local, "conn", None)
        if pinned is not None:
            try:
                yield pinned
            except (psycopg.Error, PoolTimeout) as e:
                raise translate(e, self.where) from None
            return
        conn = self._getconn()
        try:
            yield conn
        except (psycopg.Error, PoolTimeout) as e:
            raise translate(e, self.where) from None
        finally:
            self.pool.putconn(conn)
        self._up()

    def attempt(self, fn: Callable[[psycopg.Connection[Any]], T], *, once: bool = False) -> T:
        """`fn(conn)`, done again on a new connection when the connection died under it,
        until `outage_s` (see the module doc). `once`: fn's effect may have been committed
        when its connection died; raise OutcomeUnknown instead of doing it again."""
        pinned = getattr(self._local, "conn", None)
        if pinned is not None:
            try:
                return fn(pinned)
            except (psycopg.Error, PoolTimeout) as e:
                raise translate(e, self.where) from None
        while True:
            conn = self._getconn()
            try:
                result = fn(conn)
            except (psycopg.Error, PoolTimeout) as e:
                if not connection_lost(e, conn):
                    raise translate(e, self.where) from None
                if once:
                    raise OutcomeUnknown(
                        f"{self.where}: the connection was lost before the answer: "
                        f"{_first_line(e)}") from None
                self._down(e)
                continue
            finally:
                self.pool.putconn(conn)
            self._up()
            return result

    def transact(self, fn: Callable[[psycopg.Connection[Any]], T], *, once: bool = False) -> T:
        """`fn(conn)` in one transaction, as `attempt` does it (all of it again, or
        OutcomeUnknown when `once`)."""
        def tx(conn: psycopg.Connection[Any]) -> T:
            with conn.transaction():
                return fn(conn)
        return self.attempt(tx, once=once)

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

    def execute(self, sql: str, params: Any = None, *, once: bool = False) -> int:
        """Run one statement; returns its row count."""
        return self.attempt(lambda c: max(c.execute(sql, params).rowcount, 0), once=once)

    def fetchone(self, sql: str, params: Any = None, *, once: bool = False) -> Any:
        return self.attempt(lambda c: c.execute(sql, params).fetchone(), once=once)

    def fetchall(self, sql: str, params: Any = None, *, once: bool = False) -> list[Any]:
        return self.attempt(lambda c: c.execute(sql, params).fetchall(), once=once)

    def dicts(self, sql: str, params: Any = None, *, once: bool = False) -> list[dict[str, Any]]:
        """Rows as dicts by column name."""
        def read(c: psycopg.Connection[Any]) -> list[dict[str, Any]]:
            with c.cursor(row_factory=dict_row) as cur:
                return cur.execute(sql, params).fetchall()
        return self.attempt(read, once=once)


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return redact(text.splitlines()[0] if text else type(e).__name__)
