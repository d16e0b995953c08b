"""What a resumed run holds (#25): the gate's DNC numbers as sorted int keys, the consent
ledger as columns, a stored plan's evidence values once each, read back without a Python
string per value. Every answer is the same as before; these tests pin the new keeping."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from campaign_dialer.compliance import ConsentLedger, DncList
from campaign_dialer.config import load_campaign
from campaign_dialer.planning import decode_plan, encode_plan, make_plan
from campaign_dialer.store.plan_state import json_string_lists

from .campaign_files import write_campaign_toml

AT = datetime(2026, 6, 10, 17, 0, tzinfo=UTC)


def test_dnc_keeps_each_number_once_with_the_first_list_holding_it(tmp_path: Path) -> None:
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text("phone\n+14155550100\n(415) 555-0101\n+442079460958\n", encoding="utf-8")
    b.write_text("phone\n415 555 0101\n+14155550102\n+14155550100\n", encoding="utf-8")
    dnc = DncList.load([a, b], default_region="US")
    assert len(dnc) == 4
    assert dnc.source_of("+14155550101") == "a.csv"  # in both: the first list is evidence
    assert dnc.source_of("+14155550102") == "b.csv"
    for absent in ("+14155550199", "+1", "+0014155550100", "14155550100", "", "+99999999999999"):
        assert dnc.source_of(absent) is None
    numbers = pa.array(["+442079460958", None, "+14155550102", "+19999999999", "+14155550100"],
                       type=pa.large_string())
    assert dnc.lookup(pd.Series(numbers.to_pylist(), dtype="string")).tolist() == [
        "a.csv", pd.NA, "b.csv", pd.NA, "a.csv"]
    keys = np.asarray(dnc._ints)
    assert (np.diff(keys) > 0).all()  # sorted, each once


def test_empty_dnc_list_answers_nothing(tmp_path: Path) -> None:
    empty = tmp_path / "e.csv"
    empty.write_text("phone\n", encoding="utf-8")
    dnc = DncList.load([empty], default_region="US")
    assert len(dnc) == 0 and dnc.source_of("+14155550100") is None
    assert dnc.source_codes(np.array([14155550100, -1])).tolist() == [-1, -1]


def test_consent_by_contact_id_is_found_in_the_sorted_ids(tmp_path: Path) -> None:
    path = tmp_path / "consent.csv"
    path.write_text(
        "contact_id,phone,event,event_at,source\n"
        "M5,,grant,2026-01-01T00:00:00Z,form\n"
        "A1,,grant,2026-01-02T00:00:00Z,form\n"
        "Z9,,revoke,2026-01-03T00:00:00Z,call\n"
        ",+14155550100,grant,2026-01-04T00:00:00Z,web\n"
        "A1,,revoke,2026-02-01T00:00:00Z,email\n",
        encoding="utf-8",
    )
    ledger = ConsentLedger.load(path, default_region="US")
    assert len(ledger) == 5 and len(ledger.events) == 5
    at = datetime(2026, 1, 15, tzinfo=UTC)
    assert ledger.decide(phone_e164=None, contact_id="A1", at=at).allowed
    assert ledger.decide(phone_e164=None, contact_id="M5", at=at).source == "form"
    assert ledger.decide(phone_e164=None, contact_id="Z9", at=at).reason == "consent_revoked"
    for nobody in ("A0", "B", "ZZ", "a1", ""):
        assert ledger.decide(phone_e164=None, contact_id=nobody, at=at).reason == "no_consent"
    assert ledger.decide(phone_e164="+14155550100", contact_id=None, at=at).source == "web"
    for other in ("+14155550101", "+014155550100", "4155550100"):
        assert ledger.decide(phone_e164=other, contact_id=None, at=at).reason == "no_consent"
    later = datetime(2026, 3, 1, tzinfo=UTC)
    assert ledger.decide(phone_e164=None, contact_id="A1", at=later).reason == "consent_revoked"


def test_the_events_frame_is_made_only_when_asked_for(tmp_path: Path) -> None:
    path = tmp_path / "consent.csv"
    path.write_text("phone,event,event_at\n+14155550100,grant,2026-01-01T00:00:00Z\n",
                    encoding="utf-8")
    ledger = ConsentLedger.load(path, default_region="US")
    assert ledger._frame is None
    ledger.decide(phone_e164="+14155550100", contact_id=None, at=AT)
    assert ledger._frame is None
    assert ledger.events["key"].tolist() == ["+14155550100"]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.text(max_size=12), max_size=6), max_size=5))
def test_evidence_values_read_back_by_arrow_as_json_reads_them(
    values: list[list[str]],
) -> None:
    back = json_string_lists(json.dumps(values))
    assert [v.to_pylist() for v in back] == values


def test_a_stored_plan_keeps_only_the_evidence_values_its_rows_use(tmp_path: Path) -> None:
    """The ledger has events for people not in the contacts file: their texts are not kept."""
    ex = Path(__file__).parent / "data" / "exports"
    contacts = tmp_path / "contacts.csv"
    contacts.write_text("phone\n+14155550110\n+12125550111\n", encoding="utf-8")
    consent = tmp_path / "consent.csv"
    consent.write_text((ex / "consent.csv").read_text(encoding="utf-8"), encoding="utf-8")
    toml = write_campaign_toml(tmp_path / "campaign.toml", {
        "campaign": {"name": "kept", "agent_id": "agt_3d9b21"},
        "inputs": {"contacts": str(contacts), "consent": str(consent)},
        "output": {"dir": str(tmp_path / "out")},
    })
    plan = make_plan(load_campaign(toml), AT)
    assert plan.gate.consent is not None and len(plan.gate.consent) > 2
    encoded = encode_plan(plan.rows, "fp")
    for key, codes, values in zip(encoded.evidence_keys, encoded.evidence,
                                  encoded.evidence_values, strict=True):
        used = {values[c] for c in np.asarray(codes).tolist() if c >= 0}
        assert len(values) == len(set(values)) == len(used), key
    back = decode_plan(encoded)
    assert [asdict(r) for r in back] == [asdict(r) for r in plan.rows]
