"""Several dialer processes on one campaign: registry, row leases, control, the fenced intent.

One `Coordinator` per process and campaign. Every hot operation is ONE statement (one round
trip), built from CTEs:

- `claim(n)`: procrastinate's fetch pattern (`SELECT ... FOR UPDATE SKIP LOCKED` in a CTE
  feeding `UPDATE ... RETURNING`) over rows that are not done and whose lease is free or
  expired; the same statement hands over the open attempts (intent/placed) of rows taken
  from a dead process, with their idempotency keys: the taker replays the key or looks the
  call up, exactly as a resumed run does, and never dials such a row afresh.
- `heartbeat()`: renews this process's heartbeat and all its leases (procrastinate's worker
  heartbeat, pgqueuer's job heartbeat) and returns the campaign's control state, so pause,
  resume and cancel reach every process within one heartbeat.
- `record_intent(...)`: the intent INSERT is fenced by the lease (it inserts nothing unless
  this process still holds the row's lease); the live-call trigger (see `schema`) counts it
  in the same transaction and refuses it past `max_live_calls`; UNIQUE(campaign, person,
  attempt) refuses a second intent for the same attempt. A process that stalled past its
  lease therefore cannot start a call on a row another process took over.
"""

from __future__ import annotations

import itertools
import json
import os
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import anyio
from psycopg.types.json import Jsonb

from campaign_dialer.store.errors import LeaseLost
from campaign_dialer.store.model import ClaimedRow, OpenIntent, ProcessInfo
from campaign_dialer.store.postgres import limits
from campaign_dialer.store.postgres.db import Database
from campaign_dialer.store.postgres.errors import OutcomeUnknown, PgStoreError
from campaign_dialer.store.postgres.limits import SharedRateLimiter

CONTROL_STATES = ("active", "paused", "canceled")
# Rows offered per INSERT (`Coordination.load_rows`): the Python values of a batch at a time.
LOAD_BATCH_ROWS = 50_000


@dataclass(frozen=True)
class Heartbeat:
    control: str  # "active" | "paused" | "canceled"
    held: int  # rows whose lease this heartbeat renewed (one being finished may be skipped)


_CLAIM = """
WITH picked AS (
    SELECT r.campaign, r.row, r.lease_owner AS prev
    FROM rows r
    WHERE r.campaign = %(c)s AND NOT r.done
      AND (r.not_before IS NULL OR r.not_before <= now())
      AND (r.lease_until IS NULL OR r.lease_until < now())
    ORDER BY r.row
    LIMIT %(n)s
    FOR UPDATE OF r SKIP LOCKED
), leased AS (
    UPDATE rows r
    SET lease_owner = %(p)s,
        lease_until = now() + make_interval(secs => %(lease)s),
        not_before = NULL,
        takeovers = r.takeovers + (picked.prev IS NOT NULL AND picked.prev <> %(p)s)::int
    FROM picked
    WHERE r.campaign = picked.campaign AND r.row = picked.row
    RETURNING r.row, r.person, nullif(picked.prev, %(p)s) AS prev
), handed AS (
    UPDATE attempts a SET owner = %(p)s
    FROM leased
    WHERE a.campaign = %(c)s AND a.row = leased.row AND a.state IN ('intent', 'placed')
    RETURNING a.row, a.id, a.attempt, a.idem_key, a.state, a.call_id, a.body
)
SELECT leased.row, leased.person, leased.prev,
       handed.id, handed.attempt, handed.idem_key, handed.state, handed.call_id, handed.body
FROM leased LEFT JOIN handed ON handed.row = leased.row
ORDER BY leased.row, handed.attempt
"""

_HEARTBEAT = """
WITH me AS (
    UPDATE processes SET heartbeat_at = now() WHERE id = %(p)s AND ended_at IS NULL
    RETURNING id
), mine AS (
    -- SKIP LOCKED: a row this process is finishing or releasing right now is not waited
    -- for (it needs no renewal), so a heartbeat never deadlocks with its own workers.
    SELECT campaign, row FROM rows
    WHERE lease_owner = %(p)s AND NOT done AND EXISTS (SELECT 1 FROM me)
    FOR UPDATE SKIP LOCKED
), renewed AS (
    UPDATE rows r SET lease_until = now() + make_interval(secs => %(lease)s)
    FROM mine WHERE r.campaign = mine.campaign AND r.row = mine.row
    RETURNING 1
)
SELECT c.control, (SELECT count(*) FROM renewed), EXISTS (SELECT 1 FROM me)
FROM campaigns c WHERE c.name = %(c)s
"""

_INTENT = """
INSERT INTO attempts (campaign, person, row, attempt, idem_key, body, state, intent_at,
                      evidence, run_id, owner, updated_at)
SELECT %(c)s, %(person)s, %(row)s, %(attempt)s, %(key)s, %(body)s, 'intent', %(ts)s,
       %(evidence)s, %(run)s, %(p)s, %(ts)s
WHERE EXISTS (
    SELECT 1 FROM rows
    WHERE campaign = %(c)s AND row = %(row)s AND lease_owner = %(p)s AND lease_until > now()
      AND NOT done
)
RETURNING id
"""


class Coordinator:
    """This process's part in a campaign several processes run at once (see module doc)."""

    def __init__(self, db: Database, campaign: str, *, lease_seconds: float = 30.0) -> None:
        if lease_seconds <= 0:
            raise ValueError("lease_seconds must be positive")
        self.db = db
        self.campaign = campaign
        self.lease_seconds = float(lease_seconds)
        self.process_id: int | None = None
        # The campaign's shared rates (`configure_limits`), `aiolimiter.AsyncLimiter`
        # drop-ins: made here, on no round trip, so the run can take them on its loop.
        self.calls_limiter = SharedRateLimiter(db, campaign, limits.CALLS)
        self.requests_limiter = SharedRateLimiter(db, campaign, limits.REQUESTS)
        # Rows this process claimed and has not finished or released: after a claim whose
        # answer was lost with its connection, any other row leased to it is given back.
        self._held: set[int] = set()

    # -- the campaign -----------------------------------------------------------------
    def ensure_campaign(self, *, max_live_calls: int | None = None) -> None:
        """Create the campaign's row if absent; set its global live-call cap."""
        self.db.execute(
            "INSERT INTO campaigns(name, max_live_calls) VALUES (%s, %s) "
            "ON CONFLICT (name) DO UPDATE SET max_live_calls = excluded.max_live_calls",
            (self.campaign, max_live_calls),
        )

    def configure_limits(self, *, calls_per_second: float, requests_per_second: float) -> None:
        """Set the campaign's shared rates (`calls` and `requests`: every process of it takes
        its slots from these rows, see `limits`)."""
        limits.configure(self.db, self.campaign, limits.CALLS, calls_per_second)
        limits.configure(self.db, self.campaign, limits.REQUESTS, requests_per_second)

    def load_rows(self, rows: Iterable[tuple[int, str]]) -> int:
        """Offer the plan's callable rows (row number, person); idempotent: every process
        loads the same plan, the first one inserts. Returns how many were new.

        Sent `LOAD_BATCH_ROWS` at a time, in one transaction: a million rows as one pair of
        array parameters was a list of tuples and two arrays' text of every row at once
        (a process's highest point at the start, ~450 MB, and a heap left fragmented)."""
        new = 0
        it = iter(rows)
        with self.db.transaction() as conn:
            while batch := list(itertools.islice(it, LOAD_BATCH_ROWS)):
                cur = conn.execute(
                    "INSERT INTO rows(campaign, row, person) "
                    "SELECT %s, r, p FROM unnest(%s::integer[], %s::text[]) AS t(r, p) "
                    "ON CONFLICT (campaign, row) DO NOTHING",
                    (self.campaign, [r for r, _ in batch], [p for _, p in batch]),
                )
                new += max(cur.rowcount, 0)
                del batch
        return new

    def control(self) -> str:
        row = self.db.fetchone("SELECT control FROM campaigns WHERE name = %s", (self.campaign,))
        return str(row[0]) if row else "active"

    def set_control(self, state: str) -> None:
        """pause / resume / cancel for every process (they read it with each heartbeat).
        A canceled campaign stays canceled."""
        if state not in CONTROL_STATES:
            raise ValueError(state)
        row = self.db.fetchone(
            "UPDATE campaigns SET control = %s, control_at = now() "
            "WHERE name = %s AND (control <> 'canceled' OR %s = 'canceled') RETURNING 1",
            (state, self.campaign, state),
        )
        if row is None:
            raise PgStoreError(
                f"campaign {self.campaign!r}: canceled (a canceled campaign stays canceled) "
                "or unknown"
            )

    # -- the registry -----------------------------------------------------------------
    def register(self, *, host: str | None = None, pid: int | None = None) -> int:
        """Enter this process in the campaign's registry; returns its id."""
        row = self.db.fetchone(
            "INSERT INTO processes(campaign, host, pid, lease_seconds) VALUES (%s, %s, %s, %s) "
            "RETURNING id",
            (self.campaign, host or socket.gethostname(), pid or os.getpid(),
             self.lease_seconds),
        )
        self.process_id = int(row[0])
        return self.process_id

    def _me(self) -> int:
        if self.process_id is None:
            raise PgStoreError("register() this process before claiming rows")
        return self.process_id

    def heartbeat(self) -> Heartbeat:
        """Call every lease_seconds / 3 or so: renews every lease this process holds."""
        row = self.db.fetchone(
            _HEARTBEAT, {"p": self._me(), "c": self.campaign, "lease": self.lease_seconds}
        )
        if row is None:
            raise PgStoreError(f"campaign {self.campaign!r} is not in the store")
        if not row[2]:
            raise LeaseLost(f"process {self.process_id} has ended; it holds no rows")
        return Heartbeat(control=str(row[0]), held=int(row[1]))

    async def keep_alive(
        self, on_control: Callable[[str], None], *, every: float | None = None
    ) -> None:
        """Heartbeat forever (every lease/3 by default, each round trip in a worker
        thread), calling `on_control` when the campaign's control state changes. Run it in
        the run's task group; it raises LeaseLost if this process was ended meanwhile."""
        period = every if every is not None else self.lease_seconds / 3
        last: str | None = None
        while True:
            beat = await anyio.to_thread.run_sync(self.heartbeat)
            if beat.control != last:
                last = beat.control
                on_control(beat.control)
            await anyio.sleep(period)

    def end(self, exit_code: int, summary: dict[str, Any] | None = None) -> None:
        """Leave the registry: rows not done go back to the others at once (no lease wait)."""
        me = self._me()
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE rows SET lease_owner = NULL, lease_until = NULL "
                "WHERE lease_owner = %s AND NOT done", (me,),
            )
            conn.execute(
                "UPDATE processes SET ended_at = now(), exit_code = %s, summary = %s "
                "WHERE id = %s",
                (exit_code, Jsonb(summary or {}), me),
            )

    def processes(self, *, include_ended: bool = False) -> list[ProcessInfo]:
        """The registry, for `status`: each process's live calls and last heartbeat."""
        rows = self.db.fetchall(
            "SELECT p.id, p.host, p.pid, p.started_at, p.heartbeat_at, p.ended_at, p.exit_code,"
            " (SELECT count(*) FROM attempts a WHERE a.owner = p.id"
            "   AND a.state IN ('intent', 'placed')),"
            " (SELECT count(*) FROM rows r WHERE r.lease_owner = p.id AND NOT r.done"
            "   AND r.lease_until > now()),"
            " p.ended_at IS NULL AND p.heartbeat_at + make_interval(secs => p.lease_seconds)"
            "   > now() "
            "FROM processes p WHERE p.campaign = %s AND (%s OR p.ended_at IS NULL) "
            "ORDER BY p.id",
            (self.campaign, include_ended),
        )
        return [ProcessInfo(*r) for r in rows]

    # -- rows -------------------------------------------------------------------------
    def claim(self, n: int) -> list[ClaimedRow]:
        """Lease up to n free rows (or rows whose lease expired) for this process."""
        if n <= 0:
            return []
        try:
            found = self.db.fetchall(
                _CLAIM, {"c": self.campaign, "n": n, "p": self._me(),
                         "lease": self.lease_seconds}, once=True,
            )
        except OutcomeUnknown:
            # The claim may have leased rows we never heard of: give back every row leased
            # to this process that it does not know it holds (their open intents go to
            # whoever claims them next, as a dead process's do). Nothing claimed this time.
            self.db.execute(
                "UPDATE rows SET lease_owner = NULL, lease_until = NULL "
                "WHERE campaign = %s AND lease_owner = %s AND NOT done "
                "AND NOT (row = ANY(%s))", (self.campaign, self._me(), sorted(self._held)),
            )
            return []
        out: dict[int, tuple[str, int | None, list[OpenIntent]]] = {}
        for row, person, prev, aid, attempt, key, state, call_id, body in found:
            entry = out.setdefault(row, (person, prev, []))
            if aid is not None:
                entry[2].append(OpenIntent(int(aid), int(attempt), key, state, call_id,
                                           json.loads(body or "{}")))
        self._held.update(out)
        return [
            ClaimedRow(row=r, person=p, taken_from=prev, open_intents=tuple(intents))
            for r, (p, prev, intents) in out.items()
        ]

    def release(self, row: int, *, not_before: datetime | None = None) -> None:
        """Give a row back undone (say, outside its calling hours until `not_before`)."""
        self._held.discard(row)
        self.db.execute(
            "UPDATE rows SET lease_owner = NULL, lease_until = NULL, not_before = %s "
            "WHERE campaign = %s AND row = %s AND lease_owner = %s",
            (not_before, self.campaign, row, self._me()),
        )

    def finish(self, rows: Sequence[int]) -> int:
        """These rows need no more calls (their fate is final); returns how many were ours."""
        if not rows:
            return 0
        self._held.difference_update(rows)
        # Rows locked in row order: two finishes never wait on each other in a cycle.
        return self.db.execute(
            "UPDATE rows r SET done = true, lease_owner = NULL, lease_until = NULL "
            "FROM (SELECT campaign, row FROM rows WHERE campaign = %s AND row = ANY(%s) "
            "      AND lease_owner = %s ORDER BY row FOR UPDATE) AS mine "
            "WHERE r.campaign = mine.campaign AND r.row = mine.row",
            (self.campaign, sorted(rows), self._me()),
        )

    def due_elsewhere(self) -> int:
        """Rows not done and due now that this process does not hold: free ones, and ones
        other processes hold (a dead process's come free when its lease expires). While
        any remain, this process keeps claiming: that is how a dead process's rows get
        finished by the others."""
        row = self.db.fetchone(
            "SELECT count(*) FROM rows WHERE campaign = %s AND NOT done "
            "AND (not_before IS NULL OR not_before <= now()) "
            "AND lease_owner IS DISTINCT FROM %s", (self.campaign, self._me()),
        )
        return int(row[0])

    def remaining(self) -> int:
        row = self.db.fetchone(
            "SELECT count(*) FROM rows WHERE campaign = %s AND NOT done", (self.campaign,)
        )
        return int(row[0])

    # -- intents and live calls -------------------------------------------------------
    def record_intent(
        self, *, person: str, row: int, attempt: int, idem_key: str, body: dict[str, Any],
        evidence: dict[str, Any], run_id: int | None, ts: str,
    ) -> int:
        """Commit an intent before its POST; returns the attempt id.

        Raises LeaseLost (this process no longer holds the row), LiveLimitReached (the
        campaign is at max_live_calls) or DuplicateIntent (that attempt exists already).
        """
        params = {
            "c": self.campaign, "person": person, "row": row, "attempt": attempt,
            "key": idem_key, "body": json.dumps(body, sort_keys=True), "ts": ts,
            "evidence": json.dumps(evidence),
            "run": run_id, "p": self._me(),
        }
        while True:
            try:
                row_ = self.db.fetchone(_INTENT, params, once=True)
                break
            except OutcomeUnknown:
                # The connection died before the INSERT's answer: committed or not, the
                # attempt's key says. Ours: it was committed (its POST replays that key,
                # which is safe); another process's: the row is theirs; none: not
                # committed, insert it again (same key, same attempt: never a fresh call).
                found = self.db.fetchone(
                    "SELECT id, owner FROM attempts WHERE campaign = %s AND person = %s "
                    "AND attempt = %s AND idem_key = %s",
                    (self.campaign, person, attempt, idem_key),
                )
                if found is not None and found[1] == params["p"]:
                    return int(found[0])
                if found is not None:
                    raise LeaseLost(f"row {row}: another process recorded this attempt") \
                        from None
        if row_ is None:
            raise LeaseLost(
                f"row {row}: this process no longer holds its lease; another process has it"
            )
        return int(row_[0])

    def live_calls(self) -> int:
        row = self.db.fetchone(
            "SELECT live_calls FROM campaigns WHERE name = %s", (self.campaign,)
        )
        return int(row[0]) if row else 0
