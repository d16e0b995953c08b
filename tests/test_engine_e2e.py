"""End to end: the real CLI against a running sandbox, judged by the sandbox's audit."""

from __future__ import annotations

import json
import os
import random
import signal
import time
from collections import Counter
from pathlib import Path

import pytest

from campaign_dialer.sandbox import SandboxConfig, SandboxServer, SubAccountData

from .e2e_support import (
    KEY,
    NIGHT,
    assert_nobody_called_twice,
    max_in_window,
    numbers,
    popen_cli,
    run_cli,
    wait_for_calls,
    write_campaign,
)

pytestmark = pytest.mark.e2e


def sandbox(**kw: object) -> SandboxServer:
    settings: dict[str, object] = {
        "api_keys": (KEY,), "seed": 3, "time_scale": 0.004, "requests_per_second": 40.0,
        "max_live_calls": 10,
    }
    settings.update(kw)
    return SandboxServer(SandboxConfig(**settings))  # type: ignore[arg-type]


def platform_dnc(*nums: str) -> SubAccountData:
    data = SubAccountData.generate(0)
    data.dnc.update(nums)
    return data


def test_faulty_platform_every_row_gets_its_fate_and_nobody_is_rung_twice(
    tmp_path: Path,
) -> None:
    phones = numbers(60)
    local_dnc, rejected, no_consent = phones[:4], phones[4:8], phones[8:12]
    contacts = [{"phone": p, "name": f"P{i}"} for i, p in enumerate(phones)]
    contacts += [{"phone": phones[20].replace("+1", "1-"), "name": "dup"},
                 {"phone": "", "name": "blank"}, {"phone": "12345", "name": "junk"}]
    consent = [p for p in phones if p not in no_consent]
    camp = write_campaign(tmp_path, contacts=contacts, dnc=local_dnc, consent=consent)
    faults = {"server_error": 0.15, "drop_after_place": 0.15, "spurious_429": 0.05,
              "get_error": 0.15, "unknown_fields": 0.3, "unknown_status": 0.3}
    with sandbox(faults=faults, data=platform_dnc(*rejected)) as sb:
        proc = run_cli("run", str(camp.path), "--base-url", sb.url)
        audit = sb.audit()
    assert proc.returncode == 0, proc.stderr[-3000:]
    per_number = assert_nobody_called_twice(audit)
    called = set(per_number)
    assert not called & set(local_dnc) and not called & set(no_consent)
    assert not called & set(rejected)  # 409: nothing placed

    rows = camp.results()
    assert [int(r["row"]) for r in rows] == list(range(1, len(contacts) + 1))
    fates = {r["phone_e164"] or r["phone_raw"]: r for r in rows[:60]}
    for p in local_dnc:
        assert (fates[p]["disposition"], fates[p]["reason"]) == ("suppressed", "dnc_local")
    for p in no_consent:
        assert (fates[p]["disposition"], fates[p]["reason"]) == ("suppressed", "no_consent")
    for p in rejected:
        assert (fates[p]["disposition"], fates[p]["http_status"]) == ("rejected", "409")
    dialed = {r["phone_e164"] for r in rows if r["disposition"] == "dialed"}
    assert dialed == called  # the results and the platform agree, call for call
    by_call = {c["id"]: c for c in audit["calls"]}
    for r in rows:
        if r["disposition"] == "dialed":
            c = by_call[r["call_id"]]
            assert r["status"] == c["final_status"] and r["outcome"] == (c["outcome"] or "")
    assert rows[60]["reason"] == "duplicate" and rows[60]["detail"] == "duplicate_of=21"
    assert rows[61]["reason"] == "blank_phone" and rows[62]["reason"] == "invalid_phone"
    assert Counter(r["disposition"] for r in rows)["pending"] == 0
    ledger = (tmp_path / "dnc-ledger.csv").read_text()
    assert all(p in ledger for p in rejected)
    assert KEY not in proc.stderr and KEY not in (camp.out / "results.csv").read_text()
    # off a terminal: no progress display, every stderr line is a structured JSON event
    events = [json.loads(line) for line in proc.stderr.splitlines() if line.strip()]
    assert {"run_started", "call_placed", "call_final", "run_finished"} <= {
        e["event"] for e in events}
    assert all(e.get("campaign") == "e2e" for e in events if e["event"] == "call_final")
    assert all("call_id" in e and "row" in e for e in events if e["event"] == "call_final")
    # within the platform's limits: no 429 that our own pacing caused, and new calls paced.
    # First sends only (re-sends of a 5xx go at the request limit, not the call pace); the
    # arrival times carry each intent's fsync, so allow jitter: a burst would send every
    # eligible row at the request limit (36/s here), far above 20 + 5.
    firsts: dict[str, float] = {}
    for r in audit["requests"]:
        if r["method"] == "POST" and r["path"] == "/v1/calls" and r["idempotency_key"]:
            firsts.setdefault(r["idempotency_key"], r["mono"])
    assert max_in_window(sorted(firsts.values())) <= 20 + 5
    own_429 = [r for r in audit["requests"] if r["status"] == 429 and not r["faults"]]
    assert own_429 == []


def test_wrong_key_stops_at_once_with_77_and_places_nothing(tmp_path: Path) -> None:
    camp = write_campaign(tmp_path, contacts=[{"phone": p} for p in numbers(10)])
    with sandbox() as sb:
        proc = run_cli("run", str(camp.path), "--base-url", sb.url, key="vx_test_wrongkey99999")
        audit = sb.audit()
    assert proc.returncode == 77, proc.stderr[-2000:]
    assert audit["calls"] == []
    assert {r["disposition"] for r in camp.results()} == {"pending"}
    assert "vx_test_wrongkey99999" not in proc.stderr + proc.stdout


def test_night_in_new_york_defers_everyone_with_75(tmp_path: Path) -> None:
    camp = write_campaign(tmp_path, contacts=[{"phone": p} for p in numbers(5)])
    with sandbox() as sb:
        proc = run_cli("run", str(camp.path), "--base-url", sb.url, clock=NIGHT)
        audit = sb.audit()
    assert proc.returncode == 75, proc.stderr[-2000:]
    assert audit["calls"] == []
    rows = camp.results()
    assert {(r["disposition"], r["reason"]) for r in rows} == {("pending", "outside_window")}
    assert all(r["next_open"].startswith("2026-06-09T13:00") for r in rows)  # 09:00 EDT


def test_a_second_run_of_the_same_campaign_is_refused_with_75(tmp_path: Path) -> None:
    camp = write_campaign(tmp_path, contacts=[{"phone": p} for p in numbers(40)],
                          pacing="calls_per_second = 5")
    with sandbox() as sb:
        first = popen_cli("run", str(camp.path), "--base-url", sb.url)
        try:
            deadline = time.monotonic() + 30
            while not list(camp.out.glob("*.journal.sqlite")) and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.3)
            second = run_cli("run", str(camp.path), "--base-url", sb.url)
        finally:
            first.wait(timeout=120)
    assert second.returncode == 75
    assert "already running" in second.stderr
    assert first.returncode == 0


def test_sigkill_at_random_moments_then_resume_never_rings_twice(tmp_path: Path) -> None:
    """Kill the dialer with SIGKILL many times mid-run; rerun to completion; judge by audit."""
    phones = numbers(80)
    camp = write_campaign(
        tmp_path, contacts=[{"phone": p} for p in phones], pacing="calls_per_second = 10",
    )
    rng = random.Random(int(os.environ.get("KILL_SEED", "7")))
    faults = {"drop_after_place": 0.1, "server_error": 0.1, "slow": 0.03}
    with sandbox(faults=faults, slow_seconds=3.0) as sb:
        kills = 0
        for _ in range(12):
            proc = popen_cli("run", str(camp.path), "--base-url", sb.url)
            time.sleep(rng.uniform(0.3, 2.5))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                kills += 1
            proc.wait(timeout=60)
        final = None
        for _ in range(6):  # run to completion
            final = run_cli("run", str(camp.path), "--base-url", sb.url)
            if final.returncode == 0:
                break
        audit = sb.audit()
    assert kills >= 6
    assert final is not None and final.returncode == 0, final.stderr[-3000:]
    per_number = assert_nobody_called_twice(audit)
    rows = camp.results()
    assert len(rows) == len(phones)
    assert {r["disposition"] for r in rows} == {"dialed"}
    assert set(per_number) == set(phones)
    calls = {c["id"] for c in audit["calls"]}
    assert {r["call_id"] for r in rows} == calls


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_stop_signal_ends_new_calls_follows_live_ones_and_exits_130_or_143(
    tmp_path: Path, signum: int, code: int
) -> None:
    camp = write_campaign(tmp_path, contacts=[{"phone": p} for p in numbers(60)],
                          pacing="calls_per_second = 4")
    with sandbox(time_scale=0.01) as sb:
        proc = popen_cli("run", str(camp.path), "--base-url", sb.url, "--grace", "30s")
        wait_for_calls(sb, 3)
        proc.send_signal(signum)
        t_signal = time.monotonic()
        proc.wait(timeout=60)
        audit = sb.audit()
    assert proc.returncode == code, proc.stderr[-2000:]
    placed_after = [
        r for r in audit["requests"]
        if r["method"] == "POST" and r["status"] == 201 and r["mono"] > t_signal
    ]
    assert len(placed_after) <= 1  # at most the one call already past its last check
    rows = camp.results()
    dialed = [r for r in rows if r["disposition"] == "dialed"]
    assert 0 < len(dialed) < 60
    assert len(dialed) == len(audit["calls"])  # every live call was followed to its end
    assert {r["disposition"] for r in rows} == {"dialed", "pending"}


def test_second_sigint_leaves_at_once_and_the_rerun_loses_nothing(tmp_path: Path) -> None:
    phones = numbers(30)
    camp = write_campaign(tmp_path, contacts=[{"phone": p} for p in phones],
                          pacing="calls_per_second = 5")
    with sandbox(time_scale=0.05) as sb:  # calls last several seconds: some are live at the stop
        proc = popen_cli("run", str(camp.path), "--base-url", sb.url, "--grace", "60s")
        wait_for_calls(sb, 3)
        proc.send_signal(signal.SIGINT)
        time.sleep(0.3)
        t1 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        left_after = time.monotonic() - t1
        assert proc.stderr is not None
        err = proc.stderr.read()
        assert (camp.out / "results.csv").exists(), err[-3000:]
        status_rows = camp.results()
        rerun = run_cli("run", str(camp.path), "--base-url", sb.url)
        audit = sb.audit()
    assert proc.returncode == 130
    assert left_after < 10  # not the 60 s grace period
    assert any(r["reason"] == "call_live" for r in status_rows)  # left live, not lost
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert_nobody_called_twice(audit)
    rows = camp.results()
    assert {r["disposition"] for r in rows} == {"dialed"}
    assert {r["call_id"] for r in rows} == {c["id"] for c in audit["calls"]}


def test_rows_sharing_a_contact_id_are_one_person_called_once_by_the_audit(
    tmp_path: Path,
) -> None:
    # Dedupe of contact ids (hashed, then compared exactly): rows with the same id and other
    # numbers are one person, called once on the first row's number; an id that differs by a
    # letter's case is another person, called; a cell's surrounding spaces are not the id.
    phones = numbers(7)
    contacts = [
        {"phone": phones[0], "contact_id": "003Dn00000QXz1"},
        {"phone": phones[1], "contact_id": "003Dn00000QXz1"},  # same person, other number
        {"phone": phones[2], "contact_id": "003dn00000QXz1"},  # another id: case differs
        {"phone": phones[3], "contact_id": " 003Dn00000QXz1 "},  # the same id, spaced
        {"phone": phones[4], "contact_id": "C-7"},
        {"phone": phones[5], "contact_id": "C-7"},
        {"phone": phones[6], "contact_id": "003Dn00000QXz1"},  # the first person again
    ]
    camp = write_campaign(tmp_path, contacts=contacts)
    with sandbox() as sb:
        proc = run_cli("run", str(camp.path), "--base-url", sb.url)
        audit = sb.audit()
    assert proc.returncode == 0, proc.stderr[-3000:]
    called = assert_nobody_called_twice(audit)
    assert set(called) == {phones[0], phones[2], phones[4]}
    fates = {int(r["row"]): (r["reason"], r["detail"]) for r in camp.results()}
    for row, first in ((2, 1), (4, 1), (6, 5), (7, 1)):
        assert fates[row] == ("duplicate", f"duplicate_of={first}")
