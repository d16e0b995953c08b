"""The rows' figures from aggregates (issue #25, "report from aggregates").

The key columns of the rows go to Arrow once; a hash group-by counts the rows per
combination of disposition, reason, status and outcome (tens of groups whatever the number of
rows), and per local time, area code, segment value or agent where a breakdown needs one.
Every figure (tiles, funnel, heatmap, breakdowns, the agents' A/B test) is then derived from
those counts, a few hundred groups at most: no per-row Python, no frame of every row's figures.

The definitions are the ones `common.connected_mask` and `common.held_mask` apply to a frame,
here applied to one group's values.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from campaign_dialer.vocab import HELD_PENDING_REASONS, NOT_CONNECTED_STATUSES

FATE_KEYS = ("disposition", "reason", "status", "outcome")
POSITION = "_pos"


def text_array(df: pd.DataFrame, col: str) -> pa.Array:
    """A column as Arrow text, "" for missing and for a column the frame lacks (the values
    `common.text_of` gives)."""
    if col not in df.columns:
        return pa.array(np.full(len(df), "", dtype=object), type=pa.string())
    s = df[col]
    if isinstance(s.dtype, pd.StringDtype):
        arr = pa.array(s, from_pandas=True)
    else:  # text of each value, as `common.text_of` gives it
        text = s.astype(object).where(s.notna(), "").astype("str")
        arr = pa.array(text.to_numpy(dtype=object), type=pa.string())
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    return pc.fill_null(arr, "")


@dataclass(frozen=True)
class Group:
    """Rows that share a disposition, reason, status and outcome (and `key`, if grouped by
    one): how many, and the position of the first of them."""

    disposition: str
    reason: str
    status: str
    outcome: str
    rows: int
    first: int = 0
    key: Any = None

    @property
    def dialed(self) -> bool:
        return self.disposition == "dialed"

    @property
    def connected(self) -> bool:
        """`common.connected_mask`: a dialed row someone answered."""
        return self.dialed and (self.status == "completed" or (
            self.outcome != "" and self.status not in NOT_CONNECTED_STATUSES))

    @property
    def held(self) -> bool:
        """`common.held_mask`: a row the checks held back (or never planned)."""
        return self.disposition == "suppressed" or (
            self.disposition == "pending" and self.reason in HELD_PENDING_REASONS)

    def won(self, success: Collection[str]) -> bool:
        return self.dialed and self.outcome in success


class Rows:
    """The rows' key columns as Arrow text, grouped on demand."""

    def __init__(self, df: pd.DataFrame) -> None:
        self.df = df
        self.n = len(df)
        self.cols: dict[str, pa.Array] = {c: text_array(df, c) for c in FATE_KEYS}
        self._dialed: np.ndarray | None = None

    @property
    def dialed(self) -> np.ndarray:
        """Which rows were dialed (a boolean array in the frame's order)."""
        if self._dialed is None:
            eq = pc.equal(self.cols["disposition"], "dialed")
            self._dialed = np.asarray(eq.to_numpy(zero_copy_only=False), dtype=bool)
        return self._dialed

    def groups(self, key: pa.Array | None = None, *, where: np.ndarray | None = None
               ) -> list[Group]:
        """Rows counted per fate (and per `key`), in the order of their first row (the order
        pandas' `groupby(sort=False)` gives); only rows of `where` if given."""
        data = {c: self.cols[c] for c in FATE_KEYS}
        if key is not None:
            data["key"] = key
        data[POSITION] = pa.array(np.arange(self.n, dtype=np.int64))
        table = pa.table(data)
        if where is not None:
            table = table.filter(pa.array(where, type=pa.bool_()))
        keys = [*FATE_KEYS, *(["key"] if key is not None else [])]
        out = table.group_by(keys, use_threads=False).aggregate(
            [(POSITION, "count"), (POSITION, "min")])
        cols = {name: out.column(name).to_pylist() for name in out.column_names}
        firsts = cols[f"{POSITION}_min"]
        order = sorted(range(out.num_rows), key=firsts.__getitem__)
        return [Group(cols["disposition"][i], cols["reason"][i], cols["status"][i],
                      cols["outcome"][i], int(cols[f"{POSITION}_count"][i]), int(firsts[i]),
                      cols["key"][i] if key is not None else None) for i in order]


def count(groups: Iterable[Group], keep: Any = None) -> int:
    """Rows of the groups `keep(group)` says yes to (all without `keep`)."""
    return sum(g.rows for g in groups if keep is None or keep(g))


def tally(groups: Iterable[Group], value: Any, keep: Any = None) -> Counter[str]:
    """Rows per `value(group)` among the groups `keep` says yes to."""
    out: Counter[str] = Counter()
    for g in groups:
        if keep is None or keep(g):
            out[value(g)] += g.rows
    return out


def value_counts(counts: Counter[str], *, missing: str | None = None) -> dict[str, int]:
    """Counts biggest first then by name, blanks dropped or last as `missing` (the order
    `metrics.value_counts` gives a column)."""
    out = {k: v for k, v in sorted(((k, v) for k, v in counts.items() if k != "" and v),
                                   key=lambda kv: (-kv[1], kv[0]))}
    if missing is not None and counts.get("", 0):
        out[missing] = counts[""]
    return out


@dataclass
class Rates:
    """Dialed rows, reached and converted, of one key of a breakdown."""

    key: str
    dialed: int = 0
    reached: int = 0
    won: int = 0
    first: int = 0


def rates_by_key(groups: Iterable[Group], success: Collection[str],
                 name: Any = str) -> list[Rates]:
    """Per `name(group.key)` (several keys may share a name): dialed, reached, converted rows
    and the first row's position, in the order of the first row."""
    by: dict[str, Rates] = {}
    for g in groups:
        k = name(g.key)
        r = by.get(k)
        if r is None:
            r = by[k] = Rates(k, first=g.first)
        r.dialed += g.rows
        r.reached += g.rows if g.connected else 0
        r.won += g.rows if g.won(success) else 0
        r.first = min(r.first, g.first)
    return sorted(by.values(), key=lambda r: r.first)


def ordered(rates: Sequence[Rates], order: Sequence[str] | None) -> list[Rates]:
    """In `order` (keys missing there counted 0, others dropped), else biggest first, ties in
    the order of their first row."""
    if order is not None:
        by = {r.key: r for r in rates}
        return [by.get(k, Rates(k)) for k in order]
    return sorted(rates, key=lambda r: (-r.dialed, r.first))
