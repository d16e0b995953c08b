"""The command line, the data file, the audit file and signed webhooks."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from campaign_dialer.sandbox import SandboxServer, SubAccountData, sign_webhook
from campaign_dialer.sandbox.cli import main

from ._support import AGENT, KEY, auth, client_for, fresh_number

REPO = Path(__file__).resolve().parents[2]
LINE = re.compile(r"^sandbox listening on http://127\.0\.0\.1:(\d+)$")


# ---- CLI ------------------------------------------------------------------------------------


def start_cli(args: list[str], env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str],
                                                                            str]:
    full_env = {**os.environ, **(env or {})}
    full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO),
                                                           full_env.get("PYTHONPATH")]))
    proc = subprocess.Popen(
        [sys.executable, "-m", "campaign_dialer.sandbox", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=full_env,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: lines.put(proc.stdout.readline() if proc.stdout else ""),
                     daemon=True).start()
    try:
        line = lines.get(timeout=30)
    except queue.Empty:
        proc.kill()
        raise AssertionError("the sandbox printed nothing within 30 s") from None
    return proc, line.rstrip("\n")


@pytest.mark.sandbox
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
def test_cli_serves_and_writes_the_audit(tmp_path: Path, sig: signal.Signals) -> None:
    audit = tmp_path / "audit.json"
    proc, line = start_cli(["--port", "0", "--key", KEY, "--seed", "4", "--rps", "50",
                            "--fault", "unknown_fields=0", "--audit-out", str(audit)])
    try:
        match = LINE.match(line)
        assert match, line
        url = f"http://127.0.0.1:{match.group(1)}"
        r = httpx.post(f"{url}/v1/calls", json={"agent_id": AGENT, "phone_number": "+12065550123"},
                       headers=auth(), trust_env=False)
        assert r.status_code == 201
    finally:
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert out == ""  # exactly the one line, already read
    saved = json.loads(audit.read_text())
    assert len(saved["requests"]) == 1 and len(saved["calls"]) == 1
    assert KEY not in audit.read_text()


@pytest.mark.sandbox
def test_cli_takes_the_key_from_the_environment(tmp_path: Path) -> None:
    proc, line = start_cli(["--port", "0"], env={"VANTAX_API_KEY": "vx_test_fromenv12345"})
    try:
        url = "http://127.0.0.1:" + LINE.match(line).group(1)  # type: ignore[union-attr]
        ok = httpx.get(f"{url}/v1/calls", headers=auth("vx_test_fromenv12345"), trust_env=False)
        bad = httpx.get(f"{url}/v1/calls", headers=auth(KEY), trust_env=False)
        assert (ok.status_code, bad.status_code) == (200, 401)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert proc.returncode == 0


@pytest.mark.sandbox
def test_cli_idempotency_ttl_makes_the_platform_forget_keys(tmp_path: Path) -> None:
    proc, line = start_cli(["--port", "0", "--key", KEY, "--idempotency-ttl", "0.3"])
    try:
        url = "http://127.0.0.1:" + LINE.match(line).group(1)  # type: ignore[union-attr]
        body = {"agent_id": AGENT, "phone_number": "+12065550124"}
        headers = {**auth(), "Idempotency-Key": "k-ttl-1"}
        first = httpx.post(f"{url}/v1/calls", json=body, headers=headers, trust_env=False)
        replay = httpx.post(f"{url}/v1/calls", json=body, headers=headers, trust_env=False)
        time.sleep(0.6)
        later = httpx.post(f"{url}/v1/calls", json=body, headers=headers, trust_env=False)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert first.status_code == 201, first.text
    assert replay.json()["data"]["id"] == first.json()["data"]["id"], replay.text
    assert later.status_code == 201 and later.json()["data"]["id"] != first.json()["data"]["id"]
    assert main(["--key", KEY, "--idempotency-ttl", "nan"]) == 78


def test_cli_refuses_non_loopback_and_missing_key(monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("VANTAX_API_KEY", raising=False)
    assert main(["--host", "0.0.0.0", "--key", KEY]) == 64
    assert "loopback" in capsys.readouterr().err
    assert main(["--port", "0"]) == 64
    assert "VANTAX_API_KEY" in capsys.readouterr().err
    assert main(["--key", KEY, "--fault", "gremlins=0.5"]) == 78
    assert "unknown fault" in capsys.readouterr().err
    assert main(["--key", KEY, "--fault", "slow"]) == 78
    assert main(["--bogus"]) == 64


def test_server_refuses_non_loopback() -> None:
    with pytest.raises(ValueError, match="loopback"):
        SandboxServer(host="0.0.0.0")
    with pytest.raises(ValueError, match="loopback"):
        SandboxServer(host="10.1.2.3")


# ---- data -----------------------------------------------------------------------------------


def test_default_data_has_the_documented_records() -> None:
    data = SubAccountData.generate(0)
    assert data.agents["agt_3d9b21"].outbound_phone_number_id == "pn_55ad12"
    assert data.phone_numbers["pn_55ad12"].number == "+18885550199"
    assert data.contacts["ct_9d12fa"].phone_number == "+14155550188"
    assert len(data.contacts) >= 6
    assert SubAccountData.generate(3).to_json() == SubAccountData.generate(3).to_json()
    assert SubAccountData.from_json(data.to_json()).to_json() == data.to_json()


def test_bad_data_is_refused_at_start() -> None:
    good = SubAccountData.generate(0).to_json()
    broken = {**good, "agents": [{"id": "agt_x", "outbound_phone_number_id": "pn_missing"}]}
    with pytest.raises(ValueError, match="outbound number"):
        SubAccountData.from_json(broken)
    with pytest.raises(ValueError, match="E.164"):
        SubAccountData.from_json({**good, "dnc": ["4155550100"]})
    with pytest.raises(ValueError, match="missing"):
        SubAccountData.from_json({"agents": []})


@pytest.mark.sandbox
def test_data_file(make_sandbox: Callable[..., SandboxServer], tmp_path: Path) -> None:
    path = tmp_path / "data.json"
    path.write_text(json.dumps({
        "sub_account_id": "sub_custom01",
        "phone_numbers": [{"id": "pn_aaaa01", "number": "+18005550100"}],
        "agents": [{"id": "agt_custom", "name": "C", "outbound_phone_number_id": "pn_aaaa01"}],
        "contacts": [{"id": "ct_custom", "phone_number": "+13035550111"}],
        "dnc": ["+13035550199"],
    }))
    sb = make_sandbox(data_file=path, requests_per_second=None)
    with client_for(sb) as c:
        r = c.post("/v1/calls", json={"agent_id": "agt_custom", "contact_id": "ct_custom"})
        assert r.status_code == 201
        assert r.json()["data"]["sub_account_id"] == "sub_custom01"
        assert r.json()["data"]["from"] == "+18005550100"
        r = c.post("/v1/calls", json={"agent_id": "agt_custom", "phone_number": "+13035550199"})
        assert r.json()["error"]["code"] == "dnc_listed"
        r = c.post("/v1/calls", json={"agent_id": AGENT, "phone_number": fresh_number()})
        assert r.json()["error"]["code"] == "agent_not_found"


# ---- webhooks -------------------------------------------------------------------------------


class Receiver:
    """A loopback webhook endpoint that keeps what it was sent."""

    def __init__(self) -> None:
        self.received: list[tuple[str, bytes]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.received.append((self.headers["Vantax-Signature"], body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in self.received]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()
    r.server.server_close()


def verify(secret: str, header: str, body: bytes) -> bool:
    parts = dict(item.split("=", 1) for item in header.split(","))
    expected = hmac.new(secret.encode(), f"{parts['t']}.".encode() + body,
                        hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts["v1"]) and abs(time.time() - int(parts["t"])) < 300


def wait_for(predicate: Callable[[], bool], limit: float = 20.0) -> None:
    deadline = time.monotonic() + limit
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.05)


@pytest.mark.sandbox
def test_webhooks_are_signed_and_complete(make_sandbox: Callable[..., SandboxServer],
                                          receiver: Receiver) -> None:
    secret = "whsec_test_0001"
    sb = make_sandbox(webhook_url=receiver.url, webhook_secret=secret, requests_per_second=None)
    with client_for(sb) as c:
        call_id = c.post("/v1/calls", json={"agent_id": AGENT, "phone_number": fresh_number()}
                         ).json()["data"]["id"]
    wait_for(lambda: any(e["event"] == "call.completed" for e in receiver.events()))
    assert all(verify(secret, header, body) for header, body in receiver.received)
    assert not verify("wrong", *receiver.received[0])
    events = receiver.events()
    planned = sb.audit()["calls"][0]["statuses"]
    changes = [e["data"]["status"] for e in events if e["event"] == "call.status_changed"]
    assert changes == planned  # in order by default, one per status
    completed = [e for e in events if e["event"] == "call.completed"]
    assert len(completed) == 1 and completed[0]["data"]["id"] == call_id
    assert completed[0]["data"]["status"] == planned[-1]
    assert completed[0]["data"]["ended_at"] is not None
    assert all(e["created_at"].endswith("Z") for e in events)
    assert all(d["delivered"] for d in sb.audit()["webhooks"])


@pytest.mark.sandbox
def test_webhooks_duplicate_and_reorder(make_sandbox: Callable[..., SandboxServer],
                                        receiver: Receiver) -> None:
    sb = make_sandbox(webhook_url=receiver.url, webhook_secret="s3cret", requests_per_second=None,
                      faults={"webhook_duplicate": 1.0, "webhook_reorder": 0.5}, seed=2)
    with client_for(sb) as c:
        c.post("/v1/calls", json={"agent_id": AGENT, "phone_number": fresh_number()})
    planned = sb.audit()["calls"][0]["statuses"]
    expected = 2 * (len(planned) + 1)  # every status change plus call.completed, twice each
    wait_for(lambda: len(receiver.received) >= expected)
    events = receiver.events()
    assert len(events) == expected
    # the sandbox logs a delivery after its receiver answered: wait for the log to catch up
    wait_for(lambda: len(sb.audit()["webhooks"]) >= expected)
    log = sb.audit()["webhooks"]
    assert sum(d["duplicate"] for d in log) == expected // 2
    assert any(d["reordered"] for d in log)


@pytest.mark.sandbox
def test_webhooks_lost_delayed_and_rotated(make_sandbox: Callable[..., SandboxServer],
                                           receiver: Receiver) -> None:
    sb = make_sandbox(webhook_url=receiver.url, webhook_secret="old-secret",
                      requests_per_second=None, webhook_delay_seconds=0.3, seed=4,
                      faults={"webhook_lost": 0.3, "webhook_delay": 0.3})
    with client_for(sb) as c:
        for _ in range(6):
            c.post("/v1/calls", json={"agent_id": AGENT, "phone_number": fresh_number()})
        planned = sum(len(call["statuses"]) + 1 for call in sb.audit()["calls"])
        wait_for(lambda: len(sb.audit()["webhooks"]) >= planned)
        sb.set_webhook_secret("new-secret")
        c.post("/v1/calls", json={"agent_id": AGENT, "phone_number": fresh_number()})
        planned += len(sb.audit()["calls"][-1]["statuses"]) + 1
        wait_for(lambda: len(sb.audit()["webhooks"]) >= planned)
    log = sb.audit()["webhooks"]
    lost = [d for d in log if d["lost"]]
    assert lost and all(not d["delivered"] and d["attempts"] == 0 for d in lost)
    assert any(d["delayed"] and d["delivered"] for d in log)
    assert len(receiver.received) == len(log) - len(lost)  # lost ones never reach it
    last = receiver.received[-1]
    assert verify("new-secret", *last) and not verify("old-secret", *last)
    assert verify("old-secret", *receiver.received[0])


def test_sign_webhook_matches_the_contract() -> None:
    body = b'{"event":"call.completed"}'
    digest = hmac.new(b"k", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert sign_webhook("k", 1700000000, body) == f"t=1700000000,v1={digest}"


def test_webhook_url_must_be_loopback() -> None:
    from campaign_dialer.sandbox import SandboxConfig

    with pytest.raises(ValueError, match="loopback"):
        SandboxConfig(webhook_url="https://example.com/hook", webhook_secret="x")
    with pytest.raises(ValueError, match="secret"):
        SandboxConfig(webhook_url="http://127.0.0.1:9/hook")
