"""`check` under `[schedule] strategy = "adaptive"`: the learned curve, and what it should buy.

The curve is the contact history's (every campaign's calls); before MIN_ANSWERED answered calls
it is not used, and `check` says how far off that is. The expected answered calls compare the
forecast's own call instants dialed in input order (each row at the instant the forecast gives
it) with the same instants given, one by one, to the group of rows whose window is open then
and whose local hour has the best learned chance (the adaptive pick without its random draws).
"""

from __future__ import annotations

import bisect
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from campaign_dialer.answering import MIN_ANSWERED, AnswerModel
from campaign_dialer.config import Campaign
from campaign_dialer.engine.adaptive import window_intervals
from campaign_dialer.forecast import HORIZON_DAYS

#: The comparison looks at this many of the forecast's first calls (it is a loop per call).
CALLS_COMPARED = 20_000


def rows_numbered(rows: Any, wanted: list[int]) -> dict[int, Any]:
    """The plan's rows with these row numbers, by row number: only those rows are made
    (a million-row plan compares a few thousand)."""
    numbers = np.asarray(rows.columns["row"], dtype=np.int64)
    at = np.flatnonzero(np.isin(numbers, np.asarray(wanted, dtype=np.int64)))
    return {int(numbers[i]): rows[int(i)] for i in at.tolist()}


def adaptive_wanted(campaign: Campaign) -> bool:
    """Whether `check` shows the adaptive outlook (it needs the forecast's placements)."""
    return bool(campaign.model.schedule.strategy == "adaptive")


def adaptive_outlook(campaign: Campaign, plan: Any, placements: dict[int, datetime]
                     ) -> dict[str, Any] | None:
    sched = campaign.model.schedule
    if not adaptive_wanted(campaign) or plan.history is None:
        return None
    model = AnswerModel.from_facts(plan.history.answer_facts(), split=False)
    out: dict[str, Any] = {"strategy": "adaptive", "holdout_share": sched.holdout_share,
                           "calls": model.total_calls, "answered": model.total_answered,
                           "needs": MIN_ANSWERED, "ready": model.ready}
    if not model.ready:
        return out
    out["curve"] = model.curve()
    window = plan.gate.window
    compared = sorted(placements.items(), key=lambda kv: kv[1])[:CALLS_COMPARED]
    by_row = rows_numbered(plan.rows, [row for row, _ in compared])
    end = plan.at + timedelta(days=HORIZON_DAYS)
    groups: dict[tuple[Any, ...], dict[str, Any]] = {}
    slots: list[tuple[datetime, tuple[Any, ...]]] = []
    for row, at in compared:
        r = by_row[row]
        zones, states, _ = window.candidates(r.phone_e164, r.tz_hint)
        key = (zones, states)
        if key not in groups:
            spans = window_intervals(window, zones, states, plan.at, end)
            groups[key] = {"left": 0, "zone": ZoneInfo(zones[0]) if zones else None,
                           "starts": [a for a, _ in spans], "spans": spans}
        groups[key]["left"] += 1
        slots.append((at, key))

    def chance(g: dict[str, Any], at: datetime) -> float:
        if g["zone"] is None:
            return model.mean(None, (at.weekday(), at.hour))  # as UTC: no zone known
        local = at.astimezone(g["zone"])
        return model.mean(None, (local.weekday(), local.hour))

    def is_open(g: dict[str, Any], at: datetime) -> bool:
        i = bisect.bisect_right(g["starts"], at) - 1
        return i >= 0 and at < g["spans"][i][1]

    in_order = sum(chance(groups[k], at) for at, k in slots)
    adaptive = 0.0
    for at, own in slots:
        best = max((g for g in groups.values() if g["left"] > 0 and is_open(g, at)),
                   key=lambda g: chance(g, at), default=groups[own])
        best["left"] -= 1
        adaptive += chance(best, at)
    out["expected"] = {"calls": len(slots), "input_order": round(in_order, 1),
                       "adaptive": round(adaptive, 1),
                       "gain": round(adaptive / in_order, 2) if in_order > 0 else None}
    return out


def adaptive_lines(a: dict[str, Any] | None) -> list[str]:
    if a is None:
        return []
    head = f"schedule: adaptive, holdout {a['holdout_share']:.0%} in input order"
    if not a["ready"]:
        return [f"{head}; not enough history yet: {a['answered']} answered calls, needs "
                f"{a['needs']} (input order until then)"]
    out = [f"{head}; answer curve learned from {a['calls']:,} calls ({a['answered']:,} "
           "answered), by local hour 08-20:"]
    for d, name in enumerate(("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")):
        out.append(f"  {name} " + " ".join(f"{a['curve'][d][h]:4.0%}" for h in range(8, 21)))
    e = a.get("expected")
    if e and e["calls"]:
        out.append(f"expected answered calls over the forecast's first {e['calls']:,} calls: "
                   f"input order {e['input_order']:,}, adaptive {e['adaptive']:,}"
                   + (f" ({e['gain']}x)" if e["gain"] else ""))
    return out
