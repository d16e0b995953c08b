"""Rows from a stored plan, a batch at a time, in the order the schedule needs.

A run of a million-row campaign dials a few thousand rows; it should not make a row object
for the others. `StoredPlanSource` holds the plan's dial columns (numpy/arrow, a few bytes a
row) and makes a `Row` only when the row is due and taken: `take(now, n)` gives up to n rows
due by `now`, by due time then plan order (the schedule's own order), `next_due()` says when
the next one is due, `left()` how many remain. `people` answers "which row dials for this
person" (`rows_by_person`) from the same columns, no dict of every row.

What the source offers is what `schedule.seed` would schedule of a row with no attempt: the
first row of each person, neither held back by the contacts stage nor suppressed by the plan,
eligible now or pending with a known opening. Rows of people the journal already has
attempts for are offered as well (the caller decides with `seed`, as for any row: a redial,
a resumed call, nothing). The gate still checks every row at the moment of dialing.

It is a run's `base.RowSource` too (`open`, `refill`...): a batch on the schedule at the
start, `refill(room)` more as workers free up, each batch through `seed` like a local
schedule's rows.
"""

from __future__ import annotations

import bisect
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .base import Opening, Refill, RunContext
from .rows import Row
from .schedule import seed

# The ns column's "no time" (as the plan's); eligible rows are due from the epoch on.
NO_TIME = np.iinfo(np.int64).min
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class DialColumns:
    """What the source needs of every row, in plan order (`planning.PlanRows.dial_columns`):

    - `person`: the row's person key (`tel:`/`cid:`), null when none (arrow strings);
    - `contact_suppressed`: held back by the contacts stage (never rings);
    - `suppressed`: the plan's disposition is suppressed;
    - `pending`: the plan's disposition is pending (`next_open` says from when, if known);
    - `next_open`: ns since the epoch, `NO_TIME` when none.
    """

    person: pa.Array
    contact_suppressed: np.ndarray
    suppressed: np.ndarray
    pending: np.ndarray
    next_open: np.ndarray


def _ns(at: datetime) -> int:
    return (at - _EPOCH) // timedelta(microseconds=1) * 1_000


class _Sorted(Sequence[str]):
    """A sorted arrow string array as a sequence, for `bisect` (no Python list of it)."""

    def __init__(self, values: pa.Array) -> None:
        self.values = values

    def __len__(self) -> int:
        return len(self.values)

    def __getitem__(self, i: int) -> str:  # type: ignore[override]
        return str(self.values[i].as_py())


class PersonIndex(Mapping[str, Row]):
    """Which row dials for each person: the first row of the person among the rows the
    contacts stage did not hold back (the engine's `rows_by_person`), found by binary search
    in the sorted person column; the row is made when asked for (the same object each time:
    the plan's rows keep what they made)."""

    def __init__(self, rows: Sequence[Row], cols: DialColumns) -> None:
        self._rows = rows
        n = len(cols.person)
        keep = pa.array(~np.asarray(cols.contact_suppressed, dtype=bool)) if n else pa.array(
            [], pa.bool_())
        t = pa.table({"p": cols.person, "i": pa.array(np.arange(n, dtype=np.int64))})
        t = t.filter(pc.and_(pc.is_valid(t["p"]), keep))
        # each person's first row: a hash of the keys (codes in first-seen order), not a
        # group-by (four times slower on a million strings)
        enc = pc.dictionary_encode(t["p"].combine_chunks())
        codes = np.asarray(enc.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
        _, first = np.unique(codes, return_index=True)  # code k first seen at first[k]
        order = pc.sort_indices(enc.dictionary)
        self._people = enc.dictionary.take(order)
        positions = np.asarray(t["i"].combine_chunks().to_numpy(), dtype=np.int64)
        self._at = positions[first][np.asarray(order.to_numpy(), dtype=np.int64)]
        self._sorted = _Sorted(self._people)

    def position(self, person: str) -> int | None:
        """The plan position of the row that dials for `person`, None if nobody's does."""
        k = bisect.bisect_left(self._sorted, person)
        if k < len(self._sorted) and self._sorted[k] == person:
            return int(self._at[k])
        return None

    def __getitem__(self, person: str) -> Row:
        pos = self.position(person)
        if pos is None:
            raise KeyError(person)
        return self._rows[pos]

    def __contains__(self, person: object) -> bool:
        return isinstance(person, str) and self.position(person) is not None

    def __iter__(self) -> Iterator[str]:
        return (str(p) for p in self._people.to_pylist())

    def __len__(self) -> int:
        return len(self._people)

    def first_positions(self) -> np.ndarray:
        """Every dialing row's plan position (ascending)."""
        return np.sort(self._at)


class StoredPlanSource:
    """The rows a run may dial, taken from the plan's columns in batches (module doc)."""

    # `base.RowSource`: no row comes after the plan's last (nothing is shared).
    open_ended = False

    def __init__(
        self, rows: Sequence[Row], cols: DialColumns, *,
        attempted: AbstractSet[str] = frozenset(), batch: int = 512,
    ) -> None:
        self._rows = rows
        self._cols = cols
        self.people = PersonIndex(rows, cols)
        self.batch = batch  # rows put on the schedule at the start of a run (`open`)
        self._ctx: RunContext | None = None
        self._offer(attempted)

    def _offer(self, attempted: AbstractSet[str]) -> None:
        """The rows to offer, by due time then plan order (`attempted`: people the journal
        has attempts for, offered whatever the plan said)."""
        cols, n = self._cols, len(self._rows)
        first = np.zeros(n, dtype=bool)
        first[self.people.first_positions()] = True
        nxt = np.asarray(cols.next_open, dtype=np.int64)
        pending = np.asarray(cols.pending, dtype=bool)
        suppressed = np.asarray(cols.suppressed, dtype=bool)
        callable_ = ~suppressed & ~(pending & (nxt == NO_TIME))
        if attempted and n:
            # a person the journal has attempts for: the caller decides (`seed`), whatever
            # the plan said of the row
            had = np.asarray(pc.fill_null(pc.is_in(cols.person, pa.array(
                sorted(attempted), pa.large_string())), False), dtype=bool)
            callable_ |= had
        offer = np.flatnonzero(first & callable_)
        due = np.where(pending[offer] & (nxt[offer] != NO_TIME), nxt[offer], NO_TIME)
        order = np.lexsort((offer, due))  # by due time, then plan order
        self._order = offer[order]
        self._due = due[order]
        self._next = 0

    def __len__(self) -> int:
        return len(self._order)

    def left(self) -> int:
        """Rows not taken yet."""
        return len(self._order) - self._next

    def next_due(self) -> datetime | None:
        """When the next row not taken yet is due (the epoch: now), None when none is left."""
        if self._next >= len(self._order):
            return None
        due = int(self._due[self._next])
        return _EPOCH if due == NO_TIME else _EPOCH + timedelta(microseconds=due // 1_000)

    def due_count(self, now: datetime) -> int:
        """Rows not taken yet that are due by `now`."""
        end = int(np.searchsorted(self._due, _ns(now), side="right"))
        return max(end - self._next, 0)

    def take(self, now: datetime, n: int) -> list[Row]:
        """Up to n rows due by `now`, by due time then plan order; taken (not offered again)."""
        k = min(self.due_count(now), max(n, 0))
        picked = self._order[self._next:self._next + k]
        self._next += k
        return [self._rows[int(i)] for i in picked]

    def take_all(self, n: int) -> list[Row]:
        """The next n rows whatever their due time (a schedule that holds them until then)."""
        picked = self._order[self._next:self._next + max(n, 0)]
        self._next += len(picked)
        return [self._rows[int(i)] for i in picked]

    def counts(self, now: datetime) -> dict[str, int]:
        """What is left: due now, waiting for a later time, and taken already."""
        due = self.due_count(now)
        return {"due": due, "later": self.left() - due, "taken": self._next}

    # -- as a run's `base.RowSource` ----------------------------------------------------
    @property
    def ctx(self) -> RunContext:
        assert self._ctx is not None, "open() first"
        return self._ctx

    def open(
        self, ctx: RunContext, rows: Sequence[Row], rows_by_person: Mapping[str, Row],
    ) -> Opening:
        """In the lane: the journal's people are offered whatever the plan said (the
        caller's `seed` decides), their open attempts are resumed first; the first batch
        of rows due now goes on the schedule. `rows_by_person` is the engine's (the same
        rows, the same objects: this source's `people` answers the same)."""
        self._ctx = ctx
        self._by_person = rows_by_person
        journal = ctx.journal.sync
        by_person = journal.attempts_by_person()
        self._offer(frozenset(by_person))
        open_attempts = [a for lst in by_person.values() for a in lst if a.is_open]
        return Opening(len(self._order), open_attempts, self._seeded(self.batch))

    def _seeded(self, room: int) -> list[tuple[Row, datetime | None]]:
        """In the lane: up to `room` rows for the schedule (`seed` over the rows taken, due
        now first, else the next ones due later with their time); rows `seed` leaves out
        (done, resumed, canceled) are skipped and more are taken in their place."""
        ctx = self.ctx
        journal = ctx.journal.sync
        now = ctx.clock.now()
        control = journal.control()
        out: list[tuple[Row, datetime | None]] = []
        while len(out) < room and self.left():
            batch = self.take(now, room - len(out)) or self.take_all(room - len(out))
            attempts = {r.person: journal.attempts_for(r.person) for r in batch if r.person}
            out += seed(batch, self._by_person, attempts, control, ctx.policy, now)
        return out

    async def refill(self, room: int) -> Refill:
        """Up to `room` more rows (read in the lane): due now, else the next due later."""
        if room <= 0 or not self.left():
            return Refill()
        return Refill(due=await self.ctx.lane.run(self._seeded, room))

    async def settle(self, row: Row) -> None:
        return None

    async def close(self) -> None:
        return None  # rows not taken stay in the plan: the next run offers them again

    async def run_beside(self, on_control: Callable[[str], None]) -> None:
        return None

    async def others_pending(self) -> bool:
        return False

    def waiting_by(self, until: datetime) -> list[Row]:
        """The rows on the schedule due by `until`, and those not taken yet."""
        end = int(np.searchsorted(self._due, _ns(until), side="right"))
        later = [self._rows[int(i)] for i in self._order[self._next:max(end, self._next)]]
        return self.ctx.state.schedule.due_by(until) + later

    async def until_live_room(self, on_wait: Callable[[], Awaitable[None]]) -> None:
        return None  # this process's own slots are the only cap
