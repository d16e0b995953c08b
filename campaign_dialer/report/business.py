"""The sales side of the summary: outcomes by agent, A/B test, segments, when calls land."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pyarrow.compute as pc

from campaign_dialer.compliance import state_for_number
from campaign_dialer.report.aggregate import (
    Group,
    Rates,
    Rows,
    count,
    ordered,
    rates_by_key,
    text_array,
)
from campaign_dialer.report.common import WEEKDAYS, label, ratio

if TYPE_CHECKING:
    from campaign_dialer.config import Campaign


SEGMENT_LIMIT = 15  # the biggest values of a segment column; the rest in "others"


# Local time at dialing as compliance writes it: "2026-06-09T13:00-04:00 ..." (first zone)
_LOCAL_DAY_HOUR = r"^\s*(\d{4}-\d{2}-\d{2})[T ](\d{1,2}):"


def display_zone(campaign: Campaign) -> Any:
    """`[report] display_timezone`, else the machine's own zone (UTC when it has none)."""
    name = campaign.model.report.display_timezone
    if name:
        return ZoneInfo(name)
    tz = os.environ.get("TZ", "").lstrip(":")
    if tz:
        try:
            return ZoneInfo(tz)
        except (ValueError, OSError, KeyError):
            pass
    try:
        target = Path("/etc/localtime").resolve()
        parts = target.parts
        if "zoneinfo" in parts:
            return ZoneInfo("/".join(parts[parts.index("zoneinfo") + 1:]))
    except (ValueError, OSError, KeyError):
        pass
    return ZoneInfo("UTC")


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float | None, float | None]:
    """95% interval of a proportion (Wilson: sane at 0, 1 and small n)."""
    if n <= 0:
        return None, None
    p = k / n
    den = 1 + z * z / n
    mid = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return round(max(0.0, mid - half), 4), round(min(1.0, mid + half), 4)


def two_proportion(k1: int, n1: int, k2: int, n2: int) -> dict[str, Any]:
    """Two-proportion z-test (pooled) and a 95% interval of the difference (unpooled)."""
    if n1 <= 0 or n2 <= 0:
        return {"z": None, "p_value": None, "diff": None, "diff_ci95": [None, None]}
    p1, p2 = k1 / n1, k2 / n2
    pool = (k1 + k2) / (n1 + n2)
    se0 = math.sqrt(pool * (1 - pool) * (1 / n1 + 1 / n2))
    z = (p1 - p2) / se0 if se0 > 0 else 0.0
    p_value = math.erfc(abs(z) / math.sqrt(2))
    se = math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    d = p1 - p2
    return {"z": round(z, 3), "p_value": round(p_value, 4), "diff": round(d, 4),
            "diff_ci95": [round(d - 1.96 * se, 4), round(d + 1.96 * se, 4)]}


def ab_test(agents: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The two biggest agents' conversion rates compared; says when it is not yet significant."""
    if len(agents) < 2:
        return None
    a, b = sorted(agents, key=lambda x: -x["conversion"]["dialed"])[:2]
    ca, cb = a["conversion"], b["conversion"]
    t = two_proportion(ca["conversions"], ca["dialed"], cb["conversions"], cb["dialed"])
    sig = t["p_value"] is not None and t["p_value"] < 0.05
    if t["p_value"] is None:
        verdict = "not enough calls yet to compare the agents"
    elif sig:
        best = a if t["diff"] > 0 else b
        verdict = (f"{best['agent_id']} converts better: the difference is significant "
                   f"(p = {t['p_value']:.3f})")
    else:
        verdict = (f"the difference is not yet significant (p = {t['p_value']:.2f}); "
                   "keep calling before choosing an agent")
    return {"a": a["agent_id"], "b": b["agent_id"], **t, "significant": sig,
            "verdict": verdict}


def _rate_rows(
    rates: Sequence[Rates], *, order: Sequence[str] | None = None, limit: int | None = None,
    labels: bool = False,
) -> list[dict[str, Any]]:
    """Dialed rows, answer rate and conversion rate per key (dialed rows only), biggest first
    (ties in the order of their first row) or in `order`; past `limit`, the rest as "others"."""
    items = [(r.key, r.dialed, r.reached, r.won) for r in ordered(rates, order)]
    if limit is not None and len(items) > limit:
        rest = items[limit - 1:]
        items = [*items[: limit - 1], (f"{len(rest)} others", sum(x[1] for x in rest),
                                       sum(x[2] for x in rest), sum(x[3] for x in rest))]
    return [{"key": k, "label": label(k) if labels else (k or "(blank)"), "dialed": n,
             "reached": r, "answer_rate": ratio(r, n), "conversions": w,
             "conversion_rate": ratio(w, n)} for k, n, r, w in items]


def _states(prefixes: Sequence[str]) -> dict[str, str]:
    """US/CA state of each number's first five characters ("+1" and the area code)."""
    out: dict[str, str] = {}
    for p in prefixes:
        if isinstance(p, str) and p.startswith("+1") and len(p) == 5:
            out[p] = state_for_number(p + "5550100") or "(unknown)"
    return out


def _day_hours(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """The local weekday and hour (NaN when unreadable) of each local-time text."""
    parts = pd.Series(list(texts), dtype="string").str.extract(_LOCAL_DAY_HOUR)
    day = pd.to_datetime(parts[0], errors="coerce", format="%Y-%m-%d").dt.day_of_week
    hour = pd.to_numeric(parts[1], errors="coerce")
    return (day.to_numpy(dtype=float, na_value=np.nan),
            hour.to_numpy(dtype=float, na_value=np.nan))


def business(
    df: pd.DataFrame, calls: pd.DataFrame, campaign: Campaign, *, rows: Rows | None = None,
    groups: Sequence[Group] | None = None,
) -> dict[str, Any]:
    """Tiles, the hour x weekday heatmap and the breakdowns, from the rows counted per fate
    and per local time, area code or segment value (`aggregate.Rows`)."""
    rc = campaign.model.report
    success = list(rc.success_outcomes)
    rows = rows if rows is not None else Rows(df)
    groups = groups if groups is not None else rows.groups()
    n_dialed = count(groups, lambda g: g.dialed)
    n_reached = count(groups, lambda g: g.connected)
    n_won = count(groups, lambda g: g.won(success))
    # Talk time is billed per call placed, redials included: read it from every attempt.
    if len(calls):
        secs = pd.to_numeric(calls["duration_seconds"], errors="coerce").clip(lower=0)
        talk_s = float(secs.fillna(0).sum())
        placed = int(calls["placed_at"].notna().sum())
    else:
        talk_s, placed = 0.0, 0
    cost = None
    if rc.cost_per_minute is not None or rc.cost_per_call is not None:
        cost = round((rc.cost_per_minute or 0) * talk_s / 60 + (rc.cost_per_call or 0) * placed,
                     2)
    tiles = {
        "rows": rows.n, "dialed": n_dialed, "reached": n_reached,
        "answer_rate": ratio(n_reached, n_dialed), "conversions": n_won,
        "conversion_rate": ratio(n_won, n_dialed), "talk_minutes": round(talk_s / 60, 1),
        "calls_placed": placed, "cost": cost,
        "cost_per_conversion": round(cost / n_won, 2) if cost is not None and n_won else None,
    }
    dialed = rows.dialed
    # Recipient's local day and hour at dialing (the first zone when a number may be in two):
    # the dialed rows counted per local-time text (few distinct local minutes), each text
    # read once.
    by_time = rows.groups(text_array(df, "local_times"), where=dialed)
    texts = sorted({g.key for g in by_time})
    days, hours = _day_hours(texts)
    cell_of: dict[str, int] = {}
    for t, d, h in zip(texts, days, hours, strict=True):
        if not np.isnan(d) and not np.isnan(h) and 0 <= h <= 23:
            cell_of[t] = int(d) * 24 + int(h)
    heat = [[{"dialed": 0, "reached": 0, "conversions": 0} for _ in range(24)]
            for _ in range(7)]
    for g in by_time:
        c = cell_of.get(g.key)
        if c is None:
            continue
        cell = heat[c // 24][c % 24]
        cell["dialed"] += g.rows
        cell["reached"] += g.rows if g.connected else 0
        cell["conversions"] += g.rows if g.won(success) else 0
    known = sum(cell["dialed"] for day in heat for cell in day)
    by_hour = [Rates(f"{h:02d}", sum(heat[d][h]["dialed"] for d in range(7)),
                     sum(heat[d][h]["reached"] for d in range(7)),
                     sum(heat[d][h]["conversions"] for d in range(7))) for h in range(24)]
    by_day = [Rates(WEEKDAYS[d], sum(c["dialed"] for c in heat[d]),
                    sum(c["reached"] for c in heat[d]),
                    sum(c["conversions"] for c in heat[d])) for d in range(7)]
    hours_order = [f"{h:02d}" for h in range(24)]
    prefixes = pc.utf8_slice_codeunits(text_array(df, "phone_e164"), 0, 5)
    by_prefix = rows.groups(prefixes, where=dialed)
    states = _states(sorted({g.key for g in by_prefix}))
    segments = {}
    for col in rc.segment_by:
        name = col if col in df.columns else f"input.{col}"
        if name not in df.columns:
            continue
        by_value = rows.groups(text_array(df, name), where=dialed)
        segments[col] = _rate_rows(rates_by_key(by_value, success, str.strip),
                                   limit=SEGMENT_LIMIT)
    return {
        "success_outcomes": success,
        "tiles": tiles,
        "heatmap": {"weekdays": list(WEEKDAYS), "cells": heat,
                    "dialed_without_local_time": n_dialed - known},
        "by_local_hour": [{**r, "label": f"{r['key']}:00–{int(r['key']) + 1:02d}:00"}
                          for r in _rate_rows(by_hour, order=hours_order)],
        "by_weekday": _rate_rows(by_day, order=list(WEEKDAYS)),
        "by_state": _rate_rows(rates_by_key(by_prefix, success,
                                            lambda p: states.get(p, "(unknown)")),
                               limit=SEGMENT_LIMIT),
        "segments": segments,
        "outcome_labels": {k: label(k) for k in
                           sorted({*(g.outcome for g in groups), *success, "(none)"})},
    }
