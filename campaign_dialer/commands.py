"""What each CLI command does, as plain functions returning an exit code."""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import shutil
import socket
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import anyio

from campaign_dialer import log
from campaign_dialer.clock import TEST_CLOCK_ENV, Clock
from campaign_dialer.config import Campaign, ConfigError, load_campaign
from campaign_dialer.errors import DialerError, NotApplicable, NotRunYet
from campaign_dialer.exitcodes import ExitCode


class CampaignLocked(DialerError):
    exit_code = ExitCode.TEMPFAIL


@contextmanager
def campaign_lock(campaign: Campaign) -> Iterator[None]:
    """One run per campaign: an flock the kernel drops when the process dies."""
    from campaign_dialer.store import JournalWriteError

    path = campaign.output_dir / f".{campaign.name}.lock"
    try:
        campaign.output_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:  # read-only, full, or not a folder: 73/74, not a traceback
        raise JournalWriteError(path, e) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip()
            raise CampaignLocked(
                f"campaign {campaign.name!r} is already running ({holder or 'unknown holder'}); "
                "try again when it has finished"
            ) from None
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid={os.getpid()} host={socket.gethostname()}\n".encode(), 0)
        except OSError as e:
            raise JournalWriteError(path, e) from None
        yield
    finally:
        os.close(fd)


def lock_held(campaign: Campaign) -> bool:
    """Is a run going now? The lock says so; a crashed run's journal cannot."""
    from campaign_dialer.store import run_lock_held

    return run_lock_held(campaign.output_dir, campaign.name)


def _override_base_url(campaign: Campaign, base_url: str | None) -> Campaign:
    if not base_url:
        return campaign
    from pydantic import ValidationError

    from campaign_dialer.config import ApiSection

    try:
        api = ApiSection.model_validate({**campaign.model.api.model_dump(), "base_url": base_url})
    except ValidationError as e:
        raise ConfigError("--base-url", "api.base_url", e.errors()[0]["msg"]) from None
    model = campaign.model.model_copy(update={"api": api})
    return Campaign(campaign.path, model)


def require_real_clock_off_loopback(campaign: Campaign, clock: Clock) -> None:
    """A simulated clock judges local hours wrongly on purpose: only against the sandbox."""
    from urllib.parse import urlsplit

    from campaign_dialer.config import _is_loopback

    host = urlsplit(campaign.model.api.base_url).hostname or ""
    if clock.is_fake and not _is_loopback(host):
        what = (
            f"{TEST_CLOCK_ENV} is set" if clock.env_hook else "a simulated clock is in use"
        )
        raise ConfigError(
            campaign.path, "api.base_url",
            f"{what} ({clock.source}) but the API {campaign.model.api.base_url} is not on "
            f"loopback; a simulated clock is for the sandbox only: unset {TEST_CLOCK_ENV} "
            "to call real people",
        )


def run(
    path: Path, *, base_url: str | None = None, wait: bool = False, until: time | None = None,
    max_duration: float | None = None, grace: float = 60.0, progress: bool = True,
    clock: Clock | None = None, quiet: bool = False, pause_wait: float = 15 * 60.0,
    announce_report: bool = True,
) -> ExitCode:
    from campaign_dialer.client import VantaxClient
    from campaign_dialer.engine import RunOptions
    from campaign_dialer.engine.setup import engine_for_plan, plan_for_run
    from campaign_dialer.results import write_results, write_transcripts
    from campaign_dialer.store import Journal

    campaign = _override_base_url(load_campaign(path), base_url)
    key = campaign.api_key()
    log.register_secret(key)
    for secret in campaign.webhook_secrets():  # [webhook]: a missing secret is 78 up front
        log.register_secret(secret)
    clock = clock or Clock.from_env()
    require_real_clock_off_loopback(campaign, clock)  # before any call, before the journal
    logger = log.get("run", campaign=campaign.name)
    with campaign_lock(campaign):
        plan = plan_for_run(campaign, clock.now())
        refuse_stale_lists(campaign, plan, clock.now())  # 78 before the journal, before a call
        journal = Journal(campaign.journal_path, campaign.name, now=clock.now)
        try:
            api = campaign.model.api

            def client_factory(**kw: Any) -> VantaxClient:
                return VantaxClient(
                    api.base_url, key, timeout_s=api.request_timeout_s,
                    max_connections=api.max_live_calls + 10, **kw,
                )

            options = RunOptions(
                wait=wait, until=deadline_from(until, clock.now()), max_duration_s=max_duration,
                grace_s=grace, pause_wait_s=pause_wait,
            )
            display = _ProgressDisplay(enabled=progress and not quiet)
            engine = engine_for_plan(
                plan, journal=journal, client_factory=client_factory, clock=clock,
                options=options, on_progress=display.update,
            )
            with display:
                outcome = anyio.run(engine.run, backend="asyncio")
            try:
                df = write_results(plan.contacts, journal, campaign.results_path)
                write_transcripts(plan.contacts, journal, campaign.transcripts_path)
            except OSError as e:  # the journal holds every fact: `results` rewrites it later
                from campaign_dialer.store import JournalWriteError

                raise JournalWriteError(campaign.results_path, e) from None
            logger.info("results_written", path=str(campaign.results_path), rows=len(df))
            if not quiet:
                from campaign_dialer.report import print_summary

                print_summary(campaign, journal, df, exit_code=outcome.exit_code,
                              message=outcome.message)
        finally:
            journal.close()
            if plan.history is not None:
                plan.history.close()
        build_report_after_run(campaign, quiet=quiet or not announce_report)
        return outcome.exit_code


def refuse_stale_lists(campaign: Campaign, plan: Any, now: datetime) -> None:
    """A national or state DNC list over 31 days old: the run stops before any call (78)."""
    stale = plan.gate.dnc.stale(now)
    if not stale:
        return
    if plan.history is not None:
        plan.history.close()
    key, _, problem = stale[0].partition(": ")
    more = [(k, p) for k, _, p in (m.partition(": ") for m in stale[1:])]
    raise ConfigError(campaign.path, key, problem, more)


def build_report_after_run(campaign: Campaign, *, quiet: bool = False) -> Path | None:
    """The report of what just ran; a report that fails to build never changes the exit code."""
    logger = log.get("run", campaign=campaign.name)
    try:
        from campaign_dialer import report as rep

        path = rep.build(campaign)
    except Exception as e:  # a report bug must not turn a finished run into a failure
        logger.warning("report_failed", error=log.scrub(repr(e))[:500])
        return None
    logger.info("report_written", path=str(path))
    if not quiet:
        log.out().print(f"report:  {path}", highlight=False, markup=False, soft_wrap=True)
    return path


def deadline_from(until: time | None, now: datetime) -> datetime | None:
    """`--until HH:MM`: the next such moment on this machine's local clock."""
    if until is None:
        return None
    local = now.astimezone()
    d = local.replace(hour=until.hour, minute=until.minute, second=0, microsecond=0)
    if d <= local:
        d += timedelta(days=1)
    return d


class _ProgressDisplay:
    """A live line on a terminal; nothing off one (the JSON logs carry the figures)."""

    def __init__(self, enabled: bool) -> None:
        con = log.console()
        self.enabled = enabled and con.is_terminal
        self._live: Any = None
        self._console = con

    def __enter__(self) -> _ProgressDisplay:
        if self.enabled:
            from rich.live import Live

            self._live = Live("", console=self._console, refresh_per_second=4, transient=True)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(None, None, None)

    def update(self, stats: Any) -> None:
        if self._live is None:
            return
        from rich.text import Text

        line = Text.from_markup(progress_line(stats), overflow="ellipsis")
        line.no_wrap = True
        self._live.update(line)


def progress_line(stats: Any) -> str:
    """One line that fits 80 columns for campaigns of up to 10,000 calls (cut, never wrapped).

    "left" counts the calls still to place in this run, so it goes down as calls are placed.
    """
    done = stats.placed + stats.rejected + stats.errors
    left = max(stats.to_dial - done, 0)
    cps = stats.calls_per_second()
    eta = f" ETA {_clock_span(left / cps)}" if cps > 0 and left else ""
    return (
        f"[bold]placed[/] {stats.placed} [cyan]live[/] {stats.live} "
        f"[green]ended[/] {stats.completed} [yellow]rejected[/] {stats.rejected} "
        f"[red]errors[/] {stats.errors} left {left} {cps:.1f}/s{eta}"
    )


def _clock_span(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


PLAN_CSV_COLUMNS = [
    "row", "contact_id", "phone_raw", "phone_e164", "phone_column", "phone_extension",
    "disposition", "reason", "detail", "next_open", "consent_event_at", "consent_source",
    "local_times", "zones", "dnc_lists_checked", "rnd_queried_at",
]  # fmt: skip
UNREADABLE_SHOWN = 20


def plan_frame(plan: Any) -> Any:
    """plan.csv: every row with its fate, the number chosen, its zones and next window; the
    column names are results.csv's where they overlap."""
    import pandas as pd

    cf = plan.contacts.frame.reset_index(drop=True)
    rows = plan.rows.frame()  # columns: no Python object per row
    nxt = rows["next_open"]
    out = pd.DataFrame(
        {
            "row": rows["row"],
            "contact_id": cf["contact_id"],
            "phone_raw": cf["phone_raw"],
            "phone_e164": rows["phone_e164"],
            "phone_column": cf.get("phone_column"),
            "phone_extension": cf.get("phone_extension"),
            "disposition": rows["disposition"],
            "reason": rows["reason"],
            "detail": rows["detail"],
            "next_open": pd.Series(
                [t.isoformat() for t in nxt[nxt.notna()].dt.to_pydatetime()],
                index=nxt.index[nxt.notna()], dtype=object,
            ).reindex(nxt.index),
        }
    )
    for c in PLAN_CSV_COLUMNS[10:]:
        out[c] = rows[c].mask(rows[c] == "") if c in rows.columns else None
    return out[PLAN_CSV_COLUMNS]


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
    from campaign_dialer.compliance import RULES_MAX_AGE_DAYS

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
    from campaign_dialer.compliance import dnc_age_days

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
    phones = plan.contacts.frame["phone_e164"].dropna()
    rnd = gate.reassigned
    covered = 0
    if rnd is not None and len(phones):
        covered = int(phones.isin(set(rnd.answers["phone"])).sum())
    sources: dict[str, int] = {}
    if gate.consent is not None and len(gate.consent.events):
        sources = {
            str(k): int(v)
            for k, v in gate.consent.events["source"].fillna("").value_counts().head(10).items()
        }
    rules = gate.window.rules
    return {
        "dnc_lists": lists,
        "reassigned": {
            "file": str(rnd.path) if rnd is not None else None,
            "answers": len(rnd) if rnd is not None else 0,
            "numbers_covered": covered,
            "numbers": int(len(phones)),
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
    from campaign_dialer.planning import make_plan
    from campaign_dialer.results import safe_for_spreadsheets, write_atomic_csv

    campaign = load_campaign(path)
    # As `run` does: a key in the environment never reaches the output, whatever file the
    # campaign points at (an `inputs.contacts = ".env"` would echo it in an error).
    log.register_secret(os.environ.get(campaign.model.api.api_key_env, "").strip())
    clock = clock or Clock.from_env()
    plan = make_plan(campaign, clock.now())
    try:
        outlook = plan_forecast(campaign, plan)
    finally:
        if plan.history is not None:
            plan.history.close()
    counts = plan.counts()
    by_disp = Counter[str]()
    for (d, _), n in counts.items():
        by_disp[d] += n
    plan_path = campaign.output_dir / "plan.csv"
    write_atomic_csv(safe_for_spreadsheets(plan_frame(plan)), plan_path)
    inputs = check_inputs_data(plan)
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
    for line in compliance_lines(inputs["compliance"]):
        con.print(line, markup=False, highlight=False, soft_wrap=True)
    for w in inputs["warnings"]:
        con.print(f"warning: {w}", markup=False, highlight=False, soft_wrap=True)
    title = f"Plan for {campaign.name} at {plan.at:%Y-%m-%d %H:%M %Z} (no call placed)"
    con.print(_fate_table(title, data["by_reason"], total=len(plan.rows)))
    con.print(f"plan: {plan_path}", markup=False, highlight=False, soft_wrap=True)
    for line in forecast_lines(outlook):
        con.print(line, markup=False, highlight=False, soft_wrap=True)
    return ExitCode.OK


def plan_forecast(campaign: Campaign, plan: Any) -> dict[str, Any]:
    """`check`'s forecast: rows the journal already settled are left out."""
    from campaign_dialer.forecast import SETTLED, expected_call_seconds, forecast
    from campaign_dialer.store import Journal, JournalError

    settled: list[int] = []
    if campaign.journal_path.exists():
        try:
            with Journal(campaign.journal_path, campaign.name, create=False) as j:
                settled = [r for r, f in j.fates().items() if f.disposition in SETTLED]
        except JournalError:
            settled = []
    from campaign_dialer.report import display_zone

    secs, source = expected_call_seconds(campaign, plan.history)
    out = forecast(plan, call_seconds=secs, call_seconds_source=source, settled=settled)
    zone = display_zone(campaign)
    out["display_timezone"] = zone.key
    out["finishes_at_local"] = (
        datetime.fromisoformat(out["finishes_at"].replace("Z", "+00:00")).astimezone(zone)
        .strftime("%a %Y-%m-%d %H:%M %Z") if out["finishes_at"] else None)
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
    return out


def _mapping_table(inputs: dict[str, Any]) -> Any:
    from rich.table import Table
    from rich.text import Text

    t = Table(title="Columns understood")
    t.add_column("role")
    t.add_column("column(s)")
    for role, col in inputs["columns"].items():
        value = ", ".join(col) if isinstance(col, list) else col
        t.add_row(Text(role), Text(value or "-"))
    t.add_row("ignored", Text(", ".join(inputs["ignored_columns"]) or "-"))
    return t


def _fate_table(title: str, by_reason: list[dict[str, Any]], total: int | None = None) -> Any:
    from rich.table import Table

    t = Table(title=title)
    t.add_column("fate")
    t.add_column("reason")
    t.add_column("rows", justify="right")
    for item in by_reason:
        t.add_row(item["disposition"], item["reason"] or "-", str(item["rows"]))
    if total is not None:
        t.add_row("[bold]total", "", f"[bold]{total}")
    return t


def status(path: Path, *, as_json: bool = False) -> ExitCode:
    from campaign_dialer.store import Journal, JournalError

    campaign = load_campaign(path, check_inputs=False)
    try:
        journal = Journal(campaign.journal_path, campaign.name, create=False)
    except JournalError:
        if campaign.journal_path.exists():
            raise  # there, but unreadable: say so, not "never run"
        known = _history_attempts(campaign)
        # JSON keeps the machine word `never_run` (a scheduler reads it); people read "never run".
        data: dict[str, Any] = {"campaign": campaign.name, "state": "never_run",
                                "control": "active", "running": False, "runs": 0}
        text = f"{campaign.name}: never run"
        if known:
            # Not a fresh start: the next run rebuilds the journal from the history.
            data.update(state="journal_missing", history_attempts=known)
            text = (f"{campaign.name}: no journal, but the contact history holds {known} "
                    "attempt(s) of this campaign; the next run rebuilds the journal from it")
        print(json.dumps(data)) if as_json else log.out().print(text, highlight=False)
        return ExitCode.OK
    with journal:
        data = status_data(journal, campaign)
    if as_json:
        print(json.dumps(data, indent=2, default=str))
        return ExitCode.OK
    con = log.out()
    con.print(_fate_table(f"{campaign.name}: {data['state']}", data["by_reason"]))
    con.print(
        f"live calls: {data['live_calls']}; next window opens: {data['next_window_at'] or '-'}; "
        f"last run exit code: {_dash(data['last_exit_code'])}; clock: "
        f"{_dash(data['clock_source'])}", highlight=False, soft_wrap=True,
    )
    if data["control"] == "paused":
        con.print(
            f"paused: a running run keeps following its live calls and waits up to "
            f"{_dash(data['pause_wait_s'])}s (--pause-wait, default 15m) for "
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
    return ExitCode.OK


def _history_attempts(campaign: Campaign) -> int:
    """How many attempts of this campaign the contact history knows (0 if it has none)."""
    from campaign_dialer.planning import history_path, open_campaign_history

    if not history_path(campaign).exists():
        return 0
    history = open_campaign_history(campaign)
    try:
        return len(history.records(campaign.name))
    finally:
        history.close()


def _dash(v: Any) -> str:
    return "-" if v is None else str(v)


def status_data(journal: Any, campaign: Campaign) -> dict[str, Any]:
    from campaign_dialer.store import PLACED

    fates = journal.fates().values()
    counts = Counter((f.disposition, f.reason or "") for f in fates)
    by_disp = Counter(f.disposition for f in fates)
    opens = [f.next_open for f in fates if f.disposition == "pending" and f.next_open]
    runs = journal.runs()
    running = lock_held(campaign)
    last_exit = journal.get_meta("last_exit_code")
    from campaign_dialer.report import state_label

    control = journal.control()

    from campaign_dialer.store import UNRESOLVED

    unresolved = [
        {"row": a.row, "attempt": a.attempt, "intent_at": a.intent_at, "error": a.error}
        for a in journal.attempts(states=[UNRESOLVED])
    ]
    wait = journal.get_meta("pause_wait_s")
    return {
        "campaign": campaign.name,
        "state": state_label(running=running, control=control, runs=len(runs),
                             pending=by_disp.get("pending", 0)),
        "control": control,
        "running": running,
        "rows": sum(by_disp.values()),
        "by_disposition": dict(by_disp),
        "by_reason": [
            {"disposition": d, "reason": r or None, "rows": n}
            for (d, r), n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        ],
        "live_calls": len(journal.attempts(states=[PLACED])),
        "next_window_at": min(opens) if opens else None,
        "last_exit_code": int(last_exit) if last_exit is not None else None,
        "runs": len(runs),
        "clock_source": journal.get_meta("clock_source"),
        "pause_wait_s": float(wait) if wait else 15 * 60.0,
        "unresolved": unresolved,
    }


def results(path: Path) -> ExitCode:
    from campaign_dialer.planning import load_campaign_contacts
    from campaign_dialer.results import write_results, write_transcripts
    from campaign_dialer.store import Journal

    campaign = load_campaign(path)
    if not campaign.journal_path.exists():
        raise NotRunYet(f"{campaign.name}: nothing has run yet, so there are no results to "
                        f"write; run the campaign first (no journal at {campaign.journal_path})")
    contacts = load_campaign_contacts(campaign)
    with Journal(campaign.journal_path, campaign.name, create=False) as journal:
        write_results(contacts, journal, campaign.results_path)
        write_transcripts(contacts, journal, campaign.transcripts_path)
    log.out().print(f"results: {campaign.results_path}", highlight=False, soft_wrap=True)
    return ExitCode.OK


def control(path: Path, action: str) -> ExitCode:
    from campaign_dialer.store import Journal

    campaign = load_campaign(path, check_inputs=False)
    state = {"pause": "paused", "resume": "active", "cancel": "canceled"}[action]
    with Journal(campaign.journal_path, campaign.name) as journal:
        if journal.control() == "canceled":
            if action == "cancel":
                log.out().print(f"{campaign.name}: canceled (already)", highlight=False)
                return ExitCode.OK
            raise NotApplicable(
                f"{campaign.name} was canceled, and a canceled campaign stays canceled: "
                f"`{action}` does not apply. To call these contacts again, start a new "
                "campaign (a new campaign.name)"
            )
        journal.set_control(state)
    log.get("control", campaign=campaign.name).info("control_changed", state=state)
    log.out().print(f"{campaign.name}: {state}", highlight=False)
    return ExitCode.OK


def release(path: Path, *, as_called: bool, rows: list[int] | None = None) -> ExitCode:
    """A person's decision on calls neither replay nor lookup could confirm."""
    from campaign_dialer.store import Journal

    campaign = load_campaign(path, check_inputs=False)
    with campaign_lock(campaign), Journal(campaign.journal_path, campaign.name,
                                          create=False) as journal:
        done = journal.release(rows=rows, as_called=as_called)
    what = "called (never dialed again)" if as_called else "not called (the next run dials)"
    log.get("control", campaign=campaign.name).info(
        "unresolved_released", rows=[a.row for a in done], as_called=as_called
    )
    log.out().print(f"{campaign.name}: {len(done)} unresolved call(s) released as {what}")
    return ExitCode.OK


def report(paths: list[Path], *, text: bool = False, as_json: bool = False) -> ExitCode:
    from campaign_dialer import report as rep

    return rep.command(paths, text=text, as_json=as_json)


DEMO_CLOCK = datetime(2026, 6, 9, 17, 0, tzinfo=UTC)  # a Tuesday, 13:00 in New York
DEMO_OUT = Path("campaign-dialer-demo")
DEMO_INPUTS = ("campaign.toml", "contacts.csv", "dnc.csv", "consent.csv")
DEMO_MARKER = b"# campaign-dialer demo campaign"


def demo_source() -> Path:
    """The demo ships inside the package, so an installed (non-editable) copy has it too."""
    from importlib.resources import files

    src = Path(str(files("campaign_dialer") / "demo"))
    if not (src / "campaign.toml").is_file():
        raise DialerError(f"the demo campaign is missing from the package ({src})")
    return src


def _demo_artefacts(out: Path, name: str) -> list[Path]:
    """What a demo run writes into its folder (inputs are rewritten anyway)."""
    dbs = [out / f"{name}.journal.sqlite", out / "history.sqlite"]
    names = ["results.csv", "report.html", "summary.json", "results.parquet",
             "transcripts.parquet", "dnc-ledger.csv", "sandbox-audit.json", f".{name}.lock"]
    return [*dbs, *(db.with_name(db.name + s) for db in dbs for s in ("-wal", "-shm", "-journal")),
            *(out / n for n in names)]


def prepare_demo(out: Path, *, fresh: bool = True) -> Path:
    """Copy the packaged demo campaign into `out`; a fresh demo forgets the previous one.

    Only the demo's own files are ever removed, and a folder holding anything else is refused,
    so `--out` pointed at the wrong place cannot cost a user their files.
    """
    src = demo_source()
    name = load_campaign(src / "campaign.toml", check_inputs=False).name
    target = out / "campaign.toml"
    if target.exists():
        if not target.read_bytes().startswith(DEMO_MARKER):
            raise DemoFolderError(
                f"--out {out}: {target} is not the demo's campaign file; "
                "give a new or empty folder"
            )
    elif out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DemoFolderError(f"--out {out}: not an empty folder; give a new or empty folder")
    out.mkdir(parents=True, exist_ok=True)
    if fresh:
        for p in _demo_artefacts(out, name):
            p.unlink(missing_ok=True)
    for n in DEMO_INPUTS:
        shutil.copyfile(src / n, out / n)
    return target


class DemoFolderError(DialerError):
    exit_code = ExitCode.USAGE


def demo(*, out: Path | None = None, fresh: bool = True, no_run: bool = False) -> ExitCode:
    """Start the sandbox on a free loopback port and run the demo campaign against it."""
    from campaign_dialer.sandbox import SandboxConfig, SandboxServer

    path = prepare_demo(out or DEMO_OUT, fresh=fresh)
    if no_run:
        log.out().print(f"campaign: {path}\nnext:     campaign-dialer check {path}",
                        highlight=False, soft_wrap=True)
        return ExitCode.OK
    campaign = load_campaign(path)
    out_dir = campaign.output_dir
    env = campaign.model.api.api_key_env
    key = "vx_test_" + secrets.token_hex(16)
    os.environ[env] = key
    log.register_secret(key)
    api = campaign.model.api
    cfg = SandboxConfig(
        api_keys=(key,), seed=7, time_scale=0.002,
        requests_per_second=api.requests_per_second, max_live_calls=api.max_live_calls,
        data_file=demo_source() / "sandbox-data.json", audit_path=out_dir / "sandbox-audit.json",
    )
    con = log.out()
    with SandboxServer(cfg, host="127.0.0.1", port=0) as sb:
        con.print(
            f"sandbox listening on {sb.url}; "
            f"demo clock starts at {DEMO_CLOCK:%a %Y-%m-%d %H:%M UTC}",
            highlight=False, soft_wrap=True,
        )
        # `run` builds the report at its end; the demo lists it below with the other files
        code = run(path, base_url=sb.url, clock=Clock(DEMO_CLOCK), grace=10.0,
                   announce_report=False)
    report_path = campaign.output_dir / "report.html"
    for label, p in (("campaign", path), ("results", campaign.results_path),
                     ("report", report_path), ("journal", campaign.journal_path)):
        if p.exists():
            con.print(f"{label + ':':9} {p}", highlight=False, soft_wrap=True)
    con.print(f"next:     campaign-dialer report {path} --text", highlight=False, soft_wrap=True)
    sys.stdout.flush()
    # Rows held for their window are the demo working as intended, not a failure.
    return ExitCode.OK if code in (ExitCode.OK, ExitCode.TEMPFAIL) else code
