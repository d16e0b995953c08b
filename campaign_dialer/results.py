"""results.csv: one row per input data row, in input order, with its fate.

The one place that builds results rows: rewritten atomically from the journal (never from
memory) at the end of every run and on demand, read back for the report, rebuilt for it when
stale. The column names are a public interface, documented in the README.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections import Counter, deque
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from campaign_dialer import log
from campaign_dialer.config import KEY_PATTERN
from campaign_dialer.contacts import (
    STANDARD_COLUMNS,
    Contacts,
    CsvBytes,
    load_campaign_contacts,
)
from campaign_dialer.errors import DialerError
from campaign_dialer.exitcodes import ExitCode
from campaign_dialer.files import write_atomic
from campaign_dialer.memory import release_memory
from campaign_dialer.store import (
    FATE_FIELDS,
    Attempt,
    Fate,
    FateSlices,
    JournalStore,
    KeptContacts,
    save_contacts,
)
from campaign_dialer.vocab import PENDING

if TYPE_CHECKING:
    from campaign_dialer.config import Campaign

RESULT_COLUMNS = [
    "row", "contact_id", "phone_raw", "phone_e164", "disposition", "reason", "detail",
    "call_id", "status", "outcome", "ended_reason", "http_status", "error_code", "attempts",
    "placed_at", "ended_at", "duration_seconds", "next_open", "recording_url",
    "consent_event_at", "consent_source", "local_times", "zones", "dnc_lists_checked",
    "dialed_at", "phone_column", "phone_extension", "agent_id", "rnd_queried_at",
    "from_phone_number_id", "from_number", "caller_id_reason",
]
# Typed when results.csv is read back; every other column is text.
NUMERIC_COLUMNS = {"row": "int64", "http_status": "Int64", "attempts": "Int64",
                   "duration_seconds": "float64"}
EVIDENCE_COLUMNS = ("consent_event_at", "consent_source", "local_times", "zones",
                    "dnc_lists_checked", "dialed_at", "rnd_queried_at")
# The caller ID of the row's last attempt (its evidence; blank for a row never dialed).
CALLER_ID_COLUMNS = ("from_phone_number_id", "from_number", "caller_id_reason")
_FRAME_SUFFIX = " (input)"
_PLAIN_NUMBER = re.compile(r"^[+-]?\d+(\.\d+)?([eE][+-]?\d+)?$")


def neutralize(value: Any) -> Any:
    """Keep a spreadsheet from running a cell as a formula; an E.164 phone stays as it is."""
    if not isinstance(value, str) or not value:
        return value
    first = value[0]
    if first in "=@\t\r" or (first in "+-" and not _PLAIN_NUMBER.match(value)):
        return "'" + value
    return value


# `fate_table`'s columns that are not evidence keys (every other column is one).
FATE_COLUMNS = FATE_FIELDS
# The last attempt's own columns: absent (NaN, as `from_records` fills a missing key) on a row
# without one.
_ATTEMPT_FIELDS = ("call_id", "status", "outcome", "ended_reason", "http_status",
                   "error_code", "placed_at", "ended_at", "duration_seconds", "recording_url")
_TEXT = pa.large_string()


class _Joined:
    """A fate table (`fate_table`'s shape) joined to input rows by `row`: its columns in the
    rows' order, null where a row has no fate."""

    def __init__(self, table: pa.Table, rows: np.ndarray) -> None:
        n = len(rows)
        fate_rows = table.column("row").to_numpy()
        at = np.searchsorted(fate_rows, rows)
        found = np.zeros(n, dtype=bool)
        if len(fate_rows):
            found = (at < len(fate_rows)) & (
                fate_rows[np.minimum(at, len(fate_rows) - 1)] == rows)
        self.table, self.n, self.found = table, n, found
        # The usual case: a fate for every row, in the input's order (no take needed).
        self.aligned = len(fate_rows) == n and bool(np.array_equal(fate_rows, rows))
        self.take = pa.array(at, type=pa.int64(), mask=~found)
        self.has = pa.array(found, type=pa.bool_())

    def fate(self, name: str) -> pa.Array:
        """A fate column in input order: null where the row has no fate (or no such key)."""
        if name not in self.table.column_names:
            return pa.nulls(self.n, _TEXT)
        col = text_array(self.table.column(name))
        return col if self.aligned else pc.take(col, self.take)

    def fate_or(self, name: str, missing: str) -> pa.Array:
        """A fate column, `missing` on the rows without a fate."""
        col = self.fate(name)
        return col if self.found.all() else pc.if_else(self.has, col,
                                                       pa.scalar(missing, _TEXT))


# The results columns read from the fate table (beside `person`, which finds the attempts).
_FATE_READ = ("disposition", "reason", "detail", "next_open", *EVIDENCE_COLUMNS)


def _base_columns(cf: pd.DataFrame, fates: _Joined
                  ) -> dict[str, pa.Array | pa.ChunkedArray | None]:
    """Each results column's cells before the attempts: a fate's or a contact's text, None
    for a column only an attempt fills."""
    return {
        "disposition": fates.fate_or("disposition", "pending"),
        "reason": fates.fate_or("reason", "not_planned"),
        "detail": fates.fate_or("detail", ""),
        "next_open": fates.fate("next_open"),
        **{c: fates.fate(c) for c in EVIDENCE_COLUMNS},
        **{c: contact_text(cf, c) for c in
           ("contact_id", "phone_raw", "phone_e164", "phone_column", "phone_extension")},
        **dict.fromkeys((*_ATTEMPT_FIELDS, "agent_id", *CALLER_ID_COLUMNS)),
    }


def _known_persons(by_person: dict[str, list[Attempt]]) -> pa.Array:
    """The people with an attempt."""
    return pa.array([p for p, a in by_person.items() if p and a], type=_TEXT)


def _hits(fates: _Joined, disposition: pa.Array, known: pa.Array) -> tuple[np.ndarray, list[Any]]:
    """The positions of the rows whose person has attempts (not suppressed), the only ones
    visited one by one, and their persons."""
    person = fates.fate("person")
    dialed = pc.and_(pc.is_in(person, value_set=known),
                     pc.not_equal(disposition, pa.scalar("suppressed", _TEXT)))
    hit = np.flatnonzero(pc.fill_null(dialed, False).to_numpy(zero_copy_only=False))
    return hit, pc.take(person, pa.array(hit, type=pa.int64())).to_pylist()


_ATTEMPT_COLUMNS = (*_ATTEMPT_FIELDS, "agent_id", *EVIDENCE_COLUMNS, *CALLER_ID_COLUMNS)


def _attempt_cells(hit: np.ndarray, persons: list[Any], by_person: dict[str, list[Attempt]]
                   ) -> tuple[np.ndarray, dict[str, tuple[list[int], list[Any]]]]:
    """The attempts' counts at `hit` and, per column, the positions and values its last
    attempt puts there (Python values, which win over the fates')."""
    at_rows: dict[str, tuple[list[int], list[Any]]] = {c: ([], []) for c in _ATTEMPT_COLUMNS}
    counts = np.zeros(len(hit), dtype=np.int64)

    def put(c: str, i: int, v: Any) -> None:
        at_rows[c][0].append(i)
        at_rows[c][1].append(v)

    for k, (i, p) in enumerate(zip(hit.tolist(), persons, strict=True)):
        attempts = by_person[p]
        a = attempts[-1]
        counts[k] = len(attempts)
        for c in _ATTEMPT_FIELDS:
            put(c, i, getattr(a, c))
        put("agent_id", i, (a.body or {}).get("agent_id"))
        for c in EVIDENCE_COLUMNS:
            if a.evidence.get(c):
                put(c, i, a.evidence[c])
        for c in CALLER_ID_COLUMNS:
            put(c, i, a.evidence.get(c))
    return counts, at_rows


def results_frame(contacts: Contacts, journal: JournalStore) -> pd.DataFrame:
    """Join the input rows with their fates and latest attempts.

    Vectorised: the fates come as columns (`fate_table_of`), joined to the input rows by
    `row`; only the rows with an attempt are visited in Python. The values and dtypes are
    `results_frame_rows`' (a dict per row through `DataFrame.from_records`, whose type
    inference `_column` reproduces), which a property test checks. Every row at once: the
    oracle of `write_results`, which writes results.csv a slice of rows at a time."""
    cf = contacts.frame
    n = len(cf)
    rows = cf["row"].to_numpy(dtype=np.int64)
    fates = _Joined(fate_table_of(journal), rows)
    base = _base_columns(cf, fates)
    by_person: dict[str, list[Attempt]] = journal.attempts_by_person()
    hit, persons = _hits(fates, base["disposition"], _known_persons(by_person))
    hit_counts, at_rows = _attempt_cells(hit, persons, by_person)
    counts = np.zeros(n, dtype=np.int64)
    counts[hit] = hit_counts
    columns: dict[str, pd.Series] = {
        "row": pd.Series(rows if n else np.array([], dtype=object), name="row"),
        "attempts": pd.Series(counts, name="attempts").astype("Int64"),
    }
    for c, b in base.items():
        pos, vals = at_rows.get(c, ([], []))
        columns[c] = _column(c, n, b, np.array(pos, dtype=np.int64), vals)
    return _with_passthrough(contacts, cf, columns)


def _with_passthrough(contacts: Contacts, cf: pd.DataFrame, columns: dict[str, pd.Series]
                      ) -> pd.DataFrame:
    """The results columns in order, then the input's own columns (`cf`'s rows)."""
    out = pd.DataFrame({c: columns[c] for c in RESULT_COLUMNS}, copy=False)
    out["http_status"] = out["http_status"].astype("Int64")
    extra = [c for c in contacts.extra_columns if c in cf.columns]
    passthrough = cf[extra].set_axis([_passthrough_name(c) for c in extra], axis=1)
    return pd.concat([out, passthrough.reset_index(drop=True)], axis=1)


def _column(name: str, n: int, base: pa.Array | pa.ChunkedArray | None, pos: np.ndarray,
            vals: list[Any]) -> pd.Series:
    """One results column as `DataFrame.from_records` makes it from a dict per row: `base`
    the text cells (null: None) or None when the rows do not have the key (NaN), `vals` the
    cells of the rows at `pos` (Python values, which win).

    `from_records` picks a column's dtype from the kinds of cell it holds (text, None,
    absent, a float...), not from how many: so it is asked about one cell of each kind
    `base` has and every value in `vals`, and its answer is spread over the n rows."""
    rest = np.ones(n, dtype=bool)
    rest[pos] = False
    sample: list[dict[str, Any]] = []
    if base is None:
        if rest.any():
            sample.append({})
    else:
        valid = base.is_valid().to_numpy(zero_copy_only=False)
        text = np.flatnonzero(valid & rest)
        if len(text):
            sample.append({name: base[int(text[0])].as_py()})
        if (rest & ~valid).any():
            sample.append({name: None})
    m = len(sample)
    sample.extend({name: v} for v in vals)
    small = pd.DataFrame.from_records(sample, columns=[name])[name]
    dtype, got = small.dtype, small.iloc[m:]
    try:
        if isinstance(dtype, pd.StringDtype):
            arr = base if base is not None else pa.nulls(n, _TEXT)
            if len(pos):
                arr = text_array(arr)
                mask = np.zeros(n, dtype=bool)
                mask[pos] = True
                repl = pa.array(got.to_numpy(dtype=object, na_value=None), type=_TEXT)
                arr = pc.replace_with_mask(arr, pa.array(mask), repl)
            return pd.Series(pd.array(arr, dtype=dtype), name=name)
        if dtype == np.dtype(object):
            cells = np.empty(n, dtype=object)
            cells[:] = np.nan if base is None else base.to_numpy(zero_copy_only=False)
            cells[pos] = got.to_numpy(dtype=object)
            return pd.Series(cells, name=name, dtype=object)
        if isinstance(dtype, np.dtype) and dtype.kind in "biuf":
            # no text here (text and numbers make an object column): `rest` is all missing
            nums = np.empty(n, dtype=dtype)
            if m:
                nums[rest] = small.iloc[0]
            nums[pos] = got.to_numpy(dtype=dtype)
            return pd.Series(nums, name=name)
    except (pa.ArrowException, UnicodeError):
        pass  # text arrow cannot hold (a lone surrogate): the records below
    # Anything else (a datetime, ...): `from_records` over every row of this one column.
    records: list[dict[str, Any]] = [{} for _ in range(n)] if base is None else [
        {name: v} for v in base.to_pylist()]
    for i, v in zip(pos.tolist(), vals, strict=True):
        records[i] = {name: v}
    return pd.DataFrame.from_records(records, columns=[name])[name]


def text_array(col: pa.Array | pa.ChunkedArray) -> pa.Array:
    """A text column (plain or dictionary-encoded, chunked or not) as one large_string array."""
    out = pc.cast(col, _TEXT)
    return out.combine_chunks() if isinstance(out, pa.ChunkedArray) else out


def contact_text(cf: pd.DataFrame, name: str) -> pa.Array | pa.ChunkedArray:
    """A contacts column's cells as text (missing: null), all null when the frame lacks it;
    the frame's own arrow chunks when it has them (no copy)."""
    if name not in cf.columns:
        return pa.nulls(len(cf), _TEXT)
    s = cf[name]
    if isinstance(s.dtype, pd.StringDtype):
        arr = pa.array(s.array)
        return arr if arr.type == _TEXT else pc.cast(arr, _TEXT)
    return pa.array([_s(v) for v in s.tolist()], type=_TEXT)


def fate_table_of(journal: JournalStore) -> pa.Table:
    """Every row's fate as columns: `row` ascending, `FATE_COLUMNS`, then an evidence column
    per key (null: the key is absent); the journal's own `fate_table` (a store's journal has
    one; an object that only gives `fates()`, as some tests' stand-ins do, is read through
    `fates_as_table`)."""
    fate_table = getattr(journal, "fate_table", None)
    if fate_table is not None:
        table: pa.Table = fate_table()
        return table
    return fates_as_table(journal.fates().values())


def fates_as_table(fates: Iterable[Fate]) -> pa.Table:
    """Fates as `fate_table`'s columns (what the journal's `fate_table` returns)."""
    ordered = sorted(fates, key=lambda f: f.row)
    keys: dict[str, None] = {}
    for f in ordered:
        if f.evidence:
            keys.update(dict.fromkeys(f.evidence))
    cols: dict[str, pa.Array] = {
        "row": pa.array([f.row for f in ordered], type=pa.int64()),
        "person": pa.array([f.person for f in ordered], type=_TEXT),
        "disposition": pa.array([f.disposition for f in ordered], type=_TEXT),
        "reason": pa.array([f.reason for f in ordered], type=_TEXT),
        "detail": pa.array([f.detail for f in ordered], type=_TEXT),
        "next_open": pa.array([f.next_open for f in ordered], type=_TEXT),
    }
    for k in keys:
        if k not in cols:
            cols[k] = pa.array([(f.evidence or {}).get(k) for f in ordered], type=_TEXT)
    return pa.table(cols)

def results_frame_rows(contacts: Contacts, journal: JournalStore) -> pd.DataFrame:
    """`results_frame` as it was before issue #25, a dict per input row (25-70 s and GBs at
    1M rows): kept as the oracle of its property test and the benchmark's baseline."""
    fates = journal.fates()
    by_person: dict[str, list[Attempt]] = journal.attempts_by_person()
    cf = contacts.frame
    records: list[dict[str, Any]] = []
    cids, raws, e164s = (cf[c].tolist() for c in ("contact_id", "phone_raw", "phone_e164"))
    n = len(cf)
    columns = (
        cf[c].tolist() if c in cf.columns else [None] * n
        for c in ("phone_column", "phone_extension")
    )
    phone_cols, exts = columns
    for i, row in enumerate(cf["row"].tolist()):
        f = fates.get(int(row))
        rec: dict[str, Any] = {
            "row": int(row),
            "contact_id": _s(cids[i]),
            "phone_raw": _s(raws[i]),
            "phone_e164": _s(e164s[i]),
            "phone_column": _s(phone_cols[i]),
            "phone_extension": _s(exts[i]),
            "disposition": f.disposition if f else "pending",
            "reason": f.reason if f else "not_planned",
            "detail": f.detail if f else "",
            "next_open": f.next_open if f else None,
        }
        ev = (f.evidence or {}) if f else {}
        for c in EVIDENCE_COLUMNS:
            rec[c] = ev.get(c)
        attempts = by_person.get(f.person or "", []) if f and f.person else []
        if f and f.disposition != "suppressed" and attempts:
            a = attempts[-1]
            rec.update(
                call_id=a.call_id, status=a.status, outcome=a.outcome,
                ended_reason=a.ended_reason, http_status=a.http_status,
                error_code=a.error_code, attempts=len(attempts), placed_at=a.placed_at,
                ended_at=a.ended_at, duration_seconds=a.duration_seconds,
                recording_url=a.recording_url, agent_id=(a.body or {}).get("agent_id"),
            )
            for c in EVIDENCE_COLUMNS:
                if a.evidence.get(c):
                    rec[c] = a.evidence[c]
            for c in CALLER_ID_COLUMNS:
                rec[c] = a.evidence.get(c)
        else:
            rec["attempts"] = 0
        records.append(rec)
    out = pd.DataFrame.from_records(records, columns=RESULT_COLUMNS)
    out["attempts"] = out["attempts"].astype("Int64")
    out["http_status"] = out["http_status"].astype("Int64")
    extra = [c for c in contacts.extra_columns if c in cf.columns]
    passthrough = cf[extra].copy()
    passthrough.columns = [_passthrough_name(c) for c in extra]
    return pd.concat([out, passthrough.reset_index(drop=True)], axis=1)


def _passthrough_name(frame_name: str) -> str:
    """An input column's name in results.csv: its own, or `input.<name>` when it clashes
    with a results column (the README's rule). The contacts frame calls a clash with its own
    columns "<name> (input)"; that is undone here so `row` becomes `input.row` too."""
    name = frame_name
    if name.endswith(_FRAME_SUFFIX) and name[: -len(_FRAME_SUFFIX)] in STANDARD_COLUMNS:
        name = name[: -len(_FRAME_SUFFIX)]
    return f"input.{name}" if name in RESULT_COLUMNS else name


def _s(v: Any) -> Any:
    return None if v is None or v is pd.NA or (isinstance(v, float) and v != v) else v


def safe_for_spreadsheets(df: pd.DataFrame) -> pd.DataFrame:
    """Cells and header names a spreadsheet would run as a formula get a leading `'`.

    `neutralize` on every text cell, vectorised with pyarrow (a Python call per cell took
    16 s for a 1M-row plan): the same values and dtypes as `Series.map(neutralize)`.
    """
    # Only the columns a guard changes are new: the others are the frame's own (nothing
    # writes into either frame; a million-row results frame is not held twice).
    out = df.copy(deep=False)
    for i in range(out.shape[1]):
        s = out.iloc[:, i]
        if s.dtype == object or pd.api.types.is_string_dtype(s):
            out.isetitem(i, _safe_column(s))
    out.columns = [neutralize(str(c)) for c in out.columns]
    return out


_FORMULA_FIRST = ("=", "@", "\t", "\r")
# `_PLAIN_NUMBER` for RE2 (pyarrow): ASCII digits, and Python's `$` also matching before a
# final newline. A cell RE2 does not call a number but which holds a non-ASCII character is
# asked of `_PLAIN_NUMBER` itself (Python's `\d` takes every Unicode digit).
_PLAIN_NUMBER_RE2 = r"^[+-]?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?\n?$"


def _guard_mask(arr: Any) -> Any:
    """Which cells of a pyarrow string array `neutralize` would guard (nulls: no)."""
    first = pc.utf8_slice_codeunits(arr, 0, 1)
    formula = pc.is_in(first, value_set=pa.array(_FORMULA_FIRST, type=arr.type))
    sign = pc.is_in(first, value_set=pa.array(("+", "-"), type=arr.type))
    if not pc.any(sign).as_py():
        return pc.fill_null(formula, False)
    plain = pc.match_substring_regex(arr, _PLAIN_NUMBER_RE2)
    unsure = pc.and_(pc.and_(sign, pc.invert(plain)), pc.invert(pc.string_is_ascii(arr)))
    if pc.any(unsure).as_py():
        idx = np.flatnonzero(pc.fill_null(unsure, False).to_numpy(zero_copy_only=False))
        vals = pc.take(arr, pa.array(idx)).to_pylist()
        hits = np.zeros(len(arr), dtype=bool)
        hits[idx] = [bool(_PLAIN_NUMBER.match(v)) for v in vals]
        plain = pc.or_(plain, pa.array(hits))
    guard = pc.or_(formula, pc.and_(sign, pc.invert(plain)))
    return pc.fill_null(guard, False)


def _guarded(arr: Any, mask: Any) -> Any:
    """`arr` with the masked cells prefixed by `'`."""
    quoted = pc.binary_join_element_wise(
        pa.scalar("'", type=arr.type), arr, pa.scalar("", type=arr.type))
    return pc.if_else(mask, quoted, arr)


def _safe_column(s: pd.Series, dtype: Any = None) -> pd.Series:
    """One column through `neutralize`, vectorised; same values and dtype as `s.map`.

    `dtype`: an object column's dtype after the guard as decided over every row (its slice
    alone may infer another: ints beside NaN are float here, beside text object there)."""
    if isinstance(s.dtype, pd.StringDtype):
        try:
            arr = pa.array(s)
        except (pa.ArrowException, UnicodeError):  # a lone surrogate: the slow way
            return s.map(neutralize)
        if len(arr) and arr.null_count == len(arr):
            return s.map(neutralize)  # nothing to guard; `map` picks the dtype (float, null)
        mask = _guard_mask(arr)
        if not pc.any(mask).as_py():
            return s
        return pd.Series(pd.array(_guarded(arr, mask), dtype=s.dtype), index=s.index,
                         name=s.name)
    values = s.to_numpy(dtype=object, copy=True)
    if pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty"):
        is_str = ~pd.isna(values)
    else:
        is_str = np.fromiter((isinstance(v, str) for v in values), dtype=bool,
                             count=len(values))
    idx = np.flatnonzero(is_str)
    if len(idx):
        try:
            arr = pa.array(values[idx], type=pa.string())
        except (pa.ArrowException, UnicodeError):
            arr = None
        if arr is None:
            values[idx] = [neutralize(v) for v in values[idx]]
        else:
            mask = _guard_mask(arr)
            if pc.any(mask).as_py():
                hit = mask.to_numpy(zero_copy_only=False)
                values[idx[hit]] = _guarded(arr, mask).filter(mask).to_pylist()
    out = pd.Series(values, index=s.index, name=s.name, dtype=object)
    return out.infer_objects() if dtype is None else out.astype(dtype)


def write_atomic_csv(df: pd.DataFrame, path: Path) -> None:
    """RFC 4180 CSV (CRLF between records), so a cell holding a bare CR or LF is quoted: with
    "\n" alone as the record end, a CR inside a name would split the row in a spreadsheet.

    Written column by column with pyarrow's string kernels (`write_csv_columns`): pandas'
    `to_csv` formats every cell in Python (68 s for a 1M-row results.csv). The bytes are
    pandas' own (`write_csv_pandas`, kept as the oracle of a property test); a frame holding
    a dtype the columnar writer does not know is written by pandas."""
    write_atomic(path, lambda p: write_csv_columns(df, p))


def write_csv_pandas(df: pd.DataFrame, path: Path) -> None:
    """results.csv's and plan.csv's writer before issue #25: pandas, a Python call per cell."""
    df.to_csv(path, index=False, lineterminator="\r\n", encoding="utf-8")


CSV_CHUNK_ROWS = 65_536  # rows formatted at once: memory bounded by a chunk, not the file
_CSV_SPECIAL = r'[,"\r\n]'  # a cell holding one of these is quoted (Python csv, QUOTE_MINIMAL)


class _NotColumnar(Exception):
    """A column the columnar writer cannot format exactly as pandas does."""


def _csv_text(s: pd.Series) -> pa.Array:
    """One column's cells as pandas' `to_csv` writes them (before quoting); null for missing."""
    dtype = s.dtype
    if isinstance(dtype, pd.StringDtype):
        return pa.array(s, type=pa.large_string(), from_pandas=True)
    if pd.api.types.is_bool_dtype(dtype):
        values = s.to_numpy(dtype=object, na_value=None)
        return pa.array([None if v is None else ("True" if v else "False") for v in values],
                        type=pa.large_string())
    if pd.api.types.is_integer_dtype(dtype):
        return pc.cast(pa.array(s, from_pandas=True), pa.large_string())
    if pd.api.types.is_float_dtype(dtype):
        values = s.to_numpy(dtype=np.float64, na_value=np.nan)
        mask = np.isnan(values)
        if mask.all():  # no number to format (a slice's column no attempt reached)
            return pa.nulls(len(values), pa.large_string())
        return pa.array(values.astype(str), type=pa.large_string(), mask=mask)
    if isinstance(dtype, np.dtype) and dtype.kind == "O":
        values = s.to_numpy(dtype=object)
        if pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty"):
            return pa.array(values, type=pa.large_string(), from_pandas=True)
        # Mixed cells: Python's csv writes str() of each (repr of a float), missing as "".
        missing = pd.isna(values)
        return pa.array(
            [None if m else (repr(v) if isinstance(v, float) else str(v))
             for v, m in zip(values, missing, strict=True)],
            type=pa.large_string())
    raise _NotColumnar(str(dtype))


_CSV_SPECIAL_BYTES = (b",", b'"', b"\r", b"\n")  # `_CSV_SPECIAL`'s characters as UTF-8


def _csv_plain(arr: pa.Array | pa.ChunkedArray) -> bool:
    """Does no cell hold a character `_CSV_SPECIAL` quotes? Asked of the text's bytes at once
    (a `bytes.find` each, C speed: 40x the regex per cell, which then runs only on a column
    that may need it). Bytes a null cell spans are looked at too: at worst the regex runs."""
    for chunk in arr.chunks if isinstance(arr, pa.ChunkedArray) else [arr]:
        if not pa.types.is_large_string(chunk.type):
            return False
        _, offsets, data = chunk.buffers()
        if data is None or not len(chunk):
            continue
        bounds = np.frombuffer(offsets, dtype=np.int64)[
            chunk.offset: chunk.offset + len(chunk) + 1]
        text = bytes(memoryview(data)[int(bounds[0]): int(bounds[-1])])
        if any(b in text for b in _CSV_SPECIAL_BYTES):
            return False
    return True


def _csv_field(arr: pa.Array) -> pa.Array:
    """Cells quoted as Python's csv does with QUOTE_MINIMAL; missing as ""."""
    if _csv_plain(arr):
        return pc.fill_null(arr, "")
    need = pc.match_substring_regex(arr, _CSV_SPECIAL)
    if pc.any(need).as_py():
        quote, empty = pa.scalar('"', arr.type), pa.scalar("", arr.type)  # large_string too
        quoted = pc.binary_join_element_wise(
            quote, pc.replace_substring(arr, '"', '""'), quote, empty)
        arr = pc.if_else(need, quoted, arr)
    return pc.fill_null(arr, "")


def _csv_lines(fields: list[pa.Array]) -> pa.Array:
    """Fields joined into records, each ending in CRLF (a record of one empty field is `""`,
    as Python's csv writes it)."""
    t = fields[0].type  # the separators as the fields' own type (large_string: no kernel
    line = pc.binary_join_element_wise(*fields, pa.scalar(",", t))  # mixes it with string)
    if len(fields) == 1:
        line = pc.if_else(pc.equal(line, ""), pa.scalar('""', t), line)
    return pc.binary_join_element_wise(line, pa.scalar("\r\n", t), pa.scalar("", t))


def _write_lines(fh: Any, lines: pa.Array) -> None:
    """A string array's characters as one contiguous write (its data buffer, no copy)."""
    if isinstance(lines, pa.ChunkedArray):  # a column read in batches: a write per chunk
        for chunk in lines.chunks:
            _write_lines(fh, chunk)
        return
    lines = lines.cast(pa.large_string())
    _, offsets, data = lines.buffers()
    if data is None:
        return
    bounds = np.frombuffer(offsets, dtype=np.int64)[lines.offset: lines.offset + len(lines) + 1]
    fh.write(memoryview(data)[int(bounds[0]): int(bounds[-1])])


def csv_header(columns: Iterable[Any]) -> bytes:
    """The header record `write_csv_columns` writes for these column names (at least one)."""
    fields = _csv_field(pa.array([str(c) for c in columns], type=pa.large_string())).to_pylist()
    return (",".join(fields) if len(fields) > 1 or fields[0] else '""').encode() + b"\r\n"


def write_csv_rows(fh: Any, df: pd.DataFrame) -> None:
    """`df`'s records (no header) as `write_csv_columns` writes them, a chunk of rows at a
    time; `_NotColumnar` (or arrow's or Unicode's error) where only pandas can write them."""
    for lo in range(0, len(df), CSV_CHUNK_ROWS):
        part = df.iloc[lo: lo + CSV_CHUNK_ROWS]
        cols = [_csv_field(_csv_text(part.iloc[:, i])) for i in range(df.shape[1])]
        _write_lines(fh, _csv_lines(cols))


def write_csv_columns(df: pd.DataFrame, path: Path) -> None:
    """`write_csv_pandas`'s bytes, formatted a chunk of rows and a column at a time with
    pyarrow (see write_atomic_csv)."""
    if not df.shape[1]:
        write_csv_pandas(df, path)  # no columns: pandas' own idea of an empty file
        return
    try:
        with open(path, "wb") as fh:
            fh.write(csv_header(df.columns))
            write_csv_rows(fh, df)
    except (_NotColumnar, pa.ArrowException, UnicodeError):
        # A dtype pandas formats its own way, or text that is not valid Unicode (a lone
        # surrogate): pandas' writer, over what was written, raising as before on what UTF-8
        # cannot hold.
        write_csv_pandas(df, path)


def csv_bytes(df: pd.DataFrame) -> bytes:
    """The bytes `write_csv_columns` writes for `df` (header included), in memory: a chunk
    of a file whose chunks are formatted side by side (plan.csv)."""
    if df.shape[1]:
        buf = io.BytesIO()
        try:
            buf.write(csv_header(df.columns))
            write_csv_rows(buf, df)
            return buf.getvalue()
        except (_NotColumnar, pa.ArrowException, UnicodeError):
            pass  # pandas' writer, as `write_csv_columns` falls back to it
    return df.to_csv(index=False, lineterminator="\r\n").encode("utf-8")


_T = TypeVar("_T")


def formatted_in_order(work: Callable[[_T], bytes], items: Iterable[_T], threads: int,
                       name: str) -> Iterator[bytes]:
    """`work(item)` for each of `items`, `threads` at a time in a pool (arrow's kernels let
    go of the GIL), given back in the items' order. `items` is read in the caller's thread
    (what it reads there, a journal or a history, stays there); at most `threads` results
    wait beyond the one given back, and each is handed back (`release_memory`) once the
    caller is done with it."""
    with ThreadPoolExecutor(threads, thread_name_prefix=name) as pool:
        pending: deque[Future[bytes]] = deque()
        for item in items:
            pending.append(pool.submit(work, item))
            del item
            while len(pending) > threads:
                yield pending.popleft().result()
                release_memory()  # freed in the thread's arena
        while pending:
            yield pending.popleft().result()
            release_memory()


# Input rows per slice of results.csv. At a million rows, 25,000 peak ~150 MB lower than
# 100,000 in the same time (4.3 s); 10,000 lower again but 40% slower.
RESULTS_SLICE_ROWS = 25_000
# Slices guarded and formatted side by side (`_Slicer.write`): at most this many more in memory.
RESULTS_THREADS = 2

# The contacts' own columns results.csv and transcripts.parquet read (and the input's).
_CONTACT_READ = ("row", "contact_id", "phone_raw", "phone_e164", "phone_column",
                 "phone_extension")


class ContactParts(Protocol):
    """The contacts the results are written from, read a slice of rows at a time: a loaded
    frame's (`Contacts`), or the contacts kept beside the plan (`KeptContactFrames`)."""

    rows: np.ndarray  # every row's input row number, in order
    columns: list[str]  # the frame's columns
    extra_columns: list[str]  # the input's own columns among them

    def part(self, lo: int, hi: int) -> pd.DataFrame:
        """Rows lo..hi (positions) as the frame holds them."""
        ...

    def take(self, at: np.ndarray, columns: list[str]) -> pd.DataFrame:
        """The rows at positions `at` (ascending), only `columns`."""
        ...

    def guarded_objects(self, names: list[str]) -> dict[str, Any]:
        """The columns of `names` that hold objects (not text), each with its dtype after
        the formula guard over every row."""
        ...

    def whole(self) -> Contacts:
        """Every row at once (what the slices cannot write is written whole)."""
        ...


class _LoadedParts:
    """A loaded contacts frame, as `ContactParts`."""

    def __init__(self, contacts: Contacts) -> None:
        self._contacts = contacts
        self._cf = contacts.frame
        self.rows = self._cf["row"].to_numpy(dtype=np.int64)
        self.columns = [str(c) for c in self._cf.columns]
        self.extra_columns = list(contacts.extra_columns)

    def part(self, lo: int, hi: int) -> pd.DataFrame:
        return self._cf.iloc[lo:hi]

    def take(self, at: np.ndarray, columns: list[str]) -> pd.DataFrame:
        return self._cf[columns].iloc[at].reset_index(drop=True)

    def guarded_objects(self, names: list[str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for c in names:
            col = self._cf[c]
            if col.dtype == object and pd.api.types.infer_dtype(col, skipna=True) not in (
                    "string", "empty"):
                out[c] = _safe_column(col).dtype
        return out

    def whole(self) -> Contacts:
        return self._contacts


class KeptContactFrames:
    """The contacts kept beside a plan (`store.KeptContacts`, written by `keep_contacts`),
    as `ContactParts`: a slice is read from the file when asked for, so results.csv of a
    resumed run never holds every contact (nor reads the contacts CSV again)."""

    def __init__(self, kept: KeptContacts, path: Path) -> None:
        self._kept = kept
        self._path = path
        self.rows = np.arange(1, kept.num_rows + 1, dtype=np.int64)  # as kept (checked)
        self.columns = [str(c) for c in kept.schema.names]
        self.extra_columns = [str(c) for c in kept.meta.get("extra_columns", [])]

    def part(self, lo: int, hi: int) -> pd.DataFrame:
        return self._kept.read(lo, hi).to_pandas()

    def take(self, at: np.ndarray, columns: list[str]) -> pd.DataFrame:
        frames = []
        size = self._kept.batch_rows
        for lo in range(0, len(self.rows), size):
            a, b = np.searchsorted(at, [lo, lo + size])
            if b > a:
                part = self._kept.read(lo, lo + size, columns).to_pandas()
                frames.append(part.iloc[at[a:b] - lo])
        if not frames:
            return self._kept.read(0, 0, columns).to_pandas()
        return pd.concat(frames, ignore_index=True)

    def guarded_objects(self, names: list[str]) -> dict[str, Any]:
        return {}  # kept only when every column is text (`keep_contacts`)

    def whole(self) -> Contacts:
        return Contacts(path=self._path, frame=self.part(0, len(self.rows)),
                        extra_columns=self.extra_columns)


def contact_parts(contacts: Contacts | KeptContactFrames) -> ContactParts:
    """`contacts` to read a slice of rows at a time."""
    return contacts if isinstance(contacts, KeptContactFrames) else _LoadedParts(contacts)


def keep_contacts(contacts: Contacts, path: Path, fingerprint: str) -> bool:
    """Keep what the results read of `contacts` at `path` for the plan `fingerprint`
    (`store.save_contacts`); False (nothing kept) for contacts the file would not give back
    exactly: a column that is not text, rows not numbered 1..n."""
    cf = contacts.frame
    n = len(cf)
    extra = [c for c in contacts.extra_columns if c in cf.columns]
    names = [c for c in _CONTACT_READ if c in cf.columns] + extra
    if names[:1] != ["row"] or not np.array_equal(
            cf["row"].to_numpy(), np.arange(1, n + 1, dtype=np.int64)):
        return False
    if not all(isinstance(cf[c].dtype, pd.StringDtype) and cf[c].dtype.storage == "pyarrow"
               for c in names[1:]):
        return False
    schema = pa.Schema.from_pandas(cf.iloc[:0][names], preserve_index=False)

    def batch_of(lo: int, hi: int) -> pa.RecordBatch:
        return pa.RecordBatch.from_pandas(cf.iloc[lo:hi][names], preserve_index=False,
                                          schema=schema)

    save_contacts(path, fingerprint, schema, n, batch_of, {"extra_columns": extra})
    return True


def kept_contacts(path: Path, fingerprint: str) -> KeptContactFrames | None:
    """The contacts kept at `path` for the plan `fingerprint`, None when none are."""
    kept = KeptContacts.open(path, fingerprint)
    return None if kept is None else KeptContactFrames(kept, path)


@dataclass(frozen=True)
class ResultsWritten:
    """What `write_results` wrote: how many rows, and how many per disposition."""

    rows: int
    dispositions: dict[str, int]


# A change of a results frame's cells row by row, its columns kept (e.g. `typed_frame` then
# a `Redactor.frame`, as `current` rewrites a stale file): applied to each slice.
Transform = Callable[[pd.DataFrame], pd.DataFrame]


def write_results(contacts: Contacts | KeptContactFrames, journal: JournalStore, path: Path, *,
                  batch_rows: int = RESULTS_SLICE_ROWS,
                  transform: Transform | None = None) -> ResultsWritten:
    """results.csv, written a slice of `batch_rows` input rows at a time into a temporary
    file moved into place (`write_results_to`): the bytes of `write_results_frame` (with
    `transform`: of `transform(results_frame(...))` guarded and written)."""
    written: list[ResultsWritten] = []
    write_atomic(path, lambda p: written.append(write_results_to(
        contacts, journal, p, batch_rows=batch_rows, transform=transform)))
    return written[0]


def write_results_frame(contacts: Contacts, journal: JournalStore, path: Path) -> pd.DataFrame:
    """results.csv from the frame of every row (`results_frame`, guarded, written): the
    writer before the slices, kept as their oracle; returns the frame."""
    df = results_frame(contacts, journal)
    write_atomic_csv(safe_for_spreadsheets(df), path)
    return df


class _WholeFrame(Exception):
    """A campaign the slices cannot write as the whole frame would (a cell of a kind only
    `from_records` or pandas' writer knows: a datetime...): written whole instead."""


def write_results_to(contacts: Contacts | KeptContactFrames, journal: JournalStore,
                     path: Path, *,
                     batch_rows: int = RESULTS_SLICE_ROWS,
                     transform: Transform | None = None) -> ResultsWritten:
    """results.csv's bytes at `path` (not atomic: see `write_results`), a slice of rows at a
    time: each slice of the input rows gets its range of the fate table (`fate_slices_of`,
    decoded to text a slice at a time), its frame, guard and CSV records. A column's dtype,
    which `from_records` picks from the kinds of cell over every row and which changes how
    a number is written, is decided once over every row (`_Slicer`) before any slice."""
    parts = contact_parts(contacts)
    try:
        if transform is not None and len(parts.rows) == 0:
            # no slice to transform: written whole, so it is transformed (and can refuse)
            # as the whole frame is
            raise _WholeFrame
        with open(path, "wb") as fh:
            return _Slicer(parts, journal).write(fh, max(1, batch_rows), transform)
    except (_WholeFrame, _NotColumnar, pa.ArrowException, UnicodeError):
        # As `write_csv_columns` does: pandas (here the whole frame) writes what the slices
        # cannot, raising as before on what UTF-8 cannot hold.
        df = results_frame(parts.whole(), journal)
        written = ResultsWritten(len(df), dict(Counter(df["disposition"].tolist())))
        write_csv_columns(safe_for_spreadsheets(transform(df) if transform else df), path)
        return written


def fate_slices_of(journal: JournalStore) -> FateSlices:
    """The journal's fate table to read a range of rows at a time: its own `fate_slices`
    (a store's journal), else its whole `fate_table_of` held."""
    fate_slices = getattr(journal, "fate_slices", None)
    if fate_slices is not None:
        slices: FateSlices = fate_slices()
        return slices
    return FateSlices.of_table(fate_table_of(journal))


@dataclass
class _Decided:
    """A column whose dtype was decided over every row: `rep` a column of that dtype whose
    first `m` cells stand for the fates' (a text, a missing) and the rest are the attempts'
    values as the whole column holds them; `guarded` its dtype after the guard."""

    rep: pd.Series
    m: int
    guarded: Any


class _Slicer:
    """results.csv a slice of input rows at a time (see `write_results_to`)."""

    def __init__(self, contacts: ContactParts, journal: JournalStore) -> None:
        self.contacts = contacts
        self.rows = contacts.rows
        self.fates = fate_slices_of(journal)
        by_person: dict[str, list[Attempt]] = journal.attempts_by_person()
        known = _known_persons(by_person)
        # The rows dialed, over every row: the fates of the people with attempts only.
        few = _Joined(self.fates.of_persons(known, ["disposition"]), self.rows)
        self.hit, persons = _hits(few, few.fate_or("disposition", "pending"), known)
        del few
        self.hit_counts, cells = _attempt_cells(self.hit, persons, by_person)
        self.at = {c: np.array(pos, dtype=np.int64) for c, (pos, _) in cells.items()}
        self.vals = {c: vals for c, (_, vals) in cells.items()}
        self.decided = self._decide()
        self.extra = [c for c in contacts.extra_columns if c in contacts.columns]
        self.header = csv_header(neutralize(str(c)) for c in [
            *RESULT_COLUMNS, *(_passthrough_name(c) for c in self.extra)])
        # An input column of objects (not text): its dtype after the guard, over every row.
        self.extra_guarded = {len(RESULT_COLUMNS) + self.extra.index(c): dtype
                              for c, dtype in contacts.guarded_objects(self.extra).items()}

    def _decide(self) -> dict[str, _Decided]:
        """The columns whose values include a cell that is not text: their dtype over every
        row. (A column of text and missing cells is written the same whatever its dtype.)"""
        odd = [c for c, vals in self.vals.items()
               if any(v is not None and not isinstance(v, str) for v in vals)]
        n = len(self.rows)
        text_rest = dict.fromkeys(odd, False)
        null_rest = dict.fromkeys(odd, False)
        fated = [c for c in odd if c in EVIDENCE_COLUMNS]
        for c in odd:
            if c not in fated:  # a column only attempts fill: missing on the other rows
                null_rest[c] = n > len(self.at[c])
        if fated:  # which kinds of fate cell the rows without the attempt's value have
            for lo, hi, part in self._parts(RESULTS_SLICE_ROWS, fated):
                for c in fated:
                    valid = part.fate(c).is_valid().to_numpy(zero_copy_only=False)
                    rest = np.ones(hi - lo, dtype=bool)
                    a, b = np.searchsorted(self.at[c], [lo, hi])
                    rest[self.at[c][a:b] - lo] = False
                    text_rest[c] = text_rest[c] or bool((valid & rest).any())
                    null_rest[c] = null_rest[c] or bool((~valid & rest).any())
        out: dict[str, _Decided] = {}
        for c in odd:
            vals = self.vals[c]
            m = int(text_rest[c]) + int(null_rest[c])
            base = (pa.array(["x"] * text_rest[c] + [None] * (null_rest[c] + len(vals)),
                             type=_TEXT) if c in fated else None)
            rep = _column(c, m + len(vals), base, np.arange(m, m + len(vals)), vals)
            dtype = rep.dtype
            if dtype == np.dtype(object):
                guarded = _safe_column(rep).dtype
            elif isinstance(dtype, np.dtype) and dtype.kind in "biuf":
                guarded = dtype
            else:
                raise _WholeFrame(f"{c}: {dtype}")
            out[c] = _Decided(rep, m, guarded)
        return out

    def _parts(self, size: int, columns: Sequence[str]
               ) -> Iterator[tuple[int, int, _Joined]]:
        """(first, end, its fates) per slice of `size` input rows (positions)."""
        for lo in range(0, len(self.rows), size):
            rows = self.rows[lo: lo + size]
            table = self.fates.between(int(rows.min()), int(rows.max()) + 1, columns)
            yield lo, lo + len(rows), _Joined(table, rows)

    def write(self, fh: Any, size: int, transform: Transform | None = None) -> ResultsWritten:
        """The slices' frames are built here in order (the journal is read in this thread);
        each is transformed, guarded and formatted by one of `RESULTS_THREADS` threads
        (`formatted_in_order`), its records written in order."""
        fh.write(self.header)
        dispositions: Counter[str] = Counter()

        def records(df: pd.DataFrame) -> bytes:
            buf = io.BytesIO()
            write_csv_rows(buf, self._guard(transform(df) if transform else df))
            return buf.getvalue()

        def frames() -> Iterator[pd.DataFrame]:
            for lo, hi, fates in self._parts(size, _FATE_READ):
                df = self._frame(lo, hi, fates, self.extra)
                dispositions.update(df["disposition"].tolist())
                yield df

        for data in formatted_in_order(records, frames(), RESULTS_THREADS, "results-csv"):
            fh.write(data)
        return ResultsWritten(len(self.rows), dict(dispositions))

    def _frame(self, lo: int, hi: int, fates: _Joined, extra: list[str]) -> pd.DataFrame:
        """The slice's results frame: `results_frame`'s rows lo..hi."""
        n = hi - lo
        cf = self.contacts.part(lo, hi)
        base = _base_columns(cf, fates)
        counts = np.zeros(n, dtype=np.int64)
        a, b = np.searchsorted(self.hit, [lo, hi])
        counts[self.hit[a:b] - lo] = self.hit_counts[a:b]
        columns: dict[str, pd.Series] = {
            "row": pd.Series(self.rows[lo:hi], name="row"),
            "attempts": pd.Series(counts, name="attempts").astype("Int64"),
        }
        empty = np.empty(0, dtype=np.int64)
        for c, col in base.items():
            at = self.at.get(c, empty)
            a, b = np.searchsorted(at, [lo, hi])
            pos = at[a:b] - lo
            decided = self.decided.get(c)
            if decided is None:
                columns[c] = _column(c, n, col, pos, self.vals.get(c, [])[a:b])
            else:
                columns[c] = _column_as(decided, c, n, col, pos, np.arange(a, b))
        out = pd.DataFrame({c: columns[c] for c in RESULT_COLUMNS}, copy=False)
        out["http_status"] = out["http_status"].astype("Int64")
        passthrough = cf[extra].set_axis([_passthrough_name(c) for c in extra], axis=1)
        return pd.concat([out, passthrough.reset_index(drop=True)], axis=1)

    def _guard(self, df: pd.DataFrame) -> pd.DataFrame:
        """`safe_for_spreadsheets`' cells, a decided column kept to its dtype over every row
        (the header is written once, guarded, by `__init__`)."""
        dtypes = dict(self.extra_guarded)
        for c, d in self.decided.items():
            dtypes[RESULT_COLUMNS.index(c)] = d.guarded
        out = df.copy(deep=False)
        for i in range(out.shape[1]):
            s = out.iloc[:, i]
            if s.dtype == object or pd.api.types.is_string_dtype(s):
                out.isetitem(i, _safe_column(s, dtypes.get(i)))
        return out


def _column_as(decided: _Decided, name: str, n: int, base: pa.Array | pa.ChunkedArray | None,
               pos: np.ndarray, at: np.ndarray) -> pd.Series:
    """`_column`'s cells for a slice of n rows, in the dtype decided over every row: `pos`
    the slice's rows with an attempt's value, `at` those values' places in `decided`."""
    rep, m = decided.rep, decided.m
    dtype = rep.dtype
    got = rep.iloc[m + at]
    if dtype == np.dtype(object):
        cells = np.empty(n, dtype=object)
        cells[:] = np.nan if base is None else base.to_numpy(zero_copy_only=False)
        cells[pos] = got.to_numpy(dtype=object)
        return pd.Series(cells, name=name, dtype=object)
    nums = np.empty(n, dtype=dtype)
    rest = np.ones(n, dtype=bool)
    rest[pos] = False
    if m:
        nums[rest] = rep.iloc[0]
    nums[pos] = got.to_numpy(dtype=dtype)
    return pd.Series(nums, name=name)


TRANSCRIPT_COLUMNS = ["call_id", "row", "contact", "text"]


def transcripts_frame(contacts: Contacts | KeptContactFrames, journal: JournalStore
                      ) -> pd.DataFrame:
    """One row per recorded transcript: the call, the input row, who it was (contact id,
    else the number dialed) and the text, for analysis outside the dialer."""
    parts = contact_parts(contacts)
    found = journal.transcripts()
    rows = parts.rows
    # who, for the rows that have a transcript only (not a dict of every input row)
    at = np.flatnonzero(np.isin(rows, np.array([int(t["row"]) for t in found], dtype=np.int64)))
    few = parts.take(at, ["contact_id", "phone_e164"])
    who = {
        int(r): _s(cid) or _s(e164)
        for r, cid, e164 in zip(
            rows[at].tolist(), few["contact_id"].tolist(), few["phone_e164"].tolist(),
            strict=True,
        )
    }
    records = [
        {"call_id": t["call_id"], "row": int(t["row"]), "contact": who.get(int(t["row"])),
         "text": t["text"]}
        for t in found
    ]
    out = pd.DataFrame.from_records(records, columns=TRANSCRIPT_COLUMNS)
    out["row"] = out["row"].astype("Int64")
    return out


def write_transcripts(contacts: Contacts | KeptContactFrames, journal: JournalStore, path: Path
                      ) -> pd.DataFrame:
    """transcripts.parquet, written whole then moved into place (raw values: not a sheet)."""
    df = transcripts_frame(contacts, journal)
    write_atomic(path, lambda p: df.to_parquet(p, index=False, engine="pyarrow"))
    return df


# -- reading results back (the report) ---------------------------------------------------


class ResultsUnavailable(DialerError):
    """No results.csv, and the contacts to rebuild it from cannot be read."""

    exit_code = ExitCode.DATAERR


def unneutralize(s: pd.Series) -> pd.Series:
    """Undo results.csv's formula guard, so Parquet and the page get the raw value.

    A guarded cell is "'" + a value `neutralize` would guard; a raw value that itself starts
    with "'" and a formula character reads back without its quote (the one ambiguous case).
    """
    quoted = s.str.startswith("'").fillna(False).astype(bool)
    if not quoted.any():
        return s
    cand = s[quoted]
    raw = cand.str.slice(1)
    guarded = raw.map(neutralize).eq(cand)
    out = s.copy()
    out[guarded[guarded].index] = raw[guarded]
    return out


def read_results_csv(path: Path, columns: Collection[str] | None = None) -> pd.DataFrame:
    """results.csv back as the frame `results_frame` made: typed numbers, raw strings; only
    the `columns` the file has, when given (every column otherwise)."""
    with ResultsFile(path) as results:
        return results.frame(columns)


# `ResultsFile.batches`: results.csv parsed a block of this many bytes at a time (the streaming
# reader parses ahead, holding more blocks the bigger they are), its rows typed and handed on
# in batches of at least `RESULTS_BATCH_ROWS` (fewer pandas calls per row).
RESULTS_BLOCK_BYTES = 1 << 20
RESULTS_BATCH_ROWS = 16_384


class ResultsFile:
    """results.csv held open while it is read more than once (the columns the figures need,
    then every column batch by batch): a run rewrites the file by renaming a new one over it,
    so every read of one `ResultsFile` sees the same version."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fh = open(path, "rb")  # noqa: SIM115 - kept open until `close`
        try:
            text = io.TextIOWrapper(self.fh, encoding="utf-8", newline="")
            header = next(csv.reader(text), [])
            text.detach()
        except BaseException:
            self.fh.close()
            raise
        if "disposition" not in header:
            self.fh.close()
            raise ValueError(f"{path} is not a results file (no disposition column)")
        self.names = _unique(header)

    def __enter__(self) -> ResultsFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.fh.close()

    def _options(self, columns: Collection[str] | None, block_bytes: int | None = None
                 ) -> dict[str, Any]:
        read = pacsv.ReadOptions(column_names=self.names, skip_rows=1)
        if block_bytes is not None:
            read.block_size = block_bytes
        include = [] if columns is None else [n for n in self.names if n in columns]
        self.fh.seek(0)
        return {
            # arrow is given the file through `CsvBytes`: its reads never end between a
            # quoted cell's CR and LF (arrow drops such an LF, apache/arrow#51368)
            "input_file": CsvBytes(self.fh, owns=False),
            "read_options": read,
            "parse_options": pacsv.ParseOptions(newlines_in_values=True),
            "convert_options": pacsv.ConvertOptions(
                column_types={n: _TEXT for n in self.names}, null_values=[""],
                strings_can_be_null=True, quoted_strings_can_be_null=True,
                include_columns=include,
            ),
        }

    def table(self, columns: Collection[str] | None = None) -> pa.Table:
        """Every row as read (text, formula guard kept), of the `columns` the file has."""
        return pacsv.read_csv(**self._options(columns))

    def tables(self, columns: Collection[str] | None = None,
               block_bytes: int | None = None) -> Iterator[pa.Table]:
        """`table` a block of rows at a time (the streaming reader: one block in memory)."""
        block_bytes = RESULTS_BLOCK_BYTES if block_bytes is None else block_bytes
        for batch in pacsv.open_csv(**self._options(columns, block_bytes)):
            yield pa.Table.from_batches([batch])

    def frame(self, columns: Collection[str] | None = None) -> pd.DataFrame:
        """Every row, of the `columns` the file has (all when None), typed."""
        return results_table_frame(self.table(columns))

    def batches(self, block_bytes: int | None = None,
                batch_rows: int | None = None) -> Iterator[pd.DataFrame]:
        """Every column, a batch of rows at a time, each typed as `frame` types the whole
        file (a batch's index counts its own rows from 0). Defaults: `RESULTS_BLOCK_BYTES`,
        `RESULTS_BATCH_ROWS`."""
        block_bytes = RESULTS_BLOCK_BYTES if block_bytes is None else block_bytes
        batch_rows = RESULTS_BATCH_ROWS if batch_rows is None else batch_rows
        reader = pacsv.open_csv(**self._options(None, block_bytes))
        held: list[pa.RecordBatch] = []
        rows = 0
        for batch in reader:
            held.append(batch)
            rows += batch.num_rows
            if rows >= batch_rows:
                blocks, held, rows = [pa.Table.from_batches(held)], [], 0
                yield results_table_frame(blocks)  # consumed: nothing else holds them
        if rows:
            blocks, held = [pa.Table.from_batches(held)], []
            yield results_table_frame(blocks)


def results_table_frame(table: pa.Table | list[pa.Table]) -> pd.DataFrame:
    """Rows of results.csv read as text, as the report reads them: the formula guard undone
    on every text column (`unneutralize_array`), numbers typed (`typed_frame`). Column by
    column, each let go of once converted: a million rows are not held twice.

    Given a list of tables (blocks of rows read in turn, one schema), the list is consumed
    (emptied), so that a column's text goes as it is converted: a table the caller still
    holds stays whole until the end (at a million rows, about 140 MB beside the frame)."""
    if isinstance(table, list):
        blocks = table
        if not blocks:
            raise ValueError("no table of rows")
        names = blocks[0].column_names
        n = sum(b.num_rows for b in blocks)
        columns = {name: pa.chunked_array(
            [chunk for b in blocks for chunk in b.column(i).chunks],
            type=blocks[0].schema.field(i).type) for i, name in enumerate(names)}
        blocks.clear()
    else:
        names = table.column_names
        n = table.num_rows
        columns = dict(zip(names, table.columns, strict=True))
    del table
    big = n >= RELEASE_ROWS
    out: dict[str, pd.Series] = {}
    for name in names:
        col = columns.pop(name)
        if isinstance(col, pa.ChunkedArray) and col.num_chunks > 1:
            col = col.combine_chunks()  # the kernels and takes that follow run once
        if name in NUMERIC_COLUMNS:  # text, as pandas reads it; typed below
            out[name] = col.to_pandas()
        else:
            out[name] = pd.Series(_STRING.__from_arrow__(unneutralize_array(col)), name=name)
        del col
        if big:  # the column's chunks, freed, go back now: the next copy does not add up
            pa.default_memory_pool().release_unused()
    return typed_frame(pd.DataFrame(out, columns=names, copy=False), copy=False)


# A frame of this many rows hands each column's freed chunks back as it goes
# (`results_table_frame`): Arrow's allocator keeps them, and the copies add up.
RELEASE_ROWS = 262_144

# The dtype of the report's text columns (`Series.astype("string")`).
_STRING = pd.StringDtype()


def unneutralize_array(arr: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """`unneutralize` on an Arrow text column: the cells that are "'" + a value `neutralize`
    would guard lose their quote (`_guard_mask` of the rest, as the writer guards)."""
    quoted = pc.fill_null(pc.starts_with(arr, "'"), False)
    if not pc.any(quoted).as_py():
        return arr
    cand = pc.filter(arr, quoted)
    if isinstance(cand, pa.ChunkedArray):
        cand = cand.combine_chunks()
    raw = pc.utf8_slice_codeunits(cand, 1)
    hit = _guard_mask(raw)
    if not pc.any(hit).as_py():
        return arr
    where = np.zeros(len(arr), dtype=bool)
    where[np.flatnonzero(quoted.to_numpy(zero_copy_only=False))] = hit.to_numpy(
        zero_copy_only=False)
    return pc.replace_with_mask(arr, pa.array(where), pc.filter(raw, hit))


def _unique(names: Sequence[str]) -> list[str]:
    seen: Counter[str] = Counter()
    out = []
    for n in names:
        out.append(n if not seen[n] else f"{n}.{seen[n]}")
        seen[n] += 1
    return out


def _to_numeric(s: pd.Series) -> pd.Series:
    """`pd.to_numeric(s, errors="coerce")`; a text column every cell of which arrow reads
    as a number is parsed by arrow (a million rows: a tenth of pandas' time), anything else
    (a blank, a word, a space) by pandas as before."""
    if isinstance(s.dtype, pd.StringDtype) or s.dtype == object:
        try:
            arr = pa.array(s, from_pandas=True)
            if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
                nums = pc.cast(arr, pa.float64())
                return pd.Series(nums.to_numpy(zero_copy_only=False), index=s.index,
                                 name=s.name)
        except (pa.ArrowException, TypeError, ValueError):
            pass
    return pd.to_numeric(s, errors="coerce")


def typed_frame(df: pd.DataFrame, *, copy: bool = True) -> pd.DataFrame:
    """One set of dtypes whichever way the frame was made: numbers typed, text as string.
    `copy=False`: the caller's frame is retyped in place (one it made for this)."""
    if copy:
        df = df.copy()
    for c, dtype in NUMERIC_COLUMNS.items():
        if c in df.columns:
            num = _to_numeric(df[c])
            df[c] = num.round().astype(dtype) if dtype != "float64" else num.astype(dtype)
    for c in df.columns:
        if c not in NUMERIC_COLUMNS and not isinstance(df[c].dtype, pd.StringDtype):
            df[c] = df[c].astype(object).where(df[c].notna(), None).astype("string")
    for c in ("disposition", "reason", "status", "outcome"):
        if c not in df.columns:
            df[c] = pd.Series(pd.NA, index=df.index, dtype="string")
    return df


# -- secrets ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Redactor:
    """Whatever leaked into the journal, the key never reaches a report or an export."""

    secrets: tuple[str, ...] = ()

    def __call__(self, text: str) -> str:
        for s in self.secrets:
            text = text.replace(s, "[REDACTED]")
        return KEY_PATTERN.sub("[REDACTED]", text)

    def _may_hold_a_key(self, s: pd.Series) -> bool:
        """Does any cell hold "vx_" or a secret? Asked of the column's text at once (arrow),
        so a million rows that hold none cost no per-row mask; False only when sure."""
        if not isinstance(s.dtype, pd.StringDtype):
            return True
        try:
            arr = pa.array(s, from_pandas=True)
        except (pa.ArrowException, TypeError, ValueError, UnicodeError):
            return True
        if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
            return True
        return any(pc.any(pc.match_substring(arr, needle)).as_py()
                   for needle in ("vx_", *self.secrets))

    def frame(self, df: pd.DataFrame) -> pd.DataFrame:
        """Platform error text lands in `detail`: scrub the columns the journal fills."""
        for c in ("detail", "error_code", "reason"):
            if c not in df.columns:
                continue
            if not self._may_hold_a_key(df[c]):
                continue
            s = df[c].astype("string")
            hit = s.str.contains("vx_", regex=False).fillna(False).astype(bool)
            hit[hit] = s[hit].map(lambda v: bool(KEY_PATTERN.search(v)))
            for sec in self.secrets:
                hit |= s.str.contains(sec, regex=False).fillna(False).astype(bool)
            if hit.any():
                df = df.copy()
                df.loc[hit, c] = s[hit].map(self)
        return df


def redactor_for(campaign: Campaign) -> Redactor:
    key = os.environ.get(campaign.model.api.api_key_env, "").strip()
    if len(key) >= 4:
        log.register_secret(key)
        return Redactor((key,))
    return Redactor()


def fate_pairs(df: pd.DataFrame) -> Counter[tuple[str, str]]:
    """How many rows per (disposition, reason or ""), counted on each column's dictionary
    codes (no Python string per row, no table of both columns' text: a million rows, a few
    MB of codes)."""
    d_codes, d_labels = _blank_codes(df["disposition"])
    r_codes, r_labels = _blank_codes(df["reason"])
    width = len(r_labels)
    counts = np.bincount(d_codes * width + r_codes, minlength=len(d_labels) * width)
    out: Counter[tuple[str, str]] = Counter()
    for k in np.flatnonzero(counts).tolist():
        d, r = divmod(k, width)
        out[(d_labels[d], r_labels[r])] += int(counts[k])
    return out


def _blank_codes(s: pd.Series) -> tuple[np.ndarray, list[str]]:
    """A column's code per row and its labels, missing as "" (two codes may share a label:
    the counts are summed by label)."""
    arr = _text_of(s)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    enc = arr if pa.types.is_dictionary(arr.type) else pc.dictionary_encode(arr)
    labels = ["" if v is None else str(v) for v in enc.dictionary.to_pylist()]
    # null: one code past the dictionary's entries, labelled ""
    codes = np.asarray(pc.fill_null(enc.indices, len(labels)), dtype=np.int64)
    return codes, [*labels, ""]


def _text_of(s: pd.Series) -> pa.Array | pa.ChunkedArray:
    """A column as Arrow text, missing as null (text columns) or "" (`_blank`'s values)."""
    if isinstance(s.dtype, pd.StringDtype):
        try:
            return pa.array(s.array, from_pandas=True)
        except (pa.ArrowException, UnicodeError):  # a lone surrogate: the slow way
            pass
    return pa.array(_blank(s).to_numpy(dtype=object), type=pa.large_string())


def _blank(s: pd.Series) -> pd.Series:
    if isinstance(s.dtype, pd.StringDtype):
        return s.fillna("").astype("str")
    return s.astype(object).where(s.notna(), "").astype("str")


def agrees(df: pd.DataFrame, fate_counts: Counter[tuple[str, str]] | dict[tuple[str, str], int]
           ) -> bool:
    """Does a results frame say what the journal's fates say? (its mtime cannot tell: a WAL
    checkpoint touches the journal after the results are written)"""
    got = fate_pairs(df)
    want = Counter(fate_counts)
    rows = sum(want.values())
    if len(df) < rows:
        return False
    if len(df) > rows:
        want[(PENDING, "not_planned")] += len(df) - rows
    return +got == +want


# Where a run's own report reads its rows from while the campaign still runs elsewhere.
RUN_END_SOURCE = ("results.csv (as written at this run's end; the campaign's other processes "
                  "may have dialed since)")


def current(
    campaign: Campaign, journal: JournalStore, *, running: bool, refresh: bool,
    fresh: Callable[[pd.DataFrame], bool] | None = None,
    read: Callable[[], pd.DataFrame] | None = None, just_written: bool = False,
) -> tuple[pd.DataFrame, str]:
    """The campaign's results rows for a report, and where they came from.

    results.csv when it agrees with the journal (`fresh`, default `agrees` with its fates) and
    no run is going; else rebuilt from the journal and the contacts (every column), and with
    `refresh` a stale file of a campaign not running is rewritten so exports agree. `read`
    reads results.csv (default: `read_results_csv`, every column); a source that starts with
    "results.csv" says the frame is what `read` gave.

    `just_written`: the caller is a run of a campaign other processes share (PostgreSQL) that
    has just written results.csv from the journal (its report): the file is what this run saw
    at its end, read as such and said so, whether the others still run or have dialed since;
    rebuilt, every column of every row (contacts and journal) would cost a million-row
    campaign's process a gigabyte. `report` asked later brings it up to date.
    """
    path = campaign.results_path
    old: pd.DataFrame | None = None
    try:
        old = read() if read is not None else read_results_csv(path)
    except (OSError, ValueError, pa.ArrowException):
        old = None  # missing or unreadable: rebuilt below
    is_fresh = fresh or (lambda df: agrees(df, Counter(journal.fate_counts())))
    if old is not None and not running and is_fresh(old):
        return old, "results.csv"
    if old is not None and just_written:
        return old, RUN_END_SOURCE
    why = "missing" if old is None else "stale"
    try:
        contacts = load_campaign_contacts(campaign)
    except (OSError, DialerError) as e:
        if old is not None:
            return old, f"results.csv (may be out of date; contacts unreadable: {e})"
        raise ResultsUnavailable(
            f"results.csv is missing and the contacts cannot be read: {e}"
        ) from e
    df = typed_frame(results_frame(contacts, journal))
    if running:
        # The run rewrites results.csv when it ends; a copy written now could land after
        # that one and leave stale results behind.
        return df, f"journal (results.csv {why}: the campaign is running)"
    if refresh:
        write_atomic_csv(safe_for_spreadsheets(redactor_for(campaign).frame(df)), path)
        return df, f"journal (results.csv was {why}; rewritten)"
    return df, f"journal (results.csv is {why})"
