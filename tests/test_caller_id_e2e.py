"""The caller-ID governor end to end: the real CLI against the sandbox, judged by its audit.

Every number of a pool stays under its hourly and daily caps across campaigns and runs; a
person is called from the number that called them before; local presence picks the area
code's number, then the state's, and never in a state whose rule says off; an exhausted
pool leaves rows pending `caller_ids_exhausted` with the moment a number frees (exit 75).
"""

from __future__ import annotations

import json
import textwrap
from collections import Counter, defaultdict
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from campaign_dialer.sandbox import PhoneNumber, SandboxConfig, SandboxServer, SubAccountData

from .e2e_support import (
    KEY,
    MIDDAY,
    CampaignFiles,
    assert_nobody_called_twice,
    numbers,
    parse_ts,
    popen_cli,
    run_cli,
    write_campaign,
)
from .pg_cluster import pg_database, pg_url  # noqa: F401 - fixtures

pytestmark = pytest.mark.e2e

# The test's pool: (platform id, E.164), in several area codes and states.
POOL = {
    "pn_ny212": "+12125550180",
    "pn_ny518": "+15185550181",
    "pn_fl305": "+13055550182",
    "pn_ca415": "+14155550183",
}


def pool_data(pool: dict[str, str] = POOL) -> SubAccountData:
    data = SubAccountData.generate(0)
    for pid, number in pool.items():
        data.phone_numbers[pid] = PhoneNumber(id=pid, number=number)
    return data


def sandbox(**kw: Any) -> SandboxServer:
    settings: dict[str, Any] = {
        "api_keys": (KEY,), "seed": 5, "time_scale": 0.002, "requests_per_second": 50.0,
        "max_live_calls": 20, "data": pool_data(),
    }
    settings.update(kw)
    return SandboxServer(SandboxConfig(**settings))


def pool_toml(ids: list[str], **keys: Any) -> str:
    numbers_ = ", ".join(f'{{ id = "{i}", number = "{POOL[i]}" }}' for i in ids)
    lines = [f"numbers = [{numbers_}]"] + [f"{k} = {json.dumps(v)}" for k, v in keys.items()]
    return "[caller_id]\n" + "\n".join(lines) + "\n"


def campaign(folder: Path, phones: list[str], *, name: str, extra: str = "",
             ) -> CampaignFiles:
    return write_campaign(
        folder, contacts=[{"phone": p} for p in phones], name=name,
        extra=textwrap.dedent(extra),
    )


def at(clock: str, **delta: float) -> str:
    return (parse_ts(clock) + timedelta(**delta)).isoformat().replace("+00:00", "Z")


def calls_by_from(audit: dict[str, Any]) -> Counter[str]:
    return Counter(c["from"] for c in audit["calls"])


def test_caps_hold_across_two_campaigns_and_runs_and_an_exhausted_pool_says_when(
    tmp_path: Path,
) -> None:
    ids = ["pn_ny212", "pn_ny518", "pn_ca415"]
    cid = pool_toml(ids, max_calls_per_number_per_hour=3, max_calls_per_number_per_day=5)
    a = campaign(tmp_path / "a", numbers(14), name="cap-a", extra=cid)
    b = campaign(tmp_path / "b", numbers(10, start=200, areas=("212", "718", "646")),
                 name="cap-b", extra=cid)
    with sandbox() as sb:
        first = run_cli("run", str(a.path), "--base-url", sb.url, "--no-progress")
        assert first.returncode == 75, first.stderr
        assert sorted(calls_by_from(sb.audit()).values()) == [3, 3, 3]
        rows = a.results()
        waiting = [r for r in rows if r["reason"] == "caller_ids_exhausted"]
        assert len(waiting) == 14 - 9
        assert all(r["disposition"] == "pending" for r in waiting)
        # the hour cap frees one hour after the number's oldest call (the run's clock)
        opens = {parse_ts(r["next_open"]) for r in waiting}
        assert len(opens) == 1
        [opening] = opens
        assert timedelta(minutes=59) < opening - parse_ts(MIDDAY) < timedelta(minutes=61)

        # Another campaign sharing the history: the pool is still full, no call at all.
        second = run_cli("run", str(b.path), "--base-url", sb.url, "--no-progress")
        assert second.returncode == 75, second.stderr
        assert len(sb.audit()["calls"]) == 9
        assert {r["reason"] for r in b.results()} == {"caller_ids_exhausted"}

        # An hour later: the daily cap (5) leaves 2 more per number, across both campaigns.
        later = at(MIDDAY, hours=1, minutes=2)
        for camp in (b, a):
            run_cli("run", str(camp.path), "--base-url", sb.url, "--no-progress", clock=later)
        per_number = calls_by_from(sb.audit())
        assert sorted(per_number.values()) == [5, 5, 5]
        assert set(per_number) == {POOL[i] for i in ids}
        assert_nobody_called_twice(sb.audit())
        done = [r for r in a.results() + b.results() if r["disposition"] == "dialed"]
        assert len(done) == 15
        assert {r["caller_id_reason"] for r in done} == {"pool"}
        assert {r["from_phone_number_id"] for r in done} == set(ids)
        assert all(r["from_number"] == POOL[r["from_phone_number_id"]] for r in done)
        # every POST carried the chosen number
        posts = [r for r in sb.audit()["requests"] if r["method"] == "POST"]
        assert posts and all(r["body"]["from_phone_number_id"] in ids for r in posts)

        # the report's Caller IDs section counts each campaign's calls per number
        audit_calls = sb.audit()["calls"]
        rep = run_cli("report", str(a.path), "--json", clock=later)
        assert rep.returncode == 0, rep.stderr
        section = {n["id"]: n for n in json.loads(rep.stdout)["caller_ids"]["numbers"]}
        a_people = {r["phone_e164"] for r in a.results()}
        want = Counter(c["from"] for c in audit_calls if c["to"] in a_people)
        assert {POOL[i]: n["calls"] for i, n in section.items() if n["calls"]} == dict(want)
        assert all(0 <= (n["answer_rate"] or 0) <= 1 for n in section.values())
        assert run_cli("report", str(a.path), clock=later).returncode == 0
        page = (a.out / "report.html").read_text()
        assert "<h2>Caller IDs</h2>" in page and "pn_ny518" in page
        status = run_cli("status", str(a.path), "--json", clock=later)
        assert status.returncode == 0, status.stderr
        caller_ids = {n["id"]: n for n in json.loads(status.stdout)["caller_ids"]["numbers"]}
        assert set(caller_ids) == set(ids)
        assert all(n["calls_24h"] == 5 for n in caller_ids.values())


def test_a_person_keeps_the_number_that_called_them_across_redials_and_campaigns(
    tmp_path: Path,
) -> None:
    ids = list(POOL)
    phones = numbers(8)
    redial = """
        [redial]
        statuses = ["no_answer", "busy", "voicemail", "failed"]
        max_attempts = 2
        min_gap_minutes = 0
        max_per_24h = 3
        [history]
        min_hours_between_calls = 0
    """
    a = campaign(tmp_path / "a", phones, name="sticky-a", extra=redial + pool_toml(ids))
    b = campaign(tmp_path / "b", phones, name="sticky-b", extra=redial + pool_toml(ids))
    with sandbox(seed=11) as sb:
        for camp in (a, b):
            proc = run_cli("run", str(camp.path), "--base-url", sb.url, "--no-progress")
            assert proc.returncode in (0, 75), proc.stderr
        froms: dict[str, set[str]] = defaultdict(set)
        for c in sb.audit()["calls"]:
            froms[c["to"]].add(c["from"])
        assert set(froms) == set(phones)
        assert all(len(f) == 1 for f in froms.values()), froms
        assert sum(len(v) for v in froms.values()) == len(phones)
        assert len(sb.audit()["calls"]) >= 2 * len(phones)  # both campaigns called everyone
        second = {r["phone_e164"]: r for r in b.results()}
        assert {r["caller_id_reason"] for r in second.values()} == {"sticky"}


def test_local_presence_prefers_the_area_code_then_the_state_and_never_where_off(
    tmp_path: Path,
) -> None:
    ny212, ny718, fl305, fl786 = ("+12125550111", "+17185550112", "+13055550113",
                                  "+17865550114")
    camp = campaign(tmp_path, [ny212, ny718, fl305, fl786], name="local",
                    extra=pool_toml(list(POOL), local_presence=True))
    with sandbox() as sb:
        proc = run_cli("run", str(camp.path), "--base-url", sb.url, "--no-progress")
        assert proc.returncode == 0, proc.stderr
        used = {c["to"]: c["from"] for c in sb.audit()["calls"]}
    assert used[ny212] == POOL["pn_ny212"]  # the recipient's area code
    assert used[ny718] in (POOL["pn_ny212"], POOL["pn_ny518"])  # the recipient's state
    # Florida's rule (shipped table): local presence off, so no Florida number is shown
    assert used[fl305] != POOL["pn_fl305"] and used[fl786] != POOL["pn_fl305"]
    reasons = {r["phone_e164"]: r["caller_id_reason"] for r in camp.results()}
    assert reasons[ny212] == "local_area_code"
    assert reasons[ny718] == "local_state"
    assert reasons[fl305] == reasons[fl786] == "pool"


def test_a_pool_beside_from_phone_number_id_is_refused_78(tmp_path: Path) -> None:
    camp = campaign(tmp_path, numbers(2), name="both", extra=pool_toml(["pn_ny212"]))
    text = camp.path.read_text().replace(
        "[campaign]\n", '[campaign]\nfrom_phone_number_id = "pn_55ad12"\n', 1)
    camp.path.write_text(text)
    proc = run_cli("check", str(camp.path))
    assert proc.returncode == 78
    assert "from_phone_number_id" in proc.stderr and "[caller_id]" in proc.stderr


def test_on_postgresql_three_processes_of_two_campaigns_never_push_a_number_past_a_cap(
    tmp_path: Path, pg_database: str,  # noqa: F811
) -> None:
    """Two processes of one campaign and one of another, at once, on a team database: the
    counts are taken in the claim's transaction, so the hour cap holds exactly. (Only one
    round: a shared campaign's waiting rows are due on the database's own clock, which a
    test clock moved forward does not move.)"""
    ids = ["pn_ny212", "pn_ny518", "pn_ca415"]
    cid = pool_toml(ids, max_calls_per_number_per_hour=4, max_calls_per_number_per_day=6)
    store = f'[store]\nurl = "{pg_database}"\nlease_seconds = 30\n'
    a = campaign(tmp_path / "a", numbers(20), name="pg-cap-a", extra=store + cid)
    b = campaign(tmp_path / "b", numbers(20, start=300, areas=("212", "718", "646", "917")),
                 name="pg-cap-b", extra=store + cid)
    with sandbox(seed=7) as sb:
        procs = [popen_cli("run", str(c.path), "--base-url", sb.url, "--no-progress")
                 for c in (a, a, b)]
        errs = [p.communicate(timeout=120)[1] for p in procs]
        audit = sb.audit()
    for p, err in zip(procs, errs, strict=True):
        assert p.returncode == 75, err[-3000:]
    assert sorted(calls_by_from(audit).values()) == [4, 4, 4]  # the hour cap, never past it
    assert_nobody_called_twice(audit)
    rows = a.results() + b.results()
    waiting = [r for r in rows if r["disposition"] == "pending"]
    assert len(waiting) == 40 - 12
    assert {r["reason"] for r in waiting} == {"caller_ids_exhausted"}, [
        (r["row"], r["reason"]) for r in waiting if r["reason"] != "caller_ids_exhausted"]
    assert all(r["next_open"] for r in waiting)
    dialed = [r for r in rows if r["disposition"] == "dialed"]
    assert sorted(Counter(r["from_phone_number_id"] for r in dialed).values()) == [4, 4, 4]


def test_a_number_the_sandbox_flags_rests_and_later_calls_move_to_the_others(
    tmp_path: Path,
) -> None:
    """The sandbox's reputation model labels pn_ny212 after 6 calls a day; its calls then go
    unanswered, the health rule rests it (answered share under the floor), `status` says so,
    and the next campaign's calls all go out from the other numbers."""
    health = {"health_window_calls": 6, "min_answer_share": 0.3}
    warm = campaign(tmp_path / "warm", numbers(16), name="warm",
                    extra=pool_toml(["pn_ny212"], **health))
    after = campaign(tmp_path / "after", numbers(10, start=100), name="after",
                     extra=pool_toml(["pn_ny212", "pn_ny518", "pn_ca415"], **health))
    with sandbox(seed=3, reputation=True, flag_calls_per_day=6,
                 flagged_answer_factor=0.01) as sb:
        first = run_cli("run", str(warm.path), "--base-url", sb.url, "--no-progress")
        assert first.returncode in (0, 75), first.stderr
        flags = sb.audit()["flags"]
        assert [f["number_id"] for f in flags] == ["pn_ny212"]
        status = json.loads(run_cli("status", str(warm.path), "--json").stdout)
        [ny212] = status["caller_ids"]["numbers"]
        assert ny212["resting_until"] and ny212["rest_reason"] == "low_answer_share"
        assert "caller_id_rested" in first.stderr
        before = len(sb.audit()["calls"])
        second = run_cli("run", str(after.path), "--base-url", sb.url, "--no-progress")
        assert second.returncode == 0, second.stderr
        later = sb.audit()["calls"][before:]
    assert len(later) == 10
    assert {c["from"] for c in later} == {POOL["pn_ny518"], POOL["pn_ca415"]}
    # a person rests or restores a number by hand
    assert run_cli("caller-id", "restore", str(after.path), "--number", "pn_ny212"
                   ).returncode == 0
    status = json.loads(run_cli("status", str(after.path), "--json").stdout)
    assert {n["id"]: n["resting_until"] for n in status["caller_ids"]["numbers"]} == {
        "pn_ny212": None, "pn_ny518": None, "pn_ca415": None}
    assert run_cli("caller-id", "rest", str(after.path), "--number", "pn_ca415", "--days", "2"
                   ).returncode == 0
    status = json.loads(run_cli("status", str(after.path), "--json").stdout)
    rested = {n["id"]: n for n in status["caller_ids"]["numbers"]}["pn_ca415"]
    assert rested["rest_reason"] == "manual"
    assert parse_ts(rested["resting_until"]) - parse_ts(MIDDAY) < timedelta(days=2, minutes=1)
    assert run_cli("caller-id", "rest", str(after.path), "--number", "pn_nope").returncode == 64
    for days in ("nan", "0", "-3", "1e9"):  # a usage error, never a traceback
        assert run_cli("caller-id", "rest", str(after.path), "--number", "pn_ca415",
                       "--days", days).returncode == 64


def test_a_platform_that_calls_from_another_number_is_warned_about_once(tmp_path: Path) -> None:
    camp = campaign(tmp_path, numbers(6), name="subst",
                    extra=pool_toml(["pn_ny212", "pn_ny518", "pn_ca415"]))
    with sandbox(faults={"from_substitute": 1.0}) as sb:
        proc = run_cli("run", str(camp.path), "--base-url", sb.url, "--no-progress")
        audit = sb.audit()
    assert proc.returncode == 0, proc.stderr
    assert all(c["from_substituted"] for c in audit["calls"])
    events = [json.loads(line) for line in proc.stderr.splitlines() if line.startswith("{")]
    subst = [e for e in events if e.get("event") == "caller_id_substituted"]
    assert len(subst) == 6  # every one recorded in the log ...
    assert [e["level"] for e in subst].count("warning") == 1  # ... and warned about once
    asked = {r["phone_e164"]: r["from_number"] for r in camp.results()}
    used = {c["to"]: c["from"] for c in audit["calls"]}
    assert all(asked[p] != used[p] for p in asked)  # results say what was asked for


def test_check_weighs_the_pool_against_the_forecast_and_warns_one_number_a_day(
    tmp_path: Path,
) -> None:
    phones = numbers(200)
    lone = campaign(tmp_path / "lone", phones, name="lone")
    out = run_cli("check", str(lone.path), "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["caller_ids"]["pool"] is None
    assert any("calls planned from one number" in w for w in data["warnings"])

    pool = campaign(tmp_path / "pool", phones, name="pool",
                    extra=pool_toml(["pn_ny212", "pn_fl305"], local_presence=True))
    out = run_cli("check", str(pool.path), "--json")
    assert out.returncode == 0, out.stderr
    cid = json.loads(out.stdout)["caller_ids"]
    assert (cid["pool"], cid["daily_capacity"], cid["hourly_capacity"]) == (2, 150, 40)
    assert cid["exhausted_on"] == "2026-06-09"  # 200 rows in one day, 150 a day ...
    assert any("hourly cap" in w for w in cid["warnings"])  # ... but 40 an hour
    assert {"FL", "SC", "VA"} <= set(cid["local_presence_off_states"])
    text = run_cli("check", str(pool.path))
    assert "caller IDs: 2 of 2 number(s) usable" in text.stdout
    with open(pool.folder / "out" / "plan.csv", encoding="utf-8", newline="") as fh:
        header = fh.readline().strip().split(",")
    assert header[-3:] == ["from_phone_number_id", "from_number", "caller_id_reason"]


def test_a_pool_number_the_platform_does_not_know_is_named_not_the_agent(
    tmp_path: Path,
) -> None:
    """`phone_number_not_found` for a pool number stopped the run (78) telling the user to fix
    campaign.agent_id (the pool leaves campaign.from_phone_number_id unset, which the message
    took for 'the agent's own number is gone'): the key to fix is caller_id.numbers, and the
    id is the pool number's."""
    pool = {"pn_gone": "+12125550177"}
    extra = ('[caller_id]\nnumbers = [{ id = "pn_gone", number = "+12125550177" }]\n')
    camp = campaign(tmp_path, numbers(2), name="gone", extra=extra)
    with sandbox(data=pool_data({k: v for k, v in POOL.items() if k not in pool})) as sb:
        proc = run_cli("run", str(camp.path), "--base-url", sb.url, "--no-progress")
        assert not sb.audit()["calls"]
    assert proc.returncode == 78, proc.stderr
    failed = [json.loads(line) for line in proc.stderr.splitlines()
              if line.startswith("{") and '"run_aborted"' in line]
    assert failed and "caller_id.numbers" in failed[-1]["reason"], proc.stderr[-2000:]
    assert "pn_gone" in failed[-1]["reason"]
    assert "campaign.agent_id" not in failed[-1]["reason"]
