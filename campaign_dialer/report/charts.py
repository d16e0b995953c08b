"""Inline SVG charts for the page: no script, no external file."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pandas as pd

from campaign_dialer.report.common import COLORS, label
from campaign_dialer.vocab import (
    DISPOSITIONS,
)


def _nice(v: float) -> float:
    if v <= 0:
        return 1.0
    mag = 10 ** math.floor(math.log10(v))
    return next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= v)


def _fmt(v: float) -> str:
    return f"{v:,}" if isinstance(v, int) else f"{v:,.2f}".rstrip("0").rstrip(".")


def _short(label: str, n: int = 28) -> str:
    return label if len(label) <= n else label[: n - 1] + "…"


def hbar(
    items: Sequence[tuple[str, float]], *, colors: Sequence[str] | None = None,
    width: int = 560, label_w: int = 190, empty: str = "none", limit: int = 16,
) -> dict[str, Any]:
    if len(items) > limit:  # many distinct labels (a chatty API): the long tail in one bar
        rest = items[limit - 1:]
        items = [*items[: limit - 1], (f"{len(rest)} others", sum(v for _, v in rest))]
        colors = colors[:limit] if colors else None
    top = max((v for _, v in items), default=0) or 1
    area = width - label_w - 70
    bars = []
    for i, (name, v) in enumerate(items):
        bars.append({
            "label": str(name), "short": _short(str(name)), "text": _fmt(v), "y": i * 24,
            "w": round(area * v / top, 1),
            "color": colors[i] if colors else COLORS["bar"],
        })
    return {"width": width, "height": len(items) * 24 + 4, "label_w": label_w, "bars": bars,
            "empty": empty}


def columns(
    values: Sequence[float], labels: Sequence[str], *, band: tuple[float, float] | None = None,
    width: int = 560, height: int = 200, every: int = 1, empty: str = "none",
    color: str = COLORS["bar"], highlight: Sequence[bool] | None = None,
) -> dict[str, Any]:
    left, bottom, topp = 44, 22, 8
    n = max(len(values), 1)
    plot_w, plot_h = width - left - 8, height - bottom - topp
    step = plot_w / n
    ymax = _nice(max(values, default=0))
    bars, ticks = [], []
    for i, v in enumerate(values):
        h = plot_h * v / ymax
        bars.append({"x": round(left + i * step + step * 0.1, 1), "w": round(step * 0.8, 1),
                     "y": round(topp + plot_h - h, 1), "h": round(h, 1), "label": labels[i],
                     "text": _fmt(v),
                     "color": COLORS["ref"] if highlight and highlight[i] and v else color})
        if i % every == 0:
            ticks.append({"x": round(left + i * step + step / 2, 1), "text": labels[i]})
    band_px = None
    if band is not None:
        band_px = {"x": round(left + band[0] * step, 1), "w": round((band[1] - band[0]) * step, 1)}
    return {"width": width, "height": height, "left": left, "top": topp, "plot_h": plot_h,
            "plot_w": plot_w, "bars": bars, "ticks": ticks, "band": band_px,
            "ymax": _fmt(ymax if ymax != int(ymax) else int(ymax)), "empty": empty,
            "has_data": any(values)}


def line(
    values: Sequence[float], *, ref: float | None, ref_label: str, x_labels: Sequence[str],
    width: int = 560, height: int = 200, color: str = COLORS["bar"], empty: str = "none",
) -> dict[str, Any]:
    left, bottom, topp = 44, 22, 8
    plot_w, plot_h = width - left - 8, height - bottom - topp
    n = len(values)
    ymax = _nice(max([*values, ref or 0]) * 1.1) if n else 1.0
    step = plot_w / max(n - 1, 1)

    def y(v: float) -> float:
        return round(topp + plot_h - plot_h * v / ymax, 1)

    pts = " ".join(f"{round(left + i * step, 1)},{y(v)}" for i, v in enumerate(values))
    k = max(n // 5, 1)
    ticks = [{"x": round(left + i * step, 1), "text": x_labels[i]} for i in range(0, n, k)]
    return {"width": width, "height": height, "left": left, "top": topp, "plot_h": plot_h,
            "plot_w": plot_w, "points": pts, "ticks": ticks, "color": color,
            "ref_y": y(ref) if ref is not None else None, "ref_label": ref_label,
            "ymax": _fmt(ymax if ymax != int(ymax) else int(ymax)), "empty": empty,
            "has_data": n > 0}


def _labelled(counts: dict[str, int]) -> list[tuple[str, int]]:
    """Chart bars under readable labels; the codes stay in summary.json and the exports."""
    return [(label(k), v) for k, v in counts.items()]


def charts(s: dict[str, Any]) -> dict[str, Any]:
    """Every chart of the page, drawn from the summary so its numbers are the JSON's."""
    out: dict[str, Any] = {}
    funnel = s["funnel"]
    out["funnel"] = hbar([(f["label"], f["rows"]) for f in funnel])
    out["dispositions"] = hbar(
        [(label(d), s["by_disposition"][d]) for d in DISPOSITIONS],
        colors=[COLORS[d] for d in DISPOSITIONS],
    )
    out["suppression"] = hbar(_labelled(s["suppression_reasons"]), empty="no row held back")
    out["pending"] = hbar(_labelled(s["pending_reasons"]), empty="no row pending")
    out["outcomes"] = hbar(_labelled(s["outcomes"]), empty="no call dialed yet")
    out["statuses"] = hbar(_labelled(s["statuses"]), empty="no call dialed yet")
    out["rejections"] = hbar(list(s["rejections"]["by_reason"].items()), empty="no 409")
    out["http409"] = hbar(list(s["rejections"]["http_409_by_code"].items()),
                          empty="no 409 response")
    out["row_errors"] = hbar(list(s["errors"]["by_reason"].items()), empty="no error")
    out["http_errors"] = hbar(list(s["http"]["errors_by_code"].items()),
                              empty="no HTTP error")
    ppa = s["retries"]["posts_per_attempt"]
    out["posts"] = hbar([(f"{k} POST{'s' if k != '1' else ''}", v) for k, v in ppa.items()],
                        empty="no POST sent")
    tl = s["timeline"]
    if tl["bucket_seconds"]:
        b = tl["bucket_seconds"]
        t0 = datetime.fromisoformat(tl["start"].replace("Z", "+00:00"))
        long_span = b * len(tl["requests"]) > 86400
        labels = [
            (t0 + pd.Timedelta(seconds=i * b)).strftime("%m-%d %H:%M" if long_span
                                                        else "%H:%M:%S")
            for i in range(len(tl["requests"]))
        ]
        out["placed"] = line([round(x / b, 3) for x in tl["requests"]],
                             ref=tl["calls_per_second"], ref_label="configured pacing",
                             x_labels=labels)
        out["live"] = line(tl["live"], ref=tl["max_live_calls"], ref_label="max live calls",
                           x_labels=labels, color=COLORS["live"])
    else:
        out["placed"] = line([], ref=None, ref_label="", x_labels=[],
                             empty="no call placed yet")
        out["live"] = out["placed"]
    lh = s["local_hours"]
    start_h = int(lh["window"][0][:2]) + int(lh["window"][0][3:]) / 60
    end_h = int(lh["window"][1][:2]) + int(lh["window"][1][3:]) / 60
    outside = [h + 1 <= start_h or h >= end_h for h in range(24)]  # wholly outside
    out["hours"] = columns(lh["by_hour"], [f"{h:02d}" for h in range(24)],
                           band=(start_h, end_h), every=2, highlight=outside,
                           empty="no call placed yet")
    d = s["durations"]
    hist = d["histogram"]
    if hist["counts"]:
        w = hist["bin_seconds"]
        labs = [f"{i * w}" for i in range(len(hist["counts"]))]
        out["durations"] = columns(hist["counts"], labs, every=max(len(labs) // 8, 1))
    else:
        out["durations"] = columns([], [], empty="no duration recorded")
    return out
