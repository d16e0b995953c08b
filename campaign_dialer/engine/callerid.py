"""The caller-ID governor: which owned number each call goes out from, and when none may.

The engine owns one when the campaign has a `[caller_id]` pool. The choice itself is the pure
rule in `compliance.callerid`; it runs inside the contact history's claim transaction (the
store calls back), so the counts it reads are the counts when the claim commits. Here:

- `request`: the claim's caller-ID part for one row (its recipient, the moment);
- `closed_until`: set when no number of the pool may carry any call now (every number capped
  or resting), so the producer stops handing out rows until one frees (or the run ends, 75);
- `check_health`: every few seconds (in the lane), a number whose calls stopped being answered
  (or end within seconds) rests for `rest_days`;
- `note_from`: a call placed from another number than the one asked for is warned about once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from campaign_dialer import vocab
from campaign_dialer.compliance import state_for_number
from campaign_dialer.compliance.callerid import (
    CallerIdRules,
    Caps,
    Exhausted,
    FinishedCall,
    HealthThresholds,
    PoolNumber,
    answer_share,
    choose_caller_id,
    rest_advice,
)
from campaign_dialer.config_callerid import CallerIdSection
from campaign_dialer.store import (
    CallerIdFacts,
    CallerIdRequest,
    CallerPick,
    Claim,
    HistoryStore,
    iso,
)

from .rows import Row

EXHAUSTED = vocab.CALLER_ID_REASONS[0]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
DAY, HOUR = timedelta(hours=24), timedelta(hours=1)
# How often the health rule looks at the pool's recent calls (seconds, in the lane).
HEALTH_EVERY_S = 5.0


class CallerIds:
    """A campaign's pool of owned numbers and its limits (see module doc)."""

    def __init__(
        self, section: CallerIdSection, rules: CallerIdRules, history: HistoryStore, log: Any,
    ) -> None:
        self.section = section
        self.rules = rules
        self.history = history
        self.log = log
        self.pool = tuple(
            PoolNumber(n.id, n.number, frozenset(n.states) if n.states else None)
            for n in section.numbers
        )
        self.numbers = {n.id: n.number for n in section.numbers}
        self.caps = Caps(per_day=section.max_calls_per_number_per_day,
                         per_hour=section.max_calls_per_number_per_hour)
        # The pool as a whole: None while some number may carry a call.
        self.closed_until: datetime | None = None
        self.closed_detail = ""
        self.substituted = 0
        self.rested: list[tuple[str, str]] = []  # (number id, why) rested by this run

    def request(self, row: Row, now: datetime, amend: Any) -> CallerIdRequest:
        """The caller-ID part of `row`'s claim (the store calls `choose` in its transaction)."""
        recipient = row.phone_e164
        state = state_for_number(recipient) if recipient else None

        def choose(facts: CallerIdFacts) -> CallerPick | Claim:
            got = choose_caller_id(
                pool=self.pool, recipient=recipient, recipient_state=state,
                sticky_id=facts.sticky_id, recent=facts.recent, resting=facts.resting,
                now=now, caps=self.caps, sticky=self.section.sticky,
                local_presence=self.section.local_presence, rules=self.rules,
            )
            if isinstance(got, Exhausted):
                free = pool_frees(self.pool, facts.recent, facts.resting, now, self.caps)
                if free is not None:  # not this person's number alone: the whole pool
                    self.closed_until, self.closed_detail = free, got.detail
                return Claim(False, EXHAUSTED, got.detail, got.next_open)
            self.closed_until = None
            return CallerPick(got.id, got.number, got.reason)

        return CallerIdRequest(self.section.ids, choose, amend)

    def is_closed(self, now: datetime) -> bool:
        if self.closed_until is not None and now >= self.closed_until:
            self.closed_until = None
        return self.closed_until is not None

    def exhausted_detail(self) -> str:
        until = iso(self.closed_until) if self.closed_until else "?"
        return f"every caller ID is at its cap or resting until {until}: {self.closed_detail}"

    def closed_now(self, now: datetime) -> tuple[datetime, str] | None:
        """In the lane: whether the pool as the history has it now can carry no call, and
        until when (read afresh: another process may have used it up)."""
        ids = list(self.section.ids)
        resting = {r.number_id: r.until for r in self.history.caller_id_rests(ids)
                   if r.in_force(now)}
        until = pool_frees(self.pool, self.history.caller_id_load(ids, now), resting, now,
                           self.caps)
        if until is None:
            return None
        return until, (f"every caller ID is at its cap or resting until {iso(until)}")

    # -- health (in the lane) -----------------------------------------------------------
    def check_health(self, now: datetime) -> list[tuple[str, str]]:
        """Rest every number whose recent calls say it is being flagged; what was rested."""
        rests = self.history.caller_id_rests(list(self.section.ids))
        since: dict[str, datetime] = {}
        for r in rests:  # a number's health counts only calls after its last rest ended
            if r.ends <= now and (r.number_id not in since or r.ends > since[r.number_id]):
                since[r.number_id] = r.ends
        resting = {r.number_id for r in rests if r.in_force(now)}
        window = self.section.health_window_calls
        calls = {
            n: [FinishedCall(c.status or "unknown", c.duration_seconds) for c in reversed(
                self.history.number_calls(n, after=since.get(n), limit=window))]
            for n in self.section.ids if n not in resting
        }
        shares = [s for c in calls.values() if len(c) >= window
                  if (s := answer_share(c)) is not None]
        th = HealthThresholds(
            health_window_calls=window, min_answer_share=self.section.min_answer_share,
            short_call_seconds=self.section.short_call_seconds,
            max_short_call_share=self.section.max_short_call_share,
        )
        done = []
        for number_id, finished in calls.items():
            advice = rest_advice(finished, shares, th)
            if not advice.rest:
                continue
            until = now + timedelta(days=self.section.rest_days)
            reason = advice.reasons[0]
            if self.history.rest_number(
                number_id, since=now, until=until, reason=reason, detail=advice.detail,
                by="dialer", only_if_active_before=since.get(number_id, EPOCH),
            ):
                self.log.warning("caller_id_rested", number_id=number_id, reason=reason,
                                 detail=advice.detail, until=iso(until))
                done.append((number_id, reason))
        self.rested += done
        return done

    # -- what the platform did ----------------------------------------------------------
    def note_from(self, asked: str | None, used: str | None, *, call_id: str) -> None:
        """The call object's `from` is not the number asked for: warned once, logged always."""
        if not asked or not used or asked == used:
            return
        self.substituted += 1
        event = "caller_id_substituted"
        if self.substituted == 1:
            self.log.warning(event, asked=asked, used=used, call_id=call_id,
                             note="the platform placed the call from another number; "
                                  "further ones are logged at info")
        else:
            self.log.info(event, asked=asked, used=used, call_id=call_id)


def pool_frees(
    pool: Sequence[PoolNumber], recent: Mapping[str, Sequence[datetime]],
    resting: Mapping[str, datetime], now: datetime, caps: Caps,
) -> datetime | None:
    """None while some number of the pool may carry a call (for someone); else the first
    moment one may: its rest ends, and enough of its calls age out of the hour and the day."""
    best: datetime | None = None
    for n in pool:
        at = now
        rest = resting.get(n.id)
        if rest is not None and rest > at:
            at = rest
        times = recent.get(n.id, ())
        for cap, window in ((caps.per_day, DAY), (caps.per_hour, HOUR)):
            inside = sorted((t for t in times if t > now - window), reverse=True)
            if len(inside) >= cap:
                at = max(at, inside[cap - 1] + window)
        if at <= now:
            return None
        best = at if best is None else min(best, at)
    return best
