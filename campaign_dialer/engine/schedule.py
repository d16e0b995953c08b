"""The schedule: which row is due next (a window opening, a redial gap), earliest first.

`seed` decides, once at the start of a run, which rows go on it and from when; afterwards
the dialer puts rows back (held by the gate, a redial due later) as it learns more.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

import anyio

from campaign_dialer import vocab
from campaign_dialer.store import Attempt

from .redial import RedialPolicy
from .rows import Row


class Schedule:
    """Rows waiting for their time, earliest first; `changed` wakes the producer."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Row]] = []
        self.in_flight = 0
        self.changed = anyio.Event()

    def push(self, row: Row, not_before: datetime | None) -> None:
        ts = not_before.timestamp() if not_before else 0.0
        heapq.heappush(self._heap, (ts, row.order, row))
        self.poke()

    def when(self, row: Row) -> float | None:
        """When `row` is due (unix seconds) if it waits here. A scan: for the short
        schedules of a shared campaign's processes (each holds only the rows it claimed)."""
        return next((ts for ts, _, r in self._heap if r is row), None)

    def take(self, row: Row) -> None:
        """Take `row` off the schedule (handed back to the store for later)."""
        self._heap = [e for e in self._heap if e[2] is not row]
        heapq.heapify(self._heap)

    def poke(self) -> None:
        self.changed.set()
        self.changed = anyio.Event()

    def pop_due(self, now: datetime) -> Row | None:
        if self._heap and self._heap[0][0] <= now.timestamp():
            return heapq.heappop(self._heap)[2]
        return None

    def due_by(self, when: datetime) -> list[Row]:
        """The rows due at or before `when` (they stay here)."""
        t = when.timestamp()
        return [r for ts, _, r in self._heap if ts <= t]

    def next_due(self) -> datetime | None:
        if not self._heap:
            return None
        return datetime.fromtimestamp(self._heap[0][0], UTC)

    def __len__(self) -> int:
        return len(self._heap)

    def postpone(self, until: datetime) -> bool:
        """Nothing on the schedule before `until` (a budget's next day); True if any moved."""
        ts = until.timestamp()
        moved = any(t < ts for t, _, _ in self._heap)
        if moved:
            self._heap = [(max(t, ts), o, r) for t, o, r in self._heap]
            heapq.heapify(self._heap)
            self.poke()
        return moved


def seed(
    rows: Iterable[Row], rows_by_person: Mapping[str, Row],
    by_person: Mapping[str, list[Attempt]], control: str, policy: RedialPolicy, now: datetime,
) -> list[tuple[Row, datetime | None]]:
    """Every row that may still be dialed, and not before when (the schedule's first fill).

    Rows with an open attempt are left out (the run resumes those first); a canceled
    campaign schedules nothing; a paused one schedules as usual (the producer waits).
    """
    due: list[tuple[Row, datetime | None]] = []
    for r in rows:
        if r.person is None or r.contact_suppressed:
            continue
        if rows_by_person.get(r.person) is not r:
            continue
        attempts = by_person.get(r.person, [])
        if attempts and attempts[-1].is_open:
            continue  # resumed
        nxt = policy.next(r, attempts, now)
        if nxt is None:
            continue
        _, not_before = nxt
        if control == "canceled":
            continue  # paused rows are scheduled: the producer waits for `resume`
        if r.disposition == vocab.SUPPRESSED and not attempts:
            continue  # the plan held it back; the gate would say the same at dial time
        if r.disposition == vocab.PENDING and r.next_open is not None:
            not_before = max(not_before or r.next_open, r.next_open)
        elif r.disposition == vocab.PENDING and not attempts:
            continue  # pending with no known opening (unknown zone): nothing to wait for
        due.append((r, not_before))
    return due
