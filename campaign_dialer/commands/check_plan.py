"""`check`: the plan, the inputs as understood, the compliance summary and the forecast,
with no call placed."""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from rich.table import Table
from rich.text import Text

from campaign_dialer import log
from campaign_dialer.clock import Clock
from campaign_dialer.commands.callerids import caller_id_lines, caller_id_outlook
from campaign_dialer.commands.check_adaptive import (
    adaptive_lines,
    adaptive_outlook,
    adaptive_wanted,
)
from campaign_dialer.commands.tables import fate_table
from campaign_dialer.compliance import NAT, RULES_MAX_AGE_DAYS, decoded, dnc_age_days
from campaign_dialer.config import Campaign, load_campaign
from campaign_dialer.config_checks import AGENT_PLACEHOLDER, placeholder_agent
from campaign_dialer.contacts import STRING, person_keys
from campaign_dialer.exitcodes import ExitCode
from campaign_dialer.files import write_atomic
from campaign_dialer.forecast import SETTLED, expected_call_seconds, forecast
from campaign_dialer.monitor.budget import budget_zone, projection, projection_lines, spend_of
from campaign_dialer.planning import make_plan, release_memory
from campaign_dialer.report import display_zone
from campaign_dialer.results import csv_bytes, formatted_in_order, safe_for_spreadsheets
from campaign_dialer.store import JournalError
from campaign_dialer.store.access import existing_journal

PLAN_CSV_COLUMNS = [
    "row", "contact_id", "phone_raw", "phone_e164", "phone_column", "phone_extension",
    "disposition", "reason", "detail", "next_open", "consent_event_at", "consent_source",
    "local_times", "zones", "dnc_lists_checked", "rnd_queried_at",
    "from_phone_number_id", "from_number", "caller_id_reason",
]  # fmt: skip

UNREADABLE_SHOWN = 20
_EMPTY = pa.scalar("", pa.large_string())


def plan_frame(plan: Any, lo: int = 0, hi: int | None = None) -> Any:
    """plan.csv: every row with its fate, the number chosen, its zones and next window; the
    column names are results.csv's where they overlap. Rows lo..hi (all by default).

    Built from the plan's columns with arrow (no Python object per row or per cell); a
    column with no value in any row is an object column of None, which the formula guard
    and the CSV writer pass through at once (an all-missing text column would cost a Python
    call per cell there and the slow writer)."""
    total = len(plan.rows)
    hi = total if hi is None else min(hi, total)
    lo = min(lo, hi)
    n = hi - lo
    cf = plan.contacts.frame.iloc[lo:hi].reset_index(drop=True)
    c = {k: v[lo:hi] if isinstance(v, np.ndarray) else v.slice(lo, n)
         for k, v in plan.rows.columns.items()}

    def text(arr: Any) -> Any:
        return pd.array(decoded(arr), dtype=STRING)

    def blank_is_missing(arr: Any) -> Any:
        arr = decoded(arr)
        return pd.array(pc.if_else(pc.equal(arr, ""), pa.nulls(len(arr), arr.type), arr),
                        dtype=STRING)

    cols: dict[str, Any] = {
        "row": np.asarray(c["row"], dtype=np.int64),
        "contact_id": cf["contact_id"].array,
        "phone_raw": cf["phone_raw"].array,
        "phone_e164": text(c["phone"]),
        "phone_column": cf["phone_column"].array if "phone_column" in cf else None,
        "phone_extension": cf["phone_extension"].array if "phone_extension" in cf else None,
        "disposition": text(c["disposition"]),
        "reason": text(c["reason"]),
        "detail": pd.array(pc.fill_null(decoded(c["detail"]), ""), dtype=STRING),
        "next_open": iso_times(np.asarray(c["next_open"], dtype=np.int64)),
    }
    for k in PLAN_CSV_COLUMNS[10:]:
        cols[k] = blank_is_missing(c[k]) if k in c else None
    return pd.DataFrame({k: _or_none(cols[k], n) for k in PLAN_CSV_COLUMNS}, copy=False)


PLAN_CSV_CHUNK = 65_536  # plan.csv's rows built, guarded and written at once
# Chunks guarded and formatted side by side (arrow's kernels let go of the GIL), and so at
# most this many more chunks in memory; the rows are built, and written, in order.
PLAN_CSV_THREADS = 2


def _chunk_bytes(frame: pd.DataFrame) -> bytes:
    return csv_bytes(safe_for_spreadsheets(frame))


def write_plan_csv(plan: Any, campaign: Campaign, path: Path) -> None:
    """plan.csv, a chunk of rows at a time (memory bounded by a few chunks, not the plan):
    each chunk's frame (`plan_frame`, `with_caller_ids`: built here, where the history is
    open) guarded (`safe_for_spreadsheets`) and formatted by the results' CSV writer in
    `PLAN_CSV_THREADS` threads, its records appended after the first chunk's header. The
    bytes are those of the whole frame written at once."""

    def frames() -> Iterator[pd.DataFrame]:
        for lo in range(0, max(len(plan.rows), 1), PLAN_CSV_CHUNK):
            yield with_caller_ids(plan_frame(plan, lo, lo + PLAN_CSV_CHUNK), campaign,
                                  plan.history)

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as out:
            chunks = formatted_in_order(_chunk_bytes, frames(), PLAN_CSV_THREADS, "plan-csv")
            for i, data in enumerate(chunks):
                # after the first chunk, its records only (our header has no CR or LF)
                out.write(memoryview(data)[data.index(b"\n") + 1:] if i else data)

    write_atomic(path, write)


def iso_times(ns: np.ndarray) -> Any:
    """ns since the epoch as `datetime.isoformat()` in UTC ("2026-06-10T13:00:00+00:00",
    microseconds when there are any), missing for `NAT`; vectorised."""
    missing = ns == NAT
    us = np.where(missing, 0, ns // 1_000)
    secs = pa.array(us // 1_000_000, type=pa.timestamp("s"))
    # "2026-06-10 13:00:00" (a cast: strftime is ten times slower), "T" in place of the space
    text = pc.replace_substring(secs.cast(pa.large_string()), " ", "T", max_replacements=1)
    frac = us % 1_000_000
    if frac.any():  # rare: a window opens on the second; only those rows in Python
        at = np.flatnonzero(frac)
        micro = np.full(len(ns), "", dtype=object)
        micro[at] = [f".{f:06d}" for f in frac[at].tolist()]
        text = pc.binary_join_element_wise(
            text, pa.array(micro, type=pa.large_string()), _EMPTY)
    text = pc.binary_join_element_wise(text, pa.scalar("+00:00", pa.large_string()), _EMPTY)
    return pd.array(pc.if_else(pa.array(missing), pa.nulls(len(ns), pa.large_string()), text),
                    dtype=STRING)


def _or_none(values: Any, n: int) -> Any:
    """`values`, or an object column of None when it holds no value at all."""
    if values is None or (len(values) and pd.isna(values).all()) or not len(values):
        return np.full(n, None, dtype=object)
    return values


def with_caller_ids(frame: Any, campaign: Campaign, history: Any) -> Any:
    """plan.csv's caller-ID columns for rows to call: the number a person keeps (`sticky`,
    from the contact history) where the pool has one; the campaign's fixed number, or the
    agent's, without a pool (`agent_default`); blank where the pool chooses at dial time."""
    cid = campaign.model.caller_id
    eligible = frame["disposition"].eq("eligible")
    if cid is None:
        frame.loc[eligible, "from_phone_number_id"] = campaign.model.campaign.from_phone_number_id
        frame.loc[eligible, "caller_id_reason"] = "agent_default"
        return frame
    if not cid.sticky:
        return frame
    persons = person_keys(frame["phone_e164"], frame["contact_id"])  # who the row rings
    wanted = persons[eligible].dropna().astype(str).unique().tolist()
    sticky = {p: n for p, n in history.sticky_numbers(wanted).items() if n in cid.ids}
    if sticky:
        ids = persons.map(sticky).where(eligible)
        numbers = {n.id: n.number for n in cid.numbers}
        frame["from_phone_number_id"] = ids
        frame["from_number"] = ids.map(numbers)
        frame.loc[ids.notna(), "caller_id_reason"] = "sticky"
    return frame


def check_inputs_data(plan: Any) -> dict[str, Any]:
    """What `check` understood of the inputs: columns by role, ignored columns, unreadable
    cells per file, warnings."""
    contacts = plan.contacts
    gate = plan.gate

    def cells(df: Any) -> dict[str, Any]:
        head = df.head(UNREADABLE_SHOWN)
        return {
            "count": len(df),
            "cells": [
                {"row": int(r.row), "column": str(r.column), "value": str(r.value),
                 "problem": str(r.problem)}
                for r in head.itertuples()
            ],
        }

    unreadable = {str(contacts.path): cells(contacts.unreadable)}
    for name, df in gate.dnc.unreadable.items():
        unreadable[name] = cells(df)
    warnings = list(contacts.warnings) + list(gate.dnc.warnings)
    warnings += gate.dnc.age_warnings(plan.at)
    summary = compliance_summary(plan)
    rules = summary["rules"]
    if rules["applied"] and rules["age_days"] > RULES_MAX_AGE_DAYS:
        warnings.append(
            f"the state rules table ({rules['origin']}) is {rules['age_days']} days old "
            f"(table_date {rules['table_date']}): over {RULES_MAX_AGE_DAYS} days, have counsel "
            "review it (compliance.rules_file takes a team's own reviewed table)"
        )
    if gate.consent is not None:
        unreadable[str(gate.consent.path)] = cells(gate.consent.unreadable)
        warnings += list(gate.consent.warnings)
    return {
        "columns": {**contacts.roles, "phone": contacts.phone_columns},
        "ignored_columns": contacts.ignored_columns,
        "unreadable": {k: v for k, v in unreadable.items() if v["count"]},
        "warnings": warnings,
        "compliance": summary,
    }


def compliance_summary(plan: Any) -> dict[str, Any]:
    """What a compliance officer asks before dialing: lists with kinds and ages, reassigned
    checks and their coverage, consent sources, the rules table's date."""
    gate, at = plan.gate, plan.at
    lists = []
    for name in gate.dnc.sources:
        m = gate.dnc.meta.get(name)
        lists.append({
            "list": name,
            "kind": "ledger" if name == "ledger" and m is None else (m.kind if m else "internal"),
            "state": m.state if m else None,
            "as_of": m.as_of.isoformat() if m and m.as_of else None,
            "age_days": dnc_age_days(m.as_of, at) if m and m.as_of else None,
        })
    e164 = plan.contacts.frame["phone_e164"]
    numbers = int(e164.count())
    rnd = gate.reassigned
    covered = 0
    if rnd is not None and numbers:
        covered = int(e164.dropna().isin(set(rnd.answers["phone"])).sum())
    sources: dict[str, int] = {}
    if gate.consent is not None and len(gate.consent):
        sources = gate.consent.source_counts(10)
    rules = gate.window.rules
    return {
        "dnc_lists": lists,
        "reassigned": {
            "file": str(rnd.path) if rnd is not None else None,
            "answers": len(rnd) if rnd is not None else 0,
            "numbers_covered": covered,
            "numbers": numbers,
            "required": gate.require_reassigned_check,
        },
        "consent_sources": sources,
        "rules": {
            "applied": gate.window.state_rules,
            "origin": rules.origin,
            "table_date": rules.table_date.isoformat(),
            "age_days": rules.age_days(at),
        },
    }


def compliance_lines(c: dict[str, Any]) -> list[str]:
    """`check`'s compliance summary as lines."""
    out = ["compliance:"]
    for d in c["dnc_lists"]:
        kind = f"{d['kind']} {d['state']}" if d["state"] else d["kind"]
        age = f", as of {d['as_of']} ({d['age_days']} days old)" if d["as_of"] else ""
        out.append(f"  DNC list {d['list']}: {kind}{age}")
    r = c["reassigned"]
    if r["file"]:
        out.append(
            f"  reassigned numbers: {r['answers']} RND answer(s) in {r['file']}, covering "
            f"{r['numbers_covered']} of {r['numbers']} numbers"
            + (" (a vouching 'no' required)" if r["required"] else "")
        )
    else:
        out.append("  reassigned numbers: no RND answers given (inputs.reassigned)"
                   + ("; every grant is held back (require_reassigned_check)"
                      if r["required"] else ""))
    srcs = ", ".join(f"{k or '(blank)'} ({v})" for k, v in c["consent_sources"].items())
    out.append(f"  consent sources: {srcs or 'none'}")
    rl = c["rules"]
    out.append(
        f"  state rules: {rl['origin']}, table_date {rl['table_date']} ({rl['age_days']} days old)"
        + ("" if rl["applied"] else "; not applied (compliance.state_rules = false)")
    )
    return out


def check(path: Path, *, as_json: bool = False, clock: Clock | None = None) -> ExitCode:
    campaign = load_campaign(path)
    # As `run` does: a key in the environment never reaches the output, whatever file the
    # campaign points at (an `inputs.contacts = ".env"` would echo it in an error).
    log.register_secret(os.environ.get(campaign.model.api.api_key_env, "").strip())
    clock = clock or Clock.from_env()
    plan = make_plan(campaign, clock.now(), passthrough=False)  # plan.csv: no input columns
    try:
        placements: dict[int, datetime] = {}
        # The forecast (Python, over the plan's columns, which nothing writes) runs beside
        # plan.csv's writing (arrow's kernels, mostly without the GIL); the contact history
        # (SQLite: this thread's) is read here, before. Each placed row's instant: only the
        # adaptive outlook reads them (a dict entry per row of a million-row plan otherwise).
        calls = expected_call_seconds(campaign, plan.history)
        with ThreadPoolExecutor(1, thread_name_prefix="forecast") as side:
            forecasting = side.submit(
                plan_forecast, campaign, plan,
                placements if adaptive_wanted(campaign) else None, calls)
            plan_path = campaign.output_dir / "plan.csv"
            write_plan_csv(plan, campaign, plan_path)  # failing: the forecast is waited for
            outlook = forecasting.result()
        release_memory()  # the forecast's temporaries
        adaptive = adaptive_outlook(campaign, plan, placements)
        assert plan.history is not None
        cid = caller_id_outlook(campaign, plan.history, plan.at, outlook, plan.caller_id_rules)
    finally:
        if plan.history is not None:
            plan.history.close()
    counts = plan.counts()
    by_disp = Counter[str]()
    for (d, _), n in counts.items():
        by_disp[d] += n
    inputs = check_inputs_data(plan)
    inputs["warnings"] += cid["warnings"]
    if placeholder_agent(campaign.model.campaign.agents):
        inputs["warnings"].insert(0, (
            f"campaign.agent_id is still the placeholder {AGENT_PLACEHOLDER!r} that `init` "
            "wrote: set your Vantax agent's id before `run` (run refuses it, exit 78)"))
    data: dict[str, Any] = {
        "campaign": campaign.name,
        "at": plan.at.isoformat(),
        "rows": len(plan.rows),
        "by_disposition": dict(by_disp),
        "by_reason": [
            {"disposition": d, "reason": r or None, "rows": n}
            for (d, r), n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        ],
        "calls_placed": 0,
        **inputs,
        "plan_csv": str(plan_path),
        "forecast": outlook,
        "caller_ids": cid,
        "schedule": adaptive,
    }
    if as_json:
        print(json.dumps(data, indent=2))
        return ExitCode.OK
    con = log.out()
    con.print(_mapping_table(inputs))
    for file, info in inputs["unreadable"].items():
        con.print(
            f"{file}: {info['count']} cell(s) not read as a phone number"
            + (f" (first {UNREADABLE_SHOWN})" if info["count"] > UNREADABLE_SHOWN else ""),
            markup=False, highlight=False, soft_wrap=True,
        )
        for c in info["cells"]:
            con.print(
                f"  row {c['row']}, column {c['column']!r}: {c['value']!r} ({c['problem']})",
                markup=False, highlight=False, soft_wrap=True,
            )
    for line in compliance_lines(inputs["compliance"]) + caller_id_lines(cid):
        con.print(line, markup=False, highlight=False, soft_wrap=True)
    for w in inputs["warnings"]:
        con.print(f"warning: {w}", markup=False, highlight=False, soft_wrap=True)
    title = f"Plan for {campaign.name} at {plan.at:%Y-%m-%d %H:%M %Z} (no call placed)"
    con.print(fate_table(title, data["by_reason"], total=len(plan.rows)))
    con.print(f"plan: {plan_path}", markup=False, highlight=False, soft_wrap=True)
    for line in forecast_lines(outlook) + adaptive_lines(adaptive):
        con.print(line, markup=False, highlight=False, soft_wrap=True)
    return ExitCode.OK


def plan_forecast(campaign: Campaign, plan: Any,
                  placements: dict[int, datetime] | None = None,
                  call_seconds: tuple[float, str] | None = None) -> dict[str, Any]:
    """`check`'s forecast: rows the journal already settled are left out. `call_seconds`:
    `expected_call_seconds`, when read already (the history is the thread's that opened
    it)."""
    settled: Any = ()
    attempts: list[Any] = []
    try:
        # The campaign's own journal: the SQLite file, or the team database's (a database
        # that cannot be reached is said, not taken for "never run").
        with existing_journal(campaign) as j:
            if j is not None:
                fates = j.fate_table()  # columns: no Fate made per row
                settled = fates["row"].filter(pc.is_in(
                    fates["disposition"], pa.array(sorted(SETTLED), pa.large_string())
                )).to_numpy()
                attempts = j.attempts()
    except JournalError:
        if campaign.store_url is not None:
            raise
        settled = ()  # an unreadable journal file: `status` says why; the plan stands
    secs, source = (call_seconds if call_seconds is not None
                    else expected_call_seconds(campaign, plan.history))
    out = forecast(plan, call_seconds=secs, call_seconds_source=source, settled=settled,
                   placements=placements)
    zone = display_zone(campaign)
    out["display_timezone"] = zone.key
    out["finishes_at_local"] = (
        datetime.fromisoformat(out["finishes_at"].replace("Z", "+00:00")).astimezone(zone)
        .strftime("%a %Y-%m-%d %H:%M %Z") if out["finishes_at"] else None)
    model = campaign.model
    spend = spend_of(attempts, now=plan.at, zone=budget_zone(model.report.display_timezone))
    out["budget"] = projection(model.budget, model.report, spend, int(out["rows_to_place"]),
                               secs)
    return out


def forecast_lines(f: dict[str, Any]) -> list[str]:
    """The forecast as a few lines people read before dialing."""
    out = [f"forecast: {f['rows_to_place']:,} rows to call at up to {f['calls_per_second']:g} "
           f"new calls/s (expected call {f['call_seconds']:g} s: {f['call_seconds_source']})"]
    if f["finishes_at"]:
        w = f["finishes_in_window"]
        out.append(f"  finishes about {f['finishes_at_local']}, in the window {w['label']}")
    for d in f["days"]:
        out.append(f"  {d['date']}: windows can take {d['capacity']:,} rows; "
                   f"{d['rows']:,} planned")
    wait = f["waiting"]
    if wait["rows"]:
        rows = ", ".join(str(x["row"]) for x in wait["first"])
        more = "" if wait["rows"] <= len(wait["first"]) else ", …"
        out.append(f"  {wait['rows']:,} rows will still wait (rows {rows}{more}): "
                   f"{wait['first'][0]['why']}")
    else:
        out.append("  no row is left waiting")
    out += projection_lines(f.get("budget"))
    return out


def _mapping_table(inputs: dict[str, Any]) -> Any:
    t = Table(title="Columns understood")
    t.add_column("role")
    t.add_column("column(s)")
    for role, col in inputs["columns"].items():
        value = ", ".join(col) if isinstance(col, list) else col
        t.add_row(Text(role), Text(value or "-"))
    t.add_row("ignored", Text(", ".join(inputs["ignored_columns"]) or "-"))
    return t
