"""Assembly: an engine for one campaign, from its plan. The caller's side of the engine.

The one place a run meets the planning module: the plan (contacts loaded, gate built,
contact history opened) is made here. The engine itself receives rows, a gate, a DNC ledger,
a history and a journal, and never imports planning.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from campaign_dialer.clock import Clock
from campaign_dialer.config import Campaign
from campaign_dialer.engine import ClientFactory, Engine, RunOptions, Stats
from campaign_dialer.planning import Plan, open_campaign_history, plan_once
from campaign_dialer.store import HistoryStore, JournalStore, open_plan_store

if TYPE_CHECKING:
    from campaign_dialer.store import Coordination, Stores


def plan_for_run(
    campaign: Campaign, at: datetime, history: HistoryStore | None = None,
    stores: Stores | None = None,
) -> Plan:
    """The plan a run dials from, over `history` (default: the campaign's SQLite contact
    history, opened here; the caller closes `plan.history`): the stored plan of the same
    inputs when there is one (`plan_once`), in the team's database of `stores` on PostgreSQL."""
    plans = open_plan_store(
        campaign.journal_path, db=stores.db if stores else None, campaign=campaign.name)
    return plan_once(campaign, at, history, plans)


def engine_for_plan(
    plan: Plan, *, journal: JournalStore, client_factory: ClientFactory, clock: Clock,
    options: RunOptions | None = None, on_progress: Callable[[Stats], None] | None = None,
    coordinator: Coordination | None = None,
) -> Engine:
    """The engine for `plan`; with a `coordinator` (PostgreSQL) it shares the campaign with
    the other processes running it (claims, leases, the database's limits)."""
    campaign = plan.campaign
    history = plan.history if plan.history is not None else open_campaign_history(campaign)

    return Engine(
        campaign=campaign, rows=plan.rows, gate=plan.gate, dnc_ledger=plan.dnc_ledger,
        history=history, journal=journal, client_factory=client_factory, clock=clock,
        options=options, on_progress=on_progress, coordinator=coordinator,
        caller_id_rules=plan.caller_id_rules,
    )
