"""Scheduled batch runs: several runs of the real CLI over a clock the tests control."""

from __future__ import annotations

import json
import random
import signal
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest

from campaign_dialer.sandbox import SandboxConfig, SandboxServer
from campaign_dialer.sandbox.lifecycle import plan_call

from .e2e_support import (
    KEY,
    assert_nobody_called_twice,
    numbers,
    parse_ts,
    popen_cli,
    run_cli,
    wait_for_calls,
    write_campaign,
)

pytestmark = pytest.mark.e2e
SEED = 11


def sandbox(**kw: object) -> SandboxServer:
    settings: dict[str, object] = {
        "api_keys": (KEY,), "seed": SEED, "time_scale": 0.003, "requests_per_second": 40.0,
        "max_live_calls": 10,
    }
    settings.update(kw)
    return SandboxServer(SandboxConfig(**settings))  # type: ignore[arg-type]


def iso(dt: object) -> str:
    return dt.isoformat().replace("+00:00", "Z")  # type: ignore[attr-defined]


def with_final(status: str, n: int, *, start: int = 0) -> list[str]:
    """Numbers whose calls the sandbox (seed SEED) ends with this final status."""
    out = [p for p in numbers(500, start=start) if plan_call(SEED, p).final_status == status]
    assert len(out) >= n
    return out[:n]


def test_rows_outside_the_window_wait_for_a_later_run(tmp_path: Path) -> None:
    ny = numbers(4)
    la = numbers(4, areas=("213",))
    camp = write_campaign(tmp_path, contacts=[{"phone": p} for p in ny + la])
    with sandbox() as sb:
        first = run_cli("run", str(camp.path), "--base-url", sb.url,
                        clock="2026-06-09T14:00:00Z")  # 10:00 New York, 07:00 Los Angeles
        rows = {r["phone_e164"]: r for r in camp.results()}
        status = json.loads(run_cli("status", str(camp.path), "--json").stdout)
        second = run_cli("run", str(camp.path), "--base-url", sb.url,
                         clock="2026-06-09T16:00:05Z")  # 09:00:05 in Los Angeles
        audit = sb.audit()
    assert first.returncode == 75, first.stderr[-2000:]
    assert {rows[p]["disposition"] for p in ny} == {"dialed"}
    assert {(rows[p]["disposition"], rows[p]["reason"]) for p in la} == {
        ("pending", "outside_window")}
    assert {rows[p]["next_open"] for p in la} == {"2026-06-09T16:00:00.000Z"}
    assert status["last_exit_code"] == 75
    assert status["next_window_at"].startswith("2026-06-09T16:00:00")
    assert second.returncode == 0, second.stderr[-2000:]
    assert {r["disposition"] for r in camp.results()} == {"dialed"}
    assert_nobody_called_twice(audit)
    assert len(audit["calls"]) == 8


def test_redial_policy_places_exactly_the_allowed_attempts_across_crashes(
    tmp_path: Path,
) -> None:
    no_answer = with_final("no_answer", 5)
    completed = with_final("completed", 5)
    camp = write_campaign(
        tmp_path, contacts=[{"phone": p} for p in no_answer + completed],
        pacing="calls_per_second = 4",
        extra="""
        [redial]
        statuses = ["no_answer", "busy"]
        max_attempts = 3
        min_gap_minutes = 60
        max_per_24h = 2
        """,
    )
    t0 = parse_ts("2026-06-09T15:00:00Z")
    rng = random.Random(5)
    clocks = [t0, t0 + timedelta(minutes=61), t0 + timedelta(minutes=122),
              t0 + timedelta(hours=24, minutes=5), t0 + timedelta(hours=26)]
    with sandbox() as sb:
        codes = []
        for clock in clocks:
            # a crash at a random moment of every run, then the same run again
            proc = popen_cli("run", str(camp.path), "--base-url", sb.url, clock=iso(clock))
            time.sleep(rng.uniform(0.2, 1.5))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=60)
            done = run_cli("run", str(camp.path), "--base-url", sb.url, clock=iso(clock))
            codes.append(done.returncode)
        audit = sb.audit()
    per_number = Counter(c["to"] for c in audit["calls"])
    # no_answer: attempt 1 at t0, 2 at t0+61m, none at t0+122m (2 per 24 h), 3 the next day
    assert {per_number[p] for p in no_answer} == {3}
    assert {per_number[p] for p in completed} == {1}
    assert codes[0] == codes[1] == 75 and codes[2] == 75
    assert codes[-1] == 0
    times = sorted(
        (c["to"], c["idempotency_key"]) for c in audit["calls"] if c["to"] == no_answer[0]
    )
    assert len({k for _, k in times}) == 3  # each attempt its own key
    rows = {r["phone_e164"]: r for r in camp.results()}
    assert {rows[p]["attempts"] for p in no_answer} == {"3"}
    assert {rows[p]["disposition"] for p in no_answer} == {"dialed"}


def test_opt_out_outcome_suppresses_that_person_in_the_next_campaign(tmp_path: Path) -> None:
    opted = [p for p in numbers(500) if plan_call(SEED, p).outcome in ("opt_out", "do_not_call")]
    assert len(opted) >= 2
    others = numbers(6, areas=("917",))
    first = write_campaign(tmp_path / "a", contacts=[{"phone": p} for p in opted[:2] + others],
                           name="first", compliance='dnc_ledger = "../ledger.csv"')
    second = write_campaign(tmp_path / "b", contacts=[{"phone": p} for p in opted[:2] + others],
                            name="second", compliance='dnc_ledger = "../ledger.csv"')
    with sandbox() as sb:
        assert run_cli("run", str(first.path), "--base-url", sb.url).returncode == 0
    ledger = (tmp_path / "ledger.csv").read_text()
    call_ids = {r["phone_e164"]: r["call_id"] for r in first.results()}
    for p in opted[:2]:
        assert p in ledger and call_ids[p] in ledger  # the call is the evidence
    with sandbox(seed=99) as sb2:  # a fresh platform that knows nothing of the opt-out
        # a day later: the others are no longer `recently_called` (24 h between campaigns)
        proc = run_cli("run", str(second.path), "--base-url", sb2.url,
                       clock="2026-06-10T17:00:05Z")
        audit = sb2.audit()
    assert proc.returncode == 0
    called = {c["to"] for c in audit["calls"]}
    assert not called & set(opted[:2])
    rows = {r["phone_e164"]: r for r in second.results()}
    assert {rows[p]["reason"] for p in opted[:2]} == {"dnc_local"}


def test_pause_from_another_process_stops_new_calls_within_one_pacing_interval(
    tmp_path: Path,
) -> None:
    camp = write_campaign(tmp_path, contacts=[{"phone": p} for p in numbers(40)],
                          pacing="calls_per_second = 2")
    with sandbox() as sb:
        proc = popen_cli("run", str(camp.path), "--base-url", sb.url, "--pause-wait", "0s")
        wait_for_calls(sb, 3)
        paused = run_cli("pause", str(camp.path))
        t_paused = time.monotonic()
        proc.wait(timeout=60)
        audit = sb.audit()
        status = json.loads(run_cli("status", str(camp.path), "--json").stdout)
        resumed = run_cli("resume", str(camp.path))
        rest = run_cli("run", str(camp.path), "--base-url", sb.url)
        audit2 = sb.audit()
    assert paused.returncode == 0
    assert proc.returncode == 75
    late = [r for r in audit["requests"] if r["method"] == "POST" and r["mono"] > t_paused]
    # The flag is read right before each POST: at most the one call already past that check
    # (calls are 0.5 s apart) can still go out after the pause - within one pacing interval.
    assert len(late) <= 1
    assert 0 < len(audit["calls"]) < 40
    assert status["control"] == "paused"
    assert any(x["reason"] == "paused" for x in status["by_reason"])
    assert resumed.returncode == 0 and rest.returncode == 0
    assert_nobody_called_twice(audit2)
    assert len(audit2["calls"]) == 40


def test_cancel_suppresses_what_was_not_dialed(tmp_path: Path) -> None:
    camp = write_campaign(tmp_path, contacts=[{"phone": p} for p in numbers(6)])
    assert run_cli("cancel", str(camp.path)).returncode == 0
    with sandbox() as sb:
        proc = run_cli("run", str(camp.path), "--base-url", sb.url)
        audit = sb.audit()
    assert proc.returncode == 0
    assert audit["calls"] == []
    assert {(r["disposition"], r["reason"]) for r in camp.results()} == {
        ("suppressed", "campaign_canceled")}


def test_wait_stays_up_and_dials_when_the_window_opens(tmp_path: Path) -> None:
    camp = write_campaign(tmp_path, contacts=[{"phone": p} for p in numbers(3)])
    with sandbox() as sb:
        t0 = time.monotonic()
        proc = run_cli("run", str(camp.path), "--base-url", sb.url, "--wait",
                       clock="2026-06-09T12:59:57Z")  # 08:59:57 in New York
        audit = sb.audit()
    assert proc.returncode == 0, proc.stderr[-2000:]
    first_post = min(r["mono"] for r in audit["requests"] if r["method"] == "POST")
    assert first_post - t0 >= 2.5  # not before 09:00 New York time
    assert len(audit["calls"]) == 3


def test_max_duration_bounds_a_run(tmp_path: Path) -> None:
    camp = write_campaign(tmp_path, contacts=[{"phone": p} for p in numbers(40)],
                          pacing="calls_per_second = 2")
    with sandbox() as sb:
        proc = run_cli("run", str(camp.path), "--base-url", sb.url, "--max-duration", "2s")
        audit = sb.audit()
    assert proc.returncode == 75
    assert 1 <= len(audit["calls"]) <= 6
    rows = camp.results()
    assert Counter(r["disposition"] for r in rows)["pending"] == 40 - len(audit["calls"])


@pytest.mark.parametrize("pasted", [f"{KEY[:8]}\n{KEY[8:]}", f"{KEY[:8]} {KEY[8:]}",
                                    f"\u201c{KEY}\u201d", f"{KEY}\x07"])
def test_a_key_pasted_with_a_break_space_or_quotes_stops_with_78_before_any_request(
    tmp_path: Path, pasted: str,
) -> None:
    """Such a key cannot be sent as a header: it was a 69 after two minutes of "outage" (line
    break) or an "unexpected error" 1 (a typographic quote); it is a wrong key, said once."""
    camp = write_campaign(tmp_path, contacts=[{"phone": p} for p in numbers(3)])
    with sandbox() as sb:
        proc = run_cli("run", str(camp.path), "--base-url", sb.url, key=pasted, timeout=60)
        audit = sb.audit()
    assert proc.returncode == 78, proc.stderr[-2000:]
    assert "api.api_key_env" in proc.stderr and "VANTAX_API_KEY" in proc.stderr
    assert "Traceback" not in proc.stderr
    for shown in (proc.stdout, proc.stderr):
        assert KEY[8:] not in shown
    assert audit["requests"] == [] and audit["calls"] == []


def test_an_until_already_past_today_is_announced_as_tomorrow(tmp_path: Path) -> None:
    """`--until` a minute ago means the same time tomorrow: a run that would place calls
    for a day says so before it dials (stderr and a `until_is_tomorrow` log event)."""
    from datetime import datetime

    from .e2e_support import MIDDAY

    local_now = datetime.fromisoformat(MIDDAY.replace("Z", "+00:00")).astimezone()
    past = (local_now - timedelta(minutes=1)).strftime("%H:%M")
    soon = (local_now + timedelta(hours=2)).strftime("%H:%M")
    camp = write_campaign(tmp_path, contacts=[{"phone": p} for p in numbers(2)])
    with sandbox() as sb:
        late = run_cli("run", str(camp.path), "--base-url", sb.url, "--until", past,
                       "--max-duration", "1s")
        fine = run_cli("run", str(camp.path), "--base-url", sb.url, "--until", soon,
                       "--max-duration", "1s")
    assert late.returncode in (0, 75), late.stderr[-2000:]
    assert f"--until {past} has passed today" in late.stderr
    assert '"until_is_tomorrow"' in late.stderr
    assert fine.returncode in (0, 75), fine.stderr[-2000:]
    assert "has passed today" not in fine.stderr and "until_is_tomorrow" not in fine.stderr
