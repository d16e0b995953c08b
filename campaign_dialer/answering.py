"""When people answer: the pure side of the adaptive schedule (issue 27).

Counts of answered calls (a call that ended `completed`) by the recipient's local weekday and
hour, pooled over every campaign of the contact history, become Beta posteriors; Thompson
sampling draws one plausible answer chance per cell, so a cell with little evidence still gets
tried while a cell known to be good wins most draws. Optionally split by area code: each area
code's cell starts from the pooled cell (a prior of PRIOR_CALLS calls' weight) and moves with
its own counts. Also here: the holdout (a stable hash of the person) and the urgency rule that
keeps a row from being left behind. No I/O, no clock: the engine and `check` feed it.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date

DAYS = 7
HOURS = 24
#: The learned curve is used (and shown by `check`) once the history holds this many answered
#: calls; before that every cell's posterior is close to the flat prior and the draws are noise.
MIN_ANSWERED = 30
#: How much an area code's cell leans on the pooled cell: the weight of this many calls.
PRIOR_CALLS = 20.0
#: The answered status (the platform's final status of a call a person picked up).
ANSWERED = "completed"
#: A row is urgent when what its window can still take (at the campaign's rate, after every
#: row due to close no later than its own) leaves less than this much open time to spare.
URGENT_MARGIN_S = 3600.0

# "2026-06-09T13:00-04:00 ..." as the gate writes local_times (first zone wins).
_LOCAL = re.compile(r"^\s*(\d{4})-(\d{2})-(\d{2})[T ](\d{1,2}):")
_NPA = re.compile(r"^(?:tel:)?\+1(\d{3})")


def cell_of(local_times: str | None) -> tuple[int, int] | None:
    """(weekday 0=Monday, hour) of the first local time the gate recorded; None if unreadable."""
    m = _LOCAL.match(local_times or "")
    if m is None:
        return None
    try:
        day = date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError:
        return None
    hour = int(m[4])
    return (day.weekday(), hour) if 0 <= hour < HOURS else None


def area_of(person_or_phone: str | None) -> str | None:
    """The NANP area code of `tel:+1NPA...` or `+1NPA...`; None otherwise."""
    m = _NPA.match(person_or_phone or "")
    return m[1] if m else None


def in_holdout(campaign: str, person: str, share: float) -> bool:
    """Is `person` in the campaign's holdout (dialed in input order)? Stable across runs and
    processes: a hash of campaign and person, like the agent split."""
    if share <= 0:
        return False
    digest = hashlib.sha256(f"holdout|{campaign}|{person}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


@dataclass
class AnswerModel:
    """Beta posteriors of the answered share per (split, weekday, hour); split None = pooled."""

    split: bool = False
    calls: dict[tuple[str | None, int, int], int] = field(default_factory=dict)
    answered: dict[tuple[str | None, int, int], int] = field(default_factory=dict)

    @classmethod
    def from_facts(
        cls, facts: Iterable[tuple[str | None, str | None, str | None]], *, split: bool = False,
    ) -> AnswerModel:
        """From (person, final status, local_times) of past calls; unreadable ones are skipped."""
        m = cls(split=split)
        for person, status, local_times in facts:
            cell = cell_of(local_times)
            if cell is not None:
                m.add(person, cell, status == ANSWERED)
        return m

    def add(self, person: str | None, cell: tuple[int, int], answered: bool) -> None:
        keys: list[tuple[str | None, int, int]] = [(None, *cell)]
        if self.split and (a := area_of(person)) is not None:
            keys.append((a, *cell))
        for k in keys:
            self.calls[k] = self.calls.get(k, 0) + 1
            if answered:
                self.answered[k] = self.answered.get(k, 0) + 1

    @property
    def total_calls(self) -> int:
        return sum(n for (s, _, _), n in self.calls.items() if s is None)

    @property
    def total_answered(self) -> int:
        return sum(n for (s, _, _), n in self.answered.items() if s is None)

    @property
    def ready(self) -> bool:
        return self.total_answered >= MIN_ANSWERED

    def posterior(self, area: str | None, cell: tuple[int, int]) -> tuple[float, float]:
        """Beta(alpha, beta) of the answered share in `cell` (for `area` when split)."""
        n = self.calls.get((None, *cell), 0)
        k = self.answered.get((None, *cell), 0)
        alpha, beta = 1.0 + k, 1.0 + n - k
        if self.split and area is not None and (area, *cell) in self.calls:
            # the pooled cell as a prior worth PRIOR_CALLS calls, then the area's own counts
            mean = alpha / (alpha + beta)
            na = self.calls[(area, *cell)]
            ka = self.answered.get((area, *cell), 0)
            alpha, beta = 1.0 + PRIOR_CALLS * mean + ka, 1.0 + PRIOR_CALLS * (1 - mean) + na - ka
        return alpha, beta

    def mean(self, area: str | None, cell: tuple[int, int]) -> float:
        a, b = self.posterior(area, cell)
        return a / (a + b)

    def sample(self, area: str | None, cell: tuple[int, int], rng: random.Random) -> float:
        """One Thompson draw of the answered share in `cell`."""
        return rng.betavariate(*self.posterior(area, cell))

    def curve(self) -> list[list[float]]:
        """The pooled posterior mean, 7 weekdays x 24 hours."""
        return [[round(self.mean(None, (d, h)), 4) for h in range(HOURS)] for d in range(DAYS)]


@dataclass(frozen=True)
class Bucket:
    """What the chooser sees of a group of due rows sharing zones, rules and split key."""

    key: object
    cell: tuple[int, int] | None  # their local (weekday, hour) now; None: zone unknown
    area: str | None
    first_order: int  # the input order of the group's first row
    slack_s: float | None = None  # open time to spare before the end; None: no end known


def choose(buckets: Sequence[Bucket], model: AnswerModel, rng: random.Random) -> int | None:
    """Index of the bucket to dial from now.

    Urgent buckets first (least slack, then input order): a row whose window-time left runs
    short is taken before any scored pick. Otherwise the best Thompson draw of the bucket's
    cell (one draw per distinct cell and area, so equal cells tie), ties in input order. An
    unready model (too little history) orders by input order, today's behaviour.
    """
    if not buckets:
        return None
    urgent = [i for i, b in enumerate(buckets)
              if b.slack_s is not None and b.slack_s < URGENT_MARGIN_S]
    if urgent:
        return min(urgent, key=lambda i: (buckets[i].slack_s or 0.0, buckets[i].first_order))
    if not model.ready:
        return min(range(len(buckets)), key=lambda i: buckets[i].first_order)
    draws: dict[tuple[str | None, tuple[int, int]], float] = {}
    best: tuple[float, int] | None = None
    best_i = 0
    for i, b in enumerate(buckets):
        if b.cell is None:
            score = -1.0  # no local hour known: after every row whose hour we can judge
        else:
            k = (b.area, b.cell)
            if k not in draws:
                draws[k] = model.sample(b.area, b.cell, rng)
            score = draws[k]
        rank = (-score, b.first_order)
        if best is None or rank < best:
            best, best_i = rank, i
    return best_i


def slacks(
    need_s: Sequence[float], open_left_s: Sequence[float], closes_at: Sequence[float],
) -> list[float]:
    """Open seconds each group has to spare before the end, earliest-closing first (EDF).

    Group i needs `need_s[i]` seconds of the campaign's capacity, has `open_left_s[i]` seconds
    of its window left before the end, and its last window closes at `closes_at[i]`. Every
    group that closes no later than i draws on the same capacity first, so i's spare time is
    its open time minus all of that need.
    """
    order = sorted(range(len(need_s)), key=lambda i: closes_at[i])
    out = [0.0] * len(need_s)
    acc = 0.0
    j = 0
    while j < len(order):
        # groups closing at the same instant share one cumulative need
        k = j
        while k < len(order) and closes_at[order[k]] == closes_at[order[j]]:
            acc += need_s[order[k]]
            k += 1
        for i in order[j:k]:
            out[i] = open_left_s[i] - acc
        j = k
    return out
