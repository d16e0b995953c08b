"""`check` at scale (#25): plan.csv built from the plan's columns, byte for byte what the
per-row frame gave; the forecast and the adaptive outlook make no row object."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from campaign_dialer.commands import check_plan
from campaign_dialer.commands.check_plan import (
    PLAN_CSV_COLUMNS,
    iso_times,
    plan_frame,
    with_caller_ids,
    write_plan_csv,
)
from campaign_dialer.compliance import NAT
from campaign_dialer.config import load_campaign
from campaign_dialer.planning import decode_plan, encode_plan, make_plan
from campaign_dialer.results import safe_for_spreadsheets, write_atomic_csv

from .campaign_files import write_campaign_toml

EX = Path(__file__).parent / "data" / "exports"
AT = datetime(2026, 6, 10, 17, 0, tzinfo=UTC)
NIGHT = datetime(2026, 6, 10, 6, 0, tzinfo=UTC)
CONTACTS = ["hubspot_contacts.csv", "salesforce_contacts.csv", "google_contacts.csv",
            "excel_cp1252.csv"]


def old_plan_frame(plan: Any) -> Any:
    """plan.csv's frame as `check` built it before #25 (the oracle)."""
    cf = plan.contacts.frame.reset_index(drop=True)
    rows = plan.rows.frame()
    nxt = rows["next_open"]
    out = pd.DataFrame(
        {
            "row": rows["row"],
            "contact_id": cf["contact_id"],
            "phone_raw": cf["phone_raw"],
            "phone_e164": rows["phone_e164"],
            "phone_column": cf.get("phone_column"),
            "phone_extension": cf.get("phone_extension"),
            "disposition": rows["disposition"],
            "reason": rows["reason"],
            "detail": rows["detail"],
            "next_open": pd.Series(
                [t.isoformat() for t in nxt[nxt.notna()].dt.to_pydatetime()],
                index=nxt.index[nxt.notna()], dtype=object,
            ).reindex(nxt.index),
        }
    )
    for c in PLAN_CSV_COLUMNS[10:]:
        out[c] = rows[c].mask(rows[c] == "") if c in rows.columns else None
    return out[PLAN_CSV_COLUMNS]


def campaign_in(tmp: Path, contacts: str, **extra: Any) -> Path:
    for f in (contacts, "dnc_spellings.csv", "consent.csv"):
        shutil.copy(EX / f, tmp / f)
    return write_campaign_toml(tmp / "campaign.toml", {
        "campaign": {"name": "scale", "agent_id": "agt_3d9b21"},
        "inputs": {"contacts": str(tmp / contacts), "dnc": [str(tmp / "dnc_spellings.csv")],
                   "consent": str(tmp / "consent.csv")},
        "compliance": {"dnc_ledger": str(tmp / "ledger.csv")},
        "output": {"dir": str(tmp / "out")},
        **extra,
    })


@pytest.mark.parametrize("contacts", CONTACTS)
@pytest.mark.parametrize("at", [AT, NIGHT])
@pytest.mark.parametrize(("stored", "chunk"), [(False, 1 << 20), (True, 1 << 20), (False, 3)])
def test_plan_csv_bytes_unchanged(tmp_path: Path, contacts: str, at: datetime,
                                  stored: bool, chunk: int,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """plan.csv as `check` writes it (a chunk of rows at a time) is byte for byte the old
    whole frame's file, for a plan made or read back from the store."""
    monkeypatch.setattr(check_plan, "PLAN_CSV_CHUNK", chunk)
    campaign = load_campaign(campaign_in(tmp_path, contacts))
    plan = make_plan(campaign, at)
    if stored:  # a plan read back from the store gives the same file
        plan.rows = decode_plan(encode_plan(plan.rows, "fp"))
    new, old = tmp_path / "new.csv", tmp_path / "old.csv"
    write_plan_csv(plan, campaign, new)
    write_atomic_csv(safe_for_spreadsheets(with_caller_ids(old_plan_frame(plan), campaign,
                                                           plan.history)), old)
    assert plan.history is not None
    plan.history.close()
    assert new.read_bytes() == old.read_bytes()


def test_iso_times_as_isoformat() -> None:
    rng = np.random.default_rng(7)
    ns = rng.integers(1_600_000_000 * 10**9, 1_900_000_000 * 10**9, 2_000, dtype=np.int64)
    ns[::3] -= ns[::3] % 1_000_000_000  # whole seconds
    ns[::7] = NAT
    got = list(iso_times(ns))
    want = [None if v == NAT else pd.Timestamp(int(v), tz="UTC").to_pydatetime(warn=False)
            .isoformat() for v in ns.tolist()]
    assert [None if g is pd.NA else g for g in got] == want


def test_plan_csv_written_by_the_columnar_writer(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """plan.csv's frame (quoted cells, all-missing columns, times) never falls back to
    pandas' per-cell writer: that fallback took 7 s of a 1M-row `check`."""
    from campaign_dialer import results

    campaign = load_campaign(campaign_in(tmp_path, "salesforce_contacts.csv"))
    plan = make_plan(campaign, NIGHT)
    frame = safe_for_spreadsheets(with_caller_ids(plan_frame(plan), campaign, plan.history))
    assert plan.history is not None
    plan.history.close()
    oracle = tmp_path / "pandas.csv"
    results.write_csv_pandas(frame, oracle)

    def refuse(df: Any, path: Path) -> None:
        raise AssertionError("fell back to pandas' writer")

    monkeypatch.setattr(results, "write_csv_pandas", refuse)
    out = tmp_path / "plan.csv"
    results.write_atomic_csv(frame, out)
    assert out.read_bytes() == oracle.read_bytes()
    assert b'"' in out.read_bytes()  # some cells were quoted


def test_chunked_column_written_by_the_columnar_writer(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A column held in several arrow chunks (contacts read in batches), sliced across a
    chunk boundary, is written by the columnar writer, as pandas writes it."""
    import pyarrow as pa

    from campaign_dialer import results

    chunked = pa.chunked_array([pa.array(["a", "b,c"], pa.large_string()),
                                pa.array([None, '=d"'], pa.large_string())])
    frame = pd.DataFrame({"x": pd.array(chunked, dtype=pd.StringDtype("pyarrow")),
                          "y": [1, 2, 3, 4]}).iloc[1:4]
    oracle = tmp_path / "pandas.csv"
    results.write_csv_pandas(frame, oracle)
    monkeypatch.setattr(results, "write_csv_pandas", None)  # a fallback would fail
    out = tmp_path / "columns.csv"
    results.write_atomic_csv(frame, out)
    assert out.read_bytes() == oracle.read_bytes()


@pytest.mark.parametrize("frame", [
    pd.DataFrame({"a": pd.array(["x", None, 'q"t', "=1"], dtype="string"), "n": [1, 2, 3, 4]}),
    # a dtype only pandas formats: the same fallback as the file writer's
    pd.DataFrame({"when": pd.to_datetime(["2026-06-10", None]), "b": ["1", "2"]}),
    pd.DataFrame(index=range(3)),
])
def test_csv_bytes_are_the_file_writers_bytes(tmp_path: Path, frame: pd.DataFrame) -> None:
    """plan.csv's chunks are formatted in memory by threads (`csv_bytes`): the bytes are
    `write_csv_columns`' for the same frame, pandas' fallback included."""
    from campaign_dialer import results

    path = tmp_path / "out.csv"
    results.write_csv_columns(frame, path)
    assert results.csv_bytes(frame) == path.read_bytes()


def test_a_chunk_that_cannot_be_written_fails_plan_csv_and_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A chunk formatted in a thread raises in `check` (as a chunk written in place did),
    and no half plan.csv is left."""
    monkeypatch.setattr(check_plan, "PLAN_CSV_CHUNK", 1)
    campaign = load_campaign(campaign_in(tmp_path, CONTACTS[0]))
    plan = make_plan(campaign, AT)
    assert len(plan.rows) > 3
    calls = 0

    def fail_third(frame: pd.DataFrame) -> bytes:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed")
        return results_csv_bytes(frame)

    from campaign_dialer.results import csv_bytes as results_csv_bytes
    monkeypatch.setattr(check_plan, "csv_bytes", fail_third)
    out = tmp_path / "plan.csv"
    with pytest.raises(UnicodeEncodeError):
        write_plan_csv(plan, campaign, out)
    assert plan.history is not None
    plan.history.close()
    assert not out.exists()
    assert not list(tmp_path.glob(".plan.csv.*"))


def test_formatted_in_order_keeps_the_items_order_and_reads_them_in_the_callers_thread(
) -> None:
    """plan.csv's chunks and results.csv's slices: formatted by threads, given back in
    order; the items (frames built from a journal or a history) are made in this thread;
    a failure is raised to the caller."""
    import threading
    import time

    from campaign_dialer.results import formatted_in_order

    made_in: set[int] = set()

    def items(n: int) -> Any:
        for i in range(n):
            made_in.add(threading.get_ident())
            yield i

    def work(i: int) -> bytes:
        time.sleep(0.002 * ((7 * i) % 5))  # later items often finish first
        if i == 13:
            raise ValueError("chunk 13")
        return str(i).encode()

    assert list(formatted_in_order(work, items(12), 2, "t")) == [
        str(i).encode() for i in range(12)]
    assert made_in == {threading.get_ident()}
    with pytest.raises(ValueError, match="chunk 13"):
        list(formatted_in_order(work, items(20), 2, "t"))
