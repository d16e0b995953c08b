"""Fixtures for the sandbox's own tests: real servers on loopback, real httpx clients."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from campaign_dialer.sandbox import SandboxConfig, SandboxServer

from ._support import KEY, client_for


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "sandbox: starts a sandbox server on loopback")


@pytest.fixture
def make_sandbox() -> Iterator[Callable[..., SandboxServer]]:
    """Start servers with given settings; all are stopped at the end of the test."""
    started: list[SandboxServer] = []

    def make(**settings: Any) -> SandboxServer:
        settings.setdefault("api_keys", (KEY,))
        server = SandboxServer(SandboxConfig(**settings)).start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    """A shared server with limits out of the way, for tests about one request at a time."""
    config = SandboxConfig(
        api_keys=(KEY,), seed=0, time_scale=0.002,
        requests_per_second=None, max_live_calls=None,
    )
    with SandboxServer(config) as server:
        yield server


@pytest.fixture
def client(sandbox: SandboxServer) -> Iterator[httpx.Client]:
    with client_for(sandbox) as c:
        yield c
