"""The engine: place the calls the plan allows, follow each to its end, survive the world.

A producer feeds due rows into a bounded memory stream; a pool of workers, one per live-call
slot, dials and follows them. Every step is journaled before it matters:

- the gate (DNC, consent, calling window) is asked again at the moment of dialing, and again
  before any re-send of a POST that may not have reached the platform;
- the intent (person, attempt, idempotency key, body) is committed before the POST is sent,
  and the key is derived from campaign, person and attempt, so a retry, a rerun or a crash
  can only ever replay the same call;
- a live-call slot is freed when the call is final, not when the POST returns.
"""

from __future__ import annotations

import dataclasses
import hashlib
import heapq
import json
import random
import signal
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
from aiolimiter import AsyncLimiter

from campaign_dialer import log
from campaign_dialer.client import (
    TERMINAL_STATUSES,
    AuthError,
    Call,
    DncRejected,
    Exchange,
    NotFound,
    ValidationFailed,
    VantaxClient,
    VantaxError,
)
from campaign_dialer.clock import Clock
from campaign_dialer.compliance import (
    ComplianceError,
    Gate,
    Verdict,
    max_calls_per_24h,
    state_for_number,
)
from campaign_dialer.config import Campaign, ConfigError
from campaign_dialer.errors import DialerError
from campaign_dialer.exitcodes import ExitCode
from campaign_dialer.planning import (
    HISTORY_REASONS,
    Plan,
    PlannedRow,
    open_campaign_history,
)
from campaign_dialer.store import (
    ERROR,
    FINAL,
    INTENT,
    NOT_PLACED,
    PLACED,
    REJECTED,
    UNRESOLVED,
    Attempt,
    DuplicateAttempt,
    Fate,
    HistoryStore,
    Journal,
    JournalWriteError,
    iso,
    parse_iso,
)
from campaign_dialer.webhook import JournalSink, Receiver, Served, bind

# Share of the platform's request limit the dialer allows itself: network jitter can bunch
# evenly spaced requests together on arrival, and a 429 we caused ourselves is a bug.
REQUEST_HEADROOM = 0.9
# A call finished by a final `call.status_changed` waits this long (at most) for its
# `call.completed`, which may carry more (transcript, recording).
COMPLETED_WAIT_S = 5.0
MAX_BACKOFF_S = 30.0
# Crash recovery looks a call up from this long before the intent, on the platform's clock:
# the Date header it sent has whole seconds, the dialer may have died mid-request.
LOOKUP_MARGIN = timedelta(minutes=15)
ClientFactory = Callable[..., VantaxClient]


def idempotency_key(campaign: str, person: str, attempt: int) -> str:
    """Stable for one person's one attempt in one campaign: a replay can never ring twice."""
    digest = hashlib.sha256(f"{campaign}\x1f{person}\x1f{attempt}".encode()).hexdigest()
    return f"cd1-{digest[:48]}"


def revised_key(key: str, body: dict[str, Any]) -> str:
    """The key for a not-placed attempt re-sent with a corrected body (the platform answers a
    key reused with another body with 422 `idempotency_mismatch`, or its first answer)."""
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    return f"{key.split('.')[0]}.{digest[:12]}"


def backoff(tries: int, *, base: float = 0.5, cap: float = MAX_BACKOFF_S) -> float:
    """Exponential backoff with full jitter."""
    return random.uniform(0, min(cap, base * (2 ** max(tries - 1, 0))))


class Pacer:
    """New calls at `rate` per second, evenly spaced, keeping their schedule.

    `aiolimiter.AsyncLimiter(1, 1 / rate)` spaces acquisitions too, but each one loses what
    its wake-up was late by (about 1 ms: 6% of the rate at 50 calls/s, measured). Here slot
    n+1 is due one gap after slot n was *due*, so lateness does not accumulate; a slot more
    than half a gap late restarts the schedule from now, so there is never a burst to catch
    up: two calls are always at least half a gap apart, and on average exactly one gap.
    """

    def __init__(self, rate: float) -> None:
        self.gap = 1.0 / rate
        self._next: float | None = None
        self._lock = anyio.Lock()
        self.last_release = 0.0  # when the last slot was given, for observers (tests, stats)

    async def acquire(self) -> None:
        async with self._lock:
            now = anyio.current_time()
            if self._next is None:
                self._next = now
            if self._next > now:
                await anyio.sleep(self._next - now)
            released = self.last_release = anyio.current_time()
            if released - self._next > self.gap / 2:
                self._next = released  # idle, or woken too late to keep the schedule
            self._next += self.gap


@dataclass
class RunOptions:
    wait: bool = False
    until: datetime | None = None
    max_duration_s: float | None = None
    grace_s: float = 60.0
    install_signal_handlers: bool = True
    # A pause seen by a run: wait this long for `resume` before leaving with 75.
    pause_wait_s: float = 15 * 60.0


@dataclass
class Stats:
    rows: int = 0
    placed: int = 0
    live: int = 0
    completed: int = 0
    rejected: int = 0
    errors: int = 0
    suppressed: int = 0
    deferred: int = 0
    unresolved: int = 0
    held_unresolved: int = 0
    to_dial: int = 0
    http: Counter[str] = field(default_factory=Counter)
    started: float = field(default_factory=time.monotonic)

    def calls_per_second(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.placed / elapsed if elapsed > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows, "placed": self.placed, "live": self.live,
            "completed": self.completed, "rejected": self.rejected, "errors": self.errors,
            "suppressed": self.suppressed, "deferred": self.deferred,
            "unresolved": self.unresolved, "held_unresolved": self.held_unresolved,
            "to_dial": self.to_dial,
            "calls_per_second": round(self.calls_per_second(), 3),
            "http": dict(self.http),
        }


@dataclass
class RunOutcome:
    exit_code: ExitCode
    stats: Stats
    message: str = ""


class _Abort(Exception):
    def __init__(self, code: ExitCode, message: str) -> None:
        super().__init__(message)
        self.code = code


class _Schedule:
    """Rows waiting for their time (window opening, redial gap), earliest first."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, PlannedRow]] = []
        self.in_flight = 0
        self.changed = anyio.Event()

    def push(self, row: PlannedRow, not_before: datetime | None) -> None:
        ts = not_before.timestamp() if not_before else 0.0
        heapq.heappush(self._heap, (ts, row.order, row))
        self.poke()

    def poke(self) -> None:
        self.changed.set()
        self.changed = anyio.Event()

    def pop_due(self, now: datetime) -> PlannedRow | None:
        if self._heap and self._heap[0][0] <= now.timestamp():
            return heapq.heappop(self._heap)[2]
        return None

    def next_due(self) -> datetime | None:
        if not self._heap:
            return None
        return datetime.fromtimestamp(self._heap[0][0], UTC)

    def __len__(self) -> int:
        return len(self._heap)


class Engine:
    def __init__(
        self,
        *,
        campaign: Campaign,
        plan: Plan,
        journal: Journal,
        client_factory: ClientFactory,
        clock: Clock,
        options: RunOptions | None = None,
        on_progress: Callable[[Stats], None] | None = None,
    ) -> None:
        self.campaign = campaign
        self.cfg = campaign.model
        self.plan = plan
        self.gate = plan.gate
        self.journal = journal
        self.history: HistoryStore = plan.history or open_campaign_history(campaign)
        self.client_factory = client_factory
        self.clock = clock
        self.opts = options or RunOptions()
        self.on_progress = on_progress
        self.stats = Stats(rows=len(plan.rows))
        self.log = log.get("engine", campaign=campaign.name)
        self.rows_by_person: dict[str, PlannedRow] = {}
        for r in plan.rows:
            if r.person and not r.contact_suppressed and r.person not in self.rows_by_person:
                self.rows_by_person[r.person] = r
        # People the contacts file itself marks Do-Not-Call: an open intent is never re-sent.
        self._flagged = {r.person for r in plan.rows if r.reason == "dnc_flag" and r.person}
        # What the gate said at the moment of dialing outranks what it said at planning.
        self.dial_time_fates: dict[int, Fate] = {}
        self.stopping = False
        self.stop_signal: int | None = None
        self._abort: _Abort | None = None
        self._paused_since: float | None = None
        self._pause_expired = False
        # Monotonic time of the first failed exchange (refused, timeout, 5xx) since the
        # platform last answered; an outage longer than api.outage_s ends the run with 69.
        self._failing_since: float | None = None
        # Consecutive non-transient errors with the same code: (code, attempt ids).
        self._streak: tuple[str, list[int]] = ("", [])
        self._events: list[tuple[Any, ...]] = []
        self.run_id: int | None = None
        self.served: Served | None = None
        self.webhooks: Receiver | None = None
        # The gate answers from memory; `_fresh_gate` has it re-read, in a worker thread, the
        # inputs that changed (DNC lists, consent, RND answers, the DNC ledger's new lines).
        self._gate_checked = time.monotonic()
        self._deadline: datetime | None = self.opts.until
        if self.opts.max_duration_s is not None:
            d = clock.now() + timedelta(seconds=self.opts.max_duration_s)
            self._deadline = min(d, self._deadline) if self._deadline else d

    # -- the gate's inputs can change mid-run -----------------------------------------
    async def _fresh_gate(self) -> Gate:
        """The gate, caught up with the compliance files that changed during the run.

        A consent revoked, a number added to a DNC list or to the DNC ledger, or a new RND
        answer while the campaign runs must stop that call; the files are looked at (in a
        worker thread: `Gate.reloaded`) no more than once a second.
        """
        if time.monotonic() - self._gate_checked < 1.0:
            return self.gate
        async with self._gate_lock:
            if time.monotonic() - self._gate_checked < 1.0:
                return self.gate
            try:
                gate = await anyio.to_thread.run_sync(self.gate.reloaded)
            except Exception as e:  # noqa: BLE001 - any failure means we cannot vouch for a call
                self._abort_run(
                    ExitCode.DATAERR, f"a compliance input changed and cannot be read: {e}"
                )
                return self.gate
            finally:
                self._gate_checked = time.monotonic()
            if gate is not None:
                self.gate = gate
                self.log.info("compliance_inputs_reloaded")
        return self.gate

    # -- limits -----------------------------------------------------------------------
    def _make_limits(self) -> None:
        api = self.cfg.api
        rps = api.requests_per_second * REQUEST_HEADROOM
        # AsyncLimiter(1, gap) spaces acquisitions evenly; (rate, 1) would burst.
        self.request_limiter = AsyncLimiter(1, 1.0 / rps)
        self.call_limiter = Pacer(self.cfg.pacing.calls_per_second)
        self.live_slots = anyio.Semaphore(api.max_live_calls)
        self._gate_lock = anyio.Lock()
        self.poll_budget = max(rps - self.cfg.pacing.calls_per_second, rps * 0.25)

    async def _pace_request(self, _method: str) -> None:
        await self.request_limiter.acquire()

    def _poll_interval(self) -> float:
        """Poll no faster than the request budget left after placing calls allows."""
        return max(self.cfg.api.poll_interval_s, max(self.stats.live, 1) / self.poll_budget)

    def _observe(self, ex: Exchange) -> None:
        if ex.status is not None and ex.status < 500 and ex.status != 408:
            self._failing_since = None  # the platform answered, even if to say no
        elif self._failing_since is None:
            self._failing_since = time.monotonic()
        key = f"{ex.method} {ex.status or ex.error}"
        self.stats.http[key] += 1
        self._events.append(
            (time.time(), self.run_id, ex.method, ex.path, ex.status, ex.code,
             round(ex.latency_s, 4), ex.error)
        )

    def _flush_events(self) -> None:
        events, self._events = self._events, []
        if events:
            self.journal.add_http_events(events)

    # -- run --------------------------------------------------------------------------
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
        self._sink_journal = Journal(self.journal.path, self.campaign.name)
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

    async def run(self) -> RunOutcome:
        self._make_limits()
        self.served = self._open_webhooks()
        self.webhooks = self.served.receiver if self.served else None
        try:
            return await self._run()
        finally:
            if self.served is not None:
                self.served.sock.close()
                self._sink_journal.close()

    async def _run(self) -> RunOutcome:
        self.run_id = self.journal.begin_run()
        self.journal.set_meta("clock_source", self.clock.source)
        self.journal.set_meta("pause_wait_s", f"{self.opts.pause_wait_s:g}")
        if self.clock.is_fake:
            # The env hook is for tests; a demo's simulated clock is said on screen instead.
            level = self.log.warning if self.clock.env_hook else self.log.info
            level("simulated_clock_in_use", now=iso(self.clock.now()))
        self.schedule = _Schedule()
        self._sync_with_history()
        self._seed_fates_and_schedule()
        self.finalize_fates()  # so `status` is right from the first second of a run
        self.log.info(
            "run_started", run_id=self.run_id, rows=self.stats.rows, to_dial=len(self.schedule),
            open_attempts=len(self._open_attempts),
        )
        exit_code = ExitCode.OK
        message = ""
        try:
            async with self.client_factory(
                pacer=self._pace_request, observer=self._observe
            ) as client:
                self.client = client
                if self.schedule or self._open_attempts:
                    await self._probe()
                async with anyio.create_task_group() as tg:
                    self.tg = tg
                    if self.opts.install_signal_handlers:
                        tg.start_soon(self._watch_signals)
                    tg.start_soon(self._ticker)
                    if self.served is not None:
                        tg.start_soon(self.served.serve)
                    async with anyio.create_task_group() as work:
                        for a in self._open_attempts:
                            work.start_soon(self._resume, a)
                        send, recv = anyio.create_memory_object_stream[PlannedRow](0)
                        work.start_soon(self._producer, send)
                        async with recv:
                            for _ in range(self.cfg.api.max_live_calls):
                                work.start_soon(self._worker, recv.clone())
                    if self.served is not None:
                        await self.served.stop()
                    tg.cancel_scope.cancel()
        except Exception as e:  # noqa: BLE001 - a bug must still leave results behind
            # Every journal write is its own transaction, so the journal is consistent here;
            # record what happened and let the next run resume from it.
            bad_input = _first(e, ComplianceError)
            known = _first(e, DialerError)
            if bad_input is not None:  # a consent/DNC file became unreadable mid-run
                self.log.error("compliance_input_unreadable", error=str(bad_input))
                self._abort = _Abort(ExitCode.DATAERR, str(bad_input))
            elif isinstance(known, DialerError):  # e.g. the journal's disk is full
                self.log.error("run_stopped", error=str(known))
                self._abort = _Abort(known.exit_code, str(known))
                if isinstance(known, JournalWriteError):
                    raise known from None  # nothing more can be recorded; say so and leave
            else:
                self.log.exception("run_failed", error=repr(e))
                self._abort = _Abort(ExitCode.FAILURE, f"unexpected error: {e!r}")
        finally:
            with anyio.CancelScope(shield=True):
                self._flush_events()
        if self._abort is not None:
            exit_code, message = self._abort.code, str(self._abort)
            self.log.error("run_aborted", reason=message, exit_code=int(exit_code))
        summary = self.finalize_fates()
        if self._abort is None:
            if self.stop_signal is not None:
                exit_code = (
                    ExitCode.SIGINT if self.stop_signal == signal.SIGINT else ExitCode.SIGTERM
                )
                message = "interrupted"
            elif self.stats.unresolved:
                exit_code = ExitCode.UNAVAILABLE
                message = f"{self.stats.unresolved} call(s) could not be confirmed: API unavailable"
            elif self._pause_expired and summary.get("pending", 0):
                exit_code = ExitCode.TEMPFAIL
                message = (
                    f"the campaign is paused (waited {self.opts.pause_wait_s:g}s for resume); "
                    f"{summary['pending']} row(s) wait: `campaign-dialer resume` and run again"
                )
            elif summary.get("pending", 0):
                exit_code = ExitCode.TEMPFAIL
                message = f"{summary['pending']} row(s) left for a later run"
            if exit_code == ExitCode.TEMPFAIL and self.journal.attempts(states=[UNRESOLVED]):
                held = len(self.journal.attempts(states=[UNRESOLVED]))
                message += (
                    f"; {held} call(s) could not be confirmed and wait for a person: see "
                    "`campaign-dialer status`, then `campaign-dialer release`"
                )
        self.journal.end_run(
            self.run_id, int(exit_code),
            {**self.stats.as_dict(), **summary, "clock_source": self.clock.source},
        )
        self.journal.set_meta("last_exit_code", str(int(exit_code)))
        self.log.info("run_finished", exit_code=int(exit_code), **self.stats.as_dict())
        return RunOutcome(exit_code, self.stats, message)

    async def _ticker(self) -> None:
        last_log = time.monotonic()
        while True:
            await anyio.sleep(0.5)
            self._flush_events()
            if self.on_progress:
                self.on_progress(self.stats)
            failing = self._failing_since
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

    async def _grace_timer(self) -> None:
        await anyio.sleep(self.opts.grace_s)
        self.log.warning("grace_period_over", live=self.stats.live)
        self.tg.cancel_scope.cancel()

    def _stop_soon(self, code: ExitCode, message: str) -> None:
        """Stop placing calls now; keep following live ones for the grace period."""
        if self._abort is not None:
            return
        self._abort = _Abort(code, message)
        self.stopping = True
        self.schedule.poke()
        self.log.error("stopping_new_calls", reason=message, exit_code=int(code),
                       grace_s=self.opts.grace_s, live=self.stats.live)
        self.tg.start_soon(self._grace_timer)

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

    def _abort_run(self, code: ExitCode, message: str) -> None:
        if self._abort is None:
            self._abort = _Abort(code, message)
        self.stopping = True
        self.tg.cancel_scope.cancel()

    # -- the contact history ----------------------------------------------------------
    def _sync_with_history(self) -> None:
        """Journal and history agree before anything is dialed.

        What the journal knows goes into the history (a journal from before the history
        existed, a change the history missed); what the history knows of this campaign and
        the journal lost (a deleted journal, a crash between claim and intent) comes back
        into the journal: a called row stays called, an open claim is resolved like any open
        intent (replay within the platform's idempotency memory, else a lookup).
        """
        known = self.history.records(self.campaign.name)
        seen = {_sync_key(r) for r in known}
        self.history.sync(
            self.campaign.name,
            [r for r in self.journal.attempt_records() if _sync_key(r) not in seen],
        )
        restored = self.journal.import_attempts(known)
        if restored:
            self.log.warning("journal_restored_from_history", attempts=restored,
                             history=self.history.path)
        self.journal.on_change = self._to_history

    def _to_history(self, record: dict[str, Any]) -> None:
        self.history.sync(self.campaign.name, [record])

    # -- scheduling -------------------------------------------------------------------
    def _seed_fates_and_schedule(self) -> None:
        now = self.clock.now()
        by_person = self.journal.attempts_by_person()
        self._open_attempts = [a for lst in by_person.values() for a in lst if a.is_open]
        control = self.journal.control()
        for r in self.plan.rows:
            if r.person is None or r.contact_suppressed:
                continue
            if self.rows_by_person.get(r.person) is not r:
                continue
            attempts = by_person.get(r.person, [])
            if attempts and attempts[-1].is_open:
                continue  # resumed below
            nxt = self._next_attempt(r, attempts, now)
            if nxt is None:
                continue
            _, not_before = nxt
            if control == "canceled":
                continue  # paused rows are scheduled: the producer waits for `resume`
            if r.disposition == "suppressed" and not attempts:
                continue  # the plan held it back; the gate would say the same at dial time
            if r.disposition == "pending" and r.next_open is not None:
                not_before = max(not_before or r.next_open, r.next_open)
            elif r.disposition == "pending" and not attempts:
                continue  # pending with no known opening (unknown zone): nothing to wait for
            self.schedule.push(r, not_before)
        self.stats.to_dial = len(self.schedule)

    def _next_attempt(
        self, r: PlannedRow, attempts: list[Attempt], now: datetime
    ) -> tuple[int, datetime | None] | None:
        """The attempt number this person may get next, and not before when; None: never."""
        if not attempts:
            return 1, None
        last = attempts[-1]
        if last.state == NOT_PLACED:
            return last.attempt, None
        if last.state != FINAL:
            return None
        red = self.cfg.redial
        if last.status not in red.statuses or last.attempt >= red.max_attempts:
            return None
        if self._opted_out(last):
            return None
        ended = parse_iso(last.ended_at) or now
        not_before = ended + timedelta(minutes=red.min_gap_minutes)
        limit = min(red.max_per_24h, 3)
        state_limit = (
            max_calls_per_24h(r.phone_e164, self.gate.window.rules) if r.phone_e164 else None
        )
        if state_limit is not None:
            limit = min(limit, state_limit)
        placed = sorted(
            t for a in attempts if a.state in (FINAL, PLACED)
            if (t := parse_iso(a.placed_at or a.intent_at)) is not None
        )
        if len(placed) >= limit:
            # the (limit)-th most recent call must be 24 h old before another is allowed
            not_before = max(not_before, placed[-limit] + timedelta(hours=24, seconds=1))
        return last.attempt + 1, not_before

    def _opted_out(self, a: Attempt) -> bool:
        words = set(self.cfg.compliance.opt_out_outcomes)
        return bool(words & {a.outcome or "", a.ended_reason or "", a.status or ""})

    def _may_start_new_call(self) -> bool:
        if self.stopping or self._abort is not None:
            return False
        if self._deadline is not None and self.clock.now() >= self._deadline:
            return False
        return self.journal.control() == "active"

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

    async def _producer(self, send: anyio.abc.ObjectSendStream[PlannedRow]) -> None:
        async with send:
            while not self.stopping and self._abort is None:
                if self._deadline is not None and self.clock.now() >= self._deadline:
                    return
                control = self.journal.control()
                if control == "canceled":
                    return
                if control == "paused":
                    # Live calls go on being followed; rows stay on the schedule for a
                    # `resume` in this run (or the next run).
                    if not self.schedule and self.schedule.in_flight == 0:
                        return
                    if not self._still_waiting_for_resume():
                        return
                    await anyio.sleep(min(1.0, self.opts.pause_wait_s))
                    continue
                if self._paused_since is not None:
                    self._paused_since = None
                    self.log.info("resumed", waiting_rows=len(self.schedule))
                now = self.clock.now()
                row = self.schedule.pop_due(now)
                if row is not None:
                    self.schedule.in_flight += 1
                    await send.send(row)
                    continue
                nxt = self.schedule.next_due()
                if self.schedule.in_flight == 0 and (nxt is None or not self.opts.wait):
                    return
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

    async def _worker(self, recv: anyio.abc.ObjectReceiveStream[PlannedRow]) -> None:
        async with recv:
            async for row in recv:
                try:
                    await self._dial(row)
                finally:
                    self.schedule.in_flight -= 1
                    self.schedule.poke()

    # -- dialing ----------------------------------------------------------------------
    def _back_to_schedule(self, row: PlannedRow) -> None:
        """A row taken off the schedule but not dialed (a pause) waits for its turn again."""
        if not self.stopping and self._abort is None:
            self.schedule.push(row, None)

    async def _dial(self, row: PlannedRow) -> None:
        assert row.person is not None
        bound = self.log.bind(row=row.row)
        async with self.live_slots:
            if not self._may_start_new_call():
                self._back_to_schedule(row)
                return
            await self.call_limiter.acquire()
            gate = await self._fresh_gate()
            if not self._may_start_new_call():
                self._back_to_schedule(row)
                return
            now = self.clock.now()
            verdict = gate.check(
                phone_e164=row.phone_e164, contact_id=row.contact_id, tz_hint=row.tz_hint, at=now,
                other_phones=row.other_phones,
            )
            if verdict.reason == "dnc_list_stale":
                # A national/state list went stale during the run: no call stands on it.
                self._stop_soon(ExitCode.CONFIG, f"{self.campaign.path}: {verdict.detail}")
                return
            if verdict.disposition != "eligible":
                self._defer(row, verdict, bound)
                return
            attempts = self.journal.attempts_for(row.person)
            nxt = self._next_attempt(row, attempts, now)
            if nxt is None:
                return
            attempt_no, not_before = nxt
            if not_before is not None and not_before > now:
                self.schedule.push(row, not_before)
                return
            evidence = {**verdict.evidence, "dialed_at": iso(now)}
            platform_at = self.client.platform_now()
            if platform_at is not None:  # what crash recovery bounds its lookup by
                evidence["platform_at"] = iso(platform_at)
            a = self._intent(row, attempt_no, attempts, evidence)
            if a is None:
                return
            bound = bound.bind(attempt=attempt_no)
            call = await self._post(a, row, bound)
            if call is not None:
                await self._follow(a, call, row, bound)

    def _defer(self, row: PlannedRow, verdict: Verdict, bound: Any) -> None:
        fate = Fate(row.row, row.person, verdict.disposition, verdict.reason, verdict.detail,
                    iso(verdict.next_open), verdict.evidence)
        self.dial_time_fates[row.row] = fate
        self.journal.set_fates([fate])
        bound.info("held_back_at_dial_time", reason=verdict.reason, detail=verdict.detail)
        if verdict.disposition == "pending" and verdict.next_open is not None:
            self.schedule.push(row, verdict.next_open)

    def _intent(
        self, row: PlannedRow, attempt_no: int, attempts: list[Attempt], evidence: dict[str, Any]
    ) -> Attempt | None:
        assert row.person is not None
        body = self._request_body(row)
        existing = next((a for a in attempts if a.attempt == attempt_no), None)
        if existing is not None and existing.state != NOT_PLACED:
            return None
        key = idempotency_key(self.campaign.name, row.person, attempt_no)
        if existing is not None:
            key = existing.idem_key
            if body != existing.body:
                # Fixed since (agent, from-number): nothing was placed under the old key, and a
                # platform may remember its answer to it, so the corrected body gets a key of its
                # own, still stable for this person, attempt and request.
                key = revised_key(key, body)
        if not self._claim(row, attempt_no, key, body, evidence):
            return None
        if existing is not None:
            changed = body != existing.body
            self.journal.reopen(existing.id, body=body if changed else None,
                                idem_key=key if changed else None)
            return self.journal.attempt(existing.id)
        try:
            return self.journal.record_intent(
                person=row.person, row=row.row, attempt=attempt_no,
                idem_key=key, body=body, evidence=evidence, run_id=self.run_id,
            )
        except DuplicateAttempt:
            self.log.error("duplicate_attempt_refused", row=row.row, attempt=attempt_no)
            return None

    def _claim(
        self, row: PlannedRow, attempt_no: int, key: str, body: dict[str, Any],
        evidence: dict[str, Any],
    ) -> bool:
        """Claim the person in the contact history (one transaction); the intent follows.

        Refused when another campaign called them within `min_hours_between_calls`, when the
        state's cap is used up by every campaign's calls, or when the history already holds
        this attempt (the journal had lost it: it is restored and the row keeps its call).
        """
        assert row.person is not None
        now = self.clock.now()
        record = {
            "person": row.person, "row": row.row, "attempt": attempt_no, "idem_key": key,
            "body": json.dumps(body, sort_keys=True), "state": INTENT, "intent_at": iso(now),
            "evidence": json.dumps(evidence), "posts": 0, "updated_at": iso(now),
        }
        claim = self.history.claim(
            campaign=self.campaign.name, person=row.person, phone_e164=row.phone_e164,
            contact_id=row.contact_id, attempt=attempt_no, idem_key=key, record=record, at=now,
            min_hours=self.cfg.history.min_hours_between_calls,
            state_limit=(
                max_calls_per_24h(row.phone_e164, self.gate.window.rules)
                if row.phone_e164 else None
            ),
            state=state_for_number(row.phone_e164) if row.phone_e164 else None,
            also=[f"tel:{o}" for o in row.other_phones if o],
        )
        if claim.ok:
            return True
        bound = self.log.bind(row=row.row, attempt=attempt_no)
        if claim.reason == "already_called":
            restored = self.journal.import_attempts(self.history.records(self.campaign.name))
            bound.warning("claim_refused_already_called", detail=claim.detail,
                          restored=restored)
            known = self.journal.attempts_for(row.person)
            if known:
                self._set_fate_from_attempt(row, known[-1])
            return False
        verdict = Verdict("pending", claim.reason, claim.detail, claim.next_open, {})
        self._defer(row, verdict, bound)
        return False

    def _request_body(self, row: PlannedRow) -> dict[str, Any]:
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

    async def _post(self, a: Attempt, row: PlannedRow, bound: Any) -> Call | None:
        """Send the attempt's POST until the platform gives a definite answer."""
        tries = 0
        max_tries = self.cfg.api.max_attempts
        soft_tries = 0  # 429 / retryable 409: the platform said "not now", nothing was placed
        while True:
            if tries or soft_tries:
                gate = await self._fresh_gate()
                verdict = gate.check(
                    phone_e164=row.phone_e164, contact_id=row.contact_id, tz_hint=row.tz_hint,
                    at=self.clock.now(), other_phones=row.other_phones,
                )
                if verdict.disposition != "eligible":
                    # A re-send may place the call now: not outside the rules. The attempt
                    # stays open and the next run resolves it without ringing anyone again.
                    self.journal.note_error(
                        a.id, http_status=None, error_code="deferred",
                        error=f"re-send held back: {verdict.reason}",
                    )
                    self.stats.deferred += 1
                    return None
            self.journal.count_post(a.id)
            try:
                call = await self.client.place_call(a.body, a.idem_key)
            except AuthError as e:
                self.journal.record_not_placed(
                    a.id, http_status=e.status, error_code=e.code or "unauthorized",
                    error=e.message,
                )
                self._abort_run(ExitCode.NOPERM, f"the API refused the key ({e.status})")
                return None
            except DncRejected as e:
                self._streak = ("", [])  # the request itself was understood
                self.journal.record_rejected(
                    a.id, http_status=e.status, error_code=e.code, error=e.message
                )
                if row.phone_e164 and _says_dnc(e.code):
                    self.plan.dnc_ledger.add(
                        row.phone_e164, reason=e.code or "dnc_listed", campaign=self.campaign.name,
                        evidence=f"409 {e.code or ''} {a.idem_key}".strip(), at=self.clock.now(),
                    )
                self.stats.rejected += 1
                bound.info("rejected_dnc", code=e.code)
                self._set_fate_from_attempt(row, self.journal.attempt(a.id))
                return None
            except VantaxError as e:
                if not e.retryable:
                    if self._campaign_error(a, row, e):
                        return None
                    self.journal.record_error(
                        a.id, http_status=e.status, error_code=e.code, error=e.message
                    )
                    self.stats.errors += 1
                    bound.warning("call_error", status=e.status, code=e.code, error=e.message)
                    self._set_fate_from_attempt(row, self.journal.attempt(a.id))
                    self._count_streak(e, a)
                    return None
                self.journal.note_error(
                    a.id, http_status=e.status, error_code=e.code, error=e.message
                )
                soft = e.status in (409, 429)
                if soft:
                    soft_tries += 1
                else:
                    tries += 1
                if tries >= max_tries or soft_tries >= max_tries * 4 or self.stopping:
                    self.stats.unresolved += 1
                    bound.warning("post_unresolved", tries=tries + soft_tries, error=e.message)
                    self._set_fate_from_attempt(row, self.journal.attempt(a.id))
                    return None
                delay = e.retry_after if e.retry_after is not None else backoff(
                    tries + soft_tries, base=1.0 if soft else 0.5
                )
                bound.info("post_retry", status=e.status, code=e.code, delay_s=round(delay, 3))
                await anyio.sleep(delay)
                continue
            self.journal.record_placed(
                a.id, call_id=call.id, http_status=201, status=call.status,
                placed_at=iso(self.clock.now()),
            )
            self._streak = ("", [])
            self.stats.placed += 1
            bound.info("call_placed", call_id=call.id, status=call.status)
            return call

    def _campaign_error(self, a: Attempt, row: PlannedRow, e: VantaxError) -> bool:
        """An error about the campaign, not the row: stop at once, leave the row pending."""
        key = CAMPAIGN_ERRORS.get(e.code or "")
        if key is None:
            return False
        if e.code == "phone_number_not_found" and not self.cfg.campaign.from_phone_number_id:
            key = "campaign.agent_id"  # the agent's own outbound number is gone
        value = a.body.get("agent_id") if key == "campaign.agent_id" else (
            self.cfg.campaign.from_phone_number_id)
        self.journal.record_not_placed(
            a.id, http_status=e.status, error_code=e.code, error=e.message
        )
        self._set_fate_from_attempt(row, self.journal.attempt(a.id))
        self._stop_soon(
            ExitCode.CONFIG,
            f"{self.campaign.path}: {key}: the platform does not know {value!r} "
            f"({e.status} {e.code}); fix {key}: rows not dialed stay pending and the fixed "
            "campaign dials them",
        )
        return True

    def _count_streak(self, e: VantaxError, a: Attempt) -> None:
        """The same non-transient error on N calls in a row is the campaign's, not theirs."""
        if e.code in ROW_ERRORS:
            return  # about this row's data: a streak of them says nothing of the campaign
        code = f"{e.status} {e.code or ''}".strip()
        prev, ids = self._streak
        ids = [*ids, a.id] if code == prev else [a.id]
        self._streak = (code, ids)
        limit = self.cfg.api.breaker_threshold
        if len(ids) < limit:
            return
        for aid in ids:  # refused, so not placed: these rows wait for the fixed campaign
            self.journal.record_not_placed(
                aid, http_status=e.status, error_code=e.code, error=f"breaker: {e.message}"
            )
            self.stats.errors -= 1
        exit_code = ExitCode.CONFIG if e.status in (400, 404, 422) else ExitCode.UNAVAILABLE
        self._stop_soon(
            exit_code,
            f"the platform refused {limit} calls in a row with {code} ({e.message}); check "
            f"the campaign file {self.campaign.path} (agent, from-number, request) or the "
            "platform; rows not dialed stay pending",
        )

    async def _follow(self, a: Attempt, call: Call, row: PlannedRow, bound: Any) -> None:
        """Follow the call until it is final; the live slot is held by the caller until then.

        With `[webhook]`, the call's events (committed to the journal by the receiver) move
        it on, and the platform is asked only when a call has been quiet for
        `reconcile_after_s` (a late or lost final event); without, it is polled.
        """
        bound = bound.bind(call_id=call.id)
        self.stats.live += 1
        hook = self.webhooks
        try:
            if hook is not None:
                await hook.watch(call.id)
            # Measured on the monotonic clock from when we start following: platform and
            # local wall clocks may disagree, a time limit must not.
            deadline = time.monotonic() + self.cfg.api.call_time_limit_s
            last_status = call.status
            problems = 0
            why = "no final status within the time limit"
            quiet = self.cfg.webhook.reconcile_after_s if self.cfg.webhook else 0.0
            # A call found open after a restart is asked about at once: its final event may
            # have been sent while nobody listened.
            next_poll = time.monotonic() + (0.0 if call.status == "resuming" else quiet)
            while not call.is_terminal:
                if time.monotonic() > deadline:
                    bound.warning("call_not_final_in_time", status=call.status)
                    break
                if hook is None:
                    await anyio.sleep(self._poll_interval() if not problems else backoff(problems))
                else:
                    until = time.monotonic() + backoff(problems) if problems else next_poll
                    pushed = await self._next_event(hook, call, min(until, deadline))
                    if pushed is not None and pushed.is_terminal:
                        pushed = await self._completed_event(hook, pushed, quiet)
                    if pushed is not None:
                        call = pushed
                        next_poll = time.monotonic() + quiet
                        if call.status != last_status:
                            last_status = call.status
                            self.journal.record_status(a.id, call.status)
                        continue
                    if time.monotonic() < until:
                        continue  # the time limit: said at the top of the loop
                    next_poll = time.monotonic() + quiet
                    if not problems:
                        bound.info("reconcile_poll", status=call.status)
                try:
                    polled = await self.client.get_call(call.id)
                    problems = 0
                except AuthError as e:
                    self._abort_run(ExitCode.NOPERM, f"the API refused the key ({e.status})")
                    return
                except NotFound:
                    problems += 1
                    if problems >= 8:
                        bound.warning("call_not_found")
                        why = "the platform does not know this call (404)"
                        break
                    continue
                except VantaxError as e:
                    problems += 1
                    bound.debug("poll_failed", error=e.message)
                    continue
                if hook is None or _rank(polled.status) >= _rank(call.status):
                    call = polled  # never back: events may already have told us more
                if call.status != last_status:
                    last_status = call.status
                    if not call.status_known:
                        bound.info("unknown_status", status=call.status)
                    self.journal.record_status(a.id, call.status)
            if hook is not None and not call.is_terminal:
                # The last word before giving up may have come as an event.
                last = self._from_events(call)
                if last is not None:
                    call = await self._completed_event(hook, last, 0.0)
            extra = dict(call.extra)
            extra.update(platform_created_at=call.created_at, platform_ended_at=call.ended_at)
            status = call.status if call.status != "resuming" else (a.status or "unknown")
            self.journal.record_final(
                a.id, status=status, outcome=call.outcome, ended_reason=call.ended_reason,
                ended_at=iso(self.clock.now()), duration_seconds=call.duration_seconds,
                recording_url=call.recording_url, extra=extra,
                error=None if call.is_terminal else why,
                transcript=call.transcript, call_id=call.id,
            )
            self.stats.completed += 1
            final = self.journal.attempt(a.id)
            bound.info("call_final", status=call.status, outcome=call.outcome)
            if self._opted_out(final) and row.phone_e164:
                self.plan.dnc_ledger.add(
                    row.phone_e164, reason="opt_out", campaign=self.campaign.name,
                    evidence=call.id, at=self.clock.now(),
                )
                bound.info("opt_out_recorded")
            self._set_fate_from_attempt(row, final)
            attempts = self.journal.attempts_for(row.person or "")
            nxt = self._next_attempt(row, attempts, self.clock.now())
            if nxt is not None and not self.stopping and self._abort is None:
                self.schedule.push(row, nxt[1])
        finally:
            self.stats.live -= 1
            if hook is not None:
                hook.unwatch(call.id)

    def _from_events(self, call: Call, *, final_only: bool = False) -> Call | None:
        """The furthest state the journal's webhook events give `call`, if further than it.

        State only moves forward: an event older than what is known (out of order, a
        duplicate) changes nothing. A final call merges its final events, the
        `call.completed` one last, so the fullest record (transcript, recording) wins.
        `final_only`: the merged final record, even if `call` is final already.
        """
        events = self.journal.webhook_events(call.id)
        if not events:
            return None
        finals: list[dict[str, Any]] = []
        best: dict[str, Any] | None = None
        for e in events:
            try:
                data = json.loads(e["data"])
            except ValueError:
                continue
            if not isinstance(data, dict):
                continue
            if str(data.get("status")) in TERMINAL_STATUSES:
                finals.append({"event": e["event"], "data": data})
            elif best is None or _rank(str(data.get("status"))) > _rank(str(best.get("status"))):
                best = data
        if finals:
            finals.sort(key=lambda f: f["event"] == "call.completed")
            merged: dict[str, Any] = {}
            for f in finals:
                merged.update({k: v for k, v in f["data"].items() if v is not None})
            merged["status"] = finals[-1]["data"]["status"]
            merged["_completed_event"] = finals[-1]["event"] == "call.completed"
            best = merged
        elif final_only:
            return None
        if best is None or (
            not final_only and _rank(str(best.get("status"))) <= _rank(call.status)
        ):
            return None
        try:
            return Call.from_json(best)
        except VantaxError:
            return None

    async def _completed_event(self, hook: Receiver, call: Call, quiet: float) -> Call:
        """A final `call.status_changed` may come before its `call.completed` (transcript,
        recording): wait a moment for that one, then finish with what is known."""
        until = time.monotonic() + min(COMPLETED_WAIT_S, quiet)
        while not call.extra.get("_completed_event"):
            waiter = hook.arm(call.id)
            call = self._from_events(call, final_only=True) or call
            left = until - time.monotonic()
            if call.extra.get("_completed_event") or left <= 0:
                break
            with anyio.move_on_after(left):
                await waiter.wait()
        extra = {k: v for k, v in call.extra.items() if k != "_completed_event"}
        return dataclasses.replace(call, extra=extra)

    async def _next_event(self, hook: Receiver, call: Call, until: float) -> Call | None:
        """Wait until `until` (monotonic) for an event that moves `call` forward."""
        while True:
            waiter = hook.arm(call.id)  # before the read: a later commit still wakes us
            pushed = self._from_events(call)
            if pushed is not None:
                return pushed
            left = until - time.monotonic()
            if left <= 0:
                return None
            with anyio.move_on_after(left):
                await waiter.wait()

    # -- resume -----------------------------------------------------------------------
    async def _resume(self, a: Attempt) -> None:
        """Resolve what a previous run left open, without ever placing a second call.

        The platform is asked first: its idempotency memory may be shorter than promised, so
        the same key is replayed only after a lookup, bounded by the platform's own clock,
        found no call for this attempt. An attempt neither can settle waits for a person.
        """
        row = self.rows_by_person.get(a.person) or self._row_for_attempt(a)
        bound = self.log.bind(row=a.row, attempt=a.attempt, resumed=True)
        async with self.live_slots:
            if a.state == PLACED and a.call_id:
                # Poll at least once even if the last status seen was final: the crash may
                # have come before the outcome was recorded.
                call = Call(id=a.call_id, status="resuming", created_at=a.placed_at)
                await self._follow(a, call, row, bound)
                return
            # INTENT: the POST may or may not have reached the platform.
            found = await self._lookup(a, row)
            if found is _UNKNOWN:
                self.stats.unresolved += 1
                return
            if found is _UNDECIDABLE:
                self._hold_for_a_person(
                    a, row, bound, "the platform cannot be asked whether this call exists"
                )
                return
            if found is not None:
                self.journal.record_placed(
                    a.id, call_id=found.id, http_status=None, status=found.status,
                    placed_at=a.intent_at,
                )
                bound.info("reconciled_by_lookup", call_id=found.id)
                await self._follow(a, found, row, bound)
                return
            now = self.clock.now()
            gate = await self._fresh_gate()
            verdict = gate.check(
                phone_e164=row.phone_e164, contact_id=row.contact_id, tz_hint=row.tz_hint, at=now,
                other_phones=row.other_phones,
            )
            if a.person in self._flagged:  # the CRM now says do not call: never re-send
                verdict = Verdict("suppressed", "dnc_flag", "", None, {})
            if verdict.disposition == "eligible" and a.body == self._request_body(row):
                if self.journal.control() != "active":
                    bound.info("replay_waits_for_resume")  # a paused campaign places nothing
                    return
                # No call exists: the same key and body can ring this person at most once.
                bound.info("replaying_open_intent")
                replayed = await self._post(a, row, bound)
                if replayed is not None:
                    await self._follow(a, replayed, row, bound)
                return
            age = self._intent_age(a, now)
            settle = timedelta(seconds=max(60.0, 3 * self.cfg.api.request_timeout_s))
            if age is None:
                self._hold_for_a_person(
                    a, row, bound, "no platform time is known for this intent and no call "
                    "was found; it may still be in flight"
                )
                return
            if age > settle:
                self.journal.record_not_placed(
                    a.id, http_status=None, error_code="not_found_on_platform",
                    error="reconciled: no call exists for this attempt",
                )
                bound.info("reconciled_not_placed")
                if verdict.disposition == "eligible":
                    self.schedule.push(row, None)  # the campaign changed: dial it afresh
                elif a.person not in self._flagged:
                    self._defer(row, verdict, bound)
            else:
                self.stats.unresolved += 1  # may still be in flight: the next run decides

    def _intent_age(self, a: Attempt, now: datetime) -> timedelta | None:
        """How long ago the intent was, on the platform's clock when both ends know it."""
        platform_at = parse_iso(a.evidence.get("platform_at"))
        platform_now = self.client.platform_now()
        if platform_at is not None and platform_now is not None:
            return platform_now - platform_at
        if platform_now is None:  # a platform without Date headers: our clock is all we have
            return now - (parse_iso(a.intent_at) or now)
        return None

    def _hold_for_a_person(self, a: Attempt, row: PlannedRow, bound: Any, why: str) -> None:
        self.journal.record_unresolved(a.id, error=why)
        self.stats.held_unresolved += 1
        bound.warning("intent_unresolved", reason=why)
        self._set_fate_from_attempt(row, self.journal.attempt(a.id))

    async def _lookup(self, a: Attempt, row: PlannedRow, *, bounded: bool = True) -> Call | None:
        """The call this intent placed, if any: bounded by the platform's clock, not ours.

        `created_after` is the platform's time at the intent (from its Date header) less a
        generous margin; calls this journal already knows are skipped. Without a platform
        time there is no lower bound: any unknown call from this agent to this person counts
        as this one (the person is then never rung again by this attempt).
        """
        filters: dict[str, Any] = {"agent_id": a.body.get("agent_id")}
        platform_at = parse_iso(a.evidence.get("platform_at"))
        if platform_at is not None and bounded:
            filters["created_after"] = iso(platform_at - LOOKUP_MARGIN)
        if a.body.get("phone_number"):
            filters["to"] = a.body["phone_number"]
        else:
            filters["contact_id"] = a.body.get("contact_id")
        known = {x.call_id for x in self.journal.attempts_for(a.person) if x.call_id}
        after = parse_iso(filters.get("created_after"))
        try:
            async for c in self.client.list_calls(**filters):
                if c.id not in known and _may_be_this_call(c, a.body, after):
                    return c
        except AuthError as e:
            self._abort_run(ExitCode.NOPERM, f"the API refused the key ({e.status})")
            return _UNKNOWN
        except ValidationFailed as e:
            if "created_after" in filters:
                # A platform that will not take our time bound: look without it (any unknown
                # call to this person then counts as this attempt's: never a second call).
                self.log.warning("lookup_without_time_bound", row=a.row, error=e.message)
                return await self._lookup(a, row, bounded=False)
            self.log.warning("lookup_failed", row=a.row, error=e.message)
            return _UNDECIDABLE
        except VantaxError as e:
            self.log.warning("lookup_failed", row=a.row, error=e.message)
            return _UNKNOWN if e.retryable or e.status is None else _UNDECIDABLE
        return None

    def _row_for_attempt(self, a: Attempt) -> PlannedRow:
        phone = a.body.get("phone_number")
        return PlannedRow(
            row=a.row, order=a.row, person=a.person, phone_e164=phone,
            contact_id=a.body.get("contact_id"), tz_hint=None, disposition="eligible",
            reason=None, detail="", next_open=None,
        )

    # -- fates ------------------------------------------------------------------------
    def _set_fate_from_attempt(self, row: PlannedRow, a: Attempt) -> None:
        self.journal.set_fates([attempt_fate(row, a)])

    def finalize_fates(self) -> dict[str, int]:
        """Recompute every row's fate from the plan and the journal; return counts."""
        now = self.clock.now()
        by_person = self.journal.attempts_by_person()
        control = self.journal.control()
        fates: list[Fate] = []
        stored = self.journal.fates()
        for r in self.plan.rows:
            attempts = by_person.get(r.person or "", []) if not r.contact_suppressed else []
            fates.append(
                row_fate(r, attempts, self, now, control, stored.get(r.row),
                         self.dial_time_fates.get(r.row))
            )
        self.journal.set_fates(fates)
        counts = Counter(f.disposition for f in fates)
        self.stats.suppressed = counts.get("suppressed", 0)
        return dict(counts)


_STATUS_RANK = {"resuming": -1, "initiated": 1, "ringing": 2, "in_progress": 3}


def _rank(status: str) -> int:
    """How far along a call is; an undocumented status ranks below every documented one."""
    if status in TERMINAL_STATUSES:
        return 4
    return _STATUS_RANK.get(status, 0)


_UNKNOWN = Call(id="", status="unknown")
_UNDECIDABLE = Call(id="", status="undecidable")
# Codes about one row's own data; they never trip the breaker.
ROW_ERRORS = frozenset({"contact_not_found"})
# Error codes that are about the campaign file, not the row: the key to fix.
CAMPAIGN_ERRORS = {
    "agent_not_found": "campaign.agent_id",
    "phone_number_not_found": "campaign.from_phone_number_id",
}


def _says_dnc(code: str | None) -> bool:
    """A 409 is Do-Not-Call [seed]; one with another code (not retried, the row is rejected)
    does not put the number on the shared ledger that every later campaign obeys."""
    return code is None or "dnc" in code.lower() or "do_not_call" in code.lower()


def _digits(s: str) -> str:
    return "".join(ch for ch in s if ch.isdigit())


def _may_be_this_call(c: Call, body: dict[str, Any], after: datetime | None) -> bool:
    """A platform may ignore a list filter (`to`, `agent_id`, `created_after`): a listed call
    is taken as this attempt's only when nothing it says contradicts the request. A field it
    leaves out contradicts nothing, so a doubtful match still counts (no second call)."""
    phone = body.get("phone_number")
    if phone and c.to and _digits(c.to) != _digits(str(phone)):
        return False
    cid = body.get("contact_id")
    if not phone and cid and c.contact_id and c.contact_id != cid:
        return False
    agent = body.get("agent_id")
    if agent and c.agent_id and c.agent_id != agent:
        return False
    created = parse_iso(c.created_at)
    return not (after is not None and created is not None and created < after)


def _sync_key(r: dict[str, Any]) -> tuple[Any, ...]:
    """What the history must agree with the journal on, for one attempt."""
    return (r.get("idem_key"), r.get("state"), r.get("call_id"), r.get("status"),
            r.get("placed_at"), r.get("ended_at"))


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


def attempt_fate(row: PlannedRow, a: Attempt) -> Fate:
    ev = {**row.evidence, **a.evidence}
    if a.state == FINAL:
        return Fate(row.row, row.person, "dialed", a.status, a.error or "", None, ev)
    if a.state == REJECTED:
        return Fate(
            row.row, row.person, "rejected", a.error_code or "dnc_listed", a.error, None, ev
        )
    if a.state == ERROR:
        return Fate(row.row, row.person, "error", a.error_code or f"http_{a.http_status}",
                    a.error, None, ev)
    if a.state == PLACED:
        return Fate(row.row, row.person, "pending", "call_live", "", None, ev)
    if a.state == INTENT:
        return Fate(row.row, row.person, "pending", "unresolved", a.error or "", None, ev)
    if a.state == UNRESOLVED:
        detail = f"{a.error or 'unconfirmed'}; a person decides: campaign-dialer release"
        return Fate(row.row, row.person, "pending", "unresolved", detail, None, ev)
    return Fate(
        row.row, row.person, "pending", a.error_code or "not_placed", a.error or "", None, ev
    )


def row_fate(
    r: PlannedRow, attempts: list[Attempt], engine: Engine, now: datetime, control: str,
    stored: Fate | None, dial_time: Fate | None,
) -> Fate:
    """One row's fate from the plan, the person's attempts and this run's dial-time verdicts."""
    if r.contact_suppressed or r.person is None:
        return Fate(r.row, r.person, "suppressed", r.reason, r.detail, None, r.evidence)
    if engine.rows_by_person.get(r.person) is not r:
        first = engine.rows_by_person.get(r.person)
        return Fate(r.row, r.person, "suppressed", "duplicate",
                    f"duplicate_of={first.row}" if first else r.detail, None, r.evidence)
    if attempts:
        last = attempts[-1]
        fate = attempt_fate(r, last)
        nxt = engine._next_attempt(r, attempts, now) if last.state == FINAL else None
        if nxt is not None and control == "active":
            when = nxt[1]
            if r.reason in HISTORY_REASONS and r.next_open and (when is None or r.next_open > when):
                # other campaigns' calls hold the redial back longer than our own policy does
                return Fate(r.row, r.person, "pending", r.reason, r.detail, iso(r.next_open),
                            fate.evidence)
            detail = f"attempt {nxt[0]} after {iso(when) if when else 'now'}; last: {last.status}"
            return Fate(r.row, r.person, "pending", "redial_scheduled", detail, iso(when),
                        fate.evidence)
        if last.state == NOT_PLACED and stored is not None and stored.disposition == "pending":
            return Fate(r.row, r.person, "pending", stored.reason, stored.detail,
                        stored.next_open, stored.evidence)
        return fate
    if control == "canceled":
        return Fate(r.row, r.person, "suppressed", "campaign_canceled", "", None, r.evidence)
    if dial_time is not None:
        return dial_time
    if r.disposition == "suppressed":
        return Fate(r.row, r.person, "suppressed", r.reason, r.detail, None, r.evidence)
    if r.disposition == "pending":
        return Fate(r.row, r.person, "pending", r.reason, r.detail, iso(r.next_open), r.evidence)
    reason = "paused" if control == "paused" else "not_dialed_yet"
    return Fate(r.row, r.person, "pending", reason, "", None, r.evidence)
