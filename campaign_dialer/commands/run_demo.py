"""`run` (the campaign against the API, then results and report) and `demo` (the packaged
campaign against a local sandbox)."""

from __future__ import annotations

import gc
import os
import secrets
import shutil
import sys
import threading
from collections import Counter
from contextlib import nullcontext
from datetime import UTC, datetime, time, timedelta
from importlib.resources import files
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
from pydantic import ValidationError
from rich.live import Live
from rich.text import Text

from campaign_dialer import log
from campaign_dialer import report as rep
from campaign_dialer.client import VantaxClient
from campaign_dialer.clock import TEST_CLOCK_ENV, Clock
from campaign_dialer.commands.assemble import engine_for_plan, plan_for_run
from campaign_dialer.commands.lock import campaign_lock
from campaign_dialer.config import (
    ApiSection,
    Campaign,
    ConfigError,
    is_loopback_host,
    load_campaign,
    store_warnings,
)
from campaign_dialer.config_checks import AGENT_PLACEHOLDER, placeholder_agent
from campaign_dialer.config_ops import serve_problem
from campaign_dialer.engine import RunOptions
from campaign_dialer.errors import (
    RUN_NOT_ERRORS,
    DemoFolderError,
    DialerError,
    NotApplicable,
    RunStopped,
)
from campaign_dialer.exitcodes import ExitCode
from campaign_dialer.memory import release_memory
from campaign_dialer.planning import Plan
from campaign_dialer.results import KeptContactFrames, write_results, write_transcripts
from campaign_dialer.sandbox import SandboxConfig, SandboxServer
from campaign_dialer.store import JournalWriteError, open_stores


def _override_base_url(campaign: Campaign, base_url: str | None) -> Campaign:
    if not base_url:
        return campaign
    try:
        api = ApiSection.model_validate({**campaign.model.api.model_dump(), "base_url": base_url})
    except ValidationError as e:
        msg = str(e.errors()[0]["msg"]).removeprefix("Value error, ")  # pydantic's prefix
        raise ConfigError("--base-url", "api.base_url", msg) from None
    model = campaign.model.model_copy(update={"api": api})
    return Campaign(campaign.path, model)


def require_real_clock_off_loopback(campaign: Campaign, clock: Clock) -> None:
    """A simulated clock judges local hours wrongly on purpose: only against the sandbox."""
    host = urlsplit(campaign.model.api.base_url).hostname or ""
    if clock.is_fake and not is_loopback_host(host):
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
    announce_report: bool = True, serve: tuple[str, int] | None = None,
) -> ExitCode:
    campaign = _override_base_url(load_campaign(path), base_url)
    if placeholder_agent(campaign.model.campaign.agents):  # `init` left it for a person
        raise ConfigError(campaign.path, "campaign.agent_id",
                          f"is still the placeholder {AGENT_PLACEHOLDER!r}: set your agent's id")
    monitor = monitor_address(campaign, serve)
    key = campaign.api_key()
    log.register_secret(key)
    for secret in campaign.webhook_secrets():  # [webhook]: a missing secret is 78 up front
        log.register_secret(secret)
    clock = clock or Clock.from_env()
    require_real_clock_off_loopback(campaign, clock)  # before any call, before the journal
    logger = log.get("run", campaign=campaign.name)
    # PostgreSQL: several processes may run the campaign at once (the registry of processes
    # replaces the one-run lock); SQLite: one run per campaign (75 for a second one).
    shared = campaign.store_url is not None
    for warning in store_warnings(campaign):
        logger.warning("store_setting_moot", detail=warning)
    with nullcontext() if shared else campaign_lock(campaign):
        stores = open_stores(campaign, now=clock.now) if shared else None
        try:
            plan = plan_for_run(campaign, clock.now(), stores.history if stores else None,
                                stores)
            try:
                refuse_stale_lists(campaign, plan, clock.now())  # 78 before a journal, a call
            except BaseException:
                plan.kept()  # kept within the run lock, as any plan
                raise
        except BaseException:
            if stores is not None:
                stores.close()
            raise
        if stores is None:  # SQLite: the journal only now, once the plan may be dialed
            stores = open_stores(campaign, now=clock.now, history=plan.history)
        journal = stores.journal
        planned: Plan | None = plan  # until the results need only its contacts
        try:
            api = campaign.model.api

            def client_factory(**kw: Any) -> VantaxClient:
                return VantaxClient(
                    api.base_url, key, timeout_s=api.request_timeout_s,
                    max_connections=api.max_live_calls + 10, **kw,
                )

            contacts = ContactsAhead(plan)
            options = RunOptions(
                wait=wait, until=_announced_deadline(until, clock.now(), logger, quiet=quiet),
                max_duration_s=max_duration,
                grace_s=grace, pause_wait_s=pause_wait, monitor=monitor,
                on_last_calls=contacts.start,
                # a new plan is kept once the run's own start work is done, not beside it
                on_settled=plan.keep_now,
            )
            display = _ProgressDisplay(enabled=progress and not quiet)
            engine = engine_for_plan(
                plan, journal=journal, client_factory=client_factory, clock=clock,
                options=options, on_progress=display.update,
                coordinator=stores.coordinator,
            )
            with display:
                outcome = anyio.run(engine.run, backend="asyncio")
            # The engine's columns, index and schedule are done with: the results (and then
            # the report) of a million-row campaign need that memory, not beside it.
            del engine
            contacts.join()
            plan.kept()  # a new plan, kept beside the calls, before its rows are let go of
            people = plan.results_contacts()
            # The results need the contacts only: the plan's rows, verdicts and gate go (and
            # what refers to them: the contacts loader, the run's options; the contacts as
            # loaded too, when they were kept beside the plan).
            del plan, contacts, options
            planned = None
            _let_go()
            try:
                written = write_results(people, journal, campaign.results_path)
                write_transcripts(people, journal, campaign.transcripts_path)
            except OSError as e:  # the journal holds every fact: `results` rewrites it later
                raise JournalWriteError(campaign.results_path, e) from None
            # contacts: "kept" (beside the plan, read a slice at a time), else "loaded"
            logger.info("results_written", path=str(campaign.results_path), rows=written.rows,
                        contacts="kept" if isinstance(people, KeptContactFrames) else "loaded")
            # The summary is printed from the report's figures (built below, from the file
            # just written): no frame of every row is held for it. Its fallback, should the
            # report fail, counts the journal's fates.
            fates = None if quiet else Counter(journal.fate_counts())
        finally:
            if planned is not None:
                planned.kept()  # the plan kept beside the calls (SQLite), before the lock goes
            stores.close()  # the journal, the plan's history (and the database's pool)
        del people, journal, stores, planned  # the report reads what was written, not these
        _let_go()
        built = report_after_run(campaign)
        if fates is not None:  # not quiet
            rep.print_run_summary(None if built is None else built[1], fates,
                                  exit_code=outcome.exit_code, message=outcome.message)
        if built is not None and not (quiet or not announce_report):
            _say_report(built[0])
        if outcome.exit_code not in RUN_NOT_ERRORS:
            # Results and report are written: now the one error line every error gets.
            raise RunStopped(outcome.message or f"the run stopped with {int(outcome.exit_code)}",
                             outcome.exit_code)
        return outcome.exit_code


def monitor_address(
    campaign: Campaign, serve: tuple[str, int] | None
) -> tuple[str, int] | None:
    """Where the run serves its monitor: `--serve`, else `[monitor] listen`, else nowhere.
    Beyond loopback only on the host the campaign file names (64 otherwise)."""
    listen = campaign.model.monitor.address if campaign.model.monitor else None
    if serve is None:
        return listen
    problem = serve_problem(serve, listen)
    if problem:
        raise NotApplicable(problem)
    return serve


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


class ContactsAhead:
    """The contacts of a plan read back from the store, loaded while a run's last calls
    finish (its results need them; the grace period after a SIGTERM is mostly waiting), in a
    thread of their own. A load that fails is left to the results step, which says why."""

    def __init__(self, plan: Any) -> None:
        self.plan = plan
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        if self.thread is not None or self.plan.loaded_contacts is not None \
                or self.plan.contacts_kept is not None:
            return  # loaded, or kept beside the plan (read a slice at a time)
        self.thread = threading.Thread(target=self._load, name="contacts-ahead", daemon=True)
        self.thread.start()

    def _load(self) -> None:
        try:
            _ = self.plan.contacts
        except Exception:  # noqa: BLE001 - asked again (and said) by the results step
            return

    def join(self) -> None:
        if self.thread is not None:
            self.thread.join()


def _let_go() -> None:
    """Collect what a step let go of (the engine's parts refer to each other) and hand the
    freed memory back to the system, so the next step's peak does not stand on it."""
    gc.collect()
    release_memory()


def build_report_after_run(campaign: Campaign, *, quiet: bool = False) -> Path | None:
    """The report of what just ran; a report that fails to build never changes the exit code."""
    logger = log.get("run", campaign=campaign.name)
    try:
        path = rep.build(campaign)
    except Exception as e:  # a report bug must not turn a finished run into a failure
        logger.warning("report_failed", error=log.scrub(repr(e))[:500])
        return None
    logger.info("report_written", path=str(path))
    if not quiet:
        _say_report(path)
    return path


def report_after_run(campaign: Campaign) -> tuple[Path, dict[str, Any]] | None:
    """The report of what just ran and its summary; None (said in the log) when it failed:
    a report that fails to build never changes the exit code."""
    logger = log.get("run", campaign=campaign.name)
    try:
        paths, summary = rep.build_files(campaign, just_written=True)
    except Exception as e:  # a report bug must not turn a finished run into a failure
        logger.warning("report_failed", error=log.scrub(repr(e))[:500])
        return None
    path = paths["report.html"]
    logger.info("report_written", path=str(path))
    return path, summary


def _say_report(path: Path) -> None:
    log.out().print(f"report:  {path}", highlight=False, markup=False, soft_wrap=True)


def _announced_deadline(
    until: time | None, now: datetime, logger: Any, *, quiet: bool
) -> datetime | None:
    """`--until` resolved, said aloud: a time already past today means tomorrow, which an
    operator who typed the time to stop *now* must learn before a day of calls, not after."""
    deadline = deadline_from(until, now)
    if deadline is None or until is None:
        return deadline
    hours = (deadline - now).total_seconds() / 3600
    logger.info("until_deadline", until=until.strftime("%H:%M"), deadline=deadline.isoformat(),
                hours=round(hours, 2))
    if hours > 12:
        logger.warning("until_is_tomorrow", until=until.strftime("%H:%M"),
                       deadline=deadline.isoformat(), hours=round(hours, 2))
        if not quiet:
            print(f"note: --until {until:%H:%M} has passed today on this machine's clock: "
                  f"new calls may be placed until {deadline:%a %Y-%m-%d %H:%M} "
                  f"({hours:.1f} h from now); Ctrl-C or `campaign-dialer pause` stops them",
                  file=sys.stderr)
    return deadline


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
            self._live = Live("", console=self._console, refresh_per_second=4, transient=True)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(None, None, None)

    def update(self, stats: Any) -> None:
        if self._live is None:
            return
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


DEMO_CLOCK = datetime(2026, 6, 9, 17, 0, tzinfo=UTC)  # a Tuesday, 13:00 in New York

DEMO_OUT = Path("campaign-dialer-demo")

DEMO_INPUTS = ("campaign.toml", "contacts.csv", "dnc.csv", "consent.csv")

DEMO_MARKER = b"# campaign-dialer demo campaign"


def demo_source() -> Path:
    """The demo ships inside the package, so an installed (non-editable) copy has it too."""
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


def demo(*, out: Path | None = None, fresh: bool = True, no_run: bool = False) -> ExitCode:
    """Start the sandbox on a free loopback port and run the demo campaign against it."""
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
        stopped: RunStopped | None = None
        try:
            code = run(path, base_url=sb.url, clock=Clock(DEMO_CLOCK), grace=10.0,
                       announce_report=False)
        except RunStopped as e:  # said once the demo's files are listed
            stopped, code = e, e.exit_code
    report_path = campaign.output_dir / "report.html"
    for label, p in (("campaign", path), ("results", campaign.results_path),
                     ("report", report_path), ("journal", campaign.journal_path)):
        if p.exists():
            con.print(f"{label + ':':9} {p}", highlight=False, soft_wrap=True)
    con.print(f"next:     campaign-dialer report {path} --text", highlight=False, soft_wrap=True)
    sys.stdout.flush()
    if stopped is not None:
        raise stopped
    # Rows held for their window are the demo working as intended, not a failure.
    return ExitCode.OK if code in (ExitCode.OK, ExitCode.TEMPFAIL) else code
