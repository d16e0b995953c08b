"""Assembly: an engine for one campaign, from its plan. The caller's side of the engine.

The one place a run meets the planning module: the plan (contacts loaded, gate built,
contact history opened) is made here. The engine itself receives rows, a gate, a DNC ledger,
a history and a journal, and never imports planning.

It is also where the store's backend meets the engine, once: where the rows come from (a
local schedule over the SQLite journal, or claims from the team database), the limits
(this process's, or the database's shared ones) and a second connection to the journal.
The engine asks none of them which backend it is.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from campaign_dialer.clock import Clock
from campaign_dialer.config import Campaign, CampaignFile
from campaign_dialer.engine import (
    REQUEST_HEADROOM,
    ClaimSource,
    ClientFactory,
    Engine,
    Limits,
    LocalSchedule,
    RowSource,
    RunOptions,
    Stats,
)
from campaign_dialer.planning import Plan, make_plan, open_campaign_history
from campaign_dialer.store import HistoryStore, JournalStore, open_journal

if TYPE_CHECKING:
    from campaign_dialer.store import Coordinator


def plan_for_run(campaign: Campaign, at: datetime, history: HistoryStore | None = None) -> Plan:
    """The plan a run dials from, over `history` (default: the campaign's SQLite contact
    history, opened here; the caller closes `plan.history`)."""
    return make_plan(campaign, at, history)


def engine_for_plan(
    plan: Plan, *, journal: JournalStore, client_factory: ClientFactory, clock: Clock,
    options: RunOptions | None = None, on_progress: Callable[[Stats], None] | None = None,
    coordinator: Coordinator | None = None,
) -> Engine:
    """The engine for `plan`; with a `coordinator` (PostgreSQL) it shares the campaign with
    the other processes running it (claims, leases, the database's limits)."""
    campaign = plan.campaign
    history = plan.history if plan.history is not None else open_campaign_history(campaign)
    source: RowSource
    limits: Callable[[CampaignFile], Limits]
    own_journal: Callable[[], JournalStore]
    if coordinator is None:
        source, limits = LocalSchedule(), Limits.for_campaign
        path = journal.path

        def own_journal() -> JournalStore:
            return open_journal(path, campaign.name)
    else:
        source, limits, own_journal = shared_parts(campaign, coordinator)
    return Engine(
        campaign=campaign, rows=plan.rows, gate=plan.gate, dnc_ledger=plan.dnc_ledger,
        history=history, journal=journal, client_factory=client_factory, clock=clock,
        own_journal=own_journal, source=source, limits=limits, options=options,
        on_progress=on_progress, caller_id_rules=plan.caller_id_rules,
    )


def shared_parts(
    campaign: Campaign, co: Coordinator,
) -> tuple[RowSource, Callable[[CampaignFile], Limits], Callable[[], JournalStore]]:
    """A campaign shared through the team database: rows by claim, the database's rate
    limits, a journal of its own on the same database."""
    # Deliberately lazy: the PostgreSQL backend imports psycopg (over a second), which a
    # SQLite run never needs.
    from campaign_dialer.store import (
        LeaseLost,
        LiveLimitReached,
        PgJournal,
        SharedRateLimiter,
        shared_limits,
    )

    db, name = co.db, campaign.name

    def configure_limits() -> None:
        """The campaign's rates, one row each (in the lane, at the start of the run)."""
        cfg = campaign.model
        shared_limits.configure(db, name, shared_limits.CALLS, cfg.pacing.calls_per_second)
        shared_limits.configure(db, name, shared_limits.REQUESTS,
                                cfg.api.requests_per_second * REQUEST_HEADROOM)

    def limits(cfg: CampaignFile) -> Limits:
        return Limits.shared(
            cfg, calls=SharedRateLimiter(db, name, shared_limits.CALLS),
            requests=SharedRateLimiter(db, name, shared_limits.REQUESTS),
        )

    def own_journal() -> JournalStore:
        return PgJournal(db, name)

    source = ClaimSource(co, configure_limits=configure_limits, lease_lost=LeaseLost,
                         live_full=LiveLimitReached)
    return source, limits, own_journal
