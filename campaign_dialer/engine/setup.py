"""Assembly: an engine for one campaign, from its plan. The caller's side of the engine.

The one place the engine's run meets the planning module: the plan (contacts loaded, gate
built, contact history opened) is made here, and the gate's rebuild (when a local DNC list
or the RND answers change mid-run) is `build_gate` on the same history. The engine itself
receives rows, a gate, a DNC ledger, a history and a journal.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from campaign_dialer.clock import Clock
from campaign_dialer.compliance import Gate
from campaign_dialer.config import Campaign
from campaign_dialer.planning import Plan, build_gate, make_plan, open_campaign_history
from campaign_dialer.store import Journal

from .base import ClientFactory, RunOptions
from .run import Engine
from .telemetry import Stats


def plan_for_run(campaign: Campaign, at: datetime) -> Plan:
    """The plan a run dials from (its contact history opened; the caller closes it)."""
    return make_plan(campaign, at)


def engine_for_plan(
    plan: Plan, *, journal: Journal, client_factory: ClientFactory, clock: Clock,
    options: RunOptions | None = None, on_progress: Callable[[Stats], None] | None = None,
) -> Engine:
    campaign = plan.campaign
    history = plan.history if plan.history is not None else open_campaign_history(campaign)

    def rebuild_gate() -> Gate:
        return build_gate(campaign, history)[0]

    return Engine(
        campaign=campaign, rows=plan.rows, gate=plan.gate, dnc_ledger=plan.dnc_ledger,
        history=history, journal=journal, client_factory=client_factory, clock=clock,
        options=options, on_progress=on_progress, rebuild_gate=rebuild_gate,
    )
