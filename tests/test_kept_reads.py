"""Compliance inputs read once per content (#25, a resumed run's first call): a DNC list's
numbers and a consent ledger's events kept as bytes with the plan, used only for the same
bytes of the same file with the same reader and settings, and equal to a read of the file."""

from __future__ import annotations

import os
import shutil
import sqlite3
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from campaign_dialer.compliance import ComplianceError
from campaign_dialer.compliance import kept as kept_mod
from campaign_dialer.compliance.kept import (
    ConsentRead,
    DncRead,
    KeptReads,
    consent_bytes,
    consent_of,
    dnc_bytes,
    dnc_of,
    read_consent,
    read_dnc,
)
from campaign_dialer.config import load_campaign
from campaign_dialer.planning import MADE, STORED, build_gate, plan_once
from campaign_dialer.store import open_plan_store

from .test_plan_store import AT, CONTACTS, EX, campaign_in

FAST = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


def same_dnc(a: DncRead, b: DncRead) -> None:
    assert a.numbers.dtype == b.numbers.dtype == np.int64
    assert np.array_equal(a.numbers, b.numbers)
    pd.testing.assert_frame_equal(a.unreadable, b.unreadable)
    assert a.warnings == b.warnings


def same_consent(a: ConsentRead, b: ConsentRead) -> None:
    ea, eb = a.events, b.events
    for name in ("row", "revoke", "event_ns", "expires_ns", "phone_key"):
        x, y = getattr(ea, name), getattr(eb, name)
        assert x.dtype == y.dtype and np.array_equal(x, y), name
    assert ea.texts.keys() == eb.texts.keys()
    for name in ea.texts:
        assert ea.texts[name].type == eb.texts[name].type
        assert ea.texts[name].equals(eb.texts[name]), name
    assert ea.cid_key.type == eb.cid_key.type and ea.cid_key.equals(eb.cid_key)
    pd.testing.assert_frame_equal(ea.frame(), eb.frame())
    pd.testing.assert_frame_equal(a.unreadable, b.unreadable)
    assert a.warnings == b.warnings


# -- bytes: a read kept is the read ------------------------------------------------------

DNC_CELLS = st.sampled_from([
    "4155550193", "4155550193.0", "'4155550194", "tel:+1-415-555-0195", "415-555-0196 (cell)",
    "+44 20 7946 0958", "(212) 555-0100", "call me later", "", "n/a", "+1 305 555 0142",
    "2125550111", "=HYPERLINK(\"x\")", "café", "+33 1 42 68 53 00",
])


@FAST
@given(st.lists(DNC_CELLS, max_size=40), st.sampled_from(["US", "GB"]))
def test_a_kept_dnc_read_is_the_files_read(tmp_path_factory: pytest.TempPathFactory,
                                           cells: list[str], region: str) -> None:
    path = tmp_path_factory.mktemp("dnc") / "dnc.csv"
    path.write_text("Phone Number\n" + "".join(f'"{c}"\n' for c in cells), encoding="utf-8")
    try:
        read = read_dnc(path, region, None)
    except ComplianceError:
        return  # refused files are never kept (test below)
    same_dnc(dnc_of(dnc_bytes(read)), read)


CONSENT_ROWS = st.tuples(
    st.sampled_from(["+14155550110", "212-555-0111", "", "415-555-019", "(305) 555-0142"]),
    st.sampled_from(["", "C1", "C2", "003XX000004TmiQ"]),
    st.sampled_from(["grant", "revoke", "grant"]),
    st.sampled_from(["2026-01-01T00:00:00Z", "2026-02-01T10:00:00-05:00",
                     "2026-01-01T00:00:00+00:00"]),
    st.sampled_from(["", "2026-06-01T00:00:00Z", "2027-01-01T00:00:00Z"]),
    st.sampled_from(["web-form", "sms", "", "dîner, \"quoted\""]),
)


@FAST
@given(st.lists(CONSENT_ROWS, max_size=30))
def test_a_kept_consent_read_is_the_files_read(tmp_path_factory: pytest.TempPathFactory,
                                               rows: list[tuple[str, ...]]) -> None:
    path = tmp_path_factory.mktemp("consent") / "consent.csv"
    body = "".join(",".join('"' + c.replace('"', '""') + '"' for c in r) + "\n" for r in rows)
    path.write_text("phone,contact_id,event,event_at,expires_at,source\n" + body,
                    encoding="utf-8")
    try:
        read = read_consent(path, "US", None)
    except ComplianceError:
        return
    same_consent(consent_of(consent_bytes(read)), read)


def test_real_exports_round_trip() -> None:
    dnc = read_dnc(EX / "dnc_spellings.csv", "US", None)
    assert len(dnc.unreadable) and len(dnc.numbers)  # both kinds of cell are kept
    same_dnc(dnc_of(dnc_bytes(dnc)), dnc)
    consent = read_consent(EX / "consent.csv", "US", None)
    same_consent(consent_of(consent_bytes(consent)), consent)


# -- keys: only the same bytes, reader and settings --------------------------------------


def kept_after_reading(path: Path, kind: str, region: str = "US") -> dict[str, bytes]:
    reads = KeptReads()
    (reads.dnc if kind == "dnc" else reads.consent)(region, None)(path)
    kept = reads.kept()
    assert len(kept) == 1
    return kept


def no_file_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: object) -> None:
        raise AssertionError("read from the file")
    monkeypatch.setattr(kept_mod, "read_dnc", refuse)
    monkeypatch.setattr(kept_mod, "read_consent", refuse)


def test_the_same_bytes_are_not_read_again(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    dnc = shutil.copy(EX / "dnc_spellings.csv", tmp_path / "dnc.csv")
    consent = shutil.copy(EX / "consent.csv", tmp_path / "consent.csv")
    found = {**kept_after_reading(Path(dnc), "dnc"), **kept_after_reading(Path(consent),
                                                                          "consent")}
    want_dnc, want_consent = read_dnc(Path(dnc), "US", None), read_consent(Path(consent),
                                                                           "US", None)
    no_file_reads(monkeypatch)
    reads = KeptReads(found)
    same_dnc(reads.dnc("US", None)(Path(dnc)), want_dnc)
    same_consent(reads.consent("US", None)(Path(consent)), want_consent)
    assert reads.hits == 2 and reads.kept() == found


def test_a_number_changed_in_place_is_read_again(tmp_path: Path) -> None:
    """Same size, same modification time, one digit changed: the content decides."""
    path = tmp_path / "dnc.csv"
    path.write_text("Phone Number\n4155550193\n", encoding="utf-8")
    found = kept_after_reading(path, "dnc")
    st_before = path.stat()
    path.write_text("Phone Number\n4155550194\n", encoding="utf-8")
    os.utime(path, ns=(st_before.st_atime_ns, st_before.st_mtime_ns))
    assert path.stat().st_size == st_before.st_size
    reads = KeptReads(found)
    got = reads.dnc("US", None)(path)
    assert reads.hits == 0
    assert got.numbers.tolist() == [14155550194]
    assert set(reads.kept()) != set(found)  # the new read is what is kept next


def test_another_region_or_encoding_is_read_again(tmp_path: Path) -> None:
    path = tmp_path / "dnc.csv"
    path.write_text("Phone Number\n+44 20 7946 0958\n+1 415 555 0193\n", encoding="utf-8")
    found = kept_after_reading(path, "dnc", region="US")
    gb = KeptReads(found)
    assert np.array_equal(gb.dnc("GB", None)(path).numbers,
                          read_dnc(path, "GB", None).numbers)
    assert gb.hits == 0
    latin = KeptReads(found)
    latin.dnc("US", "latin-1")(path)
    assert latin.hits == 0


def test_a_refused_file_is_refused_again_and_never_kept(tmp_path: Path) -> None:
    path = tmp_path / "dnc.csv"
    path.write_text("Phone Number\n4.15555E+09\n", encoding="utf-8")
    reads = KeptReads()
    with pytest.raises(ComplianceError):
        reads.dnc("US", None)(path)
    assert reads.kept() == {}


def test_a_damaged_kept_read_reads_the_file(tmp_path: Path) -> None:
    path = Path(shutil.copy(EX / "consent.csv", tmp_path / "consent.csv"))
    (key,) = kept_after_reading(path, "consent")
    for damaged in (b"", b"not json\n", b'{"format": "kept-read/1", "kind": "dnc"}\n'):
        reads = KeptReads({key: damaged})
        same_consent(reads.consent("US", None)(path), read_consent(path, "US", None))
        assert reads.hits == 0


# -- the gate and the plan ---------------------------------------------------------------


@pytest.mark.parametrize("contacts", CONTACTS)
def test_a_gate_from_kept_reads_is_the_gate_from_the_files(tmp_path: Path, contacts: str,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    campaign = load_campaign(campaign_in(tmp_path, contacts))
    first = KeptReads()
    files, _ = build_gate(campaign, None, AT, parallel=True, reads=first)
    no_file_reads(monkeypatch)
    again = KeptReads(first.kept())
    kept, _ = build_gate(campaign, None, AT, parallel=True, reads=again)
    assert again.hits == 2
    assert np.array_equal(files.dnc.source_codes(np.arange(14155550100, 14155550300)),
                          kept.dnc.source_codes(np.arange(14155550100, 14155550300)))
    assert len(files.dnc) == len(kept.dnc) and files.dnc.sources == kept.dnc.sources
    assert files.dnc.warnings == kept.dnc.warnings
    assert files.dnc.ignored == kept.dnc.ignored
    assert files.consent is not None and kept.consent is not None
    assert files.consent.events.equals(kept.consent.events)
    from campaign_dialer.contacts import load_campaign_contacts
    cf = load_campaign_contacts(campaign).frame
    for e164, cid, hint in zip(cf["phone_e164"], cf["contact_id"], cf["tz_hint"], strict=True):
        kw = {"phone_e164": None if pd.isna(e164) else e164,
              "contact_id": None if pd.isna(cid) else cid,
              "tz_hint": None if pd.isna(hint) else hint, "at": AT}
        a, b = files.check(**kw), kept.check(**kw)
        assert (a.disposition, a.reason, a.detail) == (b.disposition, b.reason, b.detail)


def test_plan_once_keeps_the_reads_and_a_resumed_plan_uses_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = campaign_in(tmp_path, "hubspot_contacts.csv")
    campaign = load_campaign(path)
    store = open_plan_store(campaign.journal_path)
    first = plan_once(campaign, AT, None, store)
    assert first.source == MADE and len(store.reads()) == 2
    with monkeypatch.context() as m:
        no_file_reads(m)
        again = plan_once(load_campaign(path), AT + timedelta(minutes=15), None, store)
    assert again.source == STORED
    assert [(r.row, r.disposition, r.reason) for r in again.rows] == [
        (r.row, r.disposition, r.reason) for r in first.rows]
    # a number added to the DNC list: read again (and planned again), the row held
    row = next(r for r in again.rows if r.disposition == "eligible" and r.phone_e164)
    with open(tmp_path / "dnc_spellings.csv", "a", encoding="utf-8") as f:
        f.write(f"{row.phone_e164}\n")
    third = plan_once(load_campaign(path), AT + timedelta(minutes=30), None, store)
    held = next(r for r in third.rows if r.row == row.row)
    assert held.disposition == "suppressed" and held.reason.startswith("dnc")
    assert third.gate.dnc.source_of(str(row.phone_e164)) == "dnc_spellings.csv"


def test_a_plan_file_without_kept_reads_reads_the_files(tmp_path: Path) -> None:
    """A plan kept before reads were (or a table that cannot be read): no reads, the files."""
    path = campaign_in(tmp_path, "hubspot_contacts.csv")
    campaign = load_campaign(path)
    store = open_plan_store(campaign.journal_path)
    plan_once(campaign, AT, None, store)
    db = sqlite3.connect(campaign.journal_path.with_name(campaign.journal_path.name + ".plan"))
    db.execute("DROP TABLE kept_reads")
    db.commit()
    db.close()
    assert store.reads() == {}
    again = plan_once(load_campaign(path), AT + timedelta(minutes=15), None, store)
    assert again.source == STORED


def test_the_stamp_is_taken_before_a_kept_read(tmp_path: Path) -> None:
    """A list changed after the gate was built is read again by `reloaded`, kept read or not."""
    path = Path(shutil.copy(EX / "dnc_spellings.csv", tmp_path / "dnc.csv"))
    from campaign_dialer.compliance import DncList
    found = kept_after_reading(path, "dnc")
    reads = KeptReads(found)
    dnc = DncList.load([path], default_region="US", read=reads.dnc("US", None))
    assert reads.hits == 1 and dnc.reloaded() is None
    with open(path, "a", encoding="utf-8") as f:
        f.write("+13055550142\n")
    fresh = dnc.reloaded()
    assert fresh is not None and fresh.source_of("+13055550142") == "dnc.csv"


def test_arrays_survive_as_their_own_types() -> None:
    """Dictionary-encoded texts stay dictionary-encoded; numbers stay int64."""
    read = read_consent(EX / "consent.csv", "US", None)
    back = consent_of(consent_bytes(read))
    assert {k: v.type for k, v in back.events.texts.items()} == {
        k: v.type for k, v in read.events.texts.items()}
    assert isinstance(back.events.cid_key, pa.Array)
    assert back.events.event_ns.dtype == np.int64


@FAST
@given(st.lists(st.integers(-5, 10**12), max_size=60, unique=True),
       st.lists(st.integers(-10, 10**12 + 5), max_size=80))
def test_lookups_in_sorted_order_answer_as_given(keys: list[int], queries: list[int]) -> None:
    """`search_sorted` (the DNC and consent lookups of millions of rows) is searchsorted."""
    from campaign_dialer.compliance import base

    k = np.array(sorted(keys), dtype=np.int64)
    q = np.array(queries, dtype=np.int64)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(base, "SORTED_LOOKUP_KEYS", 0)
        m.setattr(base, "SORTED_LOOKUP_QUERIES", 0)
        got = base.search_sorted(k, q)
    assert np.array_equal(got, np.searchsorted(k, q))
