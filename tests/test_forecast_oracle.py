"""The forecast read slice by slice, labels by their codes, says exactly what main's forecast
(tests/forecast_oracle.py: every label decoded, every row's mask and reason kept) said:
every key and value, the placements included, on generated plans of every shape a plan
column comes in (plain, dictionary-encoded, chunked), cut into slices of a few rows."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest.mock import patch

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import campaign_dialer.forecast as fc
from campaign_dialer.compliance.window import CallingWindow
from campaign_dialer.config import load_campaign
from campaign_dialer.planning import make_plan

from . import forecast_oracle
from .campaign_files import write_campaign_toml
from .forecast_oracle import forecast as forecast_main

NAT = int(np.iinfo(np.int64).min)
AT = (datetime(2026, 6, 9, 13, 0, tzinfo=UTC), datetime(2026, 6, 13, 2, 17, 41, 250_000,
                                                        tzinfo=UTC),
      datetime(2026, 12, 24, 18, 0, tzinfo=UTC))
# several area codes (and two numbers under one), international, toll-free, unknown, blank
PHONES = (None, "", "+12125550101", "+12125559999", "+14155550123", "+13125550000",
          "+16025551111", "+18085550000", "+19075550000", "+442079460958", "+61291234567",
          "+18005550199", "+999123", "+1999555")
CIDS = (None, "", "C1", "C2")
HINTS = (None, "", " ", "CA", "NY", "TX", "America/Chicago", "EST", "Mars/Olympus", "HI")
DISPOSITIONS = ("eligible", "eligible", "pending", "pending", "suppressed", "dialed", "error",
                None)
REASONS = (None, "", "outside_window", "unknown_timezone", "recently_called", "no_consent",
           "caller_ids_exhausted")


def _shaped(values: list[str | None], shape: int, cut: int) -> Any:
    """One plan column, as a plan may hold it: plain large_string, plain string, dictionary-
    encoded, or chunked (plain or dictionary chunks) at `cut`."""
    plain = pa.array(values, type=pa.large_string())
    if shape == 0:
        return plain
    if shape == 1:
        return plain.cast(pa.string())
    if shape == 2:
        return plain.dictionary_encode()
    cut = min(cut, len(values))
    chunks = [plain.slice(0, cut), plain.slice(cut)]
    if shape == 4:
        chunks = [c.dictionary_encode() for c in chunks]
    return pa.chunked_array(chunks, type=chunks[0].type)


@st.composite
def plans(draw: st.DrawFn) -> tuple[Any, dict[str, Any]]:
    n = draw(st.integers(0, 60))
    at = draw(st.sampled_from(AT))
    at_ns = int((at - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)) * 1_000

    def col(pool: tuple[Any, ...]) -> list[Any]:
        return [pool[i] for i in draw(st.lists(st.integers(0, len(pool) - 1), min_size=n,
                                               max_size=n))]

    # next_open: none, past, now, a few hours or days ahead (not on the hour), past 14 days;
    # some plans mostly pending with no window (never open, each for its own reason)
    never = draw(st.booleans())
    ahead = draw(st.lists(st.sampled_from(
        [NAT, NAT, -3_600 * 10**9, 0, 1, 1_800 * 10**9 + 7, 5 * 3_600 * 10**9 + 123_456_789,
         26 * 3_600 * 10**9, 6 * 86_400 * 10**9 + 17, 15 * 86_400 * 10**9]
        + [NAT] * 20 * never), min_size=n, max_size=n))
    nxt = np.array([NAT if a == NAT else at_ns + a for a in ahead], dtype=np.int64)
    if draw(st.booleans()):
        rows = np.array(draw(st.permutations(range(2, n + 2))), dtype=np.int64)
    else:  # repeated row numbers: ties among the waiting rows shown
        rows = np.array(draw(st.lists(st.integers(2, 9), min_size=n, max_size=n)),
                        dtype=np.int64)

    def shaped(pool: tuple[Any, ...]) -> Any:
        return _shaped(col(pool), draw(st.integers(0, 4)), draw(st.integers(0, n)))

    columns = {
        "row": rows, "next_open": nxt, "phone": shaped(PHONES), "cid": shaped(CIDS),
        "hint": shaped(HINTS),
        "disposition": shaped(("pending",) * 6 + DISPOSITIONS if never else DISPOSITIONS),
        "reason": shaped(REASONS),
    }
    start, end = draw(st.sampled_from([(time(9), time(9, 20)), (time(9), time(20)),
                                       (time(10), time(10, 30)), (time(8), time(21))]))
    window = CallingWindow(start, end, state_rules=draw(st.booleans()),
                           allow_unknown_timezone=draw(st.booleans()))
    model = SimpleNamespace(
        pacing=SimpleNamespace(calls_per_second=draw(st.sampled_from([0.002, 0.05, 0.5, 5.0]))),
        api=SimpleNamespace(max_live_calls=draw(st.sampled_from([1, 3, 50]))))
    plan = SimpleNamespace(campaign=SimpleNamespace(model=model), at=at,
                           gate=SimpleNamespace(window=window),
                           rows=SimpleNamespace(columns=columns))
    settled = draw(st.lists(st.sampled_from(rows.tolist()), max_size=8)) if n else []
    kw = {"call_seconds": draw(st.sampled_from([30.0, 90.0, 600.0])),
          "call_seconds_source": "test",
          "settled": draw(st.sampled_from([settled, np.array(settled, dtype=np.int64)]))}
    return plan, kw


@settings(max_examples=250, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(case=plans(), chunk=st.sampled_from([1, 7, 64, fc.CHUNK]),
       partition_max=st.sampled_from([0, 5, 1 << 22]), shown=st.sampled_from([2, 3, 20]),
       few_labels=st.sampled_from([0, 1_024]))
def test_the_sliced_forecast_equals_mains(case: tuple[Any, dict[str, Any]], chunk: int,
                                          partition_max: int, shown: int,
                                          few_labels: int) -> None:
    """Slices of a row and more; the cut between placed and not by bisection or partition;
    few waiting rows shown (so ties among repeated row numbers are cut through); dictionaries
    read by their labels, or (as if larger than a slice) decoded slice by slice."""
    plan, kw = case
    old_placed: dict[int, datetime] = {}
    with patch.object(forecast_oracle, "WAITING_SHOWN", shown):
        old = forecast_main(plan, **kw, placements=old_placed)
    new_placed: dict[int, datetime] = {}
    with (patch.object(fc, "CHUNK", chunk), patch.object(fc, "_PARTITION_MAX", partition_max),
          patch.object(fc, "WAITING_SHOWN", shown),
          patch.object(fc, "_FEW_LABELS", few_labels)):
        new = fc.forecast(plan, **kw, placements=new_placed)
        assert fc.forecast(plan, **kw) == new  # placements asked for or not: one forecast
    assert new == old
    assert new_placed == old_placed


def _campaign(folder: Path, rows: int, seed: int) -> Path:
    """A messy list through the real `make_plan`: zones, hints, blanks, contact ids only,
    international and invalid numbers, DNC entries, consent for most."""
    rng = np.random.default_rng(seed)
    areas = ("212", "415", "312", "214", "602", "808", "907", "305")
    states = ("", "", "CA", "NY", "America/Chicago", "Mars/Olympus", "HI")
    lines, consent, dnc = ["phone,contact_id,state"], ["phone,event,event_at,source"], ["phone"]
    for i in range(rows):
        kind = rng.random()
        num = f"+1{areas[int(rng.integers(len(areas)))]}555{int(rng.integers(10_000)):04d}"
        phone = (num if kind < 0.8 else "" if kind < 0.85 else "+44 20 7946 0958"
                 if kind < 0.9 else "12345")
        cid = f"C{i}" if rng.random() < 0.7 else ""
        lines.append(f"{phone},{cid},{states[int(rng.integers(len(states)))]}")
        if phone.startswith("+1") and rng.random() < 0.85:
            consent.append(f"{phone},grant,2026-01-01T00:00:00Z,web")
        if phone.startswith("+1") and rng.random() < 0.05:
            dnc.append(phone)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "contacts.csv").write_text("\n".join(lines) + "\n")
    (folder / "consent.csv").write_text("\n".join(consent) + "\n")
    (folder / "dnc.csv").write_text("\n".join(dnc) + "\n")
    return write_campaign_toml(folder / "campaign.toml", {
        "campaign": {"name": "fc-oracle", "agent_id": "agt_3d9b21"},
        "api": {"base_url": "http://127.0.0.1:9", "max_live_calls": 3},
        "pacing": {"calls_per_second": 0.05},
        "inputs": {"contacts": "contacts.csv", "dnc": ["dnc.csv"], "consent": "consent.csv"},
        "compliance": {"calling_window": ["09:00", "09:40"], "dnc_ledger": "out/dnc.csv"},
        "history": {"path": "history.sqlite"},
        "output": {"dir": "out"},
    })


@pytest.mark.parametrize("chunk", [97, fc.CHUNK])
def test_a_real_plan_in_slices_forecasts_as_main(tmp_path: Path, chunk: int) -> None:
    """Rows placed over days and rows left waiting, in slices that cut groups in parts."""
    plan = make_plan(load_campaign(_campaign(tmp_path, 2_000, 5)),
                     datetime(2026, 6, 9, 13, 0, tzinfo=UTC))
    try:
        done = np.random.default_rng(5).choice(plan.rows.columns["row"], 150)
        for settled in ((), done):
            kw = {"call_seconds": 60.0, "call_seconds_source": "test", "settled": settled}
            old_placed: dict[int, datetime] = {}
            old = forecast_main(plan, **kw, placements=old_placed)
            new_placed: dict[int, datetime] = {}
            with patch.object(fc, "CHUNK", chunk):
                assert fc.forecast(plan, **kw, placements=new_placed) == old
            assert new_placed == old_placed
            # what the comparison must have met: rows placed, rows still waiting
            assert old["rows_placed"] and len(old["days"]) > 1
            assert len(old["waiting"]["first"]) == fc.WAITING_SHOWN
    finally:
        assert plan.history is not None
        plan.history.close()
