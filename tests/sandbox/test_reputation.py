"""The caller-ID side of the sandbox: the default pool, the from_substitute fault and the
reputation model (flags, their effect on answering, people's patience), judged by the audit."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from campaign_dialer.sandbox import FAULTS, SandboxConfig, SandboxServer, SubAccountData, plan_call
from campaign_dialer.sandbox.cli import describe, main
from campaign_dialer.sandbox.data import LOCAL_POOL
from campaign_dialer.sandbox.figures import FIGURES

from ._support import AGENT, KEY, auth, client_for, fresh_number
from .test_cli_data_webhooks import LINE, start_cli

pytestmark = pytest.mark.sandbox

UNLIMITED: dict[str, Any] = {"requests_per_second": None, "max_live_calls": None}
#: Thresholds out of the way, for tests about one rule.
NO_FLAGS: dict[str, Any] = {"flag_calls_per_day": 10**9, "flag_window": 10**9}


def when(iso: str) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00"))


def place(client: httpx.Client, to: str, from_id: str | None = None) -> dict[str, Any]:
    body = {"agent_id": AGENT, "phone_number": to}
    if from_id is not None:
        body["from_phone_number_id"] = from_id
    r = client.post("/v1/calls", json=body)
    assert r.status_code == 201, r.text
    return dict(r.json()["data"])


def audit_calls(sb: SandboxServer) -> list[dict[str, Any]]:
    return list(sb.audit()["calls"])


# ---- default data ---------------------------------------------------------------------------


def test_default_data_owns_a_local_pool_in_ten_area_codes() -> None:
    data = SubAccountData.generate(0)
    assert len(LOCAL_POOL) == 10
    for pn_id, number, _state in LOCAL_POOL:
        assert data.phone_numbers[pn_id].number == number
    assert len({number[2:5] for _, number, _ in LOCAL_POOL}) == 10
    assert {state for *_, state in LOCAL_POOL} == {"NY", "NJ", "FL", "OK", "MD", "TX", "CA", "IL"}
    # the records tests and docs name are as they were
    assert data.phone_numbers["pn_55ad12"].number == "+18885550199"
    assert data.agents["agt_7c4e10"].outbound_phone_number_id == "pn_2e7f90"
    owned = {p.number for p in data.phone_numbers.values()}
    for seed in range(50):  # nobody in the seeded contacts is one of the sub-account's numbers
        contacts = SubAccountData.generate(seed).contacts.values()
        assert not owned & {c.phone_number for c in contacts}
    line = describe(data)
    assert "pn_4a1c20 +12125550100 (NY)" in line and "pn_4a1c29 +13125550109 (IL)" in line
    assert "agt_3d9b21" in line and "\n" not in line


def test_a_call_is_placed_from_the_number_asked_for_and_unknown_ids_are_404(
    make_sandbox: Callable[..., SandboxServer],
) -> None:
    sb = make_sandbox(**UNLIMITED)
    with client_for(sb) as client:
        for pn_id, number, _ in LOCAL_POOL:
            assert place(client, fresh_number(), pn_id)["from"] == number
        assert place(client, fresh_number())["from"] == "+18885550199"  # the agent's own
        r = client.post("/v1/calls", json={"agent_id": AGENT, "phone_number": fresh_number(),
                                           "from_phone_number_id": "pn_4a1c99"})
        assert r.status_code == 404
        assert r.json()["error"]["code"] == "phone_number_not_found"
    calls = audit_calls(sb)
    assert [c["from_phone_number_id"] for c in calls] == [p for p, _, _ in LOCAL_POOL] + [
        "pn_55ad12"]
    assert all(c["from_phone_number_id_used"] == c["from_phone_number_id"] for c in calls)
    assert not any(c["from_substituted"] or c["flagged"] for c in calls)


# ---- from_substitute ------------------------------------------------------------------------


def test_from_substitute_places_the_call_from_another_owned_number(
    make_sandbox: Callable[..., SandboxServer],
) -> None:
    assert "from_substitute" in FAULTS
    sb = make_sandbox(faults={"from_substitute": 1.0}, **UNLIMITED)
    data = SubAccountData.generate(0)
    by_number = {p.number: p.id for p in data.phone_numbers.values()}
    with client_for(sb) as client:
        froms = [place(client, fresh_number(), "pn_4a1c20")["from"] for _ in range(20)]
    assert "+12125550100" not in froms
    assert all(f in by_number for f in froms)
    assert len(set(froms)) > 3  # any other owned number, not one fixed stand-in
    calls = audit_calls(sb)
    for call, shown in zip(calls, froms, strict=True):
        assert call["from_phone_number_id"] == "pn_4a1c20"
        assert call["from_phone_number_id_used"] == by_number[shown] != "pn_4a1c20"
        assert call["from"] == shown and call["from_substituted"] is True
        assert "from_substitute" in call["faults"]
    assert all("from_substitute" in r["faults"] for r in sb.audit()["requests"])


def test_from_substitute_needs_a_second_number(
    make_sandbox: Callable[..., SandboxServer],
) -> None:
    one = SubAccountData.from_json({
        "phone_numbers": [{"id": "pn_aaaa01", "number": "+18005550100"}],
        "agents": [{"id": AGENT, "outbound_phone_number_id": "pn_aaaa01"}],
    })
    sb = make_sandbox(data=one, faults={"from_substitute": 1.0}, **UNLIMITED)
    with client_for(sb) as client:
        assert place(client, fresh_number())["from"] == "+18005550100"
    assert audit_calls(sb)[0]["from_substituted"] is False


# ---- off by default -------------------------------------------------------------------------


def test_the_model_is_off_by_default_and_changes_nothing(
    make_sandbox: Callable[..., SandboxServer],
) -> None:
    assert SandboxConfig().reputation is False
    sb = make_sandbox(flag_calls_per_day=1, flag_window=1, call_seconds=(1.0, 2.0),
                      dnc_on_opt_out=False,
                      **UNLIMITED)  # tuned, but not turned on
    numbers = [fresh_number() for _ in range(30)]
    with client_for(sb) as client:
        for _round in range(3):
            for to in numbers:
                place(client, to, "pn_4a1c21")
            time.sleep(0.05)  # every call (<= 2 simulated s) has ended
    audit = sb.audit()
    assert audit["flags"] == [] and audit["stats"]["reputation"] is None
    assert audit["stats"]["flagged_numbers"] == []
    for call in audit["calls"]:
        # every call to a number has the number's one fate, redials included, as before
        assert call["final_status"] == plan_call(0, call["to"], None, (1.0, 2.0)).final_status
        assert call["flagged"] is False and call["repeat_call"] is False
        assert call["declined"] is False


# ---- flags ----------------------------------------------------------------------------------


def test_a_number_over_its_calls_per_day_is_flagged_and_the_flag_recorded(
    make_sandbox: Callable[..., SandboxServer],
) -> None:
    sb = make_sandbox(reputation=True, flag_calls_per_day=5, **UNLIMITED)
    with client_for(sb) as client:
        for _ in range(5):
            place(client, fresh_number(), "pn_4a1c22")
        time.sleep(0.5)  # 250 simulated seconds at the default time scale
        for _ in range(3):
            place(client, fresh_number(), "pn_4a1c22")
        place(client, fresh_number(), "pn_4a1c23")
    audit = sb.audit()
    calls = audit["calls"]
    assert [c["flagged"] for c in calls] == [False] * 5 + [True] * 3 + [False]
    [flag] = audit["flags"]
    assert flag["number_id"] == "pn_4a1c22" and flag["number"] == "+12015550102"
    assert flag["reason"] == "calls_per_day" and flag["detail"] == {"calls_24h": 6}
    at, until = when(flag["at"]), when(flag["until"])
    assert abs((until - at) - timedelta(days=30)) < timedelta(milliseconds=2)
    # the flag's time is simulated: the 6th call, 250+ simulated s after the 5th
    assert flag["at"] == calls[5]["placed_sim_at"]
    assert at - when(calls[4]["placed_sim_at"]) >= timedelta(seconds=250)
    assert audit["stats"]["flagged_numbers"] == ["pn_4a1c22"]
    assert audit["stats"]["reputation"]["flag_calls_per_day"] == 5


def test_calls_per_day_is_a_rolling_24_simulated_hours(
    make_sandbox: Callable[..., SandboxServer],
) -> None:
    # 2e-5 real s per simulated s: a simulated day is 1.73 real seconds
    sb = make_sandbox(reputation=True, flag_calls_per_day=3, time_scale=2e-5, **UNLIMITED)
    with client_for(sb) as client:
        for _ in range(3):
            place(client, fresh_number(), "pn_4a1c24")
        time.sleep(2.0)  # more than a simulated day later: the first three are out of the window
        for _ in range(4):
            place(client, fresh_number(), "pn_4a1c24")
    audit = sb.audit()
    assert [c["flagged"] for c in audit["calls"]] == [False] * 6 + [True]
    assert [f["reason"] for f in audit["flags"]] == ["calls_per_day"]


def test_a_flag_ends_after_flag_days(make_sandbox: Callable[..., SandboxServer]) -> None:
    # a flag of 0.001 simulated days (86.4 s) is 0.17 real seconds at the default time scale
    sb = make_sandbox(reputation=True, flag_calls_per_day=1, flag_days=0.001, **UNLIMITED)
    with client_for(sb) as client:
        place(client, fresh_number(), "pn_4a1c25")
        place(client, fresh_number(), "pn_4a1c25")  # 2 in 24 h: flagged
        time.sleep(0.4)
        sb_flagged = sb.audit()["stats"]["flagged_numbers"]
        place(client, fresh_number(), "pn_4a1c25")  # still 3 in 24 h: flagged anew
    audit = sb.audit()
    assert sb_flagged == []
    assert [c["flagged"] for c in audit["calls"]] == [False, True, True]
    assert len(audit["flags"]) == 2
    first, second = (when(f["at"]) for f in audit["flags"])
    assert when(audit["flags"][0]["until"]) <= second


def test_a_flagged_number_is_answered_far_less(
    make_sandbox: Callable[..., SandboxServer],
) -> None:
    # pn_4a1c26 is flagged from its 2nd call; the control, under every threshold, is not
    sb = make_sandbox(reputation=True, flag_calls_per_day=1, seed=7, **UNLIMITED)
    control_sb = make_sandbox(reputation=True, seed=7, **UNLIMITED)
    with client_for(sb) as client, client_for(control_sb) as control_client:
        place(client, fresh_number(), "pn_4a1c26")
        for _ in range(300):
            place(client, fresh_number(), "pn_4a1c26")
        for _ in range(60):
            place(control_client, fresh_number(), "pn_4a1c26")
    flagged = audit_calls(sb)[1:]
    control = audit_calls(control_sb)
    assert all(c["flagged"] for c in flagged) and not any(c["flagged"] for c in control)

    def would_answer(call: dict[str, Any]) -> bool:  # a first call's fate without the model
        return plan_call(7, call["to"]).final_status == "completed"

    base = [c for c in flagged if would_answer(c)]
    answered = [c for c in base if c["final_status"] == "completed"]
    assert len(base) > 150  # ~60% of 300
    # factor 0.2: ~0.2 of the would-be answered calls are answered (sd ~0.03 at n ~180)
    assert 0.08 < len(answered) / len(base) < 0.32
    for call in base:
        if call not in answered:
            assert call["final_status"] == "no_answer" and call["ended_reason"] == "no_answer"
            assert call["declined"] is True and call["duration_seconds"] == 0
            assert call["statuses"][-2:] == ["ringing", "no_answer"]
    # the label changes who picks up, not the line: other fates are untouched
    for call in flagged:
        if not would_answer(call):
            assert call["final_status"] == plan_call(7, call["to"]).final_status
    control_base = [c for c in control if would_answer(c)]
    assert control_base and all(c["final_status"] == "completed" for c in control_base)


def test_a_high_short_call_share_flags_the_number(
    make_sandbox: Callable[..., SandboxServer],
) -> None:
    # every call lasts 1-5 simulated s: each connected one is short
    sb = make_sandbox(reputation=True, flag_window=10, call_seconds=(1.0, 5.0),
                      flag_calls_per_day=10**9, **UNLIMITED)
    with client_for(sb) as client:
        for _ in range(30):
            place(client, fresh_number(), "pn_4a1c28")
            time.sleep(0.012)  # each call has ended (5 simulated s = 10 ms) before the next
    audit = sb.audit()
    [flag] = audit["flags"]
    assert flag["reason"] == "short_call_share" and flag["number_id"] == "pn_4a1c28"
    assert flag["detail"] == {"short_calls": 10, "window": 10}
    connected = [c for c in audit["calls"] if c["duration_seconds"]]
    tenth = connected[9]  # the window is full when the 10th connected call ends
    assert when(tenth["placed_sim_at"]) < when(flag["at"])
    later = [c for c in audit["calls"] if when(c["placed_sim_at"]) > when(flag["at"])]
    assert later and all(c["flagged"] for c in later)
    assert not any(c["flagged"] for c in audit["calls"][: tenth["seq"] + 1])


def test_normal_length_calls_never_flag_on_short_share(
    make_sandbox: Callable[..., SandboxServer],
) -> None:
    sb = make_sandbox(reputation=True, flag_window=10, flag_calls_per_day=10**9,
                      time_scale=1e-5, **UNLIMITED)  # a 300 s call is 3 ms
    with client_for(sb) as client:
        for _ in range(40):
            place(client, fresh_number(), "pn_4a1c28")
    time.sleep(0.05)
    audit = sb.audit()
    assert sum(1 for c in audit["calls"] if c["duration_seconds"]) >= 10
    assert audit["flags"] == []


# ---- people's patience ----------------------------------------------------------------------


def test_the_third_call_a_day_from_one_number_is_answered_far_less(
    make_sandbox: Callable[..., SandboxServer],
) -> None:
    sb = make_sandbox(reputation=True, call_seconds=(1.0, 2.0), short_call_seconds=0.5,
                      dnc_on_opt_out=False,
                      **NO_FLAGS, **UNLIMITED)
    people = [fresh_number() for _ in range(150)]
    with client_for(sb) as client:
        for _round in range(4):
            for to in people:
                place(client, to, "pn_4a1c29")
            time.sleep(0.02)  # every call (<= 2 simulated s = 4 ms) has ended
        for to in people:  # a 5th call, from another number: not a repeat of that one
            place(client, to, "pn_4a1c20")
    calls = audit_calls(sb)
    rounds = [calls[i * 150:(i + 1) * 150] for i in range(4)]
    other = calls[600:]
    assert len(other) == 150
    assert not any(c["repeat_call"] for c in rounds[0] + rounds[1] + other)
    assert all(c["repeat_call"] for c in rounds[2] + rounds[3])

    def answered(group: list[dict[str, Any]]) -> float:
        return sum(c["final_status"] == "completed" for c in group) / len(group)

    tolerated, repeats = answered(rounds[0] + rounds[1]), answered(rounds[2] + rounds[3])
    assert tolerated > 0.45  # the base model answers ~60%
    assert repeats < 0.25  # ~0.2 of that
    assert answered(other) > 0.35
    for call in rounds[2] + rounds[3]:
        if call["final_status"] == "completed":  # who picks up hangs up within seconds
            assert 2 <= call["duration_seconds"] <= 8
            assert call["outcome"] == "not_interested"
    assert sb.audit()["flags"] == []
    # redials draw their own fate with the model on: some people not reached at first are later
    first = {c["to"]: c["final_status"] for c in rounds[0]}
    assert any(first[c["to"]] != "completed" and c["final_status"] == "completed"
               for c in rounds[1])


# ---- determinism ----------------------------------------------------------------------------


def test_the_model_is_reproducible_and_leaves_the_fault_streams_alone(
    make_sandbox: Callable[..., SandboxServer],
) -> None:
    def run(**settings: Any) -> tuple[list[Any], list[Any]]:
        sb = make_sandbox(seed=3, dnc_on_opt_out=False, call_seconds=(1.0, 2.0),
                          faults={"unknown_status": 0.5, "from_substitute": 0.3},
                          **UNLIMITED, **settings)
        people = [f"+1303555{n:04d}" for n in range(40)]
        with client_for(sb) as client:
            for _round in range(3):
                for to in people:
                    place(client, to, "pn_4a1c20")
                time.sleep(0.02)
        audit = sb.audit()
        calls = audit["calls"]
        fates = [(c["to"], c["final_status"], c["from"], c["flagged"]) for c in calls]
        return fates, [(c["faults"], c["from"]) for c in calls]

    on = {"reputation": True, "flag_calls_per_day": 50}
    fates_a, faults_a = run(**on)
    fates_b, faults_b = run(**on)
    assert fates_a == fates_b
    assert any(flagged for *_, flagged in fates_a)
    _, faults_off = run()
    assert faults_off == faults_a  # same faults and substitutions with the model on or off


# ---- configuration and CLI ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [("flag_calls_per_day", 0), ("flag_window", 1.5), ("flag_short_share", 1.2),
     ("flagged_answer_factor", -0.1), ("flag_days", 0), ("short_call_seconds", float("inf"))],
)
def test_bad_model_settings_are_refused(field: str, value: Any) -> None:
    with pytest.raises(ValueError, match=field):
        SandboxConfig(reputation=True, **{field: value})


def test_config_defaults_are_the_documented_figures() -> None:
    config = SandboxConfig()
    for name, figure in FIGURES.items():
        assert getattr(config, name) == figure.value, name
        assert figure.source and figure.meaning
    assert (config.flag_calls_per_day, config.flag_short_share, config.short_call_seconds,
            config.flag_window, config.flagged_answer_factor, config.flag_days) == (
        100, 0.6, 10.0, 50, 0.2, 30.0)


def test_cli_tuning_without_reputation_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--key", KEY, "--flag-days", "3"]) == 64
    assert "--flag-days" in capsys.readouterr().err
    assert main(["--key", KEY, "--reputation", "--flag-window", "many"]) == 64
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for flag in ("--reputation", "--flag-calls-per-day N", "--flag-short-share X",
                 "--short-call-seconds SECONDS", "--flag-window N",
                 "--flagged-answer-factor F", "--flag-days D", "from_substitute"):
        assert flag in out, flag
    assert "pn_4a1c20 +12125550100 (NY)" in " ".join(out.split())


def test_cli_flags_reach_the_sandbox(tmp_path: Any) -> None:
    audit_file = tmp_path / "audit.json"
    proc, line = start_cli([
        "--key", KEY, "--rps", "0", "--audit-out", str(audit_file), "--reputation",
        "--flag-calls-per-day", "2", "--flag-short-share", "0.5", "--short-call-seconds", "4",
        "--flag-window", "20", "--flagged-answer-factor", "0.1", "--flag-days", "7",
    ])
    try:
        match = LINE.match(line)
        assert match, line
        url = f"http://127.0.0.1:{match.group(1)}"
        stats = httpx.get(f"{url}/_sandbox/audit", trust_env=False).json()["stats"]
        for n in range(3):
            r = httpx.post(f"{url}/v1/calls", headers=auth(), trust_env=False, json={
                "agent_id": AGENT, "phone_number": f"+1404555{n:04d}",
                "from_phone_number_id": "pn_4a1c21"})
            assert r.status_code == 201
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "pn_4a1c21 +17185550101 (NY)" in err
    assert stats["reputation"] == {
        "flag_calls_per_day": 2, "flag_short_share": 0.5, "short_call_seconds": 4.0,
        "flag_window": 20, "flagged_answer_factor": 0.1, "flag_days": 7.0,
        "repeat_calls_tolerated": 2, "repeat_answer_factor": 0.2,
    }
    saved = json.loads(audit_file.read_text())
    [flag] = saved["flags"]
    assert flag["number_id"] == "pn_4a1c21" and flag["reason"] == "calls_per_day"
    assert abs(when(flag["until"]) - when(flag["at"]) - timedelta(days=7)) < timedelta(seconds=1)
    assert [c["flagged"] for c in saved["calls"]] == [False, False, True]
