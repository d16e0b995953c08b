"""Where a run's rows come from: one `RowSource`, chosen once by the caller (`commands.assemble`).

The engine holds the rows it is working on in its schedule (`schedule.Schedule`: which row
is due next, in the order the campaign asks for); a source fills it and takes rows back:

- `LocalSchedule` (here): the plan's rows and the local journal (SQLite); every row that
  may still be dialed goes on the schedule at the start, and the run ends when it is empty;
- `shared.ClaimSource`: claims from the team database (PostgreSQL), a few rows at a time,
  under leases, shared with the other processes running the campaign.

A third source plugs in by implementing the protocol below; the engine asks nothing else.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from campaign_dialer.store import Attempt

from .rows import Row
from .schedule import seed

if TYPE_CHECKING:
    from .base import RunContext

@dataclass
class Opening:
    """What a source hands the run at its start."""

    # Rows not done yet (the progress display's denominator); None: the rows the schedule
    # holds once `due` is on it.
    to_dial: int | None = None
    # Attempts a previous run left open, resolved first (never a fresh call for them).
    open_attempts: list[Attempt] = field(default_factory=list)
    # Rows for the schedule, each not before when (None: now).
    due: list[tuple[Row, datetime | None]] = field(default_factory=list)


@dataclass
class Refill:
    """Rows a source hands the run later, when its schedule has nothing due."""

    # Rows with open attempts to resolve (e.g. a dead process's intents), with them.
    resumes: list[tuple[Row, list[Attempt]]] = field(default_factory=list)
    due: list[tuple[Row, datetime | None]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.resumes or self.due)


class RowSource(Protocol):
    """Where the rows of a run come from, and where they go when the run is done with them.

    The engine calls, in this order:

    1. `open(ctx, rows, rows_by_person)` once, in the lane (a worker thread; blocking store
       calls are fine there), after the run is begun in the journal: set up whatever the
       source needs and return the first rows (`Opening`). A batch source returns its first
       batch here, in schedule order.
    2. `refill(room)` from the producer whenever the schedule has no row due now and a
       worker is free: up to `room` more rows (`room` = free workers less the rows already
       waiting on the schedule). Cheap when there is nothing to add (a local schedule
       returns at once); a batch source reads its next batch here (through
       `ctx.lane.run`, never on the loop). Rows due later may come with their `not_before`.
    3. `settle(row)` after each row's dial (or resume): the row's work in this run is over
       for now. `ctx.state.schedule.when(row)` says if it is due again (a redial), and
       `ctx.state.dial_time_fates` what the gate said; a claim source finishes, keeps or
       releases the row; a local one has nothing to do. Rows deferred by the gate stay on
       the schedule (`ctx.state.schedule`), or go back to the source here.
    4. `close()` once at the run's end (before the journal's `end_run`): hand back what is
       still held (a batch not dialed) for the next run.

    Meanwhile `run_beside(on_control)` runs for the whole run in its task group (a lease
    heartbeat; `on_control` with the campaign's control state when it changes), and:

    - `open_ended`: rows may still come after the schedule empties (claims, batches): an idle
      run then asks `others_pending` instead of ending, and a pause waits for `resume`;
    - `others_pending()`: nothing is due here; may rows still come (another process's,
      the next batch)? If so it waits a moment (on `ctx.state.schedule.changed`) first;
    - `waiting_by(until)`: the rows that would be dialed by `until` (the caller-ID pool is
      closed until then: they are told why they wait);
    - `until_live_room(on_wait)`: return when the campaign may have one more live call
      (every process's, for a shared one); `on_wait` is awaited now and then meanwhile.

    A shared store may refuse an intent with `store.LiveLimitReached` (at the campaign's
    global live-call cap: the row waits and is tried again) or `store.LeaseLost` (the row is
    another process's now); the dialer handles both, whatever the source.

    A plan kept in the store, read in batches, would be: `open` reads the first batch of
    pending rows in schedule order (and the open attempts, as `LocalSchedule` does) and
    says `to_dial` from a count; `refill(room)` reads the next `room` rows due by now (or
    the next batch, with their `not_before`); `open_ended = True` while batches remain,
    `others_pending()` True (after a short wait) while the store still has rows due by the
    run's end; `settle` and `close` mark rows done or hand an unread batch back; the live
    cap as `LocalSchedule`'s. Rows must be the same object for one person
    throughout a run (the schedule and the fates go by identity and `rows_by_person`).
    """

    open_ended: bool

    def open(
        self, ctx: RunContext, rows: Sequence[Row], rows_by_person: Mapping[str, Row],
    ) -> Opening: ...

    async def refill(self, room: int) -> Refill: ...

    async def settle(self, row: Row) -> None: ...

    async def close(self) -> None: ...

    async def run_beside(self, on_control: Callable[[str], None]) -> None: ...

    async def others_pending(self) -> bool: ...

    def waiting_by(self, until: datetime) -> list[Row]: ...

    async def until_live_room(self, on_wait: Callable[[], Awaitable[None]]) -> None: ...


class LocalSchedule:
    """The plan's rows against the local journal: every row that may still be dialed is on
    the schedule from the start; open attempts are resumed first; nothing comes later."""

    open_ended = False

    def __init__(self) -> None:
        self._ctx: RunContext | None = None

    def open(
        self, ctx: RunContext, rows: Sequence[Row], rows_by_person: Mapping[str, Row],
    ) -> Opening:
        self._ctx = ctx
        journal = ctx.journal.sync
        by_person = journal.attempts_by_person()
        open_attempts = [a for lst in by_person.values() for a in lst if a.is_open]
        due = seed(rows, rows_by_person, by_person, journal.control(), ctx.policy,
                   ctx.clock.now())
        return Opening(None, open_attempts, due)

    async def refill(self, room: int) -> Refill:
        return Refill()

    async def settle(self, row: Row) -> None:
        return None

    async def close(self) -> None:
        return None

    async def run_beside(self, on_control: Callable[[str], None]) -> None:
        return None

    async def others_pending(self) -> bool:
        return False

    def waiting_by(self, until: datetime) -> list[Row]:
        assert self._ctx is not None
        return self._ctx.state.schedule.due_by(until)

    async def until_live_room(self, on_wait: Callable[[], Awaitable[None]]) -> None:
        return None  # this process's own slots are the only cap
