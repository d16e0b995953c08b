"""The run: a task group of a producer and a pool of workers, and what watches over them.

A producer feeds due rows into an unbuffered memory stream; a pool of workers, one per
live-call slot, dials and follows them; open attempts from a previous run are resolved
beside them. Around that: signals (first one: stop placing, let live calls finish for the
grace period; second: stop now), the pause/cancel control, the deadline, the outage
watchdog, progress and the HTTP log, the webhook listener.
"""

from __future__ import annotations

import functools
import gc
import signal
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.abc
import anyio.to_thread

from campaign_dialer import log, vocab
from campaign_dialer.client import AuthError, VantaxError
from campaign_dialer.config import ConfigError
from campaign_dialer.errors import DialerError, InputError
from campaign_dialer.exitcodes import ExitCode
from campaign_dialer.store import (
    UNRESOLVED,
    Fate,
    JournalStore,
    JournalWriteError,
    iso,
)
from campaign_dialer.webhook import JournalSink, Receiver, Served, bind

from .adaptive import AdaptiveSchedule, schedule_for
from .base import Stop
from .breaker import Breaker
from .callerid import EXHAUSTED, HEALTH_EVERY_S
from .fates import row_fate
from .monitoring import RunMonitor
from .pacing import Limits
from .rows import Row
from .schedule import seed
from .shared import Sharing
from .telemetry import Stats

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


class Engine(Sharing):
    """Place the calls the gate allows, follow each to its end, survive the world."""

    _sink_journal: JournalStore
    monitor: RunMonitor | None

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
        self._sink_journal = self._own_journal()
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

    def _own_journal(self) -> JournalStore:
        """The same journal through a connection of its own (the webhook sink's)."""
        return self.journal.sync.twin()

    # -- run ----------------------------------------------------------------------------
    async def run(self) -> RunOutcome:
        # The plan's objects live as long as the run: a full collection would walk them all,
        # on the loop, tens of milliseconds at a time. Frozen, collections skip them.
        gc.freeze()
        self.limits = (
            Limits.for_campaign(self.cfg) if self.co is None
            else Limits.shared(self.cfg, self.co)
        )
        self.breaker = Breaker(self.cfg.api.breaker_threshold)
        self.served = await anyio.to_thread.run_sync(self._open_webhooks)
        self.webhooks = self.served.receiver if self.served else None
        self.monitor = None
        try:
            if self.opts.monitor is not None:
                self.monitor = RunMonitor(self, self.opts.monitor, self._own_journal)
                self.served = await anyio.to_thread.run_sync(self.monitor.open) or self.served
            if self.webhooks is not None:
                self.metrics.webhooks_from(lambda: self.webhooks.counts if self.webhooks else {})
            return await self._run()
        finally:
            gc.unfreeze()
            self.metrics.up(False)
            if self.served is not None:
                self.served.sock.close()
                self._sink_journal.close()
            if self.monitor is not None:
                self.monitor.close()

    async def _start(self) -> None:
        """Begin the run in the journal, agree with the history, seed the schedule (one hop)."""
        journal = self.journal.sync

        def begin() -> tuple[int, list[tuple[Row, Any]]]:
            run_id = journal.begin_run()  # PostgreSQL: registers this process
            journal.set_meta("clock_source", self.clock.source)
            journal.set_meta("pause_wait_s", f"{self.opts.pause_wait_s:g}")
            self._sync_with_history()
            if isinstance(self.schedule, AdaptiveSchedule):
                self.schedule.learn(self.history, self.campaign)
            if self.co is not None:
                # Shared: rows come by claim, a dead process's open intents with them.
                self.stats.to_dial = self._shared_setup()
                return run_id, []
            by_person = journal.attempts_by_person()
            self._open_attempts = [a for lst in by_person.values() for a in lst if a.is_open]
            due = seed(self.rows, self.rows_by_person, by_person, journal.control(),
                 self.policy, self.clock.now())
            return run_id, due

        self.run_id, due = await self.lane.run(begin)
        self.telemetry.run_id = self.run_id
        for row, not_before in due:
            self.schedule.push(row, not_before)
        if self.co is None:
            self.stats.to_dial = len(self.schedule)

    async def _run(self) -> RunOutcome:
        if self.clock.is_fake:
            # The env hook is for tests; a demo's simulated clock is said on screen instead.
            level = self.log.warning if self.clock.env_hook else self.log.info
            level("simulated_clock_in_use", now=iso(self.clock.now()))
        self.schedule = schedule_for(  # input order, or adaptive ([schedule])
            self.cfg.schedule, self.campaign.name, self.gate, self._deadline)
        await self._start()
        await self.finalize_fates()  # so `status` is right from the first second of a run
        self.log.info(
            "run_started", run_id=self.run_id, rows=self.stats.rows, to_dial=len(self.schedule),
            open_attempts=len(self._open_attempts),
        )
        exit_code = ExitCode.OK
        message = ""
        try:
            # Made in a worker thread: an HTTP client loads its TLS certificates (tens of ms).
            made = await anyio.to_thread.run_sync(functools.partial(
                self.client_factory, pacer=self.limits.pace_request,
                observer=self.telemetry.observe,
            ))
            async with made as client:
                self.client = client
                if self.schedule or self._open_attempts or self.co is not None:
                    await self._probe()
                async with anyio.create_task_group() as tg:
                    self.tg = tg
                    if self.opts.install_signal_handlers:
                        tg.start_soon(self._watch_signals)
                    tg.start_soon(self._ticker)
                    if self.caller_ids is not None:
                        tg.start_soon(self._watch_caller_ids)
                    if isinstance(self.schedule, AdaptiveSchedule):
                        tg.start_soon(self._watch_answers, self.schedule)
                    if self.served is not None:
                        tg.start_soon(self.served.serve)
                    listener = self.monitor.listener if self.monitor else None
                    if listener is not None:
                        tg.start_soon(listener.serve)
                    self.metrics.up(True)
                    if self.co is not None:  # renews this process's leases; reads control
                        tg.start_soon(self.co.keep_alive, self._on_control)
                    async with anyio.create_task_group() as work:
                        self.work = work
                        for a in self._open_attempts:
                            work.start_soon(self._resume, a)
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
                self._stop = Stop(ExitCode.DATAERR, str(bad_input))
            elif isinstance(known, DialerError):  # e.g. the journal's disk is full
                self.log.error("run_stopped", error=str(known))
                self._stop = Stop(known.exit_code, str(known))
                if isinstance(known, JournalWriteError):
                    raise known from None  # nothing more can be recorded; say so and leave
            else:
                self.log.exception("run_failed", error=repr(e))
                self._stop = Stop(ExitCode.FAILURE, f"unexpected error: {e!r}")
        finally:
            with anyio.CancelScope(shield=True):
                await self.telemetry.flush(self.journal)
                if self.caller_ids is not None and self._stop is None:
                    # what this run's last calls said of their numbers, before it leaves
                    await self.lane.run(self.caller_ids.check_health, self.clock.now())
        if self._stop is not None:
            exit_code, message = self._stop.code, self._stop.message
            self.log.error("run_aborted", reason=message, exit_code=int(exit_code))
        summary = await self.finalize_fates()
        if self._stop is None:
            if self.stop_signal is not None:
                exit_code = (
                    ExitCode.SIGINT if self.stop_signal == signal.SIGINT else ExitCode.SIGTERM
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
                self._stop_soon(
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
        self.schedule.poke()

    async def _watch_signals(self) -> None:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for signum in signals:
                if self.stop_signal is None:
                    self.stop_signal = signum
                    self.stopping = True
                    self.schedule.poke()
                    self.log.warning(
                        "stopping", signal=signal.Signals(signum).name, grace_s=self.opts.grace_s,
                        live=self.stats.live,
                    )
                    self.tg.start_soon(self._grace_timer)
                else:
                    self.log.warning("stopping_now", signal=signal.Signals(signum).name)
                    self.tg.cancel_scope.cancel()
                    return

    async def _probe(self) -> None:
        """Learn the platform's clock before the first intent (crash recovery needs it)."""
        try:
            with anyio.fail_after(self.cfg.api.request_timeout_s + 1):
                at = await self.client.probe()
        except AuthError:
            return  # the first POST says so and stops the run with 77
        except (VantaxError, TimeoutError) as e:
            self.log.warning("platform_clock_unknown", error=str(e))
            return
        if at is not None:
            skew = (self.clock.now() - at).total_seconds()
            self.log.info("platform_clock", platform_now=iso(at), dialer_ahead_s=round(skew, 1))

    # -- the producer and the workers -----------------------------------------------------
    _paused_since: float | None = None
    _pause_expired = False

    def _still_waiting_for_resume(self) -> bool:
        """Paused: keep waiting (True) until --pause-wait is used up (False)."""
        now = time.monotonic()
        if self._paused_since is None:
            self._paused_since = now
            self.log.warning("paused", pause_wait_s=self.opts.pause_wait_s, live=self.stats.live,
                             waiting_rows=len(self.schedule))
        if now - self._paused_since >= self.opts.pause_wait_s:
            self._pause_expired = True
            self.log.warning("pause_wait_over", pause_wait_s=self.opts.pause_wait_s)
            return False
        return True

    async def _producer(self, send: anyio.abc.ObjectSendStream[Row]) -> None:
        control, asked = "", -CONTROL_EVERY_S
        async with send:
            while not self.stopping and self._stop is None:
                if self._past_deadline():
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
                    if not self.schedule and self.schedule.in_flight == 0 and self.co is None:
                        return
                    if not self._still_waiting_for_resume():
                        return
                    await anyio.sleep(min(1.0, self.opts.pause_wait_s))
                    continue
                if self._paused_since is not None:
                    self._paused_since = None
                    self.log.info("resumed", waiting_rows=len(self.schedule))
                if self.caller_ids is not None and self.caller_ids.is_closed(self.clock.now()):
                    if not await self._wait_for_caller_ids():
                        return
                    continue
                now = self.clock.now()
                row = self.schedule.pop_due(now)
                if row is not None:
                    self.schedule.in_flight += 1
                    await send.send(row)
                    continue
                if self.co is not None and await self._claim_more():
                    continue
                nxt = self.schedule.next_due()
                if self.schedule.in_flight == 0 and (nxt is None or not self.opts.wait):
                    if self.co is None or not await self._others_pending():
                        return
                    continue
                changed = self.schedule.changed
                timeout = None if nxt is None else max(self.clock.seconds_until(nxt), 0.0)
                if self._deadline is not None:
                    left = max(self.clock.seconds_until(self._deadline), 0.0)
                    timeout = left if timeout is None else min(timeout, left)
                # Sleep until the next row is due or something changes; a pause flag set by
                # another process is noticed at the next check (at most a second late).
                timeout = 1.0 if timeout is None else min(timeout, 1.0)
                with anyio.move_on_after(timeout):
                    await changed.wait()

    async def _wait_for_caller_ids(self) -> bool:
        """Every number of the pool is capped or resting: wait for one (`--wait`), or leave
        the rows due by then pending `caller_ids_exhausted` with the moment one frees."""
        cid = self.caller_ids
        assert cid is not None and cid.closed_until is not None
        until = cid.closed_until
        if not self.opts.wait:
            detail = cid.exhausted_detail()
            # A shared campaign's rows wait in the database, not on this process's schedule:
            # every row the plan found callable that no attempt settles waits as well.
            due = self.schedule.due_by(until) if self.co is None else [
                r for r in self.rows if r.disposition == vocab.ELIGIBLE]
            for row in due:
                self.dial_time_fates[row.row] = Fate(
                    row.row, row.person, vocab.PENDING, EXHAUSTED, detail, iso(until),
                    row.evidence,
                )
            self.log.warning("caller_ids_exhausted", until=iso(until), detail=detail)
            return False
        timeout = max(self.clock.seconds_until(until), 0.0)
        if self._deadline is not None:
            timeout = min(timeout, max(self.clock.seconds_until(self._deadline), 0.0))
        with anyio.move_on_after(min(timeout, 1.0)):
            await self.schedule.changed.wait()
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
        async with recv:
            async for row in recv:
                try:
                    await self._dial(row)
                    await self._settle(row)
                finally:
                    self.schedule.in_flight -= 1
                    self.schedule.poke()

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
        # Every later change of an attempt reaches the history in the same (lane) call.
        journal.on_change = lambda record: history.sync(self.campaign.name, [record])

    async def finalize_fates(self) -> dict[str, int]:
        """Recompute every row's fate from the rows and the journal (in the lane); counts."""
        journal = self.journal.sync
        dial_time = dict(self.dial_time_fates)

        def work() -> dict[str, int]:
            now = self.clock.now()
            by_person = journal.attempts_by_person()
            control = journal.control()
            stored = journal.fates()
            fates: list[Fate] = []
            held = self.budget_hold
            for r in self.rows:
                attempts = by_person.get(r.person or "", []) if not r.contact_suppressed else []
                fate = row_fate(r, attempts, self.rows_by_person, self.policy, now, control,
                                stored.get(r.row), dial_time.get(r.row))
                if held is not None and fate.reason == "not_dialed_yet":
                    # Not dialed because the budget is used up: that is what they wait for.
                    fate = Fate(fate.row, fate.person, vocab.PENDING, held.reason, held.detail,
                                iso(held.next_open), fate.evidence)
                fates.append(fate)
            closed = self.caller_ids.closed_now(now) if self.caller_ids is not None else None
            if closed is not None:
                # Every number of the pool is capped or resting (this process saw it or not:
                # another process of a shared campaign may have used the pool up): rows
                # nobody dialed wait for the moment one frees, and say so.
                until, detail = closed
                fates = [
                    Fate(f.row, f.person, vocab.PENDING, EXHAUSTED, detail, iso(until),
                         f.evidence) if f.reason == "not_dialed_yet" else f
                    for f in fates
                ]
            # Only what changed: every process of a shared campaign recomputes every row at
            # its start and end, and an unchanged fate rewritten is a round trip for nothing.
            journal.set_fates([f for f in fates if stored.get(f.row) != f])
            return dict(Counter(f.disposition for f in fates))

        counts = await self.lane.run(work)
        self.stats.suppressed = counts.get(vocab.SUPPRESSED, 0)
        return counts
