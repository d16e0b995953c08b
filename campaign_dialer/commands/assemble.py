"""Assembly: an engine for one campaign, from its plan. The caller's side of the engine.

The one place a run meets the planning module: the plan (contacts loaded, gate built,
contact history opened) is made here. The engine itself receives rows, a gate, a DNC ledger,
a history and a journal, and never imports planning.

It is also where a run's row source is chosen, once: a local schedule over the campaign's
own journal, or claims from the team database (the store's `Coordination`), each with the
rate limits that go with it (this process's, or the ones every process shares). The engine
asks none of them which backend it is.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from campaign_dialer.clock import Clock
from campaign_dialer.config import Campaign, CampaignFile
from campaign_dialer.engine import (
    ClaimSource,
    ClientFactory,
    Engine,
    Limits,
    LocalSchedule,
    PersonIndex,
    PlanColumns,
    RowSource,
    RunOptions,
    Stats,
    StoredPlanSource,
)
from campaign_dialer.memory import release_memory
from campaign_dialer.planning import Plan, open_campaign_history, plan_once
from campaign_dialer.store import HistoryStore, JournalStore, contacts_path, open_plan_store

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
    # SQLite: nobody waits for this plan but the next run, so it is kept beside the first
    # calls (join `plan.kept()`); on PostgreSQL the campaign's other processes wait for it.
    # The contacts the results read are kept in the output folder, for this run's results
    # and the next run's (on PostgreSQL too: a file of this machine, by the process that
    # plans; another process on this machine reads it, one elsewhere its contacts file).
    contacts_file = contacts_path(campaign.journal_path)
    return plan_once(campaign, at, history, plans, keep_later=stores is None,
                     contacts_file=contacts_file)


def engine_for_plan(
    plan: Plan, *, journal: JournalStore, client_factory: ClientFactory, clock: Clock,
    options: RunOptions | None = None, on_progress: Callable[[Stats], None] | None = None,
    coordinator: Coordination | None = None,
) -> Engine:
    """The engine for `plan`; with a `coordinator` (PostgreSQL) it shares the campaign with
    the other processes running it (claims, leases, the database's limits)."""
    campaign = plan.campaign
    history = plan.history if plan.history is not None else open_campaign_history(campaign)
    columns = PlanColumns(**plan.rows.plan_columns())
    people = PersonIndex(plan.rows, columns.dial())
    # Their temporaries (the person keys' joins, the index's sorts: a million rows, about
    # 110 MB the allocators keep) handed back before the calls, which would rest on them.
    release_memory()
    source, limits = row_source(coordinator, plan, columns, people)
    return Engine(
        campaign=campaign, rows=plan.rows, gate=plan.gate, dnc_ledger=plan.dnc_ledger,
        history=history, journal=journal, client_factory=client_factory, clock=clock,
        source=source, limits=limits, options=options, on_progress=on_progress,
        caller_id_rules=plan.caller_id_rules, columns=columns, people=people,
    )


def row_source(
    coordinator: Coordination | None, plan: Plan | None = None,
    columns: PlanColumns | None = None, people: PersonIndex | None = None,
) -> tuple[RowSource, Callable[[CampaignFile], Limits]]:
    """Where a run's rows come from, and the rate limits that go with it, chosen once: the
    plan's rows a batch at a time over this process's journal and its own limits (the
    whole plan on the schedule at once for an adaptive schedule, which picks among every
    row), or claims from the team database (`coordinator`) and the limits every process of
    the campaign shares."""
    if coordinator is None:
        adaptive = plan is not None and plan.campaign.model.schedule.strategy == "adaptive"
        if plan is None or columns is None or adaptive:
            return LocalSchedule(), Limits.for_campaign
        source = StoredPlanSource(plan.rows, columns.dial(), people=people, offer=False)
        return source, Limits.for_campaign
    co = coordinator

    def shared(cfg: CampaignFile) -> Limits:
        return Limits.shared(cfg, co)

    return ClaimSource(co, columns), shared
