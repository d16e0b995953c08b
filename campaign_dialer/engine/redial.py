"""Redial policy: whether a person may get another attempt, and not before when.

One public function, `next_attempt`, used by the schedule, the dialer and the fates alike,
so a row's `redial_scheduled` fate and the call the engine makes never disagree.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from campaign_dialer.compliance import max_calls_per_24h
from campaign_dialer.config import CampaignFile
from campaign_dialer.store import FINAL, NOT_PLACED, PLACED, Attempt, parse_iso

from .rows import Row

# At most this many calls per person in 24 hours, whatever the campaign file says.
HARD_MAX_PER_24H = 3


def opted_out(a: Attempt, words: Iterable[str]) -> bool:
    """The call ended in an opt-out outcome (the person asked not to be called again)."""
    return bool(set(words) & {a.outcome or "", a.ended_reason or "", a.status or ""})


def redial_allowed(status: str | None, attempt: int, cfg: CampaignFile) -> bool:
    """Whether a call that ended with `status` as attempt number `attempt` may be followed by
    another (before the opt-out, the gap and the 24 h caps are asked)."""
    return status in cfg.redial.statuses and attempt < cfg.redial.max_attempts


def next_attempt(
    row: Row, attempts: list[Attempt], now: datetime, cfg: CampaignFile, rules: Any,
) -> tuple[int, datetime | None] | None:
    """The attempt number this person may get next, and not before when; None: never.

    `rules` are the state rules the gate's calling window uses (a state's own cap on calls
    per 24 hours).
    """
    if not attempts:
        return 1, None
    last = attempts[-1]
    if last.state == NOT_PLACED:
        return last.attempt, None
    if last.state != FINAL:
        return None
    red = cfg.redial
    if not redial_allowed(last.status, last.attempt, cfg):
        return None
    if opted_out(last, cfg.compliance.opt_out_outcomes):
        return None
    ended = parse_iso(last.ended_at) or now
    not_before = ended + timedelta(minutes=red.min_gap_minutes)
    limit = min(red.max_per_24h, HARD_MAX_PER_24H)
    state_limit = max_calls_per_24h(row.phone_e164, rules) if row.phone_e164 else None
    if state_limit is not None:
        limit = min(limit, state_limit)
    placed = sorted(
        t for a in attempts if a.state in (FINAL, PLACED)
        if (t := parse_iso(a.placed_at or a.intent_at)) is not None
    )
    if len(placed) >= limit:
        # the (limit)-th most recent call must be 24 h old before another is allowed
        not_before = max(not_before, placed[-limit] + timedelta(hours=24, seconds=1))
    return last.attempt + 1, not_before


@dataclass
class RedialPolicy:
    """`next_attempt` bound to one campaign; `rules` is asked each time (the gate may be
    rebuilt during the run)."""

    cfg: CampaignFile
    rules: Callable[[], Any]

    def next(
        self, row: Row, attempts: list[Attempt], now: datetime
    ) -> tuple[int, datetime | None] | None:
        return next_attempt(row, attempts, now, self.cfg, self.rules())

    def opted_out(self, a: Attempt) -> bool:
        return opted_out(a, self.cfg.compliance.opt_out_outcomes)

    def may_redial(self, a: Attempt) -> bool:
        """Whether another attempt may follow `a` (final as it is), before the opt-out, the
        gap and the caps; False: `next` says None whatever else the journal holds."""
        return redial_allowed(a.status, a.attempt, self.cfg)
