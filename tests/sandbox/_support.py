"""Helpers shared by the sandbox tests."""

from __future__ import annotations

import itertools
from typing import Any

import httpx

from campaign_dialer.sandbox import SandboxServer

KEY = "vx_test_sandboxkey0001"
AGENT = "agt_3d9b21"
_numbers = itertools.count(1)


def fresh_number() -> str:
    """A number no other test in this session dials (so no call_in_progress or DNC clash)."""
    return f"+1206{next(_numbers):07d}"


def auth(key: str = KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def client_for(sb: SandboxServer, **kwargs: Any) -> httpx.Client:
    return httpx.Client(
        base_url=sb.url, headers=auth(), timeout=kwargs.pop("timeout", 10.0),
        trust_env=False, **kwargs,
    )
