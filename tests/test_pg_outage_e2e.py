"""PostgreSQL end to end: the store database down, restarted and stopped under `run`.

Each test runs a cluster of its own (tests/pg_cluster.py), which it stops and starts: other
tests sharing a server are not disturbed. Judged by the exit code, by stderr (every line a
JSON log event or the one `campaign-dialer: error:` line: the database driver's own logging
goes through the dialer's log) and, for a restart mid-run, by the sandbox's audit: nobody
called twice, every row dialed once.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from campaign_dialer.sandbox import SandboxConfig, SandboxServer

from . import pg_cluster
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


@pytest.fixture
def own_cluster() -> Iterator[pg_cluster.Cluster]:
    if pg_cluster.bin_dir() is None:
        pytest.skip("PostgreSQL server binaries are not installed")
    cluster = pg_cluster.start()  # a temp folder the server's user can reach
    try:
        yield cluster
    finally:
        cluster.stop()


def sandbox(**kw: Any) -> SandboxServer:
    settings: dict[str, Any] = {
        "api_keys": (KEY,), "seed": 5, "time_scale": 0.004, "requests_per_second": 200.0,
        "max_live_calls": 50,
    }
    settings.update(kw)
    return SandboxServer(SandboxConfig(**settings))


def pg_campaign(folder: Path, url: str, n: int, store: str = "", cps: int = 10) -> CampaignFiles:
    return write_campaign(
        folder, contacts=[{"phone": p} for p in numbers(n)], name="outage",
        pacing=f"calls_per_second = {cps}", api="max_live_calls = 6",
        extra=f'[store]\nurl = "{url}"\nlease_seconds = 6\n{store}\n',
    )


def stray_lines(stderr: str) -> list[str]:
    """stderr lines that are neither a JSON log event nor the dialer's one error line."""
    out = []
    for line in stderr.splitlines():
        if not line.strip() or line.startswith("campaign-dialer: error:"):
            continue
        try:
            json.loads(line)
        except ValueError:
            out.append(line)
    return out


def events(stderr: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("campaign-dialer: error:")]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_database_that_is_down_is_69_at_once_in_one_line(
    tmp_path: Path, own_cluster: pg_cluster.Cluster,
) -> None:
    """It used to take 32 s (the pool's open timeout, then the migration's) and print a
    dozen lines of the driver's pool beside the dialer's own."""
    pg_cluster.halt(own_cluster.base)
    camp = pg_campaign(tmp_path, own_cluster.url, 3, store="connect_timeout_s = 3")
    with sandbox() as sb:
        started = time.monotonic()
        proc = run_cli("run", str(camp.path), "--base-url", sb.url, timeout=60)
        took = time.monotonic() - started
        audit = sb.audit()
    assert proc.returncode == 69, proc.stderr[-3000:]
    assert audit["calls"] == []
    lines = error_lines(proc.stderr)
    assert len(lines) == 1 and "cannot reach" in lines[0], proc.stderr[-3000:]
    assert stray_lines(proc.stderr) == []
    print(f"exit 69 with the database down after {took:.2f}s")


def test_an_address_nothing_answers_on_within_connect_timeout_is_69(tmp_path: Path) -> None:
    """A port nobody listens on: refused at once, whatever the connect timeout."""
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"
    camp = pg_campaign(tmp_path, url, 2)
    proc = run_cli("run", str(camp.path), "--base-url", "http://127.0.0.1:9", timeout=60)
    assert proc.returncode == 69, proc.stderr[-3000:]
    assert len(error_lines(proc.stderr)) == 1 and stray_lines(proc.stderr) == []


def test_a_restart_mid_run_is_ridden_out_by_two_processes_and_nobody_is_called_twice(
    tmp_path: Path, own_cluster: pg_cluster.Cluster,
) -> None:
    """Two `run` processes share a campaign; the database restarts (fast shutdown: every
    session is ended) while they dial. Both reconnect and finish; the leases and the fenced
    intent keep every person to one call."""
    phones = numbers(60)
    camp = pg_campaign(tmp_path, own_cluster.url, len(phones), cps=12)
    with sandbox() as sb:
        procs = [popen_cli("run", str(camp.path), "--base-url", sb.url) for _ in range(2)]
        try:
            wait_for_calls(sb, 8)
            began = time.monotonic()
            pg_cluster.halt(own_cluster.base)
            time.sleep(0.5)
            pg_cluster.resume(own_cluster.base)
            down = time.monotonic() - began
            outs = [p.communicate(timeout=180) for p in procs]
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
        audit = sb.audit()
    errs = [err for _, err in outs]
    assert [p.returncode for p in procs] == [0, 0], "\n".join(e[-2500:] for e in errs)
    per_number = assert_nobody_called_twice(audit)
    assert set(per_number) == set(phones)  # every row dialed once, none lost to the restart
    for err in errs:
        assert stray_lines(err) == [], stray_lines(err)[:5]
        assert error_lines(err) == []
    seen = [e for err in errs for e in events(err)]
    assert any(e["event"] == "store_reconnected" for e in seen)
    # The driver's pool spoke through the dialer's log, as JSON events.
    assert all(e.get("library", "").startswith("psycopg") for e in seen
               if e["event"] == "library_log")
    rows = camp.results()
    assert {r["disposition"] for r in rows} == {"dialed"}
    print(f"restart took {down:.2f}s; ridden out by both processes")


def test_an_outage_longer_than_outage_s_is_69_and_the_next_run_finishes_once_each(
    tmp_path: Path, own_cluster: pg_cluster.Cluster,
) -> None:
    phones = numbers(30)
    camp = pg_campaign(tmp_path, own_cluster.url, len(phones), cps=8,
                       store="outage_s = 2\nconnect_timeout_s = 2")
    with sandbox() as sb:
        proc = popen_cli("run", str(camp.path), "--base-url", sb.url)
        try:
            wait_for_calls(sb, 5)
            pg_cluster.halt(own_cluster.base)
            stopped = time.monotonic()
            out, err = proc.communicate(timeout=120)
            took = time.monotonic() - stopped
        finally:
            if proc.poll() is None:
                proc.kill()
        pg_cluster.resume(own_cluster.base)
        again = run_cli("run", str(camp.path), "--base-url", sb.url, timeout=180)
        audit = sb.audit()
    assert proc.returncode == 69, err[-3000:]
    lines = error_lines(err)
    assert len(lines) == 1 and "outage_s" in lines[0], err[-3000:]
    assert stray_lines(err) == []
    assert again.returncode == 0, again.stderr[-3000:]
    per_number = assert_nobody_called_twice(audit)
    assert set(per_number) == set(phones)
    print(f"exit 69 {took:.2f}s after the database stopped (outage_s = 2)")
