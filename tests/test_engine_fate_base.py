"""The fate base: every row's fate as the plan implies it, computed at once (engine.columns).

It must say of every row what `row_fate` says of a row with no attempt and no dial-time
verdict, under every control state, a budget that holds the rows and a worn-out caller-ID
pool; the engine keeps a fate of a row's own only where it differs.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from campaign_dialer import vocab
from campaign_dialer.engine import PersonIndex, row_fate
from campaign_dialer.engine.callerid import EXHAUSTED
from campaign_dialer.engine.columns import (
    Untouched,
    coded,
    codes_in,
    columns_of,
    digest_of,
    evidence_coded,
    fate_at,
    fate_base,
    same_fate,
    text,
)
from campaign_dialer.planning import PlannedRow
from campaign_dialer.store import Fate, iso

NOW = datetime(2026, 6, 10, 18, 0, tzinfo=UTC)
VERDICTS = [
    (vocab.ELIGIBLE, None, ""),
    (vocab.SUPPRESSED, "dnc_local", "listed in dnc.csv"),
    (vocab.SUPPRESSED, "no_consent", ""),
    (vocab.SUPPRESSED, "invalid_phone", "not a number"),  # a contacts-stage reason
    (vocab.SUPPRESSED, "duplicate", "duplicate_of=1"),  # the contacts stage's own
    (vocab.PENDING, "outside_window", "opens 09:00"),
    (vocab.PENDING, "zone_unknown", ""),
]


@st.composite
def plans(draw: Any) -> list[PlannedRow]:
    n = draw(st.integers(0, 30))
    rows = []
    for i in range(n):
        d, reason, detail = draw(st.sampled_from(VERDICTS))
        person = draw(st.sampled_from([None, "tel:+12125550100", "tel:+12125550101",
                                       "cid:C-7", f"tel:+1212555{i:04d}"]))
        nxt = (NOW + timedelta(minutes=draw(st.integers(1, 600)))
               if d == vocab.PENDING and draw(st.booleans()) else None)
        ev = draw(st.dictionaries(st.sampled_from(["zones", "local_times", "consent_source"]),
                                  st.sampled_from(["", "America/New_York", "Wed 14:00", "crm"]),
                                  max_size=3))
        rows.append(PlannedRow(
            row=i * 2 + 1, order=i, person=person,
            phone_e164=person[4:] if person and person.startswith("tel:") else None,
            contact_id=person[4:] if person and person.startswith("cid:") else None,
            tz_hint=None, disposition=d, reason=reason, detail=detail, next_open=nxt,
            evidence={k: v for k, v in ev.items() if v},
        ))
    return rows


modes = st.builds(
    Untouched,
    control=st.sampled_from(["active", "paused", "canceled"]),
    held=st.one_of(st.none(), st.just(("budget_reached", "the day's budget is spent",
                                       iso(NOW + timedelta(hours=15))))),
    exhausted=st.one_of(st.none(), st.just(("every caller ID is at its cap",
                                            iso(NOW + timedelta(hours=1))))),
)


def expected(rows: list[PlannedRow], mode: Untouched) -> list[Fate]:
    """`row_fate` of each row with no attempt, and the run's overrides (as the engine had
    them before the base: the budget, then the caller-ID pool, over `not_dialed_yet`)."""
    by_person: dict[str, PlannedRow] = {}
    for r in rows:
        if r.person and not r.contact_suppressed and r.person not in by_person:
            by_person[r.person] = r
    out = []
    for r in rows:
        f = row_fate(r, [], by_person, None, NOW, mode.control, None, None)  # type: ignore[arg-type]
        if mode.held is not None and f.reason == "not_dialed_yet":
            f = Fate(f.row, f.person, vocab.PENDING, *mode.held, f.evidence)
        if mode.exhausted is not None and f.reason == "not_dialed_yet":
            f = Fate(f.row, f.person, vocab.PENDING, EXHAUSTED, *mode.exhausted, f.evidence)
        out.append(f)
    return out


def base_of(rows: list[PlannedRow], mode: Untouched) -> Any:
    cols = columns_of(rows)
    index = PersonIndex(rows, cols.dial())
    first = index.positions_of(text(cols.person))
    first_of = np.where(first >= 0, cols.row[np.maximum(first, 0)], -1)
    return fate_base(cols, index.first_positions(), first_of, mode, EXHAUSTED)


@settings(max_examples=150, deadline=None)
@given(plans(), modes)
def test_the_base_says_what_row_fate_says_of_every_row_nobody_dialed(
    rows: list[PlannedRow], mode: Untouched,
) -> None:
    base = base_of(rows, mode)
    assert base.num_rows == len(rows)
    for pos, want in enumerate(expected(rows, mode)):
        got = fate_at(base, pos)
        assert same_fate(got, want), (pos, got, want)


def test_a_duplicate_names_the_row_that_dials_and_an_empty_plan_has_no_rows() -> None:
    rows = [
        PlannedRow(3, 0, "tel:+12125550100", "+12125550100", None, None, vocab.ELIGIBLE,
                   None, "", None),
        PlannedRow(5, 1, "tel:+12125550100", "+12125550100", None, None, vocab.ELIGIBLE,
                   None, "", None),
    ]
    base = base_of(rows, Untouched())
    assert fate_at(base, 0).reason == "not_dialed_yet"
    dup = fate_at(base, 1)
    assert (dup.disposition, dup.reason, dup.detail) == (vocab.SUPPRESSED, "duplicate",
                                                         "duplicate_of=3")
    assert base_of([], Untouched()).num_rows == 0


people_keys = st.one_of(
    st.none(),
    st.sampled_from(["tel:+12125550100", "tel:+12125550101", "tel:+447700900123",
                     "tel:+0123", "tel:12125550100", "tel:+1٢3", "cid:C-7", "cid:", "cid:9"]),
    st.integers(1, 10**15 - 1).map(lambda k: f"tel:+{k}"),
    st.text(max_size=6).map(lambda t: f"cid:{t}"),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(people_keys, st.booleans()), max_size=40))
def test_the_person_index_answers_as_a_dict_of_first_rows(
    entries: list[tuple[str | None, bool]],
) -> None:
    """Which row dials for each person (the first not held back by the contacts stage),
    asked one at a time and all at once, as the engine's dict answered it."""
    rows = [PlannedRow(i + 1, i, p, None, None, None, vocab.SUPPRESSED if held
                       else vocab.ELIGIBLE, "invalid_phone" if held else None, "", None)
            for i, (p, held) in enumerate(entries)]
    want: dict[str, int] = {}
    for i, r in enumerate(rows):
        if r.person and not r.contact_suppressed and r.person not in want:
            want[r.person] = i
    index = PersonIndex(rows, columns_of(rows).dial())
    assert dict((p, index.position(p)) for p in index) == want
    assert len(index) == len(want)
    for p, _ in entries:
        if p is not None:
            assert index.position(p) == want.get(p)
            assert (p in index) == (p in want)
    got = index.positions_of(text(columns_of(rows).person))
    assert got.tolist() == [want.get(p, -1) if p else -1 for p, _ in entries]
    assert index.first_positions().tolist() == sorted(want.values())


_LABELS = st.sampled_from(["", "a", "b", "é", "2026-01-01T00:00:00+00:00"])


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.one_of(st.none(), _LABELS), max_size=6),
    st.lists(st.integers(min_value=-1, max_value=8), max_size=15),
    st.sampled_from(["plain", "dictionary", "chunked"]),
)
def test_evidence_in_the_fate_base_is_coded_as_before(
    labels: list[str | None], picks: list[int], kind: str
) -> None:
    # the fate base's evidence columns, coded on their dictionary (no Python string per
    # entry): the same array, buffers and digest as `coded` of their codes and labels, ""
    # read as missing; dictionaries with repeats, nulls, "" and unused entries included
    entries = labels or ["x"]
    at = [p if 0 <= p < len(entries) else None for p in picks]
    if kind == "dictionary":
        arr: Any = pa.DictionaryArray.from_arrays(pa.array(at, pa.int32()),
                                                  pa.array(entries, pa.large_string()))
    else:
        values = [None if p is None else entries[p] for p in at]
        arr = pa.array(values, pa.large_string())
        if kind == "chunked":
            arr = pa.chunked_array([arr.slice(0, len(values) // 2),
                                    arr.slice(len(values) // 2)])
    codes, found = codes_in(arr)
    want = coded(codes, [v if v else None for v in found])
    got = evidence_coded(arr)
    assert got.equals(want)
    assert got.to_pylist() == [None if p is None or not entries[p] else entries[p] for p in at]
    assert digest_of(pa.table({"e": got})) == digest_of(pa.table({"e": want}))
