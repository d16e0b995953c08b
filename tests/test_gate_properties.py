"""Property tests for the gate: the plan's verdict and `Gate.check` are one decision.

Random contacts files, DNC lists, ledgers, consent ledgers, history answers and instants:
every row of the plan (`plan_columns` then `row_columns`, vectorised) must say what
`Gate.check` says for that row at that instant, and `check` never lets through a number on a
DNC list or the ledger, without consent (when required), or outside its calling window.
"""

from __future__ import annotations

import builtins
import csv
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from campaign_dialer.compliance import (
    NAT,
    CallingWindow,
    ConsentLedger,
    DncList,
    Gate,
    LedgerNumbers,
    from_ns,
    plan_columns,
    row_columns,
)
from campaign_dialer.contacts import load_contacts
from campaign_dialer.vocab import GATE_REASONS

POOL = (
    "+12125550100", "+14155550101", "+13055550102", "+16025550103", "+18505550104",
    "+12065550105", "+19075550106", "+18085550107", "+14165550108", "+442079460958",
)  # fmt: skip
HINTS = ("", "TX", "America/Chicago", "Nowhere/Land", "EST", "AZ")
CIDS = ("", "C1", "C2", "C3", "C4")
BASE = datetime(2026, 3, 9, 0, 0, tzinfo=UTC)  # a Monday
SLOW = settings(
    max_examples=40, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@dataclass(frozen=True)
class _Hold:
    reason: str
    detail: str
    next_open: datetime | None


@dataclass(frozen=True)
class FakeHistory:
    """A history's answer as the gate receives it: these people wait until `until`."""

    people: frozenset[str]
    until: datetime | None

    def __call__(
        self, phone: str | None, contact_id: str | None, others: tuple[str, ...], at: datetime
    ) -> _Hold | None:
        keys = {f"tel:{phone}" if phone else f"cid:{contact_id}"} | {f"tel:{o}" for o in others}
        if not keys & self.people:
            return None
        return _Hold("recently_called", "called by campaign other", self.until)


cells = st.sampled_from(("", *POOL, "12345", "not a number"))
rows = st.lists(
    st.tuples(st.sampled_from(CIDS), cells, cells, st.sampled_from(HINTS)), min_size=1, max_size=12
)
events = st.lists(
    st.tuples(
        st.sampled_from(POOL), st.sampled_from(CIDS), st.sampled_from(("grant", "revoke")),
        st.integers(0, 14 * 24), st.one_of(st.none(), st.integers(1, 20 * 24)),
    ),
    max_size=10,
)
instants = st.integers(0, 13 * 24 * 4).map(lambda q: BASE + timedelta(minutes=15 * q))


def _world(
    folder: Path, contacts: list[tuple[str, str, str, str]], dnc: list[str], ledger: list[str],
    consent: list[tuple[str, str, str, int, int | None]], require_consent: bool,
    allow_cid_only: bool, history: FakeHistory | None,
) -> tuple[Gate, object]:
    with (folder / "contacts.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["contact_id", "phone", "mobile", "timezone"])
        w.writerows(contacts)
    (folder / "dnc.csv").write_text("phone\n" + "".join(f"{n}\n" for n in dnc))
    with (folder / "consent.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["phone", "contact_id", "event", "event_at", "expires_at", "source"])
        for phone, cid, event, hours, expires in consent:
            at = BASE - timedelta(days=7) + timedelta(hours=hours)
            exp = "" if expires is None else (at + timedelta(hours=expires)).isoformat()
            w.writerow([phone, cid, event, at.isoformat(), exp, f"src {hours}"])
    gate = Gate(
        dnc=DncList.load([folder / "dnc.csv"], default_region="US", ledger=LedgerNumbers(ledger)),
        consent=ConsentLedger.load(folder / "consent.csv", default_region="US"),
        window=CallingWindow(time(9), time(20)),
        require_consent=require_consent,
        allow_contact_id_only=allow_cid_only,
        history=history,
    )
    return gate, load_contacts(folder / "contacts.csv", default_region="US")


@SLOW
@given(
    contacts=rows, dnc=st.lists(st.sampled_from(POOL), max_size=3),
    ledger=st.lists(st.sampled_from(POOL), max_size=2), consent=events,
    require_consent=st.booleans(), allow_cid_only=st.booleans(),
    held=st.lists(st.sampled_from([f"tel:{n}" for n in POOL] + ["cid:C1", "cid:C2"]), max_size=3),
    hold_hours=st.one_of(st.none(), st.integers(1, 48)), at=instants,
)
def test_the_plan_and_check_agree_row_by_row(
    contacts: list[tuple[str, str, str, str]], dnc: list[str], ledger: list[str],
    consent: list[tuple[str, str, str, int, int | None]], require_consent: bool,
    allow_cid_only: bool, held: list[str], hold_hours: int | None, at: datetime,
) -> None:
    history = FakeHistory(
        frozenset(held), None if hold_hours is None else at + timedelta(hours=hold_hours)
    ) if held else None
    with tempfile.TemporaryDirectory() as tmp:
        gate, c = _world(Path(tmp), contacts, dnc, ledger, consent, require_consent,
                         allow_cid_only, history)
    f = c.frame  # type: ignore[attr-defined]
    cols = row_columns(plan_columns(c, gate, at), f)  # type: ignore[arg-type]
    for i in range(len(f)):
        r = f.iloc[i]

        def val(k: str, r=r) -> str | None:  # type: ignore[no-untyped-def]
            v = r[k]
            return None if v is None or v != v or v is getattr(v, "NA", object()) else str(v)

        reason = None if r.isna()["reason"] else str(r["reason"])
        others = tuple(str(r["phone_others"]).split()) if not r.isna()["phone_others"] else ()
        v = gate.check(
            phone_e164=None if r.isna()["phone_e164"] else str(r["phone_e164"]),
            contact_id=None if r.isna()["contact_id"] else str(r["contact_id"]),
            tz_hint=None if r.isna()["tz_hint"] else str(r["tz_hint"]),
            at=at, other_phones=others, contact_reason=reason,
            contact_detail="" if r.isna()["detail"] else str(r["detail"]),
        )
        nxt = int(cols["next_open"][i])
        plan = (
            cols["disposition"][i].as_py(), cols["reason"][i].as_py(),
            cols["detail"][i].as_py() or "", None if nxt == NAT else from_ns(nxt),
        )
        assert plan == (v.disposition, v.reason, v.detail, v.next_open), (i, r.to_dict())
        assert v.reason is None or v.reason in GATE_REASONS  # one vocabulary (vocab.py)
        evidence = {
            k: e for k in v.evidence if (e := cols[k][i].as_py())
        }
        assert evidence == {k: e for k, e in v.evidence.items() if e}


@SLOW
@given(
    phone=st.sampled_from(POOL), other=st.one_of(st.none(), st.sampled_from(POOL)),
    hint=st.sampled_from(HINTS), dnc=st.lists(st.sampled_from(POOL), max_size=4),
    ledger=st.lists(st.sampled_from(POOL), max_size=2), consent=events,
    require_consent=st.booleans(), at=instants,
)
def test_check_never_lets_through_a_listed_unconsented_or_out_of_hours_call(
    phone: str, other: str | None, hint: str, dnc: list[str], ledger: list[str],
    consent: list[tuple[str, str, str, int, int | None]], require_consent: bool, at: datetime,
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        gate, _ = _world(Path(tmp), [("", phone, "", hint)], dnc, ledger, consent,
                         require_consent, True, None)
    others = (other,) if other and other != phone else ()
    v = gate.check(phone_e164=phone, contact_id=None, tz_hint=hint or None, at=at,
                   other_phones=others)
    if v.disposition != "eligible":
        return
    assert phone not in set(dnc) | set(ledger)
    assert not (set(others) & (set(dnc) | set(ledger)))
    assert gate.window.check(phone, hint or None, at).ok
    decision = gate.consent.decide(phone_e164=phone, contact_id=None, at=at)  # type: ignore[union-attr]
    assert decision.reason != "consent_revoked"
    if require_consent:
        assert decision.allowed


def test_check_reads_no_file_and_reloaded_reads_only_what_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from campaign_dialer.store.ledger_file import DncLedger

    at = BASE + timedelta(hours=18)  # 14:00 in New York
    ledger = DncLedger(tmp_path / "ledger.csv")
    gate, _ = _world(tmp_path, [("", POOL[0], "", "")], [POOL[1]], [],
                     [(POOL[0], "", "grant", 1, None)], True, True, None)
    gate = Gate(dnc=DncList.load([tmp_path / "dnc.csv"], default_region="US", ledger=ledger),
                consent=gate.consent, window=gate.window, require_consent=True)
    for z in ("America/New_York",):  # the zone database is loaded once, not per check
        gate.window.check(POOL[0], z, at)
    assert gate.reloaded() is None  # nothing changed
    ledger.add(POOL[2], reason="opt_out", campaign="a", evidence="call 1", at=at)

    def no_io(*args: object, **kwargs: object) -> None:
        raise AssertionError("Gate.check touched the file system")

    with monkeypatch.context() as m:
        for target, name in ((os, "stat"), (os, "open"), (builtins, "open"), (Path, "stat"),
                             (Path, "open"), (Path, "read_bytes"), (Path, "read_text")):
            m.setattr(target, name, no_io)
        assert gate.check(phone_e164=POOL[0], contact_id=None, tz_hint=None, at=at).disposition \
            == "eligible"
        assert gate.check(phone_e164=POOL[1], contact_id=None, tz_hint=None, at=at).reason \
            == "dnc_local"
        # a number this process recorded is held back at once, from memory
        assert gate.check(phone_e164=POOL[2], contact_id=None, tz_hint=None, at=at).reason \
            == "dnc_local"
    # another process revokes consent and appends to the ledger: check alone does not see it,
    # the reload (a worker thread's job in the engine) does
    with (tmp_path / "consent.csv").open("a") as f:
        f.write(f"{POOL[0]},,revoke,{(at - timedelta(minutes=5)).isoformat()},,stop\n")
    DncLedger(tmp_path / "ledger.csv").add(
        POOL[3], reason="opt_out", campaign="b", evidence="call 2", at=at
    )
    fresh = gate.reloaded()
    assert fresh is not None and fresh.dnc is gate.dnc  # the DNC list file did not change
    assert fresh.check(phone_e164=POOL[0], contact_id=None, tz_hint=None, at=at).reason \
        == "consent_revoked"
    assert gate.check(phone_e164=POOL[3], contact_id=None, tz_hint=None, at=at).reason \
        == "dnc_local"  # the ledger caught up in place: every gate sharing it sees the number
    assert fresh.reloaded() is None


@settings(max_examples=300, deadline=None)
@given(
    st.datetimes(min_value=datetime(1700, 1, 1), max_value=datetime(2250, 12, 31)),
    st.integers(min_value=-14 * 60, max_value=14 * 60),
)
def test_instant_to_ns_and_back_is_what_pandas_says(naive: datetime, offset_min: int) -> None:
    """The gate's scalar time arithmetic (no Timestamp per dial) agrees with pandas."""
    import warnings

    import pandas as pd

    from campaign_dialer.compliance.base import from_ns, to_ns

    at = naive.replace(tzinfo=timezone(timedelta(minutes=offset_min)))
    ns = to_ns(at)
    assert ns == pd.Timestamp(at).tz_convert("UTC").as_unit("ns").value
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for n in (ns, ns + 999, ns - 1):
            assert from_ns(n) == pd.Timestamp(n, unit="ns", tz="UTC").to_pydatetime()
    assert from_ns(ns) == at


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="+0123456789٣ -", min_size=1, max_size=20))
def test_one_number_as_int_is_what_the_vectorised_key_says(number: str) -> None:
    import pyarrow as pa

    from campaign_dialer.compliance.base import e164_int, e164_ints

    try:
        expected = int(e164_ints(pa.array([number], type=pa.large_string()))[0])
    except (pa.ArrowInvalid, ValueError):
        with pytest.raises((pa.ArrowInvalid, ValueError)):
            e164_int(number)
        return
    assert e164_int(number) == expected
