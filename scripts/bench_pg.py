"""Benchmark the PostgreSQL store's coordination primitives: 1 process vs 3 on one campaign.

    python scripts/bench_pg.py [--rows 3000] [--rate 50] [--seconds 4]

Uses CAMPAIGN_DIALER_TEST_PG_URL (a server whose role may CREATE DATABASE), else starts a
throwaway cluster like the tests (tests/pg_cluster.py). Prints, for 1 and 3 processes:
rows claimed+finished per second (claim k=4 rows per statement, 3 threads per process),
the shared rate limiter's achieved rate over the configured one (4 threads per process
waiting for slots, as the engine's workers do), the most starts in any 1 s window, and
server transactions (= round trips: every primitive is one autocommit statement) per
claim, per rate slot, per fenced intent and per heartbeat.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests import pg_cluster  # noqa: E402

CAMPAIGN = "bench"
_ctx = mp.get_context("spawn")


def _xacts(url: str) -> int:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        row = conn.execute(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database "
            "WHERE datname = current_database()"
        ).fetchone()
        return int(row[0]) if row else 0


def _claim_worker(url: str, threads: int, go: Any, out: Any) -> None:
    from campaign_dialer.store.postgres import Coordinator, Database

    db = Database(url, max_size=threads)
    co = Coordinator(db, CAMPAIGN, lease_seconds=30)
    co.register()
    done = [0]
    lock = threading.Lock()

    def work() -> None:
        while True:
            got = co.claim(4)
            if not got:
                return
            co.finish([c.row for c in got])
            with lock:
                done[0] += len(got)

    go.wait()
    t0 = time.perf_counter()
    ts = [threading.Thread(target=work) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    cpu = time.process_time()
    out.put({"rows": done[0], "seconds": time.perf_counter() - t0, "cpu": cpu})
    co.end(0)
    db.close()


def _rate_worker(url: str, seconds: float, go: Any, out: Any) -> None:
    """Like the engine: several workers wait for slots at once, so slots are pipelined."""
    from campaign_dialer.store.postgres import Database, SharedRateLimiter, limits

    threads = 4
    db = Database(url, max_size=threads)
    lim = SharedRateLimiter(db, CAMPAIGN, limits.CALLS)
    starts: list[float] = []
    lock = threading.Lock()
    go.wait()
    end = time.time() + seconds

    def work() -> None:
        while True:
            s = lim.acquire_blocking()
            if s.at >= end:
                return
            with lock:
                starts.append(time.time())

    ts = [threading.Thread(target=work) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    out.put((starts, lim.late))
    db.close()


def _fresh(server: str, rows: int, rate: float) -> str:
    from campaign_dialer.store.postgres import Coordinator, Database, limits

    url = pg_cluster.create_database(server)
    with Database(url) as db:
        co = Coordinator(db, CAMPAIGN)
        co.ensure_campaign(max_live_calls=1000)
        co.load_rows((r, f"p{r}") for r in range(1, rows + 1))
        limits.configure(db, CAMPAIGN, limits.CALLS, rate)
    return url


def _spawn(target: Any, args: tuple[Any, ...], n: int) -> list[Any]:
    go, q = _ctx.Event(), _ctx.Queue()
    procs = [_ctx.Process(target=target, args=(*args, go, q)) for _ in range(n)]
    for p in procs:
        p.start()
    time.sleep(2.0)  # let every process import and connect before the start signal
    go.set()
    results = [q.get(timeout=300) for _ in procs]
    for p in procs:
        p.join(60)
    return results


def claims(server: str, procs: int, rows: int) -> dict[str, float]:
    url = _fresh(server, rows, 1.0)
    res = _spawn(_claim_worker, (url, 3), procs)
    total = sum(r["rows"] for r in res)
    assert total == rows, (total, rows)
    wall = max(r["seconds"] for r in res)
    out = {"rows_per_s": total / wall, "cpu_ms_per_row": 1000 * sum(r["cpu"] for r in res)
           / total}
    pg_cluster.drop_database(server, url)
    return out


def rate(server: str, procs: int, per_second: float, seconds: float) -> dict[str, float]:
    url = _fresh(server, 0, per_second)
    res = _spawn(_rate_worker, (url, seconds), procs)
    starts = sorted(t for r, _ in res for t in r)
    late = sum(n for _, n in res)
    pg_cluster.drop_database(server, url)
    achieved = (len(starts) - 1) / (starts[-1] - starts[0])
    worst = max(sum(1 for t in starts[i:] if t < s + 1.0) for i, s in enumerate(starts))
    return {"ratio": achieved / per_second, "max_in_1s": worst, "slots": len(starts),
            "late": late}


def round_trips(server: str, n: int = 200) -> dict[str, float]:
    """Server transactions per primitive, one process (every primitive is one statement)."""
    from campaign_dialer.store.postgres import Coordinator, Database, SharedRateLimiter, limits

    url = _fresh(server, n, 1000.0)
    out: dict[str, float] = {}
    with Database(url, min_size=1, max_size=1) as db:
        co = Coordinator(db, CAMPAIGN)
        co.register()
        lim = SharedRateLimiter(db, CAMPAIGN, limits.CALLS)
        claimed: list[Any] = []

        def measure(name: str, op: Any) -> None:
            db.close()  # its backend exits and flushes its statistics
            db.__init__(url, min_size=1, max_size=1, migrate=False)  # type: ignore[misc]
            before = _xacts(url)
            for _ in range(n):
                op()
            db.close()
            time.sleep(1.2)
            db.__init__(url, min_size=1, max_size=1, migrate=False)  # type: ignore[misc]
            out[name] = (_xacts(url) - before - 2) / n  # minus the two _xacts reads

        measure("claim", lambda: claimed.extend(co.claim(1)))
        measure("rate_slot", lim.take)
        it = iter(claimed)
        measure("fenced_intent", lambda: (lambda c: co.record_intent(
            person=c.person, row=c.row, attempt=1, idem_key=f"k{c.row}", body={},
            evidence={}, run_id=None, ts="t"))(next(it)))
        measure("heartbeat", co.heartbeat)
    pg_cluster.drop_database(server, url)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=3000)
    ap.add_argument("--rate", type=float, default=50.0)
    ap.add_argument("--seconds", type=float, default=4.0)
    a = ap.parse_args()
    server = os.environ.get(pg_cluster.ENV_URL, "").strip()
    cluster = None
    if not server:
        cluster = pg_cluster.start()
        server = cluster.url
    try:
        rt = round_trips(server)
        print("round trips (server transactions) per operation: "
              + ", ".join(f"{k} {v:.2f}" for k, v in rt.items()))
        for procs in (1, 3):
            c = claims(server, procs, a.rows)
            r = rate(server, procs, a.rate, a.seconds)
            print(f"{procs} process(es): {c['rows_per_s']:.0f} rows claimed+finished/s "
                  f"({c['cpu_ms_per_row']:.2f} ms CPU per row, incl. start-up); "
                  f"rate {r['ratio']:.3f} of {a.rate:g}/s over {r['slots']} starts "
                  f"({r['late']} slots given up late), "
                  f"at most {r['max_in_1s']} in any 1 s (limit {a.rate:g} + 1)")
    finally:
        if cluster is not None:
            cluster.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
