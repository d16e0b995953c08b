"""Telemetry: the run's counters, and every HTTP exchange buffered for the journal.

`observe` is the client's observer: it counts answers by method and status, notes when the
platform stopped answering (the outage watchdog reads `failing_since`) and buffers one row
per exchange; `flush` writes the buffer through the lane twice a second.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from campaign_dialer.client import Exchange
from campaign_dialer.monitor import Metrics

from .io import AsyncJournal


@dataclass
class Stats:
    rows: int = 0
    placed: int = 0
    live: int = 0
    completed: int = 0
    rejected: int = 0
    errors: int = 0
    suppressed: int = 0
    deferred: int = 0
    unresolved: int = 0
    held_unresolved: int = 0
    to_dial: int = 0
    http: Counter[str] = field(default_factory=Counter)
    started: float = field(default_factory=time.monotonic)

    def calls_per_second(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.placed / elapsed if elapsed > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows, "placed": self.placed, "live": self.live,
            "completed": self.completed, "rejected": self.rejected, "errors": self.errors,
            "suppressed": self.suppressed, "deferred": self.deferred,
            "unresolved": self.unresolved, "held_unresolved": self.held_unresolved,
            "to_dial": self.to_dial,
            "calls_per_second": round(self.calls_per_second(), 3),
            "http": dict(self.http),
        }


class Telemetry:
    """What the client saw, for the stats, the outage watchdog and the journal."""

    def __init__(self, stats: Stats) -> None:
        self.stats = stats
        self.run_id: int | None = None
        # Monotonic time of the first failed exchange (refused, timeout, 5xx) since the
        # platform last answered; an outage longer than api.outage_s ends the run with 69.
        self.failing_since: float | None = None
        self._events: list[tuple[Any, ...]] = []
        self.metrics: Metrics | None = None  # dialer_api_requests_total and its latency

    def observe(self, ex: Exchange) -> None:
        """The client's observer (the client knows nothing of what counts its requests)."""
        if self.metrics is not None:
            self.metrics.request(ex.method, ex.status, ex.latency_s)
        self._observe(ex)

    def _observe(self, ex: Exchange) -> None:
        if ex.status is not None and ex.status < 500 and ex.status != 408:
            self.failing_since = None  # the platform answered, even if to say no
        elif self.failing_since is None:
            self.failing_since = time.monotonic()
        self.stats.http[f"{ex.method} {ex.status or ex.error}"] += 1
        self._events.append(
            (time.time(), self.run_id, ex.method, ex.path, ex.status, ex.code,
             round(ex.latency_s, 4), ex.error)
        )

    async def flush(self, journal: AsyncJournal) -> None:
        events, self._events = self._events, []
        if events:
            await journal.add_http_events(events)
