"""The engine's parts on their own: a dialer and a follower given a run context (no
`Engine`), the row sources (a local schedule; claims, against a coordinator kept in memory),
and the shape of the engine package (no backend test, no store backend imported, no deep
class hierarchy)."""

from __future__ import annotations

import ast
import inspect
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from campaign_dialer import engine as engine_pkg
from campaign_dialer import log
from campaign_dialer.client import VantaxClient
from campaign_dialer.commands.assemble import engine_for_plan
from campaign_dialer.config import Campaign, load_campaign
from campaign_dialer.engine import (
    REQUEST_HEADROOM,
    ClaimSource,
    Dialer,
    Follower,
    Limits,
    LocalSchedule,
    RedialPolicy,
    RunContext,
    RunOptions,
    RunState,
    Stats,
)
from campaign_dialer.engine.gatekeeper import GateKeeper
from campaign_dialer.engine.io import AsyncJournal, Lane
from campaign_dialer.engine.schedule import Schedule
from campaign_dialer.engine.stored_plan import DialColumns, StoredPlanSource
from campaign_dialer.monitor import Metrics
from campaign_dialer.planning import Plan, PlanRows, make_plan
from campaign_dialer.store import ClaimedRow, Coordination, Journal

from .e2e_support import KEY, numbers, write_campaign
from .test_engine import MIDDAY, FakeClock, FakePlatform

ENGINE_DIR = Path(engine_pkg.__file__).parent


def context_for(
    campaign: Campaign, plan: Plan, journal: Journal, clock: FakeClock, source: Any,
) -> RunContext:
    """A run context made by hand, as a part's own test (or another caller) would."""
    lane = Lane()
    logger = log.get("parts")
    gate = GateKeeper(plan.gate, plan.dnc_ledger, lane=lane, reload=False, logger=logger)
    stats = Stats(rows=len(plan.rows))
    state = RunState(opts=RunOptions(install_signal_handlers=False), clock=clock, stats=stats,
                     log=logger, schedule=Schedule(), deadline=None)
    assert plan.history is not None
    return RunContext(
        campaign=campaign, journal=AsyncJournal(journal, lane), lane=lane,
        history=plan.history, gate=gate, policy=RedialPolicy(campaign.model, lambda: gate.rules),
        clock=clock, limits=Limits.for_campaign(campaign.model), stats=stats,
        metrics=Metrics(campaign.name), log=logger, state=state, source=source,
    )


def test_a_dialer_and_a_follower_place_and_follow_a_call_without_an_engine(
    tmp_path: Path,
) -> None:
    log.configure("warning", json=True)
    clock = FakeClock(MIDDAY)
    phones = numbers(2)
    camp = write_campaign(tmp_path, contacts=[{"phone": p} for p in phones],
                          api="poll_interval_s = 0.01\nmax_attempts = 3")
    campaign = load_campaign(camp.path)
    plan = make_plan(campaign, clock.now())
    journal = Journal(campaign.journal_path, campaign.name, now=clock.now)
    platform = FakePlatform(polls_to_final=1)
    ctx = context_for(campaign, plan, journal, clock, LocalSchedule())

    async def go() -> None:
        client = VantaxClient("http://127.0.0.1:9", KEY,
                              transport=httpx.MockTransport(platform.handler))
        async with client, anyio.create_task_group() as tg:
            ctx.state.tg = tg
            dialer = Dialer(ctx, client, Follower(ctx, client))
            await dialer.dial(plan.rows[0])
            await ctx.lane.run(lambda: None)  # the final record, deferred, lands first

    anyio.run(go, backend="asyncio")
    assert platform.placed_to() == phones[:1]
    (a,) = journal.attempts()
    assert (a.state, a.status, a.posts) == ("final", "completed", 1)
    assert journal.fates()[plan.rows[0].row].person == plan.rows[0].person
    assert (ctx.stats.placed, ctx.stats.completed, ctx.stats.live) == (1, 1, 0)
    assert ctx.state.stop is None and not ctx.state.stopping
    journal.close()


class NoWait:
    """A rate limit that never waits."""

    async def acquire(self) -> None:
        return None


@dataclass
class MemoryCoordinator:
    """The coordinator's side of claims, in memory: what the claim source asked of it."""

    lease_seconds: float = 30.0
    offered: dict[int, str] = field(default_factory=dict)
    extra: list[ClaimedRow] = field(default_factory=list)  # claimed first (not in the plan)
    claimed: set[int] = field(default_factory=set)
    released: list[tuple[int, datetime | None]] = field(default_factory=list)
    finished: list[int] = field(default_factory=list)
    cap: int | None = None
    rates: tuple[float, float] | None = None
    live: int = 0
    calls_limiter: NoWait = field(default_factory=NoWait)
    requests_limiter: NoWait = field(default_factory=NoWait)

    def ensure_campaign(self, *, max_live_calls: int | None = None) -> None:
        self.cap = max_live_calls

    def configure_limits(self, *, calls_per_second: float, requests_per_second: float) -> None:
        self.rates = (calls_per_second, requests_per_second)

    def load_rows(self, rows: Iterable[tuple[int, str]]) -> int:
        before = len(self.offered)
        self.offered.update(rows)
        return len(self.offered) - before

    def claim(self, n: int) -> list[ClaimedRow]:
        out = self.extra[:n]
        self.extra = self.extra[n:]
        for row, person in sorted(self.offered.items()):
            if len(out) >= n:
                break
            if row not in self.claimed:
                self.claimed.add(row)
                out.append(ClaimedRow(row, person, None, ()))
        return out

    def release(self, row: int, *, not_before: datetime | None = None) -> None:
        self.released.append((row, not_before))

    def finish(self, rows: Sequence[int]) -> int:
        self.finished.extend(rows)
        return len(rows)

    def remaining(self) -> int:
        return len(self.offered) - len(self.finished)

    def due_elsewhere(self) -> int:
        return 0

    def live_calls(self) -> int:
        return self.live

    async def keep_alive(
        self, on_control: Callable[[str], None], *, every: float | None = None,
    ) -> None:
        on_control("active")


def test_a_claim_source_takes_rows_in_batches_and_leaves_others_their_rows(
    tmp_path: Path,
) -> None:
    """Claims come `room` at a time; a row another process's plan has (not this one's) goes
    back with a time; the campaign's shared rates are set."""
    log.configure("warning", json=True)
    clock = FakeClock(MIDDAY)
    phones = numbers(3)
    camp = write_campaign(tmp_path, contacts=[{"phone": p} for p in phones])
    campaign = load_campaign(camp.path)
    plan = make_plan(campaign, clock.now())
    journal = Journal(campaign.journal_path, campaign.name, now=clock.now)
    co = MemoryCoordinator(extra=[ClaimedRow(99, "tel:+15550000000", None, ())])
    coordination: Coordination = co  # the store's protocol, kept in memory
    source = ClaimSource(coordination)
    ctx = context_for(campaign, plan, journal, clock, source)
    by_person = {r.person: r for r in plan.rows if r.person}

    async def go() -> tuple[Any, Any, Any]:
        opening = await ctx.lane.run(source.open, ctx, plan.rows, by_person)
        first = await source.refill(2)
        second = await source.refill(5)
        return opening, first, second

    opening, first, second = anyio.run(go, backend="asyncio")
    cfg = campaign.model
    assert co.cap == cfg.api.max_live_calls
    assert co.rates == (cfg.pacing.calls_per_second,
                        cfg.api.requests_per_second * REQUEST_HEADROOM)
    assert sorted(co.offered.values()) == sorted(by_person)
    assert opening.to_dial == 3 and not opening.due and not opening.open_attempts
    # The first batch: the row not in this plan goes back (a lease later), one row is due.
    assert [r for r, _ in co.released] == [99] and co.released[0][1] is not None
    assert [r.person for r, _ in first.due] == [plan.rows[0].person]
    assert [r.person for r, _ in second.due] == [r.person for r in plan.rows[1:]]
    assert not first.resumes and not second.resumes
    assert source.open_ended and source.waiting_by(clock.now()) == [
        r for r in plan.rows if r.disposition == "eligible"]
    journal.close()


def test_a_local_schedule_seeds_every_row_and_brings_no_row_later(tmp_path: Path) -> None:
    clock = FakeClock(MIDDAY)
    camp = write_campaign(tmp_path, contacts=[{"phone": p} for p in numbers(2)])
    campaign = load_campaign(camp.path)
    plan = make_plan(campaign, clock.now())
    journal = Journal(campaign.journal_path, campaign.name, now=clock.now)
    source = LocalSchedule()
    ctx = context_for(campaign, plan, journal, clock, source)
    by_person = {r.person: r for r in plan.rows if r.person}

    async def go() -> tuple[Any, Any, bool]:
        opening = await ctx.lane.run(source.open, ctx, plan.rows, by_person)
        return opening, await source.refill(10), await source.others_pending()

    opening, more, others = anyio.run(go, backend="asyncio")
    assert [r for r, _ in opening.due] == list(plan.rows) and opening.to_dial is None
    assert not more and not others and not source.open_ended
    journal.close()


def _engine_modules() -> list[Path]:
    return sorted(ENGINE_DIR.glob("*.py"))


def test_the_engine_imports_no_store_backend_and_tests_for_none() -> None:
    """Where rows come from is decided by the caller: no module of the engine imports a
    store backend or asks which one it has."""
    for path in _engine_modules():
        text = path.read_text()
        tree = ast.parse(text)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert not node.module.startswith(
                    ("campaign_dialer.store.sqlite", "campaign_dialer.store.postgres")), path
        for needle in (r"\bco is (not )?None", r"\bself\.co\b", r"\bCoordinator\b",
                       r"isinstance\([^)]*(Pg|Sqlite|Journal\b)"):
            assert not re.search(needle, text), (path.name, needle)


def test_no_engine_class_is_more_than_two_levels_deep() -> None:
    classes = {
        obj for name in dir(engine_pkg) for obj in [getattr(engine_pkg, name)]
        if inspect.isclass(obj)
    }
    for path in _engine_modules():
        module = __import__(f"campaign_dialer.engine.{path.stem}", fromlist=["_"])
        classes |= {obj for _, obj in inspect.getmembers(module, inspect.isclass)
                    if obj.__module__ == module.__name__}
    for cls in classes:
        own = [c for c in cls.__mro__[1:]
               if c.__module__.startswith("campaign_dialer.") and not _is_protocol(c)]
        assert len(own) <= 2, (cls, own)


def _is_protocol(cls: type) -> bool:
    return bool(getattr(cls, "_is_protocol", False))


def test_an_engine_is_made_of_its_parts(tmp_path: Path) -> None:
    """The engine owns a dialer, a follower and a recovery once it runs (no layer of it is
    a base class of another)."""
    clock = FakeClock(MIDDAY)
    camp = write_campaign(tmp_path, contacts=[{"phone": p} for p in numbers(1)],
                          api="poll_interval_s = 0.01")
    campaign = load_campaign(camp.path)
    plan = make_plan(campaign, clock.now())
    journal = Journal(campaign.journal_path, campaign.name, now=clock.now)
    platform = FakePlatform(polls_to_final=1)

    def factory(**kw: Any) -> VantaxClient:
        return VantaxClient("http://127.0.0.1:9", KEY,
                            transport=httpx.MockTransport(platform.handler), **kw)

    engine = engine_for_plan(plan, journal=journal, client_factory=factory, clock=clock,
                             options=RunOptions(install_signal_handlers=False))
    # a local campaign dials its plan a batch at a time (no row made before it is taken)
    assert isinstance(engine.source, StoredPlanSource)
    outcome = anyio.run(engine.run, backend="asyncio")
    assert int(outcome.exit_code) == 0
    assert isinstance(engine.dialer, Dialer) and isinstance(engine.dialer.follower, Follower)
    assert engine.recovery.dialer is engine.dialer
    assert engine.ctx.state is engine.state and engine.ctx.source is engine.source
    assert not any(issubclass(type(engine), k) for k in (Dialer, Follower))
    # The contact history followed the journal (its writes batched with the held ones).
    assert plan.history is not None

    def key(r: dict[str, Any]) -> tuple[Any, ...]:
        return (r["idem_key"], r["state"], r.get("call_id"), r.get("status"))

    assert sorted(map(key, plan.history.records(campaign.name))) == sorted(
        map(key, journal.attempt_records()))
    assert [k[1] for k in map(key, journal.attempt_records())] == ["final"]
    journal.close()


def test_a_batch_of_held_writes_ends_with_after_held_before_any_later_call() -> None:
    """What the held writes of a batch put off (the history's copy of their changes) is
    written once at the batch's end, before the next lane call runs."""
    lane = Lane()
    seen: list[tuple[str, bool]] = []
    lane.after_held.append(lambda: seen.append(("after", lane.holding)))

    async def go() -> None:
        lane.defer(lambda: seen.append(("held", lane.holding)))
        lane.defer(lambda: seen.append(("held", lane.holding)))
        await lane.run(lambda: seen.append(("run", lane.holding)))

    anyio.run(go, backend="asyncio")
    assert seen == [("held", True), ("held", True), ("after", False), ("run", False)]


def _run_with(
    folder: Path, platform: FakePlatform, phones: list[str], source: str,
) -> tuple[int, dict[int, tuple[str, str | None]], Journal]:
    """One run of a campaign (a duplicate number, one on the DNC list) from `source`:
    "local" (assemble's choice) or "stored" (the stored plan's columns, two rows a batch)."""
    clock = FakeClock(MIDDAY)
    contacts = [{"phone": p} for p in phones] + [{"phone": phones[1]}]
    camp = write_campaign(folder, contacts=contacts, dnc=[phones[2]],
                          api="poll_interval_s = 0.01")
    campaign = load_campaign(camp.path)
    plan = make_plan(campaign, clock.now())
    journal = Journal(campaign.journal_path, campaign.name, now=clock.now)

    def factory(**kw: Any) -> VantaxClient:
        return VantaxClient("http://127.0.0.1:9", KEY,
                            transport=httpx.MockTransport(platform.handler), **kw)

    engine = engine_for_plan(plan, journal=journal, client_factory=factory, clock=clock,
                             options=RunOptions(install_signal_handlers=False))
    if source == "stored":
        assert isinstance(plan.rows, PlanRows)
        engine.source = StoredPlanSource(plan.rows, DialColumns(**plan.rows.dial_columns()),
                                         batch=2)
    outcome = anyio.run(engine.run, backend="asyncio")
    fates = {row: (f.disposition, f.reason) for row, f in journal.fates().items()}
    return int(outcome.exit_code), fates, journal


def test_the_stored_plan_is_a_row_source_that_dials_what_the_local_schedule_dials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The same campaign from the local schedule and from the stored plan's columns (in
    batches of two): the same people rung once each, the same fates; a second run from the
    stored plan rings nobody again."""
    log.configure("warning", json=True)
    phones = numbers(7)
    got = {}
    for name in ("local", "stored"):
        monkeypatch.setenv("CAMPAIGN_DIALER_HOME", str(tmp_path / f"home-{name}"))
        platform = FakePlatform(polls_to_final=1)
        code, fates, journal = _run_with(tmp_path / name, platform, phones, name)
        got[name] = (code, fates, sorted(platform.placed_to()))
        assert len(platform.posts) == len(platform.placed_to()) == len(set(platform.placed_to()))
        journal.close()
    assert got["stored"] == got["local"]
    code, fates, placed = got["stored"]
    assert code == 0 and placed == sorted(p for p in phones if p != phones[2])
    again = FakePlatform(polls_to_final=1)
    code, fates2, journal = _run_with(tmp_path / "stored", again, phones, "stored")
    assert code == 0 and again.posts == [] and fates2 == fates
    journal.close()
