"""What every part of a run shares: its options, its state (stopping, the schedule) and the
small context each part is given.

The engine (`run.Engine`) owns its parts, each a class of its own given a `RunContext`: a
`Follower` (a placed call to its end), a `Dialer` (intent, POST, breaker) and a `Recovery`
(what a crash left open). Where the rows come from is a `RowSource` (`sources`), chosen by
the caller. None imports the planning module or a store backend: the engine receives rows, a
gate, a DNC ledger, a contact history, a journal and a row source.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import anyio
import anyio.abc

from campaign_dialer.client import VantaxClient
from campaign_dialer.clock import Clock
from campaign_dialer.compliance import Verdict
from campaign_dialer.config import Campaign, CampaignFile
from campaign_dialer.exitcodes import ExitCode
from campaign_dialer.monitor import Metrics
from campaign_dialer.store import Attempt, Fate, HistoryStore, iso

from .callerid import CallerIds
from .gatekeeper import GateKeeper
from .io import AsyncJournal, Lane
from .pacing import Limits
from .redial import RedialPolicy
from .rows import Row
from .schedule import Schedule
from .telemetry import Stats

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
    # Called once, from the event loop, when no new call will be placed (the live ones may
    # still be going): the caller's chance to start what comes after the run (must not block).
    on_last_calls: Callable[[], None] | None = None
    # Called once, from the event loop, when the run's start work is done (every row's fate
    # as the run starts is kept): the caller's chance to start background work that would
    # otherwise need its memory at the same moment (must not block).
    on_settled: Callable[[], None] | None = None


@dataclass(frozen=True)
class Stop:
    """Why the run stops early, and with which exit code (the first reason wins)."""

    code: ExitCode
    message: str


class RunState:
    """What the parts of one run move together: whether it stops (and why), the schedule of
    the rows this process holds, and what the gate said at the moment of dialing.

    `tg` is the run's outer task group (the grace timer runs there), set by the engine."""

    def __init__(
        self, *, opts: RunOptions, clock: Clock, stats: Stats, log: Any, schedule: Schedule,
        deadline: datetime | None,
    ) -> None:
        self.opts = opts
        self.clock = clock
        self.stats = stats
        self.log = log
        self.schedule = schedule
        self.deadline = deadline
        self.stopping = False
        self.stop: Stop | None = None
        self.stop_signal: int | None = None
        # What the gate said at the moment of dialing outranks what it said at planning.
        self.dial_time_fates: dict[int, Fate] = {}
        # A budget limit reached: why, and when the rows may go (the per-day limit).
        self.budget_hold: Verdict | None = None
        self.tg: anyio.abc.TaskGroup

    async def grace_timer(self) -> None:
        await anyio.sleep(self.opts.grace_s)
        self.log.warning("grace_period_over", live=self.stats.live)
        self.tg.cancel_scope.cancel()

    def stop_soon(self, code: ExitCode, message: str) -> None:
        """Stop placing calls now; keep following live ones for the grace period."""
        if self.stop is not None:
            return
        self.stop = Stop(code, message)
        self.stopping = True
        self.schedule.poke()
        self.log.error("stopping_new_calls", reason=message, exit_code=int(code),
                       grace_s=self.opts.grace_s, live=self.stats.live)
        self.tg.start_soon(self.grace_timer)

    def abort(self, code: ExitCode, message: str) -> None:
        """Stop everything now (live calls are resolved by the next run)."""
        if self.stop is None:
            self.stop = Stop(code, message)
        self.stopping = True
        self.tg.cancel_scope.cancel()

    def past_deadline(self) -> bool:
        return self.deadline is not None and self.clock.now() >= self.deadline

    @property
    def ending(self) -> bool:
        """No new call from here on: stopping for any reason (the deadline aside)."""
        return self.stopping or self.stop is not None

    def may_start_new_call(self, control: str) -> bool:
        if self.stopping or self.stop is not None or self.past_deadline():
            return False
        return control == "active"

    def back_to_schedule(self, row: Row) -> None:
        """A row taken off the schedule but not dialed (a pause) waits for its turn again."""
        if not self.stopping and self.stop is None:
            self.schedule.push(row, None)

    def budget_reached(self, verdict: Verdict) -> None:
        """No new call: the rows not dialed wait (`budget_reached`); live calls go on. With
        `--wait` and the per-day limit, every row waits for the next local day instead."""
        first = self.budget_hold is None
        self.budget_hold = verdict
        if self.opts.wait and verdict.next_open is not None:
            if first or self.schedule.postpone(verdict.next_open):
                self.log.warning("budget_reached", detail=verdict.detail,
                                 waiting_until=iso(verdict.next_open))
            return
        if self.stop is None:
            self.log.warning("budget_reached", detail=verdict.detail)
            when = f"; the next local day begins {iso(verdict.next_open)}" if (
                verdict.next_open) else ""
            self.stop = Stop(ExitCode.TEMPFAIL,
                             f"budget reached: {verdict.detail}; rows not dialed wait "
                             f"(budget_reached){when}")
            self.stopping = True
            self.schedule.poke()


@dataclass(frozen=True)
class RunContext:
    """What a part of the engine is given: the run's journal (through the lane), gate,
    clock, limits, counters, log, state and row source. Made once per run, in the loop."""

    campaign: Campaign
    journal: AsyncJournal
    lane: Lane
    history: HistoryStore  # used in the lane only (with the journal's calls)
    gate: GateKeeper
    policy: RedialPolicy
    clock: Clock
    limits: Limits
    stats: Stats
    metrics: Metrics
    log: Any
    state: RunState
    source: RowSource
    caller_ids: CallerIds | None = None

    @property
    def cfg(self) -> CampaignFile:
        return self.campaign.model


@dataclass
class Opening:
    """What a source hands the run at its start."""

    # Rows not done yet (the progress display's denominator); None: the rows the schedule
    # holds once `due` is on it.
    to_dial: int | None = None
    # Attempts a previous run left open, resolved first (never a fresh call for them).
    open_attempts: list[Attempt] = field(default_factory=list)
    # Rows for the schedule, each not before when (None: now).
    due: list[tuple[Row, datetime | None]] = field(default_factory=list)


@dataclass
class Refill:
    """Rows a source hands the run later, when its schedule has nothing due."""

    # Rows with open attempts to resolve (e.g. a dead process's intents), with them.
    resumes: list[tuple[Row, list[Attempt]]] = field(default_factory=list)
    due: list[tuple[Row, datetime | None]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.resumes or self.due)


class RowSource(Protocol):
    """Where the rows of a run come from, and where they go when the run is done with them.

    The engine calls, in this order:

    1. `open(ctx, rows, rows_by_person)` once, in the lane (a worker thread; blocking store
       calls are fine there), after the run is begun in the journal: set up whatever the
       source needs and return the first rows (`Opening`). A batch source returns its first
       batch here, in schedule order.
    2. `refill(room)` from the producer whenever the schedule has no row due now and a
       worker is free: up to `room` more rows (`room` = free workers less the rows already
       waiting on the schedule). Cheap when there is nothing to add (a local schedule
       returns at once); a batch source reads its next batch here (through
       `ctx.lane.run`, never on the loop). Rows due later may come with their `not_before`.
    3. `settle(row)` after each row's dial (or resume): the row's work in this run is over
       for now. `ctx.state.schedule.when(row)` says if it is due again (a redial), and
       `ctx.state.dial_time_fates` what the gate said; a claim source finishes, keeps or
       releases the row; a local one has nothing to do. Rows deferred by the gate stay on
       the schedule (`ctx.state.schedule`), or go back to the source here.
    4. `close()` once at the run's end (before the journal's `end_run`): hand back what is
       still held (a batch not dialed) for the next run.

    Meanwhile `run_beside(on_control)` runs for the whole run in its task group (a lease
    heartbeat; `on_control` with the campaign's control state when it changes), and:

    - `open_ended`: rows may still come after the schedule empties (claims, batches): an idle
      run then asks `others_pending` instead of ending, and a pause waits for `resume`;
    - `others_pending()`: nothing is due here; may rows still come (another process's,
      the next batch)? If so it waits a moment (on `ctx.state.schedule.changed`) first;
    - `waiting_by(until)`: the rows that would be dialed by `until` (the caller-ID pool is
      closed until then: they are told why they wait);
    - `until_live_room(on_wait)`: return when the campaign may have one more live call
      (every process's, for a shared one); `on_wait` is awaited now and then meanwhile.

    A shared store may refuse an intent with `store.LiveLimitReached` (at the campaign's
    global live-call cap: the row waits and is tried again) or `store.LeaseLost` (the row is
    another process's now); the dialer handles both, whatever the source.

    The stored plan's columns read in batches are one (`stored_plan.StoredPlanSource`):
    `open` offers the journal's people whatever the plan said, hands the open attempts
    and a first batch through `seed`; `refill(room)` the next rows due now (else the next
    due later, with their time); nothing to settle or hand back (a row not taken is
    offered again by the next run). Rows must be the same object for one person
    throughout a run (the schedule and the fates go by identity and `rows_by_person`).
    """

    open_ended: bool

    def open(
        self, ctx: RunContext, rows: Sequence[Row], rows_by_person: Mapping[str, Row],
    ) -> Opening: ...

    async def refill(self, room: int) -> Refill: ...

    async def settle(self, row: Row) -> None: ...

    async def close(self) -> None: ...

    async def run_beside(self, on_control: Callable[[str], None]) -> None: ...

    async def others_pending(self) -> bool: ...

    def waiting_by(self, until: datetime) -> list[Row]: ...

    async def until_live_room(self, on_wait: Callable[[], Awaitable[None]]) -> None: ...
