"""Call lifecycle: terminal statuses, determinism per (number, seed), opt-outs, listing."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from campaign_dialer.sandbox import TERMINAL_STATUSES, SandboxServer, plan_call
from campaign_dialer.sandbox.lifecycle import DNC_OUTCOMES

from ._support import AGENT, client_for, fresh_number


def wait_final(client: httpx.Client, call_id: str, limit: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + limit
    while True:
        call: dict[str, Any] = client.get(f"/v1/calls/{call_id}").json()["data"]
        if call["status"] in TERMINAL_STATUSES or time.monotonic() > deadline:
            return call
        time.sleep(0.05)


# ---- the plan itself (no server) ------------------------------------------------------------


def test_plan_is_a_pure_function_of_seed_and_number() -> None:
    assert plan_call(0, "+14155550188") == plan_call(0, "+14155550188")
    numbers = [f"+1303555{i:04d}" for i in range(200)]
    assert [plan_call(1, n) for n in numbers] != [plan_call(2, n) for n in numbers]


def test_plan_shapes() -> None:
    plans = [plan_call(0, f"+1303555{i:04d}") for i in range(3000)]
    finals = Counter(p.final_status for p in plans)
    assert set(finals) == TERMINAL_STATUSES
    assert finals["completed"] > 1500
    dnc = [p for p in plans if p.outcome in DNC_OUTCOMES]
    assert 0 < len(dnc) < 200  # rare, but there
    assert all(p.ended_reason == "customer_requested_dnc" for p in dnc)
    for p in plans:
        statuses = [s for s, _ in p.phases]
        offsets = [o for _, o in p.phases]
        assert statuses[0] == "initiated" and statuses[-1] == p.final_status
        assert offsets == sorted(offsets)
        assert p.answered == ("in_progress" in statuses)
        assert p.end_offset < 400  # a 3-minute-ish call, never hours
        if p.final_status == "completed":
            assert statuses == ["initiated", "ringing", "in_progress", "completed"]
            assert p.outcome and p.duration_seconds > 0 and p.transcript


def test_unknown_status_keeps_the_fate() -> None:
    plain = plan_call(5, "+14155550188")
    odd = plan_call(5, "+14155550188", unknown_status="queued")
    assert odd.phases[1][0] == "queued"
    assert (odd.final_status, odd.outcome, odd.end_offset) == (
        plain.final_status, plain.outcome, plain.end_offset)


# ---- against a server -----------------------------------------------------------------------


@pytest.mark.sandbox
def test_call_reaches_its_planned_terminal_status(sandbox: SandboxServer,
                                                  client: httpx.Client) -> None:
    number = fresh_number()
    placed = client.post("/v1/calls", json={"agent_id": AGENT, "phone_number": number})
    final = wait_final(client, placed.json()["data"]["id"])
    plan = plan_call(0, number)
    assert final["status"] == plan.final_status
    assert final["outcome"] == plan.outcome
    assert final["ended_reason"] == plan.ended_reason
    assert final["duration_seconds"] == plan.duration_seconds
    assert final["ended_at"] is not None and isinstance(final["transcript"], str)
    if plan.answered:
        assert final["started_at"] is not None and final["recording_url"]
        assert client.get(final["recording_url"]).status_code == 200


@pytest.mark.sandbox
def test_every_terminal_status_is_served(client: httpx.Client) -> None:
    """Pick one number per final status from the plan, dial all, and see each one end so."""
    wanted: dict[str, str] = {}
    i = 0
    while len(wanted) < len(TERMINAL_STATUSES):
        number = f"+1971555{i:04d}"
        wanted.setdefault(plan_call(0, number).final_status, number)
        i += 1
    ids = {status: client.post("/v1/calls", json={"agent_id": AGENT, "phone_number": number})
           .json()["data"]["id"] for status, number in wanted.items()}
    for status, call_id in ids.items():
        assert wait_final(client, call_id)["status"] == status


@pytest.mark.sandbox
def test_same_number_and_seed_same_fate_on_two_servers(
    make_sandbox: Callable[..., SandboxServer],
) -> None:
    numbers = [f"+1512555{i:04d}" for i in range(25)]

    def fates(seed: int, order: list[str]) -> dict[str, tuple[str, str | None]]:
        sb = make_sandbox(seed=seed, requests_per_second=None, max_live_calls=None)
        with client_for(sb) as c:
            for number in order:
                assert c.post("/v1/calls", json={"agent_id": AGENT, "phone_number": number}
                              ).status_code == 201
        return {c["to"]: (c["final_status"], c["outcome"]) for c in sb.audit()["calls"]}

    first = fates(11, numbers)
    assert first == fates(11, list(reversed(numbers)))  # order does not matter
    assert first != fates(12, numbers)


@pytest.mark.sandbox
def test_opt_out_puts_the_number_on_the_dnc_list(sandbox: SandboxServer,
                                                 client: httpx.Client) -> None:
    i = 0
    while plan_call(0, number := f"+1808555{i:04d}").outcome not in DNC_OUTCOMES:
        i += 1
    placed = client.post("/v1/calls", json={"agent_id": AGENT, "phone_number": number})
    final = wait_final(client, placed.json()["data"]["id"])
    assert final["status"] == "completed"
    assert final["outcome"] in DNC_OUTCOMES
    assert final["ended_reason"] == "customer_requested_dnc"
    again = client.post("/v1/calls", json={"agent_id": AGENT, "phone_number": number})
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "dnc_listed"


# ---- GET /v1/calls ------------------------------------------------------------------------


@pytest.mark.sandbox
def test_list_filters_and_paging(make_sandbox: Callable[..., SandboxServer]) -> None:
    sb = make_sandbox(requests_per_second=None, max_live_calls=None)
    with client_for(sb) as c:
        ids = []
        contacts = ["ct_9d12fa", "ct_5b7e31", "ct_a04c9e"]
        for contact in contacts:
            ids.append(c.post("/v1/calls", json={"agent_id": AGENT, "contact_id": contact}
                              ).json()["data"]["id"])
        numbers = [fresh_number() for _ in range(4)]
        for number in numbers:
            ids.append(c.post("/v1/calls", json={"agent_id": "agt_7c4e10",
                                                 "phone_number": number}).json()["data"]["id"])

        everything = c.get("/v1/calls").json()
        assert [x["id"] for x in everything["data"]] == ids  # oldest first
        assert everything["next_cursor"] is None

        pages, cursor = [], None
        while True:
            params: dict[str, Any] = {"limit": 3}
            if cursor:
                params["cursor"] = cursor
            page = c.get("/v1/calls", params=params).json()
            pages.append([x["id"] for x in page["data"]])
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert pages == [ids[0:3], ids[3:6], ids[6:7]]
        # A cursor stays valid and stable: asking again gives the same page.
        second = c.get("/v1/calls", params={"limit": 3}).json()["next_cursor"]
        assert [x["id"] for x in c.get("/v1/calls", params={"limit": 3, "cursor": second})
                .json()["data"]] == ids[3:6]

        def listed(**params: Any) -> list[str]:
            return [x["id"] for x in c.get("/v1/calls", params=params).json()["data"]]

        assert listed(to=numbers[1]) == [ids[4]]
        assert listed(to="+14155550123") == [ids[1]]
        assert listed(contact_id="ct_a04c9e") == [ids[2]]
        assert listed(agent_id="agt_7c4e10") == ids[3:]
        assert listed(agent_id="agt_7c4e10", limit=2) == ids[3:5]
        assert listed(to="+19999999999") == []

        created = [x["created_at"] for x in everything["data"]]
        after = c.get("/v1/calls", params={"created_after": created[2]}).json()["data"]
        assert all(x["created_at"] > created[2] for x in after)
        assert ids[3] in [x["id"] for x in after] or created[3] == created[2]
        past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
        assert listed(created_after=past) == ids
        raw_plus = (datetime.now(UTC) - timedelta(hours=1)).isoformat(timespec="seconds")
        assert "+" in raw_plus  # sent unencoded, "+" arrives as a space; still understood
        assert len(c.get(f"/v1/calls?created_after={raw_plus}").json()["data"]) == len(ids)
        future = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        assert listed(created_after=future) == []

        for call_id in ids:
            wait_final(c, call_id)
        by_status = Counter(x["status"] for x in c.get("/v1/calls").json()["data"])
        for status, count in by_status.items():
            assert len(listed(status=status)) == count
        assert listed(status="initiated") == []


@pytest.mark.sandbox
@pytest.mark.parametrize(
    ("params", "field"),
    [({"limit": 0}, "limit"), ({"limit": 101}, "limit"), ({"limit": "ten"}, "limit"),
     ({"created_after": "yesterday"}, "created_after"), ({"cursor": "!!bogus"}, "cursor")],
)
def test_list_rejects_bad_query(client: httpx.Client, params: dict[str, Any],
                                field: str) -> None:
    r = client.get("/v1/calls", params=params)
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "validation_error"
    assert field in r.json()["error"]["details"]["fields"]


@pytest.mark.sandbox
def test_list_limit_bounds(client: httpx.Client) -> None:
    for _ in range(3):
        client.post("/v1/calls", json={"agent_id": AGENT, "phone_number": fresh_number()})
    assert len(client.get("/v1/calls", params={"limit": 1}).json()["data"]) == 1
    assert client.get("/v1/calls", params={"limit": 100}).status_code == 200
    assert len(client.get("/v1/calls").json()["data"]) <= 20
