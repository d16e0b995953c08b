"""The client owns the contract's [assumed] points: each is pinned here with MockTransport."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

from campaign_dialer.client import (
    AuthError,
    Conflict,
    DncRejected,
    NotFound,
    RateLimited,
    TransientError,
    UnexpectedResponse,
    ValidationFailed,
    VantaxClient,
    parse_retry_after,
)

KEY = "vx_test_secretsecret1234"
CALL = {
    "id": "call_1", "sub_account_id": "sub_1", "agent_id": "agt_1", "contact_id": None,
    "direction": "outbound", "status": "initiated", "from": "+18885550199",
    "to": "+14155550188", "created_at": "2026-06-10T12:00:00Z",
}
pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def envelope(code: str, message: str = "nope", **details: Any) -> dict[str, Any]:
    return {"success": False, "message": message, "error": {"code": code, "details": details}}


def client_for(handler: Any, **kw: Any) -> VantaxClient:
    return VantaxClient("http://127.0.0.1:1", KEY, transport=httpx.MockTransport(handler), **kw)


async def test_place_call_sends_key_body_and_idempotency_key() -> None:
    seen: list[httpx.Request] = []

    def handler(req: httpx.Request) -> httpx.Response:
        seen.append(req)
        return httpx.Response(201, json={"success": True, "data": CALL})

    async with client_for(handler) as c:
        call = await c.place_call({"agent_id": "agt_1", "phone_number": "+14155550188"}, "k-1")
    assert call.id == "call_1" and call.status == "initiated" and not call.is_terminal
    req = seen[0]
    assert req.method == "POST" and req.url.path == "/v1/calls"
    assert req.headers["Authorization"] == f"Bearer {KEY}"
    assert req.headers["Idempotency-Key"] == "k-1"
    assert req.headers["Content-Type"] == "application/json"
    assert json.loads(req.content) == {"agent_id": "agt_1", "phone_number": "+14155550188"}


@pytest.mark.parametrize(
    ("status", "body", "exc", "retryable"),
    [
        (401, envelope("unauthorized"), AuthError, False),
        (403, envelope("forbidden"), AuthError, False),
        (404, envelope("agent_not_found"), NotFound, False),
        (409, envelope("dnc_listed"), DncRejected, False),
        (409, envelope("some_new_dnc_code"), DncRejected, False),
        (409, envelope("call_in_progress"), Conflict, True),
        (409, envelope("idempotency_conflict"), Conflict, True),
        (422, envelope("validation_error", fields={"phone_number": "not E.164"}),
         ValidationFailed, False),
        (422, envelope("idempotency_mismatch"), ValidationFailed, False),
        (429, envelope("rate_limited"), RateLimited, True),
        (429, envelope("concurrency_limited"), RateLimited, True),
        (500, envelope("internal"), TransientError, True),
        (418, envelope("teapot"), UnexpectedResponse, False),
    ],
)
async def test_status_codes_map_to_a_small_hierarchy(
    status: int, body: dict[str, Any], exc: type[Exception], retryable: bool
) -> None:
    async with client_for(lambda r: httpx.Response(status, json=body)) as c:
        with pytest.raises(exc) as ei:
            await c.place_call({"agent_id": "a", "phone_number": "+14155550188"}, "k")
    err = ei.value
    assert err.status == status  # type: ignore[attr-defined]
    assert err.code == body["error"]["code"]  # type: ignore[attr-defined]
    assert err.retryable is retryable  # type: ignore[attr-defined]
    assert KEY not in str(err) and KEY not in repr(err)


async def test_html_502_from_a_proxy_is_transient() -> None:
    html = "<html><body><h1>502 Bad Gateway</h1></body></html>"
    handler = lambda r: httpx.Response(502, text=html, headers={"Content-Type": "text/html"})  # noqa: E731
    async with client_for(handler) as c:
        with pytest.raises(TransientError) as ei:
            await c.get_call("call_1")
    assert ei.value.status == 502 and ei.value.code is None


async def test_2xx_with_unreadable_body_is_retried_not_trusted() -> None:
    async with client_for(lambda r: httpx.Response(201, text="")) as c:
        with pytest.raises(TransientError):
            await c.place_call({"agent_id": "a", "phone_number": "+14155550188"}, "k")


async def test_dropped_connection_and_timeout_are_transient_and_keyless() -> None:
    def drop(req: httpx.Request) -> httpx.Response:
        raise httpx.RemoteProtocolError("peer closed connection", request=req)

    def slow(req: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=req)

    for handler in (drop, slow):
        async with client_for(handler) as c:
            with pytest.raises(TransientError) as ei:
                await c.place_call({"agent_id": "a", "phone_number": "+14155550188"}, "k")
        assert KEY not in str(ei.value) and KEY not in repr(ei.value)
        assert ei.value.__cause__ is None and ei.value.__suppress_context__


async def test_unknown_fields_and_statuses_are_kept_not_fatal() -> None:
    data = {**CALL, "status": "queued", "sentiment": "warm", "vendor": {"x": 1}}
    body = {"success": True, "data": data, "trace_id": "t"}
    async with client_for(lambda r: httpx.Response(200, json=body)) as c:
        call = await c.get_call("call_1")
    assert call.status == "queued" and not call.status_known and not call.is_terminal
    assert call.extra == {"sentiment": "warm", "vendor": {"x": 1}}


@pytest.mark.parametrize(
    ("header", "expected"),
    [("2", 2.0), ("0.25", 0.25), ("  1.5 ", 1.5), (None, None), ("soon", None),
     ("-3", 0.0), ("100000", 120.0), ("nan", None)],
)
def test_retry_after_forms(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header) == expected


def test_retry_after_http_date() -> None:
    now = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)
    header = format_datetime(now + timedelta(seconds=7), usegmt=True)
    assert parse_retry_after(header, now=now.timestamp()) == pytest.approx(7.0)


async def test_retry_after_is_carried_on_429() -> None:
    handler = lambda r: httpx.Response(  # noqa: E731
        429, json=envelope("rate_limited"), headers={"Retry-After": "0.4"}
    )
    async with client_for(handler) as c:
        with pytest.raises(RateLimited) as ei:
            await c.get_call("call_1")
    assert ei.value.retry_after == 0.4


async def test_every_request_waits_for_the_pacer_and_is_observed() -> None:
    paced: list[str] = []
    seen: list[Any] = []

    async def pacer(method: str) -> None:
        paced.append(method)

    def handler(req: httpx.Request) -> httpx.Response:
        if req.method == "POST":
            return httpx.Response(201, json={"success": True, "data": CALL})
        return httpx.Response(503, text="busy")

    async with client_for(handler, pacer=pacer, observer=seen.append) as c:
        await c.place_call({"agent_id": "a", "phone_number": "+14155550188"}, "k")
        with pytest.raises(TransientError):
            await c.get_call("call_1")
    assert paced == ["POST", "GET"]
    assert [(e.method, e.path, e.status) for e in seen] == [
        ("POST", "/v1/calls", 201), ("GET", "/v1/calls/{id}", 503)
    ]


async def test_list_calls_follows_the_cursor() -> None:
    pages = {
        None: {"success": True, "data": [{**CALL, "id": "call_a"}], "next_cursor": "c2"},
        "c2": {"success": True, "data": [{**CALL, "id": "call_b"}, {"junk": 1}],
               "next_cursor": None},
    }
    queries: list[dict[str, str]] = []

    def handler(req: httpx.Request) -> httpx.Response:
        q = dict(req.url.params)
        queries.append(q)
        return httpx.Response(200, json=pages[q.get("cursor")])

    ids: list[str] = []
    async with client_for(handler) as c:
        # A listed item without an id may be the very call looked for: the list is no answer
        # (crash recovery must not read it as "no call" and re-send the POST).
        with pytest.raises(UnexpectedResponse, match="without an id"):
            async for x in c.list_calls(to="+14155550188", created_after="2026-01-01"):
                ids.append(x.id)
    assert ids == ["call_a", "call_b"]
    assert queries[0]["to"] == "+14155550188" and queries[0]["limit"] == "100"
    assert queries[1]["cursor"] == "c2"


def test_repr_hides_the_key() -> None:
    c = VantaxClient("https://api.vantaxai.com", KEY)
    assert KEY not in repr(c)


def test_client_errors_are_dialer_errors_with_their_exit_code() -> None:
    """One root: should a client error ever reach the CLI, it exits with its documented code."""
    from campaign_dialer.client import VantaxError
    from campaign_dialer.errors import DialerError
    from campaign_dialer.exitcodes import ExitCode

    assert issubclass(VantaxError, DialerError)
    assert AuthError("x").exit_code == ExitCode.NOPERM == 77
    assert TransientError("x").exit_code == ExitCode.UNAVAILABLE == 69
    assert RateLimited("x").exit_code == ExitCode.UNAVAILABLE
    assert Conflict("x").exit_code == ExitCode.UNAVAILABLE
    assert UnexpectedResponse("x").exit_code == ExitCode.UNAVAILABLE
    assert ValidationFailed("x").exit_code == ExitCode.CONFIG
    assert NotFound("x").exit_code == ExitCode.CONFIG
    assert VantaxError("x").exit_code == DncRejected("x").exit_code == ExitCode.FAILURE
