"""Watching a live campaign: Prometheus metrics, the live page, `status --watch`, the budget.

`metrics` (a run's own registry), `view` (one dict read from the journal, for the page and
the terminal), `server` (the ASGI app: /metrics, /healthz, /, /live.json), `budget` (what is
spent and whether one more call fits). Below the engine, above the store: the engine feeds
it, commands read through it.
"""

from __future__ import annotations

from campaign_dialer.monitor.budget import BUDGET_REACHED, BudgetKeeper, Spend, spend_of
from campaign_dialer.monitor.metrics import DEFAULT_NUMBER, Metrics
from campaign_dialer.monitor.view import budget_view, live_view, render

__all__ = [
    "BUDGET_REACHED", "DEFAULT_NUMBER", "BudgetKeeper", "Metrics", "Spend", "budget_view",
    "live_view", "render", "spend_of",
]
