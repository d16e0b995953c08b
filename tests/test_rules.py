"""Every compliance rule is written once (`compliance.rules`): its one-row check and its column
check must agree on random inputs, rule by rule; and the rule list is the one place a rule
lives: change one rule's answer and both the plan and `Gate.check` follow.
"""

from __future__ import annotations

import csv
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from campaign_dialer.compliance import (
    NAT,
    CallingWindow,
    ConsentLedger,
    DncList,
    DncListMeta,
    Gate,
    LedgerNumbers,
    ReassignedAnswers,
    from_ns,
    plan_columns,
    row_columns,
    to_ns,
)
from campaign_dialer.compliance.rules import (
    RULES,
    Call,
    CallingHours,
    ContactVerdict,
    GateInputs,
    No,
    Rows,
    Rule,
    Said,
    StaleList,
)
from campaign_dialer.contacts import Contacts, load_contacts
from campaign_dialer.vocab import GATE_REASONS, PENDING, SUPPRESSED, Reason

POOL = (
    "+12125550100", "+14155550101", "+13055550102", "+16025550103", "+18505550104",
    "+12065550105", "+19075550106", "+18085550107", "+14165550108", "+442079460958",
)  # fmt: skip
HINTS = ("", "TX", "America/Chicago", "Nowhere/Land", "EST", "AZ")
CIDS = ("", "C1", "C2", "C3")
BASE = datetime(2026, 3, 9, 0, 0, tzinfo=UTC)  # a Monday
SLOW = settings(
    max_examples=25, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@dataclass(frozen=True)
class Held:
    reason: str
    detail: str
    next_open: datetime | None


@dataclass(frozen=True)
class FakeHistory:
    """A history's answer as the gate receives it: these people wait until `until`."""

    people: frozenset[str]
    until: datetime | None

    def __call__(
        self, phone: str | None, contact_id: str | None, others: Any, at: datetime
    ) -> Held | None:
        keys = {f"tel:{phone}" if phone else f"cid:{contact_id}"} | {f"tel:{o}" for o in others}
        if not keys & self.people:
            return None
        return Held("recently_called", f"called by campaign other ({sorted(keys)[0]})", self.until)


@dataclass(frozen=True)
class World:
    contacts: list[tuple[str, str, str, str]]
    dnc: list[str]
    ledger: list[str]
    consent: list[tuple[str, str, str, int, int | None]]
    rnd: list[tuple[str, int, str]]
    require_consent: bool
    require_rnd: bool
    allow_cid_only: bool
    held: list[str]
    hold_hours: int | None
    stale_days: int | None
    at: datetime


cells = st.sampled_from(("", *POOL, "12345", "not a number"))
worlds = st.builds(
    World,
    contacts=st.lists(
        st.tuples(st.sampled_from(CIDS), cells, cells, st.sampled_from(HINTS)),
        min_size=1, max_size=10,
    ),
    dnc=st.lists(st.sampled_from(POOL), max_size=3),
    ledger=st.lists(st.sampled_from(POOL), max_size=2),
    consent=st.lists(
        st.tuples(
            st.sampled_from(POOL), st.sampled_from(CIDS), st.sampled_from(("grant", "revoke")),
            st.integers(0, 14 * 24), st.one_of(st.none(), st.integers(1, 20 * 24)),
        ),
        max_size=8,
    ),
    rnd=st.lists(
        st.tuples(st.sampled_from(POOL), st.integers(-10, 10),
                  st.sampled_from(("yes", "no", "no_data"))),
        max_size=4,
    ),
    require_consent=st.booleans(), require_rnd=st.booleans(), allow_cid_only=st.booleans(),
    held=st.lists(st.sampled_from([f"tel:{n}" for n in POOL] + ["cid:C1", "cid:C2"]),
                  max_size=3),
    hold_hours=st.one_of(st.none(), st.integers(1, 48)),
    stale_days=st.one_of(st.none(), st.integers(0, 60)),
    at=st.integers(0, 13 * 24 * 4).map(lambda q: BASE + timedelta(minutes=15 * q)),
)


def build(folder: Path, w: World) -> tuple[Gate, Contacts]:
    with (folder / "contacts.csv").open("w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(["contact_id", "phone", "mobile", "timezone"])
        wr.writerows(w.contacts)
    (folder / "dnc.csv").write_text("phone\n" + "".join(f"{n}\n" for n in w.dnc))
    with (folder / "consent.csv").open("w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(["phone", "contact_id", "event", "event_at", "expires_at", "source"])
        for phone, cid, event, hours, expires in w.consent:
            t = BASE - timedelta(days=7) + timedelta(hours=hours)
            exp = "" if expires is None else (t + timedelta(hours=expires)).isoformat()
            wr.writerow([phone, cid, event, t.isoformat(), exp, f"src {hours}"])
    with (folder / "rnd.csv").open("w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(["phone", "date_queried", "result", "queried_at"])
        for phone, day, result in w.rnd:
            d = (BASE + timedelta(days=day)).date()
            wr.writerow([phone, d.isoformat(), result, f"{d.isoformat()}T12:00:00Z"])
    meta = [DncListMeta("national", None, (w.at - timedelta(days=w.stale_days)).date(), "dnc")
            if w.stale_days is not None else None]
    history = FakeHistory(
        frozenset(w.held), None if w.hold_hours is None else w.at + timedelta(hours=w.hold_hours)
    ) if w.held else None
    gate = Gate(
        dnc=DncList.load([folder / "dnc.csv"], default_region="US",
                         ledger=LedgerNumbers(w.ledger), meta=meta),
        consent=ConsentLedger.load(folder / "consent.csv", default_region="US"),
        window=CallingWindow(time(9), time(20)),
        require_consent=w.require_consent,
        reassigned=ReassignedAnswers.load(folder / "rnd.csv", default_region="US"),
        require_reassigned_check=w.require_rnd,
        allow_contact_id_only=w.allow_cid_only,
        history=history,
    )
    return gate, load_contacts(folder / "contacts.csv", default_region="US")


def world(w: World) -> tuple[Gate, Contacts]:
    with tempfile.TemporaryDirectory() as tmp:
        return build(Path(tmp), w)


def text(v: Any) -> str | None:
    return None if v is None or v is pd.NA or v != v else str(v)


def call_of(frame: pd.DataFrame, i: int, at: datetime) -> Call:
    r = frame.iloc[i]
    others = tuple(str(r["phone_others"]).split()) if text(r["phone_others"]) else ()
    return Call(
        text(r["phone_e164"]), text(r["contact_id"]), text(r["tz_hint"]), at, others,
        text(r["reason"]), text(r["detail"]) or "", {},
    )


def said_for(said: Said | None, i: int) -> No | None:
    """The column check's answer for row `i` as a one-row `No`."""
    if said is None or not said.where[i]:
        return None
    pending = said.pending if isinstance(said.pending, bool) else bool(said.pending[i])
    nxt = NAT if said.next_open is None else int(said.next_open[i])
    return No(
        PENDING if pending else SUPPRESSED, str(said.reasons[int(said.reason[i])]),
        said.details[int(said.detail[i])], None if nxt == NAT else from_ns(nxt),
    )


def one_against_many(rule: Rule, gate: Gate, contacts: Contacts, at: datetime) -> int:
    """Ask `rule` about every row both ways, after the rules before it (whose findings it may
    read: the consent rule's for the reassigned-numbers rule); returns the rows compared."""
    before = RULES[: RULES.index(rule)]
    f = contacts.frame
    rows = Rows(f, at)
    if not isinstance(rule, ContactVerdict):
        first = RULES[0].columns(gate, rows, rows.checked.copy())
        if first is not None:
            rows.checked &= ~first.where
        for r in before[1:]:
            if r.evidence:
                r.columns(gate, rows, rows.checked.copy())
    asked = rows.checked.copy()
    said = rule.columns(gate, rows, asked)
    compared = 0
    for i in np.flatnonzero(asked).tolist():
        call = call_of(f, i, at)
        for r in before[1:]:
            if r.evidence:
                r.check(gate, call)
        call.evidence.clear()
        assert rule.check(gate, call) == said_for(said, i), (rule.name, i, f.iloc[i].to_dict())
        for key, value in call.evidence.items():  # what this rule records, both ways
            assert (rows.evidence[key][i].as_py() or "") == value, (rule.name, key, i)
        if isinstance(rule, CallingHours):
            codes, labels = rows.note
            assert labels[int(codes[i])] == call.note
        compared += 1
    return compared


RULES_BOTH_WAYS = [r for r in RULES if not isinstance(r, StaleList)]


@pytest.mark.parametrize("rule", RULES_BOTH_WAYS, ids=lambda r: r.name)
@SLOW
@given(w=worlds)
def test_each_rule_says_the_same_for_one_row_and_for_every_row(rule: Rule, w: World) -> None:
    gate, contacts = world(w)
    one_against_many(rule, gate, contacts, w.at)


@SLOW
@given(w=worlds)
def test_a_stale_list_holds_a_dial_not_the_plan(w: World) -> None:
    """The one rule whose column check says nothing on purpose (`rules.stale`): `check` and
    `run` refuse a stale list before any row, so only a dial-time check meets one."""
    gate, contacts = world(w)
    rule = StaleList()
    rows = Rows(contacts.frame, w.at)
    assert rule.columns(gate, rows, rows.checked.copy()) is None
    call = Call("+12125550100", None, None, w.at, (), None, "", {})
    no = rule.check(gate, call)
    if w.stale_days is not None and w.stale_days > 31:
        assert no is not None and (no.disposition, no.reason, no.next_open) == (
            PENDING, Reason.DNC_LIST_STALE, None)
    else:
        assert no is None


def plan_and_gate(gate: Gate, contacts: Contacts, at: datetime) -> tuple[list[Any], list[Any]]:
    """Every row's (disposition, reason, detail, next_open): the plan's and `Gate.check`'s."""
    f = contacts.frame
    cols = row_columns(plan_columns(contacts, gate, at), f)
    plan, dial = [], []
    for i in range(len(f)):
        c = call_of(f, i, at)
        nxt = int(cols["next_open"][i])
        plan.append((cols["disposition"][i].as_py(), cols["reason"][i].as_py(),
                     cols["detail"][i].as_py() or "", None if nxt == NAT else from_ns(nxt)))
        v = gate.check(phone_e164=c.phone, contact_id=c.cid, tz_hint=c.hint, at=at,
                       other_phones=c.others, contact_reason=c.contact_reason,
                       contact_detail=c.contact_detail)
        dial.append((v.disposition, v.reason, v.detail, v.next_open))
    return plan, dial


class EvenNumbersRest:
    """A test rule: numbers ending in an even digit wait a day (a stand-in for the next rule,
    written once, with both checks)."""

    name: ClassVar[str] = "even_rest"
    stops: ClassVar[bool] = False
    evidence: ClassVar[bool] = False
    holds: ClassVar[bool] = False
    detail = "even numbers rest today"

    def check(self, gate: GateInputs, call: Call) -> No | None:
        if call.phone and int(call.phone[-1]) % 2 == 0:
            return No(PENDING, Reason.RECENTLY_CALLED, self.detail, call.at + timedelta(days=1))
        return None

    def columns(self, gate: GateInputs, rows: Rows, ask: np.ndarray) -> Said | None:
        last = rows.ints % 10
        where = ask & (rows.ints >= 0) & (last % 2 == 0)
        zero = np.zeros(rows.n, dtype=np.int64)
        nxt = np.full(rows.n, to_ns(rows.at + timedelta(days=1)), dtype=np.int64)
        return Said(where, True, zero, [Reason.RECENTLY_CALLED], zero, [self.detail], nxt)


AFTERNOON = BASE + timedelta(hours=19)  # 14:00 in New York, 11:00 in Seattle
MIDNIGHT = BASE + timedelta(hours=5)  # 00:00 in New York
FLIP = World(
    contacts=[("", n, "", "") for n in POOL[:8]], dnc=[POOL[0], POOL[1]], ledger=[], consent=[],
    rnd=[], require_consent=False, require_rnd=False, allow_cid_only=True, held=[],
    hold_hours=None, stale_days=None, at=AFTERNOON,
)


def test_a_rule_added_to_the_list_is_followed_by_the_plan_and_the_gate() -> None:
    gate, contacts = world(FLIP)
    plan, dial = plan_and_gate(gate, contacts, AFTERNOON)
    assert plan == dial
    assert not any(d[2] == EvenNumbersRest.detail for d in dial)
    dnc_at = [type(r).__name__ for r in RULES].index("DoNotCall")
    rules = (*RULES[: dnc_at + 1], EvenNumbersRest(), *RULES[dnc_at + 1:])
    flipped = Gate(dnc=gate.dnc, consent=gate.consent, window=gate.window,
                   require_consent=False, rules=rules)
    plan, dial = plan_and_gate(flipped, contacts, AFTERNOON)
    assert plan == dial
    even = [i for i, n in enumerate(POOL[:8]) if int(n[-1]) % 2 == 0]
    assert len(even) > 1 and even[0] == 0
    assert dial[0][1] == Reason.DNC_LOCAL  # listed and even: the DNC rule comes first, decides
    assert all(dial[i][:3] == (PENDING, Reason.RECENTLY_CALLED, EvenNumbersRest.detail)
               for i in even[1:])
    assert all(dial[i][2] != EvenNumbersRest.detail for i in range(8) if i not in even)


def test_a_rule_taken_out_of_the_list_is_gone_from_both() -> None:
    gate, contacts = world(FLIP)
    plan, dial = plan_and_gate(gate, contacts, MIDNIGHT)
    assert plan == dial
    assert any(d[1] == Reason.OUTSIDE_WINDOW for d in dial)
    without = Gate(dnc=gate.dnc, consent=gate.consent, window=gate.window,
                   require_consent=False,
                   rules=[r for r in RULES if not isinstance(r, CallingHours)])
    plan, dial = plan_and_gate(without, contacts, MIDNIGHT)
    assert plan == dial
    assert not any(d[1] in (Reason.OUTSIDE_WINDOW, Reason.UNKNOWN_TIMEZONE) for d in dial)


def test_a_rule_class_patched_flips_the_plan_and_the_gate(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Patch the DNC rule (the class in the list) to answer no for nobody: the listed number
    is let through by both paths at once."""
    from campaign_dialer.compliance.rules import DoNotCall

    gate, contacts = world(FLIP)
    plan, dial = plan_and_gate(gate, contacts, AFTERNOON)
    assert plan == dial and dial[1][1] == Reason.DNC_LOCAL
    check, columns = DoNotCall.check, DoNotCall.columns

    def never(self: DoNotCall, gate: GateInputs, call: Call) -> None:
        check(self, gate, call)  # its evidence still

    def never_columns(self: DoNotCall, gate: GateInputs, rows: Rows, ask: np.ndarray) -> None:
        columns(self, gate, rows, ask)

    monkeypatch.setattr(DoNotCall, "check", never)
    monkeypatch.setattr(DoNotCall, "columns", never_columns)
    plan, dial = plan_and_gate(gate, contacts, AFTERNOON)
    assert plan == dial and dial[1][0] == "eligible"


def test_every_reason_a_rule_gives_is_in_the_vocabulary() -> None:
    assert {r.value for r in Reason} >= set(GATE_REASONS)
    for r in GATE_REASONS:
        assert isinstance(r, str) and Reason(r) == r  # a StrEnum: the member is the word
    assert Reason.DNC_LOCAL == "dnc_local" and f"{Reason.DNC_LOCAL}" == "dnc_local"


@SLOW
@given(w=worlds, chunk=st.integers(1, 4))
def test_the_plan_walked_a_few_rows_at_a_time_is_the_plan_walked_whole(w: World,
                                                                      chunk: int) -> None:
    """`plan_columns` walks a big list in chunks of rows (memory): every column, values and
    types, is the one the walk of every row at once gives."""
    gate, contacts = world(w)
    whole = plan_columns(contacts, gate, w.at, chunk=len(contacts.frame) + 1)
    parts = plan_columns(contacts, gate, w.at, chunk=chunk)
    assert whole.keys() == parts.keys()
    for k, a in whole.items():
        b = parts[k]
        if isinstance(a, np.ndarray):
            assert a.dtype == b.dtype and np.array_equal(a, b), k
        else:
            assert a.type == b.type, k
            assert a.to_pylist() == b.to_pylist(), k
