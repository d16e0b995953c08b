"""Pacing: how fast new calls start and requests go out, and how long to back off.

Three limits hold at once: new calls per second (`Pacer`), requests per second to the API
(every request, polls included, under the platform's own limit less headroom) and live
calls (a slot is held from the intent until the call is final).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import anyio
from aiolimiter import AsyncLimiter

from campaign_dialer.config import CampaignFile

if TYPE_CHECKING:
    from campaign_dialer.store import Coordination

# Share of the platform's request limit the dialer allows itself: network jitter can bunch
# evenly spaced requests together on arrival, and a 429 we caused ourselves is a bug.
REQUEST_HEADROOM = 0.9
MAX_BACKOFF_S = 30.0


def backoff(tries: int, *, base: float = 0.5, cap: float = MAX_BACKOFF_S) -> float:
    """Exponential backoff with full jitter."""
    return random.uniform(0, min(cap, base * (2 ** max(tries - 1, 0))))


class Pacer:
    """New calls at `rate` per second, evenly spaced, keeping their schedule.

    `aiolimiter.AsyncLimiter(1, 1 / rate)` spaces acquisitions too, but each one loses what
    its wake-up was late by (about 1 ms: 6% of the rate at 50 calls/s, measured). Here slot
    n+1 is due one gap after slot n was *due*, so lateness does not accumulate; a slot more
    than half a gap late restarts the schedule from now, so there is never a burst to catch
    up: two calls are always at least half a gap apart, and on average exactly one gap.
    """

    def __init__(self, rate: float) -> None:
        self.gap = 1.0 / rate
        self._next: float | None = None
        self._lock = anyio.Lock()
        self.last_release = 0.0  # when the last slot was given, for observers (tests, stats)

    async def acquire(self) -> None:
        async with self._lock:
            now = anyio.current_time()
            if self._next is None:
                self._next = now
            if self._next > now:
                await anyio.sleep(self._next - now)
            released = self.last_release = anyio.current_time()
            if released - self._next > self.gap / 2:
                self._next = released  # idle, or woken too late to keep the schedule
            self._next += self.gap


class Slots(Protocol):
    """A rate limit's slots: this process's (`Pacer`, `AsyncLimiter`) or every process's
    (`store.Coordination`'s limiters)."""

    async def acquire(self) -> None: ...


@dataclass
class Limits:
    """The run's limits, made inside the event loop (anyio primitives belong to one loop)."""

    requests: Slots
    calls: Slots
    live_slots: anyio.Semaphore
    poll_budget: float  # requests per second left for polling after placing calls
    poll_interval_s: float

    @classmethod
    def for_campaign(cls, cfg: CampaignFile) -> Limits:
        api = cfg.api
        rps = api.requests_per_second * REQUEST_HEADROOM
        return cls(
            # AsyncLimiter(1, gap) spaces acquisitions evenly; (rate, 1) would burst.
            requests=AsyncLimiter(1, 1.0 / rps),
            calls=Pacer(cfg.pacing.calls_per_second),
            live_slots=anyio.Semaphore(api.max_live_calls),
            poll_budget=max(rps - cfg.pacing.calls_per_second, rps * 0.25),
            poll_interval_s=api.poll_interval_s,
        )

    @classmethod
    def shared(cls, cfg: CampaignFile, co: Coordination) -> Limits:
        """The campaign's rates shared by all its processes through the database (its
        rates are set by `shared.ClaimSource.open`); live calls: the database's cap, and this
        process's own slots, as many as the cap at most."""
        mine = cls.for_campaign(cfg)
        mine.requests = co.requests_limiter
        mine.calls = co.calls_limiter
        return mine

    async def pace_request(self, _method: str) -> None:
        await self.requests.acquire()

    def poll_interval(self, live: int) -> float:
        """Poll no faster than the request budget left after placing calls allows."""
        return max(self.poll_interval_s, max(live, 1) / self.poll_budget)
