"""`status`: what the journal says of a campaign, for people and (with --json) schedulers."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from rich.table import Table

from campaign_dialer import log
from campaign_dialer.clock import Clock
from campaign_dialer.commands.callerids import caller_id_data, caller_id_table
from campaign_dialer.commands.lock import lock_held
from campaign_dialer.commands.tables import dash, fate_table
from campaign_dialer.config import Campaign, load_campaign
from campaign_dialer.exitcodes import ExitCode
from campaign_dialer.monitor.view import next_pending_open
from campaign_dialer.planning import history_path, open_campaign_history
from campaign_dialer.report import state_label
from campaign_dialer.store import PLACED, UNRESOLVED
from campaign_dialer.store.access import existing_journal, on_postgres, process_rows, processes
from campaign_dialer.vocab import PENDING


def status(path: Path, *, as_json: bool = False) -> ExitCode:
    campaign = load_campaign(path, check_inputs=False)
    # A journal there but unreadable (or a database unreachable) raises: never "never run".
    with existing_journal(campaign) as journal:
        if journal is not None:
            data = status_data(journal, campaign)
    if journal is None:
        # On PostgreSQL the history lives in the same database: no journal, no history.
        known = 0 if on_postgres(campaign) else history_attempts(campaign)
        # JSON keeps the machine word `never_run` (a scheduler reads it); people read "never run".
        data = {"campaign": campaign.name, "state": "never_run", "control": "active",
                "running": False, "runs": 0}
        text = f"{campaign.name}: never run"
        if known:
            # Not a fresh start: the next run rebuilds the journal from the history.
            data.update(state="journal_missing", history_attempts=known)
            text = (f"{campaign.name}: no journal, but the contact history holds {known} "
                    "attempt(s) of this campaign; the next run rebuilds the journal from it")
        print(json.dumps(data)) if as_json else log.out().print(text, highlight=False)
        return ExitCode.OK
    if as_json:
        # The machine word, as when there is no journal: a `pause` before the first run
        # writes one, and a scheduler reading `never_run` must not see "never run" instead.
        machine = {**data, "state": str(data["state"]).replace(" ", "_")}
        print(json.dumps(machine, indent=2, default=str))
        return ExitCode.OK
    con = log.out()
    con.print(fate_table(f"{campaign.name}: {data['state']}", data["by_reason"]))
    con.print(
        f"live calls: {data['live_calls']}; next window opens: {data['next_window_at'] or '-'}; "
        f"last run exit code: {dash(data['last_exit_code'])}; clock: "
        f"{dash(data['clock_source'])}", highlight=False, soft_wrap=True,
    )
    if data["control"] == "paused":
        con.print(
            f"paused: a running run keeps following its live calls and waits up to "
            f"{dash(data['pause_wait_s'])}s (--pause-wait, default 15m) for "
            "`campaign-dialer resume`, then exits 75; rows not dialed wait for the next run"
        )
    if data["unresolved"]:
        con.print(
            f"{len(data['unresolved'])} call(s) could not be confirmed and are not re-sent "
            "until you decide: check the platform, then `campaign-dialer release "
            f"{path} --as not-called` (dial again) or `--as called` (never again)"
        )
        for u in data["unresolved"]:
            con.print(f"  row {u['row']} attempt {u['attempt']}: {u['error'] or '-'}")
    if "processes" in data:
        con.print(process_table(data["processes"]))
    if data.get("caller_ids"):
        con.print(caller_id_table(data["caller_ids"]))
    return ExitCode.OK


def process_table(procs: list[dict[str, Any]]) -> Any:
    """The campaign's `run` processes (PostgreSQL store): who is dialing, and are they alive."""
    t = Table(title=f"processes: {sum(p['alive'] for p in procs)} alive of {len(procs)}")
    for col in ("host", "pid", "started", "last heartbeat", "alive", "live calls", "rows held"):
        t.add_column(col, justify="right" if col in ("pid", "live calls", "rows held") else "left")
    for p in procs:
        t.add_row(p["host"], str(p["pid"]), dash(p["started_at"]), dash(p["last_heartbeat"]),
                  "yes" if p["alive"] else "no (silent past its lease)",
                  str(p["live_calls"]), str(p["rows_held"]))
    return t


def history_attempts(campaign: Campaign) -> int:
    """How many attempts of this campaign the contact history knows (0 if it has none)."""
    if not history_path(campaign).exists():
        return 0
    history = open_campaign_history(campaign)
    try:
        return len(history.records(campaign.name))
    finally:
        history.close()


def status_data(journal: Any, campaign: Campaign) -> dict[str, Any]:
    with journal.snapshot():  # the counts and the next window from one state
        counts = Counter(journal.fate_counts())
        next_window = next_pending_open(journal.fate_table())
    by_disp: Counter[str] = Counter()
    for (d, _), n in counts.items():
        by_disp[d] += n
    runs = journal.runs()
    procs = processes(journal)  # None on SQLite: its run lock says whether a run is going
    running = lock_held(campaign) if procs is None else any(p.alive for p in procs)
    last_exit = journal.get_meta("last_exit_code")
    control = journal.control()

    unresolved = [
        {"row": a.row, "attempt": a.attempt, "intent_at": a.intent_at, "error": a.error}
        for a in journal.attempts(states=[UNRESOLVED])
    ]
    wait = journal.get_meta("pause_wait_s")
    data: dict[str, Any] = {
        "campaign": campaign.name,
        "state": state_label(running=running, control=control, runs=len(runs),
                             pending=by_disp.get(PENDING, 0)),
        "control": control,
        "running": running,
        "rows": sum(by_disp.values()),
        "by_disposition": dict(by_disp),
        "by_reason": [
            {"disposition": d, "reason": r or None, "rows": n}
            for (d, r), n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        ],
        "live_calls": len(journal.attempts(states=[PLACED])),
        "next_window_at": next_window,
        "last_exit_code": int(last_exit) if last_exit is not None else None,
        "runs": len(runs),
        "clock_source": journal.get_meta("clock_source"),
        "pause_wait_s": float(wait) if wait else 15 * 60.0,
        "unresolved": unresolved,
    }
    if procs is not None:
        data["processes"] = process_rows(procs)
    if campaign.model.caller_id is not None:  # the key only with a pool (a public shape)
        data["caller_ids"] = caller_ids_now(campaign)
    return data


def caller_ids_now(campaign: Campaign) -> dict[str, Any] | None:
    """The pool's load and rests from the contact history (None without a pool)."""
    if campaign.model.caller_id is None:
        return None
    history = open_campaign_history(campaign)
    try:
        return caller_id_data(campaign, history, Clock.from_env().now())
    finally:
        history.close()
