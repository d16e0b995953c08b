"""Before dialing: when will this campaign finish, and what will still wait?

A pure estimate from the plan (rows eligible now, or pending with a window ahead), the calling
windows of each row's zones (the gate's own `hours_on`, so state rules and holidays count),
the pacing, `max_live_calls` and an expected call duration. Calls go out in plan order, as
fast as the slower of the pacing and `max_live_calls / expected duration` allows, whenever
the row's window is open in every zone it may be in. No network, no writes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
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
# Rows read at once: a step's temporaries (a slice's numbers as text, its codes) grow with
# this, not with the plan; what is kept across slices is a small int a row.
CHUNK = 65_536
_UNKNOWN = -2  # a row code: no time zone known (the ones below: never open, by why)
_EXCLUDED = -1  # a row code: not placed at all (settled, suppressed, nobody to call)
_NO_WINDOW = "no window within 14 days"
_FEW_LABELS = 1_024  # a dictionary this small is read whole for each slice


def _at_ns(ns: int) -> datetime:
    """The plan's ns instant as a datetime (below a microsecond dropped, as the plan does)."""
    return _EPOCH + timedelta(microseconds=ns // 1_000)


def _arrow(col: Any) -> pa.Array | pa.ChunkedArray:
    """A plan column as arrow (it is one already: no copy)."""
    if isinstance(col, pa.Array | pa.ChunkedArray):
        return col
    return pa.array(col, type=pa.large_string(), from_pandas=True)


def _text(arr: pa.Array) -> pa.Array:
    """A (slice of a) column as plain large_string: decoded and cast only if it is not."""
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    return arr if arr.type == pa.large_string() else arr.cast(pa.large_string())


def _parts(col: pa.Array | pa.ChunkedArray, a: int, b: int) -> list[pa.Array]:
    """Rows a..b of a column as arrow arrays (one, or one per chunk), no copy."""
    piece = col.slice(a, b - a)
    return list(piece.chunks) if isinstance(piece, pa.ChunkedArray) else [piece]


def _flat(col: pa.Array | pa.ChunkedArray, a: int, b: int) -> pa.Array:
    """Rows a..b of a column as one plain large_string array (a copy only of that slice,
    and only if chunked or dictionary-encoded)."""
    parts = [_text(p) for p in _parts(col, a, b)]
    if len(parts) == 1:
        return parts[0]
    return pa.concat_arrays(parts) if parts else pa.array([], type=pa.large_string())


def _by_label(part: pa.Array, pick: Callable[[Any], Any], missing: Any,
              dtype: Any) -> np.ndarray:
    """`pick(value)` of each row, asked once a distinct value (of a dictionary-encoded
    column: once a label, the rows read by their codes); `missing` for null. A dictionary
    larger than the slice (a label a row) is not read whole for every slice."""
    if pa.types.is_dictionary(part.type) and len(part.dictionary) <= max(len(part), _FEW_LABELS):
        labels = _text(part.dictionary).to_pylist()
        indices = part.indices
    else:
        enc = pc.dictionary_encode(_text(part))
        labels, indices = enc.dictionary.to_pylist(), enc.indices
    table = np.array([pick(v) for v in labels] + [missing], dtype=dtype)
    codes = np.asarray(pc.fill_null(indices, -1).to_numpy(zero_copy_only=False),
                       dtype=np.int64)
    return table[codes]  # code -1 (null): the last entry


def _each(col: pa.Array | pa.ChunkedArray, a: int, b: int,
          of: Callable[[pa.Array], np.ndarray]) -> np.ndarray:
    """`of` over rows a..b of a column, chunk by chunk, joined."""
    out = [of(p) for p in _parts(col, a, b)]
    return out[0] if len(out) == 1 else np.concatenate(out)


def _nonblank(part: pa.Array) -> np.ndarray:
    """Present and not blank (""), as numpy booleans."""
    if pa.types.is_dictionary(part.type):  # the labels' lengths, read by the codes
        codes = np.asarray(pc.fill_null(part.indices, -1).to_numpy(zero_copy_only=False),
                           dtype=np.int64)
        sizes = pc.fill_null(pc.binary_length(_text(part.dictionary)), 0)
        filled = np.append(np.asarray(sizes.to_numpy(zero_copy_only=False)) > 0, False)
        return np.asarray(filled[codes])
    lengths = pc.fill_null(pc.binary_length(_text(part)), 0)
    return np.asarray(lengths.to_numpy(zero_copy_only=False)) > 0


def _member(values: np.ndarray, sorted_set: np.ndarray) -> np.ndarray:
    """values in a sorted set of distinct values."""
    if not len(sorted_set):
        return np.zeros(len(values), dtype=bool)
    pos = np.minimum(np.searchsorted(sorted_set, values), len(sorted_set) - 1)
    return np.asarray(sorted_set[pos] == values)


def _smallest(values: np.ndarray, k: int) -> np.ndarray:
    """Positions of the k smallest values, ties by position: a stable sort's first k
    (in no particular order), without sorting them all."""
    if len(values) <= k:
        return np.arange(len(values))
    cut = np.partition(values, k - 1)[k - 1]
    less = np.flatnonzero(values < cut)
    return np.concatenate([less, np.flatnonzero(values == cut)[:k - len(less)]])


class _Waiting:
    """The first `WAITING_SHOWN` waiting rows by row number, as a stable sort of every
    waiting row (in the order groups, never open, unknown zone) would give, kept as they
    come: (row, segment, position, why)."""

    def __init__(self) -> None:
        self.first: list[tuple[int, int, int, str]] = []

    def add(self, rows: np.ndarray, segment: int, positions: np.ndarray,
            why: str | Sequence[str], codes: np.ndarray | None = None) -> None:
        """Rows of one segment, at these positions in it; why they wait: `why`, or
        `why[code]` by each row's code."""
        pick = _smallest(rows, WAITING_SHOWN)
        if not len(pick):
            return
        whys = ([str(why)] * len(pick) if codes is None
                else [why[c] for c in codes[pick].tolist()])
        self.first += [(int(r), segment, int(p), w) for r, p, w in zip(
            rows[pick].tolist(), positions[pick].tolist(), whys, strict=True)]
        self.first = sorted(self.first)[:WAITING_SHOWN]


@dataclass
class _Queues:
    """The rows to place, by group (zone set, rule states, earliest start), in plan order:
    `order[bounds[g]:bounds[g + 1]]` are group g's plan positions, ascending; `heads[g]` of
    them are placed."""

    order: np.ndarray
    bounds: list[int]
    heads: list[int]

    def left(self, g: int) -> int:
        return self.bounds[g + 1] - self.bounds[g] - self.heads[g]

    def head(self, g: int, n: int) -> np.ndarray:
        """The next (at most) n rows of group g (a view)."""
        start = self.bounds[g] + self.heads[g]
        return self.order[start:min(start + n, self.bounds[g + 1])]

    def rest(self, g: int) -> np.ndarray:
        return self.order[self.bounds[g] + self.heads[g]:self.bounds[g + 1]]


class _Groups:
    """Rows sorted into groups slice by slice: the zones of a number depend on its country
    code and area code (and the hint), so one `window.candidates` look-up per distinct
    (prefix, hint), with the first such row's own number; a group is a (zones and states,
    start hour) in the order its first row comes. Each row gets a small int code: its group,
    or why it is not placed (`_EXCLUDED`, `_UNKNOWN`, or never open: -3 - why)."""

    def __init__(self, window: Any) -> None:
        self.window = window
        self.allow_unknown = getattr(window, "allow_unknown_timezone", False)
        self.pairs: dict[tuple[str, str | None], int] = {}  # (prefix, hint) -> candidate
        self.cand_ids: dict[tuple[tuple[str, ...], tuple[str, ...]], int] = {}
        self.cands: list[tuple[tuple[str, ...], tuple[str, ...]]] = []
        self.ids: dict[tuple[int, int], int] = {}  # (candidate, start) -> group
        self.keys: list[tuple[int, int]] = []
        self.whys: dict[str, int] = {}
        self.why_labels: list[str] = []
        self.counts = np.zeros(0, dtype=np.int64)

    def why(self, label: str) -> int:
        if label not in self.whys:
            self.whys[label] = len(self.why_labels)
            self.why_labels.append(label)
        return self.whys[label]

    def candidates(self, phone: pa.Array, hint: pa.Array) -> np.ndarray:
        """Each row's candidate (zones, states) id, -1 where no zone is known (and unknown
        zones are not allowed)."""
        ph = pc.fill_null(phone, "")
        prefix = pc.if_else(pc.starts_with(ph, "+1"), pc.utf8_slice_codeunits(ph, 0, 5), ph)
        p_enc = pc.dictionary_encode(prefix)
        h_enc = pc.dictionary_encode(hint, null_encoding="encode")
        p_labels, h_labels = p_enc.dictionary.to_pylist(), h_enc.dictionary.to_pylist()
        width = len(h_labels) + 1
        key = (np.asarray(p_enc.indices.to_numpy(zero_copy_only=False), dtype=np.int64) * width
               + np.asarray(h_enc.indices.to_numpy(zero_copy_only=False), dtype=np.int64))
        del ph, prefix, p_enc, h_enc
        uniq, first, inverse = np.unique(key, return_index=True, return_inverse=True)
        del key
        pair_cand = np.empty(len(uniq), dtype=np.int64)
        for k, (u, f) in enumerate(zip(uniq.tolist(), first.tolist(), strict=True)):
            p, h = divmod(u, width)
            pair = (p_labels[p], h_labels[h])
            cand = self.pairs.get(pair)
            if cand is None:
                cand = self.pairs[pair] = self._candidate(phone[f].as_py(), hint[f].as_py())
            pair_cand[k] = cand
        return pair_cand[inverse.reshape(-1)]

    def _candidate(self, number: str | None, zone_hint: str | None) -> int:
        zones, states, _ = self.window.candidates(number, zone_hint)
        if not zones and not self.allow_unknown:
            return -1
        key = (tuple(zones), tuple(states))
        if key not in self.cand_ids:
            self.cand_ids[key] = len(self.cands)
            self.cands.append(key)
        return self.cand_ids[key]

    def group(self, cand: np.ndarray, start: np.ndarray) -> np.ndarray:
        """Each row's group, new groups numbered in the order their first row comes."""
        s_uniq, s_codes = np.unique(start, return_inverse=True)
        uniq, first, inverse = np.unique(cand * len(s_uniq) + s_codes.reshape(-1),
                                         return_index=True, return_inverse=True)
        gid = np.empty(len(uniq), dtype=np.int64)
        for k in np.argsort(first, kind="stable").tolist():
            ci, si = divmod(int(uniq[k]), len(s_uniq))
            key = (ci, int(s_uniq[si]))
            if key not in self.ids:
                self.ids[key] = len(self.keys)
                self.keys.append(key)
            gid[k] = self.ids[key]
        out = gid[inverse.reshape(-1)]
        counts = np.bincount(out, minlength=len(self.keys))
        self.counts = np.concatenate(
            [self.counts, np.zeros(len(self.keys) - len(self.counts), dtype=np.int64)]) + counts
        return out


def _small(codes: np.ndarray) -> np.ndarray:
    """A slice's row codes in int16 when they fit (they nearly always do)."""
    lo, hi = (int(codes.min()), int(codes.max())) if len(codes) else (0, 0)
    info = np.iinfo(np.int16)
    return codes.astype(np.int16) if info.min <= lo and hi <= info.max else codes


def _sorted_by_group(codes: list[np.ndarray], counts: np.ndarray, n: int) -> np.ndarray:
    """The placed rows' plan positions sorted by group, in plan order within each (a
    counting sort, slice by slice: no sort of every row)."""
    bounds = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    order = np.empty(int(bounds[-1]), dtype=np.int32 if n < 2**31 else np.int64)
    fill = bounds[:-1].copy()
    a = 0
    for cc in codes:
        pos = np.flatnonzero(cc >= 0)
        g = cc[pos].astype(np.int64)
        by = np.argsort(g, kind="stable")
        gs = g[by]
        dest = fill[gs] + (np.arange(len(gs)) - np.searchsorted(gs, gs, side="left"))
        order[dest] = a + pos[by]
        fill += np.bincount(g, minlength=len(counts))
        a += len(cc)
    return order


def forecast(plan: Any, *, call_seconds: float, call_seconds_source: str,
             settled: Iterable[int] = (),
             placements: dict[int, datetime] | None = None) -> dict[str, Any]:
    """Windows, rows each can take, rows placed in each, the finish, and what still waits.
    `placements`, when given, receives each placed row's forecast instant (by row).

    Computed from the plan's columns, a slice of rows at a time (no Python object per row,
    no string per row decoded: labels are read by their dictionary codes); what is kept
    across slices is a small int code a row and, for the rows to place, their plan
    positions by group. Groups' windows open and close in time, and in each stretch the
    open groups' rows go out in plan order at `rate`.
    """
    cfg = plan.campaign.model
    at = plan.at.astimezone(UTC)
    until = at + timedelta(days=HORIZON_DAYS)
    rate = call_rate(cfg.pacing.calls_per_second, cfg.api.max_live_calls, call_seconds)
    window = plan.gate.window
    c = plan.rows.columns
    rows = np.asarray(c["row"], dtype=np.int64)
    nxt = np.asarray(c["next_open"], dtype=np.int64)
    phone, hint, cid = _arrow(c["phone"]), _arrow(c["hint"]), _arrow(c["cid"])
    disp, reason = _arrow(c["disposition"]), _arrow(c["reason"])
    done = np.unique(settled.astype(np.int64) if isinstance(settled, np.ndarray)
                     else np.fromiter(settled, dtype=np.int64))
    at_us = (at - _EPOCH) // timedelta(microseconds=1)
    groups = _Groups(window)
    waiting = _Waiting()
    pending_why = groups.why(PENDING)
    n = len(rows)
    codes: list[np.ndarray] = []
    never_open = unknown_rows = 0
    for a in range(0, n, CHUNK):
        b = min(a + CHUNK, n)
        r, nx = rows[a:b], nxt[a:b]
        flag = _each(disp, a, b, lambda p: _by_label(
            p, lambda v: 1 if v == SUPPRESSED else 2 if v == PENDING else 0, 0, np.int8))
        keep = (_each(phone, a, b, _nonblank) | _each(cid, a, b, _nonblank)) & (flag != 1)
        if len(done):
            keep &= ~_member(r, done)
        never = keep & (flag == 2) & (nx == _NAT)
        del flag
        code = np.full(b - a, _EXCLUDED, dtype=np.int64)
        at_never = np.flatnonzero(never)
        if len(at_never):
            why = _each(reason, a, b, lambda p: _by_label(
                p, lambda v: groups.why(v or PENDING), pending_why, np.int64))[at_never]
            code[at_never] = -3 - why
            never_open += len(at_never)
            waiting.add(r[at_never], 1 << 62, a + at_never, groups.why_labels, why)
            del why
        live = np.flatnonzero(keep & ~never)
        del keep, never, at_never
        if len(live):
            at_live = pa.array(live)
            cand = groups.candidates(_flat(phone, a, b).take(at_live),
                                     _flat(hint, a, b).take(at_live))
            del at_live
            unknown = cand < 0
            if unknown.any():
                code[live[unknown]] = _UNKNOWN
                unknown_rows += int(unknown.sum())
                waiting.add(r[live[unknown]], (1 << 62) + 1, a + live[unknown],
                            "unknown_timezone")
                live, cand = live[~unknown], cand[~unknown]
            del unknown
            # the hour each row may start: now, or the hour its next window opens
            n_live = nx[live]
            later = (n_live != _NAT) & (n_live // 1_000 > at_us)
            start = np.where(later, n_live - n_live % _HOUR_NS, _NAT)
            del n_live, later
            code[live] = groups.group(cand, start)
            del cand, start
        codes.append(_small(code))
        del code, live
    order = _sorted_by_group(codes, groups.counts, n)
    del codes
    bounds = [0, *np.cumsum(groups.counts).tolist()]
    queues = _Queues(order, bounds, [0] * len(groups.keys))
    windows: list[Window] = []
    events: list[tuple[datetime, int, int, int]] = []  # (time, +1 open / -1 close, group, win)
    for g, (ci, start_ns) in enumerate(groups.keys):
        zones, states = groups.cands[ci]
        earliest = at if start_ns == _NAT else _at_ns(start_ns)
        for a_, b_ in _intervals(window, zones, states, earliest, until):
            events.append((a_, 1, g, len(windows)))
            events.append((b_, -1, g, len(windows)))
            windows.append(Window(zones, a_, b_))
    events.sort(key=lambda e: (e[0], e[1]))
    open_win: dict[int, int] = {}  # group -> window open now
    last_at: datetime | None = None
    t = at
    carry = 0.0  # fraction of a call's slot left over between segments
    placed = 0
    for i, (when, kind, g, wi) in enumerate(events):
        if when > t and open_win:
            carry, k, seg_last = _serve(t, when, rate, carry, open_win, queues, windows,
                                        rows, placements)
            placed += k
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
    left = 0
    for g in range(len(groups.keys)):
        rest = queues.rest(g)
        left += len(rest)
        for s in range(0, len(rest), CHUNK):
            piece = rest[s:s + CHUNK]
            waiting.add(rows[piece], g, piece, _NO_WINDOW)
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
    to_place = len(order) + never_open + unknown_rows
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
        "waiting": {"rows": left + never_open + unknown_rows,
                    "first": [{"row": r, "why": why} for r, _, _, why in waiting.first]},
    }


# Rows of the open groups' heads up to which a segment works on one sorted copy of them all
# (a few numpy calls); above, the cut between placed and not is found by bisection (a few
# searches a group) and only the rows placed are copied.
_PARTITION_MAX = 1 << 20


def _bisect_cut(heads: list[np.ndarray], take: int) -> int:
    """The plan position below which exactly `take` of the heads' rows lie (positions are
    distinct, so one exists)."""
    lo, hi = 0, max(int(h[-1]) for h in heads if len(h)) + 1
    while lo < hi:
        mid = (lo + hi) // 2
        if sum(int(np.searchsorted(h, mid)) for h in heads) >= take:
            hi = mid
        else:
            lo = mid + 1
    return lo


def _serve(
    t0: datetime, t1: datetime, rate: float, carry: float, open_win: dict[int, int],
    queues: _Queues, windows: list[Window], rows: np.ndarray,
    placed_at: dict[int, datetime] | None = None,
) -> tuple[float, int, datetime | None]:
    """Place waiting rows of the open groups, in plan order, at `rate` from t0 until t1:
    the k-th row placed goes out at t0 + k / rate. Returns (carry, rows placed, the last
    one's time)."""
    slots = (t1 - t0).total_seconds() * rate + carry
    n = int(math.floor(slots + 1e-9))
    groups = [g for g in open_win if queues.left(g) > 0]
    if not groups:
        return 0.0, 0, None
    # at most n rows from each open group's head (each in plan order); the n first in plan
    # order go out: a head's rows placed are a prefix of it
    heads = [queues.head(g, n) for g in groups]
    total = sum(len(h) for h in heads)
    take = min(n, total)
    placed: np.ndarray | None = None  # the plan positions placed, sorted
    if total <= _PARTITION_MAX:
        joined = np.concatenate(heads)
        if take < total:
            cut = np.partition(joined, take)[take]
            owner = np.repeat(np.arange(len(heads)), [len(h) for h in heads])
            counts = np.bincount(owner[joined < cut], minlength=len(heads)).tolist()
            del owner
            heads = [h[:c] for h, c in zip(heads, counts, strict=True)]
            joined = joined[joined < cut]
        joined.sort()
        placed = joined
    elif take < total:
        cut = _bisect_cut(heads, take)
        heads = [h[:int(np.searchsorted(h, cut))] for h in heads]
    # the k-th row placed: k of the rows placed come before it in plan order
    lasts = np.array([h[-1] if len(h) else -1 for h in heads], dtype=np.int64)
    if placed is None and placed_at is not None:
        placed = np.sort(np.concatenate(heads))
    if placed is not None:
        last_k = np.searchsorted(placed, lasts)
    else:
        last_k = np.zeros(len(heads), dtype=np.int64)
        for h in heads:
            last_k += np.searchsorted(h, lasts)
    last_at: datetime | None = None
    for j, g in enumerate(groups):
        mine = heads[j]
        if not len(mine):
            continue
        if placed_at is not None and placed is not None:  # the head's rows, at their ranks
            for r, k in zip(rows[mine].tolist(), np.searchsorted(placed, mine).tolist(),
                            strict=True):
                placed_at[int(r)] = t0 + timedelta(seconds=int(k) / rate)
        queues.heads[g] += len(mine)
        w = windows[open_win[g]]
        w.placed += len(mine)
        when = t0 + timedelta(seconds=int(last_k[j]) / rate)
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
