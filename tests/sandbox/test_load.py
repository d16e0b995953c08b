"""Under a flood from concurrent clients the limits hold, judged from the audit alone."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from campaign_dialer.sandbox import SandboxServer

from ._support import AGENT, auth

pytestmark = pytest.mark.sandbox

RPS = 25
MAX_LIVE = 4


async def flood(url: str, seconds: float, clients: int, max_requests: int) -> list[int]:
    """Fire POSTs and GETs as fast as the clients can until time or count runs out."""
    numbers = itertools.count()
    sent = itertools.count()
    codes: list[int] = []
    stop_at = time.monotonic() + seconds

    async def worker(n: int) -> None:
        async with httpx.AsyncClient(base_url=url, headers=auth(), trust_env=False,
                                     timeout=10.0) as client:
            while time.monotonic() < stop_at and next(sent) < max_requests:
                if n % 3 == 2:
                    r = await client.get("/v1/calls", params={"limit": 5})
                else:
                    body = {"agent_id": AGENT, "phone_number": f"+1702{next(numbers):07d}"}
                    r = await client.post("/v1/calls", json=body)
                codes.append(r.status_code)

    await asyncio.gather(*(worker(n) for n in range(clients)))
    return codes


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    live = peak = 0
    for _, step in events:  # at equal times an end (-1) sorts before a start (+1)
        live += step
        peak = max(peak, live)
    return peak


def test_limits_hold_under_load(make_sandbox: Callable[..., SandboxServer]) -> None:
    # time_scale 0.01: calls last ~0.1-3 s, so the live-call limit is reached and freed often.
    sb = make_sandbox(requests_per_second=RPS, max_live_calls=MAX_LIVE, time_scale=0.01,
                      retry_after="fractional")
    codes = asyncio.run(flood(sb.url, seconds=2.5, clients=6, max_requests=20_000))
    audit: dict[str, Any] = sb.audit()
    requests = audit["requests"]
    assert len(requests) == len(codes)
    assert 429 in codes and 201 in codes

    admitted = sorted(r["mono"] for r in requests if r["admitted"])
    non_429 = sorted(r["mono"] for r in requests if r["status"] != 429)
    assert all(not r["admitted"] for r in requests if r["error_code"] == "rate_limited")
    for times in (admitted, non_429):
        # In any window [t, t+1) at most RPS requests: the (i+RPS)-th is >= 1 s after the i-th.
        for i in range(len(times) - RPS):
            assert times[i + RPS] - times[i] >= 1.0 - 1e-9, f"window at {times[i]} over limit"
    assert len(admitted) <= RPS * 4  # 2.5 s of traffic fits in at most 4 windows

    calls = audit["calls"]
    assert calls, "nothing was placed"
    assert max_overlap([(c["placed_mono"], c["ended_mono"]) for c in calls]) <= MAX_LIVE
    assert audit["stats"]["peak_live_calls"] <= MAX_LIVE
    codes_seen = {r["error_code"] for r in requests}
    assert {"rate_limited", "concurrency_limited"} <= codes_seen
