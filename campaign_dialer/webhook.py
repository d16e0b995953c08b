"""The agent webhook receiver: the platform tells us a call ended, we need not keep asking.

A raw ASGI app served by uvicorn inside the dialer's own event loop while a run lasts. Each
delivery is checked before it is believed and committed before it is acknowledged:

- `Vantax-Signature` (HMAC-SHA256 of "<t>.<raw body>") is verified on the raw bytes, before
  any parsing, against every configured secret (rotation), in constant time, and refused with
  401 when it is wrong or more than 5 minutes from now; the refusal is logged, the body never;
- an event for a call this run follows is committed to the journal (off the event loop, one
  writer at a time, on a connection of its own), then answered 200; the engine is woken and
  finishes the call from the journal, so a crash after the answer loses nothing;
- an event for a call this run does not know (another campaign's, a finished one) is answered
  200 and left: its owner's reconciliation poll finds the call. Events that arrive in the
  instant between the platform creating a call and this run learning its id are held in memory
  for a short while and committed when the engine adopts the call;
- unknown event types are answered 200 and ignored.

Where events are written is an `EventSink`: today the campaign's SQLite journal; a shared store
(PostgreSQL) can take the same writes for any call it knows, whichever process owns the call.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import socket
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import anyio
import anyio.to_thread
import uvicorn

from campaign_dialer import log

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

SIGNATURE_HEADER = "vantax-signature"
TOLERANCE_S = 300.0  # [assumed] a timestamp older than 5 minutes is refused
EVENTS = frozenset({"call.status_changed", "call.completed"})
MAX_BODY = 1024 * 1024
# Events for a call nobody here follows yet (its POST is still being answered) wait this
# long and no more, and never more than this many: the reconciliation poll is the backstop.
ORPHAN_TTL_S = 120.0
MAX_ORPHANS = 10_000


def verify_signature(
    header: str | None, body: bytes, secrets: Sequence[bytes], *, now: float,
    tolerance_s: float = TOLERANCE_S,
) -> str | None:
    """None when `header` signs `body` with one of `secrets` recently; else why not."""
    if not header:
        return "missing_signature"
    stamp: str | None = None
    sigs: list[str] = []
    for part in header.split(","):
        name, sep, value = part.strip().partition("=")
        if not sep:
            continue
        if name == "t":
            stamp = value.strip()
        elif name == "v1":
            sigs.append(value.strip().lower())
    if stamp is None or not sigs:
        return "malformed_signature"
    try:
        t = int(stamp)
    except ValueError:
        return "malformed_signature"
    if abs(now - t) > tolerance_s:
        return "stale_signature"
    signed = stamp.encode() + b"." + body
    for secret in secrets:
        expected = hmac.new(secret, signed, hashlib.sha256).hexdigest()
        for sig in sigs:
            if hmac.compare_digest(expected, sig):
                return None
    return "bad_signature"


@dataclass(frozen=True)
class WebhookEvent:
    """One verified delivery: what it says of which call, and its exact bytes' digest."""

    event: str
    call_id: str
    status: str
    data: dict[str, Any]
    body_sha256: str


class EventSink(Protocol):
    """Where verified events are committed; `add` returns False for a duplicate."""

    def add(self, event: WebhookEvent) -> bool: ...


class JournalSink:
    """Commits events to the campaign journal through a connection of its own.

    Called only from worker threads, one at a time (the receiver's limiter): the engine's
    connection and this one take turns at SQLite's write lock (BEGIN IMMEDIATE, busy
    timeout), so each event is one short transaction and the journal has one writer at once.
    """

    def __init__(self, journal: Any) -> None:
        self.journal = journal

    def add(self, event: WebhookEvent) -> bool:
        return bool(self.journal.add_webhook_event(
            call_id=event.call_id, event=event.event, status=event.status,
            body_sha256=event.body_sha256, data=json.dumps(event.data, sort_keys=True),
        ))


class Receiver:
    """ASGI app receiving the agent webhook for one run."""

    def __init__(
        self, *, secrets: Sequence[str], sink: EventSink, path: str = "/webhooks/vantax",
        campaign: str = "",
    ) -> None:
        if not secrets:
            raise ValueError("a webhook receiver needs at least one secret")
        self._secrets = [s.encode() for s in secrets]
        self._sink = sink
        self.path = path
        self.log = log.get("webhook", campaign=campaign)
        self._limiter = anyio.CapacityLimiter(1)
        # call id -> the event the engine waits on for that call
        self._watched: dict[str, anyio.Event] = {}
        self._orphans: dict[str, list[tuple[float, WebhookEvent]]] = {}
        self._orphan_count = 0
        self.counts: dict[str, int] = {}

    # -- the engine's side ------------------------------------------------------------
    async def watch(self, call_id: str) -> None:
        """Follow `call_id`: its events wake the engine; ones that came early are committed."""
        self._watched.setdefault(call_id, anyio.Event())
        early = self._orphans.pop(call_id, [])
        self._orphan_count -= len(early)
        for _, ev in early:
            await self._commit(ev)
        if early:
            self._watched[call_id].set()

    def unwatch(self, call_id: str) -> None:
        self._watched.pop(call_id, None)

    def arm(self, call_id: str) -> anyio.Event:
        """The event to wait on for `call_id`'s next delivery (take it BEFORE reading the
        journal: a delivery committed after the read still sets it)."""
        ev = self._watched.get(call_id)
        if ev is None or ev.is_set():
            ev = self._watched[call_id] = anyio.Event()
        return ev

    # -- ASGI -------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            return
        if scope["type"] != "http":
            return
        if scope["path"] != self.path:
            await _reply(send, 404, {"error": "not_found"})
            return
        if scope["method"] != "POST":
            await _reply(send, 405, {"error": "method_not_allowed"})
            return
        body = await _read_body(receive)
        if body is None:
            self._count("too_large")
            await _reply(send, 413, {"error": "too_large"})
            return
        header = _header(scope, SIGNATURE_HEADER)
        problem = verify_signature(header, body, self._secrets, now=time.time())
        if problem is not None:
            self._count(problem)
            client = scope.get("client")
            self.log.warning("webhook_refused", reason=problem, size=len(body),
                             peer=client[0] if client else None)
            await _reply(send, 401, {"error": problem})
            return
        status, answer = await self._handle(body)
        await _reply(send, status, answer)

    async def _handle(self, body: bytes) -> tuple[int, dict[str, Any]]:
        try:
            doc = json.loads(body)
        except ValueError:
            self._count("unreadable")
            self.log.warning("webhook_unreadable", size=len(body))
            return 400, {"error": "not_json"}
        if not isinstance(doc, dict):
            # The contract's body is an object: an array or a bare value is not an event
            # of any kind (answered like a body that is not JSON, never a silent 200).
            self._count("unreadable")
            self.log.warning("webhook_not_an_object", size=len(body),
                             json_type=type(doc).__name__)
            return 400, {"error": "not_json"}
        kind = doc.get("event")
        if kind not in EVENTS:
            self._count("ignored")
            self.log.info("webhook_ignored", webhook_event=str(kind)[:80])
            return 200, {"ok": True, "ignored": True}
        data = doc.get("data")
        call_id = data.get("id") if isinstance(data, dict) else None
        if isinstance(call_id, int) and not isinstance(call_id, bool):
            call_id = str(call_id)  # as the client reads a numeric id: the call it follows
        if not isinstance(call_id, str) or not call_id:
            self._count("unreadable")
            self.log.warning("webhook_without_call", webhook_event=kind)
            return 400, {"error": "no_call_id"}
        assert isinstance(data, dict)
        event = WebhookEvent(
            event=kind, call_id=call_id, status=str(data.get("status") or "unknown"),
            data=data, body_sha256=hashlib.sha256(body).hexdigest(),
        )
        if call_id not in self._watched:
            self._hold(event)
            self._count("unknown_call")
            return 200, {"ok": True, "known": False}
        new = await self._commit(event)
        self._count("committed" if new else "duplicate")
        waiter = self._watched.get(call_id)
        if new and waiter is not None:
            waiter.set()
        return 200, {"ok": True, "duplicate": not new}

    async def _commit(self, event: WebhookEvent) -> bool:
        # Committed before the 200 goes out: an acknowledged event is never lost. Shielded: a
        # run ending mid-write must not leave the write half done in its thread.
        new = False
        with anyio.CancelScope(shield=True):
            new = await anyio.to_thread.run_sync(self._sink.add, event, limiter=self._limiter)
        return new

    def _hold(self, event: WebhookEvent) -> None:
        now = time.monotonic()
        if self._orphan_count >= MAX_ORPHANS or len(self._orphans) > 1000:
            for cid in list(self._orphans):
                kept = [(t, e) for t, e in self._orphans[cid] if now - t < ORPHAN_TTL_S]
                self._orphan_count -= len(self._orphans[cid]) - len(kept)
                if kept:
                    self._orphans[cid] = kept
                else:
                    del self._orphans[cid]
        if self._orphan_count >= MAX_ORPHANS:
            return  # left for the owner's reconciliation poll
        self._orphans.setdefault(event.call_id, []).append((now, event))
        self._orphan_count += 1

    def _count(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1


async def _read_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _header(scope: Scope, name: str) -> str | None:
    want = name.encode()
    for key, value in scope.get("headers", ()):
        if key.lower() == want:
            return bytes(value).decode("latin-1")
    return None


async def _reply(send: Send, status: int, body: dict[str, Any]) -> None:
    raw = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode()),
    ]})
    await send({"type": "http.response.body", "body": raw})


def bind(host: str, port: int) -> socket.socket:
    """Listen before the first call is placed: deliveries queue in the backlog until served."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP: asyncio sets TCP_NODELAY on accepted sockets only then (no 40 ms
    # Nagle/delayed-ACK stall per answer).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(1024)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


class _Server(uvicorn.Server):
    """uvicorn without its signal handlers: the engine owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class ServedApp:
    """An ASGI app under uvicorn on an already bound socket, in the caller's event loop
    (the webhook receiver here, the monitor's page and metrics beside it)."""

    def __init__(self, app: Any, sock: socket.socket, *, graceful_s: int = 2,
                 keep_alive_s: int = 30, stop_s: float = 3.0) -> None:
        self.app = app
        self.sock = sock
        self.stop_s = stop_s
        config = uvicorn.Config(
            app, log_config=None, log_level="warning", access_log=False, lifespan="off",
            http="h11", timeout_graceful_shutdown=graceful_s, timeout_keep_alive=keep_alive_s,
        )
        self.server = _Server(config)
        self.done = anyio.Event()

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    async def serve(self) -> None:
        try:
            await self.server.serve(sockets=[self.sock])
        finally:
            self.sock.close()
            self.done.set()

    async def stop(self, timeout: float | None = None) -> None:
        """Finish answering, then close; an event mid-commit is written before its answer."""
        self.server.should_exit = True
        with anyio.move_on_after(self.stop_s if timeout is None else timeout):
            await self.done.wait()


class Served(ServedApp):
    """The receiver under uvicorn on an already bound socket, in the caller's event loop."""

    def __init__(self, receiver: Receiver, sock: socket.socket, app: Any = None) -> None:
        # `app`: another ASGI app in front of the receiver (the monitor, on the same port).
        super().__init__(app or receiver, sock)
        self.receiver = receiver
