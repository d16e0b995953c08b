"""Operations that must not fool the checks (#13 items 2-5): the real CLI against the sandbox.

A simulated clock off loopback, a dialer clock ahead of the platform across a crash, a typo in
the agent, an API that dies, a pause and a resume: judged by the sandbox's audit.
"""

from __future__ import annotations

import json
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import phonenumbers
import pytest
from phonenumbers import timezone as number_zones

from campaign_dialer.sandbox import SandboxConfig, SandboxServer

from .e2e_support import (
    AGENT,
    KEY,
    assert_nobody_called_twice,
    numbers,
    popen_cli,
    run_cli,
    wait_for_calls,
    write_campaign,
)

pytestmark = pytest.mark.e2e


def sandbox(**kw: object) -> SandboxServer:
    settings: dict[str, object] = {
        "api_keys": (KEY,), "seed": 5, "time_scale": 0.004, "requests_per_second": 40.0,
        "max_live_calls": 10,
    }
    settings.update(kw)
    return SandboxServer(SandboxConfig(**settings))  # type: ignore[arg-type]


def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


# One region per stretch of the day, so that some people are in their calling hours at any
# real moment the test runs: the platform's clock is the real one, and the dialer's must be
# within minutes of it here.
REGIONS = (
    ("JP", "Asia/Tokyo"), ("IN", "Asia/Calcutta"), ("DE", "Europe/Berlin"),
    ("GB", "Europe/London"), ("BR", "America/Sao_Paulo"), ("US-212", "America/New_York"),
    ("US-213", "America/Los_Angeles"), ("US-808", "Pacific/Honolulu"),
)


def numbers_in_calling_hours(n: int, at: datetime) -> list[str]:
    """n valid numbers of one region where `at` is between 10:00 and 18:00 local time."""
    for region, zone in REGIONS:
        if not 10 <= at.astimezone(ZoneInfo(zone)).hour < 18:
            continue
        if region.startswith("US-"):
            return numbers(n, areas=(region[3:],))
        ex = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
        base = phonenumbers.format_number(ex, phonenumbers.PhoneNumberFormat.E164)
        out: list[str] = []
        for i in range(1000):
            cand = f"{base[:-3]}{i:03d}"
            num = phonenumbers.parse(cand)
            zones = number_zones.time_zones_for_number(num)
            if phonenumbers.is_valid_number(num) and (zone in zones) and (
                region == "GB" or len(zones) == 1
            ):
                out.append(cand)
            if len(out) == n:
                return out
    raise AssertionError(f"no region in calling hours at {at}")  # pragma: no cover


def test_a_simulated_clock_with_a_non_loopback_api_exits_78_before_any_call(
    tmp_path: Path,
) -> None:
    camp = write_campaign(tmp_path, contacts=[{"phone": p} for p in numbers(5)],
                          api='base_url = "https://api.vantax.invalid"')
    proc = run_cli("run", str(camp.path))  # CAMPAIGN_DIALER_TEST_CLOCK is set by run_cli
    assert proc.returncode == 78, proc.stderr[-2000:]
    assert "CAMPAIGN_DIALER_TEST_CLOCK" in proc.stderr and "loopback" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (camp.out / "e2e.journal.sqlite").exists()  # nothing recorded, nothing sent
    # --base-url to a non-loopback host is refused the same way
    proc = run_cli("run", str(camp.path), "--base-url", "https://api.vantax.invalid")
    assert proc.returncode == 78


def test_dialer_clock_ahead_of_the_platform_across_a_sigkill_rings_nobody_twice(
    tmp_path: Path,
) -> None:
    """Ten minutes ahead, idempotency memory gone: the lookup, bounded by the platform's
    clock, finds every call the killed run placed; nothing is sent a second time."""
    ahead = timedelta(minutes=10)
    phones = numbers_in_calling_hours(40, datetime.now(UTC) + ahead)
    camp = write_campaign(
        tmp_path, contacts=[{"phone": p} for p in phones], pacing="calls_per_second = 10",
        compliance="state_rules = false",
    )
    # post_latency keeps POSTs in flight, so the SIGKILL leaves intents open; ttl 0 makes
    # every replay a new request to the platform ("more than 24 h later").
    with sandbox(idempotency_ttl=0.0, post_latency=0.4, time_scale=0.01) as sb:
        kills = 0
        for _ in range(4):
            proc = popen_cli("run", str(camp.path), "--base-url", sb.url,
                             clock=iso(datetime.now(UTC) + ahead))
            try:
                wait_for_calls(sb, len(sb.audit()["calls"]) + 3, timeout=30)
            except AssertionError:
                pass
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                kills += 1
            proc.wait(timeout=60)
        final = None
        logs = ""
        for _ in range(4):
            final = run_cli("run", str(camp.path), "--base-url", sb.url,
                            clock=iso(datetime.now(UTC) + ahead))
            logs += final.stderr
            if final.returncode == 0:
                break
        audit = sb.audit()
    assert kills >= 1
    assert "reconciled_by_lookup" in logs  # open intents were settled by the lookup
    assert final is not None and final.returncode == 0, final.stderr[-3000:]
    per_number = assert_nobody_called_twice(audit)
    assert set(per_number) == set(phones)
    rows = camp.results()
    assert {r["disposition"] for r in rows} == {"dialed"}
    assert {r["call_id"] for r in rows} == {c["id"] for c in audit["calls"]}


def test_a_wrong_agent_stops_at_once_with_78_and_the_fixed_campaign_dials_everyone(
    tmp_path: Path,
) -> None:
    phones = numbers(30)
    camp = write_campaign(tmp_path, contacts=[{"phone": p} for p in phones])
    text = camp.path.read_text()
    camp.path.write_text(text.replace(AGENT, "agt_typo00"))
    with sandbox() as sb:
        wrong = run_cli("run", str(camp.path), "--base-url", sb.url)
        posts = [r for r in sb.audit()["requests"] if r["method"] == "POST"]
        rows_after_wrong = camp.results()
        status = json.loads(run_cli("status", str(camp.path), "--json").stdout)
        camp.path.write_text(text)  # fixed
        fixed = run_cli("run", str(camp.path), "--base-url", sb.url)
        audit = sb.audit()
    assert wrong.returncode == 78, wrong.stderr[-2000:]
    assert "campaign.agent_id" in wrong.stderr and "agt_typo00" in wrong.stderr
    assert "Traceback" not in wrong.stderr
    assert 1 <= len(posts) <= 10  # at most max_live_calls requests went out
    assert {r["disposition"] for r in rows_after_wrong} == {"pending"}
    assert status["by_disposition"] == {"pending": 30}
    assert fixed.returncode == 0, fixed.stderr[-2000:]
    per_number = assert_nobody_called_twice(audit)
    assert set(per_number) == set(phones)
    assert {c["agent_id"] for c in audit["calls"]} == {AGENT}
    assert {r["disposition"] for r in camp.results()} == {"dialed"}


def test_the_same_error_on_consecutive_calls_trips_the_breaker(tmp_path: Path) -> None:
    """An unknown from-number: the breaker names the key, rows stay pending."""
    camp = write_campaign(tmp_path, contacts=[{"phone": p} for p in numbers(20)],
                          extra="", api="max_live_calls = 2")
    text = camp.path.read_text().replace(
        'default_region = "US"', 'default_region = "US"\nfrom_phone_number_id = "pn_nope"')
    camp.path.write_text(text)
    with sandbox() as sb:
        proc = run_cli("run", str(camp.path), "--base-url", sb.url)
        audit = sb.audit()
    assert proc.returncode == 78, proc.stderr[-2000:]
    assert "campaign.from_phone_number_id" in proc.stderr
    assert audit["calls"] == []
    assert len([r for r in audit["requests"] if r["method"] == "POST"]) <= 2
    assert {r["disposition"] for r in camp.results()} == {"pending"}


def test_an_api_that_dies_mid_run_ends_the_run_with_69_within_outage_plus_grace(
    tmp_path: Path,
) -> None:
    phones = numbers(60)
    camp = write_campaign(tmp_path, contacts=[{"phone": p} for p in phones],
                          pacing="calls_per_second = 4", api="outage_s = 3")
    sb = sandbox(time_scale=0.05)  # calls last seconds: some are live when it dies
    sb.start()
    try:
        proc = popen_cli("run", str(camp.path), "--base-url", sb.url, "--grace", "4s")
        wait_for_calls(sb, 4)
    finally:
        sb.stop()
    t_dead = time.monotonic()
    proc.wait(timeout=120)
    took = time.monotonic() - t_dead
    assert proc.stderr is not None
    err = proc.stderr.read()
    assert proc.returncode == 69, err[-3000:]
    # outage_s 3 + grace 4, plus a request timeout (2 s) and the process's own exit
    assert took < 3 + 4 + 10, took
    assert "has not answered" in err and "Traceback" not in err
    status = run_cli("status", str(camp.path), "--json")
    assert status.returncode == 0
    data = json.loads(status.stdout)
    assert data["last_exit_code"] == 69
    assert data["by_disposition"].get("pending", 0) > 0  # the next run resumes them
    rows = camp.results()
    assert len(rows) == 60


def test_pause_then_resume_mid_run_dials_every_row_in_the_same_run(tmp_path: Path) -> None:
    phones = numbers(24)
    camp = write_campaign(tmp_path, contacts=[{"phone": p} for p in phones],
                          pacing="calls_per_second = 4")
    with sandbox() as sb:
        proc = popen_cli("run", str(camp.path), "--base-url", sb.url)
        wait_for_calls(sb, 3)
        assert run_cli("pause", str(camp.path)).returncode == 0
        t_paused = time.monotonic()
        time.sleep(3)
        status = json.loads(run_cli("status", str(camp.path), "--json").stdout)
        t_resumed = time.monotonic()
        assert run_cli("resume", str(camp.path)).returncode == 0
        proc.wait(timeout=120)
        audit = sb.audit()
    assert proc.stderr is not None
    err = proc.stderr.read()
    assert proc.returncode == 0, err[-3000:]
    per_number = assert_nobody_called_twice(audit)
    assert set(per_number) == set(phones)  # nothing dropped by the pause
    during = [r for r in audit["requests"] if r["method"] == "POST"
              and t_paused + 1.5 < r["mono"] < t_resumed]
    assert during == []  # the pause held (a call past its last check may go out at once)
    assert status["control"] == "paused" and status["pause_wait_s"] == 900
    assert {r["disposition"] for r in camp.results()} == {"dialed"}


def test_a_pause_longer_than_pause_wait_exits_75_and_the_next_run_dials_the_rest(
    tmp_path: Path,
) -> None:
    phones = numbers(20)
    camp = write_campaign(tmp_path, contacts=[{"phone": p} for p in phones],
                          pacing="calls_per_second = 4")
    with sandbox() as sb:
        proc = popen_cli("run", str(camp.path), "--base-url", sb.url, "--pause-wait", "2s")
        wait_for_calls(sb, 3)
        assert run_cli("pause", str(camp.path)).returncode == 0
        proc.wait(timeout=60)
        first = len(sb.audit()["calls"])
        assert run_cli("resume", str(camp.path)).returncode == 0
        rest = run_cli("run", str(camp.path), "--base-url", sb.url)
        audit = sb.audit()
    assert proc.stderr is not None
    err = proc.stderr.read()
    assert proc.returncode == 75, err[-2000:]
    assert "paused" in err
    assert 0 < first < 20
    assert rest.returncode == 0, rest.stderr[-2000:]
    assert set(assert_nobody_called_twice(audit)) == set(phones)


def test_a_run_at_a_dead_url_places_nothing_and_the_next_run_rings_each_person_once(
    tmp_path: Path,
) -> None:
    """An operator's wrong --base-url (a port nobody listens on): no POST ever connects, so
    every dialed row is known not placed (never an open intent for a person to release, or
    for a lookup to match with another campaign's call), and the next run against the real
    platform rings each person exactly once, judged by the platform's own audit."""
    import socket

    with socket.socket() as s:  # a loopback port that was free a moment ago: nobody listens
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    phones = numbers(6)
    camp = write_campaign(tmp_path, contacts=[{"phone": p} for p in phones],
                          pacing="calls_per_second = 4",
                          api="poll_interval_s = 0.05\nmax_attempts = 2\noutage_s = 2")
    first = run_cli("run", str(camp.path), "--base-url", dead, "--grace", "1s")
    after_first = {r["reason"] for r in camp.results()}
    status = json.loads(run_cli("status", str(camp.path), "--json").stdout)
    with sandbox() as sb:
        second = run_cli("run", str(camp.path), "--base-url", sb.url)
        audit = sb.audit()
    assert first.returncode == 69, first.stderr[-2000:]
    assert "not_placed" in after_first and "unresolved" not in after_first, after_first
    assert status.get("unresolved", []) == []
    assert second.returncode == 0, second.stderr[-2000:]
    per_number = assert_nobody_called_twice(audit)
    assert set(per_number) == set(phones)
    assert {r["disposition"] for r in camp.results()} == {"dialed"}
