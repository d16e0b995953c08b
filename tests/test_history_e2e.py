"""The contact history across journals and campaigns: the real CLI, judged by the audit."""

from __future__ import annotations

import json
import shutil
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest

from campaign_dialer.sandbox import SandboxConfig, SandboxServer
from campaign_dialer.sandbox.lifecycle import plan_call

from .e2e_support import (
    KEY,
    MIDDAY,
    assert_nobody_called_twice,
    numbers,
    parse_ts,
    popen_cli,
    run_cli,
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


def test_lost_journal_after_the_platform_forgot_the_keys_rings_nobody_again(
    tmp_path: Path,
) -> None:
    people = numbers(30)
    camp = write_campaign(tmp_path, contacts=[{"phone": p} for p in people])
    # idempotency memory of one real second: "more than 24 h later" for the platform
    with sandbox(idempotency_ttl=1.0) as sb:
        first = run_cli("run", str(camp.path), "--base-url", sb.url)
        before = {r["phone_e164"]: r for r in camp.results()}
        shutil.rmtree(camp.out)  # a new machine, a cleaned out/: the journal is gone
        status = json.loads(run_cli("status", str(camp.path), "--json").stdout)
        time.sleep(1.5)  # the platform's idempotency memory has expired
        again = run_cli("run", str(camp.path), "--base-url", sb.url,
                        clock="2026-06-10T17:30:00Z")  # and a day later by the dialer's clock
        audit = sb.audit()
    assert first.returncode == 0, first.stderr[-2000:]
    assert again.returncode == 0, again.stderr[-2000:]
    assert_nobody_called_twice(audit)
    assert len(audit["calls"]) == 30
    posts = [r for r in audit["requests"] if r["method"] == "POST"]
    assert len(posts) == 30  # the rerun did not even replay a key
    after = {r["phone_e164"]: r for r in camp.results()}
    assert {r["disposition"] for r in after.values()} == {"dialed"}
    assert {p: after[p]["call_id"] for p in people} == {p: before[p]["call_id"] for p in people}
    assert all(after[p]["call_id"].startswith("call_") for p in people)
    assert "journal_restored_from_history" in again.stderr
    assert {k: status[k] for k in ("campaign", "state", "history_attempts")} == {
        "campaign": "e2e", "state": "journal_missing", "history_attempts": 30}


def test_a_second_campaign_holds_back_everyone_called_within_24_hours(tmp_path: Path) -> None:
    people = numbers(20)
    a = write_campaign(tmp_path / "a", contacts=[{"phone": p} for p in people], name="spring")
    b = write_campaign(tmp_path / "b", contacts=[{"phone": p} for p in people], name="summer")
    later = iso(parse_ts(MIDDAY) + timedelta(minutes=10))
    with sandbox() as sb:
        ra = run_cli("run", str(a.path), "--base-url", sb.url)
        check = run_cli("check", str(b.path), "--json", clock=later)
        rb = run_cli("run", str(b.path), "--base-url", sb.url, clock=later)
        audit = sb.audit()
    assert ra.returncode == 0, ra.stderr[-2000:]
    assert rb.returncode == 75, rb.stderr[-2000:]  # rows left for a later run
    assert_nobody_called_twice(audit)
    assert len(audit["calls"]) == 20
    plan = json.loads(check.stdout)
    assert plan["by_reason"] == [
        {"disposition": "pending", "reason": "recently_called", "rows": 20}]
    rows = b.results()
    assert {(r["disposition"], r["reason"]) for r in rows} == {("pending", "recently_called")}
    called_at = {r["phone_e164"]: parse_ts(r["dialed_at"]) for r in a.results()}
    for r in rows:
        # next_open: 24 h after campaign A claimed the person (just after its dial-time check)
        opens = parse_ts(r["next_open"]) - called_at[r["phone_e164"]]
        assert timedelta(hours=24) <= opens <= timedelta(hours=24, seconds=5)
        assert "spring" in r["detail"]


def _no_answer_in_florida(n: int) -> list[str]:
    out = [p for p in numbers(500, areas=("305", "786", "954", "407", "561"))
           if plan_call(SEED, p).final_status == "no_answer"]
    assert len(out) >= n
    return out[:n]


REDIAL = """
[redial]
statuses = ["no_answer"]
max_attempts = 3
min_gap_minutes = 60
max_per_24h = 2
"""


def test_the_florida_cap_counts_every_campaigns_calls(tmp_path: Path) -> None:
    fl = _no_answer_in_florida(2)
    history = "\n[history]\nmin_hours_between_calls = 0\n"
    a = write_campaign(tmp_path / "a", contacts=[{"phone": p} for p in fl], name="fl-a",
                       extra=REDIAL + history, pacing="calls_per_second = 4")
    b = write_campaign(tmp_path / "b", contacts=[{"phone": p} for p in fl], name="fl-b",
                       extra=REDIAL + history, pacing="calls_per_second = 4")
    t0 = parse_ts("2026-06-09T15:00:00Z")  # 11:00 in Florida
    with sandbox() as sb:
        codes = [run_cli("run", str(a.path), "--base-url", sb.url, clock=iso(t0)).returncode,
                 run_cli("run", str(a.path), "--base-url", sb.url,
                         clock=iso(t0 + timedelta(minutes=61))).returncode]
        assert Counter(c["to"] for c in sb.audit()["calls"]) == {p: 2 for p in fl}
        for minutes in (130, 200, 270):  # B would call three times a day on its own
            codes.append(run_cli("run", str(b.path), "--base-url", sb.url,
                                 clock=iso(t0 + timedelta(minutes=minutes))).returncode)
        audit = sb.audit()
    per_number = Counter(c["to"] for c in audit["calls"])
    assert per_number == {p: 3 for p in fl}  # A's two, then B's one: FL allows 3 per 24 h
    assert codes[2] == 75 and codes[3] == 75 and codes[4] == 75
    rows = {r["phone_e164"]: r for r in b.results()}
    for p in fl:
        assert rows[p]["attempts"] == "1"
        assert (rows[p]["disposition"], rows[p]["reason"]) == ("pending", "recently_called")
        assert "state limit (FL)" in rows[p]["detail"]
        # the first of the three calls must be 24 h old before a fourth
        assert parse_ts(rows[p]["next_open"]) >= t0 + timedelta(hours=24)


def test_two_campaigns_started_at_the_same_moment_never_ring_anyone_twice(
    tmp_path: Path,
) -> None:
    people = numbers(60)
    camps = [
        write_campaign(tmp_path / name, contacts=[{"phone": p} for p in people], name=name,
                       pacing="calls_per_second = 30")
        for name in ("left", "right")
    ]
    with sandbox(requests_per_second=200.0, max_live_calls=40) as sb:
        procs = [popen_cli("run", str(c.path), "--base-url", sb.url) for c in camps]
        for proc in procs:
            proc.communicate(timeout=120)
        audit = sb.audit()
    assert {p.returncode for p in procs} <= {0, 75}
    per_number = assert_nobody_called_twice(audit)
    assert set(per_number) == set(people)  # everyone called once, by one campaign or the other
    dialed: Counter[str] = Counter()
    for c in camps:
        for r in c.results():
            if r["disposition"] == "dialed":
                dialed[r["phone_e164"]] += 1
            else:
                assert (r["disposition"], r["reason"]) == ("pending", "recently_called")
    assert dialed == Counter({p: 1 for p in people})


def test_killed_mid_run_then_journal_lost_the_rerun_resolves_from_the_history(
    tmp_path: Path,
) -> None:
    """Open claims (intent sent or not, call live) come back from the history and are
    resolved with the same idempotency keys: nobody rings twice, every row ends dialed."""
    people = numbers(40)
    camp = write_campaign(tmp_path, contacts=[{"phone": p} for p in people],
                          pacing="calls_per_second = 10")
    with sandbox() as sb:
        proc = popen_cli("run", str(camp.path), "--base-url", sb.url)
        deadline = time.monotonic() + 60
        while len(sb.audit()["calls"]) < 12:
            assert time.monotonic() < deadline, "the run placed no call"
            time.sleep(0.02)
        proc.kill()
        proc.wait(timeout=30)
        placed_before = len(sb.audit()["calls"])
        shutil.rmtree(camp.out)
        again = run_cli("run", str(camp.path), "--base-url", sb.url)
        audit = sb.audit()
    assert 12 <= placed_before < 40
    assert again.returncode == 0, again.stderr[-2000:]
    assert_nobody_called_twice(audit)
    assert len(audit["calls"]) == 40
    rows = camp.results()
    assert {r["disposition"] for r in rows} == {"dialed"}
    by_phone = {c["to"]: c["id"] for c in audit["calls"]}
    assert {r["phone_e164"]: r["call_id"] for r in rows} == by_phone


def test_a_claim_the_journal_never_saw_is_resolved_from_the_history(tmp_path: Path) -> None:
    """A crash between the claim and the journal's intent: the rerun sends that claim's key."""
    from campaign_dialer.engine import idempotency_key
    from campaign_dialer.store import open_history

    people = numbers(5)
    camp = write_campaign(tmp_path, contacts=[{"phone": p} for p in people], name="crashy")
    person = f"tel:{people[2]}"
    key = idempotency_key("crashy", person, 1)
    body = {"agent_id": "agt_3d9b21", "phone_number": people[2]}
    with open_history() as h:
        assert h.claim(
            campaign="crashy", person=person, phone_e164=people[2], contact_id=None, attempt=1,
            idem_key=key, at=parse_ts(MIDDAY), min_hours=24, state_limit=None,
            record={"row": 3, "body": json.dumps(body, sort_keys=True), "evidence": "{}",
                    "intent_at": MIDDAY, "updated_at": MIDDAY},
        ).ok
    with sandbox() as sb:
        done = run_cli("run", str(camp.path), "--base-url", sb.url)
        audit = sb.audit()
    assert done.returncode == 0, done.stderr[-2000:]
    assert_nobody_called_twice(audit)
    assert len(audit["calls"]) == 5
    assert [c["idempotency_key"] for c in audit["calls"] if c["to"] == people[2]] == [key]
    assert {r["disposition"] for r in camp.results()} == {"dialed"}


def test_the_redial_policy_holds_journal_or_no_journal(tmp_path: Path) -> None:
    no_answer = [p for p in numbers(300) if plan_call(SEED, p).final_status == "no_answer"][:4]
    assert len(no_answer) == 4
    camp = write_campaign(
        tmp_path, contacts=[{"phone": p} for p in no_answer], pacing="calls_per_second = 4",
        extra="""
        [redial]
        statuses = ["no_answer"]
        max_attempts = 2
        min_gap_minutes = 60
        max_per_24h = 2
        """,
    )
    t0 = parse_ts("2026-06-09T15:00:00Z")
    codes = []
    with sandbox() as sb:
        for minutes in (0, 61, 200, 24 * 60 + 5):
            if camp.out.exists():
                shutil.rmtree(camp.out)  # the journal is lost before every run
            codes.append(run_cli("run", str(camp.path), "--base-url", sb.url,
                                 clock=iso(t0 + timedelta(minutes=minutes))).returncode)
        audit = sb.audit()
    assert Counter(c["to"] for c in audit["calls"]) == {p: 2 for p in no_answer}
    assert codes == [75, 0, 0, 0]
    rows = camp.results()
    assert {(r["disposition"], r["attempts"]) for r in rows} == {("dialed", "2")}
