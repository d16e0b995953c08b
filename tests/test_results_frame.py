"""results.csv's frame, vectorised (issue #25): the same frame as the dict-per-row builder.

`results_frame` joins the fate columns to the input rows and visits only the rows with an
attempt; `results_frame_rows` (the builder before #25) is the oracle: values, dtypes (what
`DataFrame.from_records` infers from each column's cells), column order, passthrough columns.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from campaign_dialer.contacts import STRING, Contacts, load_contacts
from campaign_dialer.results import (
    CALLER_ID_COLUMNS,
    EVIDENCE_COLUMNS,
    NUMERIC_COLUMNS,
    RESULT_COLUMNS,
    TRANSCRIPT_COLUMNS,
    fate_table_of,
    fates_as_table,
    results_frame,
    results_frame_rows,
    transcripts_frame,
    typed_frame,
    write_csv_columns,
    write_csv_pandas,
)
from campaign_dialer.store import Attempt, Fate, Journal
from campaign_dialer.store.model import ATTEMPT_STATES


@dataclass
class FakeJournal:
    """The two reads results make; `table` given: a journal with the fate base's
    `fate_table` (dictionary-encoded and chunked columns, as a reader must accept)."""

    fate_map: dict[int, Fate]
    by_person: dict[str, list[Attempt]]
    table: pa.Table | None = None
    calls: list[str] = field(default_factory=list)

    def fates(self) -> dict[int, Fate]:
        self.calls.append("fates")
        return dict(self.fate_map)

    def attempts_by_person(self) -> dict[str, list[Attempt]]:
        return self.by_person


@dataclass
class BaseJournal(FakeJournal):
    def fate_table(self) -> pa.Table:
        self.calls.append("fate_table")
        assert self.table is not None
        return self.table


def _same(a: Any, b: Any) -> bool:
    if a is pd.NA or b is pd.NA:
        return a is b
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    return type(a) is type(b) and a == b


def assert_identical(got: pd.DataFrame, want: pd.DataFrame) -> None:
    assert list(got.columns) == list(want.columns)
    assert list(got.dtypes) == list(want.dtypes), [
        (c, g, w) for c, g, w in zip(want.columns, got.dtypes, want.dtypes, strict=True)
        if g != w]
    assert got.index.equals(want.index)
    for i, c in enumerate(want.columns):
        g, w = got.iloc[:, i].tolist(), want.iloc[:, i].tolist()
        bad = [(j, x, y) for j, (x, y) in enumerate(zip(g, w, strict=True)) if not _same(x, y)]
        assert not bad, (c, bad[:5])


_TEXT = st.text(max_size=4)
_MAYBE = st.one_of(st.none(), _TEXT)
_PERSONS = ["tel:+12125550100", "tel:+12125550101", "cid:C-1", "cid:C-2", "", "tel:+1999"]
_DISPOSITIONS = ["completed", "suppressed", "held", "pending", "failed", "skipped"]
_EV_KEYS = [*EVIDENCE_COLUMNS, *CALLER_ID_COLUMNS, "other_key"]
_PASSTHROUGH = ["name", "row (input)", "reason (input)", "status", "tz_hint (input)", "call_id",
                "Company", "input.row"]


def _evidence(draw: Any) -> dict[str, Any] | None:
    keys = draw(st.lists(st.sampled_from(_EV_KEYS), unique=True, max_size=4))
    ev = {k: draw(st.one_of(st.just(""), _TEXT)) for k in keys}
    return draw(st.sampled_from([None, ev])) if not ev else ev


@st.composite
def _attempt(draw: Any, person: str, number: int) -> Attempt:
    def value(kind: Any) -> Any:
        return draw(st.one_of(st.none(), kind))
    ev_keys = draw(st.lists(st.sampled_from(_EV_KEYS), unique=True, max_size=5))
    evidence = {k: draw(st.one_of(st.none(), st.just(""), _TEXT)) for k in ev_keys}
    body = draw(st.sampled_from([{}, {"agent_id": "ag_1"}, {"agent_id": None}, {"x": 1}]))
    return Attempt(
        id=draw(st.integers(1, 10**6)), person=person, row=draw(st.integers(1, 20)),
        attempt=number, idem_key=f"k{number}", body=body,
        state=draw(st.sampled_from(ATTEMPT_STATES)), call_id=value(_TEXT),
        http_status=value(st.integers(100, 599)), error_code=value(_TEXT),
        error=value(_TEXT), status=value(_TEXT), outcome=value(_TEXT),
        ended_reason=value(_TEXT), posts=draw(st.integers(0, 3)), intent_at="t",
        placed_at=value(_TEXT), ended_at=value(_TEXT),
        duration_seconds=value(st.one_of(st.floats(0, 1e4), st.integers(0, 99))),
        recording_url=value(_TEXT), evidence=evidence, run_id=None,
    )


@st.composite
def _campaign(draw: Any) -> tuple[Contacts, dict[int, Fate], dict[str, list[Attempt]]]:
    n = draw(st.integers(0, 9))
    rows = draw(st.sampled_from([list(range(1, n + 1)),
                                 sorted(draw(st.sets(st.integers(1, 40), min_size=n,
                                                     max_size=n)))]))
    n = len(rows)
    dtype = draw(st.sampled_from([STRING, STRING, object]))

    def text_col() -> pd.Series:
        s = pd.Series(draw(st.lists(_MAYBE, min_size=n, max_size=n)), dtype=dtype)
        if dtype is STRING and n > 1 and draw(st.booleans()):  # arrow chunks, as read
            s = pd.concat([s.iloc[:1], s.iloc[1:]], ignore_index=True)
        return s

    frame: dict[str, Any] = {"row": pd.Series(rows, dtype="int64")}
    for c in ("contact_id", "phone_raw", "phone_e164", "tz_hint", "reason", "detail"):
        frame[c] = text_col()
    for c in ("phone_column", "phone_extension"):
        if draw(st.booleans()):
            frame[c] = text_col()
    extra = draw(st.lists(st.sampled_from(_PASSTHROUGH), unique=True, max_size=4))
    for c in extra:
        frame[c] = text_col()
    contacts = Contacts(path=Path("contacts.csv"), frame=pd.DataFrame(frame),
                        extra_columns=extra + draw(st.sampled_from([[], ["not_in_frame"]])))
    fate_rows = draw(st.one_of(  # every row's fate (as a run leaves it), or some, or others
        st.just(set(rows)), st.sets(st.sampled_from(rows + [97, 98]), max_size=n + 2)))
    fates = {
        r: Fate(row=r, person=draw(st.one_of(st.none(), st.sampled_from(_PERSONS))),
                disposition=draw(st.sampled_from(_DISPOSITIONS)), reason=draw(_MAYBE),
                detail=draw(_MAYBE), next_open=draw(_MAYBE), evidence=_evidence(draw))
        for r in fate_rows
    }
    by_person: dict[str, list[Attempt]] = {}
    for p in draw(st.lists(st.sampled_from(_PERSONS), unique=True, max_size=5)):
        k = draw(st.integers(0, 3))
        by_person[p] = [draw(_attempt(p, i + 1)) for i in range(k)]
    return contacts, fates, by_person


def as_base(table: pa.Table, draw: Any) -> pa.Table:
    """The table as a fate base may hand it over: some columns dictionary-encoded, chunked."""
    cols = []
    for name in table.column_names:
        col = table.column(name)
        if name != "row" and draw(st.booleans()):
            col = pc.dictionary_encode(col)
        if len(col) > 1 and draw(st.booleans()):
            arr = col.combine_chunks()
            col = pa.chunked_array([arr.slice(0, 1), arr.slice(1)])
        cols.append(col)
    return pa.table(cols, names=table.column_names)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(campaign=_campaign(), with_base=st.booleans(), data=st.data())
def test_vectorised_frame_equals_the_row_by_row_frame(
    campaign: tuple[Contacts, dict[int, Fate], dict[str, list[Attempt]]],
    with_base: bool, data: st.DataObject,
) -> None:
    contacts, fates, by_person = campaign
    oracle = FakeJournal(fates, by_person)
    want = results_frame_rows(contacts, oracle)  # type: ignore[arg-type]
    journal: FakeJournal = FakeJournal(fates, by_person)
    if with_base:
        table = as_base(fates_as_table(fates.values()), data.draw)
        journal = BaseJournal(fates, by_person, table)
    got = results_frame(contacts, journal)  # type: ignore[arg-type]
    assert_identical(got, want)
    assert journal.calls == (["fate_table"] if with_base else ["fates"])


def test_frame_examples_against_a_journal(tmp_path: Path) -> None:
    """A real journal: a row with two attempts, a suppressed row whose person was dialed,
    a person on two rows, a row without a fate, evidence overridden by the attempt."""
    path = tmp_path / "contacts.csv"
    path.write_text("phone,name,status\n+12125550100,Ann,vip\n+12125550101,Bob,\n"
                    "+12125550100,Ann again,\n+12125550102,Cy,\n", encoding="utf-8")
    contacts = load_contacts(path, default_region="US")
    with Journal(tmp_path / "j.sqlite", "c") as journal:
        ann, bob = "tel:+12125550100", "tel:+12125550101"
        journal.set_fates([
            Fate(1, ann, "completed", None, "", None, {"zones": "America/New_York",
                                                       "dialed_at": "old"}),
            Fate(2, bob, "suppressed", "dnc", "on a list", None, None),
            Fate(3, ann, "skipped", "duplicate", "same as row 1", None, None),
        ])
        for number in (1, 2):
            a = journal.record_intent(
                person=ann, row=1, attempt=number, idem_key=f"a{number}",
                body={"agent_id": "ag_1"}, evidence={"dialed_at": f"t{number}",
                                                     "from_number": "+12125550199"},
                run_id=None)
            journal.record_placed(a.id, call_id=f"call_{number}", http_status=201,
                                  status="queued", placed_at=None)
        journal.record_final(a.id, status="ended", outcome="answered", ended_reason="hangup",
                             ended_at=None, duration_seconds=12.5, recording_url=None)
        b = journal.record_intent(person=bob, row=2, attempt=1, idem_key="b1", body={},
                                  evidence={}, run_id=None)
        journal.record_rejected(b.id, http_status=422, error_code="bad", error="no")
        got, want = results_frame(contacts, journal), results_frame_rows(contacts, journal)
    assert_identical(got, want)
    assert list(got.columns) == [*RESULT_COLUMNS, "phone", "name", "input.status"]
    assert got["attempts"].tolist() == [2, 0, 2, 0]
    assert got["call_id"].tolist()[0] == "call_2" and got["dialed_at"].tolist()[0] == "t2"
    assert got["call_id"].tolist()[2] == "call_2"  # the person's last attempt, on each row
    assert pd.isna(got["call_id"].tolist()[1])  # suppressed: no attempt columns
    assert (got["disposition"].tolist()[3], got["reason"].tolist()[3]) == (
        "pending", "not_planned")
    assert got["http_status"].tolist()[0] == 201


def test_fate_table_of_prefers_the_journals_own_table() -> None:
    fates = {2: Fate(2, "p", "held", "x", None, "t", {"zones": "z"}),
             1: Fate(1, None, "completed")}
    table = fates_as_table(fates.values())
    assert table.column("row").to_pylist() == [1, 2]
    assert table.column("zones").to_pylist() == [None, "z"]
    assert table.column("detail").to_pylist() == [None, None]
    own = BaseJournal({}, {}, table.slice(0, 1))
    assert fate_table_of(own).num_rows == 1  # type: ignore[arg-type]
    assert own.calls == ["fate_table"]


def test_a_frame_of_no_rows(tmp_path: Path) -> None:
    contacts = Contacts(path=tmp_path / "c.csv", frame=pd.DataFrame({
        "row": pd.Series([], dtype="int64"),
        **{c: pd.Series([], dtype=STRING) for c in ("contact_id", "phone_raw", "phone_e164")},
    }))
    journal = FakeJournal({1: Fate(1, "p", "completed")}, {"p": []})
    assert_identical(results_frame(contacts, journal),  # type: ignore[arg-type]
                     results_frame_rows(contacts, journal))  # type: ignore[arg-type]
    assert np.array_equal(results_frame(contacts, journal).shape,  # type: ignore[arg-type]
                          (0, len(RESULT_COLUMNS)))


def test_frame_of_unusual_cells_equals_the_row_by_row_frame() -> None:
    """Every row dialed (no absent cells: an int column stays int64), values that are not
    text (an int in a caller-ID column, a datetime)."""
    contacts = Contacts(path=Path("c.csv"), frame=pd.DataFrame({
        "row": pd.Series([1, 2, 3], dtype="int64"),
        **{c: pd.Series(["a", None, "b"], dtype=STRING)
           for c in ("contact_id", "phone_raw", "phone_e164")},
    }))

    when = pd.Timestamp("2026-06-09T17:00:00Z").to_pydatetime()

    def attempt(person: str, **kw: Any) -> Attempt:
        fields: dict[str, Any] = dict(
            id=1, person=person, row=1, attempt=1, idem_key="k", body={}, state="final",
            call_id="c", http_status=200, error_code=None, error=None, status="ended",
            outcome=None, ended_reason=None, posts=1, intent_at="t", placed_at=None,
            ended_at=when, duration_seconds=3, recording_url=None, evidence={}, run_id=None)
        fields.update(kw)
        return Attempt(**fields)

    by_person = {
        "p1": [attempt("p1", evidence={"from_number": 5, "zones": "z"})],
        "p2": [attempt("p2", duration_seconds=7, status=when)],
        "p3": [attempt("p3", evidence={"dialed_at": 1.5}), attempt("p3", attempt=2)],
    }
    fates = {r: Fate(r, f"p{r}", "completed", evidence={"zones": "x"}) for r in (1, 2, 3)}
    journal = FakeJournal(fates, by_person)
    got = results_frame(contacts, journal)  # type: ignore[arg-type]
    assert_identical(got, results_frame_rows(contacts, journal))  # type: ignore[arg-type]
    assert got["duration_seconds"].dtype == np.int64
    assert got["status"].dtype == object and got["from_number"].tolist()[0] == 5
    assert got["ended_at"].dtype.kind == "M"  # from_records' own datetime column


def test_columns_without_a_character_to_quote_are_written_as_pandas_writes_them(
    tmp_path: Path, monkeypatch: Any
) -> None:
    """The writer skips the quoting regex on a chunk whose text holds no `,"\\r\\n` at all:
    a special character in one chunk only, in arrow chunks and slices, still gets quoted."""
    cells = [f"r{i}" if i % 5 else None for i in range(300)]
    cells[250] = 'a "quoted", cell'
    cells[120] = "line\nbreak"
    text = pd.Series(cells, dtype=STRING)
    df = pd.DataFrame({
        "chunked": pd.concat([text.iloc[:7], text.iloc[7:]], ignore_index=True),
        "str": pd.Series(cells, dtype="str"),
        "object": pd.Series(cells, dtype=object),
        "plain": pd.Series([f"p{i}" for i in range(300)], dtype=STRING),
    })
    monkeypatch.setattr("campaign_dialer.results.CSV_CHUNK_ROWS", 64)
    write_csv_columns(df, tmp_path / "new.csv")
    write_csv_pandas(df, tmp_path / "old.csv")
    assert (tmp_path / "new.csv").read_bytes() == (tmp_path / "old.csv").read_bytes()
    assert b'"a ""quoted"", cell"' in (tmp_path / "new.csv").read_bytes()


def _transcripts_frame_rows(contacts: Contacts, journal: Any) -> pd.DataFrame:
    """transcripts_frame before issue #25: a dict of every input row, for a few transcripts."""
    cf = contacts.frame
    who = {int(r): _s(cid) or _s(e164) for r, cid, e164 in zip(
        cf["row"].tolist(), cf["contact_id"].tolist(), cf["phone_e164"].tolist(), strict=True)}
    records = [{"call_id": t["call_id"], "row": int(t["row"]),
                "contact": who.get(int(t["row"])), "text": t["text"]}
               for t in journal.transcripts()]
    out = pd.DataFrame.from_records(records, columns=TRANSCRIPT_COLUMNS)
    out["row"] = out["row"].astype("Int64")
    return out


def _s(v: Any) -> Any:
    return None if v is None or v is pd.NA or (isinstance(v, float) and v != v) else v


@dataclass
class TranscriptJournal:
    found: list[dict[str, Any]]

    def transcripts(self) -> list[dict[str, Any]]:
        return self.found


@settings(max_examples=150, deadline=None)
@given(
    cells=st.lists(st.tuples(st.integers(1, 8), st.sampled_from([None, "", "C-1", "C-2"]),
                             st.sampled_from([None, "", "+12125550100"])), max_size=8),
    said=st.lists(st.tuples(st.integers(1, 10), _TEXT), max_size=5),
    dtype=st.sampled_from([STRING, object]),
)
def test_transcripts_frame_equals_the_dict_of_every_row(
    cells: list[tuple[int, Any, Any]], said: list[tuple[int, str]], dtype: Any
) -> None:
    """Only the rows with a transcript are looked up; the frame is the one before (a row
    twice in the frame: its last cells, as the dict had them)."""
    contacts = Contacts(path=Path("c.csv"), frame=pd.DataFrame({
        "row": pd.Series([r for r, _, _ in cells], dtype="int64"),
        "contact_id": pd.Series([c for _, c, _ in cells], dtype=dtype),
        "phone_e164": pd.Series([p for _, _, p in cells], dtype=dtype),
    }))
    journal = TranscriptJournal([{"call_id": f"call_{i}", "row": r, "person": "p", "text": t}
                                 for i, (r, t) in enumerate(said)])
    got = transcripts_frame(contacts, journal)  # type: ignore[arg-type]
    assert_identical(got, _transcripts_frame_rows(contacts, journal))


numeric_text = st.one_of(
    st.none(), st.integers(-10**6, 10**6).map(str),
    st.floats(-1e9, 1e9, allow_nan=False, width=32).map(repr),
    st.sampled_from(["", " 3", "x", "1e3", "007", "nan", "-0", "+5", "1_000"]),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(numeric_text, numeric_text, numeric_text), min_size=1, max_size=20))
def test_typed_frame_reads_numbers_as_pandas_to_numeric_does(
    cells: list[tuple[str | None, str | None, str | None]],
) -> None:
    """results.csv's numbers read back: arrow parses a column it reads whole, pandas the
    rest; the typed values are pandas' `to_numeric` either way."""
    df = pd.DataFrame({
        "row": pd.array([str(i + 1) for i in range(len(cells))], dtype="string"),
        "http_status": pd.array([c[0] for c in cells], dtype="string"),
        "attempts": pd.array([c[1] for c in cells], dtype="string"),
        "duration_seconds": pd.array([c[2] for c in cells], dtype="string"),
        "disposition": pd.array(["pending"] * len(cells), dtype="string"),
    })
    got = typed_frame(df)
    for c, dtype in NUMERIC_COLUMNS.items():
        try:
            num = pd.to_numeric(df[c], errors="coerce")
            want = num.round().astype(dtype) if dtype != "float64" else num.astype(dtype)
        except (TypeError, ValueError, OverflowError):
            continue  # pandas itself cannot type it (e.g. a float past Int64)
        pd.testing.assert_series_equal(got[c], want, check_names=False)
