"""End to end, operators' stories: a key revoked mid-run (77).

Judged by the sandbox's audit (what the platform really placed) and by what `status --json`
and the results say afterwards.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from campaign_dialer.sandbox import SandboxConfig, SandboxServer

from .e2e_support import (
    KEY,
    assert_nobody_called_twice,
    numbers,
    popen_cli,
    run_cli,
    wait_for_calls,
    write_campaign,
)

pytestmark = pytest.mark.e2e


def sandbox(**kw: Any) -> SandboxServer:
    settings: dict[str, Any] = {
        "api_keys": (KEY,), "seed": 3, "time_scale": 0.02, "requests_per_second": 200.0,
        "max_live_calls": 20,
    }
    settings.update(kw)
    return SandboxServer(SandboxConfig(**settings))


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("campaign-dialer: error:")]


def test_a_key_revoked_mid_run_is_77_with_one_error_line_and_nothing_left_unresolved(
    tmp_path: Path,
) -> None:
    """POSTs are in flight (the platform takes 0.4 s to place each) when the key is revoked:
    the first 401 stops the run, and the POSTs already sent are waited for, so each call the
    platform placed is recorded placed (followed by the next run) and none is left an open
    intent that `status` would count as `unresolved` without listing it."""
    camp = write_campaign(tmp_path, contacts=[{"phone": p} for p in numbers(40)],
                          pacing="calls_per_second = 20", api="max_live_calls = 20")
    with sandbox(post_latency=0.4) as sb:
        proc = popen_cli("run", str(camp.path), "--base-url", sb.url)
        try:
            wait_for_calls(sb, 1)  # the first POST is decided: several more are in flight
            sb.app.revoke_keys()
            out, err = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
        audit = sb.audit()
        status = run_cli("status", str(camp.path), "--json")
    assert proc.returncode == 77, err[-3000:]
    assert_nobody_called_twice(audit)
    placed = {c["id"] for c in audit["calls"]}
    assert len(placed) >= 2, "the test needs POSTs in flight when the key is revoked"
    # Every call the platform placed is known by its id: none is an unconfirmed intent.
    rows = camp.results()
    assert placed == {r["call_id"] for r in rows if r["call_id"]}
    assert status.returncode == 0, status.stderr
    data = json.loads(status.stdout)
    counted = sum(r["rows"] for r in data["by_reason"] if r["reason"] == "unresolved")
    assert counted == len(data["unresolved"]) == 0, data
    assert {r["reason"] for r in rows} <= {"call_live", "not_dialed_yet", "unauthorized",
                                           "not_placed"}
    # Defect: an exit 77 said nothing on stderr but JSON logs; every error is one line.
    lines = error_lines(err)
    assert len(lines) == 1 and "refused the key" in lines[0], err[-3000:]
    assert KEY not in err + out
