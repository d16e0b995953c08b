"""The monitor's HTTP surface: `/metrics`, `/healthz`, the live page `/` and its `/live.json`.

A raw ASGI app, served by uvicorn inside the run's event loop (as the webhook receiver is);
when `[webhook]` listens on the same host and port, one server serves both and every other
path goes to the receiver. Reads only: nothing here changes a campaign.

The page is one offline document: no CDN, its one script pinned by hash in a strict
Content-Security-Policy (it may fetch only from its own origin), every figure set with
`textContent`, never parsed as HTML.
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
from collections.abc import Awaitable, Callable, MutableMapping
from functools import lru_cache
from importlib.resources import files
from typing import Any

import anyio
import anyio.to_thread

from campaign_dialer import log
from campaign_dialer.monitor.metrics import CONTENT_TYPE, Metrics
from campaign_dialer.webhook import ServedApp, bind

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

ROUTES = ("/", "/metrics", "/healthz", "/live.json")
VIEW_TTL_S = 1.0  # several scrapers and pages within a second share one read of the journal


@lru_cache(maxsize=1)
def page() -> tuple[bytes, str]:
    """The live page and its Content-Security-Policy (the script's hash in it)."""
    folder = files("campaign_dialer.monitor")
    script = (folder / "live.js").read_text(encoding="utf-8")
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    html = (folder / "live.html").read_text(encoding="utf-8").replace("/*SCRIPT*/", script)
    csp = ("default-src 'none'; connect-src 'self'; img-src data:; style-src 'unsafe-inline'; "
           f"script-src 'sha256-{digest}'; base-uri 'none'; form-action 'none'; "
           "frame-ancestors 'none'")
    return html.encode(), csp


class CachedView:
    """The live view, built in a worker thread (never on the loop) at most once a second."""

    def __init__(self, build: Callable[[], dict[str, Any]],
                 on_view: Callable[[dict[str, Any]], None] | None = None) -> None:
        self._build = build
        self._on_view = on_view
        self._lock = anyio.Lock()
        self._view: dict[str, Any] | None = None
        self._at = -1e9

    async def get(self) -> dict[str, Any]:
        async with self._lock:
            if self._view is None or anyio.current_time() - self._at >= VIEW_TTL_S:
                self._view = await anyio.to_thread.run_sync(self._build)
                self._at = anyio.current_time()
                if self._on_view is not None:
                    self._on_view(self._view)
            return self._view


class MonitorApp:
    """ASGI: the monitor's routes; any other path goes to `fallback` (the webhook receiver)."""

    def __init__(self, *, metrics: Metrics, view: CachedView, fallback: App | None = None,
                 campaign: str = "") -> None:
        self.metrics = metrics
        self.view = view
        self.fallback = fallback
        self.log = log.get("monitor", campaign=campaign)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        if path not in ROUTES:
            if self.fallback is not None:
                await self.fallback(scope, receive, send)
            else:
                await _reply(send, 404, b"not found\n", "text/plain; charset=utf-8")
            return
        if scope["method"] not in ("GET", "HEAD"):
            await _reply(send, 405, b"method not allowed\n", "text/plain; charset=utf-8",
                         [(b"allow", b"GET, HEAD")])
            return
        head = scope["method"] == "HEAD"
        try:
            if path == "/healthz":
                await _reply(send, 200, b"ok\n", "text/plain; charset=utf-8", head=head)
            elif path == "/metrics":
                await self.view.get()  # rows and budget gauges as of now
                await _reply(send, 200, self.metrics.exposition(), CONTENT_TYPE, head=head)
            elif path == "/live.json":
                body = json.dumps(await self.view.get(), default=str).encode()
                await _reply(send, 200, body, "application/json", head=head)
            else:
                html, csp = page()
                await _reply(send, 200, html, "text/html; charset=utf-8",
                             [(b"content-security-policy", csp.encode())], head=head)
        except Exception as e:  # noqa: BLE001 - a monitor's failure must never stop a run
            self.log.warning("monitor_failed", path=path, error=log.scrub(repr(e))[:300])
            await _reply(send, 503, b"unavailable\n", "text/plain; charset=utf-8")


async def _reply(send: Send, status: int, body: bytes, ctype: str,
                 extra: list[tuple[bytes, bytes]] | None = None, *, head: bool = False) -> None:
    headers = [(b"content-type", ctype.encode()), (b"content-length", str(len(body)).encode()),
               (b"cache-control", b"no-store"), (b"x-content-type-options", b"nosniff"),
               (b"referrer-policy", b"no-referrer"), *(extra or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else body})


def listen(host: str, port: int) -> socket.socket:
    """Bound before the first call (so a port in use stops the run before it dials)."""
    return bind(host, port)


class Listener(ServedApp):
    """The monitor app under uvicorn on its own bound socket, in the run's event loop."""

    def __init__(self, app: MonitorApp, sock: socket.socket) -> None:
        super().__init__(app, sock, graceful_s=1, keep_alive_s=5, stop_s=2.0)
