"""What a campaign has spent, what its live calls will cost, and whether one more call fits.

Priced as the report prices it: `report.cost_per_call` per call placed, plus
`report.cost_per_minute` per minute of talk. A finished call costs what it lasted; a call not
finished yet (an intent, a live call, an unconfirmed one) is expected to last
`expected_call_s` (the contact history's median, else `report.expected_call_seconds`), so
the limit holds with the calls in flight counted, never after the fact.

`max_calls_per_day` counts the calls of the campaign's local calendar day in
`report.display_timezone` (the machine's zone without one); when it is used up the rows wait
until the next local midnight (`next_open`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from campaign_dialer.store import FINAL, NOT_CALLED, Attempt, parse_iso

BUDGET_REACHED = "budget_reached"


def budget_zone(display_timezone: str | None) -> tzinfo:
    """The zone whose calendar day `max_calls_per_day` counts."""
    if display_timezone:
        return ZoneInfo(display_timezone)
    zone = datetime.now().astimezone().tzinfo
    assert zone is not None
    return zone


def day_bounds(now: datetime, zone: tzinfo) -> tuple[datetime, datetime]:
    """The local day holding `now`: its midnight and the next one (DST-aware)."""
    local = now.astimezone(zone)
    start = datetime.combine(local.date(), time(0), tzinfo=zone)
    end = datetime.combine(local.date() + timedelta(days=1), time(0), tzinfo=zone)
    # In UTC: aware datetimes of one zone compare and subtract by wall clock (DST ignored).
    return start.astimezone(UTC), end.astimezone(UTC)


@dataclass(frozen=True)
class Spend:
    """A campaign's calls as the budget counts them."""

    calls: int = 0  # calls placed, or maybe placed (an intent, a live call): each billed
    talk_seconds: float = 0.0  # of finished calls
    open_calls: int = 0  # not finished: expected to last expected_call_s
    calls_today: int = 0  # calls begun since the local midnight
    day_end: datetime | None = None

    def plus(self, n: int) -> Spend:
        """With `n` more calls about to start (reserved, not yet in the journal)."""
        return Spend(self.calls + n, self.talk_seconds, self.open_calls + n,
                     self.calls_today + n, self.day_end)


def spend_of(attempts: Iterable[Attempt], *, now: datetime, zone: tzinfo) -> Spend:
    start, end = day_bounds(now, zone)
    calls = open_calls = today = 0
    talk = 0.0
    for a in attempts:
        if a.state in NOT_CALLED:
            continue
        if a.state == FINAL:
            talk += max(float(a.duration_seconds or 0.0), 0.0)
            if a.placed_at is None and not a.call_id:
                pass  # never placed as far as anyone knows (released as called): talk only
            else:
                calls += 1
        else:
            calls += 1
            open_calls += 1
        began = parse_iso(a.intent_at)
        if began is not None and began >= start:
            today += 1
    return Spend(calls, talk, open_calls, today, end)


def figures(spend: Spend, report: Any, expected_call_s: float) -> dict[str, float | None]:
    """Spent so far (finished calls; calls placed are billed per call) and committed (with
    the calls in flight at their expected length), in each budget unit."""
    per_min, per_call = report.cost_per_minute, report.cost_per_call
    priced = per_min is not None or per_call is not None
    live_talk = spend.open_calls * expected_call_s
    spent_cost = ((per_min or 0.0) * spend.talk_seconds / 60 + (per_call or 0.0) * spend.calls
                  if priced else None)
    committed_cost = (spent_cost + (per_min or 0.0) * live_talk / 60
                      if spent_cost is not None else None)
    return {
        "cost": round(spent_cost, 4) if spent_cost is not None else None,
        "cost_committed": round(committed_cost, 4) if committed_cost is not None else None,
        "talk_seconds": round(spend.talk_seconds, 1),
        "talk_seconds_committed": round(spend.talk_seconds + live_talk, 1),
        "calls_today": float(spend.calls_today),
    }


def over_budget(
    budget: Any, report: Any, spend: Spend, expected_call_s: float,
) -> tuple[str, datetime | None] | None:
    """Why one more call would pass a limit (and when it may go: the next local day for the
    per-day limit), or None when it fits. Counts what is spent, what the live calls are
    expected to cost, and the new call itself."""
    if budget is None:
        return None
    after = figures(spend.plus(1), report, expected_call_s)
    now = figures(spend, report, expected_call_s)
    if budget.max_cost is not None and after["cost_committed"] is not None:
        if after["cost_committed"] > budget.max_cost + 1e-9:
            return (f"budget.max_cost {budget.max_cost:g} reached: {now['cost']:.2f} spent, "
                    f"{now['cost_committed']:.2f} with the live calls' expected cost"), None
    if budget.max_talk_minutes is not None:
        if float(after["talk_seconds_committed"] or 0) > budget.max_talk_minutes * 60 + 1e-9:
            return (f"budget.max_talk_minutes {budget.max_talk_minutes:g} reached: "
                    f"{float(now['talk_seconds'] or 0) / 60:.1f} min talked, "
                    f"{float(now['talk_seconds_committed'] or 0) / 60:.1f} with the live calls"
                    ), None
    if budget.max_calls_per_day is not None and spend.calls_today + 1 > budget.max_calls_per_day:
        return (f"budget.max_calls_per_day {budget.max_calls_per_day} reached: "
                f"{spend.calls_today} call(s) today"), spend.day_end
    return None


class BudgetKeeper:
    """The dial-time budget check, in the engine's lane (never on the event loop).

    Reads the campaign's attempts from the journal at most once a second (every process's
    calls on a shared store) and counts the calls it let through since; each allowed call is
    reserved at once, so calls dialed within the second cannot pass the limit together.
    """

    REFRESH_S = 1.0

    def __init__(
        self, *, budget: Any, report: Any, attempts: Callable[[], list[Attempt]],
        expected_call_s: float, now: Callable[[], datetime], monotonic: Callable[[], float],
    ) -> None:
        self.budget = budget
        self.report = report
        self._attempts = attempts
        self.expected_call_s = expected_call_s
        self.zone = budget_zone(report.display_timezone)
        self._now = now
        self._mono = monotonic
        self._read_at: float | None = None
        self._spend = Spend()
        self._reserved = 0

    def spend(self) -> Spend:
        t = self._mono()
        if self._read_at is None or t - self._read_at >= self.REFRESH_S:
            self._spend = spend_of(self._attempts(), now=self._now(), zone=self.zone)
            self._read_at, self._reserved = t, 0
        return self._spend.plus(self._reserved)

    def allow(self) -> tuple[str, datetime | None] | None:
        """None: the call fits and is reserved; else why not, and from when (daily limit)."""
        held = over_budget(self.budget, self.report, self.spend(), self.expected_call_s)
        if held is None:
            self._reserved += 1
        return held

    def figures(self) -> dict[str, float | None]:
        return figures(self.spend(), self.report, self.expected_call_s)


def projection(
    budget: Any, report: Any, spend: Spend, rows: int, expected_call_s: float,
) -> dict[str, Any] | None:
    """`check`: what finishing the campaign should cost (every row still to call placed once
    at the expected length: redials and the platform's 409s are not in it), and whether each
    `[budget]` limit covers it. None without a price and without a budget."""
    priced = report.cost_per_minute is not None or report.cost_per_call is not None
    if not priced and (budget is None or not budget.any):
        return None
    now = figures(spend, report, expected_call_s)
    done = figures(spend.plus(rows), report, expected_call_s)
    out: dict[str, Any] = {
        "rows_to_call": rows, "expected_call_seconds": expected_call_s,
        "spent_cost": now["cost"], "projected_cost": done["cost_committed"],
        "spent_talk_minutes": round(float(now["talk_seconds"] or 0) / 60, 1),
        "projected_talk_minutes": round(float(done["talk_seconds_committed"] or 0) / 60, 1),
        "limits": [],
    }
    if budget is None:
        return out
    per_call = figures(Spend().plus(1), report, expected_call_s)

    def fits(left: float, each: float) -> int:
        return max(int(left // each), 0) if each > 0 else rows

    if budget.max_cost is not None and done["cost_committed"] is not None:
        each = float(per_call["cost_committed"] or 0)
        left = budget.max_cost - float(now["cost_committed"] or 0)
        out["limits"].append({
            "key": "max_cost", "limit": budget.max_cost, "projected": done["cost_committed"],
            "covers": done["cost_committed"] <= budget.max_cost + 1e-9,
            "rows_that_fit": min(rows, fits(left, each))})
    if budget.max_talk_minutes is not None:
        projected = out["projected_talk_minutes"]
        left = budget.max_talk_minutes - float(now["talk_seconds_committed"] or 0) / 60
        out["limits"].append({
            "key": "max_talk_minutes", "limit": budget.max_talk_minutes,
            "projected": projected, "covers": projected <= budget.max_talk_minutes + 1e-9,
            "rows_that_fit": min(rows, fits(left, expected_call_s / 60))})
    if budget.max_calls_per_day is not None:
        per_day = budget.max_calls_per_day
        days = -(-rows // per_day) if rows else 0
        out["limits"].append({
            "key": "max_calls_per_day", "limit": per_day, "projected": rows,
            "covers": rows <= per_day, "days_needed": days,
            "rows_that_fit": min(rows, max(per_day - spend.calls_today, 0))})
    return out


def projection_lines(p: dict[str, Any] | None) -> list[str]:
    """The projection as `check` prints it."""
    if p is None:
        return []
    out = []
    if p["projected_cost"] is not None:
        out.append(f"cost: finishing should cost about {p['projected_cost']:,.2f} in all "
                   f"({p['spent_cost'] or 0:,.2f} spent, {p['rows_to_call']:,} rows to call at "
                   f"{p['expected_call_seconds']:g} s a call; redials not counted)")
    out.append(f"talk: about {p['projected_talk_minutes']:,.1f} minutes in all "
               f"({p['spent_talk_minutes']:,.1f} so far)")
    for lim in p["limits"]:
        key = f"budget.{lim['key']} {lim['limit']:g}"
        if lim["key"] == "max_calls_per_day":
            out.append(f"{key}: {p['rows_to_call']:,} calls take at least "
                       f"{lim['days_needed']} day(s); today {lim['rows_that_fit']:,} fit")
        elif lim["covers"]:
            out.append(f"{key} covers it (projected {lim['projected']:,.2f})")
        else:
            out.append(f"{key} does NOT cover it (projected {lim['projected']:,.2f}): about "
                       f"{lim['rows_that_fit']:,} of {p['rows_to_call']:,} rows fit, the rest "
                       "stay pending (budget_reached)")
    return out
