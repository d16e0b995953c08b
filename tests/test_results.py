"""Exports people open: no cell may run as a spreadsheet formula; an E.164 phone stays as is."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from campaign_dialer.contacts import load_contacts
from campaign_dialer.results import (
    RESULT_COLUMNS,
    neutralize,
    results_frame,
    safe_for_spreadsheets,
    write_atomic_csv,
    write_csv_columns,
    write_csv_pandas,
)
from campaign_dialer.store import Journal

DANGEROUS_FIRST = "=@\t\r"


@given(st.text())
def test_no_neutralized_cell_can_start_a_formula(cell: str) -> None:
    out = neutralize(cell)
    if out and out[0] in "=@\t\r":
        raise AssertionError(out)
    if out and out[0] in "+-":
        body = out[1:]
        assert body.replace(".", "", 1).replace("e", "", 1).replace("E", "", 1).lstrip(
            "+-").isdigit()


@given(st.text())
def test_neutralizing_only_prefixes(cell: str) -> None:
    out = neutralize(cell)
    assert out == cell or out == "'" + cell


def test_examples() -> None:
    assert neutralize("+14155550188") == "+14155550188"
    assert neutralize("-12.5") == "-12.5"
    assert neutralize("=HYPERLINK(\"http://x\")") == "'=HYPERLINK(\"http://x\")"
    assert neutralize("@SUM(A1:A2)") == "'@SUM(A1:A2)"
    assert neutralize("-2+3") == "'-2+3"
    assert neutralize("+1 (415) 555-0188") == "'+1 (415) 555-0188"
    assert neutralize("Acme, Inc.") == "Acme, Inc."
    assert neutralize("") == ""


# Cells as exports hold them: text that a spreadsheet would run or that merely looks like a
# number (phones, signed numbers, Unicode digits, a final newline), blanks, missing values of
# every kind, and the non-text values an object column can carry.
_PREFIXES = st.sampled_from(["", "=", "@", "\t", "\r", "+", "-", "+1", "-0.", "'", "\n"])
_BODIES = st.one_of(
    st.text(max_size=12),
    st.from_regex(r"[+-]?[0-9]{1,12}(\.[0-9]{1,3})?([eE][+-]?[0-9]{1,2})?\n?", fullmatch=True),
    st.text(alphabet="0123456789\u0663\u0966\uff11.eE+-\n\r\t =@", max_size=10),
)
_TEXT = st.builds(lambda a, b: a + b, _PREFIXES, _BODIES)
_MISSING = st.sampled_from([None, math.nan, pd.NA])
_CELL = st.one_of(_TEXT, _TEXT, _MISSING, st.integers(-10**6, 10**6),
                  st.floats(allow_nan=True), st.booleans(),
                  st.just(datetime(2026, 6, 9, 17, tzinfo=UTC)))


def _map_per_cell(df: pd.DataFrame) -> pd.DataFrame:
    """safe_for_spreadsheets as it was: `neutralize` per cell through `Series.map`."""
    out = df.copy()
    for c in out.columns:
        if out[c].dtype == object or pd.api.types.is_string_dtype(out[c]):
            out[c] = out[c].map(neutralize)
    out.columns = [neutralize(str(c)) for c in out.columns]
    return out


def _same(a: Any, b: Any) -> bool:
    if a is pd.NA or b is pd.NA or a is pd.NaT or b is pd.NaT:
        return a is b
    if isinstance(a, float) and isinstance(b, float) and a != a:
        return b != b
    return type(a) is type(b) and a == b


@settings(max_examples=300, deadline=None)
@given(
    texts=st.lists(st.one_of(_TEXT, _MISSING), max_size=8),
    mixed=st.lists(_CELL, max_size=8),
    header=_TEXT,
    dtype=st.sampled_from([object, "str", "string"]),
)
def test_vectorised_guard_equals_neutralize_per_cell(
    texts: list[Any], mixed: list[Any], header: str, dtype: Any, tmp_path_factory: Any
) -> None:
    n = max(len(texts), len(mixed))
    texts = texts + [None] * (n - len(texts))
    mixed = mixed + [""] * (n - len(mixed))
    if dtype is not object:
        texts = [None if v is None or v is pd.NA or v != v else v for v in texts]
    df = pd.DataFrame({
        "text": pd.Series(texts, dtype=dtype),
        "mixed": pd.Series(mixed, dtype=object),
        "strings": pd.Series(np.array([v if isinstance(v, str) else None for v in texts],
                                      dtype=object), dtype=object),
        "number": pd.Series(range(n), dtype="int64"),
        header: pd.Series(["=1+1"] * n, dtype=object),
    })
    want, got = _map_per_cell(df), safe_for_spreadsheets(df)
    assert list(got.columns) == list(want.columns)
    assert list(got.dtypes) == list(want.dtypes)
    for i in range(len(df.columns)):
        w, g = want.iloc[:, i].tolist(), got.iloc[:, i].tolist()
        assert all(_same(a, b) for a, b in zip(w, g, strict=True)), (w, g)
    folder = tmp_path_factory.mktemp("csv")
    write_atomic_csv(want, folder / "want.csv")
    write_atomic_csv(got, folder / "got.csv")
    assert (folder / "want.csv").read_bytes() == (folder / "got.csv").read_bytes()


def test_vectorised_guard_examples() -> None:
    cells = ["+14155550188", "-12.5", "=1", "@x", "\tx", "\rx", "-2+3", "+1 (415)", "",
             "+12\n", "+\u0663", "-\u0663x", "Acme", None]
    got = safe_for_spreadsheets(pd.DataFrame({"c": cells}))["c"].tolist()
    assert got[:-1] == [neutralize(c) for c in cells[:-1]] and pd.isna(got[-1])
    assert got[2:8] == ["'=1", "'@x", "'\tx", "'\rx", "'-2+3", "'+1 (415)"]
    assert got[9:12] == ["+12\n", "+\u0663", "'-\u0663x"]


# Cells that stress a CSV writer: separators, quotes, CR and LF inside cells, non-ASCII,
# formula characters, E.164 phones, blanks.
_CSV_TEXT = st.one_of(
    st.text(alphabet=st.sampled_from(list(',"\r\n\t =@+-\'0123456789.eé€😀 ab\x00')),
            max_size=12),
    st.text(max_size=8),
    st.from_regex(r"\+1[2-9][0-9]{9}", fullmatch=True),
)
_CSV_COLUMN = st.one_of(
    st.just(("text", object)), st.just(("text", "string")), st.just(("text", "str")),
    st.just(("mixed", object)),
    st.just(("float", "float64")), st.just(("int", "int64")), st.just(("int", "Int64")),
    st.just(("bool", "bool")),
)


@st.composite
def _csv_frames(draw: Any) -> pd.DataFrame:
    n = draw(st.integers(0, 6))
    kinds = draw(st.lists(_CSV_COLUMN, min_size=1, max_size=4))
    data: dict[str, Any] = {}
    for i, (kind, dtype) in enumerate(kinds):
        name = draw(_CSV_TEXT) + f"#{i}"
        if kind == "text":
            cells = draw(st.lists(st.one_of(_CSV_TEXT, st.none()), min_size=n, max_size=n))
            data[name] = pd.Series(cells, dtype=dtype)
        elif kind == "mixed":
            data[name] = pd.Series(draw(st.lists(_CELL, min_size=n, max_size=n)), dtype=object)
        elif kind == "float":
            data[name] = pd.Series(draw(st.lists(st.floats(allow_infinity=True), min_size=n,
                                                 max_size=n)), dtype="float64")
        elif kind == "bool":
            data[name] = pd.Series(draw(st.lists(st.booleans(), min_size=n, max_size=n)),
                                   dtype="bool")
        else:
            ints = draw(st.lists(st.one_of(st.integers(-2**62, 2**62), st.none()) if dtype ==
                                 "Int64" else st.integers(-2**62, 2**62),
                                 min_size=n, max_size=n))
            data[name] = pd.Series(ints, dtype=dtype)
    return pd.DataFrame(data)


@settings(max_examples=300, deadline=None)
@given(df=_csv_frames(), guard=st.booleans())
def test_columnar_csv_writer_writes_pandas_bytes(
    df: pd.DataFrame, guard: bool, tmp_path_factory: Any
) -> None:
    """results.csv's and plan.csv's columnar writer: byte for byte what pandas' `to_csv` (the
    writer before issue #25, kept as the oracle) writes, the formula guard applied or not."""
    if guard:
        df = safe_for_spreadsheets(df)
    folder = tmp_path_factory.mktemp("csvw")
    write_csv_pandas(df, folder / "old.csv")
    write_csv_columns(df, folder / "new.csv")
    assert (folder / "new.csv").read_bytes() == (folder / "old.csv").read_bytes()


def test_columnar_csv_writer_examples(tmp_path: Path, monkeypatch: Any) -> None:
    df = pd.DataFrame({
        "phone": ["+14155550188", "=cmd", 'a "b", c', "x\ry", "x\ny", None],
        "n": pd.array([1, None, 3, 4, 5, 6], dtype="Int64"),
        "s": [1.5, math.nan, 1e-05, 2.0, 1e20, -0.0],
    })
    write_atomic_csv(safe_for_spreadsheets(df), tmp_path / "r.csv")
    assert (tmp_path / "r.csv").read_bytes() == (
        b'phone,n,s\r\n+14155550188,1,1.5\r\n\'=cmd,,\r\n"a ""b"", c",3,1e-05\r\n'
        b'"x\ry",4,2.0\r\n"x\ny",5,1e+20\r\n,6,-0.0\r\n')
    one = pd.DataFrame({"": ["", None, "a"]})
    write_csv_columns(one, tmp_path / "one.csv")
    write_csv_pandas(one, tmp_path / "one_old.csv")
    assert (tmp_path / "one.csv").read_bytes() == (tmp_path / "one_old.csv").read_bytes()
    # a chunk boundary changes nothing
    big = pd.DataFrame({"a": [f"r{i}" if i % 7 else None for i in range(3000)],
                        "b": np.arange(3000) / 3})
    monkeypatch.setattr("campaign_dialer.results.CSV_CHUNK_ROWS", 1000)
    write_csv_columns(big, tmp_path / "big.csv")
    write_csv_pandas(big, tmp_path / "big_old.csv")
    assert (tmp_path / "big.csv").read_bytes() == (tmp_path / "big_old.csv").read_bytes()


def test_input_columns_that_clash_are_renamed_input_dot_name(tmp_path: Path) -> None:
    """The README's rule, for every kind of clash: `row` (the contacts' own row number),
    `reason` (a contacts column too) and `status` (a results column) all become
    `input.<name>`; a name that clashes with nothing passes through as it is."""
    path = tmp_path / "contacts.csv"
    path.write_text("phone,row,reason,status,tz_hint,name\n"
                    "+12125550100,7,renewal,vip,x,Ann\n", encoding="utf-8")
    contacts = load_contacts(path, default_region="US")
    with Journal(tmp_path / "j.sqlite", "c") as journal:
        df = results_frame(contacts, journal)
    assert list(df.columns[len(RESULT_COLUMNS):]) == [
        "phone", "input.row", "input.reason", "input.status", "tz_hint", "name"]
    row = df.iloc[0]
    assert (row["row"], row["input.row"], row["input.reason"], row["input.status"]) == (
        1, "7", "renewal", "vip")
    assert (row["disposition"], row["reason"]) == ("pending", "not_planned")
