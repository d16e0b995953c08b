"""`campaign_dialer.forecast.forecast` as it was on main at bbd2c46 (decoding every label
column to a string a row, masks through arrow booleans, an object per waiting row): the
oracle the slice-by-slice forecast is checked against (tests/test_forecast_oracle.py).
Unchanged but for this docstring.

Its own docstring: before dialing, when will this campaign finish, and what will still wait?
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from campaign_dialer.vocab import DIALED, ERROR, PENDING, REJECTED, SUPPRESSED

HORIZON_DAYS = 14  # as far as the gate looks for a next window
SETTLED = frozenset({DIALED, REJECTED, SUPPRESSED, ERROR})
WAITING_SHOWN = 20


@dataclass
class Window:
    """One zone group's calling window on one local day, and the rows the forecast put in it."""

    zones: tuple[str, ...]
    start: datetime
    end: datetime
    placed: int = 0
    last: datetime | None = None  # when its last row is placed
    capacity: int = 0

    @property
    def day(self) -> str:
        """The window's local date (in its first zone): "the 9 June windows"."""
        if not self.zones:
            return f"{self.start:%Y-%m-%d}"
        return f"{self.start.astimezone(ZoneInfo(self.zones[0])):%Y-%m-%d}"

    @property
    def label(self) -> str:
        if not self.zones:
            return f"any zone {self.start:%a %Y-%m-%d %H:%M}–{self.end:%H:%M} UTC"
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


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_HOUR_NS = 3_600 * 10**9
_NAT = np.iinfo(np.int64).min  # the plan's next_open "none"


def _at_ns(ns: int) -> datetime:
    """The plan's ns instant as a datetime (below a microsecond dropped, as the plan does)."""
    return _EPOCH + timedelta(microseconds=ns // 1_000)


def _plain(arr: Any) -> pa.Array:
    """A plan column as one plain (not dictionary-encoded) large_string arrow array."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if not isinstance(arr, pa.Array):
        arr = pa.array(arr, type=pa.large_string(), from_pandas=True)
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    return arr.cast(pa.large_string()) if arr.type != pa.large_string() else arr


def _np(mask: Any) -> np.ndarray:
    """A boolean arrow array as numpy, null as False."""
    return np.asarray(pc.fill_null(mask, False).to_numpy(zero_copy_only=False), dtype=bool)


def _filled(arr: pa.Array) -> Any:
    """Present and not blank."""
    return pc.and_(pc.is_valid(arr), pc.not_equal(pc.fill_null(arr, ""), ""))


def _take(arr: pa.Array, mask: np.ndarray) -> pa.Array:
    return arr.filter(pa.array(mask)) if len(arr) else arr


def _codes(arr: pa.Array) -> np.ndarray:
    """One code per distinct value, missing values one code of their own (`pd.factorize`
    with `use_na_sentinel=False`: which code is which does not matter here)."""
    if not len(arr):
        return np.zeros(0, dtype=np.int64)
    enc = pc.dictionary_encode(arr, null_encoding="encode")
    return np.asarray(enc.indices.to_numpy(zero_copy_only=False), dtype=np.int64)


@dataclass
class _Queues:
    """The rows to place, by group (zone set, rule states, earliest start), in plan order."""

    orders: list[np.ndarray]
    rows: list[np.ndarray]
    heads: list[int]

    def left(self, g: int) -> int:
        return len(self.orders[g]) - self.heads[g]


def forecast(plan: Any, *, call_seconds: float, call_seconds_source: str,
             settled: Iterable[int] = (),
             placements: dict[int, datetime] | None = None) -> dict[str, Any]:
    """Windows, rows each can take, rows placed in each, the finish, and what still waits.
    `placements`, when given, receives each placed row's forecast instant (by row).

    Computed from the plan's columns (no Python object per row): rows are grouped by the
    zones and rule states their number and hint give and the hour they may start; groups'
    windows open and close in time, and in each stretch the open groups' rows go out in
    plan order at `rate`.
    """
    cfg = plan.campaign.model
    at = plan.at.astimezone(UTC)
    until = at + timedelta(days=HORIZON_DAYS)
    rate = call_rate(cfg.pacing.calls_per_second, cfg.api.max_live_calls, call_seconds)
    window = plan.gate.window
    allow_unknown = getattr(window, "allow_unknown_timezone", False)
    c = plan.rows.columns
    rows = np.asarray(c["row"], dtype=np.int64)
    nxt = np.asarray(c["next_open"], dtype=np.int64)
    phone, hint = _plain(c["phone"]), _plain(c["hint"])
    disp, reason = _plain(c["disposition"]), _plain(c["reason"])
    order = np.arange(len(rows), dtype=np.int64)
    done = np.fromiter(settled, dtype=np.int64)
    has_person = _np(pc.or_(_filled(phone), _filled(_plain(c["cid"]))))
    keep = has_person & ~_np(pc.equal(disp, SUPPRESSED)) & ~np.isin(rows, done)
    no_next = nxt == _NAT
    never_open = keep & _np(pc.equal(disp, PENDING)) & no_next
    never_rows = [rows[never_open]]
    never_why = [np.array([r or PENDING for r in _take(reason, never_open).to_pylist()],
                          dtype=object)]
    live = np.flatnonzero(keep & ~never_open)
    # the zones of a number depend on its country code and area code (and the hint): one
    # look-up per distinct (prefix, hint), with the first such row's own number
    live_idx = pa.array(live)
    ph = pc.fill_null(phone.take(live_idx), "")
    prefix = pc.if_else(pc.starts_with(ph, "+1"), pc.utf8_slice_codeunits(ph, 0, 5), ph)
    p_codes = _codes(prefix)
    h_codes = _codes(hint.take(live_idx))
    _, first, ck_codes = np.unique(p_codes * (int(h_codes.max(initial=0)) + 1) + h_codes,
                                   return_index=True, return_inverse=True)
    ck_codes = ck_codes.reshape(-1)
    cand_ids: dict[tuple[tuple[str, ...], tuple[str, ...]], int] = {}
    cands: list[tuple[tuple[str, ...], tuple[str, ...]]] = []
    ck_cand = np.empty(len(first), dtype=np.int64)
    at_first = pa.array(live[first])
    for k, (number, zone_hint) in enumerate(zip(phone.take(at_first).to_pylist(),
                                                hint.take(at_first).to_pylist(), strict=True)):
        zones, states, _ = window.candidates(number, zone_hint)
        if not zones and not allow_unknown:
            ck_cand[k] = -1
            continue
        key = (tuple(zones), tuple(states))
        if key not in cand_ids:
            cand_ids[key] = len(cands)
            cands.append(key)
        ck_cand[k] = cand_ids[key]
    row_cand = ck_cand[ck_codes] if len(live) else np.empty(0, dtype=np.int64)
    unknown = row_cand < 0
    never_rows.append(rows[live[unknown]])
    never_why.append(np.full(int(unknown.sum()), "unknown_timezone", dtype=object))
    live, row_cand = live[~unknown], row_cand[~unknown]
    # the hour each row may start: now, or the hour its next window opens
    at_us = (at - _EPOCH) // timedelta(microseconds=1)
    n_live = nxt[live]
    later = (n_live != _NAT) & (n_live // 1_000 > at_us)
    start = np.where(later, n_live - n_live % _HOUR_NS, _NAT)
    s_codes, s_uniq = pd.factorize(start)
    g_codes, g_uniq = pd.factorize(row_cand * (len(s_uniq) + 1) + s_codes)
    by_group = np.argsort(g_codes, kind="stable")
    bounds = np.searchsorted(g_codes[by_group], np.arange(len(g_uniq) + 1))
    queues = _Queues([], [], [0] * len(g_uniq))
    windows: list[Window] = []
    events: list[tuple[datetime, int, int, int]] = []  # (time, +1 open / -1 close, group, win)
    for g, key in enumerate(g_uniq.tolist()):
        ci, si = divmod(int(key), len(s_uniq) + 1)
        zones, states = cands[ci]
        earliest = at if int(s_uniq[si]) == _NAT else _at_ns(int(s_uniq[si]))
        idx = live[by_group[bounds[g]:bounds[g + 1]]]
        queues.orders.append(order[idx])
        queues.rows.append(rows[idx])
        for a, b in _intervals(window, zones, states, earliest, until):
            events.append((a, 1, g, len(windows)))
            events.append((b, -1, g, len(windows)))
            windows.append(Window(zones, a, b))
    events.sort(key=lambda e: (e[0], e[1]))
    open_win: dict[int, int] = {}  # group -> window open now
    last_at: datetime | None = None
    t = at
    carry = 0.0  # fraction of a call's slot left over between segments
    placed = 0
    for i, (when, kind, g, wi) in enumerate(events):
        if when > t and open_win:
            carry, n, seg_last = _serve(t, when, rate, carry, open_win, queues, windows,
                                        placements)
            placed += n
            if seg_last is not None and (last_at is None or seg_last > last_at):
                last_at = seg_last
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
    w_rows = [queues.rows[g][queues.heads[g]:] for g in range(len(g_uniq))]
    wait_rows = np.concatenate([*w_rows, *never_rows])
    wait_why = np.concatenate([
        *(np.full(len(r), "no window within 14 days", dtype=object) for r in w_rows),
        *never_why,
    ])
    first_wait = np.argsort(wait_rows, kind="stable")[:WAITING_SHOWN]
    used = [w for w in windows if w.placed]
    finish = max(used, key=lambda w: w.last or at) if used else None
    # a day's capacity: the time any window with rows is open that (local) day, at `rate`
    spans: dict[str, list[tuple[datetime, datetime]]] = {}
    placed_on: dict[str, int] = {}
    for w in windows:
        day = w.day
        spans.setdefault(day, []).append((w.start, w.end))
        placed_on[day] = placed_on.get(day, 0) + w.placed
    last_day = max((w.day for w in used), default=None)
    days = {d: {"capacity": int(_union_seconds(iv) * rate), "rows": placed_on[d]}
            for d, iv in spans.items() if last_day is not None and d <= last_day}
    to_place = sum(len(q) for q in queues.orders) + sum(len(r) for r in never_rows)
    return {
        "at": _iso(at),
        "rows_to_place": to_place,
        "rows_placed": placed,
        "call_seconds": round(call_seconds, 1),
        "call_seconds_source": call_seconds_source,
        "calls_per_second": round(rate, 4),
        "finishes_at": _iso(last_at + timedelta(seconds=call_seconds)) if last_at else None,
        "finishes_in_window": _win(finish) if finish else None,
        "windows": [_win(w) for w in used],
        "days": [{"date": k, **v} for k, v in sorted(days.items())],
        "waiting": {"rows": len(wait_rows),
                    "first": [{"row": int(wait_rows[k]), "why": str(wait_why[k])}
                              for k in first_wait.tolist()]},
    }


def _serve(
    t0: datetime, t1: datetime, rate: float, carry: float, open_win: dict[int, int],
    queues: _Queues, windows: list[Window], placed_at: dict[int, datetime] | None = None,
) -> tuple[float, int, datetime | None]:
    """Place waiting rows of the open groups, in plan order, at `rate` from t0 until t1:
    the k-th row placed goes out at t0 + k / rate. Returns (carry, rows placed, the last
    one's time)."""
    slots = (t1 - t0).total_seconds() * rate + carry
    n = int(math.floor(slots + 1e-9))
    groups = [g for g in open_win if queues.left(g) > 0]
    if not groups:
        return 0.0, 0, None
    # at most n rows from each open group's head; the n first in plan order go out
    heads = [queues.orders[g][queues.heads[g]:queues.heads[g] + n] for g in groups]
    orders = np.concatenate(heads)
    owner = np.repeat(np.arange(len(groups)), [len(h) for h in heads])
    take = min(n, len(orders))
    if take < len(orders):
        pick = np.argpartition(orders, take - 1)[:take] if take else np.empty(0, np.int64)
        orders, owner = orders[pick], owner[pick]
    rank = np.argsort(orders, kind="stable")
    owner = owner[rank]  # owner of the k-th row placed
    last_at: datetime | None = None
    for j, g in enumerate(groups):
        ks = np.flatnonzero(owner == j)
        if not len(ks):
            continue
        if placed_at is not None:  # the group's head rows go out at their ranks, in order
            head = queues.heads[g]
            for r, k in zip(queues.rows[g][head:head + len(ks)].tolist(), ks.tolist(),
                            strict=True):
                placed_at[int(r)] = t0 + timedelta(seconds=int(k) / rate)
        queues.heads[g] += len(ks)
        w = windows[open_win[g]]
        w.placed += len(ks)
        when = t0 + timedelta(seconds=int(ks[-1]) / rate)
        if w.last is None or when > w.last:
            w.last = when
        if last_at is None or when > last_at:
            last_at = when
    more = any(queues.left(g) > 0 for g in groups)
    return (slots - n if more else 0.0), take, last_at


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
            "capacity": w.capacity, "rows": w.placed, "label": w.label}


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def expected_call_seconds(campaign: Any, history: Any) -> tuple[float, str]:
    """Median live time (placed to ended) of this team's recent calls, else the config's."""
    read = getattr(history, "call_seconds", None)
    if read is not None:
        try:
            secs = sorted(read())
        except Exception:  # an unreadable history must not stop `check`
            secs = []
        if len(secs) >= 20:
            return float(secs[len(secs) // 2]), f"median of {len(secs)} recent calls in history"
    return float(campaign.model.report.expected_call_seconds), "[report] expected_call_seconds"
