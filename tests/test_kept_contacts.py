"""The contacts kept beside the plan (#25), and the fate base read a chunk at a time.

A resumed run writes results.csv from the contacts kept with its plan, a slice at a time,
instead of reading the contacts CSV again beside the engine. The oracle is the writer over
the contacts as loaded: the same bytes, for input columns that need quoting or the formula
guard, any batch size of the file. A file that is not the plan's, or is damaged, is never
used. The fate base read lazily (`ChunkedBase`) gives what the whole table gives.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from campaign_dialer.contacts import STRING, Contacts
from campaign_dialer.results import (
    KeptContactFrames,
    keep_contacts,
    kept_contacts,
    transcripts_frame,
    write_results,
)
from campaign_dialer.store import Attempt, Fate, JournalError, KeptContacts
from campaign_dialer.store import kept_contacts as kept_module
from campaign_dialer.store.fate_base import (
    ChunkedBase,
    FateSlices,
    base_chunks,
    check_base,
    overlay_table,
)
from tests.test_results_batched import _campaign
from tests.test_results_frame import FakeJournal

FP = "f" * 64


def _textual(contacts: Contacts) -> Contacts:
    """The contacts as a contacts file loads them: rows 1..n, every column arrow text."""
    cf = contacts.frame.copy()
    cf["row"] = np.arange(1, len(cf) + 1, dtype=np.int64)
    for c in cf.columns:
        if c != "row":
            cf[c] = pd.Series([None if v is None or v is pd.NA else str(v)
                               for v in cf[c].tolist()], dtype=STRING)
    return Contacts(path=contacts.path, frame=cf, extra_columns=contacts.extra_columns)


def _renumbered(fates: dict[int, Fate], n: int) -> dict[int, Fate]:
    """The fates moved onto rows 1..n (their order kept)."""
    out = {}
    for i, (_, f) in enumerate(sorted(fates.items())[:n]):
        out[i + 1] = Fate(i + 1, f.person, f.disposition, f.reason, f.detail, f.next_open,
                          f.evidence)
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(campaign=_campaign(), batch=st.integers(1, 7), kept_batch=st.integers(1, 6))
def test_results_from_kept_contacts_are_the_bytes_of_the_loaded_ones(
    campaign: tuple[Contacts, dict[int, Fate], dict[str, list[Attempt]]], batch: int,
    kept_batch: int,
) -> None:
    raw, fates, by_person = campaign
    contacts = _textual(raw)
    journal = FakeJournal(_renumbered(fates, len(contacts.frame)), by_person)
    with tempfile.TemporaryDirectory() as tmp, \
            mock.patch.object(kept_module, "KEPT_BATCH_ROWS", kept_batch):
        folder = Path(tmp)
        assert keep_contacts(contacts, folder / "c.contacts", FP)
        kept = kept_contacts(folder / "c.contacts", FP)
        assert isinstance(kept, KeptContactFrames)
        want = write_results(contacts, journal, folder / "loaded.csv", batch_rows=batch)
        got = write_results(kept, journal, folder / "kept.csv", batch_rows=batch)
        assert got == want
        assert (folder / "kept.csv").read_bytes() == (folder / "loaded.csv").read_bytes()
        # a part of the kept contacts is the loaded frame's rows, cell for cell
        n = len(contacts.frame)
        for lo, hi in ((0, n), (min(1, n), n), (0, min(kept_batch + 1, n))):
            part = kept.part(lo, hi)
            expect = contacts.frame.iloc[lo:hi][part.columns.tolist()].reset_index(drop=True)
            pd.testing.assert_frame_equal(part, expect)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(campaign=_campaign(), kept_batch=st.integers(1, 4), data=st.data())
def test_transcripts_from_kept_contacts_name_the_same_people(
    campaign: tuple[Contacts, dict[int, Fate], dict[str, list[Attempt]]], kept_batch: int,
    data: st.DataObject,
) -> None:
    contacts = _textual(campaign[0])
    n = len(contacts.frame)
    rows = data.draw(st.lists(st.integers(1, max(n, 1) + 2), max_size=6))
    found = [{"call_id": f"c{i}", "row": r, "text": "hi"} for i, r in enumerate(rows)]

    class Transcripts:
        def transcripts(self) -> list[dict[str, Any]]:
            return found

    with tempfile.TemporaryDirectory() as tmp, \
            mock.patch.object(kept_module, "KEPT_BATCH_ROWS", kept_batch):
        assert keep_contacts(contacts, Path(tmp) / "c", FP)
        kept = kept_contacts(Path(tmp) / "c", FP)
        assert kept is not None
        got = transcripts_frame(kept, Transcripts())  # type: ignore[arg-type]
    want = transcripts_frame(contacts, Transcripts())  # type: ignore[arg-type]
    pd.testing.assert_frame_equal(got, want)


def _contacts(n: int, **extra: list[Any]) -> Contacts:
    frame = pd.DataFrame({
        "row": np.arange(1, n + 1, dtype=np.int64),
        "contact_id": pd.Series([f"C-{i}" for i in range(n)], dtype=STRING),
        "phone_raw": pd.Series(["=HYPERLINK(\"x\")", "+1 212 555 0100\r\nx"][:n] + [""] *
                               max(n - 2, 0), dtype=STRING),
        "phone_e164": pd.Series([None] * n, dtype=STRING),
        **{k: pd.Series(v, dtype=STRING) for k, v in extra.items()},
    })
    return Contacts(path=Path("contacts.csv"), frame=frame, extra_columns=list(extra))


def test_kept_contacts_of_another_plan_or_damaged_are_never_used(tmp_path: Path) -> None:
    contacts = _contacts(5, **{"Company (input)": ["a", None, "=1", "b,c", "é"]})
    path = tmp_path / "j.contacts"
    assert keep_contacts(contacts, path, FP)
    assert path.stat().st_mode & 0o777 == 0o600  # numbers: the owner's only
    assert kept_contacts(path, FP) is not None
    assert kept_contacts(path, "0" * 64) is None  # another plan's (the inputs changed)
    assert kept_contacts(tmp_path / "none", FP) is None
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # cut short (a full disk, a crash)
    assert kept_contacts(path, FP) is None
    path.write_bytes(b"not arrow at all")
    assert kept_contacts(path, FP) is None
    assert not list(tmp_path.glob("*.tmp"))


def test_contacts_the_file_cannot_give_back_exactly_are_not_kept(tmp_path: Path) -> None:
    objects = _contacts(3)
    objects.frame["score (input)"] = pd.Series([1, "x", None], dtype=object)
    objects.extra_columns.append("score (input)")
    assert not keep_contacts(objects, tmp_path / "a", FP)
    gapped = _contacts(3)
    gapped.frame["row"] = np.array([1, 2, 4], dtype=np.int64)  # not the file's 1..n
    assert not keep_contacts(gapped, tmp_path / "b", FP)
    assert not list(tmp_path.iterdir())


def test_an_empty_contacts_file_is_kept_and_read_back(tmp_path: Path) -> None:
    contacts = _contacts(0, **{"Name (input)": []})
    assert keep_contacts(contacts, tmp_path / "c", FP)
    kept = kept_contacts(tmp_path / "c", FP)
    assert kept is not None and len(kept.rows) == 0
    assert kept.part(0, 0).columns.tolist() == contacts.frame.columns.tolist()


@settings(max_examples=80, deadline=None)
@given(n=st.integers(0, 30), size=st.integers(1, 7), data=st.data())
def test_a_range_of_kept_rows_is_the_frame_s(n: int, size: int, data: st.DataObject) -> None:
    contacts = _contacts(n, **{"Note (input)": [f"n{i}" if i % 3 else None for i in range(n)]})
    lo = data.draw(st.integers(0, n))
    hi = data.draw(st.integers(lo, n + 3))
    with tempfile.TemporaryDirectory() as tmp, \
            mock.patch.object(kept_module, "KEPT_BATCH_ROWS", size):
        assert keep_contacts(contacts, Path(tmp) / "c", FP)
        kept = KeptContacts.open(Path(tmp) / "c", FP)
        assert kept is not None and kept.num_rows == n
        got = kept.read(lo, hi).to_pandas()
    want = contacts.frame.iloc[lo:hi].reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want)


# -- the fate base read a chunk at a time -------------------------------------------------

_DISP = ["completed", "suppressed", "pending", None]
_MAYBE = st.one_of(st.none(), st.sampled_from(["a", "b", "=x", "", "2026-06-10T18:00:00Z"]))
_PEOPLE = ["tel:+12125550100", "tel:+12125550101", "cid:C-1", None]


@st.composite
def _base(draw: Any) -> pa.Table:
    n = draw(st.integers(0, 25))
    rows = sorted(draw(st.sets(st.integers(1, 60), min_size=n, max_size=n)))
    keys = draw(st.lists(st.sampled_from(["consent_source", "zones", "dialed_at"]),
                         unique=True, max_size=3))
    cols: dict[str, Any] = {
        "row": pa.array(rows, pa.int64()),
        "person": pa.array([draw(st.sampled_from(_PEOPLE)) for _ in rows], pa.large_string()),
        "disposition": pa.array([draw(st.sampled_from(_DISP[:3])) for _ in rows],
                                pa.large_string()),
        "reason": pa.array([draw(_MAYBE) for _ in rows], pa.large_string()),
        "detail": pa.array([draw(_MAYBE) for _ in rows], pa.large_string()),
        "next_open": pa.array([draw(_MAYBE) for _ in rows], pa.large_string()),
        **{k: pa.array([draw(_MAYBE) for _ in rows], pa.large_string()) for k in keys},
    }
    return check_base(pa.table(cols))


@settings(max_examples=150, deadline=None)
@given(base=_base(), chunk=st.integers(1, 6), data=st.data())
def test_a_chunked_base_reads_as_the_whole_table(base: pa.Table, chunk: int,
                                                 data: st.DataObject) -> None:
    blobs = [b for _, b in base_chunks(base, chunk)]
    over = sorted(data.draw(st.sets(st.integers(1, 62), max_size=4)))
    overlay = overlay_table(
        [Fate(r, "tel:+12125550100", "dialed", "completed", None, None, {"new": "n"})
         for r in over], [c for c in base.column_names if c not in
                          ("row", "person", "disposition", "reason", "detail", "next_open")])
    whole = FateSlices(base, overlay)
    lazy = FateSlices(ChunkedBase(blobs, base.num_rows, "j"), overlay)
    assert lazy.column_names == whole.column_names
    edges = sorted(data.draw(st.sets(st.integers(0, 64), max_size=5)) | {0, 64})
    for lo, hi in zip(edges, edges[1:], strict=False):
        assert lazy.between(lo, hi).equals(whole.between(lo, hi))
        cols = data.draw(st.lists(st.sampled_from(whole.column_names), unique=True))
        assert lazy.between(lo, hi, cols).equals(whole.between(lo, hi, cols))
    known = pa.array(data.draw(st.lists(st.sampled_from(_PEOPLE[:3]), unique=True)),
                     pa.large_string())
    assert lazy.of_persons(known).equals(whole.of_persons(known))


def test_a_damaged_chunk_of_the_base_is_an_error_not_a_missing_fate() -> None:
    base = check_base(pa.table({"row": pa.array([1, 2, 3], pa.int64()),
                                "disposition": pa.array(["pending"] * 3, pa.large_string())}))
    blobs = [b for _, b in base_chunks(base, 2)]
    with pytest.raises(JournalError, match="cannot be read"):
        ChunkedBase([blobs[0], blobs[1][:10]], 3, "j.sqlite")
    with pytest.raises(JournalError, match="2 rows read, 3 kept"):
        ChunkedBase(blobs[:1], 3, "j.sqlite")
