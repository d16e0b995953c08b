"""The gate at dial time: asked in the lane, caught up when an input file changed.

At most once a second `Gate.reloaded` (in the lane, never on the loop) re-reads what changed:
the local DNC lists, the consent ledger, the RND answers file and the DNC ledger's new lines
(this run's 409s and opt-outs, and other campaigns'), so a number added to a list or a consent
revoked during the run stops that call. `Gate.check` itself only consults memory.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from campaign_dialer import log
from campaign_dialer.compliance import Gate, Verdict
from campaign_dialer.monitor import BUDGET_REACHED
from campaign_dialer.store.ledger_file import DncLedger
from campaign_dialer.vocab import DNC_LIST_STALE, ELIGIBLE, PENDING

from .io import Lane
from .rows import Row

# How often the gate looks at its input files (seconds).
RELOAD_EVERY_S = 1.0


class GateKeeper:
    """The run's gate and DNC ledger, used from async code."""

    def __init__(
        self, gate: Gate, ledger: DncLedger, *, lane: Lane, reload: bool = True,
        logger: Any = None,
    ) -> None:
        self.gate = gate
        self.ledger = ledger
        self.lane = lane
        self._reload = reload
        self._checked = time.monotonic()
        self.log = logger if logger is not None else log.get("engine")
        # `[budget]` (monitor.BudgetKeeper): asked after the gate lets a new call through.
        self.budget: Any = None

    @property
    def rules(self) -> Any:
        """The state rules of the calling window (a state's cap on calls per 24 h)."""
        return self.gate.window.rules

    def _refresh(self) -> str | None:
        """In the lane: catch the gate up with changed inputs; the error if one cannot be read."""
        if not self._reload or time.monotonic() - self._checked < RELOAD_EVERY_S:
            return None
        try:
            gate = self.gate.reloaded()
        except Exception as e:  # noqa: BLE001 - any failure means we cannot vouch for a call
            return f"a compliance input changed and cannot be read: {e}"
        finally:
            self._checked = time.monotonic()
        if gate is not None:
            self.gate = gate
            self.log.info("compliance_inputs_reloaded")
        return None

    def _check(self, row: Row, at: datetime) -> tuple[Verdict, str | None]:
        problem = self._refresh()
        verdict = self.gate.check(
            phone_e164=row.phone_e164, contact_id=row.contact_id, tz_hint=row.tz_hint, at=at,
            other_phones=row.other_phones,
        )
        return verdict, problem

    async def check(self, row: Row, at: datetime) -> tuple[Verdict, str | None]:
        """The gate's verdict on calling `row` at `at`, from fresh inputs; and, when an
        input changed and cannot be read, why (the run must stop: 65)."""
        return await self.lane.run(self._check, row, at)

    def check_in_lane(self, row: Row, at: datetime) -> tuple[Verdict, str | None]:
        """`check` of a new call, for code already running in the lane (one hop for several
        calls): the budget too, counting what is spent and what the live calls will cost;
        a call let through is reserved at once. A re-send is never held by the budget (its
        call is counted already)."""
        verdict, problem = self._check(row, at)
        if (self.budget is not None and verdict.disposition == ELIGIBLE
                and verdict.reason != DNC_LIST_STALE):
            held = self.budget.allow()
            if held is not None:
                detail, next_open = held
                verdict = Verdict(PENDING, BUDGET_REACHED, detail, next_open, verdict.evidence)
        return verdict, problem

    async def add_dnc(
        self, e164: str, *, reason: str, campaign: str, evidence: str, at: datetime
    ) -> None:
        """Record a number on the shared DNC ledger (a 409 or an opt-out)."""
        await self.lane.run(
            lambda: self.ledger.add(e164, reason=reason, campaign=campaign, evidence=evidence,
                                    at=at)
        )
