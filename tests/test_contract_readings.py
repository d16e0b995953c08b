"""The engine under other readings of the API contract than our sandbox's (an independent
platform may ignore a list filter, page forever, leave out the Date header)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from campaign_dialer.engine import idempotency_key
from campaign_dialer.exitcodes import ExitCode

from . import e2e_support
from .e2e_support import numbers
from .test_engine import FakePlatform, _env, _intent_from_a_crashed_run, run_engine


class UnfilteredList(FakePlatform):
    """GET /v1/calls ignores every filter: it lists all calls of the sub-account."""

    def handler(self, req: httpx.Request) -> httpx.Response:
        if req.method == "GET" and req.url.path == "/v1/calls":
            data = [self._public(c) for c in self.calls.values()]
            return httpx.Response(200, json={"success": True, "data": data, "next_cursor": None})
        return super().handler(req)


def test_lookup_never_takes_another_persons_call_when_the_list_ignores_to(
    tmp_path: Path,
) -> None:
    phone, other = numbers(2)
    p = UnfilteredList()
    p._place("someone-else", {"agent_id": "agt_3d9b21", "phone_number": other})
    r = run_engine(tmp_path, p, phones=[phone], before=_intent_from_a_crashed_run(phone, p))
    (a,) = r.journal.attempts()
    assert (a.state, a.call_id) == ("final", "call_0002")  # its own call, not call_0001
    assert p.posts == []


def test_lookup_skips_an_older_call_when_the_list_ignores_created_after(
    tmp_path: Path,
) -> None:
    phone = numbers(1)[0]
    p = UnfilteredList()
    old = p._place("last-month", {"agent_id": "agt_3d9b21", "phone_number": phone})
    old["created_at"] = "2026-05-01T17:00:00Z"

    def before(j: Any) -> None:  # a crashed run's intent, with the platform's time known
        key = idempotency_key("e2e", f"tel:{phone}", 1)
        j.record_intent(person=f"tel:{phone}", row=1, attempt=1, idem_key=key,
                        body={"agent_id": "agt_3d9b21", "phone_number": phone},
                        evidence={"platform_at": "2026-06-09T16:59:00.000Z"}, run_id=None)

    r = run_engine(tmp_path, p, phones=[phone], before=before,
                   extra="\n[history]\nmin_hours_between_calls = 0\n")
    # last month's call is not this attempt's: the replay (same key) places it once
    assert [x[1] for x in p.posts] == [idempotency_key("e2e", f"tel:{phone}", 1)]
    (a,) = r.journal.attempts()
    assert a.call_id == "call_0002"


class LoopingCursor(FakePlatform):
    """GET /v1/calls answers every page with the same next_cursor."""

    def handler(self, req: httpx.Request) -> httpx.Response:
        if req.method == "GET" and req.url.path == "/v1/calls":
            return httpx.Response(200, json={"success": True, "data": [], "next_cursor": "c1"})
        return super().handler(req)


def test_a_cursor_that_repeats_does_not_hang_the_lookup_nor_replay(tmp_path: Path) -> None:
    phone = numbers(1)[0]
    p = LoopingCursor()
    r = run_engine(tmp_path, p, phones=[phone], before=_intent_from_a_crashed_run(phone, None))
    assert p.posts == []  # the platform could not be asked: nothing is re-sent
    (a,) = r.journal.attempts()
    assert a.state in ("intent", "unresolved")


def test_a_flat_error_envelope_still_gives_its_code() -> None:
    from campaign_dialer.client import Conflict, DncRejected, error_envelope, error_for

    body = {"success": False, "code": "call_in_progress", "message": "on a call"}
    code, message, _ = error_envelope(body)
    assert (code, message) == ("call_in_progress", "on a call")
    resp = httpx.Response(409, json=body)
    assert isinstance(error_for(resp, "POST", "/v1/calls", code, message, {}), Conflict)
    dnc = httpx.Response(409, json={"code": "dnc_listed"})
    assert isinstance(error_for(dnc, "POST", "/v1/calls", "dnc_listed", "", {}), DncRejected)


class NoTimeBound(FakePlatform):
    """GET /v1/calls refuses `created_after` with 422 (a platform with another format)."""

    def handler(self, req: httpx.Request) -> httpx.Response:
        if req.method == "GET" and req.url.path == "/v1/calls" and (
            "created_after" in req.url.params
        ):
            return httpx.Response(422, json={
                "success": False, "message": "bad created_after",
                "error": {"code": "validation_error", "details": {"fields": {}}},
            })
        return super().handler(req)


def test_a_lookup_refused_for_its_time_bound_looks_again_without_it(tmp_path: Path) -> None:
    phone = numbers(1)[0]
    p = NoTimeBound()
    key = idempotency_key("e2e", f"tel:{phone}", 1)
    body = {"agent_id": "agt_3d9b21", "phone_number": phone}

    def before(j: Any) -> None:  # the POST reached the platform, then the dialer died
        j.record_intent(person=f"tel:{phone}", row=1, attempt=1, idem_key=key, body=body,
                        evidence={"platform_at": "2026-06-09T16:59:00.000Z"}, run_id=None)
        p._place(key, body)

    r = run_engine(tmp_path, p, phones=[phone], before=before)
    assert p.posts == []  # found by the unbounded lookup, not replayed
    (a,) = r.journal.attempts()
    assert (a.state, a.call_id) == ("final", "call_0001")


class AcceptedWithoutId(FakePlatform):
    """The first answers to POST are 201 with a CALL that has no id (the call is placed)."""

    blank_answers: int = 2

    def handler(self, req: httpx.Request) -> httpx.Response:
        resp = super().handler(req)
        if req.method == "POST" and resp.status_code == 201 and self.blank_answers:
            self.blank_answers -= 1
            return httpx.Response(201, json={"success": True, "data": {"status": "initiated"}})
        return resp


def test_a_2xx_without_a_call_id_is_resent_with_the_same_key_and_followed(
    tmp_path: Path,
) -> None:
    p = AcceptedWithoutId()
    r = run_engine(tmp_path, p, phones=numbers(1))
    assert len(p.calls) == 1 and len({x[1] for x in p.posts}) == 1
    (a,) = r.journal.attempts()
    assert (a.state, a.call_id, a.status) == ("final", "call_0001", "completed")


class Refused409(FakePlatform):
    """Every POST is refused with a 409 whose code the contract does not name."""

    code: str = "number_blocked"

    def handler(self, req: httpx.Request) -> httpx.Response:
        if req.method == "POST":
            self.posts.append((0.0, req.headers["Idempotency-Key"], {}, ""))
            return httpx.Response(409, json={"success": False, "message": "no",
                                             "error": {"code": self.code, "details": {}}})
        return super().handler(req)


@pytest.mark.parametrize(("code", "ledgered"), [("number_blocked", False), ("dnc_listed", True)])
def test_a_409_with_an_unknown_code_is_rejected_once_but_not_put_on_the_dnc_ledger(
    tmp_path: Path, code: str, ledgered: bool
) -> None:
    phone = numbers(1)[0]
    p = Refused409()
    p.code = code
    own = tmp_path / "history.sqlite"  # never the session's shared history
    r = run_engine(tmp_path, p, phones=[phone], extra=f'\n[history]\npath = "{own}"\n')
    assert len(p.posts) == 1 and p.calls == {}
    (a,) = r.journal.attempts()
    assert a.state == "rejected"
    ledger = tmp_path / "dnc-ledger.csv"
    text = ledger.read_text() if ledger.exists() else ""
    from campaign_dialer.store import SqliteHistory

    with SqliteHistory(own) as h:
        assert (phone in text or h.is_dnc(phone)) is ledgered


def test_an_open_intent_of_a_person_the_crm_now_flags_do_not_call_is_never_resent(
    tmp_path: Path,
) -> None:
    import anyio

    from campaign_dialer import log
    from campaign_dialer.client import VantaxClient
    from campaign_dialer.commands.assemble import engine_for_plan
    from campaign_dialer.config import load_campaign
    from campaign_dialer.engine import RunOptions
    from campaign_dialer.planning import make_plan
    from campaign_dialer.store import Journal

    from .e2e_support import KEY, write_campaign
    from .test_engine import MIDDAY, FakeClock

    log.configure("warning", json=True)
    phone = numbers(1)[0]
    p = FakePlatform()
    clock = FakeClock(MIDDAY)
    clock.advance(minutes=10)  # the intent is long past any request still in flight
    camp = write_campaign(tmp_path, contacts=[{"phone": phone, "Do Not Call": "1"}],
                          extra=f'\n[history]\npath = "{tmp_path / "h.sqlite"}"\n')
    campaign = load_campaign(camp.path)
    plan = make_plan(campaign, clock.now())
    journal = Journal(campaign.journal_path, campaign.name, now=clock.now)
    _intent_from_a_crashed_run(phone, None)(journal)  # crashed before the CRM was updated

    def factory(**kw: Any) -> VantaxClient:
        return VantaxClient("http://127.0.0.1:9", KEY,
                            transport=httpx.MockTransport(p.handler), **kw)

    engine = engine_for_plan(plan, journal=journal, client_factory=factory,
                             clock=clock, options=RunOptions(install_signal_handlers=False))
    anyio.run(engine.run, backend="asyncio")
    assert p.posts == [] and p.calls == {}
    assert journal.fates()[1].reason == "dnc_flag"


class RemembersEveryAnswer(FakePlatform):
    """A platform that keeps its first answer to a key, errors included, and refuses a key
    reused with another body (422 `idempotency_mismatch`), as the contract allows."""

    def __init__(self) -> None:
        super().__init__(polls_to_final=1)
        self.answers: dict[str, tuple[dict[str, Any], httpx.Response]] = {}

    def handler(self, req: httpx.Request) -> httpx.Response:
        if req.method != "POST":
            return super().handler(req)
        body = json.loads(req.content)
        key = req.headers["Idempotency-Key"]
        if key in self.answers:
            first_body, first = self.answers[key]
            self.posts.append((0.0, key, body, ""))
            if body != first_body:
                return httpx.Response(422, json=_env("idempotency_mismatch"))
            return httpx.Response(first.status_code, json=json.loads(first.content))
        if body["agent_id"] != "agt_3d9b21":
            self.posts.append((0.0, key, body, ""))
            answer = httpx.Response(404, json=_env("agent_not_found"))
        else:
            answer = super().handler(req)
        self.answers[key] = (body, answer)
        return answer


def test_a_fixed_agent_id_is_dialed_even_by_a_platform_that_remembers_the_404(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    phones = numbers(5)
    p = RemembersEveryAnswer()
    monkeypatch.setattr(e2e_support, "AGENT", "agt_typo")
    first = run_engine(tmp_path, p, phones=phones)
    assert first.outcome.exit_code == ExitCode.CONFIG
    assert {f.disposition for f in first.journal.fates().values()} == {"pending"}
    first.journal.close()
    monkeypatch.setattr(e2e_support, "AGENT", "agt_3d9b21")  # the operator fixes the file
    again = run_engine(tmp_path, p, phones=phones)
    assert again.outcome.exit_code == ExitCode.OK
    assert sorted(p.placed_to()) == sorted(phones)  # each person rung once, none twice
    assert {f.disposition for f in again.journal.fates().values()} == {"dialed"}
