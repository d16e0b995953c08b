"""Every injectable fault, each switched on at rate 1 so its effect is certain."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx
import pytest

from campaign_dialer.sandbox import SandboxConfig, SandboxServer
from campaign_dialer.sandbox.lifecycle import UNKNOWN_STATUSES

from ._support import AGENT, auth, client_for, fresh_number

pytestmark = pytest.mark.sandbox


def test_faults_are_off_by_default() -> None:
    assert SandboxConfig().faults == {}


def test_unknown_fault_name_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown fault"):
        SandboxConfig(faults={"gremlins": 0.5})
    with pytest.raises(ValueError, match="0..1"):
        SandboxConfig(faults={"slow": 1.5})


def test_server_error_places_nothing(make_sandbox: Callable[..., SandboxServer]) -> None:
    sb = make_sandbox(faults={"server_error": 1.0}, requests_per_second=None, seed=3)
    statuses: set[int] = set()
    retry_after_on_503 = False
    with client_for(sb) as c:
        for _ in range(30):
            r = c.post("/v1/calls", json={"agent_id": AGENT, "phone_number": fresh_number()})
            statuses.add(r.status_code)
            assert r.headers["content-type"].startswith("text/html")
            assert r.text.lstrip().startswith("<html>")
            retry_after_on_503 |= r.status_code == 503 and "Retry-After" in r.headers
    assert statuses <= {500, 502, 503} and len(statuses) >= 2
    assert retry_after_on_503
    audit = sb.audit()
    assert audit["calls"] == []
    assert all(r["faults"] == ["server_error"] for r in audit["requests"])


def test_server_error_rate_is_roughly_honoured(
    make_sandbox: Callable[..., SandboxServer],
) -> None:
    sb = make_sandbox(faults={"server_error": 0.2}, requests_per_second=None,
                      max_live_calls=None, seed=1)
    with client_for(sb) as c:
        codes = [c.post("/v1/calls", json={"agent_id": AGENT, "phone_number": fresh_number()})
                 .status_code for _ in range(200)]
    errors = sum(code >= 500 for code in codes)
    assert 15 <= errors <= 70
    assert len(sb.audit()["calls"]) == codes.count(201)


def test_drop_after_place_is_a_transport_error(
    make_sandbox: Callable[..., SandboxServer],
) -> None:
    sb = make_sandbox(faults={"drop_after_place": 1.0}, requests_per_second=None)
    body = {"agent_id": AGENT, "phone_number": fresh_number()}
    key = {"Idempotency-Key": "drop-1"}
    with client_for(sb) as c:
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            c.post("/v1/calls", json=body, headers=key)
        placed = sb.audit()["calls"]
        assert len(placed) == 1 and placed[0]["idempotency_key"] == "drop-1"
        assert "drop_after_place" in placed[0]["faults"]
        # The idempotency record was stored: the retry is answered, and places nothing.
        retry = c.post("/v1/calls", json=body, headers=key)
    assert retry.status_code == 201
    assert retry.json()["data"]["id"] == placed[0]["id"]
    assert len(sb.audit()["calls"]) == 1


def test_slow_holds_the_key_in_flight(make_sandbox: Callable[..., SandboxServer]) -> None:
    sb = make_sandbox(faults={"slow": 1.0}, slow_seconds=1.5, requests_per_second=None)
    body = {"agent_id": AGENT, "phone_number": fresh_number()}
    key = {"Idempotency-Key": "slow-1"}
    with client_for(sb, timeout=0.3) as c:
        with pytest.raises(httpx.TimeoutException):
            c.post("/v1/calls", json=body, headers=key)
        assert len(sb.audit()["calls"]) == 1  # placed before the response was due
        r = c.post("/v1/calls", json=body, headers=key)
        assert r.status_code == 409
        assert r.json()["error"]["code"] == "idempotency_conflict"
    # Once the held response has gone out, the same key gets the original response.
    deadline = time.monotonic() + 20
    with client_for(sb, timeout=10) as c:
        while True:
            r = c.post("/v1/calls", json=body, headers=key)
            if r.status_code != 409 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    assert r.status_code == 201
    calls = sb.audit()["calls"]
    assert len(calls) == 1 and r.json()["data"]["id"] == calls[0]["id"]


def test_slow_does_not_delay_shutdown(make_sandbox: Callable[..., SandboxServer]) -> None:
    sb = make_sandbox(faults={"slow": 1.0}, slow_seconds=60, requests_per_second=None)
    with client_for(sb, timeout=0.2) as c, pytest.raises(httpx.TimeoutException):
        c.post("/v1/calls", json={"agent_id": AGENT, "phone_number": fresh_number()})
    started = time.monotonic()
    sb.stop()
    assert time.monotonic() - started < 30  # not the 60 s hold


def test_spurious_429(make_sandbox: Callable[..., SandboxServer]) -> None:
    sb = make_sandbox(faults={"spurious_429": 1.0}, requests_per_second=1000,
                      retry_after="fractional")
    with client_for(sb) as c:
        post = c.post("/v1/calls", json={"agent_id": AGENT, "phone_number": fresh_number()})
        get = c.get("/v1/calls")
    for r in (post, get):
        assert r.status_code == 429
        assert r.json()["error"]["code"] == "rate_limited"
        assert float(r.headers["Retry-After"]) > 0
    audit = sb.audit()
    assert audit["calls"] == []
    assert all(r["faults"] == ["spurious_429"] and not r["admitted"] for r in audit["requests"])


def test_get_error(make_sandbox: Callable[..., SandboxServer]) -> None:
    sb = make_sandbox(faults={"get_error": 1.0}, requests_per_second=None)
    with client_for(sb) as c:
        placed = c.post("/v1/calls", json={"agent_id": AGENT, "phone_number": fresh_number()})
        assert placed.status_code == 201
        codes = {c.get(f"/v1/calls/{placed.json()['data']['id']}").status_code
                 for _ in range(10)}
        assert c.get("/v1/calls").status_code == 200
    assert codes <= {500, 502, 503}


def test_unknown_fields(make_sandbox: Callable[..., SandboxServer]) -> None:
    sb = make_sandbox(faults={"unknown_fields": 1.0}, requests_per_second=None)
    known_call = {"id", "sub_account_id", "agent_id", "contact_id", "direction", "status",
                  "from", "to", "created_at", "started_at", "ended_at", "duration_seconds",
                  "outcome", "ended_reason", "transcript", "recording_url"}
    with client_for(sb) as c:
        post = c.post("/v1/calls", json={"agent_id": AGENT, "phone_number": fresh_number()})
        get = c.get(f"/v1/calls/{post.json()['data']['id']}")
        listing = c.get("/v1/calls")
    for envelope, known in ((post.json(), {"success", "message", "data"}),
                            (get.json(), {"success", "data"}),
                            (listing.json(), {"success", "data", "next_cursor"})):
        assert set(envelope) > known
    assert set(post.json()["data"]) > known_call
    assert set(get.json()["data"]) > known_call
    assert set(listing.json()["data"][0]) > known_call


def test_unknown_status_is_seen_while_polling(
    make_sandbox: Callable[..., SandboxServer],
) -> None:
    # time_scale 2: the undocumented phase lasts at least 1 s of real time.
    sb = make_sandbox(faults={"unknown_status": 1.0}, time_scale=2.0, requests_per_second=None)
    with client_for(sb) as c:
        call_id = c.post("/v1/calls", json={"agent_id": AGENT, "phone_number": fresh_number()}
                         ).json()["data"]["id"]
        seen: list[str] = []
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            status = c.get(f"/v1/calls/{call_id}").json()["data"]["status"]
            if not seen or seen[-1] != status:
                seen.append(status)
            if status in UNKNOWN_STATUSES:
                break
            time.sleep(0.05)
    assert seen[-1] in UNKNOWN_STATUSES
    statuses = sb.audit()["calls"][0]["statuses"]
    assert statuses[0] == "initiated" and statuses[1] in UNKNOWN_STATUSES


def test_fault_streams_are_reproducible(make_sandbox: Callable[..., SandboxServer]) -> None:
    def codes(seed: int) -> list[int]:
        sb = make_sandbox(faults={"server_error": 0.5}, requests_per_second=None,
                          max_live_calls=None, seed=seed)
        with client_for(sb) as c:
            return [c.post("/v1/calls", json={"agent_id": AGENT, "phone_number": fresh_number()})
                    .status_code for _ in range(30)]

    assert codes(7) == codes(7)


def test_concurrent_same_key_conflicts_while_in_flight(
    make_sandbox: Callable[..., SandboxServer],
) -> None:
    """With a server-side latency, a retry racing the first request gets 409, never a 2nd call."""
    sb = make_sandbox(post_latency=1.0, requests_per_second=None)
    body = {"agent_id": AGENT, "phone_number": fresh_number()}
    key = {"Idempotency-Key": "race-1"}

    async def race() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=sb.url, headers=auth(), trust_env=False,
                                     timeout=10) as c:
            first = asyncio.create_task(c.post("/v1/calls", json=body, headers=key))
            deadline = time.monotonic() + 10
            while sb.stats()["idempotency_in_flight"] == 0 and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            second = await c.post("/v1/calls", json=body, headers=key)
            return [await first, second]

    responses = asyncio.run(race())
    assert responses[0].status_code == 201
    assert responses[1].json()["error"]["code"] == "idempotency_conflict"
    assert len(sb.audit()["calls"]) == 1
