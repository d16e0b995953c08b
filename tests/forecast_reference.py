"""The forecast as it was before issue #25: a walk over every materialised plan row.

Kept as the reference the vectorised `campaign_dialer.forecast.forecast` is checked against
(tests/test_forecast_columns.py) and measured beside (scripts/bench_scale.py). Unchanged
but for this docstring and the unused helpers dropped.

Before dialing: when will this campaign finish, and what will still wait?

A pure estimate from the plan (rows eligible now, or pending with a window ahead), the calling
windows of each row's zones (the gate's own `hours_on`, so state rules and holidays count),
the pacing, `max_live_calls` and an expected call duration. Calls go out in plan order, as
fast as the slower of the pacing and `max_live_calls / expected duration` allows, whenever
the row's window is open in every zone it may be in. No network, no writes.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from campaign_dialer.vocab import DIALED, ERROR, PENDING, REJECTED, SUPPRESSED

HORIZON_DAYS = 14  # as far as the gate looks for a next window
SETTLED = frozenset({DIALED, REJECTED, SUPPRESSED, ERROR})
WAITING_SHOWN = 20


@dataclass
class Window:
    """One zone group's calling window on one local day."""

    zones: tuple[str, ...]
    start: datetime
    end: datetime
    rows: list[int] = field(default_factory=list)
    capacity: int = 0

    @property
    def day(self) -> str:
        """The window's local date (in its first zone): "the 9 June windows"."""
        if not self.zones:
            return f"{self.start:%Y-%m-%d}"
        from zoneinfo import ZoneInfo

        return f"{self.start.astimezone(ZoneInfo(self.zones[0])):%Y-%m-%d}"

    @property
    def label(self) -> str:
        if not self.zones:
            return f"any zone {self.start:%a %Y-%m-%d %H:%M}–{self.end:%H:%M} UTC"
        from zoneinfo import ZoneInfo

        zi = ZoneInfo(self.zones[0])
        a, b = self.start.astimezone(zi), self.end.astimezone(zi)
        return f"{'/'.join(self.zones)} {a:%a %Y-%m-%d %H:%M}–{b:%H:%M} local"


def _intervals(window: Any, zones: Sequence[str], states: Sequence[str], at: datetime,
               until: datetime) -> list[tuple[datetime, datetime]]:
    """UTC intervals inside the window in every one of `zones` between `at` and `until`."""
    if not zones:
        return [(at, until)]
    common = [(at, until)]
    for z in zones:
        mine = window.open_intervals(z, tuple(states), at, days=(until - at).days + 1)
        common = [(max(a, c), min(b, d)) for a, b in common for c, d in mine
                  if max(a, c) < min(b, d)]
    return common


def call_rate(cps: float, max_live: int, call_seconds: float) -> float:
    """New calls per second the campaign can sustain: pacing, or live slots turning over."""
    return min(cps, max_live / max(call_seconds, 1e-9))


def forecast(plan: Any, *, call_seconds: float, call_seconds_source: str,
             settled: Iterable[int] = ()) -> dict[str, Any]:
    """Windows, rows each can take, rows placed in each, the finish, and what still waits."""
    cfg = plan.campaign.model
    at = plan.at.astimezone(UTC)
    until = at + timedelta(days=HORIZON_DAYS)
    rate = call_rate(cfg.pacing.calls_per_second, cfg.api.max_live_calls, call_seconds)
    done = set(settled)
    window = plan.gate.window
    allow_unknown = getattr(window, "allow_unknown_timezone", False)
    groups: dict[tuple[Any, ...], list[tuple[int, int]]] = {}
    cand_cache: dict[tuple[Any, ...], tuple[tuple[str, ...], tuple[str, ...]] | None] = {}
    never: list[tuple[int, str]] = []
    for r in plan.rows:
        if r.row in done or r.disposition == SUPPRESSED or r.person is None:
            continue
        if r.disposition == PENDING and r.next_open is None:
            never.append((r.row, r.reason or PENDING))
            continue
        phone = r.phone_e164 or ""
        ck = (phone[:5] if phone.startswith("+1") else phone, r.tz_hint)
        if ck not in cand_cache:
            zones, states, _ = window.candidates(r.phone_e164, r.tz_hint)
            cand_cache[ck] = (zones, states) if zones or allow_unknown else None
        cand = cand_cache[ck]
        if cand is None:
            never.append((r.row, "unknown_timezone"))
            continue
        earliest = at if r.next_open is None or r.next_open <= at else r.next_open
        key = (*cand, earliest.replace(minute=0, second=0, microsecond=0)
               if earliest > at else at)
        groups.setdefault(key, []).append((r.order, r.row))
    windows: list[Window] = []
    # per group: its open intervals (as windows) and its queue of rows in plan order
    events: list[tuple[datetime, int, int, int]] = []  # (time, +1 open / -1 close, group, win)
    queues: list[list[tuple[int, int]]] = []
    group_wins: list[list[int]] = []
    for g, ((zones, states, earliest), rows) in enumerate(groups.items()):
        rows.sort()
        queues.append(rows)
        wins = []
        for a, b in _intervals(window, zones, states, earliest, until):
            wins.append(len(windows))
            windows.append(Window(tuple(zones), a, b))
            events.append((a, 1, g, wins[-1]))
            events.append((b, -1, g, wins[-1]))
        group_wins.append(wins)
    events.sort(key=lambda e: (e[0], e[1]))
    heads = [0] * len(queues)
    open_win: dict[int, int] = {}  # group -> window open now
    last_at: datetime | None = None
    t = at
    carry = 0.0  # fraction of a call's slot left over between segments
    placed_at: dict[int, datetime] = {}
    for i, (when, kind, g, wi) in enumerate(events):
        if when > t and open_win:
            carry = _serve(t, when, rate, carry, open_win, queues, heads, windows, placed_at)
            if placed_at:
                last_at = max(placed_at.values())
        t = max(t, when)
        if kind == 1:
            open_win[g] = wi
        else:
            open_win.pop(g, None)
        if i + 1 < len(events) and events[i + 1][0] > t and not open_win:
            carry = 0.0
    # capacity of each window: what it could take on its own share of the time it is open
    for w in windows:
        w.capacity = int((w.end - w.start).total_seconds() * rate)
    waiting = [(row, "no window within 14 days") for g, q in enumerate(queues)
               for _, row in q[heads[g]:]] + never
    waiting.sort()
    used = [w for w in windows if w.rows]
    finish = max(used, key=lambda w: max(placed_at[r] for r in w.rows)) if used else None
    # a day's capacity: the time any window with rows is open that (local) day, at `rate`
    spans: dict[str, list[tuple[datetime, datetime]]] = {}
    placed_on: dict[str, int] = {}
    for w in windows:
        day = w.day
        spans.setdefault(day, []).append((w.start, w.end))
        placed_on[day] = placed_on.get(day, 0) + len(w.rows)
    last_day = max((w.day for w in used), default=None)
    days = {d: {"capacity": int(_union_seconds(iv) * rate), "rows": placed_on[d]}
            for d, iv in spans.items() if last_day is not None and d <= last_day}
    to_place = sum(len(q) for q in queues) + len(never)
    return {
        "at": _iso(at),
        "rows_to_place": to_place,
        "rows_placed": len(placed_at),
        "call_seconds": round(call_seconds, 1),
        "call_seconds_source": call_seconds_source,
        "calls_per_second": round(rate, 4),
        "finishes_at": _iso(last_at + timedelta(seconds=call_seconds)) if last_at else None,
        "finishes_in_window": _win(finish) if finish else None,
        "windows": [_win(w) for w in used],
        "days": [{"date": k, **v} for k, v in sorted(days.items())],
        "waiting": {"rows": len(waiting),
                    "first": [{"row": r, "why": why} for r, why in waiting[:WAITING_SHOWN]]},
    }


def _serve(
    t0: datetime, t1: datetime, rate: float, carry: float, open_win: dict[int, int],
    queues: list[list[tuple[int, int]]], heads: list[int], windows: list[Window],
    placed_at: dict[int, datetime],
) -> float:
    """Place waiting rows of the open groups, in plan order, at `rate` from t0 until t1."""
    slots = (t1 - t0).total_seconds() * rate + carry
    n = int(math.floor(slots + 1e-9))
    heap = [(queues[g][heads[g]][0], g) for g in open_win if heads[g] < len(queues[g])]
    heapq.heapify(heap)
    k = 0
    while heap and k < n:
        _, g = heapq.heappop(heap)
        row = queues[g][heads[g]][1]
        heads[g] += 1
        windows[open_win[g]].rows.append(row)
        placed_at[row] = t0 + timedelta(seconds=k / rate)
        k += 1
        if heads[g] < len(queues[g]):
            heapq.heappush(heap, (queues[g][heads[g]][0], g))
    return 0.0 if not heap else slots - n  # capacity nobody used is gone


def _union_seconds(intervals: list[tuple[datetime, datetime]]) -> float:
    total, end = 0.0, None
    for a, b in sorted(intervals):
        if end is not None and a < end:
            if b > end:
                total += (b - end).total_seconds()
                end = b
            continue
        total += (b - a).total_seconds()
        end = b
    return total


def _win(w: Window) -> dict[str, Any]:
    return {"zones": list(w.zones), "day": w.day, "start": _iso(w.start), "end": _iso(w.end),
            "capacity": w.capacity, "rows": len(w.rows), "label": w.label}


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
