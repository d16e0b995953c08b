"""Every row of the contract's response table for POST /v1/calls, plus GET /v1/calls/{id}."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable

import httpx
import pytest

from campaign_dialer.sandbox import SandboxServer

from ._support import AGENT, KEY, auth, client_for, fresh_number

pytestmark = pytest.mark.sandbox

CALL_ID = re.compile(r"^call_[0-9a-f]+$")
ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def error_code(response: httpx.Response) -> str:
    body = response.json()
    assert body["success"] is False
    assert isinstance(body["message"], str) and body["message"]
    assert isinstance(body["error"]["details"], dict)
    return str(body["error"]["code"])


def test_201_contact_call_has_the_seed_shape(client: httpx.Client) -> None:
    r = client.post("/v1/calls", json={"agent_id": AGENT, "contact_id": "ct_9d12fa",
                                       "from_phone_number_id": "pn_55ad12"})
    assert r.status_code == 201
    body = r.json()
    assert body["success"] is True and body["message"] == "Outbound call initiated"
    call = body["data"]
    assert CALL_ID.match(call["id"])
    assert call["sub_account_id"] == "sub_8a1f4c2e"
    assert call["agent_id"] == AGENT
    assert call["contact_id"] == "ct_9d12fa"
    assert call["direction"] == "outbound"
    assert call["status"] == "initiated"
    assert call["from"] == "+18885550199"
    assert call["to"] == "+14155550188"
    assert ISO_Z.match(call["created_at"])


def test_201_ad_hoc_number_and_other_from_number(client: httpx.Client) -> None:
    number = fresh_number()
    r = client.post("/v1/calls", json={"agent_id": AGENT, "phone_number": number,
                                       "from_phone_number_id": "pn_0b3c77"})
    assert r.status_code == 201
    call = r.json()["data"]
    assert call["contact_id"] is None
    assert call["to"] == number
    assert call["from"] == "+14155550111"


def test_201_defaults_to_the_agents_outbound_number(client: httpx.Client) -> None:
    r = client.post("/v1/calls", json={"agent_id": "agt_7c4e10", "phone_number": fresh_number()})
    assert r.status_code == 201
    assert r.json()["data"]["from"] == "+18885550142"


@pytest.mark.parametrize(
    "headers",
    [{}, auth("vx_test_wrongkey9999"), {"Authorization": KEY}, {"Authorization": "Basic abc"}],
    ids=["missing", "wrong", "no-scheme", "basic"],
)
def test_401_without_a_valid_key(sandbox: SandboxServer, headers: dict[str, str]) -> None:
    with httpx.Client(base_url=sandbox.url, trust_env=False) as c:
        before = len(sandbox.audit()["calls"])
        r = c.post("/v1/calls", json={"agent_id": AGENT, "phone_number": fresh_number()},
                   headers=headers)
        assert r.status_code == 401
        assert error_code(r) == "unauthorized"
        assert c.get("/v1/calls", headers=headers).status_code == 401
        assert c.get("/v1/calls/call_00", headers=headers).status_code == 401
        assert len(sandbox.audit()["calls"]) == before
        last = sandbox.audit()["requests"][-1]
        assert last["status"] == 401 and last["admitted"] is False


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"agent_id": "agt_nope", "contact_id": "ct_9d12fa"}, "agent_not_found"),
        ({"agent_id": AGENT, "contact_id": "ct_nope"}, "contact_not_found"),
        ({"agent_id": AGENT, "phone_number": "+12065550000", "from_phone_number_id": "pn_nope"},
         "phone_number_not_found"),
    ],
)
def test_404_unknown_references(client: httpx.Client, body: dict[str, str], code: str) -> None:
    r = client.post("/v1/calls", json=body)
    assert r.status_code == 404
    assert error_code(r) == code


def test_404_unknown_call(client: httpx.Client) -> None:
    r = client.get("/v1/calls/call_0000000000000000")
    assert r.status_code == 404
    assert error_code(r) == "call_not_found"


def test_409_dnc_listed_for_number_and_contact(sandbox: SandboxServer,
                                               client: httpx.Client) -> None:
    before = len(sandbox.audit()["calls"])
    r = client.post("/v1/calls", json={"agent_id": AGENT, "phone_number": "+12025550199"})
    assert r.status_code == 409 and error_code(r) == "dnc_listed"
    # ct_0d9b46's number is on the list: the DNC check applies to a contact's number too.
    r = client.post("/v1/calls", json={"agent_id": AGENT, "contact_id": "ct_0d9b46"})
    assert r.status_code == 409 and error_code(r) == "dnc_listed"
    assert len(sandbox.audit()["calls"]) == before


def test_409_dnc_added_at_runtime(sandbox: SandboxServer, client: httpx.Client) -> None:
    first, second = fresh_number(), fresh_number()
    sandbox.add_dnc(first)
    r = client.post("/v1/calls", json={"agent_id": AGENT, "phone_number": first})
    assert r.status_code == 409 and error_code(r) == "dnc_listed"
    admin = client.post("/_sandbox/dnc", json={"phone_number": second})
    assert admin.status_code == 200
    r = client.post("/v1/calls", json={"agent_id": AGENT, "phone_number": second})
    assert r.status_code == 409 and error_code(r) == "dnc_listed"


def test_409_call_in_progress(make_sandbox: Callable[..., SandboxServer]) -> None:
    # time_scale 10: every call stays live for many seconds of real time.
    sb = make_sandbox(time_scale=10.0, requests_per_second=None)
    with client_for(sb) as c:
        first = c.post("/v1/calls", json={"agent_id": AGENT, "contact_id": "ct_5b7e31"})
        assert first.status_code == 201
        again = c.post("/v1/calls", json={"agent_id": "agt_7c4e10", "contact_id": "ct_5b7e31"})
        assert again.status_code == 409
        assert error_code(again) == "call_in_progress"
        assert again.json()["error"]["details"]["call_id"] == first.json()["data"]["id"]
        # The same person dialled by number is on the same call.
        by_number = c.post("/v1/calls", json={"agent_id": AGENT, "phone_number": "+14155550123"})
        assert by_number.status_code == 409 and error_code(by_number) == "call_in_progress"
    assert len(sb.audit()["calls"]) == 1


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"agent_id": AGENT}, {"contact_id", "phone_number"}),
        ({"agent_id": AGENT, "contact_id": "ct_9d12fa", "phone_number": "+14155550188"},
         {"contact_id", "phone_number"}),
        ({"contact_id": "ct_9d12fa"}, {"agent_id"}),
        ({"agent_id": 12, "contact_id": "ct_9d12fa"}, {"agent_id"}),
        ({"agent_id": AGENT, "phone_number": "14155550188"}, {"phone_number"}),
        ({"agent_id": AGENT, "phone_number": "+1415555"}, {"phone_number"}),
        ({"agent_id": AGENT, "phone_number": "+0415555018"}, {"phone_number"}),
        ({"agent_id": AGENT, "phone_number": "+1415555018812345"}, {"phone_number"}),
        ({"agent_id": AGENT, "phone_number": "+1 415 555 0188"}, {"phone_number"}),
        ({"agent_id": AGENT, "phone_number": 14155550188}, {"phone_number"}),
        ({"agent_id": AGENT, "contact_id": "ct_9d12fa", "from_phone_number_id": 5},
         {"from_phone_number_id"}),
    ],
    ids=["neither", "both", "no-agent", "agent-not-str", "no-plus", "7-digits", "leading-0",
         "16-digits", "spaces", "number-type", "from-not-str"],
)
def test_422_validation(sandbox: SandboxServer, client: httpx.Client, body: dict[str, object],
                        fields: set[str]) -> None:
    before = len(sandbox.audit()["calls"])
    r = client.post("/v1/calls", json=body)
    assert r.status_code == 422
    assert error_code(r) == "validation_error"
    assert set(r.json()["error"]["details"]["fields"]) == fields
    assert len(sandbox.audit()["calls"]) == before


@pytest.mark.parametrize("number", ["+12345678", "+123456789012345"], ids=["8", "15"])
def test_e164_length_bounds_are_accepted(client: httpx.Client, number: str) -> None:
    r = client.post("/v1/calls", json={"agent_id": AGENT, "phone_number": number})
    assert r.status_code == 201


@pytest.mark.parametrize(
    ("content", "content_type", "field"),
    [
        (b"{not json", "application/json", "body"),
        (b"[1, 2]", "application/json", "body"),
        (b"", "application/json", "body"),
        (b'{"agent_id": "agt_3d9b21", "contact_id": "ct_9d12fa"}', "text/plain", "content-type"),
    ],
    ids=["broken", "array", "empty", "content-type"],
)
def test_422_unusable_body(client: httpx.Client, content: bytes, content_type: str,
                           field: str) -> None:
    r = client.post("/v1/calls", content=content, headers={"Content-Type": content_type})
    assert r.status_code == 422
    assert error_code(r) == "validation_error"
    assert field in r.json()["error"]["details"]["fields"]


def test_422_idempotency_key_too_long(client: httpx.Client) -> None:
    r = client.post("/v1/calls", json={"agent_id": AGENT, "phone_number": fresh_number()},
                    headers={"Idempotency-Key": "k" * 256})
    assert r.status_code == 422 and error_code(r) == "validation_error"


def test_idempotent_replay_places_nothing(sandbox: SandboxServer, client: httpx.Client) -> None:
    body = {"agent_id": AGENT, "phone_number": fresh_number()}
    headers = {"Idempotency-Key": "replay-" + body["phone_number"]}
    first = client.post("/v1/calls", json=body, headers=headers)
    assert first.status_code == 201
    # Same body, keys in another order: still the same request.
    again = client.post("/v1/calls", json=dict(reversed(body.items())), headers=headers)
    third = client.post("/v1/calls", json=body, headers=headers)
    for replay in (again, third):
        assert replay.status_code == first.status_code
        assert replay.json()["data"]["id"] == first.json()["data"]["id"]
    placed = [c for c in sandbox.audit()["calls"] if c["to"] == body["phone_number"]]
    assert len(placed) == 1
    assert placed[0]["idempotency_key"] == headers["Idempotency-Key"]
    replays = [r for r in sandbox.audit()["requests"]
               if r["idempotency_key"] == headers["Idempotency-Key"]]
    assert [r["replayed"] for r in replays] == [False, True, True]


def test_422_idempotency_mismatch(sandbox: SandboxServer, client: httpx.Client) -> None:
    key = {"Idempotency-Key": "mismatch-" + fresh_number()}
    assert client.post("/v1/calls", json={"agent_id": AGENT, "phone_number": fresh_number()},
                       headers=key).status_code == 201
    other = fresh_number()
    r = client.post("/v1/calls", json={"agent_id": AGENT, "phone_number": other}, headers=key)
    assert r.status_code == 422
    assert error_code(r) == "idempotency_mismatch"
    assert not [c for c in sandbox.audit()["calls"] if c["to"] == other]


def test_refused_request_is_not_remembered(client: httpx.Client) -> None:
    """A key whose first use was refused (404) can be used again once the request is fixed."""
    key = {"Idempotency-Key": "fixed-" + fresh_number()}
    number = fresh_number()
    r = client.post("/v1/calls", json={"agent_id": "agt_nope", "phone_number": number},
                    headers=key)
    assert r.status_code == 404
    r = client.post("/v1/calls", json={"agent_id": AGENT, "phone_number": number}, headers=key)
    assert r.status_code == 201


def test_429_rate_limited(make_sandbox: Callable[..., SandboxServer]) -> None:
    sb = make_sandbox(requests_per_second=2, retry_after="fractional")
    with client_for(sb) as c:
        responses = [c.get("/v1/calls") for _ in range(6)]
    limited = [r for r in responses if r.status_code == 429]
    assert limited, "six requests in a row never hit a limit of 2 per second"
    for r in limited:
        assert error_code(r) == "rate_limited"
        assert 0 < float(r.headers["Retry-After"]) <= 1.0
    # Rejected requests are not admitted, and admin routes are not limited.
    with client_for(sb) as c:
        assert all(c.get("/_sandbox/health").status_code == 200 for _ in range(5))
    audit = sb.audit()["requests"]
    assert all(not r["admitted"] for r in audit if r["status"] == 429)
    assert all(not r["path"].startswith("/_sandbox") for r in audit)


@pytest.mark.parametrize("mode", ["integer", "absent", "mixed"])
def test_retry_after_modes(make_sandbox: Callable[..., SandboxServer], mode: str) -> None:
    sb = make_sandbox(requests_per_second=1, retry_after=mode)
    seen: set[str] = set()
    with client_for(sb) as c:
        for _ in range(40):
            r = c.get("/v1/calls")
            if r.status_code != 429:
                continue
            value = r.headers.get("Retry-After")
            if value is None:
                seen.add("absent")
            elif value.isdigit():
                assert int(value) >= 1
                seen.add("integer")
            else:
                assert float(value) > 0
                seen.add("fractional")
    if mode == "mixed":
        assert len(seen) >= 2
    else:
        assert seen == {mode}


def test_429_concurrency_limited(make_sandbox: Callable[..., SandboxServer]) -> None:
    sb = make_sandbox(time_scale=10.0, requests_per_second=None, max_live_calls=2,
                      retry_after="fractional")
    with client_for(sb) as c:
        for _ in range(2):
            ok = c.post("/v1/calls", json={"agent_id": AGENT, "phone_number": fresh_number()})
            assert ok.status_code == 201
        r = c.post("/v1/calls", json={"agent_id": AGENT, "phone_number": fresh_number()})
    assert r.status_code == 429
    assert error_code(r) == "concurrency_limited"
    assert float(r.headers["Retry-After"]) > 0
    assert len(sb.audit()["calls"]) == 2
    assert sb.stats()["live_calls"] == 2


def test_unknown_route_and_method(client: httpx.Client) -> None:
    r = client.get("/v1/nothing")
    assert r.status_code == 404 and error_code(r) == "not_found"
    r = client.delete("/v1/calls/call_00")
    assert r.status_code == 405 and error_code(r) == "method_not_allowed"


def test_key_never_in_audit_or_audit_file(make_sandbox: Callable[..., SandboxServer],
                                          tmp_path: pytest.TempPathFactory) -> None:
    path = tmp_path / "audit.json"  # type: ignore[operator]
    wrong = "vx_test_notthekey4242"
    sb = make_sandbox(audit_path=path, requests_per_second=None)
    with client_for(sb) as c:
        c.post("/v1/calls", json={"agent_id": AGENT, "phone_number": fresh_number()},
               headers={"Idempotency-Key": "k-audit"})
        c.get("/v1/calls", headers=auth(wrong))
    text = json.dumps(sb.audit())
    requests = sb.audit()["requests"]
    assert requests[0]["key_fingerprint"] == hashlib.sha256(KEY.encode()).hexdigest()[:12]
    assert requests[1]["key_fingerprint"] == hashlib.sha256(wrong.encode()).hexdigest()[:12]
    sb.stop()
    on_disk = path.read_text()
    for secret in (KEY, wrong, KEY.removeprefix("vx_test_")):
        assert secret not in text
        assert secret not in on_disk
    saved = json.loads(on_disk)
    assert len(saved["requests"]) == 2 and len(saved["calls"]) == 1


def test_a_misplaced_key_is_flagged_and_redacted(sandbox: SandboxServer,
                                                 client: httpx.Client) -> None:
    """A client that leaks its key into a body, header or URL is caught, and the audit stays
    clean."""
    number = fresh_number()
    r = client.post("/v1/calls", json={"agent_id": AGENT, "phone_number": number, "note": KEY},
                    headers={"Idempotency-Key": f"k-{KEY}", "X-Debug": KEY})
    assert r.status_code == 201
    client.get("/v1/calls", params={"api_key": KEY})
    audit = sandbox.audit()
    post, get = audit["requests"][-2:]
    assert set(post["key_leaks"]) == {"body", "idempotency-key", "x-debug"}
    assert get["key_leaks"] == ["query"]
    assert post["body"]["note"] == "[REDACTED]"
    assert KEY not in json.dumps(audit)
    clean = client.get("/v1/calls", params={"limit": 1})
    assert clean.status_code == 200 and sandbox.audit()["requests"][-1]["key_leaks"] == []
