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

from campaign_dialer.compliance import search_sorted

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


def ns_of(at: datetime) -> int:
    """`at` as ns since the epoch (the plan's `next_open` unit)."""
    return (at - _EPOCH) // timedelta(microseconds=1) * 1_000


def time_of(ns: int) -> datetime:
    """The instant of `ns` since the epoch, in UTC (below a microsecond dropped)."""
    return _EPOCH + timedelta(microseconds=ns // 1_000)


class _Sorted(Sequence[str]):
    """A sorted arrow string array as a sequence, for `bisect` (no Python list of it)."""

    def __init__(self, values: pa.Array) -> None:
        self.values = values

    def __len__(self) -> int:
        return len(self.values)

    def __getitem__(self, i: int) -> str:  # type: ignore[override]
        return str(self.values[i].as_py())


# A person key that is a phone number in E.164: indexed as the integer of its digits.
_TEL = r"^tel:\+[1-9][0-9]{0,14}$"


def _tel_ints(persons: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(which persons are `tel:+<digits>`, the integer of those digits, 0 elsewhere)."""
    if not len(persons):
        return np.zeros(0, dtype=bool), np.zeros(0, dtype=np.int64)
    is_tel = np.asarray(pc.fill_null(pc.match_substring_regex(persons, _TEL), False),
                        dtype=bool)
    digits = pc.utf8_slice_codeunits(persons, 5)
    ints = pc.cast(pc.if_else(pa.array(is_tel), digits, pa.scalar("0", digits.type)),
                   pa.int64())
    return is_tel, np.asarray(pc.fill_null(ints, 0), dtype=np.int64)


class PersonIndex(Mapping[str, Row]):
    """Which row dials for each person: the first row of the person among the rows the
    contacts stage did not hold back (the engine's `rows_by_person`), found by binary search
    (phone numbers as sorted integers, other keys as sorted strings); the row is made when
    asked for (the same object each time: the plan's rows keep what they made)."""

    def __init__(self, rows: Sequence[Row], cols: DialColumns) -> None:
        self._rows = rows
        person = cols.person.combine_chunks() if isinstance(
            cols.person, pa.ChunkedArray) else cols.person
        keep = ~np.asarray(cols.contact_suppressed, dtype=bool) & np.asarray(
            pc.is_valid(person), dtype=bool) if len(person) else np.zeros(0, dtype=bool)
        is_tel, ints = _tel_ints(person)
        # phone numbers: each number's first row (np.unique's first index, in plan order)
        tel = np.flatnonzero(keep & is_tel)
        self._tel, first = np.unique(ints[tel], return_index=True)
        self._tel_at = tel[first]
        # other keys (contact ids): few, as sorted strings
        other = np.flatnonzero(keep & ~is_tel)
        enc = pc.dictionary_encode(person.take(pa.array(other))) if len(other) else None
        if enc is None:
            self._people = pa.array([], pa.large_string())
            self._at = np.zeros(0, dtype=np.int64)
        else:
            codes = np.asarray(enc.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
            _, first = np.unique(codes, return_index=True)  # code k first seen at first[k]
            order = pc.sort_indices(enc.dictionary)
            self._people = enc.dictionary.take(order)
            self._at = other[first][np.asarray(order.to_numpy(), dtype=np.int64)]
        self._sorted = _Sorted(self._people)
        self._first: np.ndarray | None = None

    def position(self, person: str) -> int | None:
        """The plan position of the row that dials for `person`, None if nobody's does."""
        if person.startswith("tel:+") and person[5:].isdigit() and person[5:6] != "0" \
                and len(person) <= 20 and person[5:].isascii():
            key = int(person[5:])
            k = int(np.searchsorted(self._tel, key))
            if k < len(self._tel) and int(self._tel[k]) == key:
                return int(self._tel_at[k])
            return None
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
        yield from (f"tel:+{int(k)}" for k in self._tel.tolist())
        yield from (str(p) for p in self._people.to_pylist())

    def __len__(self) -> int:
        return len(self._tel) + len(self._people)

    def positions_of(self, persons: pa.Array) -> np.ndarray:
        """The plan position of the row that dials for each of `persons`, -1 for none."""
        if isinstance(persons, pa.ChunkedArray):
            persons = persons.combine_chunks()
        out = np.full(len(persons), -1, dtype=np.int64)
        if not len(persons):
            return out
        is_tel, ints = _tel_ints(persons)
        tel = np.flatnonzero(is_tel)
        if len(tel) and len(self._tel):
            # many persons (a fate base's every row): looked up in sorted order
            k = np.minimum(search_sorted(self._tel, ints[tel]), len(self._tel) - 1)
            hit = self._tel[k] == ints[tel]
            out[tel[hit]] = self._tel_at[k[hit]]
        other = np.flatnonzero(~is_tel & np.asarray(pc.is_valid(persons), dtype=bool))
        if len(other) and len(self._people):
            k = pc.index_in(persons.take(pa.array(other)), value_set=self._people)
            at = np.asarray(pc.fill_null(k, -1), dtype=np.int64)
            hit = at >= 0
            out[other[hit]] = self._at[at[hit]]
        return out

    def first_positions(self) -> np.ndarray:
        """Every dialing row's plan position (ascending; read-only)."""
        if self._first is None:
            self._first = np.sort(np.concatenate([self._tel_at, self._at]))
            self._first.flags.writeable = False
        return self._first


class StoredPlanSource:
    """The rows a run may dial, taken from the plan's columns in batches (module doc)."""

    # `base.RowSource`: no row comes after the plan's last (nothing is shared).
    open_ended = False

    def __init__(
        self, rows: Sequence[Row], cols: DialColumns, *,
        attempted: AbstractSet[str] = frozenset(), batch: int = 512,
        people: PersonIndex | None = None, offer: bool = True,
    ) -> None:
        """`people`: the index of these rows when made already (the engine's); `offer`:
        decide the rows to offer now (False: at `open`, which decides them with the
        journal's people)."""
        self._rows = rows
        self._cols = cols
        self.people = people if people is not None else PersonIndex(rows, cols)
        self.batch = batch  # rows put on the schedule at the start of a run (`open`)
        self._ctx: RunContext | None = None
        self._order = np.zeros(0, dtype=np.int64)
        self._due = np.zeros(0, dtype=np.int64)
        self._next = 0
        if offer:
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
        end = int(np.searchsorted(self._due, ns_of(now), side="right"))
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
        """The rows on the schedule due by `until`, and those not taken yet that wait for a
        time of their own (pending in the plan). The rows not taken that wait for nothing
        are not made: the fate base says of them what the run's end says of rows nobody
        dialed (`columns.Untouched`: the pool worn out, the budget spent)."""
        end = int(np.searchsorted(self._due, ns_of(until), side="right"))
        picked = self._order[self._next:max(end, self._next)]
        pending = np.asarray(self._cols.pending, dtype=bool)
        later = [self._rows[int(i)] for i in picked[pending[picked]]] if len(picked) else []
        return self.ctx.state.schedule.due_by(until) + later

    async def until_live_room(self, on_wait: Callable[[], Awaitable[None]]) -> None:
        return None  # this process's own slots are the only cap
