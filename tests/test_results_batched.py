"""results.csv a slice of rows at a time (issue #25): the bytes of the whole-frame writer.

`write_results` cuts the input rows into slices, reads each slice's range of the fate table
(`FateSlices.between`) and writes its records; `write_results_frame` (the frame of every
row, guarded and written) is the oracle, over journals with a fate base and an overlay,
attempts whose values are not text, input columns that need quoting or the formula guard,
duplicate column names and empty campaigns, with slices of a few rows.
"""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from campaign_dialer.contacts import STRING, Contacts
from campaign_dialer.results import (
    CALLER_ID_COLUMNS,
    EVIDENCE_COLUMNS,
    Redactor,
    ResultsWritten,
    fates_as_table,
    results_frame,
    safe_for_spreadsheets,
    typed_frame,
    write_atomic_csv,
    write_results,
    write_results_frame,
)
from campaign_dialer.store import Attempt, Fate, Journal
from campaign_dialer.store.model import ATTEMPT_STATES
from tests.test_results_frame import BaseJournal, FakeJournal, as_base

_PERSONS = ["tel:+12125550100", "tel:+12125550101", "cid:C-1", "cid:C-2", "", "tel:+1999"]
_DISPOSITIONS = ["completed", "suppressed", "held", "pending", "failed", "skipped"]
_EV_KEYS = [*EVIDENCE_COLUMNS, *CALLER_ID_COLUMNS, "other_key"]
# Input columns: names that clash with results columns (two of them become `input.row`).
_PASSTHROUGH = ["name", "row (input)", "input.row", "status", "reason (input)", "Company"]
# Text a spreadsheet would run, that needs quoting, a CR or LF, a plain signed number.
_TEXT = st.one_of(
    st.text(max_size=4),
    st.sampled_from(["=1+1", "@x", "+1 (212)", "-5", "+12125550100", "a,b", 'say "hi"',
                     "two\r\nlines", "\r", "\n", "\t=x", "'=x", "", " "]),
)
_MAYBE = st.one_of(st.none(), _TEXT)
# An attempt's value that is not text: numbers (an int beside a float, a bool), JSON's
# objects, beside text and missing.
_ODD = st.one_of(st.none(), _TEXT, st.integers(-10**6, 10**6), st.floats(-1e6, 1e6),
                 st.booleans(), st.just([1, "a"]), st.just({"k": 1}))


def _evidence(draw: Any, values: Any) -> dict[str, Any]:
    keys = draw(st.lists(st.sampled_from(_EV_KEYS), unique=True, max_size=5))
    return {k: draw(values) for k in keys}


@st.composite
def _attempt(draw: Any, person: str, number: int, odd: bool) -> Attempt:
    def value(kind: Any) -> Any:
        return draw(st.one_of(st.none(), kind, _ODD) if odd else st.one_of(st.none(), kind))
    return Attempt(
        id=number, person=person, row=1, attempt=number, idem_key=f"k{number}",
        body=draw(st.sampled_from([{}, {"agent_id": "ag_1"}, {"agent_id": 7}])),
        state=draw(st.sampled_from(ATTEMPT_STATES)), call_id=value(_TEXT),
        http_status=draw(st.one_of(st.none(), st.integers(100, 599))),
        error_code=value(_TEXT), error=None, status=value(_TEXT), outcome=value(_TEXT),
        ended_reason=value(_TEXT), posts=1, intent_at="t", placed_at=value(_TEXT),
        ended_at=value(_TEXT),
        duration_seconds=draw(st.one_of(st.none(), st.floats(0, 1e4), st.integers(0, 99))),
        recording_url=value(_TEXT),
        evidence=_evidence(draw, _ODD if odd else _MAYBE), run_id=None,
    )


@st.composite
def _campaign(draw: Any) -> tuple[Contacts, dict[int, Fate], dict[str, list[Attempt]]]:
    n = draw(st.integers(0, 16))
    rows = sorted(draw(st.sets(st.integers(1, 40), min_size=n, max_size=n)))
    if draw(st.integers(0, 4)) == 0:  # input rows not in row order: each slice reads a range
        rows = draw(st.permutations(rows))
    dtype = draw(st.sampled_from([STRING, STRING, object]))

    def text_col() -> pd.Series:
        s = pd.Series(draw(st.lists(_MAYBE, min_size=n, max_size=n)), dtype=dtype)
        if dtype is STRING and n > 1 and draw(st.booleans()):  # arrow chunks, as read
            s = pd.concat([s.iloc[:1], s.iloc[1:]], ignore_index=True)
        return s

    frame: dict[str, Any] = {"row": pd.Series(rows, dtype="int64")}
    for c in ("contact_id", "phone_raw", "phone_e164"):
        frame[c] = text_col()
    for c in ("phone_column", "phone_extension"):
        if draw(st.booleans()):
            frame[c] = text_col()
    extra = draw(st.lists(st.sampled_from(_PASSTHROUGH), unique=True, max_size=4))
    for c in extra:
        frame[c] = text_col()
    if n and draw(st.booleans()):  # an input column of numbers beside text (not text)
        frame["score"] = pd.Series(draw(st.lists(
            st.one_of(st.none(), st.integers(0, 9), st.just("x")), min_size=n, max_size=n)),
            dtype=object)
        extra.append("score")
    contacts = Contacts(path=Path("contacts.csv"), frame=pd.DataFrame(frame),
                        extra_columns=extra)
    fate_rows = draw(st.one_of(  # every row's fate (as a run leaves it), or some, or others
        st.just(set(rows)), st.sets(st.sampled_from(rows + [97, 98]), max_size=n + 2)))
    fates = {
        r: Fate(row=r, person=draw(st.one_of(st.none(), st.sampled_from(_PERSONS))),
                disposition=draw(st.sampled_from(_DISPOSITIONS)), reason=draw(_MAYBE),
                detail=draw(_MAYBE), next_open=draw(_MAYBE),
                evidence=_evidence(draw, _MAYBE) or None)
        for r in sorted(fate_rows)
    }
    odd = draw(st.booleans())
    by_person: dict[str, list[Attempt]] = {}
    for p in draw(st.lists(st.sampled_from(_PERSONS), unique=True, max_size=5)):
        by_person[p] = [draw(_attempt(p, i + 1, odd)) for i in range(draw(st.integers(0, 3)))]
    return contacts, fates, by_person


def _both(contacts: Contacts, journal: Any, folder: Path, batch: int) -> tuple[bytes, bytes,
                                                                           ResultsWritten]:
    want = write_results_frame(contacts, journal, folder / "whole.csv")
    got = write_results(contacts, journal, folder / "sliced.csv", batch_rows=batch)
    assert got == ResultsWritten(len(want), dict(Counter(want["disposition"].tolist())))
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no temporary left
    return (folder / "sliced.csv").read_bytes(), (folder / "whole.csv").read_bytes(), got


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(campaign=_campaign(), with_table=st.booleans(), batch=st.integers(1, 7),
       data=st.data())
def test_slices_write_the_bytes_of_the_whole_frame(
    campaign: tuple[Contacts, dict[int, Fate], dict[str, list[Attempt]]],
    with_table: bool, batch: int, data: st.DataObject,
) -> None:
    """A journal that gives only its fates, or its `fate_table` (dictionary-encoded and
    chunked columns, as a reader must accept), read whole and cut by the slices."""
    contacts, fates, by_person = campaign
    journal = (BaseJournal(fates, by_person, as_base(fates_as_table(fates.values()),
                                                      data.draw))
               if with_table else FakeJournal(fates, by_person))
    with tempfile.TemporaryDirectory() as tmp:
        got, want, _ = _both(contacts, journal, Path(tmp), batch)
    assert got == want


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(campaign=_campaign(), batch=st.integers(1, 7), secret=st.sampled_from(["a", "=", "vx_"]))
def test_slices_with_a_transform_write_the_whole_frame_transformed(
    campaign: tuple[Contacts, dict[int, Fate], dict[str, list[Attempt]]], batch: int,
    secret: str,
) -> None:
    """`transform` (as `current` rewrites a stale file: typed, then scrubbed of a secret) on
    each slice: the bytes of the whole frame transformed, guarded and written."""
    contacts, fates, by_person = campaign
    journal = FakeJournal(fates, by_person)

    def transform(df: pd.DataFrame) -> pd.DataFrame:
        return Redactor((secret,)).frame(typed_frame(df))

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        try:
            df = results_frame(contacts, journal)  # type: ignore[arg-type]
            write_atomic_csv(safe_for_spreadsheets(transform(df)), folder / "whole.csv")
        except Exception as e:  # e.g. a value typed_frame cannot type, two
            # input columns of one name it cannot read: the slices raise the same
            with pytest.raises(type(e)):
                write_results(contacts, journal, folder / "sliced.csv",  # type: ignore[arg-type]
                              batch_rows=batch, transform=transform)
            return
        got = write_results(contacts, journal, folder / "sliced.csv",  # type: ignore[arg-type]
                            batch_rows=batch, transform=transform)
        assert got == ResultsWritten(len(df), dict(Counter(df["disposition"].tolist())))
        assert (folder / "sliced.csv").read_bytes() == (folder / "whole.csv").read_bytes()


def _journal(path: Path, fates: dict[int, Fate], overlay: list[Fate],
             by_person: dict[str, list[Attempt]]) -> Journal:
    """A real journal: `fates` as its fate base, `overlay` over it, the attempts imported
    (their values through the journal's own JSON and SQLite types)."""
    journal = Journal(path, "c")
    journal.set_fate_base(fates_as_table(fates.values()), "d")
    journal.set_fates(overlay)
    records = []
    for person, attempts in by_person.items():
        for a in attempts:
            records.append({
                "person": person, "row": a.row, "attempt": a.attempt,
                "idem_key": f"{person}-{a.attempt}", "body": json.dumps(a.body, default=str),
                "state": a.state, "call_id": a.call_id, "http_status": a.http_status,
                "status": a.status, "outcome": a.outcome, "ended_reason": a.ended_reason,
                "placed_at": a.placed_at, "ended_at": a.ended_at,
                "duration_seconds": a.duration_seconds, "recording_url": a.recording_url,
                "evidence": json.dumps(a.evidence), "posts": 1,
            })
    journal.import_attempts([{k: json.dumps(v) if isinstance(v, (dict, list)) and k not in (
        "body", "evidence") else v for k, v in r.items()} for r in records])
    return journal


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(campaign=_campaign(), batch=st.integers(1, 7), data=st.data())
def test_slices_of_a_journal_with_a_fate_base_and_an_overlay(
    campaign: tuple[Contacts, dict[int, Fate], dict[str, list[Attempt]]], batch: int,
    data: st.DataObject,
) -> None:
    contacts, fates, by_person = campaign
    rows = sorted(fates)
    over = data.draw(st.lists(st.sampled_from(rows + [77]), unique=True) if rows
                     else st.just([77]))
    overlay = [Fate(r, data.draw(st.sampled_from(_PERSONS)), "dialed", "completed", None,
                    None, {"new_key": "n", **_evidence(data.draw, _MAYBE)}) for r in over]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        with _journal(folder / "j.sqlite", fates, overlay, by_person) as journal:
            got, want, _ = _both(contacts, journal, folder, batch)
            whole = journal.fate_table()
            slices = journal.fate_slices()
            edges = sorted(data.draw(st.sets(st.integers(0, 100), max_size=5)) | {0, 101})
            parts = [slices.between(lo, hi) for lo, hi in zip(edges, edges[1:], strict=False)]
            known = pa.array(["tel:+12125550100", "cid:C-1"], pa.large_string())
            persons = slices.of_persons(known)
    assert got == want
    # the ranges are the fate table's rows, columns and cells; of_persons its rows of them
    assert pa.concat_tables(parts).equals(whole)
    assert slices.column_names == whole.column_names
    assert persons.to_pylist() == [r for r in whole.to_pylist() if r["person"] in
                                   ("tel:+12125550100", "cid:C-1")]


def test_examples_across_slices(tmp_path: Path) -> None:
    """An int duration in one slice, a float in another, a row never dialed (the whole
    column is float: "7.0"); a numeric evidence value beside text in another row; text
    that is quoted and guarded; two input columns both named input.row."""
    contacts = Contacts(path=Path("c.csv"), frame=pd.DataFrame({
        "row": pd.Series([1, 2, 3, 4], dtype="int64"),
        "contact_id": pd.Series(["=cmd", "a,b", "x\ny", None], dtype=STRING),
        "phone_raw": pd.Series(["1", "2", "3", "4"], dtype=STRING),
        "phone_e164": pd.Series(["+1", "+2", "+3", "+4"], dtype=STRING),
        "row (input)": pd.Series(["r1", "r2", "r3", "r4"], dtype=STRING),
        "input.row": pd.Series(["i1", "i2", "i3", "i4"], dtype=STRING),
    }), extra_columns=["row (input)", "input.row"])

    def attempt(person: str, **kw: Any) -> Attempt:
        fields: dict[str, Any] = dict(
            id=1, person=person, row=1, attempt=1, idem_key="k", body={}, state="final",
            call_id="c", http_status=201, error_code=None, error=None, status="ended",
            outcome=None, ended_reason=None, posts=1, intent_at="t", placed_at=None,
            ended_at=None, duration_seconds=7, recording_url=None, evidence={}, run_id=None)
        fields.update(kw)
        return Attempt(**fields)

    by_person = {"p1": [attempt("p1", evidence={"zones": 5})],
                 "p3": [attempt("p3", duration_seconds=2.5)]}
    fates = {r: Fate(r, f"p{r}", "completed", evidence={"zones": "z"}) for r in (1, 2, 3, 4)}
    journal = FakeJournal(fates, by_person)
    got = write_results(contacts, journal, tmp_path / "r.csv", batch_rows=1)  # type: ignore[arg-type]
    write_results_frame(contacts, journal, tmp_path / "w.csv")  # type: ignore[arg-type]
    text = (tmp_path / "r.csv").read_bytes()
    assert text == (tmp_path / "w.csv").read_bytes()
    assert got == ResultsWritten(4, {"completed": 4})
    lines = text.decode().split("\r\n")
    assert lines[0].endswith(",input.row,input.row")
    assert lines[1].startswith("1,'=cmd,") and ",7.0," in lines[1] and ",5," in lines[1]
    assert lines[2].startswith('2,"a,b",') and ",z," in lines[2]
    assert lines[3].startswith('3,"x\ny",') and ",2.5," in lines[3]


def test_a_datetime_is_written_by_the_whole_frame(tmp_path: Path) -> None:
    """A cell only `from_records` and pandas' writer know (a datetime): the whole frame."""
    contacts = Contacts(path=Path("c.csv"), frame=pd.DataFrame({
        "row": pd.Series([1, 2], dtype="int64"),
        **{c: pd.Series(["a", "b"], dtype=STRING)
           for c in ("contact_id", "phone_raw", "phone_e164")},
    }))
    when = datetime(2026, 6, 9, 17, 0, tzinfo=UTC)
    attempt = Attempt(id=1, person="p1", row=1, attempt=1, idem_key="k", body={},
                      state="final", call_id="c", http_status=201, error_code=None,
                      error=None, status="ended", outcome=None, ended_reason=None, posts=1,
                      intent_at="t", placed_at=None, ended_at=when, duration_seconds=1.0,
                      recording_url=None, evidence={}, run_id=None)
    journal = FakeJournal({1: Fate(1, "p1", "completed"), 2: Fate(2, "p2", "pending")},
                          {"p1": [attempt]})
    got = write_results(contacts, journal, tmp_path / "r.csv", batch_rows=1)  # type: ignore[arg-type]
    write_results_frame(contacts, journal, tmp_path / "w.csv")  # type: ignore[arg-type]
    assert (tmp_path / "r.csv").read_bytes() == (tmp_path / "w.csv").read_bytes()
    assert got == ResultsWritten(2, {"completed": 1, "pending": 1})


def test_an_empty_campaign_is_its_header(tmp_path: Path) -> None:
    contacts = Contacts(path=Path("c.csv"), frame=pd.DataFrame({
        "row": pd.Series([], dtype="int64"),
        **{c: pd.Series([], dtype=STRING) for c in ("contact_id", "phone_raw", "phone_e164")},
    }))
    journal = FakeJournal({1: Fate(1, "p", "completed")}, {"p": []})
    got = write_results(contacts, journal, tmp_path / "r.csv")  # type: ignore[arg-type]
    write_results_frame(contacts, journal, tmp_path / "w.csv")  # type: ignore[arg-type]
    assert (tmp_path / "r.csv").read_bytes() == (tmp_path / "w.csv").read_bytes()
    assert (tmp_path / "r.csv").read_bytes().startswith(b"row,contact_id,")
    assert got == ResultsWritten(0, {})


def test_an_empty_campaign_with_a_transform_is_transformed_as_the_whole_frame() -> None:
    """No rows, so no slice: the transform still runs (and refuses) as on the whole frame
    (two input columns of one name, which `typed_frame` cannot read)."""
    frame = pd.DataFrame({c: pd.Series([], dtype=STRING) for c in (
        "contact_id", "phone_raw", "phone_e164", "row (input)", "input.row")})
    frame.insert(0, "row", pd.Series([], dtype="int64"))
    contacts = Contacts(path=Path("contacts.csv"), frame=frame,
                        extra_columns=["row (input)", "input.row"])
    journal = FakeJournal({}, {})
    with tempfile.TemporaryDirectory() as tmp:
        with pytest.raises(AttributeError):
            write_results(contacts, journal, Path(tmp) / "r.csv",  # type: ignore[arg-type]
                          transform=typed_frame)
        written = write_results(contacts, journal, Path(tmp) / "r.csv",  # type: ignore[arg-type]
                                transform=lambda df: df)
        assert written.rows == 0
