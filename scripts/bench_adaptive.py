"""Benchmark the adaptive schedule (issue 27) against input order, in the same run.

    python scripts/bench_adaptive.py             # a week, 10,000 rows over capacity + 3,000 within
    python scripts/bench_adaptive.py --rows 6000 --fit-rows 2000

A week of calling cannot run in minutes through the real engine (its clock is the wall
clock), so this runs in simulated time, in-process. What is real: the engine's schedule
components (`engine.schedule.Schedule` for input order, `engine.adaptive.AdaptiveSchedule`
with its grouping, Thompson sampling, urgency and holdout), the gate (`compliance.Gate` with
the campaign's 09:00-20:00 window, federal hours and the shipped state rules: every call is
asked of it at its simulated instant, exactly as the engine does before a POST), the answer
model learned from the calls' `local_times` evidence, and the sandbox's own call fates
(`sandbox.lifecycle.plan_call` with `sandbox.answer_curve.AnswerCurve`, the curve below, each
recipient's local time by the sandbox's area-code table). What is simulated: time, and the
lines: LINES lines, each call holding one for CALL_S seconds (so both orders place a call
whenever a line is free and the gate allows a row: the same capacity). No HTTP, no journal.

History: a previous week of input-order calls from another list (the "team's history") is
what the adaptive run starts from; it also learns from its own calls every simulated hour.
"""

from __future__ import annotations

import argparse
import heapq
import random
import sys
import tempfile
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from campaign_dialer.answering import AnswerModel  # noqa: E402
from campaign_dialer.compliance import CallingWindow, DncList, Gate  # noqa: E402
from campaign_dialer.config_schedule import ScheduleSection  # noqa: E402
from campaign_dialer.engine.adaptive import AdaptiveSchedule, schedule_for  # noqa: E402
from campaign_dialer.engine.rows import RecoveredRow  # noqa: E402
from campaign_dialer.engine.schedule import Schedule  # noqa: E402
from campaign_dialer.sandbox.answer_curve import AREA_ZONES, AnswerCurve  # noqa: E402
from campaign_dialer.sandbox.lifecycle import plan_call  # noqa: E402
from campaign_dialer.vocab import ELIGIBLE, PENDING  # noqa: E402

START = datetime(2026, 6, 8, 12, 0, tzinfo=UTC)  # Monday 08:00 in New York
WEEK = timedelta(days=7)
LINES = 2
CALL_S = 120.0
SEED = 7

# The curve this benchmark states (answer probability by local hour; weekdays, Saturday,
# Sunday). Shaped like the MIT/InsideSales finding (early morning and late afternoon best,
# early afternoon worst), with stronger contrast than any study reports: a benchmark of the
# method, not a claim about real lists.
_WEEKDAY = {9: 0.45, 10: 0.30, 11: 0.22, 12: 0.10, 13: 0.08, 14: 0.15, 15: 0.25, 16: 0.50,
            17: 0.55, 18: 0.35, 19: 0.20}
CURVE = tuple(
    tuple((_WEEKDAY.get(h, 0.05) * (0.6 if d == 5 else 0.4 if d == 6 else 1.0))
          for h in range(24)) for d in range(7)
)


def _gate(folder: Path) -> Gate:
    (folder / "dnc.csv").write_text("phone\n")
    return Gate(dnc=DncList.load([folder / "dnc.csv"], default_region="US"), consent=None,
                window=CallingWindow(time(9), time(20)), require_consent=False)


def _rows(n: int, rng: random.Random, offset: int) -> list[RecoveredRow]:
    areas = sorted(a for a, z in AREA_ZONES.items()
                   if z in ("America/New_York", "America/Chicago", "America/Denver",
                            "America/Los_Angeles"))
    out = []
    for i in range(n):
        phone = f"+1{rng.choice(areas)}555{offset + i:04d}"[:12]
        phone = f"+1{phone[2:5]}{2000000 + offset + i:07d}"
        out.append(RecoveredRow(row=i + 2, order=i, person=f"tel:{phone}", phone_e164=phone,
                                contact_id=None))
    return out


def simulate(rows: list[RecoveredRow], schedule: Schedule, gate: Gate, curve: AnswerCurve,
             deadline: datetime, facts: list[tuple[str, str | None, str | None]],
             learn: bool) -> dict[str, Any]:
    """Dial `rows` from `schedule` on LINES lines until `deadline`; the calls placed."""
    for r in rows:
        schedule.push(r, START)
    lines = [START.timestamp()] * LINES  # when each line is free
    heapq.heapify(lines)
    now = START
    calls: list[dict[str, Any]] = []
    next_learn = START + timedelta(hours=1)
    while now < deadline:
        if learn and isinstance(schedule, AdaptiveSchedule) and now >= next_learn:
            schedule.model = AnswerModel.from_facts(facts, split=schedule.split)
            next_learn = now + timedelta(hours=1)
        free = lines[0]
        if free > now.timestamp():
            now = datetime.fromtimestamp(free, UTC)
            continue
        row = schedule.pop_due(now)
        if row is None:
            nxt = schedule.next_due()
            if nxt is None:
                break
            now = max(now + timedelta(seconds=1), nxt)
            continue
        v = gate.check(phone_e164=row.phone_e164, contact_id=None, tz_hint=None, at=now)
        if v.disposition != ELIGIBLE:
            if v.disposition == PENDING and v.next_open is not None:
                schedule.push(row, v.next_open)  # held back: waits for its window (as _defer)
            continue
        assert row.phone_e164 is not None
        plan = plan_call(SEED, row.phone_e164)
        plan, _ = curve.apply(plan, seed=SEED, to=row.phone_e164, attempt=0, at=now,
                              unknown=None, span=None)
        status = "completed" if plan.final_status == "completed" else plan.final_status
        facts.append((row.person or "", status, v.evidence.get("local_times")))
        calls.append({"row": row.row, "at": now, "answered": status == "completed",
                      "holdout": isinstance(schedule, AdaptiveSchedule)
                      and schedule.holdout(row)})
        heapq.heapreplace(lines, now.timestamp() + CALL_S)
    return {"calls": calls, "rows": {c["row"] for c in calls}}


def _adaptive(gate: Gate, facts: list[Any], deadline: datetime) -> AdaptiveSchedule:
    sched = schedule_for(ScheduleSection(strategy="adaptive"), "bench",
                         SimpleNamespace(gate=gate), deadline)  # type: ignore[arg-type]
    assert isinstance(sched, AdaptiveSchedule)
    sched.rate = LINES / CALL_S
    sched.rng.seed(SEED)
    sched.model = AnswerModel.from_facts(facts)
    return sched


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000, help="the list larger than capacity")
    ap.add_argument("--fit-rows", type=int, default=3_000, help="a list capacity can take")
    args = ap.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-adaptive-"))
    curve = AnswerCurve(CURVE)
    gate = _gate(folder)
    deadline = START + WEEK
    rng = random.Random(SEED)
    print(f"curve (weekday answer probability by local hour, Sat x0.6, Sun x0.4): {_WEEKDAY}; "
          f"other hours {0.05}")
    print(f"capacity: {LINES} lines x {CALL_S:.0f} s calls, window 09:00-20:00 local, "
          f"{START:%Y-%m-%d %H:%M} UTC + 7 days; zones ET/CT/MT/PT by area code")
    # the team's history: last week's campaign, another list, input order
    hist: list[tuple[str, str | None, str | None]] = []
    previous = _rows(4000, rng, 50_000)
    simulate(previous, Schedule(), gate, curve, START + WEEK, hist, learn=False)
    # (the previous week ran at the same simulated dates: only weekday and hour matter)
    print(f"history: {len(hist)} calls, {sum(f[1] == 'completed' for f in hist)} answered")
    for label, n in (("over capacity", args.rows), ("within capacity", args.fit_rows)):
        rows = _rows(n, random.Random(SEED + n), 0)
        base = simulate(rows, Schedule(), gate, curve, deadline, list(hist), learn=False)
        sched = _adaptive(gate, hist, deadline)
        adapt = simulate(rows, sched, gate, curve, deadline, list(hist), learn=True)
        k = min(len(base["calls"]), len(adapt["calls"]))
        a_io = sum(c["answered"] for c in base["calls"][:k])
        a_ad = sum(c["answered"] for c in adapt["calls"][:k])
        held = [c for c in adapt["calls"] if c["holdout"]]
        print(f"\n{label}: {n} rows")
        print(f"  calls placed:       input order {len(base['calls'])}, adaptive "
              f"{len(adapt['calls'])} (compared over the first {k} of each)")
        print(f"  answered calls:     input order {a_io}, adaptive {a_ad}  ->  "
              f"{a_ad / max(a_io, 1):.2f}x")
        print(f"  answer share:       {a_io / max(k, 1):.3f} vs {a_ad / max(k, 1):.3f}; adaptive's "
              f"holdout {sum(c['answered'] for c in held)}/{len(held)}")
        print(f"  picks:              {dict(sched.picks)}")
        same = base["rows"] == adapt["rows"]
        print(f"  rows dialed by the deadline: input order {len(base['rows'])}, adaptive "
              f"{len(adapt['rows'])}; same set: {same}")


if __name__ == "__main__":
    main()
