"""The engine: place the calls the gate allows, follow each to its end, survive the world.

One job per module: `pacing` (limits), `schedule` (which row next), `redial` (the policy),
`fates` (results' words for each row), `keys` (idempotency), `io` (the store off the loop),
`gatekeeper` (the gate at dial time), `telemetry` (stats, HTTP log), `breaker`, and the
engine's parts, each a class given the run's context (`base`): a `Follower` (`follow`), a
`Dialer` (`calls`), a `Recovery` (`recovery`), owned by the `Engine` (`run`). Where rows
come from is a `RowSource` (`sources`: a local schedule; `shared`: claims from the team
database), chosen by the caller (`commands.assemble`, the one place that imports planning
and knows the store's backend).
"""

from __future__ import annotations

from .base import ClientFactory, Opening, Refill, RowSource, RunContext, RunOptions, RunState, Stop
from .calls import Dialer
from .columns import PlanColumns
from .fates import attempt_fate, row_fate
from .follow import Follower
from .keys import idempotency_key, revised_key
from .pacing import REQUEST_HEADROOM, Limits, Pacer, Slots, backoff
from .recovery import Recovery
from .redial import RedialPolicy, next_attempt
from .rows import RecoveredRow, Row
from .run import Engine, RunOutcome
from .shared import ClaimSource
from .sources import LocalSchedule
from .stored_plan import DialColumns, PersonIndex, StoredPlanSource
from .telemetry import Stats

__all__ = [
    "ClaimSource", "ClientFactory", "DialColumns", "Dialer", "Engine", "Follower", "Limits",
    "LocalSchedule", "Opening", "Pacer", "PersonIndex", "PlanColumns", "REQUEST_HEADROOM",
    "RecoveredRow", "Recovery", "RedialPolicy", "Refill", "Row", "RowSource", "RunContext",
    "RunOptions", "RunOutcome", "RunState", "Slots", "Stats", "Stop", "StoredPlanSource",
    "attempt_fate", "backoff", "idempotency_key", "next_attempt", "revised_key", "row_fate",
]
