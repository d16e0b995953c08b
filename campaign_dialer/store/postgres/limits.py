"""Rate limits shared by every process of a campaign, through one row per limit.

A zero-burst GCRA cell: the row holds `next_at`, the earliest instant the next slot may
start. Taking a slot is one statement:

    UPDATE rate_limits SET next_at = greatest(next_at, clock_timestamp()) + interval
    RETURNING next_at - interval (the slot), clock_timestamp() (the server's now)

so slots handed to all processes together are `interval` apart (at most rate + 1 in any
1 s window, whatever the number of processes), and an idle limiter banks no burst. The wait
is computed on the server's clock alone (slot - server now): the hosts' clocks may differ
without effect. The row lock is held for that one statement only.

`SharedRateLimiter` is a drop-in for `aiolimiter.AsyncLimiter` in `async with limiter:`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from types import TracebackType

import anyio

from campaign_dialer.store.interface import SHARED_CALLS, SHARED_REQUESTS
from campaign_dialer.store.postgres.db import Database

CALLS = SHARED_CALLS  # calls_per_second: new calls placed
REQUESTS = SHARED_REQUESTS  # requests_per_second: every API request

_TAKE = """
UPDATE rate_limits
SET next_at = greatest(next_at, clock_timestamp()) + make_interval(secs => interval_s * %(k)s)
WHERE campaign = %(c)s AND name = %(name)s
RETURNING extract(epoch FROM next_at - make_interval(secs => interval_s * %(k)s)),
          extract(epoch FROM clock_timestamp()), interval_s
"""


@dataclass(frozen=True)
class Slot:
    at: float  # the slot's start, server clock (epoch seconds)
    wait: float  # seconds from the server's now to `at` (<= 0: go now)
    interval: float  # the limit's spacing (1 / per_second)


def configure(db: Database, campaign: str, name: str, per_second: float) -> None:
    """Set a campaign's limit (every process of it uses the row's interval)."""
    if per_second <= 0:
        raise ValueError(f"{name}: per_second must be positive")
    db.fetchone(
        "INSERT INTO rate_limits(campaign, name, interval_s) VALUES (%s, %s, %s) "
        "ON CONFLICT (campaign, name) DO UPDATE SET interval_s = excluded.interval_s "
        "RETURNING 1",
        (campaign, name, 1.0 / per_second),
    )


class SharedRateLimiter:
    """One campaign's limit (`CALLS` or `REQUESTS`), shared by all its processes."""

    def __init__(self, db: Database, campaign: str, name: str = CALLS) -> None:
        self.db = db
        self.campaign = campaign
        self.name = name
        self.late = 0  # slots given up because this process woke too late to use them

    def take(self, k: int = 1) -> Slot:
        """Reserve k consecutive slots; the first starts at `Slot.at`, wait `Slot.wait`.
        Blocking (one round trip): call it from a worker thread."""
        row = self.db.fetchone(_TAKE, {"c": self.campaign, "name": self.name, "k": k})
        if row is None:
            raise LookupError(f"no {self.name} limit configured for {self.campaign!r}")
        at, now = float(row[0]), float(row[1])
        return Slot(at=at, wait=at - now, interval=float(row[2]))

    # A slot this process wakes for more than LATE_FRACTION of an interval late is given up
    # for a fresh one. Slots are exactly one interval apart, so rate + 2 starts fit in a 1 s
    # window only if a start slipped more than one whole interval after its slot: a
    # fraction below 1 keeps a margin for the request's own way to the platform.
    LATE_FRACTION = 0.75

    def acquire_blocking(self) -> Slot:
        """Wait for a slot in this thread; returns the slot used."""
        while True:
            slot = self.take()
            deadline = time.monotonic() + max(slot.wait, 0.0)
            if slot.wait > 0:
                time.sleep(slot.wait)
            if time.monotonic() - deadline <= slot.interval * self.LATE_FRACTION:
                return slot
            self.late += 1

    async def acquire(self) -> None:
        """Wait for a slot on the event loop (the round trip runs in a worker thread)."""
        while True:
            slot = await anyio.to_thread.run_sync(self.take)
            deadline = time.monotonic() + max(slot.wait, 0.0)
            if slot.wait > 0:
                await anyio.sleep(slot.wait)
            if time.monotonic() - deadline <= slot.interval * self.LATE_FRACTION:
                return
            self.late += 1

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None
