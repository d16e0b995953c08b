"""Fault injection for the engine through httpx.MockTransport: a scripted, stateful platform."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from campaign_dialer import log
from campaign_dialer.client import VantaxClient
from campaign_dialer.clock import Clock
from campaign_dialer.commands.assemble import engine_for_plan
from campaign_dialer.config import load_campaign
from campaign_dialer.engine import RunOptions, idempotency_key
from campaign_dialer.exitcodes import ExitCode
from campaign_dialer.planning import make_plan
from campaign_dialer.store import Journal

from .e2e_support import KEY, numbers, write_campaign

MIDDAY = datetime(2026, 6, 9, 17, 0, tzinfo=UTC)  # 13:00 in New York


class FakeClock(Clock):
    def __init__(self, start: datetime) -> None:
        super().__init__(start)
        self.offset = timedelta(0)

    def now(self) -> datetime:
        return super().now() + self.offset

    def advance(self, **kw: float) -> None:
        self.offset += timedelta(**kw)


@dataclass
class FakePlatform:
    """Enough of the contract to be stateful: idempotency, lifecycle, live calls, faults."""

    polls_to_final: int = 2
    final_status: str = "completed"
    final_outcome: str = "qualified"
    statuses: list[str] = field(default_factory=lambda: ["ringing", "in_progress"])
    script: list[str | None] = field(default_factory=list)  # fault for each next POST
    get_script: list[str | None] = field(default_factory=list)
    on_post: Callable[[int], None] | None = None
    calls: dict[str, dict[str, Any]] = field(default_factory=dict)
    by_key: dict[str, str] = field(default_factory=dict)
    posts: list[tuple[float, str, dict[str, Any], str]] = field(default_factory=list)
    peak_live: int = 0
    refused: int = 0  # POSTs whose connection was refused: they never reached the platform

    @property
    def live(self) -> int:
        return sum(1 for c in self.calls.values() if c["status"] not in ("completed", "no_answer"))

    def placed_to(self) -> list[str]:
        return [c["to"] for c in self.calls.values()]

    def _place(self, key: str, body: dict[str, Any]) -> dict[str, Any]:
        if key in self.by_key:
            return self.calls[self.by_key[key]]
        cid = f"call_{len(self.calls) + 1:04d}"
        call = {"id": cid, "status": "initiated", "to": body.get("phone_number"),
                "contact_id": body.get("contact_id"), "agent_id": body["agent_id"],
                "created_at": "2026-06-09T17:00:00Z", "polls": 0}
        self.calls[cid] = call
        self.by_key[key] = cid
        self.peak_live = max(self.peak_live, self.live)
        return call

    @staticmethod
    def _public(call: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in call.items() if k != "polls"}

    def handler(self, req: httpx.Request) -> httpx.Response:
        if req.method == "POST":
            if self.script and self.script[0] == "refused":
                self.script.pop(0)
                self.refused += 1
                raise httpx.ConnectError("connection refused", request=req)
            body = json.loads(req.content)
            key = req.headers["Idempotency-Key"]
            self.posts.append((time.monotonic(), key, body, ""))
            if self.on_post:
                self.on_post(len(self.posts))
            fault = self.script.pop(0) if self.script else None
            if fault == "401":
                return httpx.Response(401, json=_env("unauthorized"))
            if fault == "502":
                return httpx.Response(502, text="<html>Bad Gateway</html>")
            if fault == "429":
                return httpx.Response(
                    429, json=_env("rate_limited"), headers={"Retry-After": "0.05"}
                )
            if fault == "409dnc":
                return httpx.Response(409, json=_env("dnc_listed"))
            if fault == "422":
                return httpx.Response(422, json=_env("validation_error"))
            call = self._place(key, body)
            if fault == "drop":
                raise httpx.RemoteProtocolError("connection dropped", request=req)
            if fault == "timeout":
                raise httpx.ReadTimeout("timed out", request=req)
            return httpx.Response(201, json={"success": True, "data": self._public(call)})
        if req.url.path == "/v1/calls":
            q = dict(req.url.params)
            data = [self._public(c) for c in self.calls.values()
                    if q.get("to") in (None, c["to"])]
            return httpx.Response(200, json={"success": True, "data": data, "next_cursor": None})
        cid = req.url.path.rsplit("/", 1)[-1]
        fault = self.get_script.pop(0) if self.get_script else None
        if fault == "503":
            return httpx.Response(503, text="busy")
        if fault == "401":
            return httpx.Response(401, json=_env("unauthorized"))
        call = self.calls.get(cid)
        if call is None:
            return httpx.Response(404, json=_env("call_not_found"))
        call["polls"] += 1
        n = call["polls"]
        if self.final_status == "never":
            call["status"] = "queued"
        elif n >= self.polls_to_final:
            call["status"] = self.final_status
            call.update(outcome=self.final_outcome, duration_seconds=42.0,
                        ended_at="2026-06-09T17:01:00Z")
        else:
            call["status"] = self.statuses[min(n - 1, len(self.statuses) - 1)]
        return httpx.Response(200, json={"success": True, "data": self._public(call)})


def _env(code: str) -> dict[str, Any]:
    return {"success": False, "message": code, "error": {"code": code, "details": {}}}


@dataclass
class Run:
    outcome: Any
    journal: Journal
    folder: Path


def run_engine(
    tmp_path: Path, platform: FakePlatform, *, phones: list[str], clock: Clock | None = None,
    api: str = "", pacing: str = "calls_per_second = 20", consent: list[str] | None = None,
    before: Callable[[Journal], None] | None = None, extra: str = "",
) -> Run:
    log.configure("warning", json=True)
    clock = clock or FakeClock(MIDDAY)
    camp = write_campaign(
        tmp_path, contacts=[{"phone": p} for p in phones], consent=consent, extra=extra,
        api=api or "poll_interval_s = 0.01\nmax_attempts = 5",
        pacing=pacing,
    )
    campaign = load_campaign(camp.path)
    plan = make_plan(campaign, clock.now())
    journal = Journal(campaign.journal_path, campaign.name, now=clock.now)
    if before:
        before(journal)

    def factory(**kw: Any) -> VantaxClient:
        return VantaxClient("http://127.0.0.1:9", KEY,
                            transport=httpx.MockTransport(platform.handler), **kw)

    engine = engine_for_plan(plan, journal=journal, client_factory=factory,
                             clock=clock, options=RunOptions(install_signal_handlers=False))
    outcome = anyio.run(engine.run, backend="asyncio")
    return Run(outcome, journal, tmp_path)


def test_every_retry_of_a_post_reuses_its_key_and_rings_once(tmp_path: Path) -> None:
    p = FakePlatform(script=["timeout", "502", "drop", "429", None])
    phone = numbers(1)
    r = run_engine(tmp_path, p, phones=phone)
    assert r.outcome.exit_code == ExitCode.OK
    keys = {k for _, k, _, _ in p.posts}
    assert len(p.posts) == 5 and len(keys) == 1
    assert keys == {idempotency_key("e2e", f"tel:{phone[0]}", 1)}
    assert p.placed_to() == phone
    (a,) = r.journal.attempts()
    assert (a.state, a.posts, a.status, a.call_id) == ("final", 5, "completed", "call_0001")


def test_transient_errors_are_bounded_and_leave_the_attempt_for_the_next_run(
    tmp_path: Path,
) -> None:
    p = FakePlatform(script=["502"] * 10)
    r = run_engine(tmp_path, p, phones=numbers(1), api="poll_interval_s = 0.01\nmax_attempts = 3")
    assert r.outcome.exit_code == ExitCode.UNAVAILABLE
    assert len(p.posts) == 3 and p.calls == {}
    (a,) = r.journal.attempts()
    assert a.state == "intent"  # unresolved: the next run replays the same key
    fates = r.journal.fates()
    assert (fates[1].disposition, fates[1].reason) == ("pending", "unresolved")


def test_a_post_that_never_connected_is_not_placed_and_dialed_again_with_its_key(
    tmp_path: Path,
) -> None:
    """No try reached the platform: the attempt is known not placed (no open intent for crash
    recovery to look up), and the next run dials it once, with the same key."""
    p = FakePlatform(script=["refused"] * 3)
    phone = numbers(1)
    api = "poll_interval_s = 0.01\nmax_attempts = 3"
    r = run_engine(tmp_path, p, phones=phone, api=api)
    assert r.outcome.exit_code == ExitCode.UNAVAILABLE
    assert p.refused == 3 and p.posts == [] and p.calls == {}
    (a,) = r.journal.attempts()
    assert a.state == "not_placed"
    fates = r.journal.fates()
    assert (fates[1].disposition, fates[1].reason) == ("pending", "not_placed")
    again = run_engine(tmp_path, p, phones=phone, api=api)
    assert again.outcome.exit_code == ExitCode.OK
    assert [k for _, k, _, _ in p.posts] == [a.idem_key] and p.placed_to() == phone
    (b,) = again.journal.attempts()
    assert (b.id, b.state, b.status) == (a.id, "final", "completed")


def test_a_post_that_may_have_reached_the_platform_stays_open(tmp_path: Path) -> None:
    """One try timed out (it may have placed the call): the intent stays open, to be
    resolved by key, whatever the other tries said."""
    p = FakePlatform(script=["refused", "timeout", "refused"])
    r = run_engine(tmp_path, p, phones=numbers(1),
                   api="poll_interval_s = 0.01\nmax_attempts = 3")
    assert r.outcome.exit_code == ExitCode.UNAVAILABLE
    (a,) = r.journal.attempts()
    assert a.state == "intent"
    assert (r.journal.fates()[1].reason) == "unresolved"


def test_window_closing_before_a_resend_stops_the_resend(tmp_path: Path) -> None:
    clock = FakeClock(datetime(2026, 6, 9, 23, 59, 0, tzinfo=UTC))  # 19:59 in New York

    def late(n: int) -> None:
        clock.advance(minutes=5)  # the first POST failed and the window closed meanwhile

    p = FakePlatform(script=["502"], on_post=late)
    r = run_engine(tmp_path, p, phones=numbers(1), clock=clock)
    assert len(p.posts) == 1 and p.calls == {}
    assert r.outcome.exit_code == ExitCode.TEMPFAIL
    (a,) = r.journal.attempts()
    assert a.state == "intent" and "outside_window" in (a.error or "")


def test_consent_revoked_mid_run_stops_that_call(tmp_path: Path) -> None:
    phones = numbers(30)
    victim = phones[-1]

    def revoke(n: int) -> None:
        if n == 3:
            with open(tmp_path / "consent.csv", "a") as fh:
                fh.write(f"{victim},revoke,2026-06-09T16:00:00Z,sms STOP\n")

    p = FakePlatform(on_post=revoke)
    r = run_engine(tmp_path, p, phones=phones, pacing="calls_per_second = 8")
    assert victim not in p.placed_to()
    assert len(p.placed_to()) == 29
    fates = r.journal.fates()
    assert (fates[30].disposition, fates[30].reason) == ("suppressed", "consent_revoked")


def test_number_added_to_a_dnc_list_mid_run_is_not_called(tmp_path: Path) -> None:
    phones = numbers(30)
    victim = phones[-1]

    def add(n: int) -> None:
        if n == 3:
            with open(tmp_path / "dnc.csv", "a") as fh:
                fh.write(f"({victim[2:5]}) {victim[5:8]}-{victim[8:]}\n")

    p = FakePlatform(on_post=add)
    r = run_engine(tmp_path, p, phones=phones, pacing="calls_per_second = 8")
    assert victim not in p.placed_to()
    assert r.journal.fates()[30].reason == "dnc_local"


def test_live_calls_never_exceed_the_limit_and_slots_free_when_final(tmp_path: Path) -> None:
    p = FakePlatform(polls_to_final=6)
    r = run_engine(tmp_path, p, phones=numbers(24),
                   api="poll_interval_s = 0.01\nmax_attempts = 5\nmax_live_calls = 3")
    assert r.outcome.exit_code == ExitCode.OK
    assert p.peak_live == 3
    assert len(p.calls) == 24


def test_new_calls_are_evenly_spaced_not_burst(tmp_path: Path) -> None:
    p = FakePlatform(polls_to_final=1)
    run_engine(tmp_path, p, phones=numbers(12), pacing="calls_per_second = 10")
    times = [t for t, _, _, _ in p.posts]
    # A burst would put the 12 POSTs within a few milliseconds; a loaded machine only spreads
    # them further. (The POSTs' arrival times also carry each intent's fsync, so the exact
    # spacing is asserted on the pacer itself below, not here.)
    assert times[-1] - times[0] >= 0.75 * 11 * 0.1, times


@pytest.mark.parametrize("stalls", [(), (3, 4), (1, 5, 6, 7)])
def test_the_pacer_never_releases_two_calls_closer_than_half_a_gap(stalls: tuple[int, ...]) -> None:
    """By construction, whatever the event loop's delays: a late slot restarts the schedule
    instead of bursting to catch up, so the gap between two releases is at least gap / 2."""
    from campaign_dialer.engine import Pacer

    released: list[float] = []

    async def main() -> None:
        pacer = Pacer(20.0)
        for i in range(10):
            if i in stalls:
                time.sleep(0.12)  # the loop is blocked, as on a loaded machine
            await pacer.acquire()
            released.append(pacer.last_release)

    anyio.run(main)
    gaps = [b - a for a, b in zip(released, released[1:], strict=False)]
    assert min(gaps) >= 0.05 / 2 - 1e-6, gaps


def test_401_mid_run_stops_everything_with_77(tmp_path: Path) -> None:
    p = FakePlatform(script=[None, None, None, "401"], polls_to_final=50)
    r = run_engine(tmp_path, p, phones=numbers(20), pacing="calls_per_second = 20")
    assert r.outcome.exit_code == ExitCode.NOPERM
    assert len(p.posts) == 4
    fates = r.journal.fates()
    assert not any(f.disposition == "dialed" for f in fates.values())
    states = sorted(a.state for a in r.journal.attempts())
    assert states == ["not_placed", "placed", "placed", "placed"]


def test_409_dnc_is_rejected_and_recorded_in_the_ledger(tmp_path: Path) -> None:
    phones = numbers(3)
    p = FakePlatform(script=[None, "409dnc", None])
    r = run_engine(tmp_path, p, phones=phones, pacing="calls_per_second = 2")
    fates = r.journal.fates()
    assert [fates[i].disposition for i in (1, 2, 3)] == ["dialed", "rejected", "dialed"]
    assert phones[1] in (tmp_path / "dnc-ledger.csv").read_text()


def test_422_is_an_error_with_its_reason_and_not_retried(tmp_path: Path) -> None:
    p = FakePlatform(script=["422"])
    r = run_engine(tmp_path, p, phones=numbers(1))
    assert len(p.posts) == 1
    f = r.journal.fates()[1]
    assert (f.disposition, f.reason) == ("error", "validation_error")
    assert r.outcome.exit_code == ExitCode.OK


def test_unknown_status_is_kept_until_the_time_limit(tmp_path: Path) -> None:
    p = FakePlatform(final_status="never")
    r = run_engine(tmp_path, p, phones=numbers(1),
                   api="poll_interval_s = 0.01\ncall_time_limit_s = 0.3")
    (a,) = r.journal.attempts()
    assert a.state == "final" and a.status == "queued"
    assert "time limit" in (a.error or "")


def test_get_failures_are_retried_until_the_final_status(tmp_path: Path) -> None:
    p = FakePlatform(get_script=["503", "503", "503"])
    r = run_engine(tmp_path, p, phones=numbers(1))
    (a,) = r.journal.attempts()
    assert (a.state, a.status) == ("final", "completed")


def _intent_from_a_crashed_run(
    phone: str, platform: FakePlatform | None
) -> Callable[[Journal], None]:
    def before(j: Journal) -> None:
        key = idempotency_key("e2e", f"tel:{phone}", 1)
        body = {"agent_id": "agt_3d9b21", "phone_number": phone}
        j.record_intent(person=f"tel:{phone}", row=1, attempt=1, idem_key=key, body=body,
                        evidence={}, run_id=None)
        if platform is not None:  # the POST reached the platform before the crash
            platform._place(key, body)
    return before


def test_resume_asks_the_platform_before_any_replay_and_follows_the_original_call(
    tmp_path: Path,
) -> None:
    phone = numbers(1)
    p = FakePlatform()
    r = run_engine(tmp_path, p, phones=phone, before=_intent_from_a_crashed_run(phone[0], p))
    assert len(p.calls) == 1
    assert p.posts == []  # the lookup found it: its idempotency memory is not relied on
    (a,) = r.journal.attempts()
    assert (a.state, a.call_id) == ("final", "call_0001")


def test_resume_replays_an_intent_the_platform_has_no_call_for(tmp_path: Path) -> None:
    phone = numbers(1)
    p = FakePlatform()
    r = run_engine(tmp_path, p, phones=phone, before=_intent_from_a_crashed_run(phone[0], None))
    assert len(p.posts) == 1 and len(p.calls) == 1  # the same key, once
    assert p.posts[0][1] == idempotency_key("e2e", f"tel:{phone[0]}", 1)
    (a,) = r.journal.attempts()
    assert (a.state, a.call_id) == ("final", "call_0001")


def test_resume_outside_the_window_finds_the_call_by_lookup_without_posting(
    tmp_path: Path,
) -> None:
    phone = numbers(1)
    p = FakePlatform()
    night = FakeClock(datetime(2026, 6, 10, 7, 0, tzinfo=UTC))  # 03:00 in New York
    r = run_engine(tmp_path, p, phones=phone, clock=night,
                   before=_intent_from_a_crashed_run(phone[0], p))
    assert p.posts == []  # no POST at 3 a.m., not even a replay
    (a,) = r.journal.attempts()
    assert (a.state, a.call_id) == ("final", "call_0001")


def test_resume_of_an_intent_that_never_arrived_places_nothing_at_night(tmp_path: Path) -> None:
    phone = numbers(1)
    p = FakePlatform()
    night = FakeClock(datetime(2026, 6, 10, 7, 0, tzinfo=UTC))
    night.advance(minutes=5)  # the intent is older than any request could still be in flight
    r = run_engine(tmp_path, p, phones=phone, clock=night,
                   before=_intent_from_a_crashed_run(phone[0], None))
    assert p.posts == [] and p.calls == {}
    (a,) = r.journal.attempts()
    assert a.state in ("intent", "not_placed")
    assert r.journal.fates()[1].disposition == "pending"


@pytest.mark.parametrize("attempt_state", ["final", "rejected", "error"])
def test_a_person_with_a_closed_attempt_is_never_dialed_again(
    tmp_path: Path, attempt_state: str
) -> None:
    phone = numbers(1)

    def before(j: Journal) -> None:
        a = j.record_intent(person=f"tel:{phone[0]}", row=1, attempt=1,
                            idem_key=idempotency_key("e2e", f"tel:{phone[0]}", 1),
                            body={"agent_id": "agt_3d9b21", "phone_number": phone[0]},
                            evidence={}, run_id=None)
        if attempt_state == "final":
            j.record_final(a.id, status="no_answer", outcome=None, ended_reason=None,
                           ended_at=None, duration_seconds=None, recording_url=None)
        elif attempt_state == "rejected":
            j.record_rejected(a.id, http_status=409, error_code="dnc_listed", error="dnc")
        else:
            j.record_error(a.id, http_status=422, error_code="validation_error", error="bad")

    p = FakePlatform()
    r = run_engine(tmp_path, p, phones=phone, before=before)
    assert p.posts == []
    assert r.outcome.exit_code == ExitCode.OK


def test_a_row_with_only_a_contact_id_is_not_called_by_default(tmp_path: Path) -> None:
    log.configure("warning", json=True)
    phone = numbers(1)[0]
    camp = write_campaign(
        tmp_path,
        contacts=[{"phone": "", "contact_id": "CRM-1", "timezone": "America/New_York"},
                  {"phone": phone, "contact_id": "CRM-2", "timezone": ""}],
        consent=[phone],
    )
    (tmp_path / "consent.csv").write_text(
        "phone,contact_id,event,event_at,source\n"
        f"{phone},,grant,2026-01-01T00:00:00Z,web\n"
        ",CRM-1,grant,2026-01-01T00:00:00Z,web\n"
    )
    campaign = load_campaign(camp.path)
    plan = make_plan(campaign, MIDDAY)
    by_row = {r.row: r for r in plan.rows}
    assert (by_row[1].disposition, by_row[1].reason) == ("suppressed", "no_phone_number")
    assert by_row[2].disposition == "eligible"


def test_pacer_never_bursts_and_keeps_its_schedule() -> None:
    from campaign_dialer.engine import Pacer

    async def main() -> list[float]:
        pacer = Pacer(200.0)  # a gap of 5 ms
        times = []
        for i in range(60):
            await pacer.acquire()
            times.append(pacer.last_release)  # the instant it gave the slot, not ours later
            if i == 30:
                await anyio.sleep(0.05)  # idle: the schedule restarts, no catch-up burst
        return times

    times = anyio.run(main, backend="asyncio")
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    # never closer than half a gap, however late any wake-up was (a loaded machine can only
    # stretch gaps; what it must not do is make the pacer catch up in a burst)
    assert min(gaps) >= 0.0025 - 1e-4


def test_a_national_list_going_stale_mid_run_stops_new_calls_with_78(tmp_path: Path) -> None:
    clock = FakeClock(MIDDAY)  # 2026-06-09: a list as of 2026-05-09 is 31 days old, still fine
    (tmp_path / "national.csv").write_text("phone\n")
    extra = '\n[[inputs.dnc_lists]]\npath = "national.csv"\nkind = "national"\n' \
            'as_of = "2026-05-09"\n'

    def next_day(n: int) -> None:
        if n == 3:
            clock.advance(days=1)  # the list is 32 days old from now on

    p = FakePlatform(on_post=next_day)
    r = run_engine(tmp_path, p, phones=numbers(30), clock=clock, extra=extra,
                   pacing="calls_per_second = 8")
    assert r.outcome.exit_code == ExitCode.CONFIG
    assert "national.csv" in r.outcome.message and "32 days old" in r.outcome.message
    assert 3 <= len(p.placed_to()) < 30  # nobody was dialed against the stale list
    assert len(p.posts) == len(p.placed_to())


def test_no_journal_history_or_gate_call_runs_on_the_event_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every SQLite call and compliance file read of a run goes through the engine's lane
    (a worker thread): the loop thread never runs one while the engine runs."""
    import threading
    import types

    from campaign_dialer.compliance import ConsentLedger, Gate
    from campaign_dialer.engine import Engine
    from campaign_dialer.store import SqliteHistory
    from campaign_dialer.store.ledger_file import DncLedger, SharedDncLedger

    loop_thread = threading.get_ident()
    running = [False]
    on_loop: list[str] = []

    def spy(cls: type, name: str) -> None:
        orig = getattr(cls, name)

        def wrapped(*a: Any, **kw: Any) -> Any:
            if running[0] and threading.get_ident() == loop_thread:
                on_loop.append(f"{cls.__name__}.{name}")
            return orig(*a, **kw)

        monkeypatch.setattr(cls, name, wrapped)

    for cls in (Journal, SqliteHistory, Gate, DncLedger, SharedDncLedger, ConsentLedger):
        for name, value in list(vars(cls).items()):
            if isinstance(value, types.FunctionType) and not name.startswith("__"):
                spy(cls, name)
    run = Engine.run

    async def watched(self: Engine) -> Any:
        running[0] = True
        try:
            return await run(self)
        finally:
            running[0] = False

    monkeypatch.setattr(Engine, "run", watched)
    p = FakePlatform(script=[None, "409dnc"])  # a placed call, and a DNC rejection (the ledger)
    r = run_engine(tmp_path, p, phones=numbers(4), consent=None)
    seen = sorted(set(on_loop))
    assert r.outcome.exit_code == ExitCode.OK
    assert {a.state for a in r.journal.attempts()} >= {"final", "rejected"}
    assert seen == []


def test_an_opt_out_is_on_the_ledger_before_the_engine_goes_on_never_held_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A final record nothing waits for is deferred (one lane hand-off fewer per call); an
    opt-out never is: it reaches the shared DNC ledger in an awaited lane call."""
    from campaign_dialer.engine.io import Lane
    from campaign_dialer.store.ledger_file import DncLedger

    in_held = [False]
    adds: list[tuple[str, bool]] = []
    run_held = Lane._run_held

    def watched_held(self: Lane, held: Any) -> None:
        in_held[0] = True
        try:
            run_held(self, held)
        finally:
            in_held[0] = False

    add = DncLedger.add

    def watched_add(self: DncLedger, e164: str, **kw: Any) -> Any:
        adds.append((kw["reason"], in_held[0]))
        return add(self, e164, **kw)

    monkeypatch.setattr(Lane, "_run_held", watched_held)
    monkeypatch.setattr(DncLedger, "add", watched_add)
    p = FakePlatform(final_outcome="opt_out")
    r = run_engine(tmp_path, p, phones=numbers(3))
    assert r.outcome.exit_code == ExitCode.OK
    assert sorted(adds) == [("opt_out", False)] * 3
    assert {a.state for a in r.journal.attempts()} == {"final"}


def test_every_deferred_final_is_journaled_when_the_run_returns(tmp_path: Path) -> None:
    """Finals and placements held back by the lane are all written by the time `run` ends."""
    p = FakePlatform(polls_to_final=1)
    r = run_engine(tmp_path, p, phones=numbers(12))
    assert r.outcome.exit_code == ExitCode.OK
    attempts = r.journal.attempts()
    assert len(attempts) == 12
    assert {a.state for a in attempts} == {"final"}
    assert all(a.call_id and a.placed_at for a in attempts)
