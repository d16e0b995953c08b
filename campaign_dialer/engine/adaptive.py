"""The adaptive schedule (`[schedule] strategy = "adaptive"`, issue 27): which due row next.

The engine owns one schedule, chosen once per run. This one keeps the base schedule's time heap
(a row is not due before its window opens or its redial gap ends) and, once rows are due,
groups them by what decides their local hour and their calling window (the zones and state
rules the gate finds for the number, and the area code when the curve is split). At each free
slot it asks `answering.choose` which group to dial from: urgent groups first, else the best
Thompson draw of the answered share at the group's local hour now. Within a group, input order.

Only what the gate allows is ever chosen: a group is a candidate only when `is_open` (the
gate's own calling window, or the whole gate in tests) says its first row may be called now.
Due rows whose window is closed are handed out only when no open group has a row, so the gate
at dial time defers them exactly as under input order (same fate, same next opening). The
holdout's rows are dialed in input order and get their share of the slots. The gate, caps and
caller-ID limits still decide each call at dial time: this only orders what they allow.
"""

from __future__ import annotations

import heapq
import random
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from campaign_dialer.answering import (
    URGENT_MARGIN_S,
    AnswerModel,
    Bucket,
    area_of,
    cell_of,
    choose,
    in_holdout,
    slacks,
)
from campaign_dialer.config_schedule import ScheduleSection
from campaign_dialer.forecast import HORIZON_DAYS, call_rate, expected_call_seconds

from .gatekeeper import GateKeeper
from .rows import Row
from .schedule import Schedule

#: How long a group's remaining open time before the end is reused (seconds).
WINDOW_CACHE_S = 60.0
#: (may the row be called now?, the recipient's local times now)
Opening = Callable[[Row, datetime], tuple[bool, tuple[str, ...]]]


class AdaptiveSchedule(Schedule):
    """Due rows by group; `pop_due` picks the group with the best sampled answer chance."""

    def __init__(
        self, *, campaign: str, holdout_share: float, split: bool, is_open: Opening,
        candidates: Callable[[Row], tuple[tuple[str, ...], tuple[str, ...]]],
        intervals: Callable[[Row, datetime, datetime], list[tuple[datetime, datetime]]],
        rate: float, deadline: datetime | None = None, model: AnswerModel | None = None,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        self.campaign = campaign
        self.holdout_share = holdout_share
        self.split = split
        self.is_open = is_open
        self.candidates = candidates
        self.intervals = intervals
        self.rate = max(rate, 1e-9)
        self.deadline = deadline
        self.model = model or AnswerModel(split=split)
        self.rng = random.Random(seed)
        self._pool: dict[Any, list[tuple[int, int, Row]]] = {}  # group -> heap by input order
        self._hold: list[tuple[int, int, Row]] = []  # due holdout rows, by input order
        self._group: dict[int, Any] = {}  # row id -> group
        self._open_cache: dict[Any, tuple[float, float, float]] = {}
        self._seq = 0
        self.picks: Counter[str] = Counter()  # adaptive / urgent / holdout / handed_to_gate
        self.last_scored = False  # the last row came from a scored (open-window) pick

    # -- what the engine sees ---------------------------------------------------------
    def holdout(self, row: Row) -> bool:
        return row.person is not None and in_holdout(self.campaign, row.person,
                                                     self.holdout_share)

    def _due_entries(self) -> list[tuple[int, int, Row]]:
        return [e for q in self._pool.values() for e in q] + self._hold

    def __len__(self) -> int:
        return len(self._heap) + len(self._hold) + sum(len(q) for q in self._pool.values())

    def next_due(self) -> datetime | None:
        if self._hold or any(self._pool.values()):
            return datetime.fromtimestamp(0, UTC)
        return super().next_due()

    def due_by(self, when: datetime) -> list[Row]:
        return [r for _, _, r in self._due_entries()] + super().due_by(when)

    def when(self, row: Row) -> float | None:
        if any(r is row for _, _, r in self._due_entries()):
            return 0.0
        return super().when(row)

    def take(self, row: Row) -> None:
        super().take(row)
        self._hold = [e for e in self._hold if e[2] is not row]
        heapq.heapify(self._hold)
        for k, q in list(self._pool.items()):
            if any(e[2] is row for e in q):
                self._pool[k] = [e for e in q if e[2] is not row]
                heapq.heapify(self._pool[k])

    # -- the pick -----------------------------------------------------------------------
    def _admit(self, now: datetime) -> None:
        """Move the rows due by `now` from the time heap into their groups."""
        t = now.timestamp()
        while self._heap and self._heap[0][0] <= t:
            _, order, row = heapq.heappop(self._heap)
            self._seq += 1
            entry = (order, self._seq, row)
            if self.holdout(row):
                heapq.heappush(self._hold, entry)
                continue
            key = self._group.get(row.row)
            if key is None:
                zones, states = self.candidates(row)
                area = area_of(row.phone_e164 or row.person) if self.split else None
                key = self._group[row.row] = (zones, states, area)
            heapq.heappush(self._pool.setdefault(key, []), entry)

    def _decision(self, row: Row, now: datetime) -> tuple[bool, tuple[int, int] | None]:
        """The gate's word on the group's first row now (never cached: a window closes on
        the minute), and the recipient's local (weekday, hour)."""
        ok, local_times = self.is_open(row, now)
        return ok, cell_of(" ".join(local_times))

    def _open_left(self, key: Any, row: Row, now: datetime) -> tuple[float, float]:
        """(open seconds left before the end, when the last of them closes: unix seconds)."""
        t = now.timestamp()
        hit = self._open_cache.get(key)
        if hit is not None and t - hit[0] < WINDOW_CACHE_S:
            return hit[1] - (t - hit[0]), hit[2]  # an open group's time runs with the clock
        end = self.deadline or now + timedelta(days=HORIZON_DAYS)
        spans = [(max(a, now), min(b, end)) for a, b in self.intervals(row, now, end)]
        spans = [(a, b) for a, b in spans if a < b]
        left = sum((b - a).total_seconds() for a, b in spans)
        closes = max((b.timestamp() for _, b in spans), default=t)
        self._open_cache[key] = (t, left, closes)
        return left, closes

    def pop_due(self, now: datetime) -> Row | None:
        self._admit(now)
        self.last_scored = False
        # The holdout gets its share of the scored picks, in input order.
        scored = self.picks["adaptive"] + self.picks["urgent"]
        due_share = self.holdout_share / max(1.0 - self.holdout_share, 1e-9) * (scored + 1)
        if self._hold and (self.picks["holdout"] < due_share or not any(self._pool.values())):
            row = heapq.heappop(self._hold)[2]
            ok, _ = self.is_open(row, now)  # a closed one goes to the gate, which defers it
            self.picks["holdout" if ok else "handed_to_gate"] += 1
            return row
        open_keys: list[Any] = []
        buckets: list[Bucket] = []
        closed: list[Any] = []
        for key, q in self._pool.items():
            if not q:
                continue
            head = q[0][2]
            ok, cell = self._decision(head, now)
            if not ok:
                closed.append(key)
                continue
            open_keys.append(key)
            buckets.append(Bucket(key, cell, key[2], q[0][0]))
        if not buckets:
            if not closed:
                return None
            # Nothing may be called now: let the gate defer a closed row (its fate and its
            # next opening, as under input order), the earliest in input order first.
            key = min(closed, key=lambda k: self._pool[k][0][0])
            self.picks["handed_to_gate"] += 1
            return self._pop(key)
        if self.deadline is not None:
            info = [self._open_left(k, self._pool[k][0][2], now) for k in open_keys]
            need = [len(self._pool[k]) / self.rate for k in open_keys]
            spare = slacks(need, [x[0] for x in info], [x[1] for x in info])
            if sum(need) > max((x[0] for x in info), default=0.0):
                # More rows than the time left can take, whatever the order: no order saves
                # them all, so the best hours decide (the same number of calls either way).
                spare = [float("inf")] * len(spare)
            buckets = [Bucket(b.key, b.cell, b.area, b.first_order, s)
                       for b, s in zip(buckets, spare, strict=True)]
        i = choose(buckets, self.model, self.rng)
        assert i is not None
        b = buckets[i]
        urgent = b.slack_s is not None and b.slack_s < URGENT_MARGIN_S
        self.picks["urgent" if urgent else "adaptive"] += 1
        self.last_scored = True
        return self._pop(open_keys[i])

    def _pop(self, key: Any) -> Row:
        q = self._pool[key]
        row = heapq.heappop(q)[2]
        if not q:
            del self._pool[key]
        return row

    # -- learning -------------------------------------------------------------------------
    def learn(self, history: Any, campaign: Any) -> None:
        """Re-read the contact history's answered calls and the team's call length (in the
        lane): the curve every campaign of the team has taught so far, and the rate."""
        self.model = AnswerModel.from_facts(history.answer_facts(), split=self.split)
        secs, _ = expected_call_seconds(campaign, history)
        cfg = campaign.model
        self.rate = max(call_rate(cfg.pacing.calls_per_second, cfg.api.max_live_calls, secs),
                        1e-9)
        self._open_cache.clear()


def window_intervals(
    window: Any, zones: tuple[str, ...], states: tuple[str, ...], at: datetime, until: datetime,
) -> list[tuple[datetime, datetime]]:
    """UTC intervals between `at` and `until` inside the window in every one of `zones`."""
    if not zones:
        return [(at, until)]
    common = [(at, until)]
    for z in zones:
        mine = window.open_intervals(z, states, at, days=(until - at).days + 1)
        common = [(max(a, c), min(b, d)) for a, b in common for c, d in mine
                  if max(a, c) < min(b, d)]
    return common


def schedule_for(
    sched: ScheduleSection, campaign: str, keeper: GateKeeper, deadline: datetime | None,
) -> Schedule:
    """The run's schedule, chosen once: input order (today's) or adaptive (`[schedule]`).
    `keeper` is the run's gate (its gate may be rebuilt during the run: asked each time)."""
    if sched.strategy != "adaptive":
        return Schedule()

    def is_open(row: Row, now: datetime) -> tuple[bool, tuple[str, ...]]:
        d = keeper.gate.window.check(row.phone_e164, row.tz_hint, now)
        return d.ok, d.local_times

    def candidates(row: Row) -> tuple[tuple[str, ...], tuple[str, ...]]:
        zones, states, _ = keeper.gate.window.candidates(row.phone_e164, row.tz_hint)
        return zones, states

    def intervals(row: Row, now: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
        return window_intervals(keeper.gate.window, *candidates(row), now, end)

    return AdaptiveSchedule(
        campaign=campaign, holdout_share=sched.holdout_share,
        split=sched.split == "area_code", is_open=is_open, candidates=candidates,
        intervals=intervals, rate=1.0, deadline=deadline,
    )
