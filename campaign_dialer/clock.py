"""Wall-clock time, injectable so tests can stand a run at 03:00 in New York.

`CAMPAIGN_DIALER_TEST_CLOCK=2026-03-08T06:59:00Z` makes a run start at that instant and
advance in real time from there. It exists for the end-to-end tests that drive the real CLI
across several runs; every run that uses it logs a warning. A simulated clock is honoured only
against an API on loopback (the sandbox): with any other base URL `run` refuses to start
(exit 78), so a forgotten variable can never place real calls at the wrong local hour.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta

from campaign_dialer.errors import ConfigError

TEST_CLOCK_ENV = "CAMPAIGN_DIALER_TEST_CLOCK"


class Clock:
    def __init__(
        self, start: datetime | None = None, *, env_hook: bool = False, source: str | None = None
    ) -> None:
        self._start_wall = start
        self.env_hook = env_hook  # set by the test hook: such runs say so in their logs
        # Recorded with every run (journal, summary.json, status) so evidence says which
        # clock decided the local hours: "system", "test_clock_env" or "simulated".
        self.source = source or (
            "system" if start is None else ("test_clock_env" if env_hook else "simulated")
        )
        self._start_mono = time.monotonic()
        if start is not None and start.tzinfo is None:
            raise ValueError("the clock's start must be timezone-aware")

    @property
    def is_fake(self) -> bool:
        return self._start_wall is not None

    def now(self) -> datetime:
        if self._start_wall is None:
            return datetime.now(UTC)
        return self._start_wall + timedelta(seconds=time.monotonic() - self._start_mono)

    def seconds_until(self, when: datetime) -> float:
        return (when - self.now()).total_seconds()

    @classmethod
    def from_env(cls) -> Clock:
        raw = os.environ.get(TEST_CLOCK_ENV, "").strip()
        if not raw:
            return cls()
        try:
            start = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            raise ConfigError(
                TEST_CLOCK_ENV, "", f"{raw!r} is not an ISO 8601 date-time"
            ) from None
        if start.tzinfo is None:
            start = start.replace(tzinfo=UTC)
        return cls(start, env_hook=True)
