"""Idempotency keys: the only thing that makes a replayed POST the same call.

A key is derived from campaign, person and attempt, never random, so a retry, a rerun or a
crash can only ever replay the same call.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def idempotency_key(campaign: str, person: str, attempt: int) -> str:
    """Stable for one person's one attempt in one campaign: a replay can never ring twice."""
    digest = hashlib.sha256(f"{campaign}\x1f{person}\x1f{attempt}".encode()).hexdigest()
    return f"cd1-{digest[:48]}"


def revised_key(key: str, body: dict[str, Any]) -> str:
    """The key for a not-placed attempt re-sent with a corrected body (the platform answers a
    key reused with another body with 422 `idempotency_mismatch`, or its first answer)."""
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    return f"{key.split('.')[0]}.{digest[:12]}"
