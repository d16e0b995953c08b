"""The report's figures from aggregates (issue #25) against a straightforward computation: one
Python loop over the rows of a random campaign, each definition written out as the README
states it, no group-by and no mask."""

from __future__ import annotations

import random
import re
from collections import Counter, defaultdict
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from campaign_dialer import report, vocab
from campaign_dialer.compliance import state_for_number
from campaign_dialer.config import load_campaign
from campaign_dialer.report.aggregate import Rows
from campaign_dialer.report.metrics import agent_figures
from campaign_dialer.store.model import CALL_FACT_COLUMNS

from .campaign_files import write_campaign_toml

SUCCESS = ("appointment_booked", "qualified")
REASONS = ("", "not_planned", "outside_window", "unknown_timezone", "recently_called",
           "caller_ids_exhausted", "dnc_local", "dnc_flag", "no_consent", "consent_revoked",
           "duplicate", "invalid_phone", "blank_phone", "canceled", "dnc_listed",
           "invalid_request", "completed", "unresolved")
STATUSES = ("completed", "completed", "no_answer", "busy", "voicemail", "failed", "canceled",
            "", None, "in_progress")
OUTCOMES = ("appointment_booked", "qualified", "not_interested", "opt_out", "", None,
            "left_voicemail")
LOCAL_TIMES = ("2026-06-09T13:05-04:00 2026-06-09T12:05-05:00", "2026-06-13 7:59-07:00",
               "2026-06-14T23:10+00:00", "2026-06-10T24:00-04:00", "2026-02-30T10:00-05:00",
               "garbage", "", None, " 2026-06-11T09:00-05:00")
PHONES = ("+12125550100", "+14155550101", "+13125550102", "+16475550103", "+447911123456",
          "+1999555010", "", None)
COMPANIES = ("Acme", " Acme ", "Globex", "", None, "Initech", "globex")
AGENTS = ("agt_a", "agt_b", "agt_c")


def _text(v: Any) -> str:
    return "" if v is None else str(v)


def _campaign(tmp_path: Path) -> Any:
    (tmp_path / "contacts.csv").write_text("phone\n+12125550100\n", encoding="utf-8")
    path = write_campaign_toml(tmp_path / "campaign.toml", {
        "campaign": {"name": "agg", "agent_id": "agt_a"},
        "inputs": {"contacts": "contacts.csv"},
        "compliance": {"require_consent": False},
        "report": {"success_outcomes": list(SUCCESS), "segment_by": ["company"]},
    })
    return load_campaign(path)


def _random_campaign(seed: int, n: int) -> tuple[pd.DataFrame, pd.DataFrame, dict[int, str]]:
    rnd = random.Random(seed)
    rows: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    agent_of: dict[int, str] = {}
    for i in range(n):
        row = i + 1
        disp = rnd.choice(vocab.DISPOSITIONS)
        rows.append({
            "row": row, "disposition": disp, "reason": rnd.choice(REASONS) or None,
            "status": rnd.choice(STATUSES), "outcome": rnd.choice(OUTCOMES),
            "local_times": rnd.choice(LOCAL_TIMES), "phone_e164": rnd.choice(PHONES),
            "company": rnd.choice(COMPANIES),
            "duration_seconds": rnd.choice((None, 0.0, 12.5, 61.0, 300.0, -1.0)),
        })
        for attempt in range(1, rnd.choice((0, 1, 1, 2)) + 1):
            agent = rnd.choice(AGENTS[:2]) if seed % 2 else rnd.choice(AGENTS)
            calls.append({c: None for c in CALL_FACT_COLUMNS} | {
                "id": len(calls) + 1, "row": row, "attempt": attempt, "state": "final",
                "posts": 1, "intent_at": "2026-06-09T17:00:00Z",
                "placed_at": "2026-06-09T17:00:01Z", "agent_id": agent,
                "duration_seconds": 30.0})
            agent_of[row] = agent
    df = pd.DataFrame(rows)
    for c in ("disposition", "reason", "status", "outcome", "local_times", "phone_e164",
              "company"):
        df[c] = df[c].astype("string")
    return df, pd.DataFrame(calls, columns=list(CALL_FACT_COLUMNS)), agent_of


def _by_first(counts: dict[str, list[int]]) -> list[dict[str, Any]]:
    """Rate rows biggest first, ties by the first row (the order the report promises)."""
    items = sorted(counts.items(), key=lambda kv: (-kv[1][0], kv[1][3]))
    return [{"key": k, "dialed": v[0], "reached": v[1], "conversions": v[2]} for k, v in items]


def _straightforward(df: pd.DataFrame, agent_of: dict[int, str]) -> dict[str, Any]:
    heat = [[[0, 0, 0] for _ in range(24)] for _ in range(7)]
    states: dict[str, list[int]] = {}
    companies: dict[str, list[int]] = {}
    per_agent: dict[str, Counter[str]] = defaultdict(Counter)
    c: Counter[str] = Counter()
    stage_held: Counter[str] = Counter()
    stages = (("valid", tuple(r for r in vocab.CONTACT_REASONS if r != "dnc_flag")),
              ("not_dnc", ("dnc_flag", *vocab.DNC_REASONS)),
              ("consent", vocab.CONSENT_REASONS), ("window", vocab.WINDOW_REASONS),
              ("not_recent", vocab.HISTORY_REASONS))
    for pos, r in enumerate(df.to_dict("records")):
        d, reason = _text(r["disposition"]), _text(r["reason"])
        status, outcome = _text(r["status"]), _text(r["outcome"])
        dialed = d == "dialed"
        connected = dialed and (status == "completed" or (
            outcome != "" and status not in vocab.NOT_CONNECTED_STATUSES))
        won = dialed and outcome in SUCCESS
        held = d == "suppressed" or (d == "pending" and reason in vocab.HELD_PENDING_REASONS)
        c["rows"] += 1
        c[d] += 1
        c["connected"] += connected
        c["won"] += won
        c["held"] += held
        c["outcomes"] += dialed and outcome != ""
        for key, reasons in stages:
            stage_held[key] += held and reason in reasons
        agent = agent_of.get(int(r["row"]))
        if agent is not None:
            per_agent[agent]["dialed"] += dialed
            per_agent[agent]["won"] += won
            per_agent[agent]["rows"] += 1
        if not dialed:
            continue
        m = re.match(r"^\s*(\d{4}-\d{2}-\d{2})[T ](\d{1,2}):", _text(r["local_times"]))
        if m:
            try:
                day = date.fromisoformat(m.group(1)).weekday()
            except ValueError:
                day = None
            hour = int(m.group(2))
            if day is not None and hour <= 23:
                cell = heat[day][hour]
                cell[0] += 1
                cell[1] += connected
                cell[2] += won
        phone = _text(r["phone_e164"])
        prefix = phone[:5]
        state = "(unknown)"
        if prefix.startswith("+1") and len(prefix) == 5:
            state = state_for_number(prefix + "5550100") or "(unknown)"
        company = _text(r["company"]).strip()
        for table, key in ((states, state), (companies, company)):
            got = table.setdefault(key, [0, 0, 0, pos])
            got[0] += 1
            got[1] += connected
            got[2] += won
    left = c["rows"]
    funnel = {"rows": left}
    for key, _ in stages:
        left -= stage_held[key]
        funnel[key] = left
    funnel["eligible"] = c["rows"] - c["held"]
    return {"c": c, "heat": heat, "states": _by_first(states),
            "companies": _by_first(companies), "funnel": funnel, "agents": per_agent}


@pytest.mark.parametrize("seed", range(6))
def test_figures_from_aggregates_equal_a_loop_over_the_rows(seed: int, tmp_path: Path) -> None:
    campaign = _campaign(tmp_path)
    df, calls, agent_of = _random_campaign(seed, 1500 + 37 * seed)
    want = _straightforward(df, agent_of)
    c = want["c"]

    figs = report.figures(df, calls)
    h = figs["headline"]
    assert (h["rows"], h["dialed"], h["connected"], h["outcomes"], h["eligible"]) == (
        c["rows"], c["dialed"], c["connected"], c["outcomes"], c["rows"] - c["held"])
    assert figs["by_disposition"] == {d: c[d] for d in vocab.DISPOSITIONS}
    funnel = {f["stage"]: f["rows"] for f in figs["funnel"]}
    assert {k: funnel[k] for k in want["funnel"]} == want["funnel"]

    biz = report.business(df, calls, campaign)
    t = biz["tiles"]
    assert (t["rows"], t["dialed"], t["reached"], t["conversions"]) == (
        c["rows"], c["dialed"], c["connected"], c["won"])
    heat = [[[x["dialed"], x["reached"], x["conversions"]] for x in day]
            for day in biz["heatmap"]["cells"]]
    assert heat == want["heat"]
    known = sum(x[0] for day in want["heat"] for x in day)
    assert biz["heatmap"]["dialed_without_local_time"] == c["dialed"] - known
    by_hour = [[r["dialed"], r["reached"], r["conversions"]] for r in biz["by_local_hour"]]
    assert by_hour == [[sum(want["heat"][d][hr][k] for d in range(7)) for k in range(3)]
                       for hr in range(24)]
    rate_keys = ("key", "dialed", "reached", "conversions")
    assert [{k: r[k] for k in rate_keys} for r in biz["by_state"]] == want["states"]
    assert [{k: r[k] for k in rate_keys} for r in biz["segments"]["company"]] == \
        want["companies"]

    agents = agent_figures(Rows(df), calls, SUCCESS)
    assert {a["agent_id"]: (a["headline"]["rows"], a["conversion"]["dialed"],
                            a["conversion"]["conversions"]) for a in agents} == {
        name: (k["rows"], k["dialed"], k["won"]) for name, k in want["agents"].items()}
    ab = report.ab_test(agents)
    assert ab is not None
    top = sorted(want["agents"].items(), key=lambda kv: -kv[1]["dialed"])[:2]
    assert {ab["a"], ab["b"]} == {name for name, _ in top}
