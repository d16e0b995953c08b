"""`[budget]`: judged by the sandbox's audit, no call is placed once a limit is reached; the
rows left wait as `budget_reached` and the run exits 75. Plus the arithmetic: what is spent,
what the live calls will cost, the local day."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest

from campaign_dialer import commands
from campaign_dialer.clock import Clock
from campaign_dialer.monitor.budget import Spend, day_bounds, over_budget, projection

from .e2e_support import MIDDAY, numbers, run_cli, write_campaign
from .test_monitor_e2e import sandbox

MIDDAY_AT = datetime.fromisoformat(MIDDAY.replace("Z", "+00:00"))


def report(per_min: float | None = None, per_call: float | None = None) -> SimpleNamespace:
    return SimpleNamespace(cost_per_minute=per_min, cost_per_call=per_call,
                           display_timezone="America/New_York")


def budget(cost: float | None = None, talk: float | None = None,
           day: int | None = None) -> SimpleNamespace:
    return SimpleNamespace(max_cost=cost, max_talk_minutes=talk, max_calls_per_day=day,
                           any=True)


def test_live_calls_count_at_their_expected_cost() -> None:
    # 2 finished minutes (2.00) + 1 live call expected 2 min (2.00) = 4.00 committed: a new
    # call (2.00 more) would pass 5.00; with the live call ended at 30 s it fits.
    live = Spend(calls=2, talk_seconds=120.0, open_calls=1, calls_today=2)
    assert over_budget(budget(cost=5.0), report(per_min=1.0), live, 120.0) is not None
    ended = Spend(calls=2, talk_seconds=150.0, open_calls=0, calls_today=2)
    assert over_budget(budget(cost=5.0), report(per_min=1.0), ended, 120.0) is None
    # per call: the 5th call costs exactly the limit and fits, the 6th does not
    four = Spend(calls=4, open_calls=0, calls_today=4)
    assert over_budget(budget(cost=5.0), report(per_call=1.0), four, 120.0) is None
    assert over_budget(budget(cost=5.0), report(per_call=1.0), four.plus(1), 120.0)
    # talk minutes: 9 min talked + a live call's expected 2 min: no room for 2 more
    talk = Spend(calls=5, talk_seconds=540.0, open_calls=1, calls_today=5)
    why = over_budget(budget(talk=12.0), report(), talk, 120.0)
    assert why is not None and why[1] is None and "max_talk_minutes" in why[0]


def test_the_daily_limit_reopens_at_the_next_local_midnight() -> None:
    ny = ZoneInfo("America/New_York")
    now = datetime(2026, 6, 9, 17, 0, tzinfo=UTC)  # 13:00 in New York (EDT)
    start, end = day_bounds(now, ny)
    assert start == datetime(2026, 6, 9, 4, 0, tzinfo=UTC)
    assert end == datetime(2026, 6, 10, 4, 0, tzinfo=UTC)
    why = over_budget(budget(day=3), report(), Spend(calls=3, calls_today=3, day_end=end), 60.0)
    assert why == ("budget.max_calls_per_day 3 reached: 3 call(s) today", end)
    # the day a clock change happens is 23 hours long, and still one day
    s, e = day_bounds(datetime(2026, 3, 8, 12, tzinfo=UTC), ny)
    assert (e - s).total_seconds() == 23 * 3600


def test_check_projects_the_cost_of_finishing() -> None:
    p = projection(budget(cost=10.0, day=4), report(per_min=0.5, per_call=0.25),
                   Spend(), 20, 120.0)
    assert p is not None and p["projected_cost"] == 25.0  # 20 x (0.25 + 2 min x 0.5)
    cost, day = p["limits"]
    assert (cost["covers"], cost["rows_that_fit"]) == (False, 8)
    assert (day["covers"], day["days_needed"]) == (False, 5)


@pytest.mark.e2e
def test_no_call_once_the_cost_budget_is_reached_exit_75_rows_wait(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    contacts = [{"phone": p, "name": f"P{i}"} for i, p in enumerate(numbers(15))]
    camp = write_campaign(tmp_path, contacts=contacts, name="budget-e2e",
                          pacing="calls_per_second = 10", api="max_live_calls = 3", extra="""
        [report]
        cost_per_call = 1.0

        [budget]
        max_cost = 5
        """)
    assert commands.check(camp.path, as_json=True, clock=Clock(MIDDAY_AT)) == 0
    plan = json.loads(capsys.readouterr().out)["forecast"]["budget"]
    assert plan["projected_cost"] == 15.0 and plan["limits"][0]["covers"] is False
    with sandbox() as sb:
        first = run_cli("run", str(camp.path), "--base-url", sb.url)
        again = run_cli("run", str(camp.path), "--base-url", sb.url)
        audit = sb.audit()
    assert first.returncode == 75, first.stderr[-3000:]
    assert "budget reached" in first.stderr and "budget.max_cost 5" in first.stderr
    assert again.returncode == 75, again.stderr[-3000:]
    assert len(audit["calls"]) == 5, "a call was placed past the budget"
    rows = camp.results()
    held = [r for r in rows if r["disposition"] == "pending"]
    assert len(held) == 10 and {r["reason"] for r in held} == {"budget_reached"}
    assert all("budget.max_cost" in r["detail"] for r in held)
    assert sum(r["disposition"] == "dialed" for r in rows) == 5


@pytest.mark.e2e
def test_the_daily_limit_holds_rows_until_the_next_local_day(tmp_path: Path) -> None:
    contacts = [{"phone": p, "name": f"P{i}"} for i, p in enumerate(numbers(8))]
    camp = write_campaign(tmp_path, contacts=contacts, name="daily-e2e",
                          pacing="calls_per_second = 10", api="max_live_calls = 2", extra="""
        [report]
        display_timezone = "America/New_York"

        [budget]
        max_calls_per_day = 3
        """)
    with sandbox() as sb:
        proc = run_cli("run", str(camp.path), "--base-url", sb.url)
        audit = sb.audit()
    assert proc.returncode == 75, proc.stderr[-3000:]
    assert len(audit["calls"]) == 3
    held = [r for r in camp.results() if r["disposition"] == "pending"]
    assert len(held) == 5 and {r["reason"] for r in held} == {"budget_reached"}
    # midnight in New York after the test clock's 13:00 EDT
    assert {r["next_open"] for r in held} == {"2026-06-10T04:00:00.000Z"}


def test_a_cost_limit_without_a_price_is_refused_78(tmp_path: Path) -> None:
    camp = write_campaign(tmp_path, contacts=[{"phone": numbers(1)[0]}], extra="""
        [budget]
        max_cost = 100
        """)
    proc = run_cli("check", str(camp.path))
    assert proc.returncode == 78
    assert "budget.max_cost" in proc.stderr and "cost_per_minute" in proc.stderr
