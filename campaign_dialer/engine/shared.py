"""Several processes on one campaign (the PostgreSQL store): claims, leases, shared limits.

With a coordinator (`store.Coordination`, given by `store.open_stores`), a run dials
only the rows it claimed (`SELECT ... FOR UPDATE SKIP LOCKED` under a lease its heartbeat
renews) instead of walking every row of the plan:

- at the start every process offers the same rows (`load_rows` is idempotent) and sets the
  campaign's global limits: `calls_per_second` and `requests_per_second` become one rate
  row each (`SharedRateLimiter`), `max_live_calls` the database's live-call cap;
- the producer claims rows when it has none due; a claimed row that a dead process left
  with an open intent is resolved exactly as crash recovery does (`Recovery._resume`:
  follow the placed call, look it up, replay the same key; never a fresh call);
- a row is settled after its work: finished (no further call due), kept (due again soon,
  its lease renewed), or released with a `not_before` for whoever is free then;
- the run ends when nothing is due anywhere that another process could not finish: rows a
  dead process held come free when its lease expires, and the survivors take them.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import anyio
import anyio.abc

from campaign_dialer import vocab
from campaign_dialer.store import Attempt

from .recovery import Recovery, row_for_attempt
from .rows import Row
from .schedule import seed

if TYPE_CHECKING:
    from campaign_dialer.store import Coordination

# A row due within this long stays with the process that holds it; later, it goes back to
# the store with its `not_before`, for whichever process is free then.
HOLD_S = 2.0
# While every worker waits at the live-call cap, one claim this often (a takeover's chance).
TAKEOVER_EVERY_S = 1.0


class Sharing(Recovery):
    """The claim side of the run; every method is a no-op path without a coordinator."""

    co: Coordination | None
    work: anyio.abc.TaskGroup
    _by_row: dict[int, Row]  # the rows offered to the store, by row number

    def _server_time(self, at: datetime) -> datetime:
        """`at` on the run's clock (a simulated one in tests) as the database's `now()`
        compares it: the same distance from now."""
        return datetime.now(UTC) + (at - self.clock.now())

    def _shared_setup(self) -> int:
        """In the lane, at the start: the campaign's global limits and its rows (idempotent:
        every process offers the same plan). Returns how many rows are not done."""
        from .pacing import REQUEST_HEADROOM

        co = self.co
        assert co is not None
        api = self.cfg.api
        co.ensure_campaign(max_live_calls=api.max_live_calls)
        co.configure_limits(calls_per_second=self.cfg.pacing.calls_per_second,
                            requests_per_second=api.requests_per_second * REQUEST_HEADROOM)
        self._by_row = {r.row: r for r in self.rows_by_person.values()}
        co.load_rows((r.row, r.person) for r in self._by_row.values() if r.person)
        return co.remaining()

    # -- claiming ---------------------------------------------------------------------
    def _take_claims(
        self, n: int, now: datetime,
    ) -> tuple[list[tuple[Row, list[Attempt]]], list[tuple[Row, datetime | None]]]:
        """In the lane: claim up to n rows; what to resume, what to schedule. Rows with
        nothing left to do are finished, rows due later released with their time."""
        co = self.co
        assert co is not None
        journal = self.journal.sync
        claimed = co.claim(n)
        if not claimed:
            return [], []
        by_row = self._by_row
        control = journal.control()
        resumes: list[tuple[Row, list[Attempt]]] = []
        due: list[tuple[Row, datetime | None]] = []
        done: list[int] = []
        for c in claimed:
            row = by_row.get(c.row) or self.rows_by_person.get(c.person)
            if c.open_intents:  # a dead process's calls: resolve with their keys
                atts = [journal.attempt(oi.attempt_id) for oi in c.open_intents]
                resumes.append((row or row_for_attempt(atts[0]), atts))
                self.log.warning("row_taken_over", row=c.row, from_process=c.taken_from,
                                 open_intents=len(atts))
                continue
            if row is None:  # not in this process's plan: leave it to one whose plan has it
                co.release(c.row, not_before=self._server_time(
                    now + timedelta(seconds=co.lease_seconds)))
                continue
            attempts = journal.attempts_for(c.person)
            still_open = [a for a in attempts if a.is_open]
            if still_open:
                resumes.append((row, still_open))
                continue
            plan = seed([row], self.rows_by_person, {c.person: attempts}, control, self.policy,
                        now)
            if not plan:
                done.append(c.row)
                continue
            _, not_before = plan[0]
            if not_before is not None and not_before > now + timedelta(seconds=HOLD_S):
                co.release(c.row, not_before=self._server_time(not_before))
                continue
            due.append((row, not_before))
        if done:
            co.finish(done)
        return resumes, due

    _forced_at = 0.0

    async def _waiting_for_live_room(self) -> None:
        """At the global cap, every worker may be waiting while a dead process's calls (its
        open intents count as live) are the ones filling the cap: keep claiming, at most
        once a second, so they are taken over when its lease expires and the cap frees."""
        now = time.monotonic()
        if now - self._forced_at >= TAKEOVER_EVERY_S:
            self._forced_at = now
            await self._claim_more(force=True)

    async def _claim_more(self, *, force: bool = False) -> bool:
        """Claim rows for the free workers (the producer found none due); True if any.
        `force`: one row even when every worker is busy."""
        room = self.cfg.api.max_live_calls - self.schedule.in_flight - len(self.schedule)
        if force:
            room = max(room, 1)
        if room <= 0:
            return False
        resumes, due = await self.lane.run(self._take_claims, room, self.clock.now())
        for row, atts in resumes:
            self.schedule.in_flight += 1
            self.work.start_soon(self._resume_claimed, row, atts)
        for row, not_before in due:
            self.schedule.push(row, not_before)
        return bool(resumes or due)

    async def _others_pending(self) -> bool:
        """Nothing here to do: is there still work another process could leave to us? (A
        dead process's rows come free when its lease expires.) Waits a moment if so."""
        co = self.co
        assert co is not None
        pending = await self.lane.run(co.remaining if self.opts.wait else co.due_elsewhere)
        if pending:
            with anyio.move_on_after(min(1.0, co.lease_seconds / 4)):
                await self.schedule.changed.wait()
        return bool(pending)

    async def _resume_claimed(self, row: Row, attempts: Sequence[Attempt]) -> None:
        try:
            for a in attempts:
                await self._resume(a)
            await self._settle(row)
        finally:
            self.schedule.in_flight -= 1
            self.schedule.poke()

    # -- after a row's work -----------------------------------------------------------
    async def _settle(self, row: Row) -> None:
        """Finish, keep or release a claimed row once its dial (or resume) is over."""
        co = self.co
        if co is None:
            return
        now = self.clock.now()
        ts = self.schedule.when(row)
        if ts is not None:
            at = datetime.fromtimestamp(ts, UTC)
            if at > now + timedelta(seconds=HOLD_S):
                self.schedule.take(row)
                await self.lane.run(lambda: co.release(row.row, not_before=self._server_time(at)))
            return
        fate = self.dial_time_fates.get(row.row)
        stopping = self.stopping or self._stop is not None

        def work() -> None:
            attempts = self.journal.sync.attempts_for(row.person or "")
            if any(a.is_open for a in attempts):  # unconfirmed: whoever holds it next decides
                co.release(row.row, not_before=self._server_time(
                    now + timedelta(seconds=co.lease_seconds)))
                return
            nxt = self.policy.next(row, attempts, now)
            if nxt is None or (fate is not None and fate.disposition != vocab.PENDING):
                co.finish([row.row])
            elif not stopping:
                co.release(row.row, not_before=None if nxt[1] is None
                           else self._server_time(nxt[1]))

        await self.lane.run(work)
