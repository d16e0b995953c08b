"""The sales side of the summary: outcomes by agent, A/B test, segments, when calls land."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from campaign_dialer.report.common import WEEKDAYS, _ratio, _text, connected_mask, label

if TYPE_CHECKING:
    from campaign_dialer.config import Campaign


SEGMENT_LIMIT = 15  # the biggest values of a segment column; the rest in "others"


# Local time at dialing as compliance writes it: "2026-06-09T13:00-04:00 ..." (first zone)
_LOCAL_DAY_HOUR = r"^\s*(\d{4}-\d{2}-\d{2})[T ](\d{1,2}):"


def display_zone(campaign: Campaign) -> Any:
    """`[report] display_timezone`, else the machine's own zone (UTC when it has none)."""
    from zoneinfo import ZoneInfo

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
    keys: pd.Series, dialed: pd.Series, reached: pd.Series, won: pd.Series,
    *, order: Sequence[str] | None = None, limit: int | None = None, labels: bool = False,
) -> list[dict[str, Any]]:
    """Dialed rows, answer rate and conversion rate per key (dialed rows only)."""
    frame = pd.DataFrame({"k": keys[dialed].to_numpy(), "r": reached[dialed].to_numpy(),
                          "w": won[dialed].to_numpy()})
    g = frame.groupby("k", sort=False).agg(n=("r", "size"), r=("r", "sum"), w=("w", "sum"))
    if order is not None:
        g = g.reindex(order, fill_value=0)
    else:
        g = g.sort_values("n", ascending=False, kind="stable")
    items = [(str(k), int(x.n), int(x.r), int(x.w)) for k, x in g.iterrows()]
    if limit is not None and len(items) > limit:
        rest = items[limit - 1:]
        items = [*items[: limit - 1], (f"{len(rest)} others", sum(x[1] for x in rest),
                                       sum(x[2] for x in rest), sum(x[3] for x in rest))]
    return [{"key": k, "label": label(k) if labels else (k or "(blank)"), "dialed": n,
             "reached": r, "answer_rate": _ratio(r, n), "conversions": w,
             "conversion_rate": _ratio(w, n)} for k, n, r, w in items]


def _states(phones: pd.Series) -> pd.Series:
    """US/CA state of each number's area code (computed once per area code)."""
    from campaign_dialer.compliance import state_for_number

    prefix = phones.str.slice(0, 5)
    out: dict[str, str] = {}
    for p in prefix.unique():
        if isinstance(p, str) and p.startswith("+1") and len(p) == 5:
            out[p] = state_for_number(p + "5550100") or "(unknown)"
    return prefix.map(out).fillna("(unknown)")


def business(df: pd.DataFrame, calls: pd.DataFrame, campaign: Campaign) -> dict[str, Any]:
    """Tiles, the hour x weekday heatmap and the breakdowns, all from the results rows."""
    rc = campaign.model.report
    success = list(rc.success_outcomes)
    disp = _text(df["disposition"])
    dialed = disp.eq("dialed")
    reached = connected_mask(df)
    won = dialed & _text(df["outcome"]).isin(success)
    n_dialed, n_reached, n_won = int(dialed.sum()), int(reached.sum()), int(won.sum())
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
        "rows": len(df), "dialed": n_dialed, "reached": n_reached,
        "answer_rate": _ratio(n_reached, n_dialed), "conversions": n_won,
        "conversion_rate": _ratio(n_won, n_dialed), "talk_minutes": round(talk_s / 60, 1),
        "calls_placed": placed, "cost": cost,
        "cost_per_conversion": round(cost / n_won, 2) if cost is not None and n_won else None,
    }
    # Recipient's local day and hour at dialing (the first zone when a number may be in two).
    lt = _text(df["local_times"]) if "local_times" in df else pd.Series("", index=df.index)
    codes, uniques = pd.factorize(lt.where(dialed, ""))  # few distinct local minutes
    parts = pd.Series(uniques, dtype="string").str.extract(_LOCAL_DAY_HOUR)
    u_day = pd.to_datetime(parts[0], errors="coerce", format="%Y-%m-%d").dt.day_of_week
    u_hour = pd.to_numeric(parts[1], errors="coerce")
    day = pd.Series(u_day.to_numpy(dtype=float, na_value=np.nan)[codes], index=df.index)
    hour = pd.Series(u_hour.to_numpy(dtype=float, na_value=np.nan)[codes], index=df.index)
    known = dialed & day.notna() & hour.between(0, 23)
    cell = (day.where(known, 0) * 24 + hour.where(known, 0)).astype(int)
    n_cells = 7 * 24
    counts = [np.bincount(cell[known & m], minlength=n_cells)
              for m in (known, reached, won)]
    heat = [[{"dialed": int(counts[0][d * 24 + h]), "reached": int(counts[1][d * 24 + h]),
              "conversions": int(counts[2][d * 24 + h])} for h in range(24)] for d in range(7)]
    hours = [f"{h:02d}" for h in range(24)]
    hkey = hour.where(known, -1).astype(int).map(lambda h: f"{h:02d}")
    dkey = day.where(known, -1).astype(int).map(lambda d: WEEKDAYS[d] if d >= 0 else "")
    phones = _text(df["phone_e164"]) if "phone_e164" in df else pd.Series("", index=df.index)
    segments = {}
    for col in rc.segment_by:
        name = col if col in df.columns else f"input.{col}"
        if name not in df.columns:
            continue
        segments[col] = _rate_rows(_text(df[name]).str.strip(), dialed, reached, won,
                                   limit=SEGMENT_LIMIT)
    return {
        "success_outcomes": success,
        "tiles": tiles,
        "heatmap": {"weekdays": list(WEEKDAYS), "cells": heat,
                    "dialed_without_local_time": int((dialed & ~known).sum())},
        "by_local_hour": [{**r, "label": f"{r['key']}:00–{int(r['key']) + 1:02d}:00"}
                          for r in _rate_rows(hkey, known, reached, won, order=hours)],
        "by_weekday": _rate_rows(dkey, known, reached, won, order=list(WEEKDAYS)),
        "by_state": _rate_rows(_states(phones), dialed, reached, won, limit=SEGMENT_LIMIT),
        "segments": segments,
        "outcome_labels": {k: label(k) for k in
                           sorted({*_text(df["outcome"]).unique(), *success, "(none)"})},
    }
