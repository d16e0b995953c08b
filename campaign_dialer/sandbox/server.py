"""A real HTTP server on loopback, in a background thread with its own event loop.

Its own thread and loop so the process that starts it (a test, the demo, a benchmark) can run
its own asyncio loop, or block, without starving the server. We bind the socket ourselves
because uvicorn has no clean way to report the free port it picked.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import uvicorn

from campaign_dialer.sandbox.app import SandboxApp
from campaign_dialer.sandbox.config import SandboxConfig, is_loopback_host

log = logging.getLogger(__name__)

_DROP_MESSAGE = "ASGI callable returned without completing response."


class _QuietDrops(logging.Filter):
    """The drop_after_place fault is deliberate; uvicorn would log each one as an error."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != _DROP_MESSAGE


_uvicorn_error = logging.getLogger("uvicorn.error")
if not any(isinstance(f, _QuietDrops) for f in _uvicorn_error.filters):
    _uvicorn_error.addFilter(_QuietDrops())


class SandboxServer:
    """Context manager running the simulated Vantax API on 127.0.0.1 (or another loopback)."""

    def __init__(
        self, config: SandboxConfig | None = None, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        if not is_loopback_host(host):
            raise ValueError(f"the sandbox only binds loopback addresses, not {host!r}")
        self.config = config if config is not None else SandboxConfig()
        self.host = "127.0.0.1" if host == "localhost" else host
        self._requested_port = port
        self.app = SandboxApp(self.config)
        self._port: int | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._error: BaseException | None = None
        self._stopped = False

    # ---- public ----------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the sandbox is not started")
        return self._port

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def audit(self) -> dict[str, Any]:
        """Snapshot of every request and every placed call so far (thread-safe)."""
        return self.app.audit()

    def stats(self) -> dict[str, Any]:
        return self.app.stats()

    def add_dnc(self, number: str) -> None:
        self.app.add_dnc(number)

    def set_webhook_secret(self, secret: str) -> None:
        """Sign webhook deliveries with `secret` from now on (a platform-side rotation)."""
        self.app.set_webhook_secret(secret)

    def start(self) -> Self:
        if self._thread is not None:
            raise RuntimeError("the sandbox is already started")
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY on accepted sockets only when
        # proto says TCP, and without it every response waits ~40 ms (Nagle + delayed ACK).
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self._requested_port))
        except OSError:
            sock.close()
            raise
        self._port = sock.getsockname()[1]
        self.app.base_url = self.url
        uv_config = uvicorn.Config(
            self.app,
            log_config=None,  # never reconfigure the host process's logging
            log_level="warning",
            access_log=False,
            lifespan="off",
            http="auto",  # httptools when installed, else h11
            timeout_graceful_shutdown=2,
            timeout_keep_alive=30,
            backlog=1024,
        )
        self._server = uvicorn.Server(uv_config)
        self._thread = threading.Thread(
            target=self._run, args=(sock,), name=f"vantax-sandbox-{self._port}", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 15.0
        while not self._server.started:
            if self._error is not None or not self._thread.is_alive():
                self._thread.join(timeout=1)
                raise RuntimeError("the sandbox failed to start") from self._error
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the sandbox did not start within 15 s")
            time.sleep(0.005)
        log.info("sandbox listening on %s", self.url)
        return self

    def stop(self) -> None:
        """Stop serving, then write the audit file if one is configured."""
        if self._stopped:
            return
        self._stopped = True
        if self._loop is not None and not self._loop.is_closed():
            try:
                self._loop.call_soon_threadsafe(self.app.begin_stop)
            except RuntimeError:  # the loop closed in between
                pass
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=15)
        if self.config.audit_path is not None:
            self.write_audit(self.config.audit_path)

    def write_audit(self, path: Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(self.audit(), fh)
        os.replace(tmp, path)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ---- thread ----------------------------------------------------------------------------

    def _run(self, sock: socket.socket) -> None:
        try:
            asyncio.run(self._serve(sock))
        except BaseException as exc:  # reported to start() / visible in stop()
            self._error = exc
            log.exception("sandbox server crashed")
        finally:
            sock.close()

    async def _serve(self, sock: socket.socket) -> None:
        assert self._server is not None
        self._loop = asyncio.get_running_loop()
        await self.app.startup()
        try:
            await self._server.serve(sockets=[sock])
        finally:
            await self.app.shutdown()
