"""Where a run's rows come from: one `RowSource`, chosen once by the caller (`commands.assemble`).

The engine holds the rows it is working on in its schedule (`schedule.Schedule`: which row
is due next, in the order the campaign asks for); a source fills it and takes rows back:

- `LocalSchedule` (here): the plan's rows and the local journal (SQLite); every row that
  may still be dialed goes on the schedule at the start, and the run ends when it is empty;
- `shared.ClaimSource`: claims from the team database (PostgreSQL), a few rows at a time,
  under leases, shared with the other processes running the campaign;
- `stored_plan.StoredPlanSource`: the stored plan's columns, a batch at a time, no row
  made before it is due.

A third source plugs in by implementing `base.RowSource` (the protocol, beside the run
context it is given); the engine asks nothing else.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime

from .base import Opening, Refill, RunContext
from .rows import Row
from .schedule import seed


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
