"""Several processes on one campaign (the team database): rows by claim, under leases.

`ClaimSource` is the `RowSource` of a campaign whose store is shared (PostgreSQL: chosen by
`commands.assemble`, which hands it the store's `Coordination`). A run
dials only the rows it claimed (`SELECT ... FOR UPDATE SKIP LOCKED` under a lease its
heartbeat renews) instead of walking every row of the plan:

- at the start every process offers the same rows (`load_rows` is idempotent) and sets the
  campaign's global limits (`configure_limits`: the calls and requests rates the store's
  limiters in `Limits.shared` share), and `max_live_calls` becomes the database's live-call
  cap;
- the producer claims rows when it has none due; a claimed row that a dead process left
  with an open intent is resolved exactly as crash recovery does (`Recovery.resume`:
  follow the placed call, look it up, replay the same key; never a fresh call);
- a row is settled after its work: finished (no further call due), kept (due again soon,
  its lease renewed), or released with a `not_before` for whoever is free then;
- the run ends when nothing is due anywhere that another process could not finish: rows a
  dead process held come free when its lease expires, and the survivors take them.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import anyio
import anyio.to_thread
import numpy as np
import pyarrow.compute as pc

from campaign_dialer import vocab

from .base import Opening, Refill, RunContext
from .columns import PlanColumns, RowPositions, text
from .pacing import REQUEST_HEADROOM
from .rows import Row, row_for_attempt
from .schedule import seed
from .stored_plan import PersonIndex

if TYPE_CHECKING:
    from campaign_dialer.store import Coordination

# A row due within this long stays with the process that holds it; later, it goes back to
# the store with its `not_before`, for whichever process is free then.
HOLD_S = 2.0
# While every worker waits at the live-call cap, one claim this often (a takeover's chance).
TAKEOVER_EVERY_S = 1.0
# A shared campaign at its global live-call cap: a worker asks again after about this long.
LIVE_RETRY_S = 0.05


# The journal's meta key for the digest of the rows last offered to the database.
OFFERED_META = "offered_rows"


class OfferedRows(Mapping[int, Row]):
    """The rows a process offers to the store (each person's dialing row), by row number,
    answered from the plan's columns; a row is made when asked for."""

    def __init__(self, rows: Sequence[Row], cols: PlanColumns, positions: np.ndarray) -> None:
        self._rows = rows
        self._positions = np.sort(np.asarray(positions, dtype=np.int64))
        self._numbers = np.asarray(cols.row, dtype=np.int64)[self._positions]
        self._where = RowPositions(self._numbers)
        self._people = text(cols.person).take(self._positions) if len(self._positions) else (
            text(cols.person).slice(0, 0))

    def digest(self) -> str:
        """A digest of the rows offered (row numbers and people)."""
        h = hashlib.blake2b(digest_size=20)
        h.update(np.ascontiguousarray(self._numbers).tobytes())
        for buf in self._people.buffers():
            if buf is not None:
                h.update(buf)
        h.update(len(self._numbers).to_bytes(8, "little"))
        return h.hexdigest()

    def numbers_and_people(self, batch: int = 50_000) -> Iterator[tuple[int, str]]:
        """(row number, person) of every row offered, made `batch` rows at a time (a
        store that sends them in batches holds no Python value of every row)."""
        for lo in range(0, len(self._numbers), batch):
            yield from zip(self._numbers[lo:lo + batch].tolist(),
                           self._people.slice(lo, batch).to_pylist(), strict=True)

    def __getitem__(self, row: int) -> Row:
        k = self._where.position(int(row))
        if k is None:
            raise KeyError(row)
        return self._rows[int(self._positions[k])]

    def __iter__(self) -> Iterator[int]:
        return iter(self._numbers.tolist())

    def __len__(self) -> int:
        return len(self._numbers)


class ClaimSource:
    """Rows claimed from the team database, shared with the campaign's other processes."""

    open_ended = True

    def __init__(
        self, coordinator: Coordination, columns: PlanColumns | None = None,
    ) -> None:
        """`columns`: the plan's rows as columns (the rows offered are read from them; a row
        is made only when claimed); without, every row offered is made at the start."""
        self.coordinator = coordinator
        self._columns = columns
        self._ctx: RunContext | None = None
        self._by_row: Mapping[int, Row] = {}  # the rows offered to the store, by row number
        self._rows: Sequence[Row] = ()
        self._rows_by_person: Mapping[str, Row] = {}
        self._forced_at = 0.0

    @property
    def ctx(self) -> RunContext:
        assert self._ctx is not None, "open() first"
        return self._ctx

    def _server_time(self, at: datetime) -> datetime:
        """`at` on the run's clock (a simulated one in tests) as the database's `now()`
        compares it: the same distance from now."""
        return datetime.now(UTC) + (at - self.ctx.clock.now())

    def open(
        self, ctx: RunContext, rows: Sequence[Row], rows_by_person: Mapping[str, Row],
    ) -> Opening:
        """In the lane, at the start: the campaign's global limits and its rows (idempotent:
        every process offers the same plan). Rows come later, by claim."""
        self._ctx = ctx
        self._rows, self._rows_by_person = rows, rows_by_person
        co = self.coordinator
        api = ctx.cfg.api
        co.ensure_campaign(max_live_calls=api.max_live_calls)
        co.configure_limits(calls_per_second=ctx.cfg.pacing.calls_per_second,
                            requests_per_second=api.requests_per_second * REQUEST_HEADROOM)
        cols = self._columns
        if cols is not None and isinstance(rows_by_person, PersonIndex):
            offered = OfferedRows(rows, cols, rows_by_person.first_positions())
            self._by_row = offered
            # The same rows offered before (by this process or another): a million-row plan
            # is not sent to the database again by every process at every start.
            journal = ctx.journal.sync
            digest = offered.digest()
            if journal.get_meta(OFFERED_META) != digest:
                co.load_rows(offered.numbers_and_people())
                journal.set_meta(OFFERED_META, digest)
        else:
            self._by_row = {r.row: r for r in rows_by_person.values()}
            co.load_rows((r.row, r.person) for r in self._by_row.values() if r.person)
        return Opening(co.remaining())

    # -- claiming ---------------------------------------------------------------------
    async def refill(self, room: int) -> Refill:
        if room <= 0:
            return Refill()
        return await self.ctx.lane.run(self._take_claims, room, self.ctx.clock.now())

    def _take_claims(self, n: int, now: datetime) -> Refill:
        """In the lane: claim up to n rows; what to resume, what to schedule. Rows with
        nothing left to do are finished, rows due later released with their time."""
        co, ctx = self.coordinator, self.ctx
        journal = ctx.journal.sync
        claimed = co.claim(n)
        if not claimed:
            return Refill()
        by_row, by_person = self._by_row, self._rows_by_person
        control = journal.control()
        got = Refill()
        done: list[int] = []
        for c in claimed:
            row = by_row.get(c.row) or by_person.get(c.person)
            if c.open_intents:  # a dead process's calls: resolve with their keys
                atts = [journal.attempt(oi.attempt_id) for oi in c.open_intents]
                got.resumes.append((row or row_for_attempt(atts[0]), atts))
                ctx.log.warning("row_taken_over", row=c.row, from_process=c.taken_from,
                                open_intents=len(atts))
                continue
            if row is None:  # not in this process's plan: leave it to one whose plan has it
                co.release(c.row, not_before=self._server_time(
                    now + timedelta(seconds=co.lease_seconds)))
                continue
            attempts = journal.attempts_for(c.person)
            still_open = [a for a in attempts if a.is_open]
            if still_open:
                got.resumes.append((row, still_open))
                continue
            plan = seed([row], by_person, {c.person: attempts}, control, ctx.policy, now)
            if not plan:
                done.append(c.row)
                continue
            _, not_before = plan[0]
            if not_before is not None and not_before > now + timedelta(seconds=HOLD_S):
                co.release(c.row, not_before=self._server_time(not_before))
                continue
            got.due.append((row, not_before))
        if done:
            co.finish(done)
        return got

    async def others_pending(self) -> bool:
        """Nothing here to do: is there still work another process could leave to us? (A
        dead process's rows come free when its lease expires.) Waits a moment if so."""
        co, ctx = self.coordinator, self.ctx
        pending = await ctx.lane.run(co.remaining if ctx.state.opts.wait else co.due_elsewhere)
        if pending:
            with anyio.move_on_after(min(1.0, co.lease_seconds / 4)):
                await ctx.state.schedule.changed.wait()
        return bool(pending)

    def waiting_by(self, until: datetime) -> list[Row]:
        """The rows wait in the database, not on this process's schedule: every row the plan
        found callable that no attempt settles waits as well."""
        cols = self._columns
        if cols is None:
            return [r for r in self._rows if r.disposition == vocab.ELIGIBLE]
        eligible = np.flatnonzero(np.asarray(pc.fill_null(
            pc.equal(text(cols.disposition), vocab.ELIGIBLE), False), dtype=bool))
        return [self._rows[int(i)] for i in eligible]

    async def run_beside(self, on_control: Callable[[str], None]) -> None:
        """Renews this process's leases; reads the campaign's control state."""
        await self.coordinator.keep_alive(on_control)

    # -- the live-call cap ------------------------------------------------------------
    async def until_live_room(self, on_wait: Callable[[], Awaitable[None]]) -> None:
        """Wait while the campaign is at its global live-call cap (every process's calls);
        the database's trigger refuses an intent past it anyway. At the cap, every worker
        may be waiting while a dead process's calls (its open intents count as live) are
        the ones filling it: `on_wait` (a forced claim) at most once a second meanwhile, so
        they are taken over when its lease expires and the cap frees."""
        ctx, co = self.ctx, self.coordinator
        ctx.lane.flush()  # finals held back by `defer` free their room first
        cap = ctx.cfg.api.max_live_calls
        while not ctx.state.stopping and await anyio.to_thread.run_sync(co.live_calls) >= cap:
            now = time.monotonic()
            if now - self._forced_at >= TAKEOVER_EVERY_S:
                self._forced_at = now
                await on_wait()
            await anyio.sleep(LIVE_RETRY_S * (1 + random.random()))

    # -- after a row's work -----------------------------------------------------------
    async def settle(self, row: Row) -> None:
        """Finish, keep or release a claimed row once its dial (or resume) is over."""
        co, ctx = self.coordinator, self.ctx
        state = ctx.state
        now = ctx.clock.now()
        ts = state.schedule.when(row)
        if ts is not None:
            at = datetime.fromtimestamp(ts, UTC)
            if at > now + timedelta(seconds=HOLD_S):
                state.schedule.take(row)
                await ctx.lane.run(lambda: co.release(row.row, not_before=self._server_time(at)))
            return
        fate = state.dial_time_fates.get(row.row)
        stopping = state.ending
        journal, policy = ctx.journal.sync, ctx.policy

        def work() -> None:
            attempts = journal.attempts_for(row.person or "")
            if any(a.is_open for a in attempts):  # unconfirmed: whoever holds it next decides
                co.release(row.row, not_before=self._server_time(
                    now + timedelta(seconds=co.lease_seconds)))
                return
            nxt = policy.next(row, attempts, now)
            if nxt is None or (fate is not None and fate.disposition != vocab.PENDING):
                co.finish([row.row])
            elif not stopping:
                co.release(row.row, not_before=None if nxt[1] is None
                           else self._server_time(nxt[1]))

        await ctx.lane.run(work)

    async def close(self) -> None:
        return None  # the journal's `end_run` leaves the registry and frees unfinished rows
