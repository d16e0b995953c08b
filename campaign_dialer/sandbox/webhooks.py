"""Signed webhook deliveries, at least once, in order unless a fault says otherwise.

One sender task posts events one after another so that, by default, a receiver sees a call's
statuses in order; the `webhook_duplicate` and `webhook_reorder` faults break exactly the
guarantees the contract says a receiver must not rely on.
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

from campaign_dialer.sandbox.app import iso_ms
from campaign_dialer.sandbox.config import SandboxConfig

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

    def start(self) -> None:
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(5.0), trust_env=False)
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
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
                headers = {
                    "Content-Type": "application/json",
                    "Vantax-Signature": sign(self._secret, int(time.time()), body),
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
            with self._lock:
                self._log.append({
                    "event": event,
                    "call_id": data.get("id"),
                    "status": data.get("status"),
                    "attempts": attempts,
                    "response_status": status,
                    "delivered": status is not None and 200 <= status < 300,
                    "duplicate": copy > 0,
                    "reordered": reordered,
                    "wall": iso_ms(time.time()),
                })
