"""Several OS processes hammer one campaign on a real PostgreSQL server.

Judged by what the processes report and what the database holds: no row is claimed (or
finished) twice, the shared rate limiter's slots are never closer than 1/rate (so at most
rate + 1 in any 1 s window, all processes together), the live-call count never exceeds
max_live_calls, and a process SIGKILLed mid-run has its rows finished by the others.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import random
import signal
import threading
import time
from typing import Any

import pytest

pytest_plugins = ["tests.pg_cluster"]
pytest.importorskip("psycopg")

CAMPAIGN = "hammer"
_ctx = mp.get_context("spawn")  # fresh interpreters: no forked pools or sockets


def _setup(url: str, rows: int, *, max_live: int | None = None,
           rate: float | None = None) -> None:
    from campaign_dialer.store.postgres import Coordinator, Database, limits

    with Database(url) as db:
        co = Coordinator(db, CAMPAIGN)
        co.ensure_campaign(max_live_calls=max_live)
        co.load_rows((r, f"person-{r}") for r in range(1, rows + 1))
        if rate:
            limits.configure(db, CAMPAIGN, limits.CALLS, rate)


def _claimer(url: str, lease: float, out: Any, threads: int, hold: float) -> None:
    """One dialer process: `threads` workers claim, (pretend to) call, finish."""
    from campaign_dialer.store.postgres import Coordinator, Database

    db = Database(url, max_size=threads + 1)
    co = Coordinator(db, CAMPAIGN, lease_seconds=lease)
    co.register()
    claimed: list[int] = []
    finished: list[int] = []
    handed: list[int] = []
    lock = threading.Lock()
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(lease / 4):
            co.heartbeat()

    def work() -> None:
        rnd = random.Random()
        idle = 0
        while idle < int(3 * lease / 0.05) + 20:
            got = co.claim(rnd.randint(1, 4))
            if not got:
                if co.remaining() == 0:
                    return
                idle += 1
                time.sleep(0.05)  # rows leased by a (maybe dead) process: wait for expiry
                continue
            idle = 0
            time.sleep(hold)
            rows = [c.row for c in got]
            with lock:
                claimed.extend(rows)
                handed.extend(c.row for c in got if c.taken_from is not None)
            n = co.finish(rows)
            with lock:
                finished.extend(rows[:n] if n == len(rows) else rows)
                if n != len(rows):
                    finished.append(-1)  # a finish that was not all ours: flag it

    beater = threading.Thread(target=beat, daemon=True)
    beater.start()
    workers = [threading.Thread(target=work) for _ in range(threads)]
    t0 = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    stop.set()
    out.put({"pid": os.getpid(), "claimed": claimed, "finished": finished,
             "handed": handed, "seconds": time.perf_counter() - t0})
    co.end(0)
    db.close()


def test_three_processes_claim_every_row_once(pg_database: str) -> None:
    rows = 300
    _setup(pg_database, rows)
    q = _ctx.Queue()
    procs = [_ctx.Process(target=_claimer, args=(pg_database, 10.0, q, 3, 0.0))
             for _ in range(3)]
    for p in procs:
        p.start()
    results = [q.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    claimed = [r for res in results for r in res["claimed"]]
    finished = [r for res in results for r in res["finished"]]
    assert sorted(claimed) == list(range(1, rows + 1))  # every row, nobody twice
    assert sorted(finished) == list(range(1, rows + 1))


def test_a_process_killed_mid_run_has_its_rows_finished_by_the_others(
    pg_database: str,
) -> None:
    from campaign_dialer.store.postgres import Coordinator, Database

    rows, lease = 60, 1.0
    _setup(pg_database, rows)
    # The victim claims rows and writes an intent for one, then is SIGKILLed.
    ready = _ctx.Event()
    victim = _ctx.Process(target=_victim, args=(pg_database, lease, ready))
    victim.start()
    assert ready.wait(60)
    os.kill(victim.pid, signal.SIGKILL)  # type: ignore[arg-type]
    victim.join(10)
    q = _ctx.Queue()
    # The takers' own leases are long: only the victim's (1 s) expire in this test.
    procs = [_ctx.Process(target=_claimer, args=(pg_database, 10.0, q, 2, 0.01))
             for _ in range(2)]
    t0 = time.monotonic()
    for p in procs:
        p.start()
    results = [q.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(30)
    finished = sorted(r for res in results for r in res["finished"])
    handed = sorted(r for res in results for r in res["handed"])
    assert finished == list(range(1, rows + 1))  # all of them, each once, none flagged
    assert handed == [1, 2, 3, 4, 5]  # the victim's rows, taken over after its lease
    assert time.monotonic() - t0 < 60
    with Database(pg_database) as db:
        # The victim's open intent went to a taker, with its key, and was never re-made.
        owner, key = db.fetchone("SELECT owner, idem_key FROM attempts WHERE row = 1")
        assert key == "victim-key-1"
        pids = {p.id: p.pid for p in Coordinator(db, CAMPAIGN).processes(include_ended=True)}
        assert pids[owner] in {res["pid"] for res in results}
        assert db.fetchone("SELECT count(*) FROM attempts")[0] == 1


def _victim(url: str, lease: float, ready: Any) -> None:
    from campaign_dialer.store.postgres import Coordinator, Database

    db = Database(url)
    co = Coordinator(db, CAMPAIGN, lease_seconds=lease)
    co.register()
    got = co.claim(5)
    assert [c.row for c in got] == [1, 2, 3, 4, 5]
    co.record_intent(person="person-1", row=1, attempt=1, idem_key="victim-key-1",
                     body={}, evidence={}, run_id=None, ts="t")
    ready.set()
    time.sleep(600)


def _rate_taker(url: str, n: int, threads: int, out: Any) -> None:
    from campaign_dialer.store.postgres import Database, SharedRateLimiter, limits

    db = Database(url, max_size=threads)
    lim = SharedRateLimiter(db, CAMPAIGN, limits.CALLS)
    slots: list[float] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(n):
            s = lim.take()
            with lock:
                slots.append(s.at)
            if s.wait > 0:
                time.sleep(s.wait)

    ts = [threading.Thread(target=work) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    out.put(slots)
    db.close()


def test_the_shared_rate_limit_holds_for_all_processes_together(pg_database: str) -> None:
    rate = 40.0
    _setup(pg_database, 0, rate=rate)
    q = _ctx.Queue()
    procs = [_ctx.Process(target=_rate_taker, args=(pg_database, 10, 3, q)) for _ in range(3)]
    for p in procs:
        p.start()
    slots = sorted(s for _ in procs for s in q.get(timeout=120))
    for p in procs:
        p.join(30)
    assert len(slots) == 90
    gaps = [b - a for a, b in zip(slots, slots[1:], strict=False)]
    assert min(gaps) >= 1 / rate - 1e-6  # never closer than one interval
    for i, start in enumerate(slots):  # so at most rate + 1 in any 1 s window
        assert sum(1 for s in slots[i:] if s < start + 1.0) <= rate + 1


def _live_worker(url: str, max_live: int, out: Any) -> None:
    from campaign_dialer.store.postgres import Coordinator, Database, LiveLimitReached

    db = Database(url, max_size=5)
    co = Coordinator(db, CAMPAIGN, lease_seconds=10)
    co.register()
    refused = 0
    placed: list[int] = []
    lock = threading.Lock()

    def work() -> None:
        nonlocal refused
        rnd = random.Random()
        while True:
            got = co.claim(1)
            if not got:
                if co.remaining() == 0:
                    return
                time.sleep(0.01)
                continue
            (c,) = got
            try:
                aid = co.record_intent(person=c.person, row=c.row, attempt=1,
                                       idem_key=f"key-{c.row}", body={}, evidence={},
                                       run_id=None, ts="t")
            except LiveLimitReached:
                with lock:
                    refused += 1
                co.release(c.row)
                time.sleep(rnd.uniform(0.001, 0.01))
                continue
            time.sleep(rnd.uniform(0.0, 0.02))  # the call rings
            db.execute("UPDATE attempts SET state = 'final' WHERE id = %s", (aid,))
            co.finish([c.row])
            with lock:
                placed.append(c.row)

    ts = [threading.Thread(target=work) for _ in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    out.put({"placed": placed, "refused": refused})
    co.end(0)
    db.close()


def test_live_calls_never_exceed_the_cap_across_processes(pg_database: str) -> None:
    from campaign_dialer.store.postgres import Database

    rows, max_live = 120, 3
    _setup(pg_database, rows, max_live=max_live)
    q = _ctx.Queue()
    procs = [_ctx.Process(target=_live_worker, args=(pg_database, max_live, q))
             for _ in range(3)]
    for p in procs:
        p.start()
    seen: list[tuple[int, int]] = []
    with Database(pg_database) as db:
        while any(p.is_alive() for p in procs) and q.qsize() < len(procs):
            # One snapshot: the counter and the open attempts it counts.
            seen.append(db.fetchone(
                "SELECT (SELECT live_calls FROM campaigns WHERE name = %s),"
                " (SELECT count(*) FROM attempts WHERE state IN ('intent', 'placed'))",
                (CAMPAIGN,),
            ))
        results = [q.get(timeout=120) for _ in procs]
        for p in procs:
            p.join(30)
        final = db.fetchone("SELECT live_calls FROM campaigns WHERE name = %s", (CAMPAIGN,))
        attempts = db.fetchone("SELECT count(*), count(DISTINCT row) FROM attempts")
    placed = sorted(r for res in results for r in res["placed"])
    assert placed == list(range(1, rows + 1))
    assert tuple(attempts) == (rows, rows)  # one intent per row, none refused left behind
    assert len(seen) > 10
    assert all(counter == open_ <= max_live for counter, open_ in seen)
    assert final[0] == 0
