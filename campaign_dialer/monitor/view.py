"""The live view of a campaign: one dict, read from its journal, for the page and the terminal.

Read from the journal (SQLite file or the team's database), so the page a `run` serves and
`status --watch` in any shell show the same figures, every process's calls included. No phone
number, contact id or call id is in it: rows are named by their number in the input; the
last errors carry the platform's or the dialer's message (scrubbed of secrets when written),
which the page shows as text only.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from rich.console import Group
from rich.table import Table
from rich.text import Text

from campaign_dialer.monitor.budget import budget_zone, figures, spend_of
from campaign_dialer.monitor.metrics import DEFAULT_NUMBER
from campaign_dialer.store import FINAL, NOT_CALLED, PLACED, iso, parse_iso
from campaign_dialer.store.access import process_rows, processes
from campaign_dialer.vocab import DIALED, ERROR, PENDING, REJECTED, SUPPRESSED

LAST_ERRORS = 8
PACE_WINDOW_S = 60.0


def next_pending_open(fates: pa.Table) -> str | None:
    """The earliest next_open of a pending row of `fates` (a journal's `fate_table`; ISO
    text sorts as time), None when no pending row waits for a time."""
    nxt = fates["next_open"].filter(pc.equal(fates["disposition"], PENDING))
    nxt = nxt.filter(pc.not_equal(nxt, ""))  # a null compares null: dropped too
    return pc.min(nxt).as_py() if len(nxt) else None


def live_view(
    journal: Any, cfg: Any, *, now: datetime, expected_call_s: float, running: bool,
) -> dict[str, Any]:
    """Everything the page and `status --watch` show, as plain JSON-ready values (on a
    PostgreSQL store with the campaign's `run` processes)."""
    procs = processes(journal)
    with journal.snapshot():
        counts = journal.fate_counts()
        next_window = next_pending_open(journal.fate_table())
        attempts = journal.attempts()
        control = journal.control()
        runs = journal.runs()
    by_disp: Counter[str] = Counter()
    waiting: Counter[str] = Counter()
    for (d, reason), n in counts.items():
        by_disp[d] += n
        if d == PENDING:
            waiting[reason or "not_dialed_yet"] += n
    rows = sum(by_disp.values())
    planned = rows - by_disp.get(SUPPRESSED, 0)
    done = by_disp.get(DIALED, 0) + by_disp.get(REJECTED, 0) + by_disp.get(ERROR, 0)

    called = [a for a in attempts if a.state not in NOT_CALLED]
    placed_at = [t for t in (parse_iso(a.placed_at) for a in attempts) if t is not None]
    recent = sum(1 for t in placed_at if now - timedelta(seconds=PACE_WINDOW_S) < t <= now)
    finals = [a for a in attempts if a.state == FINAL]
    statuses = Counter(a.status or "unknown" for a in finals)
    outcomes = Counter(a.outcome for a in finals if a.outcome)
    success = list(cfg.report.success_outcomes)
    run_id = max((int(r["id"]) for r in runs), default=None)

    by_number: dict[str, dict[str, Any]] = {}
    hour, day = now - timedelta(hours=1), now - timedelta(hours=24)
    pool = getattr(cfg, "caller_id", None)

    def entry(number: str) -> dict[str, Any]:
        return by_number.setdefault(number, {
            "number_id": number, "last_hour": 0, "last_24h": 0, "this_run": 0, "total": 0,
            # a [caller_id] pool's caps (counted there over every campaign of the history;
            # here this campaign's calls)
            "max_per_hour": pool.max_calls_per_number_per_hour if pool else None,
            "max_per_day": pool.max_calls_per_number_per_day if pool else None,
        })

    for pid in (pool.ids if pool else ()):
        entry(pid)
    for a in called:
        number = str(a.body.get("from_phone_number_id") or DEFAULT_NUMBER)
        n = entry(number)
        began = parse_iso(a.intent_at)
        n["total"] += 1
        if began is not None and began > hour:
            n["last_hour"] += 1
        if began is not None and began > day:
            n["last_24h"] += 1
        if run_id is not None and a.run_id == run_id:
            n["this_run"] += 1

    errors = sorted((a for a in attempts if a.error), key=lambda a: (a.intent_at, a.id),
                    reverse=True)[:LAST_ERRORS]
    view: dict[str, Any] = {
        "campaign": journal.campaign,
        "generated_at": iso(now),
        "running": running,
        "control": control,
        "runs": len(runs),
        "progress": {
            "rows": rows, "planned": planned, "done": done,
            "percent": round(100.0 * done / planned, 1) if planned else 100.0,
            "by_disposition": dict(sorted(by_disp.items())),
            "waiting": dict(waiting.most_common()),
        },
        "pace": {
            "configured_per_second": cfg.pacing.calls_per_second,
            "last_minute_per_second": round(recent / PACE_WINDOW_S, 3),
            "placed_last_minute": recent,
        },
        "live_calls": sum(1 for a in attempts if a.state == PLACED),
        "max_live_calls": cfg.api.max_live_calls,
        "calls_placed": len(placed_at),
        "outcomes": {
            "by_status": dict(statuses.most_common()),
            "by_outcome": dict(outcomes.most_common()),
            "conversions": sum(outcomes.get(o, 0) for o in success),
            "success_outcomes": success,
        },
        "next_window_at": next_window,
        "caller_ids": sorted(by_number.values(), key=lambda n: n["number_id"]),
        "budget": budget_view(cfg, attempts, now=now, expected_call_s=expected_call_s),
        "errors": [
            {"row": a.row, "attempt": a.attempt, "state": a.state,
             "code": a.error_code or (str(a.http_status) if a.http_status else ""),
             "message": (a.error or "")[:300], "at": a.intent_at}
            for a in errors
        ],
    }
    if procs is not None:
        view["processes"] = process_rows(procs)
    return view


def budget_view(
    cfg: Any, attempts: list[Any], *, now: datetime, expected_call_s: float,
) -> dict[str, Any] | None:
    """Spent, limit and left for each `[budget]` key the campaign sets (None: no budget)."""
    budget = cfg.budget
    if budget is None or not budget.any:
        return None
    zone = budget_zone(cfg.report.display_timezone)
    spend = spend_of(attempts, now=now, zone=zone)
    f = figures(spend, cfg.report, expected_call_s)
    out: dict[str, Any] = {"expected_call_seconds": expected_call_s, "limits": []}

    def limit(key: str, spent: float, committed: float, cap: float) -> None:
        out["limits"].append({"key": key, "limit": cap, "spent": round(spent, 2),
                              "committed": round(committed, 2),
                              "left": round(max(cap - committed, 0.0), 2)})

    if budget.max_cost is not None:
        limit("max_cost", float(f["cost"] or 0), float(f["cost_committed"] or 0), budget.max_cost)
    if budget.max_talk_minutes is not None:
        limit("max_talk_minutes", float(f["talk_seconds"] or 0) / 60,
              float(f["talk_seconds_committed"] or 0) / 60, budget.max_talk_minutes)
    if budget.max_calls_per_day is not None:
        limit("max_calls_per_day", spend.calls_today, spend.calls_today,
              float(budget.max_calls_per_day))
        out["day_ends_at"] = iso(spend.day_end)
    out["figures"] = f
    return out


def render(view: dict[str, Any]) -> Any:
    """The view as a rich renderable (`status --watch`); every value is shown as text."""
    p, pace, out = view["progress"], view["pace"], view["outcomes"]
    state = ("running" if view["running"] else "not running") + (
        f", {view['control']}" if view["control"] != "active" else "")
    head = Text.assemble(
        (f"{view['campaign']}", "bold"), f"  {state}  at {view['generated_at']}\n",
        f"progress {p['done']:,}/{p['planned']:,} rows ({p['percent']:g}%) of {p['rows']:,}; "
        f"live calls {view['live_calls']} (max {view['max_live_calls']}); "
        f"placed {view['calls_placed']:,}\n",
        f"pace {pace['last_minute_per_second']:.2f}/s over the last minute "
        f"(configured {pace['configured_per_second']:g}/s); next window "
        f"{view['next_window_at'] or '-'}\n",
        f"conversions {out['conversions']:,}; outcomes "
        + (", ".join(f"{k} {v}" for k, v in out["by_status"].items()) or "-"),
    )
    parts: list[Any] = [head]
    if p["by_disposition"]:
        t = Table(title="rows", title_justify="left")
        for col in ("fate", "rows", "waiting for"):
            t.add_column(col)
        waiting = ", ".join(f"{k} {v}" for k, v in p["waiting"].items())
        for d, n in p["by_disposition"].items():
            t.add_row(Text(d), str(n), Text(waiting if d == PENDING else ""))
        parts.append(t)
    if view["caller_ids"]:
        t = Table(title="caller IDs", title_justify="left")
        for col in ("number id", "last hour", "last 24 h", "this run"):
            t.add_column(col, justify="left" if col == "number id" else "right")
        for n in view["caller_ids"]:
            cap_h = f" / {n['max_per_hour']}" if n.get("max_per_hour") else ""
            cap_d = f" / {n['max_per_day']}" if n.get("max_per_day") else ""
            t.add_row(Text(n["number_id"]), f"{n['last_hour']}{cap_h}",
                      f"{n['last_24h']}{cap_d}", str(n["this_run"]))
        parts.append(t)
    if view["budget"]:
        t = Table(title="budget", title_justify="left")
        for col in ("limit", "spent", "with live calls", "left"):
            t.add_column(col, justify="left" if col == "limit" else "right")
        for b in view["budget"]["limits"]:
            t.add_row(f"{b['key']} {b['limit']:g}", f"{b['spent']:g}", f"{b['committed']:g}",
                      f"{b['left']:g}")
        parts.append(t)
    if view["errors"]:
        t = Table(title="last errors", title_justify="left")
        for col in ("row", "attempt", "code", "message"):
            t.add_column(col)
        for e in view["errors"]:
            t.add_row(str(e["row"]), str(e["attempt"]), Text(e["code"]), Text(e["message"]))
        parts.append(t)
    if view.get("processes"):
        alive = sum(1 for x in view["processes"] if x.get("alive"))
        parts.append(Text(f"processes: {alive} alive of {len(view['processes'])}"))
    return Group(*parts)
