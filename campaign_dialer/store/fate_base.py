"""The fate base: every row's fate as the plan implies it, kept as columns, and the overlay.

A journal keeps two things about rows' fates:
- the **base**: one Arrow table written whole by the engine (`set_fate_base`), the fate of
  every row nobody dialed, stored as zstd Arrow IPC chunks (`base_chunks`): a million rows
  are a few dozen blobs, tens of bytes a row, no Python object per row either way;
- the **overlay**: the `fates` table, one SQL row per row whose fate differs from the base
  (dialed, held at dial time...). The overlay wins over the base for the same row.

`FateMerge` gives a backend the readers that merge the two (`fates`, `fate_table`,
`fate_counts`), vectorised with pyarrow; a backend supplies the base, the overlay and a
snapshot. A journal from before the base has none: the overlay alone is every row's fate.

Base columns (`set_fate_base`'s table, in row order, `row` ascending and unique): `row`
int64, `person`, `disposition` (never null), `reason`, `detail`, `next_open` (ISO text),
then one column per evidence key (null: the key is absent). Strings are large_string or
dictionary-encoded large_string; readers accept both.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from campaign_dialer.store.chunks import CHUNK_ROWS, DamagedChunks, ipc_bytes, table_from_chunks
from campaign_dialer.store.errors import JournalError
from campaign_dialer.store.model import Fate

TEXT = pa.large_string()
CODED = pa.dictionary(pa.int32(), pa.large_string())
FIXED = ("row", "person", "disposition", "reason", "detail", "next_open")


def evidence_keys(table: pa.Table) -> list[str]:
    """The evidence columns of a base (every column but the fixed ones), in order."""
    return [c for c in table.column_names if c not in FIXED]


def _text(col: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """A string column (plain or dictionary-encoded) as large_string."""
    return col if col.type == TEXT else pc.cast(col, TEXT)


def check_base(table: pa.Table) -> pa.Table:
    """The base as kept: the fixed columns first (an absent optional one: nulls), `row`
    int64, every other column text. ValueError when it cannot be a base: no `row` or
    `disposition`, a null disposition, or rows not ascending and unique."""
    missing = [c for c in ("row", "disposition") if c not in table.column_names]
    if missing:
        raise ValueError(f"a fate base needs the columns {missing}")
    n = table.num_rows
    cols: dict[str, Any] = {"row": pc.cast(table["row"], pa.int64())}
    for name in FIXED[1:]:
        cols[name] = table[name] if name in table.column_names else pa.nulls(n, TEXT)
    for name in evidence_keys(table):
        cols[name] = table[name]
    for name, col in cols.items():
        if name != "row" and col.type not in (TEXT, CODED):
            if not (pa.types.is_dictionary(col.type) or pa.types.is_string(col.type)
                    or pa.types.is_large_string(col.type) or pa.types.is_null(col.type)):
                raise ValueError(f"fate base column {name!r} is {col.type}, not text")
            cols[name] = pc.cast(col, CODED if pa.types.is_dictionary(col.type) else TEXT)
    if cols["disposition"].null_count:
        raise ValueError("a fate base row has no disposition")
    rows = np.asarray(cols["row"].to_numpy() if n else np.empty(0, np.int64))
    if cols["row"].null_count or (n > 1 and not bool(np.all(np.diff(rows) > 0))):
        raise ValueError("a fate base's rows must be ascending and unique")
    return pa.table(cols)


def base_chunks(table: pa.Table, chunk: int = CHUNK_ROWS) -> Iterator[tuple[int, bytes]]:
    """A checked base (`check_base`) as (first row's position, bytes) chunks. Within a chunk
    every column but `row` and `person` is dictionary-encoded afresh, so a chunk carries only
    the values it uses (a column with one value per person stays one chunk's worth)."""
    for first in range(0, max(table.num_rows, 1), chunk):
        part = table.slice(first, chunk).combine_chunks()
        cols: dict[str, Any] = {"row": part["row"], "person": _text(part["person"])}
        for name in part.column_names[2:]:
            cols[name] = pc.dictionary_encode(_text(part[name]))
        yield first, ipc_bytes(pa.table(cols))


def load_base(blobs: list[bytes], rows: int, where: object) -> pa.Table:
    """`base_chunks` read back; JournalError when they are damaged (a journal's base that
    cannot be read is every undialed row's fate lost: said, never taken for none)."""
    try:
        table = table_from_chunks(blobs)
        problem = (f"{table.num_rows} rows read, {rows} kept"
                   if table.num_rows != rows else
                   f"columns {table.column_names[:len(FIXED)]}"
                   if table.column_names[:len(FIXED)] != list(FIXED) else None)
    except DamagedChunks as e:
        problem = str(e)
    if problem is not None:
        raise JournalError(
            f"{where}: the fate base (every row's fate as planned) cannot be read: {problem}")
    return table


def _decoded(table: pa.Table) -> pa.Table:
    """Every string column as large_string (the base as `fate_table` gives it)."""
    return pa.table({c: (table[c] if c == "row" else _text(table[c]))
                     for c in table.column_names})


def _plain(value: Any) -> str | None:
    """An overlay evidence value as the table's text (strings as they are, others JSON)."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True)


def overlay_table(fates: Iterable[Fate], keys: list[str] | None = None) -> pa.Table:
    """Overlay fates as a table of the base's shape (evidence columns: `keys` first, then
    every other key the fates have, in the order met)."""
    fl = list(fates)
    names = list(keys or [])
    seen = set(names)
    for f in fl:
        for k in f.evidence or ():
            if k not in seen:
                seen.add(k)
                names.append(k)
    cols: dict[str, Any] = {
        "row": pa.array([f.row for f in fl], pa.int64()),
        "person": pa.array([f.person for f in fl], TEXT),
        "disposition": pa.array([f.disposition for f in fl], TEXT),
        "reason": pa.array([f.reason for f in fl], TEXT),
        "detail": pa.array([f.detail for f in fl], TEXT),
        "next_open": pa.array([f.next_open for f in fl], TEXT),
    }
    for k in names:
        cols[k] = pa.array([_plain((f.evidence or {}).get(k)) for f in fl], TEXT)
    return pa.table(cols)


def fates_of(table: pa.Table) -> Iterator[Fate]:
    """A base-shaped table's rows as Fates (evidence: the non-null evidence columns, None
    when none). One Python object per row: for tests and small readers."""
    keys = evidence_keys(table)
    fixed = [table[c].to_pylist() if c == "row" else _text(table[c]).to_pylist()
             for c in FIXED]
    ev = [_text(table[k]).to_pylist() for k in keys]
    for i, (row, person, disp, reason, detail, nxt) in enumerate(zip(*fixed, strict=True)):
        evidence = {k: col[i] for k, col in zip(keys, ev, strict=True) if col[i] is not None}
        yield Fate(row, person, disp, reason, detail, nxt, evidence or None)


def _outside(base: pa.Table, rows: pa.Array) -> pa.Table:
    """The base's rows that are not in `rows` (the overlay's)."""
    if len(rows) == 0:
        return base
    return base.filter(pc.invert(pc.is_in(base["row"], value_set=rows)))


def _counts(table: pa.Table) -> dict[tuple[str, str], int]:
    """(disposition, reason or "") -> rows of a kept base (`disposition` and `reason`
    dictionary-encoded, as `base_chunks` keeps them): counted on each chunk's codes."""
    out: dict[tuple[str, str], int] = {}
    for batch in table.to_batches():
        d, r = batch.column("disposition"), batch.column("reason")
        nr = len(r.dictionary) + 1  # code 0: no reason
        key = (np.asarray(d.indices.to_numpy(zero_copy_only=False), np.int64) * nr
               + np.asarray(pc.fill_null(r.indices, -1).to_numpy(), np.int64) + 1)
        tally = np.bincount(key, minlength=len(d.dictionary) * nr)
        ds, rs = d.dictionary.to_pylist(), ["", *r.dictionary.to_pylist()]
        for k in np.flatnonzero(tally):
            pair = (ds[k // nr], rs[k % nr])
            out[pair] = out.get(pair, 0) + int(tally[k])
    return out


def merge_counts(*parts: Mapping[tuple[str, str], int]) -> dict[tuple[str, str], int]:
    out: dict[tuple[str, str], int] = {}
    for p in parts:
        for k, n in p.items():
            out[k] = out.get(k, 0) + n
    return out


def _persons_in(table: pa.Table, persons: pa.Array) -> pa.Table:
    """`table`'s rows whose person is one of `persons`."""
    return table.filter(pc.fill_null(pc.is_in(_text(table["person"]), value_set=persons),
                                     False))


class ChunkedBase:
    """A base as its kept chunks (`base_chunks`' bytes), each decoded only when a range of
    rows asks for it: a million rows' base is ~15 MB of chunks, ~85 MB decoded. Read once
    at the start for its row numbers (and to find damage: JournalError, as `load_base`)."""

    def __init__(self, blobs: list[bytes], rows: int, where: object) -> None:
        self._blobs = blobs
        numbers: list[np.ndarray] = []
        names: list[str] = []
        try:
            for b in blobs:
                chunk = table_from_chunks([b])
                names = names or list(chunk.column_names)
                numbers.append(_rows_of(chunk))
                del chunk
            problem = (None if names[:len(FIXED)] == list(FIXED) else f"columns {names[:6]}")
        except DamagedChunks as e:
            problem = str(e)
        self.rows = np.concatenate(numbers) if numbers else np.empty(0, np.int64)
        if problem is None and len(self.rows) != rows:
            problem = f"{len(self.rows)} rows read, {rows} kept"
        if problem is not None:
            raise JournalError(
                f"{where}: the fate base (every row's fate as planned) cannot be read: "
                f"{problem}")
        self.column_names = names
        self._starts = np.cumsum([0, *(len(r) for r in numbers)])
        self._last: tuple[int, pa.Table] | None = None

    def _chunk(self, i: int) -> pa.Table:
        if self._last is None or self._last[0] != i:
            self._last = (i, table_from_chunks([self._blobs[i]]))
        return self._last[1]

    def part(self, a: int, b: int, names: list[str]) -> pa.Table:
        """The base's rows at positions a..b, only `names` (those it has)."""
        cols = [c for c in names if c in self.column_names]
        parts: list[pa.Table] = []
        for i in range(len(self._blobs)):
            lo, hi = int(self._starts[i]), int(self._starts[i + 1])
            if hi <= a or lo >= b or lo == hi:
                continue
            chunk = self._chunk(i).select(cols)
            parts.append(chunk.slice(max(a - lo, 0), min(b, hi) - max(a, lo)))
        if not parts:
            return self._chunk(0).select(cols).slice(0, 0) if self._blobs else pa.table(
                {c: pa.array([], pa.int64() if c == "row" else TEXT) for c in cols})
        return pa.concat_tables(parts) if len(parts) > 1 else parts[0]

    def matching(self, names: list[str], persons: pa.Array) -> pa.Table:
        """The base's rows whose person is one of `persons`, only `names`, a chunk at a
        time."""
        cols = [c for c in names if c in self.column_names]
        parts = [_persons_in(self._chunk(i).select(cols), persons)
                 for i in range(len(self._blobs))]
        return pa.concat_tables(parts) if parts else self.part(0, 0, cols)


class _WholeBase:
    """A base held as one table, as `ChunkedBase` reads it."""

    def __init__(self, table: pa.Table) -> None:
        self._table = table
        self.rows = _rows_of(table)
        self.column_names = list(table.column_names)

    def part(self, a: int, b: int, names: list[str]) -> pa.Table:
        return self._table.slice(a, b - a).select([c for c in names if c in self.column_names])

    def matching(self, names: list[str], persons: pa.Array) -> pa.Table:
        return _persons_in(self._table.select([c for c in names if c in self.column_names]),
                           persons)


class FateSlices:
    """`fate_table` a range of rows at a time: the base (its chunks, or a table kept
    dictionary-encoded, as read) and the overlay (a table, few rows) held, each range
    decoded to text on its own, so a reader of a million rows never holds every row's fate
    as text. The rows of `between` over consecutive ranges are `fate_table`'s rows, its
    columns and cells exactly."""

    def __init__(self, base: pa.Table | ChunkedBase | None, overlay: pa.Table) -> None:
        """`overlay`: a base-shaped text table (`overlay_table`, its evidence columns the
        base's keys first); without a base it is every row's fate."""
        self._base = _WholeBase(base) if isinstance(base, pa.Table) else base
        self._ov = overlay if overlay.num_rows < 2 else overlay.sort_by("row")
        self._ov_rows = _rows_of(self._ov)
        self._base_rows = self._base.rows if self._base is not None else None
        self.column_names: list[str] = list(self._ov.column_names)

    @classmethod
    def of_table(cls, table: pa.Table) -> FateSlices:
        """A whole fate table (`fate_table`'s shape) read in ranges."""
        return cls(None, table)

    def between(self, lo: int, hi: int, columns: Iterable[str] | None = None) -> pa.Table:
        """`fate_table`'s rows with lo <= row < hi, all text large_string; `columns`: only
        those of its columns (and `row`), in its order."""
        wanted = None if columns is None else {"row", *columns}
        names = [c for c in self.column_names if wanted is None or c in wanted]
        a, b = np.searchsorted(self._ov_rows, [lo, hi])
        ov = self._ov.slice(int(a), int(b - a)).select(names)
        if self._base is None or self._base_rows is None:
            return pa.table({c: _text(ov[c]) if c != "row" else ov[c] for c in names})
        a, b = np.searchsorted(self._base_rows, [lo, hi])
        part = _outside(self._base.part(int(a), int(b), names), ov["row"].combine_chunks())
        n = part.num_rows
        kept = pa.table({c: (part[c] if c == "row" else _text(part[c]))
                         if c in part.column_names else pa.nulls(n, TEXT) for c in names})
        if ov.num_rows == 0:
            return kept
        return pa.concat_tables([kept, ov]).sort_by("row").combine_chunks()

    def of_persons(self, persons: pa.Array, columns: Iterable[str] | None = None) -> pa.Table:
        """`fate_table`'s rows whose person is one of `persons` (few: the people dialed),
        sorted by row; `columns` as in `between`."""
        wanted = None if columns is None else {"row", "person", *columns}
        names = [c for c in self.column_names if wanted is None or c in wanted]
        ov = self._ov.select(names)
        ov = ov.filter(pc.fill_null(pc.is_in(_text(ov["person"]), value_set=persons), False))
        if self._base is None:
            return pa.table({c: _text(ov[c]) if c != "row" else ov[c] for c in names})
        part = _outside(self._base.matching(names, persons), self._ov["row"].combine_chunks())
        n = part.num_rows
        kept = pa.table({c: (part[c] if c == "row" else _text(part[c]))
                         if c in part.column_names else pa.nulls(n, TEXT) for c in names})
        return pa.concat_tables([kept, ov]).sort_by("row").combine_chunks()


def _rows_of(table: pa.Table) -> np.ndarray:
    """A table's `row` column as int64 numbers (ascending, as a base and the overlay are)."""
    if table.num_rows == 0:
        return np.empty(0, np.int64)
    return np.asarray(table["row"].combine_chunks().to_numpy(), dtype=np.int64)


class FateMerge:
    """Every row's fate, the base and the overlay merged (the overlay winning). A backend
    gives `fate_base`, `overlay_fates`, `overlay_rows`, `overlay_counts` and `snapshot`."""

    # The base last read (its version, the table): read again only when replaced.
    _base_cache: tuple[str, pa.Table] | None = None

    def snapshot(self) -> AbstractContextManager[None]:
        raise NotImplementedError

    def _base_of(self, version: str, rows: int, blobs: Callable[[], list[bytes]],
                 where: object) -> pa.Table:
        """The base whose version is `version`: the one read last, or `blobs()` read."""
        cached = self._base_cache
        if cached is not None and cached[0] == version:
            return cached[1]
        table = load_base(blobs(), rows, where)
        self._base_cache = (version, table)
        return table

    def base_head(self) -> tuple[str, int, Callable[[], list[bytes]], object] | None:
        """The base kept, unread: (its version, its rows, a reader of its chunks, where it
        is kept); None when there is none. Called within `snapshot`."""
        raise NotImplementedError

    def fate_base(self) -> pa.Table | None:
        with self.snapshot():  # its head and its chunks from one state
            head = self.base_head()
            return None if head is None else self._base_of(*head)

    def _base_chunked(self) -> pa.Table | ChunkedBase | None:
        """The base as the table read last (same version), else as its chunks, undecoded."""
        head = self.base_head()
        if head is None:
            return None
        cached = self._base_cache
        if cached is not None and cached[0] == head[0]:
            return cached[1]
        return ChunkedBase(head[2](), head[1], head[3])

    def overlay_fates(self) -> dict[int, Fate]:
        raise NotImplementedError

    def overlay_rows(self) -> pa.Array:
        """The overlay's rows (int64), no Fate made."""
        raise NotImplementedError

    def overlay_counts(self) -> dict[tuple[str, str], int]:
        """The overlay's rows per (disposition, reason or ""), counted by the database."""
        raise NotImplementedError

    def fates(self) -> dict[int, Fate]:
        """Every row's fate by row, in row order (a Fate per row: tests and small readers;
        the others read `fate_table` or `fate_counts`)."""
        with self.snapshot():
            base = self.fate_base()
            overlay = self.overlay_fates()
        if base is None:
            return overlay
        out = {f.row: f for f in fates_of(_outside(base, pa.array(list(overlay), pa.int64())))}
        if not overlay:
            return out
        out.update(overlay)
        return dict(sorted(out.items()))

    def fate_table(self) -> pa.Table:
        """Every row's fate as columns (the base's shape, all text large_string; evidence
        columns: the base's, then the overlay's other keys), sorted by row. Vectorised: a
        Python object per overlay row only."""
        with self.snapshot():
            base = self.fate_base()
            overlay = self.overlay_fates()
        if base is None:
            return overlay_table(overlay.values())
        ov = overlay_table(overlay.values(), evidence_keys(base))
        kept = _decoded(_outside(base, ov["row"].combine_chunks()))
        if ov.num_rows == 0:
            return kept
        n = kept.num_rows
        kept = pa.table({c: kept[c] if c in kept.column_names else pa.nulls(n, TEXT)
                         for c in ov.column_names})
        return pa.concat_tables([kept, ov]).sort_by("row").combine_chunks()

    def fate_slices(self) -> FateSlices:
        """`fate_table` to be read a range of rows at a time (`FateSlices.between`): the base
        and the overlay read now, in one snapshot; nothing decoded yet."""
        with self.snapshot():
            base = self._base_chunked()
            overlay = self.overlay_fates()
        keys = None if base is None else [c for c in base.column_names if c not in FIXED]
        return FateSlices(base, overlay_table(overlay.values(), keys))

    def fate_counts(self) -> dict[tuple[str, str], int]:
        """How many rows per (disposition, reason or ""): the overlay's counted by the
        database, the base's other rows by pyarrow."""
        with self.snapshot():
            base = self.fate_base()
            counts = self.overlay_counts()
            rows = self.overlay_rows() if base is not None else None
        if base is None or rows is None:
            return counts
        kept = _outside(base.select(["row", "disposition", "reason"]), rows)
        return merge_counts(counts, _counts(kept))
