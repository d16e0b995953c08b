"""A pool's capacity (for `check`) and whether a number should rest (its recent calls say the
carriers' analytics may be labelling it).

Working rules, not law (practitioners' figures: a number whose calls are rarely answered, or
answered and dropped within seconds, is the one labelled spam). Decisions:

- Judged only on a full window (`health_window_calls`, default 50 finished calls): three
  unanswered calls of a new number are not evidence, and resting it on them would starve it.
- "Answered" = the call ended `completed`. "Connected" (the short-call share's denominator) is
  the same: a `voicemail` call is a machine answering; its length is the message's, not a
  person's patience, and the vocabulary already counts voicemail as not connected. A completed
  call without a duration is left out of the short-call share (unknown is not short).
- `low_answer_share`: answered share below `min_answer_share` (default half the pool's median
  answered share; no pool figures and no explicit threshold: not judged).
- `short_calls`: more than `max_short_call_share` of connected calls lasted under
  `short_call_seconds` (strictly under 10 s by default).
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from campaign_dialer.compliance.callerid.chooser import Caps, PoolNumber

LOW_ANSWER_SHARE = "low_answer_share"
SHORT_CALLS = "short_calls"
REST_REASONS = (LOW_ANSWER_SHARE, SHORT_CALLS)
ANSWERED_STATUS = "completed"


@dataclass(frozen=True)
class FinishedCall:
    status: str  # a terminal call status (completed, no_answer, busy, voicemail, failed, ...)
    duration_seconds: float | None = None


@dataclass(frozen=True)
class HealthThresholds:
    health_window_calls: int = 50
    min_answer_share: float | None = None  # None: half the pool's median answered share
    short_call_seconds: float = 10.0
    max_short_call_share: float = 0.5

    def __post_init__(self) -> None:
        if self.health_window_calls < 1:
            raise ValueError("health_window_calls must be >= 1")
        for name in ("min_answer_share", "max_short_call_share"):
            v = getattr(self, name)
            if v is not None and not 0.0 <= v <= 1.0:
                raise ValueError(f"{name} must be a share between 0 and 1, got {v!r}")
        if self.short_call_seconds < 0:
            raise ValueError("short_call_seconds must be >= 0")


@dataclass(frozen=True)
class RestAdvice:
    rest: bool
    reasons: tuple[str, ...]  # subset of REST_REASONS, in that order
    detail: str  # the figures, for the log and `status`
    calls: int  # finished calls judged (0 when the window is not full)
    answer_share: float | None
    short_call_share: float | None


def answer_share(calls: Sequence[FinishedCall]) -> float | None:
    return sum(c.status == ANSWERED_STATUS for c in calls) / len(calls) if calls else None


def rest_advice(
    calls: Sequence[FinishedCall],
    pool_answer_shares: Sequence[float],
    thresholds: HealthThresholds | None = None,
) -> RestAdvice:
    """Should this number rest? `calls` oldest first (its last `health_window_calls` are
    judged); `pool_answer_shares` the answered share of each pool number (module docstring)."""
    th = thresholds or HealthThresholds()
    window = list(calls)[-th.health_window_calls:]
    if len(window) < th.health_window_calls:
        return RestAdvice(False, (), (
            f"{len(window)} finished calls, fewer than the {th.health_window_calls} judged"
        ), 0, None, None)
    n = len(window)
    answered = sum(c.status == ANSWERED_STATUS for c in window)
    share = answered / n
    reasons: list[str] = []
    details: list[str] = []
    floor = th.min_answer_share
    floor_src = "min_answer_share"
    if floor is None and pool_answer_shares:
        median = statistics.median(pool_answer_shares)
        floor = median / 2
        floor_src = f"half the pool's median {median:.0%}"
    if floor is not None and share < floor:
        reasons.append(LOW_ANSWER_SHARE)
        details.append(f"{LOW_ANSWER_SHARE}: {answered}/{n} answered ({share:.0%})"
                       f" < {floor:.0%} ({floor_src})")
    timed = [c.duration_seconds for c in window
             if c.status == ANSWERED_STATUS and c.duration_seconds is not None]
    short_share = None
    if timed:
        short = sum(d < th.short_call_seconds for d in timed)
        short_share = short / len(timed)
        if short_share > th.max_short_call_share:
            reasons.append(SHORT_CALLS)
            details.append(f"{SHORT_CALLS}: {short}/{len(timed)} connected calls under"
                           f" {th.short_call_seconds:g} s ({short_share:.0%})"
                           f" > {th.max_short_call_share:.0%}")
    if not reasons:
        details.append(f"healthy: {answered}/{n} answered ({share:.0%})")
    return RestAdvice(bool(reasons), tuple(reasons), "; ".join(details), n, share, short_share)


@dataclass(frozen=True)
class PoolCapacity:
    """What `check` needs to warn that a pool cannot carry a campaign."""

    numbers: int
    resting_now: tuple[str, ...]  # ids, pool order
    available: int  # not resting at `now`
    per_day: int
    per_hour: int
    daily_capacity: int  # available * per_day
    hourly_capacity: int  # available * per_hour
    anywhere: int  # available numbers with no state restriction
    by_state: Mapping[str, int]  # available restricted numbers per state they may call

    def warning(self, planned_calls: int) -> str | None:
        """A sentence when `planned_calls` in 24 h exceed what the pool may place, else None."""
        if self.available == 0:
            return (f"caller-ID pool: none of its {self.numbers} number(s) is available now"
                    f" (resting: {', '.join(self.resting_now) or 'none'})")
        if planned_calls > self.daily_capacity:
            return (f"caller-ID pool: {planned_calls} calls planned but {self.available}"
                    f" available number(s) x {self.per_day} per day = {self.daily_capacity}"
                    " in 24 h; the rest wait")
        return None


def pool_capacity(
    pool: Sequence[PoolNumber], resting: Mapping[str, datetime], now: datetime, caps: Caps
) -> PoolCapacity:
    """Capacity over the next 24 h counting only numbers not resting now (a rest ending later
    today adds some; not counting it errs low)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    resting_now = tuple(n.id for n in pool if (end := resting.get(n.id)) is not None
                        and end > now)
    avail = [n for n in pool if n.id not in resting_now]
    by_state: dict[str, int] = {}
    for n in avail:
        for st in sorted(n.states or ()):
            by_state[st] = by_state.get(st, 0) + 1
    return PoolCapacity(
        numbers=len(pool), resting_now=resting_now, available=len(avail),
        per_day=caps.per_day, per_hour=caps.per_hour,
        daily_capacity=len(avail) * caps.per_day, hourly_capacity=len(avail) * caps.per_hour,
        anywhere=sum(1 for n in avail if n.states is None), by_state=by_state,
    )
