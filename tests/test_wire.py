"""The client's own HTTP/1.1 wire against a real server on 127.0.0.1 that answers as scripted.

What matters for never-twice: a request that could not be written is NotSent (placed
nothing), and one written but not answered (a drop, a timeout, a garbled answer) is a
TransientError (it may have placed the call; the engine re-sends the same key).
"""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from campaign_dialer.client import NotSent, RateLimited, TransientError, VantaxClient

pytestmark = pytest.mark.anyio
KEY = "vx_test_wire_0123456789"
CALL = {"id": "call_1", "status": "initiated", "to": "+12125550100"}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


Answer = Callable[[int, bytes, bytes], bytes | None]  # (n-th request, head, body) -> raw answer


def ok(payload: dict[str, Any], *, extra: str = "") -> bytes:
    body = json.dumps(payload).encode()
    return (f"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n{extra}"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


@asynccontextmanager
async def server(answer: Answer) -> AsyncIterator[dict[str, Any]]:
    """A server whose `answer` gives the raw bytes to send (None: close without a word)."""
    seen: dict[str, Any] = {"connections": 0, "requests": []}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen["connections"] += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                body = await reader.readexactly(length)
                seen["requests"].append((head.decode(), body))
                raw = answer(len(seen["requests"]), head, body)
                if raw is None:
                    break
                writer.write(raw)
                await writer.drain()
                if b"Connection: close" in raw:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    seen["url"] = f"http://127.0.0.1:{srv.sockets[0].getsockname()[1]}"
    try:
        yield seen
    finally:
        srv.close()


async def test_requests_share_a_kept_alive_connection_and_say_what_httpx_said() -> None:
    async with server(lambda n, h, b: ok({"success": True, "data": CALL})) as seen:
        async with VantaxClient(seen["url"], KEY) as client:
            body = {"agent_id": "agt_1", "phone_number": "+12125550100", "note": "é"}
            call = await client.place_call(body, "key-1")
            again = await client.get_call(call.id)
    assert call.id == again.id == "call_1"
    assert seen["connections"] == 1
    (post_head, post_body), (get_head, get_body) = seen["requests"]
    assert post_head.startswith("POST /v1/calls HTTP/1.1\r\n")
    assert f"Authorization: Bearer {KEY}" in post_head
    assert "Idempotency-Key: key-1" in post_head
    assert "Content-Type: application/json" in post_head
    assert json.loads(post_body) == body
    assert get_head.startswith("GET /v1/calls/call_1 HTTP/1.1\r\n") and get_body == b""
    assert f"Host: {seen['url'].split('//')[1]}" in get_head


async def test_chunked_gzip_and_read_to_close_answers_are_read() -> None:
    payload = json.dumps({"success": True, "data": CALL}).encode()
    packed = gzip.compress(payload)
    chunked = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Encoding: gzip\r\n\r\n"
               + b"%x\r\n" % 5 + packed[:5] + b"\r\n"
               + b"%x;ext=1\r\n" % (len(packed) - 5) + packed[5:] + b"\r\n0\r\n\r\n")
    to_close = b"HTTP/1.0 200 OK\r\nConnection: close\r\n\r\n" + payload
    answers = [chunked, to_close, ok({"success": True, "data": CALL})]
    async with server(lambda n, h, b: answers[n - 1]) as seen:
        async with VantaxClient(seen["url"], KEY) as client:
            for _ in answers:
                assert (await client.get_call("call_1")).status == "initiated"
    # The read-to-close answer cannot share its connection: the third request opened one.
    assert seen["connections"] == 2


async def test_a_connection_the_server_closed_is_not_reused() -> None:
    close_after = ok({"success": True, "data": CALL}, extra="Connection: close\r\n")
    async with server(lambda n, h, b: close_after) as seen:
        async with VantaxClient(seen["url"], KEY) as client:
            for _ in range(3):
                await client.get_call("call_1")
                await asyncio.sleep(0.01)
    assert seen["connections"] == 3


async def test_an_unanswered_post_may_have_placed_the_call() -> None:
    # Closed after reading the request, and garbage: both leave the call in doubt.
    short = b"HTTP/1.1 201 Created\r\nContent-Length: 99\r\n\r\n{"
    for answer in (None, b"garbage\r\n\r\n", short):
        async with server(lambda n, h, b, a=answer: a) as seen:  # type: ignore[misc]
            async with VantaxClient(seen["url"], KEY) as client:
                with pytest.raises(TransientError) as info:
                    await client.place_call({"agent_id": "a", "phone_number": "+1"}, "k")
        assert not isinstance(info.value, NotSent)
        assert KEY not in str(info.value)


async def test_no_answer_in_time_is_a_timeout_not_not_sent() -> None:
    async def never(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await asyncio.sleep(5)
        writer.close()

    srv = await asyncio.start_server(never, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{srv.sockets[0].getsockname()[1]}"
    try:
        async with VantaxClient(url, KEY, timeout_s=0.2) as client:
            with pytest.raises(TransientError, match="timed out") as info:
                await client.get_call("call_1")
        assert not isinstance(info.value, NotSent)
    finally:
        srv.close()


async def test_nothing_listening_is_not_sent() -> None:
    srv = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    srv.close()
    await srv.wait_closed()
    async with VantaxClient(f"http://127.0.0.1:{port}", KEY) as client:
        with pytest.raises(NotSent, match="could not connect"):
            await client.place_call({"agent_id": "a", "phone_number": "+1"}, "k")


async def test_a_429_carries_its_retry_after_and_code() -> None:
    body = json.dumps({"success": False, "message": "slow down",
                       "error": {"code": "rate_limited", "details": {}}}).encode()
    raw = (b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 0.25\r\n"
           b"Content-Length: %d\r\n\r\n" % len(body)) + body
    seen_exchanges: list[Any] = []
    async with server(lambda n, h, b: raw) as seen:
        async with VantaxClient(seen["url"], KEY, observer=seen_exchanges.append) as client:
            with pytest.raises(RateLimited) as info:
                await client.get_call("call_1")
    assert info.value.retry_after == 0.25 and info.value.code == "rate_limited"
    assert [(e.status, e.code) for e in seen_exchanges] == [(429, "rate_limited")]
