"""The webhook receiver on its own: signatures, dedupe, unknown calls, commit before answer."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from campaign_dialer.config import ConfigError, load_campaign
from campaign_dialer.store import Journal
from campaign_dialer.webhook import JournalSink, Receiver, WebhookEvent, verify_signature

from .e2e_support import write_campaign

SECRET = "whsec_unit-0123456789"


def sign(secret: str, t: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


@settings(max_examples=200, deadline=None)
@given(body=st.binary(max_size=512), secret=st.text(min_size=1, max_size=40),
       skew=st.integers(-300, 300))
def test_a_signed_body_verifies_and_any_change_does_not(
    body: bytes, secret: str, skew: int
) -> None:
    now = 1_780_000_000
    header = sign(secret, now + skew, body)
    assert verify_signature(header, body, [secret.encode()], now=now) is None
    assert verify_signature(header, body + b"x", [secret.encode()], now=now) == "bad_signature"
    assert verify_signature(header, body, [secret.encode() + b"x"], now=now) == "bad_signature"
    # any other secret among several still verifies it: rotation
    assert verify_signature(header, body, [b"old", secret.encode()], now=now) is None


@given(skew=st.integers(301, 10**7), sign_=st.sampled_from([1, -1]))
def test_a_signature_more_than_five_minutes_off_is_stale(skew: int, sign_: int) -> None:
    now = 1_780_000_000
    header = sign(SECRET, now + sign_ * skew, b"{}")
    assert verify_signature(header, b"{}", [SECRET.encode()], now=now) == "stale_signature"


@given(header=st.text(max_size=200))
def test_any_header_is_an_answer_never_an_exception(header: str) -> None:
    assert verify_signature(header, b"{}", [SECRET.encode()], now=time.time()) is not None


class MemorySink:
    def __init__(self) -> None:
        self.events: dict[tuple[str, str, str], WebhookEvent] = {}

    def add(self, event: WebhookEvent) -> bool:
        key = (event.call_id, event.event, event.status)
        if key in self.events:
            return False
        self.events[key] = event
        return True


def event_body(call_id: str, status: str, event: str = "call.status_changed") -> bytes:
    return json.dumps({"event": event, "created_at": "2026-06-09T17:00:00Z",
                       "data": {"id": call_id, "status": status}}).encode()


async def deliver(app: Receiver, body: bytes, *, secret: str = SECRET, t: int | None = None,
                  path: str = "/webhooks/vantax") -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://dialer") as http:
        sig = sign(secret, int(time.time()) if t is None else t, body)
        return await http.post(path, content=body, headers={"Vantax-Signature": sig})


def test_known_call_committed_once_unknown_call_held_then_adopted() -> None:
    async def main() -> dict[str, Any]:
        sink = MemorySink()
        app = Receiver(secrets=[SECRET], sink=sink)
        await app.watch("call_a")
        armed = app.arm("call_a")
        first = await deliver(app, event_body("call_a", "ringing"))
        again = await deliver(app, event_body("call_a", "ringing"))
        early = await deliver(app, event_body("call_b", "completed", "call.completed"))
        before = dict(sink.events)
        await app.watch("call_b")  # the engine learns call_b's id: the early event is kept
        return {"first": first.json(), "again": again.json(), "early": early.json(),
                "woken": armed.is_set(), "before": before, "after": dict(sink.events)}

    out = anyio.run(main)
    assert out["first"] == {"ok": True, "duplicate": False} and out["woken"]
    assert out["again"] == {"ok": True, "duplicate": True}
    assert out["early"] == {"ok": True, "known": False}
    assert ("call_b", "call.completed", "completed") not in out["before"]
    assert ("call_b", "call.completed", "completed") in out["after"]


def test_an_event_with_a_numeric_call_id_reaches_the_call_the_client_follows() -> None:
    """The client follows a whole-number id as its digits; its events must reach that call."""
    async def main() -> dict[str, Any]:
        sink = MemorySink()
        app = Receiver(secrets=[SECRET], sink=sink)
        await app.watch("4711")
        body = json.dumps({"event": "call.completed", "created_at": "2026-06-09T17:00:00Z",
                           "data": {"id": 4711, "status": "completed"}}).encode()
        flag = json.dumps({"event": "call.completed", "data": {"id": True}}).encode()
        return {"ok": (await deliver(app, body)).json(),
                "bool": (await deliver(app, flag)).status_code, "events": list(sink.events)}

    out = anyio.run(main)
    assert out["ok"] == {"ok": True, "duplicate": False}
    assert out["events"] == [("4711", "call.completed", "completed")]
    assert out["bool"] == 400


def test_refusals_and_ignored_events() -> None:
    async def main() -> list[int]:
        sink = MemorySink()
        app = Receiver(secrets=[SECRET, "whsec_next"], sink=sink)
        await app.watch("call_a")
        body = event_body("call_a", "completed", "call.completed")
        codes = [
            (await deliver(app, body, secret="whsec_wrong")).status_code,
            (await deliver(app, body, t=int(time.time()) - 301)).status_code,
            (await deliver(app, body, path="/elsewhere")).status_code,
            (await deliver(app, b"not json")).status_code,
            (await deliver(app, json.dumps({"event": "agent.updated"}).encode())).status_code,
            (await deliver(app, body, secret="whsec_next")).status_code,
        ]
        assert list(sink.events) == [("call_a", "call.completed", "completed")]
        return codes

    assert anyio.run(main) == [401, 401, 404, 400, 200, 200]


@pytest.mark.parametrize("doc", [
    [{"event": "call.completed", "data": {"id": "call_a", "status": "completed"}}],
    [], "call.completed", 42, None, True,
])
def test_a_signed_body_that_is_not_an_object_is_400_like_one_that_is_not_json(doc: Any) -> None:
    """The contract's body is a JSON object: an array or a bare value, correctly signed, is
    refused as unreadable (400), never acknowledged with a 200 that the platform takes as
    delivered, and nothing reaches the journal."""
    async def main() -> tuple[int, dict[str, Any], dict[str, int], int]:
        sink = MemorySink()
        app = Receiver(secrets=[SECRET], sink=sink)
        await app.watch("call_a")
        r = await deliver(app, json.dumps(doc).encode())
        return r.status_code, r.json(), dict(app.counts), len(sink.events)

    code, answer, counts, committed = anyio.run(main)
    assert (code, answer) == (400, {"error": "not_json"})
    assert counts == {"unreadable": 1} and committed == 0


def test_journal_sink_dedupes_by_call_event_and_status(tmp_path: Path) -> None:
    with Journal(tmp_path / "j.sqlite", "c") as j:
        sink = JournalSink(j)
        ev = WebhookEvent("call.completed", "call_a", "completed", {"id": "call_a"}, "x")
        assert sink.add(ev) is True
        assert sink.add(ev) is False
        assert [e["status"] for e in j.webhook_events("call_a")] == ["completed"]
        assert j.webhook_events("call_other") == []


def test_webhook_section_names_variables_never_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    def camp(block: str) -> Path:
        folder = tmp_path / str(abs(hash(block)))
        return write_campaign(folder, contacts=[{"phone": "+12125550100"}], extra=block).path

    for bad in ('secret_env = "whsec_abc123"', 'secret_env = "Ab3dEf6hIj9kLm2nOp5qRs8t"',
                'secret_env = []', 'secret_env = "not a name"', 'port = 70000',
                'path = "hooks"'):
        with pytest.raises(ConfigError) as e:
            load_campaign(camp(f"[webhook]\n{bad}\n"))
        assert e.value.exit_code == 78 and "webhook." in str(e.value)
        assert "whsec_abc123" not in str(e.value)
    ok = load_campaign(camp('[webhook]\nsecret_env = ["HOOK_NEW", "HOOK_OLD"]\n'))
    monkeypatch.delenv("HOOK_NEW", raising=False)
    monkeypatch.setenv("HOOK_OLD", "s1")
    assert ok.webhook_secrets() == ["s1"]  # a rotation half done: the one set is used
    monkeypatch.delenv("HOOK_OLD")
    with pytest.raises(ConfigError, match="webhook.secret_env"):
        ok.webhook_secrets()


def test_engine_waits_for_call_completed_and_never_moves_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A final `call.status_changed` without the transcript, then `call.completed` with it,
    then a stale `in_progress`: the call ends completed, with the transcript, never polled."""
    import socket
    import threading

    from .e2e_support import numbers
    from .test_engine import FakePlatform, run_engine

    monkeypatch.setenv("VANTAX_WEBHOOK_SECRET", SECRET)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/webhooks/vantax"
    answers: list[int] = []

    def platform_side(_n: int) -> None:
        def send() -> None:
            call = {"id": "call_0001", "to": phone, "status": "ringing"}
            steps = [
                ("call.status_changed", {**call, "status": "ringing"}, 0.2),
                ("call.status_changed", {**call, "status": "completed", "outcome": "qualified",
                                         "ended_reason": "agent_hangup"}, 0.1),
                ("call.completed", {**call, "status": "completed", "outcome": "qualified",
                                    "ended_reason": "agent_hangup", "transcript": "Hello.",
                                    "recording_url": "https://rec.example/1.mp3"}, 0.3),
                ("call.status_changed", {**call, "status": "in_progress"}, 0.0),
            ]
            with httpx.Client(trust_env=False, timeout=5) as http:
                for event, data, pause in steps:
                    time.sleep(pause)
                    body = json.dumps({"event": event, "data": data}).encode()
                    try:
                        answers.append(http.post(url, content=body, headers={
                            "Vantax-Signature": sign(SECRET, int(time.time()), body)}
                        ).status_code)
                    except httpx.HTTPError:
                        answers.append(0)  # the run is over: nobody listens any more

        threading.Thread(target=send, daemon=True).start()

    (phone,) = numbers(1)
    platform = FakePlatform(polls_to_final=10**6, on_post=platform_side)
    r = run_engine(tmp_path, platform, phones=[phone], extra=f"""
        [webhook]
        port = {port}
        reconcile_after_s = 60
        """)
    assert r.outcome.exit_code == 0
    (a,) = r.journal.attempts()
    assert (a.state, a.status, a.outcome, a.ended_reason, a.recording_url) == (
        "final", "completed", "qualified", "agent_hangup", "https://rec.example/1.mp3")
    assert r.journal.transcripts() == [
        {"call_id": "call_0001", "row": 1, "person": a.person, "text": "Hello."}]
    assert platform.calls["call_0001"]["polls"] == 0  # finished by events alone
    assert answers[:3] == [200, 200, 200]
