"""The fate base and its overlay (`store.fate_base`): the store contract, on both backends.

Every row's fate is the base's (one Arrow table the engine writes whole) unless the overlay
(`fates`, the rows whose fate differs) has the row. `fates()`, `fate_table()` and
`fate_counts()` must tell the same story as a plain Python merge, on SQLite and PostgreSQL
(skipped without a server, failing under CI=true: see tests/pg_cluster.py).
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from campaign_dialer.store import Fate
from campaign_dialer.store.chunks import CHUNK_ROWS
from campaign_dialer.store.interface import JournalStore
from campaign_dialer.store.sqlite.journal import Journal

pytest_plugins = ["tests.pg_cluster"]

FIXED = ["row", "person", "disposition", "reason", "detail", "next_open"]
TEXT = pa.large_string()
EVIDENCE = ["zones", "local_times", "dnc_lists_checked"]


def _pg_journal(url: str, campaign: str) -> JournalStore:
    pytest.importorskip("psycopg")
    from campaign_dialer.store.postgres.journal import PgJournal

    return PgJournal.open(url, campaign)


@pytest.fixture(params=["sqlite", "postgresql"])
def open_journal(request: pytest.FixtureRequest, tmp_path: Path
                 ) -> Iterator[Callable[..., JournalStore]]:
    """Opens the same campaign's journal each call (a fresh object: nothing cached; with
    `again`, the one opened first)."""
    opened: list[JournalStore] = []
    url = request.getfixturevalue("pg_database") if request.param == "postgresql" else ""
    path = tmp_path / "c.journal.sqlite"

    def open_(again: bool = False) -> JournalStore:
        if not (again and opened):
            opened.append(_pg_journal(url, "c") if url else Journal(path, "c"))
        return opened[0] if again else opened[-1]
    yield open_
    for j in opened:
        j.close()


def base_table(fates: list[Fate], keys: list[str], *, coded: bool = False) -> pa.Table:
    """Fates as a base table (evidence keys as columns; `coded`: dictionary-encoded)."""
    cols: dict[str, Any] = {
        "row": pa.array([f.row for f in fates], pa.int64()),
        "person": pa.array([f.person for f in fates], TEXT),
        "disposition": pa.array([f.disposition for f in fates], TEXT),
        "reason": pa.array([f.reason for f in fates], TEXT),
        "detail": pa.array([f.detail for f in fates], TEXT),
        "next_open": pa.array([f.next_open for f in fates], TEXT),
    }
    for k in keys:
        cols[k] = pa.array([(f.evidence or {}).get(k) for f in fates], TEXT)
    if coded:
        cols = {c: (a if c in ("row", "person") else pc.dictionary_encode(a))
                for c, a in cols.items()}
    return pa.table(cols)


def expected_rows(fates: dict[int, Fate], keys: list[str]) -> list[dict[str, Any]]:
    """What `fate_table().to_pylist()` must be for these fates."""
    return [{"row": f.row, "person": f.person, "disposition": f.disposition,
             "reason": f.reason, "detail": f.detail, "next_open": f.next_open,
             **{k: (f.evidence or {}).get(k) for k in keys}}
            for _, f in sorted(fates.items())]


def counts_of(fates: dict[int, Fate]) -> dict[tuple[str, str], int]:
    return dict(Counter((f.disposition, f.reason or "") for f in fates.values()))


BASE = [
    Fate(1, "tel:+12125550101", "suppressed", "no_consent", None, None,
         {"zones": "America/New_York", "dnc_lists_checked": "dnc.csv"}),
    Fate(2, "tel:+12125550102", "pending", "not_dialed_yet", None,
         "2026-06-10T13:00:00.000Z", {"zones": "America/New_York",
                                       "local_times": "Wed 14:00 EDT"}),
    Fate(3, None, "suppressed", "invalid_phone", "row 3: not a number", None, None),
    Fate(4, "tel:+12125550104", "pending", None, "", None, {"zones": "America/Chicago"}),
    Fate(7, "tel:+12125550107", "suppressed", "dnc_local", None, None,
         {"dnc_lists_checked": "dnc.csv"}),
]


@pytest.mark.parametrize("coded", [False, True], ids=["plain", "dictionary"])
def test_a_base_round_trips_with_nulls_and_evidence(
    open_journal: Callable[..., JournalStore], coded: bool,
) -> None:
    j = open_journal()
    assert (j.fate_base(), j.fate_base_digest()) == (None, None)
    table = base_table(BASE, EVIDENCE, coded=coded)
    j.set_fate_base(table, "digest-1")
    j.close()

    j = open_journal()
    assert j.fate_base_digest() == "digest-1"
    kept = j.fate_base()
    assert kept is not None and kept.column_names == FIXED + EVIDENCE
    for c in kept.column_names:  # dictionary-encoded or not, the same values
        want = table[c] if c == "row" else pc.cast(table[c], TEXT)
        got = kept[c] if c == "row" else pc.cast(kept[c], TEXT)
        assert got.to_pylist() == want.to_pylist(), c
    assert j.fates() == {f.row: f for f in BASE}
    ft = j.fate_table()
    assert ft.column_names == FIXED + EVIDENCE
    assert all(ft[c].type == TEXT for c in ft.column_names if c != "row")
    assert ft.to_pylist() == expected_rows({f.row: f for f in BASE}, EVIDENCE)
    assert j.fate_counts() == counts_of({f.row: f for f in BASE})
    assert j.overlay_fates() == {}


def test_the_overlay_wins_and_dropping_it_brings_the_base_back(
    open_journal: Callable[..., JournalStore],
) -> None:
    j = open_journal()
    j.set_fate_base(base_table(BASE, EVIDENCE, coded=True), "d")
    dialed = Fate(2, "tel:+12125550102", "dialed", "completed", "", None,
                  {"zones": "America/New_York", "local_times": "Wed 14:05 EDT",
                   "caller_id": "pn_1"})
    extra = Fate(9, "tel:+12125550109", "pending", "unresolved", "lookup failed", None, None)
    j.set_fates([dialed, extra])
    want = {**{f.row: f for f in BASE}, 2: dialed, 9: extra}
    assert j.fates() == dict(sorted(want.items()))
    assert j.overlay_fates() == {2: dialed, 9: extra}
    # the base's evidence columns first, then the overlay's other keys
    assert j.fate_table().to_pylist() == expected_rows(want, [*EVIDENCE, "caller_id"])
    assert j.fate_counts() == counts_of(want)
    assert j.fate_counts() == dict(Counter((f.disposition, f.reason or "")
                                           for f in j.fates().values()))

    j.drop_fates([2, 9, 42])  # a row with no overlay fate: nothing to drop
    assert j.overlay_fates() == {}
    assert j.fates() == {f.row: f for f in BASE}
    assert j.fate_counts() == counts_of({f.row: f for f in BASE})
    j.drop_fates([])


def test_fates_mean_what_they_meant_when_every_row_was_in_the_fates_table(
    open_journal: Callable[..., JournalStore],
) -> None:
    """The same fates written the old way (every row in `fates`) and the new way (a base
    and an overlay of the rows that differ) read back the same through every reader."""
    dialed = Fate(1, "tel:+12125550101", "dialed", "no_answer", "", None,
                  {"zones": "America/New_York", "dnc_lists_checked": "dnc.csv"})
    final = {**{f.row: f for f in BASE}, 1: dialed}
    j = open_journal()
    j.set_fates(final.values())
    old = (j.fates(), j.fate_counts(), j.fate_table().to_pylist())
    j.drop_fates(final)
    j.set_fate_base(base_table(BASE, EVIDENCE), "d")
    j.set_fates([dialed])
    new = (j.fates(), j.fate_counts(), j.fate_table())
    assert old[0] == new[0] == final
    assert old[1] == new[1]
    # the overlay alone names only the keys its rows have; the base names all of its own
    assert new[2].select(list(old[2][0])).to_pylist() == old[2]


def test_a_journal_without_a_base_is_its_overlay(
    open_journal: Callable[..., JournalStore],
) -> None:
    j = open_journal()
    assert j.fates() == {} and j.fate_counts() == {}
    empty = j.fate_table()
    assert (empty.num_rows, empty.column_names) == (0, FIXED)
    j.set_fates([BASE[1], BASE[0]])
    assert j.fates() == {1: BASE[0], 2: BASE[1]}
    assert j.fate_table().to_pylist() == expected_rows(
        {1: BASE[0], 2: BASE[1]}, ["zones", "dnc_lists_checked", "local_times"])
    assert j.fate_counts() == counts_of({1: BASE[0], 2: BASE[1]})
    assert j.fate_base() is None and j.fate_base_digest() is None


def test_a_new_base_replaces_the_old_and_leaves_the_overlay(
    open_journal: Callable[..., JournalStore],
) -> None:
    j = open_journal()
    j.set_fate_base(base_table(BASE, EVIDENCE), "d1")
    held = Fate(4, "tel:+12125550104", "pending", "outside_window", "", None, None)
    j.set_fates([held])
    assert j.fate_base_digest() == "d1"
    second = [Fate(4, "tel:+12125550104", "pending", "not_dialed_yet", None, None, None),
              Fate(5, "tel:+12125550105", "suppressed", "consent_revoked", None, None,
                   {"consent": "2026-01-02"})]
    j.set_fate_base(base_table(second, ["consent"], coded=True), "d2")
    assert j.fate_base_digest() == "d2"
    assert j.overlay_fates() == {4: held}
    assert j.fates() == {4: held, 5: second[1]}
    other = open_journal()  # another process's view (nothing cached there)
    assert other.fates() == {4: held, 5: second[1]}
    assert other.fate_counts() == {("pending", "outside_window"): 1,
                                   ("suppressed", "consent_revoked"): 1}
    j.set_fate_base(base_table([], []), "empty")
    assert j.fates() == {4: held}
    assert other.fate_counts() == {("pending", "outside_window"): 1}
    base = other.fate_base()
    assert base is not None and base.num_rows == 0


def test_what_cannot_be_a_base_is_refused_and_the_kept_one_stays(
    open_journal: Callable[..., JournalStore],
) -> None:
    j = open_journal()
    j.set_fate_base(base_table(BASE, EVIDENCE), "d1")
    unsorted = base_table([BASE[1], BASE[0]], EVIDENCE)
    twice = base_table([BASE[0], BASE[0]], EVIDENCE)
    no_disposition = base_table(BASE, []).drop_columns(["disposition"])
    null_disposition = base_table(BASE, []).set_column(
        2, "disposition", pa.nulls(len(BASE), TEXT))
    numbers = base_table(BASE, []).append_column("attempts", pa.array([1] * len(BASE)))
    for bad in (unsorted, twice, no_disposition, null_disposition, numbers):
        with pytest.raises(ValueError):
            j.set_fate_base(bad, "bad")
    assert j.fate_base_digest() == "d1"
    assert j.fates() == {f.row: f for f in BASE}


def test_a_base_without_its_optional_columns_has_them_null(
    open_journal: Callable[..., JournalStore],
) -> None:
    j = open_journal()
    j.set_fate_base(pa.table({"row": pa.array([5, 6], pa.int32()),
                              "disposition": ["suppressed", "pending"]}), "d")
    assert j.fates() == {5: Fate(5, None, "suppressed"), 6: Fate(6, None, "pending")}


def test_a_big_base_is_read_as_columns_in_chunks(
    open_journal: Callable[..., JournalStore],
) -> None:
    """200,000 rows: several chunks; every reader but `fates` reads them as columns."""
    n = 200_000
    rng = np.random.default_rng(7)
    rows = np.arange(1, n + 1, dtype=np.int64)
    digits = rng.integers(0, 10**10, n)
    person = pc.binary_join_element_wise(
        "tel:+1", pc.utf8_lpad(pa.array(digits).cast(pa.string()), 10, "0"), "")
    kinds = [("suppressed", "no_consent"), ("pending", "not_dialed_yet"),
             ("suppressed", "dnc_local"), ("suppressed", "consent_revoked")]
    which = rng.choice(len(kinds), n, p=[0.6, 0.25, 0.1, 0.05]).astype(np.int32)
    disp = pa.DictionaryArray.from_arrays(
        pa.array([0 if k == "suppressed" else 1 for k, _ in kinds], pa.int32()).take(which),
        pa.array(["suppressed", "pending"], TEXT))
    reason = pa.DictionaryArray.from_arrays(pa.array(which),
                                            pa.array([r for _, r in kinds], TEXT))
    table = pa.table({
        "row": rows, "person": person.cast(TEXT), "disposition": disp, "reason": reason,
        "detail": pa.nulls(n, TEXT), "next_open": pa.nulls(n, TEXT),
        "zones": pa.DictionaryArray.from_arrays(
            pa.array(np.zeros(n, np.int32)), pa.array(["America/New_York"], TEXT)),
    })
    j = open_journal()
    j.set_fate_base(table, "big")
    j.set_fates([Fate(10, "tel:+10000000010", "dialed", "completed", "", None, None),
                 Fate(n + 5, "tel:+10000000011", "pending", "unresolved", "", None, None)])
    other = open_journal()
    kept = other.fate_base()
    assert kept is not None and kept.num_rows == n
    assert kept["reason"].num_chunks == -(-n // CHUNK_ROWS)
    ft = other.fate_table()
    assert ft.num_rows == n + 1
    assert ft["row"].to_numpy()[[0, 9, n - 1, n]].tolist() == [1, 10, n, n + 5]
    assert ft.slice(9, 1).to_pylist()[0]["disposition"] == "dialed"
    assert ft.slice(10, 1).to_pylist()[0]["person"] == person[10].as_py()
    want = Counter({kinds[k]: c for k, c in zip(*np.unique(which, return_counts=True),
                                                  strict=True)})
    want[kinds[int(which[9])]] -= 1
    want[("dialed", "completed")] += 1
    want[("pending", "unresolved")] += 1
    assert other.fate_counts() == dict(+want)


def test_a_journal_from_before_the_base_keeps_its_fates(tmp_path: Path) -> None:
    """A version-2 SQLite journal (every row in `fates`, no base tables) opens migrated and
    reads as it did: the overlay alone."""
    path = tmp_path / "c.journal.sqlite"
    j = Journal(path, "c")
    j.set_fates(BASE)
    j.close()
    with sqlite3.connect(path, isolation_level=None) as db:
        db.execute("DROP TABLE fate_base_chunks")
        db.execute("DROP TABLE fate_base")
        db.execute("UPDATE meta SET value='2' WHERE key='schema_version'")
    j = Journal(path, "c")
    try:
        assert j.fates() == {f.row: f for f in BASE}
        assert j.fate_counts() == counts_of({f.row: f for f in BASE})
        assert j.fate_base() is None
        j.set_fate_base(base_table(BASE[:1], []), "d")  # the new tables are there
        assert j.fate_base_digest() == "d"
    finally:
        j.close()


# -- the merge against a plain Python one, on random bases and overlays ----------------

_word = st.sampled_from(["a", "b", "", "é", "x y"])
_maybe = st.none() | _word


@st.composite
def _fate(draw: st.DrawFn, row: int, keys: list[str]) -> Fate:
    ev = {k: draw(_word) for k in keys if draw(st.booleans())}
    return Fate(row, draw(st.none() | st.just(f"tel:+1{row:010d}")),
                draw(st.sampled_from(["suppressed", "pending", "dialed"])), draw(_maybe),
                draw(_maybe), draw(st.none() | st.just("2026-06-10T13:00:00.000Z")),
                ev or None)


@st.composite
def _case(draw: st.DrawFn) -> tuple[list[Fate], list[str], list[Fate], bool]:
    keys = draw(st.lists(st.sampled_from(EVIDENCE), unique=True))
    base_rows = sorted(draw(st.sets(st.integers(1, 40), max_size=25)))
    base = [draw(_fate(r, keys)) for r in base_rows]
    over_rows = sorted(draw(st.sets(st.integers(1, 45), max_size=10)))
    overlay = [draw(_fate(r, [*EVIDENCE, "caller_id"])) for r in over_rows]
    return base, keys, overlay, draw(st.booleans())


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=_case())
def test_the_merge_is_the_plain_one(
    open_journal: Callable[..., JournalStore],
    case: tuple[list[Fate], list[str], list[Fate], bool],
) -> None:
    base, keys, overlay, coded = case
    j = open_journal(again=True)
    j.drop_fates(j.overlay_fates())
    j.set_fate_base(base_table(base, keys, coded=coded), "d")
    j.set_fates(overlay)
    want = {f.row: f for f in base} | {f.row: f for f in overlay}
    want = dict(sorted(want.items()))
    assert j.fates() == want
    assert j.fate_counts() == counts_of(want)
    extra = [k for k in [*EVIDENCE, "caller_id"]
             if k not in keys and any(k in (f.evidence or {}) for f in overlay)]
    ft = j.fate_table()
    assert ft.column_names == FIXED + keys + sorted(extra, key=ft.column_names.index)
    assert ft.to_pylist() == expected_rows(want, ft.column_names[len(FIXED):])


# -- readers that need counts or a few rows: the same figures from a base and an overlay --


def test_status_and_the_live_view_read_a_base_and_its_overlay(tmp_path: Path) -> None:
    from campaign_dialer.commands.state import status_data
    from campaign_dialer.config import load_campaign
    from campaign_dialer.monitor.view import live_view
    from campaign_dialer.store.access import control_journal

    from .e2e_support import write_campaign

    files = write_campaign(tmp_path / "c", contacts=[{"phone": "+12125550101"}], name="c")
    campaign = load_campaign(files.path)
    base = [*BASE, Fate(8, "tel:+12125550108", "pending", "outside_window", None,
                        "2026-06-10T09:00:00.000Z", None),
            Fate(9, "tel:+12125550109", "pending", "outside_window", None,
                 "2026-06-10T08:00:00.000Z", None)]
    overlay = [Fate(9, "tel:+12125550109", "dialed", "completed", "", None, None),
               Fate(2, "tel:+12125550102", "pending", "redial_scheduled", "attempt 2",
                    "2026-06-10T11:00:00.000Z", None)]
    with control_journal(campaign) as j:
        j.set_fate_base(base_table(base, EVIDENCE, coded=True), "d")
        j.set_fates(overlay)
        fates = j.fates()
        data = status_data(j, campaign)
        view = live_view(j, campaign.model, now=datetime(2026, 6, 9, 17, tzinfo=UTC),
                         expected_call_s=60.0, running=False)
    by_disp = Counter(f.disposition for f in fates.values())
    pending = [f for f in fates.values() if f.disposition == "pending"]
    opens = [f.next_open for f in pending if f.next_open]
    assert min(opens) == "2026-06-10T09:00:00.000Z"  # row 9's earlier one was overlaid
    assert data["rows"] == view["progress"]["rows"] == len(fates) == 7
    assert data["by_disposition"] == dict(by_disp)
    assert {(r["disposition"], r["reason"] or ""): r["rows"] for r in data["by_reason"]} == (
        counts_of(fates))
    assert data["next_window_at"] == view["next_window_at"] == min(opens)
    assert view["progress"]["by_disposition"] == dict(sorted(by_disp.items()))
    assert view["progress"]["waiting"] == dict(
        Counter(f.reason or "not_dialed_yet" for f in pending))


def test_a_damaged_base_is_said_never_taken_for_none(tmp_path: Path) -> None:
    """A base whose chunks cannot be read would lose every undialed row's fate: an error
    naming the journal, not an empty base."""
    from campaign_dialer.store import JournalError

    path = tmp_path / "c.journal.sqlite"
    with Journal(path, "c") as j:
        j.set_fate_base(base_table(BASE, EVIDENCE), "d")
    with sqlite3.connect(path, isolation_level=None) as db:
        db.execute("UPDATE fate_base_chunks SET data = x'00ff'")
    with Journal(path, "c") as j, pytest.raises(JournalError, match="fate base") as e:
        j.fate_counts()
    assert str(path) in str(e.value)
    with Journal(path, "c") as j:  # written again: read again
        j.set_fate_base(base_table(BASE, EVIDENCE), "d")
        assert j.fates() == {f.row: f for f in BASE}
    with sqlite3.connect(path, isolation_level=None) as db:
        db.execute("UPDATE fate_base SET rows = 99, version = 'another'")
    with Journal(path, "c") as j, pytest.raises(JournalError, match="5 rows read, 99 kept"):
        j.fates()


@pytest.mark.parametrize("with_base", [True, False], ids=["base", "overlay-only"])
def test_fate_slices_are_the_fate_table_a_range_of_rows_at_a_time(
    open_journal: Callable[..., JournalStore], with_base: bool,
) -> None:
    """`fate_slices().between` over consecutive ranges: `fate_table`'s rows, columns and
    cells (the overlay's rows and its other keys where they fall); `of_persons` its rows of
    those people; `columns` only those columns."""
    j = open_journal()
    if with_base:
        j.set_fate_base(base_table(BASE, EVIDENCE, coded=True), "d")
    else:
        j.set_fates(BASE)
    dialed = Fate(2, "tel:+12125550102", "dialed", "completed", "", None,
                  {"zones": "America/New_York", "caller_id": "pn_1"})
    extra = Fate(9, "tel:+12125550109", "pending", "unresolved", "lookup failed", None, None)
    j.set_fates([dialed, extra])
    whole = j.fate_table()
    slices = j.fate_slices()  # type: ignore[attr-defined]
    assert slices.column_names == whole.column_names
    for edges in ([0, 100], [0, 2, 3, 9, 10], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10], [-5, 4, 50]):
        parts = [slices.between(lo, hi) for lo, hi in zip(edges, edges[1:], strict=False)]
        assert pa.concat_tables(parts).equals(whole), edges
    assert slices.between(5, 7).num_rows == 0  # no fate there: no row
    some = slices.between(0, 100, ["zones", "reason"])
    assert some.column_names == [c for c in whole.column_names
                                 if c in ("row", "reason", "zones")]
    assert some.to_pylist() == whole.select(some.column_names).to_pylist()
    people = pa.array(["tel:+12125550102", "tel:+12125550107"], TEXT)
    assert slices.of_persons(people).to_pylist() == [
        r for r in whole.to_pylist() if r["person"] in people.to_pylist()]
    # the slices hold what was read: a fate written after them is not in them
    j.set_fates([Fate(2, "tel:+12125550102", "dialed", "busy", "", None, None)])
    assert slices.between(2, 3).column("reason").to_pylist() == ["completed"]
