"""The real client and engine against an independent fake of the Vantax API.

`Vantax` below is written from the Vantax API contract the dialer and sandbox agree on and
the published Place AI Voice Call page (`POST /v1/calls`) only (not from our client nor our
sandbox): auth, validation, idempotency (same key + body -> the original answer; another
body -> 422 idempotency_mismatch), the lifecycle, GET /v1/calls with its filters, `limit`
and cursors, the error envelope and `Retry-After`. Faults are scripted per request. Each test
asks: one call per person at most, nothing outside the rules, the right fate, and
"unresolved" when the dialer truly cannot tell.
"""

from __future__ import annotations

import email.utils
import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from campaign_dialer.client import Call, VantaxClient, parse_retry_after
from campaign_dialer.engine import idempotency_key
from campaign_dialer.exitcodes import ExitCode
from campaign_dialer.store import Journal
from campaign_dialer.webhook import verify_signature

from .e2e_support import AGENT, KEY, numbers
from .test_engine import run_engine

E164 = re.compile(r"^\+\d{8,15}$")
TERMINAL = ("completed", "no_answer", "busy", "voicemail", "failed", "canceled")


def envelope(code: str, message: str = "", details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"success": False, "message": message or code,
            "error": {"code": code, "details": details or {}}}


class Vantax:
    """The platform as the contract describes it; faults are popped one per request."""

    def __init__(self, *, final: str = "completed", polls_to_final: int = 2,
                 outcome: str | None = "qualified", page_size: int = 100,
                 send_date: bool = True, honour_filters: bool = True) -> None:
        self.final, self.polls_to_final, self.outcome = final, polls_to_final, outcome
        self.page_size, self.send_date, self.honour_filters = page_size, send_date, honour_filters
        self.calls: dict[str, dict[str, Any]] = {}
        self.polls: dict[str, int] = {}
        self.keys: dict[str, tuple[dict[str, Any], str]] = {}
        self.dnc: set[str] = set()
        self.posts: list[tuple[str, dict[str, Any]]] = []
        self.requests: list[httpx.Request] = []
        self.post_faults: list[str | None] = []
        self.get_faults: list[str | None] = []
        self.list_faults: list[str | None] = []
        self.replay_status = 201
        # How a CALL object goes on the wire (tests bend it: numbers for ids, nulls...).
        self.render: Callable[[dict[str, Any]], dict[str, Any]] = dict
        # A list may give each call's summary only (the contract names the final fields for
        # GET /v1/calls/{id}).
        self.list_render: Callable[[dict[str, Any]], dict[str, Any]] = dict
        self.final_fields: dict[str, Any] = {
            "duration_seconds": 61, "ended_reason": "hangup", "transcript": "Agent: Hi...",
            "recording_url": "https://rec.example/1.mp3",
        }

    # -- helpers ------------------------------------------------------------------------
    def people_rung(self) -> list[str]:
        return [c["to"] for c in self.calls.values()]

    def _resp(self, status: int, body: Any = None, *, text: str | None = None,
              headers: dict[str, str] | None = None) -> httpx.Response:
        h = dict(headers or {})
        if self.send_date:
            h["Date"] = email.utils.formatdate(usegmt=True)
        if text is not None:
            return httpx.Response(status, text=text, headers=h)
        return httpx.Response(status, json=body, headers=h)

    def place(self, body: dict[str, Any], key: str | None = None) -> dict[str, Any]:
        cid = f"call_{len(self.calls) + 1:08x}"
        call = {
            "id": cid, "sub_account_id": "sub_8a1f4c2e", "agent_id": body["agent_id"],
            "contact_id": body.get("contact_id"), "direction": "outbound",
            "status": "initiated", "from": "+18885550199", "to": body.get("phone_number"),
            "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        self.calls[cid] = call
        self.polls[cid] = 0
        if key is not None:
            self.keys[key] = (body, cid)
        return call

    # -- the API --------------------------------------------------------------------------
    def handler(self, req: httpx.Request) -> httpx.Response:
        self.requests.append(req)
        if req.headers.get("Authorization") != f"Bearer {KEY}":
            return self._resp(401, envelope("unauthorized"))
        if req.method == "POST" and req.url.path == "/v1/calls":
            return self._post(req)
        if req.method == "GET" and req.url.path == "/v1/calls":
            return self._list(req)
        if req.method == "GET" and req.url.path.startswith("/v1/calls/"):
            return self._get(req, req.url.path.rsplit("/", 1)[-1])
        return self._resp(404, envelope("not_found"))

    def _fault(self, fault: str | None) -> httpx.Response | None:
        if fault == "429-seconds":
            return self._resp(429, envelope("rate_limited"), headers={"Retry-After": "0.05"})
        if fault == "429-date":  # an HTTP-date a second ago: retry at once
            when = email.utils.formatdate(time.time() - 1, usegmt=True)
            return self._resp(429, envelope("concurrency_limited"), headers={"Retry-After": when})
        if fault == "429-bare":
            return self._resp(429, envelope("rate_limited"))
        if fault == "502-html":
            return self._resp(502, text="<html><body>502 Bad Gateway</body></html>")
        if fault == "503-empty":
            return self._resp(503, text="", headers={"Retry-After": "0"})
        if fault == "500-envelope":
            return self._resp(500, envelope("internal_error"))
        if fault == "409-busy":
            return self._resp(409, envelope("call_in_progress"))
        if fault == "409-in-flight":
            return self._resp(409, envelope("idempotency_conflict"))
        if fault == "401":
            return self._resp(401, envelope("unauthorized"))
        return None

    def _post(self, req: httpx.Request) -> httpx.Response:
        if not req.headers.get("Content-Type", "").startswith("application/json"):
            return self._resp(422, envelope("validation_error", details={"fields": {}}))
        body = json.loads(req.content)
        key = req.headers.get("Idempotency-Key", "")
        self.posts.append((key, body))
        fault = self.post_faults.pop(0) if self.post_faults else None
        early = self._fault(fault)
        if early is not None:
            return early
        fields: dict[str, str] = {}
        if not isinstance(body.get("agent_id"), str):
            fields["agent_id"] = "required"
        if ("contact_id" in body) == ("phone_number" in body):
            fields["contact_id"] = "provide one or the other"
        if "phone_number" in body and not E164.match(str(body["phone_number"])):
            fields["phone_number"] = "not E.164"
        if len(key) > 255:
            fields["Idempotency-Key"] = "too long"
        if fields:
            return self._resp(422, envelope("validation_error", details={"fields": fields}))
        if key and key in self.keys:
            first, cid = self.keys[key]
            if first != body:
                return self._resp(422, envelope("idempotency_mismatch"))
            original = {k: v for k, v in self.calls[cid].items()}
            original.update(status="initiated")  # the original response, not today's state
            return self._resp(self.replay_status, {
                "success": True, "message": "Outbound call initiated",
                "data": self.render(original)})
        if body.get("phone_number") in self.dnc:
            return self._resp(409, envelope("dnc_listed"))
        call = self.place(body, key or None)
        if fault == "drop-after-accept":
            raise httpx.RemoteProtocolError("Server disconnected", request=req)
        if fault == "timeout-after-accept":
            raise httpx.ReadTimeout("read timed out", request=req)
        if fault == "html-after-accept":  # a proxy answered 200 for the platform
            return self._resp(200, text="<html>OK</html>")
        return self._resp(201, {"success": True, "message": "Outbound call initiated",
                                "data": self.render(dict(call))})

    def _get(self, req: httpx.Request, cid: str) -> httpx.Response:
        early = self._fault(self.get_faults.pop(0) if self.get_faults else None)
        if early is not None:
            return early
        call = self.calls.get(cid)
        if call is None:
            return self._resp(404, envelope("call_not_found"))
        self.polls[cid] += 1
        n = self.polls[cid]
        if call["status"] not in TERMINAL:
            if n >= self.polls_to_final:
                call.update(status=self.final, outcome=self.outcome,
                            started_at=call["created_at"], ended_at=call["created_at"],
                            **self.final_fields)
            else:
                call["status"] = ("ringing", "in_progress")[min(n - 1, 1)]
        return self._resp(200, {"success": True, "data": self.render(dict(call))})

    def _list(self, req: httpx.Request) -> httpx.Response:
        fault = self.list_faults.pop(0) if self.list_faults else None
        early = self._fault(fault)
        if early is not None:
            return early
        q = req.url.params
        try:
            limit = int(q.get("limit", "20"))
        except ValueError:
            limit = 0
        if not 1 <= limit <= 100:
            return self._resp(422, envelope("validation_error",
                                            details={"fields": {"limit": "1-100"}}))
        rows = list(self.calls.values())
        if self.honour_filters:
            for name in ("to", "contact_id", "agent_id", "status"):
                if name in q:
                    rows = [c for c in rows if c.get(name) == q[name]]
            if "created_after" in q:
                after = datetime.fromisoformat(q["created_after"].replace("Z", "+00:00"))
                rows = [c for c in rows
                        if datetime.fromisoformat(c["created_at"].replace("Z", "+00:00")) > after]
        start = int(q.get("cursor", "cur_0").removeprefix("cur_"))
        size = min(limit, self.page_size)
        page = rows[start:start + size]
        nxt = f"cur_{start + size}" if start + size < len(rows) else None
        if fault == "data-object":  # a 200 whose list is not where the contract puts it
            return self._resp(200, {"success": True, "data": {"calls": page}, "next_cursor": nxt})
        if fault == "item-without-id":
            page = [{k: v for k, v in self.render(dict(c)).items() if k != "id"} for c in page]
            return self._resp(200, {"success": True, "data": page, "next_cursor": nxt})
        return self._resp(200, {"success": True,
                                "data": [self.list_render(self.render(dict(c))) for c in page],
                                "next_cursor": nxt})


def crashed_intent(phone: str, fake: Vantax | None, *, platform_at: str | None = None
                   ) -> Callable[[Journal], None]:
    """A previous run committed its intent and died; `fake` given: the POST had arrived."""
    def before(j: Journal) -> None:
        key = idempotency_key("e2e", f"tel:{phone}", 1)
        body = {"agent_id": AGENT, "phone_number": phone}
        evidence = {"platform_at": platform_at} if platform_at else {}
        j.record_intent(person=f"tel:{phone}", row=1, attempt=1, idem_key=key, body=body,
                        evidence=evidence, run_id=None)
        if fake is not None:
            fake.place(body, key)
    return before


# -- the happy path, read the contract's way --------------------------------------------------

def test_requests_follow_the_contract_and_each_person_is_rung_once(tmp_path: Path) -> None:
    fake = Vantax()
    phones = numbers(3)
    r = run_engine(tmp_path, fake, phones=phones)
    assert r.outcome.exit_code == ExitCode.OK
    assert sorted(fake.people_rung()) == sorted(phones)
    for req in fake.requests:
        assert req.headers["Authorization"] == f"Bearer {KEY}"
    keys = [k for k, _ in fake.posts]
    assert len(set(keys)) == 3 and all(0 < len(k) <= 255 for k in keys)
    for a in r.journal.attempts():
        assert (a.state, a.status, a.outcome, a.duration_seconds) == (
            "final", "completed", "qualified", 61.0)
    assert {f.disposition for f in r.journal.fates().values()} == {"dialed"}


@pytest.mark.parametrize("final", TERMINAL)
def test_every_documented_terminal_status_ends_the_call(tmp_path: Path, final: str) -> None:
    fake = Vantax(final=final, outcome=None)
    r = run_engine(tmp_path, fake, phones=numbers(1))
    (a,) = r.journal.attempts()
    assert (a.state, a.status, a.error) == ("final", final, None)
    assert len(fake.posts) == 1


# -- POST faults ---------------------------------------------------------------------------

@pytest.mark.parametrize("replay_status", [201, 200])
@pytest.mark.parametrize("fault", ["drop-after-accept", "timeout-after-accept"])
def test_a_post_lost_after_it_was_accepted_is_replayed_and_rings_once(
    tmp_path: Path, fault: str, replay_status: int,
) -> None:
    fake = Vantax()
    fake.replay_status = replay_status
    fake.post_faults = [fault]
    r = run_engine(tmp_path, fake, phones=numbers(1))
    assert len(fake.calls) == 1 and len(fake.posts) == 2
    assert len({k for k, _ in fake.posts}) == 1
    (a,) = r.journal.attempts()
    assert (a.state, a.call_id, a.status) == ("final", "call_00000001", "completed")


@pytest.mark.parametrize("fault", ["429-seconds", "429-date", "429-bare", "502-html",
                                   "503-empty", "500-envelope", "409-busy"])
def test_transient_answers_to_post_are_retried_with_the_same_key(
    tmp_path: Path, fault: str,
) -> None:
    fake = Vantax()
    fake.post_faults = [fault]
    r = run_engine(tmp_path, fake, phones=numbers(1))
    assert r.outcome.exit_code == ExitCode.OK
    assert len(fake.calls) == 1 and len({k for k, _ in fake.posts}) == 1
    assert r.journal.fates()[1].disposition == "dialed"


def test_a_dnc_409_is_rejected_and_never_retried(tmp_path: Path) -> None:
    fake = Vantax()
    phone = numbers(1)[0]
    fake.dnc.add(phone)
    r = run_engine(tmp_path, fake, phones=[phone])
    assert len(fake.posts) == 1 and fake.calls == {}
    f = r.journal.fates()[1]
    assert (f.disposition, f.reason) == ("rejected", "dnc_listed")


def test_a_401_on_a_poll_stops_the_run_with_77(tmp_path: Path) -> None:
    fake = Vantax(polls_to_final=5)
    fake.get_faults = ["401"]
    r = run_engine(tmp_path, fake, phones=numbers(1))
    assert r.outcome.exit_code == ExitCode.NOPERM
    assert len(fake.calls) == 1


@pytest.mark.parametrize("fault", ["429-seconds", "429-date", "429-bare", "502-html",
                                   "503-empty"])
def test_a_poll_that_is_refused_for_a_while_still_reaches_the_final_status(
    tmp_path: Path, fault: str,
) -> None:
    fake = Vantax()
    fake.get_faults = [fault, fault]
    r = run_engine(tmp_path, fake, phones=numbers(1))
    (a,) = r.journal.attempts()
    assert (a.state, a.status) == ("final", "completed")
    assert len(fake.posts) == 1


# -- CALL objects the contract allows -------------------------------------------------------

def test_null_and_missing_optional_fields_are_a_call_without_them(tmp_path: Path) -> None:
    fake = Vantax(outcome=None)
    fake.final_fields = {"duration_seconds": None, "transcript": None}  # no ended_reason...

    def bare(c: dict[str, Any]) -> dict[str, Any]:
        c.pop("ended_at", None)
        c.pop("started_at", None)
        c["contact_id"] = None
        c["surprise"] = {"nested": [1, 2]}
        return c

    fake.render = bare
    r = run_engine(tmp_path, fake, phones=numbers(1))
    (a,) = r.journal.attempts()
    assert (a.state, a.status, a.outcome, a.duration_seconds) == (
        "final", "completed", None, None)
    assert r.journal.fates()[1].disposition == "dialed"


def test_numbers_for_ids_and_durations_are_read_not_refused(tmp_path: Path) -> None:
    """The contract gives `id` as a string (`call_...`); a platform that sends a number
    still placed a call, and that call must be followed, not left unresolved (where the next
    run would have only the platform's idempotency memory between the person and a second
    ring)."""
    fake = Vantax()
    numeric: dict[str, int] = {}

    def as_numbers(c: dict[str, Any]) -> dict[str, Any]:
        c["id"] = numeric.setdefault(c["id"], 9000 + len(numeric))
        if c.get("duration_seconds") is not None:
            c["duration_seconds"] = str(c["duration_seconds"])
        return c

    original = fake._get
    fake.render = as_numbers
    fake._get = lambda req, cid: original(  # type: ignore[method-assign]
        req, next((k for k, v in numeric.items() if str(v) == cid), cid))
    r = run_engine(tmp_path, fake, phones=numbers(1))
    assert len(fake.calls) == 1
    (a,) = r.journal.attempts()
    assert (a.state, a.call_id, a.status, a.duration_seconds) == (
        "final", "9000", "completed", 61.0)


def test_a_transcript_given_as_turns_is_kept_as_json_not_a_python_repr() -> None:
    turns = [{"role": "agent", "text": "Hi"}, {"role": "user", "text": "Hello"}]
    call = Call.from_json({"id": "call_1", "status": "completed", "transcript": turns,
                           "outcome": None})
    assert call.transcript is not None and json.loads(call.transcript) == turns
    assert call.outcome is None


# -- crash recovery through GET /v1/calls ----------------------------------------------------

def test_recovery_finds_the_call_on_the_second_page_and_posts_nothing(tmp_path: Path) -> None:
    phone = numbers(1)[0]
    fake = Vantax(page_size=2, honour_filters=False)
    for other in numbers(2, start=50):  # page 1: other people's calls
        fake.place({"agent_id": AGENT, "phone_number": other})
    r = run_engine(tmp_path, fake, phones=[phone], before=crashed_intent(phone, fake))
    assert fake.posts == []
    (a,) = r.journal.attempts()
    assert (a.state, a.call_id) == ("final", "call_00000003")
    cursors = [x.url.params.get("cursor") for x in fake.requests
               if x.method == "GET" and x.url.path == "/v1/calls"]
    assert "cur_2" in cursors


@pytest.mark.parametrize("fault", ["data-object", "item-without-id"])
def test_a_lookup_answer_that_cannot_be_read_is_not_taken_for_no_call(
    tmp_path: Path, fault: str,
) -> None:
    """The POST had arrived. A list answer we cannot read says nothing about whether the call
    exists: the intent is not replayed (only the platform's idempotency memory would then
    stand between the person and a second call); it waits, unresolved."""
    phone = numbers(1)[0]
    fake = Vantax()
    fake.list_faults = [fault] * 10
    r = run_engine(tmp_path, fake, phones=[phone], before=crashed_intent(phone, fake))
    assert fake.posts == []
    (a,) = r.journal.attempts()
    assert a.state in ("intent", "unresolved")
    assert r.journal.fates()[1].disposition == "pending"


def test_recovery_without_a_date_header_still_finds_the_call(tmp_path: Path) -> None:
    phone = numbers(1)[0]
    fake = Vantax(send_date=False)
    r = run_engine(tmp_path, fake, phones=[phone], before=crashed_intent(phone, fake))
    assert fake.posts == []
    (a,) = r.journal.attempts()
    assert (a.state, a.status) == ("final", "completed")


def test_recovery_with_a_time_bound_the_platform_honours(tmp_path: Path) -> None:
    phone = numbers(1)[0]
    fake = Vantax()
    platform_at = (datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    r = run_engine(tmp_path, fake, phones=[phone],
                   before=crashed_intent(phone, fake, platform_at=platform_at))
    assert fake.posts == []
    lists = [x for x in fake.requests if x.method == "GET" and x.url.path == "/v1/calls"
             and "to" in x.url.params]
    assert lists and all("created_after" in x.url.params for x in lists)
    (a,) = r.journal.attempts()
    assert a.state == "final"


# -- headers and webhooks ------------------------------------------------------------------

@pytest.mark.parametrize(("header", "expected"), [
    ("120", 120.0), ("0.25", 0.25), ("86400", 120.0), ("-3", 0.0), ("soon", None), (None, None),
])
def test_retry_after_in_seconds_huge_negative_junk_or_absent(
    header: str | None, expected: float | None,
) -> None:
    assert parse_retry_after(header) == expected


def test_retry_after_as_an_http_date_is_read_against_the_responses_date() -> None:
    """RFC 9110: an HTTP-date in Retry-After is relative to the response's own `Date`; a
    dialer whose clock runs an hour late must not wait the maximum for a 30-second pause."""
    platform = 1_800_000_000.0
    ours = platform - 3600
    when = email.utils.formatdate(platform + 30, usegmt=True)
    date = email.utils.formatdate(platform, usegmt=True)
    assert parse_retry_after(when, now=ours, date=date) == pytest.approx(30.0, abs=1.0)
    assert parse_retry_after(when, now=platform) == pytest.approx(30.0, abs=1.0)


def test_a_webhook_signed_the_contracts_way_verifies() -> None:
    secret = b"whsec_test"
    body = json.dumps({"event": "call.completed", "created_at": "2026-06-09T17:01:00Z",
                       "data": {"id": "call_1", "status": "completed"}}).encode()
    t = 1_800_000_000
    sig = hmac.new(secret, f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    header = f"t={t},v1={sig}"
    assert verify_signature(header, body, [secret], now=t + 10) is None
    assert verify_signature(header, body, [secret], now=t + 301) is not None  # too old
    assert verify_signature(header, body + b" ", [secret], now=t) is not None


async def _list_all(fake: Vantax, **filters: Any) -> list[str]:
    async with VantaxClient("http://127.0.0.1:9", KEY,
                            transport=httpx.MockTransport(fake.handler)) as c:
        return [x.id async for x in c.list_calls(**filters)]


@pytest.mark.anyio
async def test_list_calls_walks_every_page_with_filters() -> None:
    fake = Vantax(page_size=2)
    for p in numbers(5):
        fake.place({"agent_id": AGENT, "phone_number": p})
    fake.place({"agent_id": "agt_other", "phone_number": numbers(1)[0]})
    assert len(await _list_all(fake, agent_id=AGENT)) == 5
    assert await _list_all(fake, agent_id="agt_other") == ["call_00000006"]


# -- more answers the contract documents -----------------------------------------------------

@pytest.mark.parametrize("fault", ["429-seconds", "429-date", "502-html", "503-empty"])
def test_recovery_asks_again_when_its_lookup_is_refused_for_a_moment(
    tmp_path: Path, fault: str,
) -> None:
    """429 counts GETs too: a lookup refused once (or a proxy's 502) is asked again, so the
    call the crashed run placed is followed in this run, never re-sent."""
    phone = numbers(1)[0]
    fake = Vantax()
    fake.list_faults = [None, fault]  # the first list is the clock probe
    r = run_engine(tmp_path, fake, phones=[phone], before=crashed_intent(phone, fake))
    assert fake.posts == []
    (a,) = r.journal.attempts()
    assert (a.state, a.status, a.call_id) == ("final", "completed", "call_00000001")
    assert r.journal.fates()[1].disposition == "dialed"


def test_recovery_that_is_refused_every_time_leaves_the_intent_open(tmp_path: Path) -> None:
    phone = numbers(1)[0]
    fake = Vantax()
    fake.list_faults = [None] + ["429-seconds"] * 50
    r = run_engine(tmp_path, fake, phones=[phone], before=crashed_intent(phone, fake))
    assert fake.posts == []
    (a,) = r.journal.attempts()
    assert a.state == "intent"
    assert r.journal.fates()[1].disposition == "pending"


def answer_every_post(fake: Vantax, status: int, body: dict[str, Any]) -> None:
    """The fake answers every POST with `status` and `body` (recorded, nothing placed);
    every other request as the contract says."""

    def handler(req: httpx.Request) -> httpx.Response:
        if req.method == "POST":
            fake.posts.append((req.headers["Idempotency-Key"], json.loads(req.content)))
            return fake._resp(status, body)
        return Vantax.handler(fake, req)

    fake.handler = handler  # type: ignore[method-assign]


def test_an_unknown_agent_stops_the_run_with_78_and_nobody_is_rung(tmp_path: Path) -> None:
    fake = Vantax()
    answer_every_post(fake, 404, envelope("agent_not_found"))
    r = run_engine(tmp_path, fake, phones=numbers(3), pacing="calls_per_second = 2")
    assert r.outcome.exit_code == ExitCode.CONFIG
    assert fake.calls == {}
    assert {f.disposition for f in r.journal.fates().values()} == {"pending"}


def test_a_validation_error_is_the_rows_error_with_its_code(tmp_path: Path) -> None:
    fake = Vantax()
    fake.post_faults = []
    answer_every_post(fake, 422, envelope(
        "validation_error", "phone_number must be E.164",
        {"fields": {"phone_number": ["not E.164"]}}))
    r = run_engine(tmp_path, fake, phones=numbers(1))
    assert len(fake.posts) == 1 and fake.calls == {}
    f = r.journal.fates()[1]
    assert (f.disposition, f.reason) == ("error", "validation_error")


def test_a_call_the_platform_does_not_know_yet_is_polled_until_it_does(tmp_path: Path) -> None:
    fake = Vantax()
    fake.get_faults = []
    misses = [2]
    get = fake._get

    def lagging(req: httpx.Request, cid: str) -> httpx.Response:
        if misses[0]:
            misses[0] -= 1
            return fake._resp(404, envelope("call_not_found"))
        return get(req, cid)

    fake._get = lagging  # type: ignore[method-assign]
    r = run_engine(tmp_path, fake, phones=numbers(1))
    (a,) = r.journal.attempts()
    assert (a.state, a.status) == ("final", "completed")
    assert len(fake.posts) == 1


def test_a_403_on_post_stops_the_run_with_77(tmp_path: Path) -> None:
    fake = Vantax()
    answer_every_post(fake, 403, envelope("forbidden"))
    r = run_engine(tmp_path, fake, phones=numbers(3), pacing="calls_per_second = 2")
    assert r.outcome.exit_code == ExitCode.NOPERM
    assert len(fake.posts) == 1
    assert not any(f.disposition == "dialed" for f in r.journal.fates().values())


def test_a_poll_told_to_wait_by_retry_after_waits_that_long(tmp_path: Path) -> None:
    """Polling counts against the same limit as POST: after a 429 with `Retry-After: 1` the
    next GET of the call comes no sooner (a jittered backoff of half a second would not)."""
    fake = Vantax()
    not_before: list[float] = []
    early: list[float] = []
    get = fake._get

    def limited(req: httpx.Request, cid: str) -> httpx.Response:
        now = time.monotonic()
        if not_before and now < not_before[-1]:
            early.append(not_before[-1] - now)
        if not not_before:
            not_before.append(now + 1.0)
            return fake._resp(429, envelope("rate_limited"), headers={"Retry-After": "1"})
        return get(req, cid)

    fake._get = limited  # type: ignore[method-assign]
    r = run_engine(tmp_path, fake, phones=numbers(1))
    assert early == []
    (a,) = r.journal.attempts()
    assert (a.state, a.status) == ("final", "completed")


@pytest.mark.parametrize("faults", [
    ["drop-after-accept", "409-in-flight"],  # the replay meets the original still in flight
    ["html-after-accept"],
    ["timeout-after-accept", "502-html", "429-bare"],
])
def test_a_placed_call_whose_answer_was_lost_is_found_by_its_key_and_rung_once(
    tmp_path: Path, faults: list[str],
) -> None:
    fake = Vantax()
    fake.post_faults = list(faults)
    r = run_engine(tmp_path, fake, phones=numbers(1))
    assert len(fake.calls) == 1 and len({k for k, _ in fake.posts}) == 1
    assert len(fake.posts) == len(faults) + 1
    (a,) = r.journal.attempts()
    assert (a.state, a.call_id, a.status) == ("final", "call_00000001", "completed")


@pytest.mark.anyio
async def test_an_error_that_echoes_the_key_never_carries_it() -> None:
    """A platform (or a proxy) may quote the Authorization header back in its message or
    details; the client's exception text must not carry the secret onward."""
    from campaign_dialer.client import AuthError, ValidationFailed

    def echo(req: httpx.Request) -> httpx.Response:
        said = req.headers["Authorization"]
        if req.method == "POST":
            return httpx.Response(422, json=envelope(
                "validation_error", f"bad request with {said}",
                {"fields": {"header": said}, "seen": [said]}))
        return httpx.Response(401, json=envelope("unauthorized", f"key {said} not valid"))

    async with VantaxClient("http://127.0.0.1:9", KEY,
                            transport=httpx.MockTransport(echo)) as c:
        with pytest.raises(AuthError) as auth:
            await c.get_call("call_1")
        with pytest.raises(ValidationFailed) as invalid:
            await c.place_call({"agent_id": AGENT, "phone_number": "+12125550100"}, "k1")
    for e in (auth.value, invalid.value):
        text = f"{e} {e!r} {e.message} {json.dumps(e.details)}"
        assert KEY not in text


def test_a_call_found_final_by_lookup_is_read_in_full_so_an_opt_out_is_kept(
    tmp_path: Path,
) -> None:
    """The crashed run's call ended while nobody listened, and the person asked not to be
    called again. The list gives the call's summary; its outcome comes from GET, so the
    opt-out reaches the DNC ledger every later campaign obeys."""
    phone = numbers(1)[0]
    fake = Vantax()
    final_keys = ("outcome", "ended_reason", "transcript", "recording_url", "duration_seconds",
                  "started_at", "ended_at")
    fake.list_render = lambda c: {k: v for k, v in c.items() if k not in final_keys}

    def before(j: Journal) -> None:
        crashed_intent(phone, fake)(j)
        (call,) = fake.calls.values()
        call.update(status="completed", outcome="opt_out", ended_reason="customer_hangup",
                    duration_seconds=12, transcript="Please do not call me again.")

    r = run_engine(tmp_path, fake, phones=[phone], before=before)
    assert fake.posts == []
    (a,) = r.journal.attempts()
    assert (a.state, a.status, a.outcome) == ("final", "completed", "opt_out")
    assert phone in (tmp_path / "dnc-ledger.csv").read_text()


@pytest.mark.anyio
async def test_a_list_whose_cursors_never_end_is_no_answer_not_a_hang() -> None:
    from campaign_dialer.client import MAX_LIST_PAGES, UnexpectedResponse

    pages: list[str | None] = []

    def endless(req: httpx.Request) -> httpx.Response:
        pages.append(req.url.params.get("cursor"))
        return httpx.Response(200, json={"success": True, "data": [],
                                         "next_cursor": f"c{len(pages)}"})

    async with VantaxClient("http://127.0.0.1:9", KEY,
                            transport=httpx.MockTransport(endless)) as c:
        with pytest.raises(UnexpectedResponse, match="pages"):
            async for _ in c.list_calls(to="+12125550100"):
                pass
    assert len(pages) == MAX_LIST_PAGES
