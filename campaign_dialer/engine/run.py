"""The run: a task group of a producer and a pool of workers, and what watches over them.

A producer feeds due rows (from the schedule, refilled by the row source) into an
unbuffered memory stream; a pool of workers, one per live-call slot, dials them (the
`Dialer`, which hands placed calls to the `Follower`); open attempts from a previous run
are resolved beside them (the `Recovery`). Around that: signals (first one: stop placing,
let live calls finish for the grace period; second: stop now), the pause/cancel control,
the deadline, the outage watchdog, progress and the HTTP log, the webhook listener.
"""

from __future__ import annotations

import functools
import gc
import signal
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import anyio
import anyio.abc
import anyio.to_thread
import numpy as np
import pyarrow as pa

from campaign_dialer import log, vocab
from campaign_dialer.client import AuthError, VantaxClient, VantaxError
from campaign_dialer.clock import Clock
from campaign_dialer.compliance import Gate
from campaign_dialer.compliance.callerid import CallerIdRules, builtin_caller_id_rules
from campaign_dialer.config import Campaign, CampaignFile, ConfigError
from campaign_dialer.errors import DialerError, InputError
from campaign_dialer.exitcodes import ExitCode
from campaign_dialer.forecast import expected_call_seconds
from campaign_dialer.memory import release_memory
from campaign_dialer.monitor import BudgetKeeper, Metrics
from campaign_dialer.store import (
    UNRESOLVED,
    Attempt,
    Fate,
    HistoryStore,
    JournalStore,
    JournalWriteError,
    iso,
)
from campaign_dialer.store.ledger_file import DncLedger
from campaign_dialer.webhook import JournalSink, Receiver, Served, bind

from .adaptive import AdaptiveSchedule, schedule_for
from .base import ClientFactory, Opening, RowSource, RunContext, RunOptions, RunState, Stop
from .callerid import EXHAUSTED, HEALTH_EVERY_S, CallerIds
from .calls import Dialer
from .columns import (
    PlanColumns,
    RowPositions,
    Untouched,
    by_disposition,
    columns_of,
    counts_of,
    digest_of,
    fate_at,
    fate_base,
    positions_in,
    same_fate,
    text,
)
from .fates import row_fate
from .follow import Follower
from .gatekeeper import GateKeeper
from .io import AsyncJournal, Lane
from .monitoring import RunMonitor
from .pacing import Limits
from .recovery import Recovery
from .redial import RedialPolicy
from .rows import Row
from .sources import LocalSchedule
from .stored_plan import PersonIndex
from .telemetry import Stats, Telemetry

# How often the producer reads the pause/cancel flag while it hands out rows (seconds); a
# pause set by another process is still noticed within a second, and every dial asks again.
CONTROL_EVERY_S = 0.5
# How often the adaptive schedule re-reads the contact history's answered calls (seconds).
LEARN_EVERY_S = 300.0


@dataclass
class RunOutcome:
    exit_code: ExitCode
    stats: Stats
    message: str = ""


def _first(exc: BaseException, kind: type[BaseException]) -> BaseException | None:
    """The first `kind` inside a (possibly nested) exception group."""
    if isinstance(exc, kind):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for sub in exc.exceptions:
            found = _first(sub, kind)
            if found is not None:
                return found
    return None


def _sync_key(r: dict[str, Any]) -> tuple[Any, ...]:
    """What the history must agree with the journal on, for one attempt."""
    return (r.get("idem_key"), r.get("state"), r.get("call_id"), r.get("status"),
            r.get("placed_at"), r.get("ended_at"))


class Engine:
    """Place the calls the gate allows, follow each to its end, survive the world.

    The engine owns its parts, made for each run once the client is open: a `Follower`, a
    `Dialer` and a `Recovery`, each given the run's `RunContext`. Where its rows come from is
    the `RowSource` it is given (`sources`), and its rate limits come from the `limits`
    factory it is given (made in the loop): both chosen by the caller, which knows the store
    behind them; the engine never asks which backend it runs on.
    """

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
        source: RowSource | None = None,
        limits: Callable[[CampaignFile], Limits] = Limits.for_campaign,
        options: RunOptions | None = None,
        on_progress: Callable[[Stats], None] | None = None,
        reload_gate: bool = True,
        caller_id_rules: CallerIdRules | None = None,
        columns: PlanColumns | None = None,
        people: PersonIndex | None = None,
    ) -> None:
        self.campaign = campaign
        self.cfg = campaign.model
        # The plan's rows (a row is made when asked for, the same object each time: identity
        # counts) and the same rows as columns, for what concerns every row at once.
        self.rows: Sequence[Row] = rows
        self.columns = columns if columns is not None else columns_of(rows)
        self.row_positions = RowPositions(self.columns.row)
        self.lane = Lane()
        self.journal = AsyncJournal(journal, self.lane)
        # The same journal through a connection of its own (the webhook sink's, the monitor's).
        self.own_journal: Callable[[], JournalStore] = journal.twin
        self.source: RowSource = source if source is not None else LocalSchedule()
        self.make_limits = limits
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
        # The row that dials for each person (later rows of theirs are duplicates).
        self.rows_by_person = people if people is not None else PersonIndex(
            self.rows, self.columns.dial())
        # People the contacts file itself marks Do-Not-Call: an open intent is never re-sent.
        self.flagged = self.columns.flagged_people()
        # Each row's person's dialing row number (`_fate_base`), found once.
        self._first_of: np.ndarray | None = None
        self.run_id: int | None = None
        self.served: Served | None = None
        self.webhooks: Receiver | None = None
        self.monitor: RunMonitor | None = None
        self._sink_journal: JournalStore | None = None
        self._deadline: datetime | None = self.opts.until
        if self.opts.max_duration_s is not None:
            d = clock.now() + timedelta(seconds=self.opts.max_duration_s)
            self._deadline = min(d, self._deadline) if self._deadline else d
        self._paused_since: float | None = None
        self._pause_expired = False
        # Made in the loop, by `run`.
        self.state: RunState
        self.ctx: RunContext
        self.dialer: Dialer
        self.recovery: Recovery
        self.work: anyio.abc.TaskGroup

    # -- webhooks -----------------------------------------------------------------------
    def _open_webhooks(self) -> Served | None:
        """Listen for the agent webhook before anything is dialed (`[webhook]` only)."""
        hook = self.cfg.webhook
        if hook is None:
            return None
        secrets = self.campaign.webhook_secrets()
        for secret in secrets:
            log.register_secret(secret)
        try:
            sock = bind(hook.host, hook.port)
        except OSError as e:
            raise ConfigError(
                self.campaign.path, "webhook.port",
                f"cannot listen on {hook.host}:{hook.port}: {e.strerror or e}",
            ) from None
        # A connection of its own, written from a worker thread: see webhook.JournalSink.
        self._sink_journal = self.own_journal()
        receiver = Receiver(
            secrets=secrets, sink=JournalSink(self._sink_journal), path=hook.path,
            campaign=self.campaign.name,
        )
        served = Served(receiver, sock)
        self.log.info(
            "webhook_listening", host=hook.host, port=served.port, path=hook.path,
            public_url=hook.public_url, secrets=len(secrets),
        )
        return served

    # -- run ----------------------------------------------------------------------------
    async def run(self) -> RunOutcome:
        # The plan's objects live as long as the run: a full collection would walk them all,
        # on the loop, tens of milliseconds at a time. Frozen, collections skip them.
        gc.freeze()
        limits = self.make_limits(self.cfg)
        self.state = RunState(
            opts=self.opts, clock=self.clock, stats=self.stats, log=self.log,
            # input order, or adaptive ([schedule])
            schedule=schedule_for(self.cfg.schedule, self.campaign.name, self.gate,
                                  self._deadline),
            deadline=self._deadline,
        )
        self.ctx = RunContext(
            campaign=self.campaign, journal=self.journal, lane=self.lane, history=self.history,
            gate=self.gate, policy=self.policy, clock=self.clock, limits=limits,
            stats=self.stats, metrics=self.metrics, log=self.log, state=self.state,
            source=self.source, caller_ids=self.caller_ids,
        )
        self.served = await anyio.to_thread.run_sync(self._open_webhooks)
        self.webhooks = self.served.receiver if self.served else None
        self.monitor = None
        try:
            if self.opts.monitor is not None:
                self.monitor = RunMonitor(
                    self.campaign, self.opts.monitor, self.own_journal, metrics=self.metrics,
                    clock=self.clock, log=self.log, expected_call_s=self.expected_call_s)
                self.served = await anyio.to_thread.run_sync(
                    self.monitor.open, self.served) or self.served
            if self.webhooks is not None:
                self.metrics.webhooks_from(lambda: self.webhooks.counts if self.webhooks else {})
            return await self._run()
        finally:
            gc.unfreeze()
            self.metrics.up(False)
            if self.served is not None:
                self.served.sock.close()
            if self._sink_journal is not None:
                self._sink_journal.close()
            if self.monitor is not None:
                self.monitor.close()

    async def _start(self) -> list[Attempt]:
        """Begin the run in the journal, agree with the history, open the row source and
        seed the schedule (one hop). Returns the open attempts to resume first."""
        journal, schedule, source = self.journal.sync, self.state.schedule, self.source

        def begin() -> tuple[int, Opening]:
            run_id = journal.begin_run()  # PostgreSQL: registers this process
            journal.set_meta("clock_source", self.clock.source)
            journal.set_meta("pause_wait_s", f"{self.opts.pause_wait_s:g}")
            self._sync_with_history()
            if isinstance(schedule, AdaptiveSchedule):
                schedule.learn(self.history, self.campaign)
            return run_id, source.open(self.ctx, self.rows, self.rows_by_person)

        self.run_id, opening = await self.lane.run(begin)
        self.telemetry.run_id = self.run_id
        for row, not_before in opening.due:
            schedule.push(row, not_before)
        self.stats.to_dial = len(schedule) if opening.to_dial is None else opening.to_dial
        return opening.open_attempts

    async def _run(self) -> RunOutcome:
        state = self.state
        if self.clock.is_fake:
            # The env hook is for tests; a demo's simulated clock is said on screen instead.
            level = self.log.warning if self.clock.env_hook else self.log.info
            level("simulated_clock_in_use", now=iso(self.clock.now()))
        open_attempts = await self._start()
        self.log.info(
            "run_started", run_id=self.run_id, rows=self.stats.rows,
            to_dial=self.stats.to_dial, open_attempts=len(open_attempts),
        )
        exit_code = ExitCode.OK
        message = ""
        try:
            # Made in a worker thread: an HTTP client loads its TLS certificates (tens of ms).
            made = await anyio.to_thread.run_sync(functools.partial(
                self.client_factory, pacer=self.ctx.limits.pace_request,
                observer=self.telemetry.observe,
            ))
            async with made as client:
                follower = Follower(self.ctx, client, self.webhooks)
                self.dialer = Dialer(self.ctx, client, follower, run_id=self.run_id,
                                     on_live_wait=self._take_over_at_cap)
                self.recovery = Recovery(self.ctx, client, self.dialer, follower,
                                         rows_by_person=self.rows_by_person,
                                         flagged=self.flagged)
                if state.schedule or open_attempts or self.source.open_ended:
                    await self._probe(client)
                async with anyio.create_task_group() as tg:
                    state.tg = tg
                    if self.opts.install_signal_handlers:
                        tg.start_soon(self._watch_signals)
                    # Every row's fate as this run starts, beside the first calls (a
                    # million-row plan's base takes a second): `status` is right within
                    # moments of the start. Its lane call is one, as any dial's.
                    tg.start_soon(self._settle)
                    tg.start_soon(self._ticker)
                    if self.caller_ids is not None:
                        tg.start_soon(self._watch_caller_ids)
                    if isinstance(state.schedule, AdaptiveSchedule):
                        tg.start_soon(self._watch_answers, state.schedule)
                    if self.served is not None:
                        tg.start_soon(self.served.serve)
                    listener = self.monitor.listener if self.monitor else None
                    if listener is not None:
                        tg.start_soon(listener.serve)
                    self.metrics.up(True)
                    tg.start_soon(self.source.run_beside, self._on_control)
                    async with anyio.create_task_group() as work:
                        self.work = work
                        for a in open_attempts:
                            work.start_soon(self.recovery.resume, a)
                        send, recv = anyio.create_memory_object_stream[Row](0)
                        work.start_soon(self._producer, send)
                        async with recv:
                            for _ in range(self.cfg.api.max_live_calls):
                                work.start_soon(self._worker, recv.clone())
                    if self.served is not None:
                        await self.served.stop()
                    if listener is not None:
                        await listener.stop()
                    tg.cancel_scope.cancel()
        except Exception as e:  # noqa: BLE001 - a bug must still leave results behind
            # Every journal write is its own transaction, so the journal is consistent here;
            # record what happened and let the next run resume from it.
            bad_input = _first(e, InputError)
            known = _first(e, DialerError)
            if bad_input is not None:  # a consent/DNC file became unreadable mid-run
                self.log.error("compliance_input_unreadable", error=str(bad_input))
                state.stop = Stop(ExitCode.DATAERR, str(bad_input))
            elif isinstance(known, DialerError):  # e.g. the journal's disk is full
                self.log.error("run_stopped", error=str(known))
                state.stop = Stop(known.exit_code, str(known))
                if isinstance(known, JournalWriteError):
                    raise known from None  # nothing more can be recorded; say so and leave
            else:
                self.log.exception("run_failed", error=repr(e))
                state.stop = Stop(ExitCode.FAILURE, f"unexpected error: {e!r}")
        finally:
            with anyio.CancelScope(shield=True):
                await self.telemetry.flush(self.journal)
                if self.caller_ids is not None and state.stop is None:
                    # what this run's last calls said of their numbers, before it leaves
                    await self.lane.run(self.caller_ids.check_health, self.clock.now())
        if state.stop is not None:
            exit_code, message = state.stop.code, state.stop.message
            self.log.error("run_aborted", reason=message, exit_code=int(exit_code))
        summary = await self.finalize_fates()
        if state.stop is None:
            if state.stop_signal is not None:
                exit_code = (
                    ExitCode.SIGINT if state.stop_signal == signal.SIGINT else ExitCode.SIGTERM
                )
                message = "interrupted"
            elif self.stats.unresolved:
                exit_code = ExitCode.UNAVAILABLE
                message = f"{self.stats.unresolved} call(s) could not be confirmed: API unavailable"
            elif self._pause_expired and summary.get(vocab.PENDING, 0):
                exit_code = ExitCode.TEMPFAIL
                message = (
                    f"the campaign is paused (waited {self.opts.pause_wait_s:g}s for resume); "
                    f"{summary[vocab.PENDING]} row(s) wait: `campaign-dialer resume` and run again"
                )
            elif summary.get(vocab.PENDING, 0):
                exit_code = ExitCode.TEMPFAIL
                message = f"{summary[vocab.PENDING]} row(s) left for a later run"
            if exit_code == ExitCode.TEMPFAIL:
                held = len(await self.journal.attempts(states=[UNRESOLVED]))
                if held:
                    message += (
                        f"; {held} call(s) could not be confirmed and wait for a person: see "
                        "`campaign-dialer status`, then `campaign-dialer release`"
                    )
        with anyio.CancelScope(shield=True):
            await self.source.close()
        await self.journal.end_run(
            self.run_id or 0, int(exit_code),
            {**self.stats.as_dict(), **summary, "clock_source": self.clock.source},
        )
        await self.journal.set_meta("last_exit_code", str(int(exit_code)))
        self.log.info("run_finished", exit_code=int(exit_code), **self.stats.as_dict())
        return RunOutcome(exit_code, self.stats, message)

    # -- watchers -------------------------------------------------------------------------
    async def _ticker(self) -> None:
        """Twice a second: the HTTP log, progress, and the outage watchdog."""
        last_log = time.monotonic()
        while True:
            await anyio.sleep(0.5)
            await self.telemetry.flush(self.journal)
            if self.on_progress:
                self.on_progress(self.stats)
            failing = self.telemetry.failing_since
            if failing is not None and time.monotonic() - failing >= self.cfg.api.outage_s:
                self.state.stop_soon(
                    ExitCode.UNAVAILABLE,
                    f"the API at {self.cfg.api.base_url} has not answered for "
                    f"{self.cfg.api.outage_s:g}s (refused, timeouts or 5xx); no new call is "
                    "placed; run again when it is back, the run resumes where it stopped",
                )
            if time.monotonic() - last_log >= 10:
                last_log = time.monotonic()
                self.log.info("progress", **self.stats.as_dict())

    def _on_control(self, control: str) -> None:
        """The campaign's control state, as the heartbeat read it (every process's)."""
        self.log.info("control_state", control=control)
        self.state.schedule.poke()

    async def _watch_signals(self) -> None:
        state = self.state
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for signum in signals:
                if state.stop_signal is None:
                    state.stop_signal = signum
                    state.stopping = True
                    state.schedule.poke()
                    self.log.warning(
                        "stopping", signal=signal.Signals(signum).name, grace_s=self.opts.grace_s,
                        live=self.stats.live,
                    )
                    state.tg.start_soon(state.grace_timer)
                else:
                    self.log.warning("stopping_now", signal=signal.Signals(signum).name)
                    state.tg.cancel_scope.cancel()
                    return

    async def _probe(self, client: VantaxClient) -> None:
        """Learn the platform's clock before the first intent (crash recovery needs it)."""
        try:
            with anyio.fail_after(self.cfg.api.request_timeout_s + 1):
                at = await client.probe()
        except AuthError:
            return  # the first POST says so and stops the run with 77
        except (VantaxError, TimeoutError) as e:
            self.log.warning("platform_clock_unknown", error=str(e))
            return
        if at is not None:
            skew = (self.clock.now() - at).total_seconds()
            self.log.info("platform_clock", platform_now=iso(at), dialer_ahead_s=round(skew, 1))

    # -- the producer and the workers -----------------------------------------------------
    def _still_waiting_for_resume(self) -> bool:
        """Paused: keep waiting (True) until --pause-wait is used up (False)."""
        now = time.monotonic()
        if self._paused_since is None:
            self._paused_since = now
            self.log.warning("paused", pause_wait_s=self.opts.pause_wait_s, live=self.stats.live,
                             waiting_rows=len(self.state.schedule))
        if now - self._paused_since >= self.opts.pause_wait_s:
            self._pause_expired = True
            self.log.warning("pause_wait_over", pause_wait_s=self.opts.pause_wait_s)
            return False
        return True

    async def _producer(self, send: anyio.abc.ObjectSendStream[Row]) -> None:
        try:
            await self._produce(send)
        finally:
            if self.opts.on_last_calls is not None:
                self.opts.on_last_calls()

    async def _produce(self, send: anyio.abc.ObjectSendStream[Row]) -> None:
        state, source = self.state, self.source
        schedule = state.schedule
        control, asked = "", -CONTROL_EVERY_S
        async with send:
            while not state.stopping and state.stop is None:
                if state.past_deadline():
                    return
                if time.monotonic() - asked >= CONTROL_EVERY_S:
                    # Every dial asks again, in the same lane call as the gate: this one only
                    # decides whether to hand out rows at all.
                    control, asked = await self.journal.control(), time.monotonic()
                if control == "canceled":
                    return
                if control == "paused":
                    # Live calls go on being followed; rows stay on the schedule for a
                    # `resume` in this run (or the next run).
                    if not schedule and schedule.in_flight == 0 and not source.open_ended:
                        return
                    if not self._still_waiting_for_resume():
                        return
                    await anyio.sleep(min(1.0, self.opts.pause_wait_s))
                    continue
                if self._paused_since is not None:
                    self._paused_since = None
                    self.log.info("resumed", waiting_rows=len(schedule))
                if self.caller_ids is not None and self.caller_ids.is_closed(self.clock.now()):
                    if not await self._wait_for_caller_ids():
                        return
                    continue
                now = self.clock.now()
                row = schedule.pop_due(now)
                if row is not None:
                    schedule.in_flight += 1
                    await send.send(row)
                    continue
                if await self._refill():
                    continue
                nxt = schedule.next_due()
                if schedule.in_flight == 0 and (nxt is None or not self.opts.wait):
                    if not source.open_ended or not await source.others_pending():
                        return
                    continue
                changed = schedule.changed
                timeout = None if nxt is None else max(self.clock.seconds_until(nxt), 0.0)
                if self._deadline is not None:
                    left = max(self.clock.seconds_until(self._deadline), 0.0)
                    timeout = left if timeout is None else min(timeout, left)
                # Sleep until the next row is due or something changes; a pause flag set by
                # another process is noticed at the next check (at most a second late).
                timeout = 1.0 if timeout is None else min(timeout, 1.0)
                with anyio.move_on_after(timeout):
                    await changed.wait()

    async def _refill(self, *, force: bool = False) -> bool:
        """More rows from the source for the free workers (none is due here); True if any.
        `force`: one row even when every worker is busy."""
        schedule = self.state.schedule
        room = self.cfg.api.max_live_calls - schedule.in_flight - len(schedule)
        if force:
            room = max(room, 1)
        if room <= 0:
            return False
        got = await self.source.refill(room)
        for row, atts in got.resumes:
            schedule.in_flight += 1
            self.work.start_soon(self._resume_taken, row, atts)
        for row, not_before in got.due:
            schedule.push(row, not_before)
        return bool(got)

    async def _take_over_at_cap(self) -> None:
        """While workers wait at a shared campaign's live-call cap: one row, which may be a
        dead process's open call to take over (see `shared.ClaimSource.until_live_room`)."""
        await self._refill(force=True)

    async def _resume_taken(self, row: Row, attempts: Sequence[Attempt]) -> None:
        try:
            for a in attempts:
                await self.recovery.resume(a)
            await self.source.settle(row)
        finally:
            self.state.schedule.in_flight -= 1
            self.state.schedule.poke()

    async def _wait_for_caller_ids(self) -> bool:
        """Every number of the pool is capped or resting: wait for one (`--wait`), or leave
        the rows due by then pending `caller_ids_exhausted` with the moment one frees."""
        cid = self.caller_ids
        assert cid is not None and cid.closed_until is not None
        until = cid.closed_until
        if not self.opts.wait:
            detail = cid.exhausted_detail()
            for row in self.source.waiting_by(until):
                self.state.dial_time_fates[row.row] = Fate(
                    row.row, row.person, vocab.PENDING, EXHAUSTED, detail, iso(until),
                    row.evidence,
                )
            self.log.warning("caller_ids_exhausted", until=iso(until), detail=detail)
            return False
        timeout = max(self.clock.seconds_until(until), 0.0)
        if self._deadline is not None:
            timeout = min(timeout, max(self.clock.seconds_until(self._deadline), 0.0))
        with anyio.move_on_after(min(timeout, 1.0)):
            await self.state.schedule.changed.wait()
        return True

    async def _watch_caller_ids(self) -> None:
        """The pool's health, every few seconds, in the lane (the history's calls)."""
        cid = self.caller_ids
        assert cid is not None
        while True:  # at the start too: a number another campaign wore out rests first
            await self.lane.run(cid.check_health, self.clock.now())
            await anyio.sleep(HEALTH_EVERY_S)

    async def _watch_answers(self, schedule: AdaptiveSchedule) -> None:
        """The answer curve, re-learned from the contact history now and then (in the lane):
        this run's calls and every other campaign's teach the rest of the run."""
        while True:
            await anyio.sleep(LEARN_EVERY_S)
            await self.lane.run(schedule.learn, self.history, self.campaign)
            self.log.info("answer_curve_learned", answered=schedule.model.total_answered,
                          picks=dict(schedule.picks))

    async def _worker(self, recv: anyio.abc.ObjectReceiveStream[Row]) -> None:
        dial, settle, schedule = self.dialer.dial, self.source.settle, self.state.schedule
        async with recv:
            async for row in recv:
                try:
                    await dial(row)
                    await settle(row)
                finally:
                    schedule.in_flight -= 1
                    schedule.poke()

    # -- the journal, the history and the fates -------------------------------------------
    def _sync_with_history(self) -> None:
        """Journal and history agree before anything is dialed (in the lane).

        What the journal knows goes into the history (a journal from before the history
        existed, a change the history missed); what the history knows of this campaign and
        the journal lost (a deleted journal, a crash between claim and intent) comes back
        into the journal: a called row stays called, an open claim is resolved like any open
        intent (replay within the platform's idempotency memory, else a lookup).
        """
        journal, history = self.journal.sync, self.history
        known = history.records(self.campaign.name)
        seen = {_sync_key(r) for r in known}
        history.sync(
            self.campaign.name,
            [r for r in journal.attempt_records() if _sync_key(r) not in seen],
        )
        restored = journal.import_attempts(known)
        if restored:
            self.log.warning("journal_restored_from_history", attempts=restored,
                             history=history.path)
        # Every later change of an attempt reaches the history in the same (lane) call; the
        # changes of a batch of held writes (placed calls, final records) in one history
        # write at the end of the batch, before any later lane call.
        name, lane = self.campaign.name, self.lane
        pending: list[dict[str, Any]] = []

        def on_change(record: dict[str, Any]) -> None:
            if lane.holding:
                pending.append(record)
            else:
                history.sync(name, [record])

        def sync_pending() -> None:
            if pending:
                batch = list(pending)
                pending.clear()
                history.sync(name, batch)

        lane.after_held.append(sync_pending)
        journal.on_change = on_change

    def _untouched(self, now: datetime) -> Untouched:
        """In the lane: how the rows nobody dialed read now beyond the plan (`Untouched`)."""
        held = self.state.budget_hold
        closed = self.caller_ids.closed_now(now) if self.caller_ids is not None else None
        return Untouched(
            control=self.journal.sync.control(),
            held=None if held is None else (held.reason or "", held.detail,
                                            iso(held.next_open)),
            exhausted=None if closed is None else (closed[1], iso(closed[0])),
        )

    def _fate_base(self, mode: Untouched) -> tuple[pa.Table, str]:
        """Every row's fate as the plan implies it for a row nobody dialed, and its digest
        (columns, at once: `columns.fate_base`)."""
        cols, index = self.columns, self.rows_by_person
        if self._first_of is None:  # the plan's, the same at every finalize
            first = index.positions_of(text(cols.person))
            self._first_of = np.where(first >= 0, cols.row[np.maximum(first, 0)], -1)
            del first
            release_memory()  # its temporaries (a million rows: ~80 MB), before the base's
        base = fate_base(cols, index.first_positions(), self._first_of, mode, EXHAUSTED)
        release_memory()  # the base's temporaries (~120 MB), before it is chunked and kept
        return base, digest_of(base)

    async def _settle(self) -> None:
        """The fates as the run starts (`finalize_fates`), then `on_settled`."""
        try:
            await self.finalize_fates()
        finally:
            if self.opts.on_settled is not None:
                self.opts.on_settled()

    async def finalize_fates(self) -> dict[str, int]:
        """Every row's fate from the plan, the journal and this run; counts by disposition.

        The rows nobody dialed read as the plan implies (the fate base, computed at once in a
        worker thread and kept in the journal when it changed); the rows of people with
        attempts, this run's dial-time verdicts and the rows the journal already keeps a fate
        of its own for are computed one by one (`row_fate`), and kept only where they differ
        from the base. Work and writes follow the rows dialed, not the rows planned.
        """
        journal = self.journal.sync
        dial_time = dict(self.state.dial_time_fates)
        now = self.clock.now()
        mode = await self.lane.run(self._untouched, now)
        base, digest = await anyio.to_thread.run_sync(self._fate_base, mode)

        def work() -> dict[str, int]:
            nonlocal base, digest
            current = self._untouched(now)
            if current != mode:  # the control or the pool changed meanwhile (rare)
                base, digest = self._fate_base(current)
            if journal.fate_base_digest() != digest:
                journal.set_fate_base(base, digest)
            by_person = journal.attempts_by_person()
            overlay = journal.overlay_fates()
            touched: dict[int, int] = {}  # row number -> plan position
            index, row_of = self.rows_by_person, self.columns.row
            for person in by_person:
                pos = index.position(person)
                if pos is not None:
                    touched[int(row_of[pos])] = pos
            touched.update(positions_in(overlay, self.row_positions))
            touched.update(positions_in(dial_time, self.row_positions))
            writes: list[Fate] = []
            drops: list[int] = []
            differ: dict[int, str] = {}  # position -> disposition, where not the base's
            held = self.state.budget_hold
            for rownum, pos in touched.items():
                r = self.rows[pos]
                attempts = by_person.get(r.person or "", []) if not r.contact_suppressed else []
                kept = fate_at(base, pos)
                fate = row_fate(r, attempts, self.rows_by_person, self.policy, now,
                                current.control, overlay.get(rownum, kept),
                                dial_time.get(rownum))
                if held is not None and fate.reason == "not_dialed_yet":
                    # Not dialed because the budget is used up: that is what they wait for.
                    fate = Fate(fate.row, fate.person, vocab.PENDING, held.reason, held.detail,
                                iso(held.next_open), fate.evidence)
                if current.exhausted is not None and fate.reason == "not_dialed_yet":
                    # Every number of the pool is capped or resting (this process saw it or
                    # not: another process of a shared campaign may have used the pool up).
                    detail, until = current.exhausted
                    fate = Fate(fate.row, fate.person, vocab.PENDING, EXHAUSTED, detail, until,
                                fate.evidence)
                if same_fate(fate, kept):
                    if rownum in overlay:
                        drops.append(rownum)
                    continue
                differ[pos] = fate.disposition
                if not same_fate(fate, overlay.get(rownum)):
                    writes.append(fate)
            # Only what changed: every process of a shared campaign recomputes at its start
            # and end, and an unchanged fate rewritten is a round trip for nothing.
            if writes:
                journal.set_fates(writes)
            if drops:
                journal.drop_fates(drops)
            counts = Counter(counts_of(base))
            if differ:
                was = by_disposition(base, {p: p for p in differ})
                for pos, disposition in differ.items():
                    counts[was[pos]] -= 1
                    counts[disposition] += 1
            return {k: v for k, v in counts.items() if v}

        counts = await self.lane.run(work)
        self.stats.suppressed = counts.get(vocab.SUPPRESSED, 0)
        return counts
