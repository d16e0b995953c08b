"""The stored plan's row source (#25 stream the rows): it offers exactly the rows the
schedule's first fill (`seed`) would, in the schedule's order, and finds each person's dialing
row as the engine's `rows_by_person` does, without making a row it does not hand out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from campaign_dialer.compliance import EVIDENCE_KEYS
from campaign_dialer.engine.schedule import seed
from campaign_dialer.engine.stored_plan import NO_TIME, DialColumns, StoredPlanSource
from campaign_dialer.planning import PlanRows, decode_plan, encode_plan
from campaign_dialer.store import Attempt

NOW = datetime(2026, 6, 10, 17, 0, tzinfo=UTC)
REASONS = {
    "eligible": [None],
    "pending": ["outside_calling_hours", "unknown_timezone", "recent_call_other_campaign"],
    "suppressed": ["dnc_local", "no_consent", "blank_phone", "duplicate", "dnc_flag",
                   "invalid_phone"],
}


class FirstAttempt:
    """The redial policy's answer for people without attempts (all the source decides)."""

    def next(self, row: Any, attempts: list[Attempt], now: datetime) -> tuple[int, None] | None:
        return (1, None) if not attempts else None


row_st = st.tuples(
    st.one_of(st.none(), st.sampled_from([f"+1212555{n:04d}" for n in range(8)])),
    st.one_of(st.none(), st.sampled_from(["c1", "c2", "c3"])),
    st.sampled_from(sorted(REASONS)),
    st.integers(0, 10),
    st.one_of(st.none(), st.integers(-120, 600)),  # minutes from NOW
)


def plan_rows(spec: list[tuple[Any, ...]]) -> PlanRows:
    n = len(spec)
    disp = [d for _, _, d, _, _ in spec]
    reason = [REASONS[d][k % len(REASONS[d])] for _, _, d, k, _ in spec]
    nxt = [
        NO_TIME if m is None or d != "pending"
        else int((NOW + timedelta(minutes=m)).timestamp()) * 1_000_000_000
        for _, _, d, _, m in spec
    ]
    text = pa.large_string()
    cols: dict[str, Any] = {
        "row": np.arange(1, n + 1, dtype=np.int64),
        "phone": pa.array([p for p, *_ in spec], text),
        "cid": pa.array([c for _, c, *_ in spec], text),
        "hint": pa.array(["America/New_York"] * n, text),
        "others": pa.nulls(n, text),
        "disposition": pa.array(disp, text), "reason": pa.array(reason, text),
        "detail": pa.array([""] * n, text), "next_open": np.array(nxt, dtype=np.int64),
        **{k: pa.array(["x" if i % 2 else None for i in range(n)], text)
           for k in EVIDENCE_KEYS},
    }
    return PlanRows(cols, list(EVIDENCE_KEYS), n)


def engine_rows_by_person(rows: list[Any]) -> dict[str, Any]:
    """As `EngineBase.__init__` builds it."""
    out: dict[str, Any] = {}
    for r in rows:
        if r.person and not r.contact_suppressed and r.person not in out:
            out[r.person] = r
    return out


@settings(max_examples=150, deadline=None)
@given(st.lists(row_st, max_size=40))
def test_the_source_offers_what_seed_schedules_in_its_order(spec: list[Any]) -> None:
    rows = decode_plan(encode_plan(plan_rows(spec), "fp"))  # as a run reads it back
    source = StoredPlanSource(rows, DialColumns(**rows.dial_columns()))
    assert rows._made == {}  # no row made to build it
    people = source.people
    engine_rows = list(plan_rows(spec))
    expected_people = engine_rows_by_person(engine_rows)

    seeded = seed(engine_rows, expected_people, {}, "active", FirstAttempt(), NOW)
    want = sorted(((nb.timestamp() if nb else 0.0), r.order, r.row) for r, nb in seeded)
    due_now = sum(1 for ts, _, _ in want if ts <= NOW.timestamp())
    assert source.due_count(NOW) == due_now and len(source) == len(want)
    got = []
    while batch := source.take(NOW, 3):  # in batches
        got += batch
    assert len(got) == due_now
    assert source.left() == len(want) - due_now
    nxt = source.next_due()
    assert (nxt is None) == (due_now == len(want))
    got += source.take_all(10_000)
    assert [r.row for r in got] == [row for _, _, row in want]
    assert source.left() == 0 and source.next_due() is None and source.take(NOW, 5) == []
    made = set(rows._made)
    assert made == {r.order for r in got}  # only the rows handed out were made
    assert sorted(people) == sorted(expected_people)
    assert {p: people[p].row for p in people} == {p: r.row for p, r in expected_people.items()}
    assert all(people[p] is rows[people[p].order] for p in people)  # one object per row
    assert people.get("tel:+19999999999") is None


def test_people_with_attempts_are_offered_whatever_the_plan_said() -> None:
    spec = [("+12125550001", None, "suppressed", 0, None),
            ("+12125550002", None, "eligible", 0, None)]
    rows = plan_rows(spec)
    source = StoredPlanSource(rows, DialColumns(**rows.dial_columns()),
                              attempted={"tel:+12125550001"})
    assert [r.row for r in source.take(NOW, 10)] == [1, 2]


def test_an_empty_plan() -> None:
    rows = plan_rows([])
    source = StoredPlanSource(rows, DialColumns(**rows.dial_columns()))
    assert len(source) == 0 and source.next_due() is None and source.take(NOW, 1) == []
    assert len(source.people) == 0 and "tel:+1" not in source.people


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["pending", "suppressed", "called"]),
                          st.sampled_from([None, "dnc", "no_consent", "duplicate", ""])),
                max_size=40),
       st.booleans(), st.integers(min_value=1, max_value=7))
def test_plan_counts_are_the_rows_by_disposition_and_reason(
    rows: list[tuple[str, str | None]], encoded: bool, slice_rows: int
) -> None:
    # check's "by reason" table, counted a slice at a time on the codes: every row counted
    # once under its (disposition, reason or ""), however the slices fall
    import collections

    import campaign_dialer.planning as planning

    disp = pa.array([d for d, _ in rows], pa.large_string())
    why = pa.array([r for _, r in rows], pa.large_string())
    if encoded:
        disp, why = disp.dictionary_encode(), why.dictionary_encode()
    plan = PlanRows({"disposition": disp, "reason": why}, [], len(rows))
    want = collections.Counter((d, r or "") for d, r in rows)
    old = planning.ENCODE_ROWS
    planning.ENCODE_ROWS = slice_rows
    try:
        assert plan.counts() == dict(want)
    finally:
        planning.ENCODE_ROWS = old
