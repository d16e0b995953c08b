"""The adaptive schedule end to end: the real CLI against the sandbox's answer curve.

The holdout (a stable hash of the person) is dialed in input order, and the report's
adaptive-vs-holdout comparison (summary.json `schedule`) counts exactly what the sandbox's
audit says: calls placed and calls that ended `completed`, per arm.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from campaign_dialer.answering import in_holdout
from campaign_dialer.sandbox import SandboxConfig, SandboxServer

from .e2e_support import KEY, MIDDAY, assert_nobody_called_twice, numbers, run_cli, write_campaign

pytestmark = pytest.mark.e2e


def test_holdout_in_input_order_and_the_report_counts_what_the_audit_says(
    tmp_path: Path,
) -> None:
    phones = numbers(24)
    curve = tmp_path / "curve.json"
    # 13:00 in New York on a Tuesday (the test clock): one cell at 0.5, the rest nearly never
    table = [[0.02] * 24 for _ in range(7)]
    table[1][13] = 0.5
    curve.write_text(json.dumps({"curve": table}))
    camp = write_campaign(
        tmp_path / "c", contacts=[{"phone": p} for p in phones], name="adaptive-e2e",
        api="max_live_calls = 1",
        extra='[schedule]\nstrategy = "adaptive"\nholdout_share = 0.5\n',
    )
    config = SandboxConfig(api_keys=(KEY,), seed=3, time_scale=0.0005, answer_curve=curve,
                           answer_clock=MIDDAY)
    with SandboxServer(config) as sb:
        done = run_cli("run", str(camp.path), "--base-url", sb.url, "--no-progress")
        assert done.returncode == 0, done.stderr
        audit = sb.audit()
    assert_nobody_called_twice(audit)
    calls = sorted(audit["calls"], key=lambda c: c["seq"])
    assert len(calls) == len(phones)
    assert all(c["answer_curve"]["recipient_local"].startswith("2026-06-09T13:")
               for c in calls)
    held = [c["to"] for c in calls if in_holdout("adaptive-e2e", f"tel:{c['to']}", 0.5)]
    assert 4 <= len(held) <= 20  # both arms present
    assert held == [p for p in phones if p in set(held)]  # the holdout: input order

    rep = run_cli("report", str(camp.path), "--json")
    assert rep.returncode == 0, rep.stderr
    summary = json.loads(rep.stdout)
    section = summary["schedule"]
    assert json.loads((camp.out / "summary.json").read_text())["schedule"] == section
    for arm, in_arm in (("holdout", True), ("adaptive", False)):
        mine = [c for c in calls if (c["to"] in held) == in_arm]
        assert section[arm]["dialed"] == len(mine)
        assert section[arm]["answered"] == sum(c["final_status"] == "completed" for c in mine)
        lo, hi = section[arm]["answer_ci95"]
        assert lo <= section[arm]["answer_rate"] <= hi
    assert section["answered_test"]["verdict"]
    page = (camp.out / "report.html").read_text(encoding="utf-8")
    assert "<h2>Adaptive schedule vs holdout</h2>" in page
    row = '<tr data-arm="holdout"><td>holdout (input order)</td><td class="n">'
    assert f"{row}{len(held)}<" in page

    # `check` says how far the history is from a usable curve (24 calls, some answered)
    chk = run_cli("check", str(camp.path), "--json")
    assert chk.returncode == 0, chk.stderr
    sched = json.loads(chk.stdout)["schedule"]
    answered = sum(c["final_status"] == "completed" for c in calls)
    assert sched["ready"] is False and sched["answered"] == answered and sched["needs"] == 30
    text = run_cli("check", str(camp.path)).stdout
    assert f"not enough history yet: {answered} answered calls, needs 30" in text
