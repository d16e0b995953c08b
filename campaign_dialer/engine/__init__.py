"""The engine: place the calls the gate allows, follow each to its end, survive the world.

One job per module: `pacing` (limits), `schedule` (which row next), `redial` (the policy),
`fates` (results' words for each row), `keys` (idempotency), `io` (the store off the loop),
`gatekeeper` (the gate at dial time), `telemetry` (stats, HTTP log), `breaker`, and the
engine in layers: `base` (state), `follow`, `calls`, `recovery`, `shared` (claims, when
several processes share a campaign on PostgreSQL), `run`. `setup` assembles
an engine from a plan (the caller's side; it is the one module here that imports planning).
"""

from __future__ import annotations

from .base import ClientFactory, RunOptions, Stop
from .fates import attempt_fate, row_fate
from .keys import idempotency_key, revised_key
from .pacing import REQUEST_HEADROOM, Pacer, backoff
from .redial import RedialPolicy, next_attempt
from .rows import RecoveredRow, Row
from .run import Engine, RunOutcome
from .telemetry import Stats

__all__ = [
    "REQUEST_HEADROOM", "ClientFactory", "Engine", "Pacer", "RecoveredRow", "RedialPolicy",
    "Row", "RunOptions", "RunOutcome", "Stats", "Stop", "attempt_fate", "backoff",
    "idempotency_key", "next_attempt", "revised_key", "row_fate",
]
