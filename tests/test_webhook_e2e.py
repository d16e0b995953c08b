"""End to end: the real CLI with `[webhook]` against a sandbox that delivers signed events.

Judged by the sandbox's audit and plan (what each call really did) and by the dialer's
results and transcripts.parquet: every call finished with its true status, outcome and
transcript, nobody rung twice, whatever the deliveries did.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import time
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from campaign_dialer.sandbox import SandboxConfig, SandboxServer, plan_call

from .e2e_support import (
    KEY,
    CampaignFiles,
    assert_nobody_called_twice,
    numbers,
    popen_cli,
    run_cli,
    wait_for_calls,
    write_campaign,
)

pytestmark = pytest.mark.e2e

SECRET = "whsec_e2e-one-0123456789abcdef"
NEW_SECRET = "whsec_e2e-two-fedcba9876543210"
SEED = 5
PATH = "/hooks/vantax"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def hooked_campaign(
    folder: Path, phones: list[str], port: int, *, reconcile_after_s: float = 1.0,
    secret_env: str = '["VANTAX_WEBHOOK_SECRET"]', max_live: int = 10,
) -> CampaignFiles:
    contacts = [{"phone": p, "name": f"P{i}"} for i, p in enumerate(phones)]
    return write_campaign(
        folder, contacts=contacts,
        api=f"max_live_calls = {max_live}" if max_live != 10 else "",
        extra=f"""
        [webhook]
        host = "127.0.0.1"
        port = {port}
        path = "{PATH}"
        public_url = "https://dialer.example.org{PATH}"
        secret_env = {secret_env}
        reconcile_after_s = {reconcile_after_s}
        """,
    )


def hooked_sandbox(port: int, *, time_scale: float = 0.004, **kw: Any) -> SandboxServer:
    settings: dict[str, Any] = {
        "api_keys": (KEY,), "seed": SEED, "time_scale": time_scale,
        "requests_per_second": 40.0, "max_live_calls": 10,
        "webhook_url": f"http://127.0.0.1:{port}{PATH}", "webhook_secret": SECRET,
    }
    settings.update(kw)
    return SandboxServer(SandboxConfig(**settings))


def call_gets(audit: dict[str, Any]) -> int:
    return sum(1 for r in audit["requests"]
               if r["method"] == "GET" and r["path"].startswith("/v1/calls/"))


def assert_every_call_true(camp: CampaignFiles, audit: dict[str, Any]) -> None:
    """Every placed call is finished in results with the platform's status, outcome and
    transcript; every row was dialed exactly once."""
    assert_nobody_called_twice(audit)
    rows = {r["phone_e164"]: r for r in camp.results()}
    calls = {c["to"]: c for c in audit["calls"]}
    assert set(calls) == set(rows), "every row dialed, nothing else"
    transcripts = pd.read_parquet(camp.out / "transcripts.parquet")
    assert list(transcripts.columns) == ["call_id", "row", "contact", "text"]
    by_call = {t.call_id: t for t in transcripts.itertuples()}
    for to, c in calls.items():
        r = rows[to]
        assert (r["disposition"], r["call_id"]) == ("dialed", c["id"]), r
        assert r["status"] == c["final_status"], (to, r["status"], c["final_status"])
        assert (r["outcome"] or None) == c["outcome"], (to, r["outcome"], c["outcome"])
        assert (r["ended_reason"] or None) == c["ended_reason"]
        expected = plan_call(SEED, to).transcript
        if expected:
            t = by_call[c["id"]]
            assert (t.text, t.contact, int(t.row)) == (expected, to, int(r["row"]))
        else:
            assert c["id"] not in by_call


@pytest.mark.parametrize("faults", [
    {},
    {"webhook_duplicate": 0.5},
    {"webhook_reorder": 0.5},
    {"webhook_delay": 0.3},
    {"webhook_lost": 0.3},
    {"webhook_duplicate": 0.3, "webhook_reorder": 0.3, "webhook_delay": 0.2,
     "webhook_lost": 0.2},
], ids=["clean", "duplicate", "reorder", "delay", "lost", "all"])
def test_webhook_faults_every_call_finished_right_nobody_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, faults: dict[str, float],
) -> None:
    monkeypatch.setenv("VANTAX_WEBHOOK_SECRET", SECRET)
    port = free_port()
    # Without faults every event arrives: a loaded machine delaying one past a 1 s reconcile
    # would make the platform be asked anyway, so the clean run waits longer before polling.
    camp = hooked_campaign(tmp_path, numbers(30), port,
                           reconcile_after_s=1.0 if faults else 10.0)
    with hooked_sandbox(port, faults=faults, webhook_delay_seconds=0.5) as sb:
        proc = run_cli("run", str(camp.path), "--base-url", sb.url)
        audit = sb.audit()
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert_every_call_true(camp, audit)
    if not faults:  # the report's rows show the start of each transcript
        from campaign_dialer import report
        from campaign_dialer.config import load_campaign

        df = report.load(load_campaign(camp.path)).df
        shown = dict(zip(df["call_id"], df["transcript_excerpt"], strict=True))
        assert any(isinstance(v, str) and v for v in shown.values())
        for c in audit["calls"]:
            text = plan_call(SEED, c["to"]).transcript
            if text:
                assert shown[c["id"]] == " ".join(text.split())[:200]
            else:
                assert pd.isna(shown[c["id"]])
    hooks = audit["webhooks"]
    answered = [h for h in hooks if h["response_status"] is not None]
    # (A delivery may find nobody listening once the run is over: the platform gives up.)
    assert answered and all(h["response_status"] == 200 for h in answered), "none refused"
    if not faults:
        # Webhooks finish the calls: the platform is not asked about them.
        assert call_gets(audit) / len(audit["calls"]) < 0.2, call_gets(audit)
    if faults.get("webhook_lost"):
        lost_finals = {h["call_id"] for h in hooks if h["lost"] and h["event"] == "call.completed"}
        assert lost_finals, "the fault fired (seeded)"
        # Every call still finished (above): the reconciliation poll asked about it.
        assert call_gets(audit) >= 1


def test_forged_and_stale_deliveries_are_refused_and_change_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VANTAX_WEBHOOK_SECRET", SECRET)
    port = free_port()
    # Slow calls (about 2-6 s each) so the run is still live while the test knocks.
    camp = hooked_campaign(tmp_path, numbers(12), port, reconcile_after_s=60.0)
    url = f"http://127.0.0.1:{port}{PATH}"
    with hooked_sandbox(port, time_scale=0.02) as sb:
        proc = popen_cli("run", str(camp.path), "--base-url", sb.url)
        try:
            wait_for_calls(sb, 3)
            victim = sb.audit()["calls"][0]
            forged = json.dumps({
                "event": "call.completed", "created_at": "2026-06-09T17:00:00Z",
                "data": {"id": victim["id"], "status": "completed", "outcome": "FORGED-MARKER",
                         "transcript": "FORGED-MARKER"},
            }).encode()
            now = int(time.time())
            answers = {}
            with httpx.Client(trust_env=False, timeout=5) as http:
                def post(sig: str | None, body: bytes = forged) -> int:
                    headers = {"Content-Type": "application/json"}
                    if sig is not None:
                        headers["Vantax-Signature"] = sig
                    return http.post(url, content=body, headers=headers).status_code

                answers["no signature"] = post(None)
                answers["wrong secret"] = post(sign("not-the-secret", now, forged))
                answers["garbage"] = post("t=abc,v1=zz")
                answers["stale"] = post(sign(SECRET, now - 301, forged))
                # a minute past the 5-minute tolerance: the knocks above may take seconds
                # under load, and a "future" stamp gets nearer the tolerance as time passes
                answers["future"] = post(sign(SECRET, int(time.time()) + 360, forged))
                tampered = sign(SECRET, now, forged)
                answers["tampered body"] = post(tampered, forged.replace(b"FORGED", b"FARGED"))
                other = json.dumps({"event": "agent.updated", "data": {}}).encode()
                answers["unknown event type"] = post(sign(SECRET, now, other), other)
                stranger = json.dumps({"event": "call.completed", "data": {
                    "id": "call_of_another_campaign", "status": "completed"}}).encode()
                answers["unknown call"] = post(sign(SECRET, now, stranger), stranger)
                # Correctly signed, valid JSON, but not an object: the contract's body is one.
                listed = json.dumps([json.loads(forged)]).encode()
                answers["signed array"] = post(sign(SECRET, now, listed), listed)
                answers["signed string"] = post(sign(SECRET, now, b'"call.completed"'),
                                                b'"call.completed"')
            out, err = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
        audit = sb.audit()
    assert proc.returncode == 0, err[-3000:]
    assert answers == {
        "no signature": 401, "wrong secret": 401, "garbage": 401, "stale": 401,
        "future": 401, "tampered body": 401, "unknown event type": 200, "unknown call": 200,
        "signed array": 400, "signed string": 400,
    }
    assert "FORGED-MARKER" not in err + out, "a refused body is never logged"
    assert "webhook_refused" in err
    assert_every_call_true(camp, audit)  # the forged "completed" changed nothing
    journal = (camp.out / "e2e.journal.sqlite").read_bytes()
    assert b"FORGED-MARKER" not in journal and b"call_of_another_campaign" not in journal


def test_secret_rotated_mid_run_loses_no_event(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WEBHOOK_SECRET_OLD", SECRET)
    monkeypatch.setenv("WEBHOOK_SECRET_NEW", NEW_SECRET)
    port = free_port()
    camp = hooked_campaign(
        tmp_path, numbers(30), port, reconcile_after_s=60.0,
        secret_env='["WEBHOOK_SECRET_NEW", "WEBHOOK_SECRET_OLD"]',
    )
    with hooked_sandbox(port, time_scale=0.01) as sb:
        proc = popen_cli("run", str(camp.path), "--base-url", sb.url)
        try:
            wait_for_calls(sb, 8)
            sb.set_webhook_secret(NEW_SECRET)  # the platform rotates: new events, new secret
            rotated_at = len(sb.audit()["webhooks"])
            out, err = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
        audit = sb.audit()
    assert proc.returncode == 0, err[-3000:]
    hooks = audit["webhooks"]
    assert len(hooks) > rotated_at + 10, "events signed with both secrets were delivered"
    assert all(h["response_status"] in (200, None) for h in hooks), "no delivery refused"
    assert_every_call_true(camp, audit)
    # No event lost, so no call needed the reconciliation poll (60 s, longer than the run).
    assert call_gets(audit) == 0


def test_missing_secret_or_secret_in_file_is_78(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("VANTAX_WEBHOOK_SECRET", raising=False)
    camp = hooked_campaign(tmp_path / "a", numbers(2), free_port())
    proc = run_cli("run", str(camp.path))
    assert proc.returncode == 78, proc.stderr
    assert "webhook.secret_env" in proc.stderr and "VANTAX_WEBHOOK_SECRET" in proc.stderr
    assert not (camp.out / "e2e.journal.sqlite").exists()

    camp = write_campaign(tmp_path / "b", contacts=[{"phone": numbers(1)[0]}], extra=f"""
        [webhook]
        secret = "{SECRET}"
        """)
    proc = run_cli("run", str(camp.path))
    assert proc.returncode == 78, proc.stderr
    assert "webhook.secret" in proc.stderr and SECRET not in proc.stderr + proc.stdout


def sign(secret: str, t: int, body: bytes) -> str:
    """Written here, not imported from the sandbox or the dialer: a third opinion."""
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def test_killed_mid_run_the_rerun_finishes_calls_from_committed_events(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VANTAX_WEBHOOK_SECRET", SECRET)
    port = free_port()
    camp = hooked_campaign(tmp_path, numbers(30), port, reconcile_after_s=60.0)
    with hooked_sandbox(port, time_scale=0.01) as sb:
        proc = popen_cli("run", str(camp.path), "--base-url", sb.url)
        try:
            wait_for_calls(sb, 15)
        finally:
            proc.kill()  # SIGKILL: no grace, no cleanup
            proc.communicate(timeout=30)
        time.sleep(1.0)  # the calls it left live end; their events find nobody listening
        again = run_cli("run", str(camp.path), "--base-url", sb.url)
        audit = sb.audit()
    assert again.returncode == 0, again.stderr[-3000:]
    assert_every_call_true(camp, audit)


def test_a_port_already_taken_is_78_before_anything_is_dialed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VANTAX_WEBHOOK_SECRET", SECRET)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = int(taken.getsockname()[1])
        camp = hooked_campaign(tmp_path, numbers(3), port)
        with hooked_sandbox(free_port()) as sb:
            proc = run_cli("run", str(camp.path), "--base-url", sb.url)
            audit = sb.audit()
    assert proc.returncode == 78, proc.stderr
    assert "webhook.port" in proc.stderr and f"127.0.0.1:{port}" in proc.stderr
    assert audit["calls"] == [] and audit["requests"] == []
