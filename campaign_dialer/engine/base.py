"""The engine's state and the few moves every part of it makes: stop, defer, set a fate.

`Engine` is built in layers, one module each: this state, `follow` (a placed call to its
end), `calls` (intent, POST, breaker), `recovery` (what a crash left open) and `run` (the
task group, the producer, signals, the watchdog). None imports the planning module: the
engine receives rows, a gate, a DNC ledger, a contact history and a journal.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc

from campaign_dialer import log, vocab
from campaign_dialer.client import VantaxClient
from campaign_dialer.clock import Clock
from campaign_dialer.compliance import Gate, Verdict
from campaign_dialer.compliance.callerid import CallerIdRules, builtin_caller_id_rules
from campaign_dialer.config import Campaign
from campaign_dialer.exitcodes import ExitCode
from campaign_dialer.forecast import expected_call_seconds
from campaign_dialer.monitor import BUDGET_REACHED, BudgetKeeper, Metrics
from campaign_dialer.store import Attempt, Fate, HistoryStore, JournalStore, iso
from campaign_dialer.store.ledger_file import DncLedger
from campaign_dialer.webhook import Receiver, Served

from .callerid import CallerIds
from .fates import attempt_fate
from .gatekeeper import GateKeeper
from .io import AsyncJournal, Lane
from .pacing import Limits
from .redial import RedialPolicy
from .rows import Row
from .schedule import Schedule
from .telemetry import Stats, Telemetry

if TYPE_CHECKING:
    from campaign_dialer.store import Coordination

ClientFactory = Callable[..., VantaxClient]


@dataclass
class RunOptions:
    wait: bool = False
    until: datetime | None = None
    max_duration_s: float | None = None
    grace_s: float = 60.0
    install_signal_handlers: bool = True
    # A pause seen by a run: wait this long for `resume` before leaving with 75.
    pause_wait_s: float = 15 * 60.0
    # Serve /metrics, /healthz and the live page here (`--serve`, `[monitor] listen`).
    monitor: tuple[str, int] | None = None


@dataclass(frozen=True)
class Stop:
    """Why the run stops early, and with which exit code (the first reason wins)."""

    code: ExitCode
    message: str


class EngineBase:
    def __init__(
        self,
        *,
        campaign: Campaign,
        rows: Sequence[Row],
        gate: Gate,
        dnc_ledger: DncLedger,
        history: HistoryStore,
        journal: JournalStore,
        client_factory: ClientFactory,
        clock: Clock,
        options: RunOptions | None = None,
        on_progress: Callable[[Stats], None] | None = None,
        reload_gate: bool = True,
        coordinator: Coordination | None = None,
        caller_id_rules: CallerIdRules | None = None,
    ) -> None:
        self.campaign = campaign
        self.cfg = campaign.model
        self.rows: list[Row] = list(rows)  # the same row object throughout (identity counts)
        self.lane = Lane()
        self.journal = AsyncJournal(journal, self.lane)
        # PostgreSQL: this process shares the campaign with others (see `shared`).
        self.co = coordinator
        self.history = history  # used in the lane only (with the journal's calls)
        self.log = log.get("engine", campaign=campaign.name)
        # DNC lists, consent, RND answers and the DNC ledger are caught up (in the lane, once a
        # second) by the gate's own reload (see gatekeeper).
        self.gate = GateKeeper(gate, dnc_ledger, lane=self.lane, reload=reload_gate,
                               logger=self.log)
        self.policy = RedialPolicy(self.cfg, lambda: self.gate.rules)
        # A `[caller_id]` pool: the governor of owned numbers (None: one number for all).
        self.caller_ids: CallerIds | None = None
        if self.cfg.caller_id is not None:
            self.caller_ids = CallerIds(
                self.cfg.caller_id, caller_id_rules or builtin_caller_id_rules(), history,
                self.log,
            )
        self.client_factory = client_factory
        self.clock = clock
        self.opts = options or RunOptions()
        self.on_progress = on_progress
        self.stats = Stats(rows=len(self.rows))
        self.telemetry = Telemetry(self.stats)
        # Prometheus metrics, always counted (served only with `RunOptions.monitor`).
        self.metrics = Metrics(campaign.name)
        self.telemetry.metrics = self.metrics
        self.metrics.live_from(lambda: self.stats.live)
        # How long a call is expected to last: the history's median, else the file's figure
        # (the budget counts live calls at it; the page shows it). Read before the loop runs.
        self.expected_call_s = (
            expected_call_seconds(campaign, history)[0] if self.cfg.budget is not None
            else float(self.cfg.report.expected_call_seconds))
        # `[budget]`: asked by the gate at the moment of dialing, in the lane.
        if self.cfg.budget is not None and self.cfg.budget.any:
            self.gate.budget = BudgetKeeper(
                budget=self.cfg.budget, report=self.cfg.report,
                attempts=lambda: self.journal.sync.attempts(),
                expected_call_s=self.expected_call_s, now=clock.now, monotonic=time.monotonic,
            )
        # A budget limit reached: why, and when the rows may go (the per-day limit).
        self.budget_hold: Verdict | None = None
        self.rows_by_person: dict[str, Row] = {}
        for r in self.rows:
            if r.person and not r.contact_suppressed and r.person not in self.rows_by_person:
                self.rows_by_person[r.person] = r
        # People the contacts file itself marks Do-Not-Call: an open intent is never re-sent.
        self._flagged = {r.person for r in self.rows if r.reason == "dnc_flag" and r.person}
        # What the gate said at the moment of dialing outranks what it said at planning.
        self.dial_time_fates: dict[int, Fate] = {}
        self.stopping = False
        self.stop_signal: int | None = None
        self._stop: Stop | None = None
        self.run_id: int | None = None
        self.served: Served | None = None
        self.webhooks: Receiver | None = None
        self._open_attempts: list[Attempt] = []
        self._deadline: datetime | None = self.opts.until
        if self.opts.max_duration_s is not None:
            d = clock.now() + timedelta(seconds=self.opts.max_duration_s)
            self._deadline = min(d, self._deadline) if self._deadline else d
        # Made in the loop, by `run`.
        self.limits: Limits
        self.schedule: Schedule
        self.tg: anyio.abc.TaskGroup
        self.client: VantaxClient

    # -- stopping ---------------------------------------------------------------------
    async def _grace_timer(self) -> None:
        await anyio.sleep(self.opts.grace_s)
        self.log.warning("grace_period_over", live=self.stats.live)
        self.tg.cancel_scope.cancel()

    def _stop_soon(self, code: ExitCode, message: str) -> None:
        """Stop placing calls now; keep following live ones for the grace period."""
        if self._stop is not None:
            return
        self._stop = Stop(code, message)
        self.stopping = True
        self.schedule.poke()
        self.log.error("stopping_new_calls", reason=message, exit_code=int(code),
                       grace_s=self.opts.grace_s, live=self.stats.live)
        self.tg.start_soon(self._grace_timer)

    def _abort_run(self, code: ExitCode, message: str) -> None:
        """Stop everything now (live calls are resolved by the next run)."""
        if self._stop is None:
            self._stop = Stop(code, message)
        self.stopping = True
        self.tg.cancel_scope.cancel()

    def _past_deadline(self) -> bool:
        return self._deadline is not None and self.clock.now() >= self._deadline

    def _may_start_new_call(self, control: str) -> bool:
        if self.stopping or self._stop is not None or self._past_deadline():
            return False
        return control == "active"

    def _back_to_schedule(self, row: Row) -> None:
        """A row taken off the schedule but not dialed (a pause) waits for its turn again."""
        if not self.stopping and self._stop is None:
            self.schedule.push(row, None)

    # -- fates ------------------------------------------------------------------------
    async def _defer(self, row: Row, verdict: Verdict, bound: Any) -> None:
        """Held back at dial time: the row's fate says why, and it waits for its opening."""
        fate = Fate(row.row, row.person, verdict.disposition, verdict.reason, verdict.detail,
                    iso(verdict.next_open), verdict.evidence)
        self.dial_time_fates[row.row] = fate
        await self.journal.set_fates([fate])
        bound.info("held_back_at_dial_time", reason=verdict.reason, detail=verdict.detail)
        self.metrics.held(verdict.reason or "")
        if verdict.reason == BUDGET_REACHED:
            self._budget_reached(verdict)
            if self.stopping:
                return
        if verdict.disposition == vocab.PENDING and verdict.next_open is not None:
            self.schedule.push(row, verdict.next_open)

    def _budget_reached(self, verdict: Verdict) -> None:
        """No new call: the rows not dialed wait (`budget_reached`); live calls go on. With
        `--wait` and the per-day limit, every row waits for the next local day instead."""
        first = self.budget_hold is None
        self.budget_hold = verdict
        if self.opts.wait and verdict.next_open is not None:
            if first or self.schedule.postpone(verdict.next_open):
                self.log.warning("budget_reached", detail=verdict.detail,
                                 waiting_until=iso(verdict.next_open))
            return
        if self._stop is None:
            self.log.warning("budget_reached", detail=verdict.detail)
            when = f"; the next local day begins {iso(verdict.next_open)}" if (
                verdict.next_open) else ""
            self._stop = Stop(ExitCode.TEMPFAIL,
                              f"budget reached: {verdict.detail}; rows not dialed wait "
                              f"(budget_reached){when}")
            self.stopping = True
            self.schedule.poke()

    async def _set_fate_from_attempt(self, row: Row, attempt_id: int) -> Attempt:
        """The row's fate from its attempt as now journaled (one hop); the attempt."""
        def work() -> Attempt:
            a = self.journal.sync.attempt(attempt_id)
            self.journal.sync.set_fates([attempt_fate(row, a)])
            return a
        return await self.lane.run(work)

    def _request_body(self, row: Row) -> dict[str, Any]:
        body: dict[str, Any] = {"agent_id": self.cfg.campaign.agent_for(
            self.campaign.name, row.person or f"row:{row.row}")}
        # Ring exactly the number the gate checked; a saved contact only when no number is known.
        if row.phone_e164:
            body["phone_number"] = row.phone_e164
        else:
            body["contact_id"] = row.contact_id
        if self.cfg.campaign.from_phone_number_id:
            body["from_phone_number_id"] = self.cfg.campaign.from_phone_number_id
        return body
