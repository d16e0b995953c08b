"""The shared rate limiter against a real server: slots, waits and slots used too late."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace

import anyio
import pytest

pytest_plugins = ["tests.pg_cluster"]
pytest.importorskip("psycopg")

from campaign_dialer.store.postgres import Coordinator, Database, SharedRateLimiter, limits  # noqa: E402


@pytest.fixture
def db(pg_database: str) -> Iterator[Database]:
    with Database(pg_database) as d:
        Coordinator(d, "c").ensure_campaign()
        yield d


def test_slots_are_one_interval_apart_and_an_idle_limiter_banks_no_burst(db: Database) -> None:
    limits.configure(db, "c", limits.CALLS, 10.0)
    lim = SharedRateLimiter(db, "c", limits.CALLS)
    first, second, third = lim.take(), lim.take(), lim.take(2)
    assert first.wait <= 0.001  # idle: go now
    assert second.at - first.at == pytest.approx(0.1, abs=1e-6)
    assert third.at - second.at == pytest.approx(0.1, abs=1e-6)
    assert lim.take().at - third.at == pytest.approx(0.2, abs=1e-6)  # take(2) held two
    assert second.interval == pytest.approx(0.1)
    # Each limit is its own row; reconfiguring changes the spacing for every process.
    limits.configure(db, "c", limits.REQUESTS, 100.0)
    req = SharedRateLimiter(db, "c", limits.REQUESTS)
    a, b = req.take(), req.take()
    assert b.at - a.at == pytest.approx(0.01, abs=1e-6)
    with pytest.raises(LookupError):
        SharedRateLimiter(db, "c", "nonesuch").take()
    with pytest.raises(ValueError):
        limits.configure(db, "c", limits.CALLS, 0)


def test_a_slot_woken_for_too_late_is_given_up_for_a_fresh_one(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    limits.configure(db, "c", limits.CALLS, 20.0)
    lim = SharedRateLimiter(db, "c", limits.CALLS)
    lim.take()  # the next slot is 50 ms away: acquiring it sleeps
    now = [1000.0]
    sleeps: list[float] = []

    def sleep(s: float) -> None:
        sleeps.append(s)
        now[0] += s + (1.0 if len(sleeps) == 1 else 0.0)  # the first wake is 1 s late

    monkeypatch.setattr(limits, "time", SimpleNamespace(monotonic=lambda: now[0], sleep=sleep))
    used = lim.acquire_blocking()
    assert lim.late == 1 and len(sleeps) == 2
    assert used.at - lim.take().at == pytest.approx(-0.05, abs=1e-6)  # used the fresh one


def test_async_acquire_waits_for_its_slot(db: Database) -> None:
    limits.configure(db, "c", limits.CALLS, 20.0)
    lim = SharedRateLimiter(db, "c", limits.CALLS)

    async def three() -> float:
        t0 = anyio.current_time()
        for _ in range(3):
            async with lim:
                pass
        return anyio.current_time() - t0

    elapsed = anyio.run(three)
    assert elapsed >= 0.1 - 0.005  # slots at 0, 50, 100 ms: never early
