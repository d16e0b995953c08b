"""The store interface's contract, checked against every backend.

Each backend is a `Backend` factory (how to open its journal and history, how to read or
force its schema version); SQLite is the only one here now. A PostgreSQL backend adds a
factory to BACKENDS (skipped locally when no server, failing under CI=true) and must pass
every test unchanged.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from campaign_dialer.exitcodes import ExitCode
from campaign_dialer.store import (
    CallerIdFacts,
    CallerIdRequest,
    CallerPick,
    Claim,
    DuplicateAttempt,
    Fate,
    JournalError,
    SchemaTooNew,
    SqliteHistory,
)
from campaign_dialer.store.interface import HistoryStore, JournalStore
from campaign_dialer.store.sqlite import history as sqlite_history
from campaign_dialer.store.sqlite import journal as sqlite_journal

from .e2e_support import numbers, run_cli, write_campaign

T0 = datetime(2026, 6, 9, 17, 0, tzinfo=UTC)


@dataclass
class Backend:
    """How the contract tests reach one backend's stores (a fresh, empty place each)."""

    name: str
    journal: Callable[[str], JournalStore]  # campaign -> open journal (created if absent)
    history: Callable[[], HistoryStore]
    # (which: "journal" | "history") -> the stored schema version / force one / the code's
    schema_version: Callable[[str], int]
    force_schema_version: Callable[[str, int], None]
    code_version: Callable[[str], int]
    # Turn the stored schema back into the previous version's shape (for the migration test).
    make_previous_version: Callable[[str], None]
    # Something only the current version has (e.g. an index), true once migrated.
    has_current_shape: Callable[[str], bool]


def _sqlite(tmp: Path) -> Backend:
    jpath, hpath = tmp / "c.journal.sqlite", tmp / "history.sqlite"
    files = {"journal": jpath, "history": hpath}
    shapes = {"journal": "fate_base_chunks", "history": "calls_from"}
    # What each file's latest migration added, undone to make the previous version.
    undo = {
        "journal": ("DROP TABLE fate_base_chunks", "DROP TABLE fate_base"),
        "history": ("DROP INDEX calls_from", "DROP TABLE caller_id_rests",
                    "ALTER TABLE calls DROP COLUMN from_id",
                    "ALTER TABLE calls DROP COLUMN from_number",
                    "ALTER TABLE calls DROP COLUMN duration_s"),
    }

    def sql(which: str, stmt: str, params: tuple[Any, ...] = ()) -> list[Any]:
        with sqlite3.connect(files[which], isolation_level=None) as db:
            return db.execute(stmt, params).fetchall()

    def force(which: str, v: int) -> None:
        sql(which, "UPDATE meta SET value=? WHERE key='schema_version'", (str(v),))

    def previous(which: str) -> None:
        for stmt in undo[which]:
            sql(which, stmt)
        force(which, {"journal": sqlite_journal.SCHEMA_VERSION,
                      "history": sqlite_history.SCHEMA_VERSION}[which] - 1)

    return Backend(
        name="sqlite",
        journal=lambda campaign: sqlite_journal.Journal(jpath, campaign),
        history=lambda: SqliteHistory(hpath),
        schema_version=lambda which: int(
            sql(which, "SELECT value FROM meta WHERE key='schema_version'")[0][0]
        ),
        force_schema_version=force,
        code_version=lambda which: {"journal": sqlite_journal.SCHEMA_VERSION,
                                    "history": sqlite_history.SCHEMA_VERSION}[which],
        make_previous_version=previous,
        has_current_shape=lambda which: bool(sql(
            which, "SELECT 1 FROM sqlite_master WHERE type IN ('index', 'table') AND name=?",
            (shapes[which],),
        )),
    )


BACKENDS: dict[str, Callable[[Path], Backend]] = {"sqlite": _sqlite}


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    yield BACKENDS[request.param](tmp_path)


def _intent(j: JournalStore, person: str, attempt: int = 1, row: int = 1, key: str = "") -> Any:
    return j.record_intent(
        person=person, row=row, attempt=attempt, idem_key=key or f"k-{person}-{attempt}",
        body={"to": person, "agent_id": "agt_1"}, evidence={"local_times": "12:00"},
        run_id=None,
    )


# -- the journal ------------------------------------------------------------------------


def test_one_intent_per_person_and_attempt_and_per_key(backend: Backend) -> None:
    j = backend.journal("c")
    try:
        first = _intent(j, "tel:+12125550100")
        with pytest.raises(DuplicateAttempt):
            _intent(j, "tel:+12125550100", key="another-key")
        with pytest.raises(DuplicateAttempt):  # a key is never reused by another person
            _intent(j, "tel:+12125550101", key=first.idem_key)
        second = _intent(j, "tel:+12125550100", attempt=2)
        assert [a.id for a in j.attempts()] == [first.id, second.id]
        assert [a.attempt for a in j.attempts_for("tel:+12125550100")] == [1, 2]
    finally:
        j.close()


def test_intents_from_many_threads_record_each_attempt_once(backend: Backend) -> None:
    j = backend.journal("c")
    people = [f"tel:{p}" for p in numbers(40)]
    won: list[str] = []
    lost: list[str] = []
    barrier = threading.Barrier(4)

    def worker(i: int) -> None:
        barrier.wait()
        for p in people:
            try:
                _intent(j, p, key=f"k{i}-{p}")
                won.append(p)
            except DuplicateAttempt:
                lost.append(p)

    try:
        threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(won) == sorted(people) and len(lost) == 3 * len(people)
        assert len(j.attempts()) == len(people)
    finally:
        j.close()


def test_what_was_written_is_there_after_close_and_reopen(backend: Backend) -> None:
    j = backend.journal("c")
    run = j.begin_run()
    a = _intent(j, "tel:+12125550100", row=3)
    j.count_post(a.id)
    j.record_placed(a.id, call_id="call_1", http_status=201, status="initiated", placed_at=None)
    j.record_final(a.id, status="completed", outcome="qualified", ended_reason="hangup",
                   ended_at="2026-06-09T17:01:00.000Z", duration_seconds=42.5,
                   recording_url=None, transcript="hello there", call_id="call_1")
    b = _intent(j, "tel:+12125550101", row=4)
    j.record_unresolved(b.id, error="lookup failed")
    j.set_fates([Fate(3, "tel:+12125550100", "dialed", "completed"),
                 Fate(4, "tel:+12125550101", "pending", "unresolved", detail="a person decides")])
    assert j.add_webhook_event(call_id="call_1", event="call.ended", status="completed",
                               body_sha256="ab", data="{}")
    j.add_http_events([(1.0, run, "POST", "/v1/calls", 201, None, 0.05, None)])
    j.set_meta("last_exit_code", "0")
    j.end_run(run, 0, {"placed": 1})
    j.close()

    j = backend.journal("c")
    try:
        got = j.attempt(a.id)
        assert (got.state, got.status, got.outcome, got.posts, got.call_id) == (
            "final", "completed", "qualified", 1, "call_1")
        assert got.body == {"to": "tel:+12125550100", "agent_id": "agt_1"}
        assert j.attempt(b.id).state == "unresolved"
        assert j.transcripts() == [{"call_id": "call_1", "row": 3, "person": "tel:+12125550100",
                                    "text": "hello there"}]
        assert [e["status"] for e in j.webhook_events("call_1")] == ["completed"]
        assert not j.add_webhook_event(call_id="call_1", event="call.ended",
                                       status="completed", body_sha256="ab", data="{}")
        assert j.fates()[4].detail == "a person decides"
        assert j.fate_counts() == {("dialed", "completed"): 1, ("pending", "unresolved"): 1}
        assert j.get_meta("last_exit_code") == "0"
        assert [(r["id"], r["exit_code"]) for r in j.runs()] == [(run, 0)]
        [tally] = j.http_tally()
        assert (tally.method, tally.status, tally.events) == ("POST", 201, 1)
        with j.snapshot():
            facts = j.call_facts()
        assert [(f.row, f.state, f.agent_id, f.local_times) for f in facts] == [
            (3, "final", "agt_1", "12:00"), (4, "unresolved", "agt_1", "12:00")]
        released = j.release(rows=[4], as_called=False)
        assert [r.state for r in released] == ["not_placed"]
    finally:
        j.close()


def test_a_journal_belongs_to_one_campaign(backend: Backend) -> None:
    backend.journal("c").close()
    with pytest.raises(JournalError, match="belongs to campaign 'c'"):
        backend.journal("other")


def test_fates_are_upserted_by_row(backend: Backend) -> None:
    j = backend.journal("c")
    try:
        j.set_fates([Fate(1, None, "pending", "not_planned"),
                     Fate(2, "tel:+1", "suppressed", "dnc_local", evidence={"zones": "x"})])
        j.set_fates([Fate(1, "tel:+2", "dialed", "completed", next_open=None)])
        fates = j.fates()
        assert (fates[1].disposition, fates[1].person) == ("dialed", "tel:+2")
        assert fates[2].evidence == {"zones": "x"}
    finally:
        j.close()


def test_control_states_and_a_cancel_is_final(backend: Backend) -> None:
    j = backend.journal("c")
    try:
        assert j.control() == "active"
        j.set_control("paused")
        other = backend.journal("c")  # another process (status, pause) sees it at once
        assert other.control() == "paused"
        other.set_control("active")
        other.close()
        assert j.control() == "active"
        with pytest.raises(ValueError):
            j.set_control("stopped")
        j.set_control("canceled")
        with pytest.raises(JournalError, match="stays canceled"):
            j.set_control("active")
        assert j.control() == "canceled"
    finally:
        j.close()


def test_a_twin_shares_the_journal_and_closes_alone(backend: Backend) -> None:
    """`twin()` (the webhook sink's and the monitor's journal): the same facts both ways,
    and closing it leaves the engine's journal open."""
    j = backend.journal("c")
    try:
        a = _intent(j, "tel:+15550100001")
        twin = j.twin()
        assert twin.campaign == "c" and twin.attempt(a.id).person == "tel:+15550100001"
        assert twin.add_webhook_event(call_id="call_1", event="call.ended", status="completed",
                                      body_sha256="x", data="{}")
        twin.set_meta("k", "v")
        twin.close()
        assert [e["event"] for e in j.webhook_events("call_1")] == ["call.ended"]
        assert j.get_meta("k") == "v"
        assert not j.add_webhook_event(call_id="call_1", event="call.ended",
                                       status="completed", body_sha256="x", data="{}")
    finally:
        j.close()


def test_import_attempts_skips_what_the_journal_has(backend: Backend) -> None:
    j = backend.journal("c")
    try:
        a = _intent(j, "tel:+12125550100")
        records = j.attempt_records()
        lost = {**records[0], "person": "tel:+12125550199", "idem_key": "k-lost", "row": 9}
        assert j.import_attempts([records[0], lost]) == 1
        assert j.import_attempts([records[0], lost]) == 0
        assert {x.person for x in j.attempts()} == {a.person, "tel:+12125550199"}
    finally:
        j.close()


# -- the schema version -------------------------------------------------------------------


@pytest.mark.parametrize("which", ["journal", "history"])
def test_a_newer_schema_is_refused_with_78_and_left_alone(backend: Backend, which: str) -> None:
    opener: Callable[[], Any] = (lambda: backend.journal("c")) if which == "journal" \
        else backend.history
    opener().close()
    newer = backend.code_version(which) + 1
    backend.force_schema_version(which, newer)
    with pytest.raises(SchemaTooNew) as e:
        opener()
    assert e.value.exit_code == ExitCode.CONFIG == 78
    assert "upgrade campaign-dialer" in str(e.value)
    assert backend.schema_version(which) == newer


@pytest.mark.parametrize("which", ["journal", "history"])
def test_an_older_schema_is_migrated_forward_keeping_its_data(
    backend: Backend, which: str
) -> None:
    if which == "journal":
        j = backend.journal("c")
        _intent(j, "tel:+12125550100")
        j.close()
    else:
        h = backend.history()
        h.add_dnc("+12125550100", reason="opt_out", campaign="c", evidence="e", at=T0)
        h.close()
    backend.make_previous_version(which)
    assert not backend.has_current_shape(which)
    if which == "journal":
        j = backend.journal("c")
        assert [a.person for a in j.attempts()] == ["tel:+12125550100"]
        j.close()
    else:
        h = backend.history()
        assert h.is_dnc("+12125550100")
        h.close()
    assert backend.schema_version(which) == backend.code_version(which)
    assert backend.has_current_shape(which)


def test_status_on_a_journal_from_a_newer_dialer_exits_78(tmp_path: Path) -> None:
    path = str(write_campaign(tmp_path / "c", contacts=[{"phone": p} for p in numbers(2)]).path)
    assert run_cli("cancel", path).returncode == 0
    [journal] = (tmp_path / "c").rglob("*.journal.sqlite")
    with sqlite3.connect(journal, isolation_level=None) as db:
        db.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    r = run_cli("status", path)
    assert r.returncode == 78, r.stderr
    assert "schema version 99" in r.stderr and "Traceback" not in r.stderr


# -- the contact history ------------------------------------------------------------------


def _claim(h: HistoryStore, campaign: str, person: str, at: datetime, attempt: int = 1,
           min_hours: float = 24.0) -> Any:
    return h.claim(
        campaign=campaign, person=person, phone_e164=person[4:], contact_id=None,
        attempt=attempt, idem_key=f"{campaign}-{person}-{attempt}",
        record={"person": person, "row": 1, "attempt": attempt, "body": "{}"},
        at=at, min_hours=min_hours, state_limit=None,
    )


def test_claims_are_atomic_and_follow_the_cross_campaign_rule(backend: Backend) -> None:
    people = [f"tel:{p}" for p in numbers(30)]
    wins: dict[str, list[str]] = {}
    barrier = threading.Barrier(3)

    def worker(campaign: str) -> None:
        h = backend.history()  # each its own connection, like another process
        try:
            barrier.wait()
            wins[campaign] = [p for p in people if _claim(h, campaign, p, T0).ok]
        finally:
            h.close()

    threads = [threading.Thread(target=worker, args=(c,)) for c in ("a", "b", "c")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    won = [p for ps in wins.values() for p in ps]
    assert sorted(won) == sorted(people)  # each person to exactly one campaign

    h = backend.history()
    try:
        p = people[0]
        owner = next(c for c, ps in wins.items() if p in ps)
        again = _claim(h, owner, p, T0)
        assert (again.ok, again.reason) == (False, "already_called")
        other = next(c for c in "abc" if c != owner)
        held = _claim(h, other, p, T0 + timedelta(hours=1))
        assert (held.ok, held.reason) == (False, "recently_called")
        assert held.next_open == T0 + timedelta(hours=24)
        assert _claim(h, other, p, T0 + timedelta(hours=25)).ok
        assert len(h.records(owner)) == len(wins[owner])
        assert p in h.recent_calls(T0 - timedelta(seconds=1))
    finally:
        h.close()


def _pool_request(pool: dict[str, int], record: dict[str, Any]) -> CallerIdRequest:
    """A caller-ID request that takes the least-used number under a per-day cap (the store
    runs it in the claim's transaction), or refuses: enough of a chooser for the contract."""

    def choose(facts: CallerIdFacts) -> CallerPick | Claim:
        free = [n for n, cap in pool.items() if len(facts.recent.get(n, ())) < cap
                and n not in facts.resting]
        if facts.sticky_id in free:
            return CallerPick(facts.sticky_id, "+1555", "sticky")
        if not free:
            return Claim(False, "caller_ids_exhausted", "all capped")
        best = min(free, key=lambda n: len(facts.recent.get(n, ())))
        return CallerPick(best, "+1555", "pool")

    def amend(pick: CallerPick) -> tuple[str, dict[str, Any]]:
        return record["idem_key"], {**record, "body": json.dumps({"from_phone_number_id":
                                                                 pick.id})}

    return CallerIdRequest(tuple(pool), choose, amend)


def _claim_from(h: HistoryStore, campaign: str, person: str, at: datetime,
                pool: dict[str, int], attempt: int = 1) -> Claim:
    key = f"{campaign}-{person}-{attempt}"
    record = {"person": person, "row": 1, "attempt": attempt, "body": "{}", "idem_key": key}
    return h.claim(
        campaign=campaign, person=person, phone_e164=person[4:], contact_id=None,
        attempt=attempt, idem_key=key, record=record, at=at, min_hours=0.0, state_limit=None,
        caller=_pool_request(pool, record),
    )


def test_claims_that_take_a_caller_id_never_push_a_number_past_its_cap(
    backend: Backend,
) -> None:
    """Three campaigns claim at once (each its own connection, like another process): the
    counts the chooser reads are taken in the claim's transaction, so no number passes its
    cap; a person keeps the number that called them; a rest takes a number out of use."""
    pool = {"pn_a": 7, "pn_b": 5, "pn_c": 3}
    people = [f"tel:{p}" for p in numbers(40)]
    won: dict[str, list[tuple[str, str]]] = {}
    barrier = threading.Barrier(3)

    def worker(campaign: str) -> None:
        h = backend.history()
        try:
            barrier.wait()
            got = []
            for p in people:
                c = _claim_from(h, campaign, p, T0, pool)
                if c.ok:
                    assert c.caller is not None
                    got.append((p, c.caller.id))
                else:
                    assert c.reason == "caller_ids_exhausted"
            won[campaign] = got
        finally:
            h.close()

    threads = [threading.Thread(target=worker, args=(c,)) for c in ("a", "b", "c")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    taken = Counter(n for got in won.values() for _, n in got)
    assert taken == Counter(pool)  # every cap filled, none passed
    h = backend.history()
    try:
        load = h.caller_id_load(list(pool), T0)
        assert {n: len(ts) for n, ts in load.items()} == pool
        # the person's number, across campaigns: sticky once a day frees it
        person, number = won["a"][0] if won["a"] else next(g for g in won.values() if g)[0]
        later = T0 + timedelta(hours=25)
        again = _claim_from(h, "d", person, later, pool)
        assert again.ok and again.caller is not None
        assert (again.caller.id, again.caller.reason) == (number, "sticky")
        assert h.sticky_numbers([person]) == {person: number}
        # a rest takes a number out of use; a restore puts it back
        assert h.rest_number("pn_a", since=later, until=later + timedelta(days=1),
                             reason="manual", detail="by hand", by="person")
        rested = _claim_from(h, "d", people[-1], later, {"pn_a": 7})
        assert (rested.ok, rested.reason) == (False, "caller_ids_exhausted")
        h.rest_number("pn_a", since=later, until=later, reason="restored", detail="", by="person")
        assert _claim_from(h, "d", people[-1], later, {"pn_a": 7}).ok
        assert [r.reason for r in h.caller_id_rests(["pn_a"])] == ["manual", "restored"]
    finally:
        h.close()


def test_history_dnc_is_durable_and_idempotent(backend: Backend) -> None:
    h = backend.history()
    h.add_dnc("+12125550100", reason="opt_out", campaign="c", evidence="call_1", at=T0)
    h.add_dnc("+12125550100", reason="opt_out", campaign="c", evidence="call_1", at=T0)
    h.close()
    h = backend.history()
    try:
        assert h.is_dnc("+12125550100") and not h.is_dnc("+12125550101")
        assert h.dnc_numbers() == {"+12125550100"}
    finally:
        h.close()
