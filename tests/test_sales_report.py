"""Issue 17: what a sales-ops lead reads (conversions, rates by hour and agent), the A/B split
of a campaign between agents, the forecast `check` makes, and `run` building the report."""

from __future__ import annotations

import csv
import json
import math
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from campaign_dialer import commands, report
from campaign_dialer.config import CampaignSection, ConfigError, load_campaign
from campaign_dialer.forecast import call_rate
from campaign_dialer.planning import make_plan
from campaign_dialer.sandbox import SandboxConfig, SandboxServer, SubAccountData

from .campaign_files import parse_snippet, write_campaign_toml
from .e2e_support import KEY, numbers, run_cli, write_campaign

# --------------------------------------------------------------------------------------------
# A/B: the weighted agent list and the stable assignment
# --------------------------------------------------------------------------------------------

AB = '[{ id = "agt_3d9b21", weight = 1 }, { id = "agt_7c4e10", weight = 1 }]'


def _section(agent_id: Any) -> CampaignSection:
    return CampaignSection.model_validate({"name": "ab", "agent_id": agent_id})


def test_a_plain_agent_string_stays_valid_and_gets_everyone() -> None:
    s = _section("agt_a")
    assert s.agents == [("agt_a", 1.0)]
    assert {s.agent_for("ab", f"tel:+1212555{i:04d}") for i in range(50)} == {"agt_a"}


@given(st.lists(st.text(min_size=1, max_size=30), min_size=1, max_size=30))
def test_each_person_keeps_one_agent(people: list[str]) -> None:
    s = _section([{"id": "agt_a", "weight": 1}, {"id": "agt_b", "weight": 3}])
    again = _section([{"id": "agt_a", "weight": 1}, {"id": "agt_b", "weight": 3}])
    for p in people:
        assert s.agent_for("camp", p) == again.agent_for("camp", p) in {"agt_a", "agt_b"}


def test_the_split_follows_the_weights() -> None:
    s = _section([{"id": "agt_a", "weight": 1}, {"id": "agt_b", "weight": 3}])
    got = Counter(s.agent_for("camp", f"tel:+1212{i:07d}") for i in range(8000))
    assert abs(got["agt_b"] / 8000 - 0.75) < 0.03
    assert s.agent_label == "agt_a 25% / agt_b 75%"


def test_a_bad_agent_list_is_named(tmp_path: Path) -> None:
    (tmp_path / "c.csv").write_text("phone\n+12125550100\n")
    for bad in ('[{ id = "agt_a" }, { id = "agt_a" }]', '[{ id = "agt_a", weight = 0 }]', "[]",
                '[{ name = "agt_a" }]'):
        write_campaign_toml(tmp_path / "campaign.toml", {
            "campaign": {"name": "x", **parse_snippet(f"agent_id = {bad}")},
            "inputs": {"contacts": "c.csv"},
        })
        with pytest.raises(ConfigError, match="agent_id"):
            load_campaign(tmp_path / "campaign.toml")


# --------------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------------


def test_labels_people_read() -> None:
    assert report.label("appointment_booked") == "Appointment booked"
    assert report.label("(none)") == "No outcome reported"
    assert report.label("no_answer") == "No answer"


def test_wilson_interval_and_two_proportion_test() -> None:
    lo, hi = report.wilson(20, 100)
    assert lo is not None and hi is not None
    assert math.isclose(lo, 0.1333, abs_tol=2e-4) and math.isclose(hi, 0.2888, abs_tol=2e-4)
    assert report.wilson(0, 0) == (None, None)
    assert report.wilson(0, 10)[0] == 0.0
    t = report.two_proportion(30, 100, 15, 100)
    # pooled p = .225, se = sqrt(.225 * .775 * .02) = .05906, z = .15 / .05906 = 2.54
    assert math.isclose(t["z"], 2.54, abs_tol=0.01) and t["p_value"] < 0.05
    same = report.two_proportion(10, 100, 11, 100)
    assert same["p_value"] > 0.5
    verdict = report.ab_test([
        {"agent_id": "a", "conversion": {"conversions": 10, "dialed": 100}},
        {"agent_id": "b", "conversion": {"conversions": 11, "dialed": 100}},
    ])
    assert verdict is not None and not verdict["significant"]
    assert "not yet significant" in verdict["verdict"]


# --------------------------------------------------------------------------------------------
# The forecast
# --------------------------------------------------------------------------------------------


def _campaign(folder: Path, phones: list[str], *, window: str, live: int, secs: float) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "contacts.csv").write_text("phone\n" + "".join(f"{p}\n" for p in phones))
    return write_campaign_toml(folder / "campaign.toml", {
        "campaign": {"name": "fc", "agent_id": "agt_3d9b21"},
        "api": {"base_url": "http://127.0.0.1:9", "max_live_calls": live},
        "pacing": {"calls_per_second": 5},
        "inputs": {"contacts": "contacts.csv"},
        "compliance": {**parse_snippet(f"calling_window = {window}"), "require_consent": False,
                       "dnc_ledger": "out/dnc.csv"},
        "history": {"path": "history.sqlite"},
        "report": {"expected_call_seconds": secs},
        "output": {"dir": "out"},
    })


def test_forecast_spills_what_a_window_cannot_take_into_the_next_days(tmp_path: Path) -> None:
    # 09:00-09:10 in New York, one line at a time, a minute a call: 10 rows a day.
    path = _campaign(tmp_path, numbers(25), window='["09:00", "09:10"]', live=1, secs=60)
    campaign = load_campaign(path)
    at = datetime(2026, 6, 9, 13, 0, tzinfo=UTC)  # Tuesday 09:00 EDT
    plan = make_plan(campaign, at)
    try:
        f = commands.plan_forecast(campaign, plan)
    finally:
        assert plan.history is not None
        plan.history.close()
    assert f["calls_per_second"] == pytest.approx(call_rate(5, 1, 60), abs=1e-4)
    assert f["call_seconds_source"] == "[report] expected_call_seconds"
    assert [(d["date"], d["capacity"], d["rows"]) for d in f["days"]] == [
        ("2026-06-09", 10, 10), ("2026-06-10", 10, 10), ("2026-06-11", 10, 5)]
    assert f["finishes_in_window"]["day"] == "2026-06-11"
    assert f["finishes_at"] == "2026-06-11T13:05:00Z"  # 5th call at 09:04, plus its minute
    assert f["waiting"]["rows"] == 0


def test_forecast_names_the_rows_that_will_still_wait(tmp_path: Path) -> None:
    # 20 rows a day for 14 days cannot take 300 rows: the last ones wait, named by row.
    path = _campaign(tmp_path, numbers(300), window='["09:00", "09:10"]', live=1, secs=30)
    campaign = load_campaign(path)
    plan = make_plan(campaign, datetime(2026, 6, 9, 13, 0, tzinfo=UTC))
    try:
        f = commands.plan_forecast(campaign, plan)
    finally:
        assert plan.history is not None
        plan.history.close()
    assert f["rows_placed"] + f["waiting"]["rows"] == 300
    assert f["waiting"]["rows"] > 0
    # calls go out in plan order: the rows that wait are the last ones of the file
    assert f["waiting"]["first"][0]["row"] == f["rows_placed"] + 1


def _window_of(placed: datetime, zones: str, windows: list[dict[str, Any]]) -> str:
    """The forecast window of this number's zones that holds the instant it was placed."""
    hits = [w["label"] for w in windows
            if datetime.fromisoformat(w["start"].replace("Z", "+00:00")) <= placed
            < datetime.fromisoformat(w["end"].replace("Z", "+00:00"))
            and " ".join(w["zones"]) == zones]
    assert len(hits) == 1, f"{placed} ({zones}) is in {len(hits)} forecast windows"
    return hits[0]


@pytest.mark.e2e
def test_forecast_matches_what_the_sandbox_placed_in_simulated_time(tmp_path: Path) -> None:
    """`check --json` at 20:30 in New York, then two runs on the simulated clock: the calls
    the sandbox took, placed at the journal's simulated instants, fall into the windows the
    forecast named, as many in each, and the last one in the window it said it ends in."""
    chicago, la, ny = numbers(4, ("312",)), numbers(4, ("415",)), numbers(4)
    camp = write_campaign(tmp_path, contacts=[{"phone": p} for p in [*ny, *chicago, *la]])
    evening = "2026-06-10T00:30:00Z"  # Tue 20:30 New York, 19:30 Chicago, 17:30 Los Angeles
    proc = run_cli("check", str(camp.path), "--json", clock=evening)
    assert proc.returncode == 0, proc.stderr[-2000:]
    f = json.loads(proc.stdout)["forecast"]
    assert f["rows_to_place"] == 12 and f["waiting"]["rows"] == 0
    by_zone = {tuple(w["zones"]): w for w in f["windows"]}
    assert by_zone[("America/Chicago",)]["rows"] == 4
    assert by_zone[("America/Los_Angeles",)]["rows"] == 4
    assert by_zone[("America/New_York",)]["rows"] == 4
    assert by_zone[("America/New_York",)]["day"] == "2026-06-10"
    assert f["finishes_in_window"]["zones"] == ["America/New_York"]
    data = SubAccountData.generate(0)
    data.dnc.clear()  # the platform's own DNC list is not the forecast's business
    with SandboxServer(SandboxConfig(api_keys=(KEY,), seed=3, time_scale=0.002,
                                     data=data)) as sb:
        first = run_cli("run", str(camp.path), "--base-url", sb.url, clock=evening)
        assert first.returncode == 75, first.stderr[-2000:]  # New York waits for its morning
        second = run_cli("run", str(camp.path), "--base-url", sb.url,
                         clock="2026-06-10T13:00:05Z")
        assert second.returncode == 0, second.stderr[-2000:]
        audit = sb.audit()
    placed = {r["call_id"]: (r["placed_at"], r["zones"]) for r in camp.results()
              if r["call_id"]}
    got: Counter[str] = Counter()
    last: tuple[datetime, str] | None = None
    for call in audit["calls"]:
        at, zones = placed[call["id"]]
        when = datetime.fromisoformat(at.replace("Z", "+00:00"))
        label = _window_of(when, zones, f["windows"])
        got[label] += 1
        last = max(last, (when, label)) if last else (when, label)
    assert got == Counter({w["label"]: w["rows"] for w in f["windows"]})
    assert last is not None and last[1] == f["finishes_in_window"]["label"]


# --------------------------------------------------------------------------------------------
# A/B end to end, and `run` building the report
# --------------------------------------------------------------------------------------------


@pytest.mark.e2e
def test_ab_split_keeps_each_person_with_one_agent_across_reruns(tmp_path: Path) -> None:
    phones = numbers(40)
    camp = write_campaign(tmp_path, contacts=[{"phone": p, "Deal": str(i)}
                                              for i, p in enumerate(phones)],
                          extra="\n[report]\nsegment_by = [\"Deal\"]\n")
    text = camp.path.read_text().replace('agent_id = "agt_3d9b21"', f"agent_id = {AB}")
    camp.path.write_text(text)
    campaign = load_campaign(camp.path)
    with SandboxServer(SandboxConfig(api_keys=(KEY,), seed=3, time_scale=0.002)) as sb:
        proc = run_cli("run", str(camp.path), "--base-url", sb.url)
        audit = sb.audit()
    assert proc.returncode in (0, 75), proc.stderr[-2000:]
    by_number = {c["to"]: c["agent_id"] for c in audit["calls"]}
    assert set(by_number.values()) == {"agt_3d9b21", "agt_7c4e10"}
    for number, agent in by_number.items():
        assert campaign.model.campaign.agent_for(campaign.name, f"tel:{number}") == agent
    with open(camp.out / "results.csv", encoding="utf-8", newline="") as fh:
        header = next(csv.reader(fh))
    assert header.index("agent_id") == header.index("phone_extension") + 1
    assert header.index("agent_id") < header.index("Deal")
    rows = camp.results()
    assert {r["phone_e164"]: r["agent_id"] for r in rows if r["call_id"]} == by_number
    # run built the report at its end
    assert (camp.out / "report.html").exists()
    assert "report:" in proc.stdout
    s = json.loads((camp.out / "summary.json").read_text())
    assert {a["agent_id"] for a in s["agents"]} == {"agt_3d9b21", "agt_7c4e10"}
    assert s["ab_test"]["p_value"] is not None


class _Events:
    def __init__(self) -> None:
        self.warnings: list[tuple[str, dict[str, Any]]] = []

    def warning(self, event: str, **kw: Any) -> None:
        self.warnings.append((event, kw))

    def info(self, event: str, **kw: Any) -> None:
        pass


def test_a_report_that_fails_to_build_leaves_the_run_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = _campaign(tmp_path, numbers(2), window='["09:00", "20:00"]', live=1, secs=60)

    def broken(_: Any) -> Path:
        raise RuntimeError("template exploded")

    events = _Events()
    monkeypatch.setattr(report, "build", broken)
    monkeypatch.setattr(commands.log, "get", lambda *a, **kw: events)
    assert commands.build_report_after_run(load_campaign(path)) is None
    assert [e for e, _ in events.warnings] == ["report_failed"]
    assert "template exploded" in events.warnings[0][1]["error"]


def test_the_expected_call_time_comes_from_the_teams_history(tmp_path: Path) -> None:
    from campaign_dialer.forecast import expected_call_seconds
    from campaign_dialer.store import SqliteHistory

    campaign = load_campaign(_campaign(tmp_path, numbers(2), window='["09:00", "20:00"]',
                                       live=1, secs=200))
    with SqliteHistory(tmp_path / "team.sqlite") as h:
        assert expected_call_seconds(campaign, h) == (200.0, "[report] expected_call_seconds")
        records = [{
            "person": f"tel:+1212555{i:04d}", "attempt": 1, "idem_key": f"k{i}",
            "state": "final", "body": {"phone_number": f"+1212555{i:04d}"},
            "intent_at": "2026-06-09T13:00:00Z", "placed_at": "2026-06-09T13:00:00Z",
            "ended_at": f"2026-06-09T13:{1 + i // 60:02d}:{i % 60:02d}Z",  # 60 + i seconds
        } for i in range(31)]
        h.sync("earlier", records)
        secs, source = expected_call_seconds(campaign, h)
    assert secs == 75.0 and source == "median of 31 recent calls in history"
