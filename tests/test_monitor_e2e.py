"""End to end: `run --serve` against the sandbox, judged by the sandbox's audit.

/metrics is scraped while the run dials and parsed with prometheus_client's own parser; once
every call has ended, its counters equal what the platform saw: calls placed, finals by
status, every request by method and code (the 409s included).
"""

from __future__ import annotations

import json
import signal
import socket
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from campaign_dialer.sandbox import SandboxConfig, SandboxServer

from .e2e_support import AGENT, KEY, numbers, popen_cli, run_cli, write_campaign

pytestmark = pytest.mark.e2e

HAWAII = "+18085550123"  # 07:00 there at the test clock: waits for its window (with --wait)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sandbox(**kw: Any) -> SandboxServer:
    settings: dict[str, Any] = {
        "api_keys": (KEY,), "seed": 4, "time_scale": 0.004, "requests_per_second": 40.0,
        "max_live_calls": 10,
    }
    settings.update(kw)
    return SandboxServer(SandboxConfig(**settings))


def get(url: str, timeout: float = 5.0) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def scrape(base: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]] | None:
    """name -> {labels: value} of every sample; None while nothing listens."""
    try:
        status, headers, body = get(base + "/metrics", timeout=2.0)
    except OSError:
        return None
    assert status == 200, body[:300]
    assert headers["content-type"].startswith("text/plain"), headers
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for fam in text_string_to_metric_families(body.decode()):
        for s in fam.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def by(samples: dict[tuple[tuple[str, str], ...], float], label: str) -> dict[str, float]:
    got: Counter[str] = Counter()
    for labels, v in samples.items():
        got[dict(labels)[label]] += v
    return {k: v for k, v in got.items() if v}


def wait_until_serving(base: str, proc: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while scrape(base) is None:
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "the run never served /metrics"
        time.sleep(0.05)


def test_metrics_scraped_during_a_run_equal_the_sandbox_audit(tmp_path: Path) -> None:
    phones = numbers(24)
    dnc = phones[5]  # the platform's own list: 409 dnc_listed
    contacts = [{"phone": p, "name": f"P{i}"} for i, p in enumerate([*phones, HAWAII])]
    camp = write_campaign(tmp_path, contacts=contacts, name="metrics-e2e",
                          pacing="calls_per_second = 8", api="max_live_calls = 6")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with sandbox() as sb:
        sb.add_dnc(dnc)
        proc = popen_cli("run", str(camp.path), "--base-url", sb.url, "--wait",
                         "--serve", f"127.0.0.1:{port}")
        try:
            wait_until_serving(base, proc)
            status, _, body = get(base + "/healthz")
            assert (status, body) == (200, b"ok\n")
            live_seen: list[float] = []
            deadline = time.monotonic() + 90
            while True:
                assert proc.poll() is None, proc.communicate()[1][-3000:]
                assert time.monotonic() < deadline, "the calls never all ended"
                m = scrape(base)
                assert m is not None
                assert m["dialer_up"] == {(("campaign", "metrics-e2e"),): 1.0}
                live_seen.append(sum(m["dialer_live_calls"].values()))
                audit = sb.audit()
                finals = sum(m.get("dialer_calls_final_total", {}).values())
                # The rows' fates are read from the journal (a second or so behind).
                fates = by(m["dialer_rows"], "disposition")
                if (len(audit["calls"]) == len(phones) - 1
                        and all(c["ended"] for c in audit["calls"])
                        and finals == len(audit["calls"])
                        and fates.get("dialed") == finals
                        and sum(live_seen[-1:]) == 0):
                    break
                time.sleep(0.1)
            audit = sb.audit()
            m = scrape(base)
            assert m is not None
        finally:
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-3000:]
    assert max(live_seen) >= 1, "live calls were never seen going up"

    calls = audit["calls"]
    placed = m["dialer_calls_placed_total"]
    assert by(placed, "agent") == {AGENT: len(calls)}
    assert by(m["dialer_calls_final_total"], "status") == dict(
        Counter(c["final_status"] for c in calls))
    reqs = Counter((r["method"], str(r["status"])) for r in audit["requests"])
    api = m["dialer_api_requests_total"]
    got = {(dict(k)["method"], dict(k)["code"]): v for k, v in api.items() if v}
    assert got == dict(reqs)
    assert reqs[("POST", "409")] == 1 and got[("POST", "409")] == 1
    assert sum(m["dialer_api_request_seconds_count"].values()) == len(audit["requests"])
    assert by(m["dialer_caller_id_calls_total"], "number_id") == {"agent_default": len(calls)}
    rows = by(m["dialer_rows"], "disposition")
    assert sum(rows.values()) == len(contacts)
    assert rows == {"dialed": len(calls), "rejected": 1, "pending": 1}
    held = by(m.get("dialer_held_total", {}), "reason")
    assert set(held) <= {"outside_window"}
    # Labels name no person: no phone number anywhere in the exposition.
    assert not any(p[2:] in json.dumps(list(m)) for p in phones)


def test_the_monitor_and_the_webhook_share_one_port(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    secret = "whsec_monitor-0123456789abcdef"
    monkeypatch.setenv("VANTAX_WEBHOOK_SECRET", secret)
    port = free_port()
    contacts = [{"phone": p, "name": f"P{i}"} for i, p in enumerate(numbers(8))]
    camp = write_campaign(tmp_path, contacts=contacts, name="shared-port", extra=f"""
        [webhook]
        port = {port}
        path = "/hooks/vantax"
        reconcile_after_s = 10

        [monitor]
        listen = "127.0.0.1:{port}"
        """)
    hook = f"http://127.0.0.1:{port}/hooks/vantax"
    with sandbox(webhook_url=hook, webhook_secret=secret) as sb:
        proc = popen_cli("run", str(camp.path), "--base-url", sb.url)
        base = f"http://127.0.0.1:{port}"
        seen: dict[str, float] = {}
        try:
            while proc.poll() is None:
                m = scrape(base)
                if m is not None:
                    seen = by(m.get("dialer_webhook_events_total", {}), "result") or seen
                time.sleep(0.1)
        finally:
            out, err = proc.communicate(timeout=60)
        audit = sb.audit()
    assert proc.returncode == 0, err[-3000:]
    assert len(audit["calls"]) == 8
    assert seen.get("committed", 0) >= 1, seen
    assert all(w["response_status"] == 200 for w in audit["webhooks"] if w["delivered"])


def test_serve_beyond_loopback_needs_the_campaign_file(tmp_path: Path) -> None:
    contacts = [{"phone": p} for p in numbers(2)]
    camp = write_campaign(tmp_path, contacts=contacts)
    proc = run_cli("run", str(camp.path), "--serve", "0.0.0.0:9108")
    assert proc.returncode == 64, proc.stderr
    assert '[monitor] listen = "0.0.0.0:9108"' in proc.stderr
    proc = run_cli("run", str(camp.path), "--serve", "nonsense")
    assert proc.returncode == 64 and "HOST:PORT" in proc.stderr
