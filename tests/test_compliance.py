"""Compliance: DNC, consent, calling window, and the plan. Every reason reached from CSV files."""

from __future__ import annotations

import multiprocessing
import random
import shutil
from datetime import UTC, date, datetime, time, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import phonenumbers
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from phonenumbers import timezone as pn_timezone
from phonenumbers.tzdata import TIMEZONE_DATA

from campaign_dialer.compliance import (
    PLAN_COLUMNS,
    US_FEDERAL_WINDOW,
    CallingWindow,
    ComplianceError,
    ConsentLedger,
    DncList,
    Gate,
    build_plan,
    holidays_for,
    max_calls_per_24h,
    plan_counts,
    state_for_number,
    states_for_number,
    us_federal_holidays,
)
from campaign_dialer.contacts import load_contacts
from campaign_dialer.store.ledger_file import DncLedger

DATA = Path(__file__).parent / "data" / "contacts"
AT = datetime(2026, 3, 11, 18, 0, tzinfo=UTC)  # a Wednesday; 14:00 in New York (EDT)
SLOW = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


@pytest.fixture
def world(tmp_path: Path) -> dict:
    consent_path = tmp_path / "consent.csv"
    shutil.copy(DATA / "consent.csv", consent_path)
    ledger = DncLedger(tmp_path / "dnc-ledger.csv")
    ledger.add(
        "+15125550100", reason="dnc_listed", campaign="spring", evidence="409 dnc_listed", at=AT
    )
    dnc = DncList.load([DATA / "dnc_a.csv", DATA / "dnc_b.csv"], default_region="US", ledger=ledger)
    consent = ConsentLedger.load(consent_path, default_region="US")
    window = CallingWindow(time(9), time(20))
    gate = Gate(dnc=dnc, consent=consent, window=window, require_consent=True)
    contacts = load_contacts(DATA / "crm_export.csv", default_region="US")
    return {
        "gate": gate,
        "contacts": contacts,
        "ledger": ledger,
        "consent_path": consent_path,
        "dnc": dnc,
    }


EXPECTED = {  # row: (disposition, reason)
    1: ("eligible", None),
    2: ("suppressed", "dnc_local"),
    3: ("suppressed", "invalid_phone"),
    4: ("suppressed", "blank_phone"),
    5: ("eligible", None),  # by contact_id: consent by id, zone from its hint
    6: ("suppressed", "duplicate"),
    7: ("suppressed", "duplicate"),
    8: ("suppressed", "no_consent"),
    9: ("suppressed", "consent_revoked"),  # revoke is later in UTC, earlier on the local clock
    10: ("suppressed", "consent_expired"),
    11: ("pending", "outside_window"),  # 23:30 in Kolkata
    12: ("suppressed", "unknown_timezone"),  # "Mars/Olympus"
    13: ("eligible", None),  # London 18:00
    14: ("suppressed", "no_consent"),  # only a future-dated grant
    15: ("eligible", None),  # 850: Central and Eastern
    16: ("suppressed", "dnc_local"),  # dnc_b.csv, headerless, other spelling
    17: ("suppressed", "dnc_local"),  # the ledger (a 409 dnc_listed answer)
}


def _norm(v: object) -> object:
    return None if v is None or v is pd.NaT or (not isinstance(v, str) and pd.isna(v)) else v


def test_plan_reaches_every_reason_from_csv_files(world: dict) -> None:
    plan = build_plan(world["contacts"], world["gate"], AT)
    assert list(plan.columns) == list(PLAN_COLUMNS)
    assert plan["row"].tolist() == list(range(1, 18))
    got = {r.row: (r.disposition, _norm(r.reason)) for r in plan.itertuples()}
    assert got == EXPECTED
    p = plan.set_index("row")
    assert p.loc[2, "detail"] == "listed in dnc_a.csv"
    assert p.loc[16, "detail"] == "listed in dnc_b.csv"
    assert p.loc[17, "detail"] == "listed in ledger"
    assert p.loc[6, "detail"] == "duplicate_of=1"
    assert p.loc[3, "detail"] == "too short"
    assert p.loc[11, "next_open"] == pd.Timestamp("2026-03-12T13:00:00Z")
    assert p.loc[11, "zones"] == "America/New_York Asia/Kolkata"
    assert p.loc[11, "local_times"] == "2026-03-11T14:00-04:00 2026-03-11T23:30+05:30"
    assert p.loc[15, "zones"] == "America/Chicago America/New_York"
    assert p.loc[9, "consent_event_at"] == "2026-02-01T08:00:00-05:00"
    assert p.loc[9, "consent_source"] == "call recording 77"
    assert p.loc[10, "consent_expires_at"] == "2026-01-01T00:00:00-08:00"
    assert p.loc[5, "dnc_lists_checked"].startswith("(no phone")
    assert p.loc[1, "dnc_lists_checked"] == "dnc_a.csv, dnc_b.csv, ledger"
    assert pd.isna(p.loc[1, "next_open"]) and pd.isna(p.loc[8, "next_open"])
    assert (p.loc[[3, 4, 6, 7], "zones"] == "").all()  # rejected rows carry no evidence
    counts = {(r.disposition, r.reason): r.count for r in plan_counts(plan).itertuples()}
    assert counts[("eligible", "-")] == 4
    assert counts[("suppressed", "dnc_local")] == 3
    assert sum(counts.values()) == 17


def test_plan_agrees_with_gate_check_row_by_row(world: dict) -> None:
    plan = build_plan(world["contacts"], world["gate"], AT)
    _assert_plan_matches_gate(plan, world["contacts"].frame, world["gate"], AT)


def _assert_plan_matches_gate(
    plan: pd.DataFrame, frame: pd.DataFrame, gate: Gate, at: datetime
) -> None:
    for c, p in zip(frame.itertuples(index=False), plan.itertuples(index=False), strict=True):
        if not pd.isna(c.reason):
            assert (p.disposition, p.reason, p.detail) == ("suppressed", c.reason, c.detail)
            continue
        v = gate.check(
            phone_e164=_norm(c.phone_e164),  # type: ignore[arg-type]
            contact_id=_norm(c.contact_id),  # type: ignore[arg-type]
            tz_hint=_norm(c.tz_hint),  # type: ignore[arg-type]
            at=at,
        )
        assert (p.disposition, _norm(p.reason), p.detail) == (v.disposition, v.reason, v.detail)
        want_next = None if v.next_open is None else pd.Timestamp(v.next_open)
        assert _norm(p.next_open) == want_next
        for k, val in v.evidence.items():
            assert getattr(p, k) == val, k


def test_decisions_are_rechecked_at_dial_time(world: dict) -> None:
    gate: Gate = world["gate"]
    # consent revoked mid-run: the ledger file changes, the next check sees it
    assert (
        gate.check(phone_e164="+14155550188", contact_id="C001", tz_hint=None, at=AT).disposition
        == "eligible"
    )
    with world["consent_path"].open("a") as f:
        f.write("415.555.0188,,revoke,2026-03-11T11:20:00-07:00,,said stop on the call\n")
    gate = gate.reloaded() or gate  # what the engine runs in a worker thread before dialing
    later = AT + timedelta(minutes=45)
    v = gate.check(phone_e164="+14155550188", contact_id="C001", tz_hint=None, at=later)
    assert (v.disposition, v.reason) == ("suppressed", "consent_revoked")
    assert v.evidence["consent_source"] == "said stop on the call"
    # the revocation (18:20Z) is later than AT: at AT the same person was still callable
    assert (
        gate.check(phone_e164="+14155550188", contact_id=None, tz_hint=None, at=AT).disposition
        == "eligible"
    )
    # window closing mid-run: 850 is in Central and Eastern; 20:00 Eastern closes it
    v = gate.check(
        phone_e164="+18505550123", contact_id="C015", tz_hint=None, at=utc(2026, 3, 11, 23, 30)
    )
    assert v.disposition == "eligible"
    v = gate.check(
        phone_e164="+18505550123", contact_id="C015", tz_hint=None, at=utc(2026, 3, 12, 0, 10)
    )
    assert (v.disposition, v.reason) == ("pending", "outside_window")
    assert v.next_open == utc(2026, 3, 12, 14, 0)  # 09:00 Central = 10:00 Eastern
    # a number another process put in the shared ledger after loading is held back
    DncLedger(world["ledger"].path).add(
        "+18505550123", reason="opt_out", campaign="other", evidence="call 9", at=AT
    )
    gate = gate.reloaded() or gate  # the ledger is caught up in a worker thread, not by check
    v = gate.check(
        phone_e164="+18505550123", contact_id="C015", tz_hint=None, at=utc(2026, 3, 11, 23, 30)
    )
    assert (v.disposition, v.reason, v.detail) == ("suppressed", "dnc_local", "listed in ledger")


def test_require_consent_off_still_honours_revocation(world: dict) -> None:
    g = world["gate"]
    gate = Gate(dnc=g.dnc, consent=g.consent, window=g.window, require_consent=False)
    plan = build_plan(world["contacts"], gate, AT).set_index("row")
    assert plan.loc[8, "disposition"] == "eligible"  # no consent, not required
    assert plan.loc[10, "disposition"] == "eligible"  # expired, not required
    assert plan.loc[9, "reason"] == "consent_revoked"  # a revocation is an opt-out
    _assert_plan_matches_gate(plan.reset_index(), world["contacts"].frame, gate, AT)
    no_ledger = Gate(dnc=g.dnc, consent=None, window=g.window, require_consent=True)
    plan = build_plan(world["contacts"], no_ledger, AT)
    assert set(plan["reason"].dropna()) <= {
        "no_consent", "dnc_local", "invalid_phone", "blank_phone", "duplicate",
    }  # fmt: skip
    _assert_plan_matches_gate(plan, world["contacts"].frame, no_ledger, AT)


def test_allow_unknown_timezone(world: dict) -> None:
    g = world["gate"]
    lax = CallingWindow(time(9), time(20), allow_unknown_timezone=True)
    gate = Gate(dnc=g.dnc, consent=g.consent, window=lax, require_consent=True)
    v = gate.check(phone_e164="+13125550199", contact_id=None, tz_hint="Mars/Olympus", at=AT)
    assert v.disposition == "eligible" and "allowed by campaign" in v.detail
    strict = g.check(phone_e164="+13125550199", contact_id=None, tz_hint="Mars/Olympus", at=AT)
    assert (strict.disposition, strict.reason) == ("suppressed", "unknown_timezone")
    assert "Mars/Olympus" in strict.detail


def test_naive_datetimes_are_rejected(world: dict) -> None:
    naive = datetime(2026, 3, 11, 18, 0)
    with pytest.raises(ValueError, match="timezone-aware"):
        world["gate"].check(phone_e164="+14155550188", contact_id=None, tz_hint=None, at=naive)
    with pytest.raises(ValueError, match="timezone-aware"):
        build_plan(world["contacts"], world["gate"], naive)
    with pytest.raises(ValueError, match="timezone-aware"):
        CallingWindow(time(9), time(20)).check("+14155550188", None, naive)
    with pytest.raises(ValueError, match="timezone-aware"):
        world["gate"].consent.decide(phone_e164="+14155550188", contact_id=None, at=naive)
    with pytest.raises(ValueError, match="timezone-aware"):
        world["ledger"].add("+14155550188", reason="x", campaign="c", evidence="e", at=naive)


# --------------------------------------------------------------------------------------------
# DNC lists and the ledger
# --------------------------------------------------------------------------------------------


def test_dnc_lists_normalise_any_spelling(world: dict) -> None:
    dnc: DncList = world["dnc"]
    assert dnc.sources == ["dnc_a.csv", "dnc_b.csv", "ledger"]
    assert "+12125550100" in dnc and "+16025550111" in dnc and "+13035550100" in dnc
    assert "+14155550188" not in dnc
    assert dnc.source_of("+13035550100") == "dnc_b.csv"
    assert dnc.source_of("+15125550100") == "ledger"
    assert dnc.source_of("+14155550188") is None
    assert dnc.ignored == {"dnc_a.csv": 2, "dnc_b.csv": 0}  # numeric but not valid: can't match
    looked = dnc.lookup(pd.Series(["+12125550100", None, "+14155550188"], dtype="string"))
    assert [_norm(x) for x in looked] == ["dnc_a.csv", None, None]


def test_ftc_registry_layout_and_bad_dnc_files() -> None:
    dnc = DncList.load([DATA / "dnc_ftc.csv"], default_region="US")
    assert "+12125550100" in dnc and "+14155550188" in dnc and len(dnc) == 2
    # text in a DNC list is listed (check shows it), not dropped silently, not fatal
    text = DncList.load([DATA / "dnc_text.csv"], default_region="US")
    assert "+12125550100" in text and text.ignored == {"dnc_text.csv": 1}
    bad = text.unreadable["dnc_text.csv"]
    assert bad[["row", "column", "value"]].values.tolist() == [[2, "phone", "call me maybe"]]
    with pytest.raises(ComplianceError, match="which column"):
        DncList.load([DATA / "dnc_two_columns.csv"], default_region="US")
    with pytest.raises(ComplianceError, match="not a CSV"):
        DncList.load([DATA / "not_csv.xlsx"], default_region="US")
    with pytest.raises(ComplianceError, match="cannot read"):
        DncList.load([DATA / "missing.csv"], default_region="US")


def test_ledger_is_idempotent_and_survives_a_torn_line(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "ledger.csv"
    led = DncLedger(path)
    assert led.numbers() == set()
    led.add("+14155550188", reason="dnc_listed", campaign="a", evidence="409 dnc_listed", at=AT)
    led.add("+14155550188", reason="opt_out", campaign="b", evidence="call 2", at=AT)
    lines = path.read_text().splitlines()
    assert lines[0] == "phone,reason,campaign,evidence,at"
    assert lines[1] == "+14155550188,dnc_listed,a,409 dnc_listed,2026-03-11T18:00:00+00:00"
    assert len(lines) == 2
    # a crash mid-write leaves a torn line: a complete phone field still counts, a cut one not
    with path.open("a") as f:
        f.write("+12125550100,opt_out,c")
    assert DncLedger(path).numbers() == {"+14155550188", "+12125550100"}
    with path.open("a") as f:
        f.write("\n+1303555")
    assert DncLedger(path).numbers() == {"+14155550188", "+12125550100"}
    other = DncLedger(path)
    other.add("+16175550144", reason="opt_out", campaign="c", evidence="call 3", at=AT)
    assert path.read_text().endswith("\n+16175550144,opt_out,c,call 3,2026-03-11T18:00:00+00:00\n")
    assert DncLedger(path).numbers() == {"+14155550188", "+12125550100", "+16175550144"}
    led.reload()  # blocking (a worker thread's job); membership itself reads no file
    assert "+16175550144" in led  # the first instance catches up
    with pytest.raises(ValueError):
        led.add("4155550188", reason="x", campaign="c", evidence="e", at=AT)
    with pytest.raises(ValueError):
        led.add("+14155550199", reason="x\ny", campaign="c", evidence="e", at=AT)


def test_a_replaced_ledger_never_looks_empty_while_it_is_read_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`reload` runs in a worker thread while the gate asks membership on the event loop: when
    the file was replaced (an editor saves a copy, a new inode), a number it held is still
    held while the new file is being read, not forgotten until the read ends."""
    import campaign_dialer.store.ledger_file as ledger_file

    path = tmp_path / "ledger.csv"
    led = DncLedger(path)
    led.add("+14155550188", reason="opt_out", campaign="a", evidence="call 1", at=AT)
    replaced = tmp_path / "ledger.csv.new"
    line = "+12125550100,opt_out,b,call 2,2026-03-11T18:00:00+00:00\n"
    replaced.write_text(path.read_text() + line)
    replaced.replace(path)
    seen_during_read: list[bool] = []
    real_pread = ledger_file.os.pread

    def pread(fd: int, n: int, offset: int) -> bytes:
        seen_during_read.append("+14155550188" in led)  # the gate's check, meanwhile
        return real_pread(fd, n, offset)

    monkeypatch.setattr(ledger_file.os, "pread", pread)
    assert led.reload()
    assert seen_during_read == [True]
    assert "+14155550188" in led and "+12125550100" in led


def _append_many(path: str, numbers: list[str]) -> None:
    led = DncLedger(Path(path))
    for n in numbers:
        led.add(n, reason="opt_out", campaign="p", evidence="e", at=AT)


def test_ledger_is_safe_with_concurrent_appenders(tmp_path: Path) -> None:
    path = tmp_path / "ledger.csv"
    numbers = [f"+1415555{i:04d}" for i in range(60)]
    chunks = [numbers[i::3] + numbers[:10] for i in range(4)]  # overlapping on purpose
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_append_many, args=(str(path), c)) for c in chunks]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    lines = path.read_text().splitlines()
    assert lines[0].startswith("phone,")
    phones = [ln.split(",")[0] for ln in lines[1:]]
    assert sorted(phones) == sorted(numbers)  # each exactly once, no torn or merged lines
    assert all(len(ln.split(",")) == 5 for ln in lines)


# --------------------------------------------------------------------------------------------
# Consent
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "row", "column", "words"),
    [
        ("consent_naive.csv", 2, "event_at", "with a UTC offset"),
        ("consent_bad_event.csv", 1, "event", "not grant or revoke"),
        ("consent_no_event.csv", None, "event", "no event column"),
        ("consent_bad_date.csv", 1, "event_at", "not a valid date-time"),
        ("no_phone_column.csv", None, "phone", "no phone or contact_id"),
    ],
)
def test_bad_consent_files(name: str, row: int | None, column: str, words: str) -> None:
    with pytest.raises(ComplianceError) as e:
        ConsentLedger.load(DATA / name, default_region="US")
    assert (e.value.row, e.value.column) == (row, column)
    assert words in str(e.value) and name in str(e.value)


def test_consent_boundaries(tmp_path: Path) -> None:
    p = tmp_path / "c.csv"
    p.write_text(
        "phone,contact_id,event,event_at,expires_at,source\n"
        "4155550188,,grant,2026-01-01T00:00:00Z,2026-02-01T00:00:00Z,a\n"
        "4155550188,,grant,2026-01-01T00:00:00Z,,b\n"  # same instant, no expiry
        ",X1,revoke,2026-01-10T00:00:00+00:00,,c\n"
        ",X1,grant,2026-01-10T01:00:00+01:00,,d\n"  # the same instant as the revoke
    )
    led = ConsentLedger.load(p, default_region="US")
    d = led.decide(phone_e164="+14155550188", contact_id=None, at=utc(2026, 1, 15))
    assert d.allowed and d.source == "a"  # tie between grants: the earlier expiry decides
    d = led.decide(phone_e164="+14155550188", contact_id=None, at=utc(2026, 2, 1))
    assert (d.allowed, d.reason) == (False, "consent_expired")  # expiry at the call: expired
    d = led.decide(phone_e164="+14155550188", contact_id=None, at=utc(2025, 12, 31, 23, 59))
    assert d.reason == "no_consent"  # future-dated grant is not consent yet
    d = led.decide(phone_e164=None, contact_id="X1", at=utc(2026, 1, 11))
    assert d.reason == "consent_revoked"  # same instant: revoke wins
    d = led.decide(phone_e164="+14155550188", contact_id="X1", at=utc(2026, 1, 11))
    assert d.reason == "consent_revoked"  # a revocation under the contact_id applies too


OFFSETS = ["Z", "+00:00", "-05:00", "-08:00", "+05:30", "+09:00", "-03:30", "+14:00"]
PHONES = ["+14155550188", "+12125550100", "+13055550142"]
IDS = ["A", "B", "C"]


@st.composite
def histories(draw: st.DrawFn) -> list[tuple[str, str, str, int, int | None]]:
    n = draw(st.integers(0, 12))
    out = []
    for _ in range(n):
        by_phone = draw(st.booleans())
        key = draw(st.sampled_from(PHONES if by_phone else IDS))
        event = draw(st.sampled_from(["grant", "grant", "revoke"]))
        t = draw(st.integers(0, 40)) * 3600  # coarse: ties are likely
        exp = draw(st.one_of(st.none(), st.integers(0, 60).map(lambda h: h * 3600)))
        out.append(("p" if by_phone else "c", key, event, t, exp))
    return out


def _iso(seconds: int, offset: str) -> str:
    base = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds)
    if offset == "Z":
        return base.strftime("%Y-%m-%dT%H:%M:%SZ")
    sign = 1 if offset[0] == "+" else -1
    tz = timezone(sign * timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6])))
    return base.astimezone(tz).isoformat()


@settings(SLOW, max_examples=150)
@given(
    histories(),
    st.lists(st.sampled_from(OFFSETS), min_size=24, max_size=24),
    st.sampled_from([None, *PHONES]),
    st.sampled_from([None, *IDS]),
    st.integers(-1, 60),
    st.randoms(use_true_random=False),
)
def test_consent_equals_brute_force(
    tmp_path_factory: pytest.TempPathFactory,
    events: list,
    offsets: list[str],
    phone: str | None,
    cid: str | None,
    at_hour: int,
    rnd: random.Random,
) -> None:
    path = tmp_path_factory.mktemp("consent") / "c.csv"
    lines = []
    for i, (kind, key, event, t, exp) in enumerate(events):
        p_cell = key if kind == "p" else ""
        c_cell = key if kind == "c" else ""
        exp_cell = "" if exp is None else _iso(exp, offsets[(i + 7) % 24])
        lines.append(f"{p_cell},{c_cell},{event},{_iso(t, offsets[i % 24])},{exp_cell},s{i}")
    rnd.shuffle(lines)  # file order means nothing
    path.write_text("phone,contact_id,event,event_at,expires_at,source\n" + "\n".join(lines) + "\n")
    led = ConsentLedger.load(path, default_region="US")
    at = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=at_hour)
    got = led.decide(phone_e164=phone, contact_id=cid, at=at)

    at_s = at_hour * 3600
    relevant = [
        e for e in events
        if ((e[0] == "p" and e[1] == phone) or (e[0] == "c" and e[1] == cid)) and e[3] <= at_s
    ]  # fmt: skip
    if not relevant:
        assert (got.allowed, got.reason) == (False, "no_consent")
        return
    inf = float("inf")
    latest = max(relevant, key=lambda e: (e[3], e[2] == "revoke", -(inf if e[4] is None else e[4])))
    if latest[2] == "revoke":
        want = "consent_revoked"
    elif latest[4] is not None and latest[4] <= at_s:
        want = "consent_expired"
    else:
        want = None
    assert got.reason == want
    assert got.allowed == (want is None)
    assert got.event_at == datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=latest[3])


# --------------------------------------------------------------------------------------------
# Calling window
# --------------------------------------------------------------------------------------------


def test_window_is_clamped_to_the_federal_bound() -> None:
    w = CallingWindow(time(7), time(22))
    assert w.effective == US_FEDERAL_WINDOW == (time(8), time(21)) and w.clamped
    assert CallingWindow(time(9), time(20)).effective == (time(9), time(20))
    # 07:30 and 21:00 in New York are outside even though the campaign asked for them
    assert not w.check("+12125550100", None, utc(2026, 3, 11, 11, 30)).ok
    assert not w.check("+12125550100", None, utc(2026, 3, 12, 1, 0)).ok
    assert w.check("+12125550100", None, utc(2026, 3, 12, 0, 59)).ok
    with pytest.raises(ValueError):
        CallingWindow(time(22), time(23))
    with pytest.raises(ValueError):
        CallingWindow(time(9, tzinfo=UTC), time(20))


def test_split_area_codes_use_every_zone_of_the_area_code() -> None:
    w = CallingWindow(time(9), time(20))
    for e164, zones in {
        "+18505550123": {"America/Chicago", "America/New_York"},  # FL panhandle
        "+14485550123": {"America/Chicago", "America/New_York"},  # its overlay
        "+12705550123": {"America/Chicago", "America/New_York"},  # KY
        "+18125550123": {"America/Chicago", "America/New_York"},  # IN
        "+15415550123": {"America/Los_Angeles", "America/Denver"},  # OR
        "+14585550123": {"America/Los_Angeles", "America/Denver"},  # OR overlay
        "+12085550123": {"America/Boise", "America/Denver", "America/Los_Angeles"},
        "+16055550123": {"America/Chicago", "America/Denver"},
    }.items():
        got = set(w.zones_for(e164, None))
        assert zones <= got, e164
        library = set(pn_timezone.time_zones_for_number(phonenumbers.parse(e164)))
        assert library < got  # the library alone would miss a zone
    assert w.zones_for("+16025550111", None) == ("America/Phoenix",)
    assert w.zones_for("+12125550100", "TX") == (
        "America/Chicago",
        "America/Denver",
        "America/New_York",
    )
    assert w.zones_for("+12125550100", "Nowhere/Land") == ()
    assert w.zones_for(None, None) == ()
    assert w.zones_for(None, "America/Chicago") == ("America/Chicago",)
    assert w.zones_for("+442079460958", None) == ("Europe/London",)
    assert "Pacific/Guam" in w.zones_for("+18005550199", None)  # toll-free: every NANP zone


def test_arizona_has_no_dst() -> None:
    w = CallingWindow(time(9), time(20))
    summer = w.check("+16025550111", None, utc(2026, 7, 1, 16, 0))  # 09:00 MST
    assert summer.ok and summer.local_times == ("2026-07-01T09:00-07:00",)
    denver = w.check("+13035550100", None, utc(2026, 7, 1, 16, 0))  # 10:00 MDT
    assert denver.local_times == ("2026-07-01T10:00-06:00",)
    assert not w.check("+16025550111", None, utc(2026, 7, 1, 15, 59)).ok


def test_toll_free_numbers_never_share_a_window() -> None:
    d = CallingWindow(time(9), time(20)).check("+18005550199", None, AT)
    assert (d.ok, d.reason, d.next_open) == (False, "outside_window", None)
    assert "not open within" in d.detail


@pytest.mark.parametrize(
    ("e164", "hint", "at", "ok"),
    [
        ("+13055550142", None, utc(2026, 3, 12, 0, 0), False),  # FL 20:00: closed
        ("+13055550142", None, utc(2026, 3, 11, 23, 59), True),
        ("+12125550100", None, utc(2026, 3, 12, 0, 30), True),  # NY 20:30: federal only
        ("+12125550100", "FL", utc(2026, 3, 12, 0, 30), False),  # the contact lives in FL
        ("+17135550133", None, utc(2026, 3, 15, 16, 30), False),  # TX Sunday 11:30
        ("+17135550133", None, utc(2026, 3, 15, 17, 0), True),  # TX Sunday 12:00
        ("+17135550133", None, utc(2026, 3, 14, 14, 0), True),  # TX Saturday 09:00
        ("+12055550177", None, utc(2026, 3, 15, 18, 0), False),  # AL Sunday
        ("+12055550177", None, utc(2026, 5, 25, 18, 0), False),  # AL Memorial Day
        ("+12055550177", None, utc(2026, 4, 27, 18, 0), False),  # AL Confederate Memorial Day
        ("+12055550177", None, utc(2026, 5, 26, 18, 0), True),
        ("+15045550100", None, utc(2026, 2, 17, 18, 0), False),  # LA Mardi Gras
        ("+14015550100", None, utc(2026, 3, 14, 21, 30), False),  # RI Saturday 17:30
        ("+14015550100", None, utc(2026, 3, 13, 21, 30), True),  # RI Friday 17:30
        ("+14105550190", None, utc(2026, 7, 4, 15, 0), True),  # MD: no holiday rule
        ("+14165550100", None, utc(2026, 3, 14, 22, 30), False),  # ON Saturday 18:30 (CRTC)
        ("+14165550100", None, utc(2026, 3, 13, 22, 30), True),  # ON Friday 18:30
    ],
)
def test_state_rules(e164: str, hint: str | None, at: datetime, ok: bool) -> None:
    w = CallingWindow(time(8), time(21))
    assert w.check(e164, hint, at).ok is ok
    if not ok and hint is None:
        assert CallingWindow(time(8), time(21), state_rules=False).check(e164, None, at).ok


def test_state_tables() -> None:
    assert state_for_number("+18505550123") == "FL"
    assert state_for_number("+14165550100") == "ON"
    assert state_for_number("+17875550100") == "PR"
    assert state_for_number("+442079460958") is None
    assert states_for_number("+12125550100") == ("NY",)
    assert max_calls_per_24h("+13055550142") == 3
    assert max_calls_per_24h("+14055550100") == 3  # OK
    assert max_calls_per_24h("+14105550190") == 3  # MD
    assert max_calls_per_24h("+12125550100") is None
    assert max_calls_per_24h("+442079460958") is None


def test_area_code_table_covers_every_zone_phonenumbers_knows() -> None:
    w = CallingWindow(time(9), time(20))
    for key, zones in TIMEZONE_DATA.items():
        if not key.startswith("1") or len(key) < 4:
            continue
        e164 = "+" + key + "0" * (11 - len(key))
        if not phonenumbers.is_valid_number(phonenumbers.parse(e164)):
            e164 = "+" + key + "2" * (11 - len(key))
        got = set(w.zones_for(e164, None))
        assert set(zones) - {"Etc/Unknown"} <= got, key


def test_us_federal_holidays() -> None:
    assert sorted(us_federal_holidays(2026)) == [
        date(2026, 1, 1), date(2026, 1, 19), date(2026, 2, 16), date(2026, 5, 25),
        date(2026, 6, 19), date(2026, 7, 3), date(2026, 7, 4), date(2026, 9, 7),
        date(2026, 10, 12), date(2026, 11, 11), date(2026, 11, 26), date(2026, 12, 25),
    ]  # fmt: skip
    assert date(2027, 12, 31) in us_federal_holidays(2027)  # New Year 2028 is a Saturday
    assert date(2020, 6, 19) not in us_federal_holidays(2020)  # Juneteenth from 2021
    la = holidays_for("LA", 2026)
    assert date(2026, 2, 17) in la and date(2026, 4, 3) in la  # Mardi Gras, Good Friday
    assert holidays_for("TX", 2026) == frozenset()


# -- brute-force reference for the window ----------------------------------------------------

FEDERAL = {  # 5 U.S.C. 6103, written out by hand (actual and observed dates)
    2025: "01-01 01-20 02-17 05-26 06-19 07-04 09-01 10-13 11-11 11-27 12-25",
    2026: "01-01 01-19 02-16 05-25 06-19 07-03 07-04 09-07 10-12 11-11 11-26 12-25",
    2027: "01-01 01-18 02-15 05-31 06-18 06-19 07-04 07-05 09-06 10-11 11-11 11-25 12-24 12-25 "
    "12-31",
}
EXTRA = {  # state-only days, by hand
    "AL": "2025-03-04 2025-04-28 2025-06-02 2026-02-17 2026-04-27 2026-06-01 "
    "2027-02-09 2027-04-26 2027-06-07",
}
RULES = {  # (weekday, saturday, sunday, holiday); None = no calls; () = no state limit
    "FL": ((8, 20), (8, 20), (8, 20), ()),
    "TX": ((9, 21), (9, 21), (12, 21), ()),
    "AL": ((8, 20), (8, 20), None, None),
    "ON": ((9, 21.5), (10, 18), (10, 18), ()),
    "KY": ((10, 21), (10, 21), (10, 21), ()),
}
NUMBERS = {  # number -> states
    "+18505550123": ("FL",), "+13055550142": ("FL",), "+17135550133": ("TX",),
    "+19155550100": ("TX",), "+12055550177": ("AL",), "+14165550100": ("ON",),
    "+12705550123": ("KY",), "+12125550100": (), "+16025550111": (), "+19075550100": (),
    "+442079460958": (),
}  # fmt: skip
HINTS = {None: (), "America/Denver": (), "TX": ("TX",), "Asia/Tokyo": (), "FL": ("FL",)}
DST_DAYS = [datetime(y, m, d, tzinfo=UTC) for y, m, d in [
    (2025, 3, 9), (2025, 11, 2), (2026, 3, 8), (2026, 11, 1), (2027, 3, 14), (2027, 11, 7),
    (2026, 3, 29), (2026, 10, 25),  # Europe
]]  # fmt: skip


def _holiday(state: str, day: date) -> bool:
    fed = {date(day.year, int(x[:2]), int(x[3:])) for x in FEDERAL[day.year].split()}
    extra = {date.fromisoformat(x) for x in EXTRA.get(state, "").split()}
    return day in fed | extra


def _ref_open(
    zones: tuple[str, ...], states: tuple[str, ...], window: tuple[int, int], at: datetime
) -> bool:
    for z in zones:
        local = at.astimezone(ZoneInfo(z))
        h = local.hour + local.minute / 60 + local.second / 3600
        lo: float = max(window[0], 8)
        hi: float = min(window[1], 21)
        for s in states:
            wk, sat, sun, hol = RULES[s]
            day = local.date()
            limits: list[tuple[float, float] | tuple[()] | None] = [
                wk if day.weekday() < 5 else sat if day.weekday() == 5 else sun
            ]
            if hol != () and _holiday(s, day):
                limits.append(hol)
            for lim in limits:
                if lim is None:
                    return False
                if len(lim) == 2:
                    lo, hi = max(lo, lim[0]), min(hi, lim[1])
        if not lo <= h < hi:
            return False
    return True


@st.composite
def instants(draw: st.DrawFn) -> datetime:
    if draw(st.booleans()):
        day = draw(st.sampled_from(DST_DAYS))
        return day + timedelta(minutes=draw(st.integers(-12 * 60, 36 * 60)))
    start = datetime(2025, 1, 2, tzinfo=UTC)
    return start + timedelta(minutes=draw(st.integers(0, (3 * 365 - 20) * 24 * 60)))


@settings(SLOW, max_examples=400)
@given(
    st.sampled_from(sorted(NUMBERS)),
    st.sampled_from(list(HINTS)),
    instants(),
    st.integers(6, 12),
    st.integers(17, 23),
)
def test_window_equals_brute_force_per_zone(
    e164: str, hint: str | None, at: datetime, start: int, end: int
) -> None:
    w = CallingWindow(time(start), time(end) if end < 24 else time(23, 59))
    zones = w.zones_for(e164, hint)
    states = tuple(sorted(set(NUMBERS[e164]) | set(HINTS[hint])))
    d = w.check(e164, hint, at)
    assert d.zones == zones and len(d.local_times) == len(zones)
    assert d.ok == _ref_open(zones, states, (start, end), at)
    if d.ok:
        assert d.next_open is None
        return
    assert d.reason == "outside_window"
    if d.next_open is None:  # never open together within the lookahead: spot-check it
        for k in range(0, 14 * 24 * 4, 7):
            assert not _ref_open(zones, states, (start, end), at + timedelta(minutes=15 * k))
        return
    assert d.next_open > at
    assert _ref_open(zones, states, (start, end), d.next_open)
    assert not _ref_open(zones, states, (start, end), d.next_open - timedelta(seconds=1))
    span = (d.next_open - at).total_seconds()
    for k in range(1, 40):
        probe = at + timedelta(seconds=span * k / 40)
        assert not _ref_open(zones, states, (start, end), probe)


# -- the plan equals the gate on random inputs ------------------------------------------------

POOL = ["(415) 555-0188", "212.555.0100", "+1 850 555 0123", "713-555-0133", "", "555-01",
        "+44 20 7946 0958", "1-800-555-0199", "205 555 0177", "+12125550100"]  # fmt: skip


@settings(SLOW, max_examples=60)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(POOL),
            st.sampled_from(["", "A", "B", "C", "D"]),
            st.sampled_from(["", "America/Chicago", "TX", "Mars/Base", "Asia/Tokyo"]),
        ),
        min_size=1,
        max_size=14,
    ),
    st.lists(st.sampled_from(POOL[:4] + POOL[6:]), max_size=3),
    histories(),
    instants(),
    st.booleans(),
    st.booleans(),
)
def test_plan_equals_gate_on_random_inputs(
    tmp_path_factory: pytest.TempPathFactory,
    rows: list[tuple[str, str, str]],
    dnc_rows: list[str],
    events: list,
    at: datetime,
    require_consent: bool,
    allow_unknown: bool,
) -> None:
    assume(at.year >= 2025)
    d = tmp_path_factory.mktemp("plan")
    (d / "contacts.csv").write_text(
        "phone,contact_id,timezone\n" + "".join(f'"{p}",{c},{t}\n' for p, c, t in rows)
    )
    (d / "dnc.csv").write_text("phone\n" + "".join(f'"{p}"\n' for p in dnc_rows))
    lines = [
        f"{k if kind == 'p' else ''},{k if kind == 'c' else ''},{ev},{_iso(t, 'Z')},"
        f"{'' if exp is None else _iso(exp, '+02:00')},s"
        for kind, k, ev, t, exp in events
    ]
    (d / "consent.csv").write_text(
        "phone,contact_id,event,event_at,expires_at,source\n" + "\n".join(lines) + "\n"
    )
    contacts = load_contacts(d / "contacts.csv", default_region="US")
    gate = Gate(
        dnc=DncList.load([d / "dnc.csv"], default_region="US"),
        consent=ConsentLedger.load(d / "consent.csv", default_region="US"),
        window=CallingWindow(time(9), time(20), allow_unknown_timezone=allow_unknown),
        require_consent=require_consent,
    )
    at = datetime(2026, 1, 1, 14, tzinfo=UTC) + (at - datetime(2025, 1, 2, tzinfo=UTC)) % timedelta(
        days=5
    )
    plan = build_plan(contacts, gate, at)
    _assert_plan_matches_gate(plan, contacts.frame, gate, at)


def test_load_inputs_concurrently_equals_one_by_one(world: dict) -> None:
    from campaign_dialer.compliance import load_inputs

    contacts, dnc, consent = load_inputs(
        DATA / "crm_export.csv",
        default_region="US",
        dnc_paths=[DATA / "dnc_a.csv", DATA / "dnc_b.csv"],
        consent_path=world["consent_path"],
        ledger=world["ledger"],
    )
    assert consent is not None
    pd.testing.assert_frame_equal(contacts.frame, world["contacts"].frame)
    assert dnc.sources == world["dnc"].sources and len(dnc) == len(world["dnc"])
    pd.testing.assert_frame_equal(consent.events, world["gate"].consent.events)
    with pytest.raises(ComplianceError):
        load_inputs(
            DATA / "crm_export.csv", default_region="US", dnc_paths=[DATA / "dnc_scientific.csv"]
        )


def test_first_list_holding_a_number_is_the_evidence() -> None:
    dnc = DncList.load(
        [DATA / "dnc_b.csv", DATA / "dnc_ftc.csv", DATA / "dnc_a.csv"], default_region="US"
    )
    assert dnc.source_of("+12125550100") == "dnc_ftc.csv"  # also in dnc_a.csv, listed later
    assert dnc.source_of("+16025550111") == "dnc_b.csv"
    assert "12125550100" not in dnc and None not in dnc  # only E.164 strings are looked up


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(["", "web", "Web", "call", "sms ", "=form", "é"]), min_size=1,
                max_size=40))
def test_consent_source_counts_are_the_event_frames_value_counts(
    tmp_path: Path, sources: list[str]
) -> None:
    # check's "consent sources" line, counted without a frame of every event: the same
    # sources, counts and order (ties included) as the frame's value_counts gave
    p = tmp_path / "c.csv"
    p.write_text("phone,event,event_at,source\n" + "".join(
        f"41555501{i % 100:02d},grant,2026-01-01T00:00:00Z,{s}\n" for i, s in enumerate(sources)
    ), encoding="utf-8")
    led = ConsentLedger.load(p, default_region="US")
    want = {str(k): int(v) for k, v in
            led.events["source"].fillna("").value_counts().head(3).items()}
    assert led.source_counts(3) == want
    assert list(led.source_counts(3)) == list(want)
