"""Signed webhook deliveries, at least once, in order unless a fault says otherwise.

One sender task posts events one after another so that, by default, a receiver sees a call's
statuses in order; the `webhook_duplicate`, `webhook_reorder`, `webhook_delay` and
`webhook_lost` faults break exactly the guarantees the contract says a receiver must not rely
on. The signing secret can be changed while running (`set_secret`), as a platform rotates it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import random
import threading
import time
from typing import Any

import httpx

from campaign_dialer.sandbox.config import SandboxConfig
from campaign_dialer.sandbox.wire import iso_ms

_ATTEMPTS = 5


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The `Vantax-Signature` header value for `body` sent at `timestamp`."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


class WebhookSender:
    """Runs on the sandbox's event loop; `enqueue` must be called from that loop."""

    def __init__(
        self, config: SandboxConfig, rngs: dict[str, random.Random], lock: threading.Lock
    ) -> None:
        assert config.webhook_url and config.webhook_secret
        self._url = config.webhook_url
        self._secret = config.webhook_secret
        self._config = config
        self._rngs = rngs
        self._lock = lock
        self._queue: asyncio.Queue[tuple[str, dict[str, Any], float]] = asyncio.Queue()
        self._log: list[dict[str, Any]] = []
        self._task: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None
        self._delayed: set[asyncio.Task[None]] = set()

    def set_secret(self, secret: str) -> None:
        """Sign every delivery from now on with `secret` (a rotation); any thread."""
        if not secret:
            raise ValueError("the webhook secret must not be empty")
        with self._lock:
            self._secret = secret

    def start(self) -> None:
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(5.0), trust_env=False)
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        tasks = [t for t in (self._task, *self._delayed) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._client is not None:
            await self._client.aclose()

    def enqueue(self, event: str, data: dict[str, Any]) -> None:
        self._queue.put_nowait((event, data, time.time()))

    def audit(self) -> list[dict[str, Any]]:
        """Caller holds the sandbox lock."""
        return [dict(entry) for entry in self._log]

    def _fires(self, fault: str) -> bool:
        rate = self._config.faults.get(fault, 0.0)
        return rate > 0.0 and self._rngs[fault].random() < rate

    async def _run(self) -> None:
        held: tuple[str, dict[str, Any], float] | None = None
        while True:
            if held is None:
                item = await self._queue.get()
            else:
                try:
                    item = await asyncio.wait_for(self._queue.get(), timeout=0.5)
                except TimeoutError:
                    await self._deliver(held, reordered=True)
                    held = None
                    continue
            if held is None and self._fires("webhook_reorder"):
                held = item
                continue
            await self._deliver(item, reordered=False)
            if held is not None:
                await self._deliver(held, reordered=True)
                held = None

    async def _deliver(self, item: tuple[str, dict[str, Any], float], reordered: bool) -> None:
        if self._fires("webhook_lost"):
            self._record(item, attempts=0, status=None, duplicate=False, reordered=reordered,
                         lost=True)
            return
        if self._fires("webhook_delay"):
            task = asyncio.get_running_loop().create_task(self._late(item, reordered))
            self._delayed.add(task)
            task.add_done_callback(self._delayed.discard)
            return
        await self._send(item, reordered, delayed=False)

    async def _late(self, item: tuple[str, dict[str, Any], float], reordered: bool) -> None:
        await asyncio.sleep(self._config.webhook_delay_seconds)
        await self._send(item, reordered, delayed=True)

    async def _send(
        self, item: tuple[str, dict[str, Any], float], reordered: bool, delayed: bool
    ) -> None:
        event, data, created = item
        body = json.dumps(
            {"event": event, "created_at": iso_ms(created), "data": data}, separators=(",", ":")
        ).encode()
        copies = 2 if self._fires("webhook_duplicate") else 1
        for copy in range(copies):
            status: int | None = None
            attempts = 0
            while attempts < _ATTEMPTS:
                attempts += 1
                with self._lock:
                    secret = self._secret
                headers = {
                    "Content-Type": "application/json",
                    "Vantax-Signature": sign(secret, int(time.time()), body),
                }
                try:
                    assert self._client is not None
                    response = await self._client.post(self._url, content=body, headers=headers)
                    status = response.status_code
                    if 200 <= status < 300:
                        break
                except httpx.HTTPError:
                    status = None
                await asyncio.sleep(0.05 * 2 ** (attempts - 1))
            self._record(item, attempts=attempts, status=status, duplicate=copy > 0,
                         reordered=reordered, delayed=delayed)

    def _record(
        self, item: tuple[str, dict[str, Any], float], *, attempts: int, status: int | None,
        duplicate: bool, reordered: bool, delayed: bool = False, lost: bool = False,
    ) -> None:
        event, data, _ = item
        with self._lock:
            self._log.append({
                "event": event,
                "call_id": data.get("id"),
                "status": data.get("status"),
                "attempts": attempts,
                "response_status": status,
                "delivered": status is not None and 200 <= status < 300,
                "duplicate": duplicate,
                "reordered": reordered,
                "delayed": delayed,
                "lost": lost,
                "mono": time.monotonic(),
                "wall": iso_ms(time.time()),
            })
