"""Several processes on one campaign, against a real PostgreSQL server: leases, takeover,
the fenced intent, the live-call cap, the registry and control."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

pytest_plugins = ["tests.pg_cluster"]
pytest.importorskip("psycopg")

from campaign_dialer.store.postgres import (  # noqa: E402
    Coordinator,
    Database,
    DuplicateIntent,
    LeaseLost,
    LiveLimitReached,
    PgStoreError,
)


@pytest.fixture
def db(pg_database: str) -> Iterator[Database]:
    with Database(pg_database) as d:
        yield d


def _proc(db: Database, lease: float = 30.0, max_live: int | None = None) -> Coordinator:
    co = Coordinator(db, "spring", lease_seconds=lease)
    co.ensure_campaign(max_live_calls=max_live)
    co.register(host="host-a", pid=1000)
    return co


def _intent(co: Coordinator, row: int, attempt: int = 1) -> int:
    return co.record_intent(
        person=f"p{row}", row=row, attempt=attempt, idem_key=f"k-{row}-{attempt}",
        body={"to": f"+1555000{row:04d}"}, evidence={"why": "test"}, run_id=None,
        ts="2026-11-30T12:00:00.000Z",
    )


def _expire(db: Database, rows: list[int]) -> None:
    """Age leases as if their holder had stopped heartbeating (no sleeping in tests)."""
    db.fetchone(
        "UPDATE rows SET lease_until = now() - interval '1 second' "
        "WHERE campaign = 'spring' AND row = ANY(%s) RETURNING 1", (rows,),
    )


def test_two_processes_never_claim_the_same_row(db: Database) -> None:
    a, b = _proc(db), _proc(db)
    a.load_rows((r, f"p{r}") for r in range(1, 11))
    assert b.load_rows((r, f"p{r}") for r in range(1, 11)) == 0  # same plan: no new rows
    got_a = [c.row for c in a.claim(4)]
    got_b = [c.row for c in b.claim(100)]
    assert got_a == [1, 2, 3, 4]
    assert got_b == [5, 6, 7, 8, 9, 10]
    assert a.claim(5) == [] and b.claim(5) == []


def test_rows_offered_in_batches_are_each_offered_once(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plan's rows go in batches (`LOAD_BATCH_ROWS`): every row arrives, once, in order of
    claim, and a second offer of the same plan (another process) adds none."""
    from campaign_dialer.store.postgres import coord

    monkeypatch.setattr(coord, "LOAD_BATCH_ROWS", 3)
    a, b = _proc(db), _proc(db)
    assert a.load_rows((r, f"p{r}") for r in range(1, 11)) == 10
    assert b.load_rows([(r, f"p{r}") for r in range(1, 12)]) == 1  # row 11 is new
    assert a.load_rows(iter([])) == 0
    assert [(c.row, c.person) for c in a.claim(100)] == [(r, f"p{r}") for r in range(1, 12)]
    assert b.claim(100) == []


def test_a_row_leased_by_a_live_process_is_not_taken(db: Database) -> None:
    a, b = _proc(db, lease=0.5), _proc(db)
    a.load_rows([(1, "p1")])
    assert [c.row for c in a.claim(1)] == [1]
    a.heartbeat()
    assert b.claim(1) == []


def test_an_expired_lease_hands_the_row_and_its_open_intent_over(db: Database) -> None:
    dead, taker = _proc(db), _proc(db)
    dead.load_rows([(1, "p1"), (2, "p2")])
    assert [c.row for c in dead.claim(2)] == [1, 2]
    aid = _intent(dead, 1)
    _expire(db, [1, 2])
    got = {c.row: c for c in taker.claim(5)}
    assert set(got) == {1, 2}
    assert got[1].taken_from == dead.process_id
    (intent,) = got[1].open_intents
    assert (intent.attempt_id, intent.idem_key, intent.state) == (aid, "k-1-1", "intent")
    assert intent.body == {"to": "+15550000001"}
    assert got[2].open_intents == ()
    # The dead process wakes up: its lease is gone, it cannot start a call on the row ...
    with pytest.raises(LeaseLost):
        _intent(dead, 2)
    # ... and the intent now counts as the taker's live call.
    live = {p.id: p.live_calls for p in taker.processes()}
    assert live == {dead.process_id: 0, taker.process_id: 1}


def test_heartbeat_renews_leases_and_reads_control(db: Database) -> None:
    a, b = _proc(db, lease=30), _proc(db)
    a.load_rows([(1, "p1"), (2, "p2")])
    a.claim(2)
    _expire(db, [1, 2])
    hb = a.heartbeat()  # renewed before anyone took them
    assert hb.held == 2 and hb.control == "active"
    assert b.claim(2) == []
    b.set_control("paused")
    assert a.heartbeat().control == "paused"
    b.set_control("active")
    assert a.heartbeat().control == "active"
    b.set_control("canceled")
    assert a.heartbeat().control == "canceled"
    with pytest.raises(PgStoreError, match="stays canceled"):
        a.set_control("active")


def test_the_intent_is_fenced_by_the_lease_and_unique_per_attempt(db: Database) -> None:
    a, b = _proc(db), _proc(db)
    a.load_rows([(1, "p1"), (2, "p2")])
    a.claim(1)
    with pytest.raises(LeaseLost):
        _intent(b, 1)  # b never held row 1
    with pytest.raises(LeaseLost):
        _intent(a, 2)  # nobody claimed row 2
    _intent(a, 1)
    with pytest.raises(DuplicateIntent):
        a.record_intent(person="p1", row=1, attempt=1, idem_key="another-key", body={},
                        evidence={}, run_id=None, ts="t")


def test_live_calls_are_capped_across_processes_and_freed_by_finals(db: Database) -> None:
    a, b = _proc(db, max_live=2), _proc(db, max_live=2)
    a.load_rows((r, f"p{r}") for r in range(1, 5))
    a.claim(2)
    b.claim(2)
    first = _intent(a, 1)
    _intent(b, 3)
    assert a.live_calls() == 2
    with pytest.raises(LiveLimitReached):
        _intent(a, 2)
    with pytest.raises(LiveLimitReached):
        _intent(b, 4)
    # A refused intent left nothing behind: no attempt, count unchanged.
    assert db.fetchone("SELECT count(*) FROM attempts")[0] == 2
    db.fetchone("UPDATE attempts SET state = 'placed' WHERE id = %s RETURNING 1", (first,))
    assert a.live_calls() == 2  # placed is still live
    db.fetchone("UPDATE attempts SET state = 'final' WHERE id = %s RETURNING 1", (first,))
    assert a.live_calls() == 1
    _intent(b, 4)
    assert b.live_calls() == 2


def test_finish_release_and_end(db: Database) -> None:
    a, b = _proc(db), _proc(db)
    a.load_rows((r, f"p{r}") for r in range(1, 5))
    a.claim(4)
    assert a.finish([1]) == 1
    assert b.finish([2]) == 0  # not b's to finish
    later = datetime.now(UTC) + timedelta(hours=1)
    a.release(2, not_before=later)  # outside calling hours: nobody before then
    a.end(0, {"placed": 1})
    assert sorted(c.row for c in b.claim(10)) == [3, 4]  # freed at once, no lease wait
    assert a.remaining() == 3
    procs = {p.id: p for p in b.processes(include_ended=True)}
    assert procs[a.process_id].ended_at is not None and not procs[a.process_id].alive
    assert procs[a.process_id].exit_code == 0
    assert [p.id for p in b.processes()] == [b.process_id]
    with pytest.raises(LeaseLost):
        a.heartbeat()


def test_the_registry_shows_each_process_live_calls_and_heartbeat(db: Database) -> None:
    a, b = _proc(db), _proc(db)
    a.load_rows((r, f"p{r}") for r in range(1, 4))
    a.claim(2)
    b.claim(1)
    _intent(a, 1)
    _intent(a, 2)
    before = {p.id: p.heartbeat_at for p in a.processes()}
    time.sleep(0.01)
    a.heartbeat()
    procs = {p.id: p for p in a.processes()}
    assert procs[a.process_id].live_calls == 2 and procs[b.process_id].live_calls == 0
    assert procs[a.process_id].rows_held == 2 and procs[b.process_id].rows_held == 1
    assert procs[a.process_id].heartbeat_at > before[a.process_id]
    assert procs[a.process_id].host == "host-a" and procs[a.process_id].alive


def test_keep_alive_renews_leases_and_reports_control_changes(db: Database) -> None:
    import anyio

    a, b = _proc(db, lease=0.6), _proc(db)
    a.load_rows([(1, "p1")])
    a.claim(1)
    seen: list[str] = []

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(lambda: a.keep_alive(seen.append, every=0.05))
            await anyio.sleep(0.3)
            await anyio.to_thread.run_sync(b.set_control, "paused")
            with anyio.fail_after(30):
                while seen[-1:] != ["paused"]:
                    await anyio.sleep(0.02)
            _expire(db, [1])
            with anyio.fail_after(30):  # the next beats renew the lease before anyone takes it
                while db.fetchone("SELECT lease_until > now() FROM rows WHERE row = 1")[0] \
                        is not True:
                    await anyio.sleep(0.02)
            tg.cancel_scope.cancel()

    anyio.run(main)
    assert seen[0] == "active" and seen[-1] == "paused"
