"""The command line: parse arguments, configure logging once, call the library, map exit codes."""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Sequence
from datetime import time
from pathlib import Path
from typing import Any, NoReturn

from rich.markup import escape

from campaign_dialer import __version__, log
from campaign_dialer.errors import DialerError
from campaign_dialer.exitcodes import ExitCode
from campaign_dialer.sandbox.cli import build_parser as sandbox_parser
from campaign_dialer.sandbox.cli import main as sandbox_main


class _Parser(argparse.ArgumentParser):
    """argparse exits 2 on a usage error; a scheduler is promised 64 (EX_USAGE)."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(int(ExitCode.USAGE), f"{self.prog}: error: {message}\n")


def _duration(text: str) -> float:
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text)
    if not m:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 90s, 45m or 2h")
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


def _rest_days(text: str) -> float:
    """`caller-id rest --days`: a rest that can be written, as `caller_id.rest_days` allows."""
    try:
        days = float(text)
    except ValueError:
        days = float("nan")
    if not 0 < days <= 365:  # also refuses nan and inf
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of days in (0, 365]")
    return days


def _listen(text: str) -> tuple[str, int]:
    # Lazy: config_ops loads pydantic, which `--help` and a usage error need not pay for.
    from campaign_dialer.config_ops import parse_listen

    try:
        return parse_listen(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _hhmm(text: str) -> time:
    m = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", text.strip())
    if not m:
        raise argparse.ArgumentTypeError(f"{text!r} is not a time like 18:30")
    return time(int(m.group(1)), int(m.group(2)))


EXIT_CODES = (
    "exit codes: 0 done, 1 unexpected error (see the log), 64 bad command line, "
    "65 bad input data, 66 nothing to report yet, "
    "69 API unavailable, 73 journal cannot be created, 74 write failed (disk full), "
    "75 try again later, 77 key refused, 78 bad campaign file, "
    "130/143 interrupted"
)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="campaign-dialer",
        description="Run outbound AI voice-call campaigns on the Vantax API safely: DNC, "
        "consent and calling hours first, nobody rung twice.",
        epilog=EXIT_CODES + ". `campaign-dialer COMMAND --help` describes a command.",
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    p.add_argument("--log-level", default=os.environ.get("CAMPAIGN_DIALER_LOG_LEVEL"),
                   metavar="LEVEL", choices=["debug", "info", "warning", "error"],
                   type=str.lower,
                   help="debug, info, warning or error (default: info; warning for demo; "
                   "or $CAMPAIGN_DIALER_LOG_LEVEL)")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--log-json", dest="log_json", action="store_const", const=True,
                     help="log JSON lines on stderr (the default when stderr is not a terminal)")
    fmt.add_argument("--log-console", dest="log_json", action="store_const", const=False,
                     help="log readable lines on stderr (the default on a terminal)")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser,
                           metavar="COMMAND", title="commands")

    def command(name: str, help_: str, description: str = "") -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help_, description=description or help_ + ".",
                              epilog=EXIT_CODES + ".")

    def campaign_cmd(name: str, help_: str, description: str = "") -> argparse.ArgumentParser:
        sp = command(name, help_, description)
        sp.add_argument("campaign", type=Path, help="the campaign file (TOML)")
        return sp

    run = campaign_cmd(
        "run", "place the campaign's calls (a rerun resumes where it stopped)",
        "Place the campaign's calls at the configured pace and follow each to its outcome. "
        "A rerun resumes; nobody is called twice. Writes results.csv in output.dir and "
        "builds the report (a report that fails to build logs report_failed and leaves the "
        "exit code as it was).",
    )
    run.add_argument("--base-url", metavar="URL",
                     help="use this API address instead of api.base_url (e.g. a local sandbox)")
    run.add_argument("--wait", action="store_true",
                     help="stay up and dial each row when its calling window opens "
                     "(default: exit 75 and let a scheduler come back)")
    run.add_argument("--until", type=_hhmm, metavar="HH:MM",
                     help="place no new call after this time on this machine's clock "
                     "(24-hour, local time of this machine, e.g. 18:30; the next such moment: "
                     "a time already past today means tomorrow, and the run says so on "
                     "stderr before it dials)")
    run.add_argument("--max-duration", type=_duration, metavar="DURATION",
                     help="place no new call after this long: a number with s, m, h or d "
                     "(e.g. 90s, 45m, 2h; a bare number is seconds)")
    run.add_argument("--grace", type=_duration, default=60.0, metavar="DURATION",
                     help="on SIGINT/SIGTERM, keep following live calls this long "
                     "(default 60s; same format as --max-duration)")
    run.add_argument("--no-progress", action="store_true",
                     help="no live progress line on a terminal")
    run.add_argument("--pause-wait", type=_duration, default=15 * 60.0, metavar="DURATION",
                     help="when the campaign is paused, wait this long for `resume` before "
                     "exiting 75 (default 15m; same format as --max-duration)")
    run.add_argument("--serve", type=_listen, metavar="HOST:PORT",
                     help="serve /metrics (Prometheus), /healthz and a live page at / while "
                     "the run lasts (e.g. 127.0.0.1:9108; default: [monitor] listen, else off; "
                     "beyond loopback only on the host [monitor] listen names)")

    chk = campaign_cmd(
        "check", "validate the campaign and show the plan; places no call",
        "Validate the campaign file and its inputs and show every row's planned fate and "
        "reason, what was understood of the inputs (columns by role, unreadable cells, "
        "warnings), a compliance summary and a forecast; writes plan.csv in output.dir. "
        "Places no call and needs no API key.",
    )
    chk.add_argument("--json", action="store_true", help="print the plan as JSON")

    st = campaign_cmd(
        "status", "counts by fate, live calls, next window, last exit code",
        "Show the campaign's state (never run (never_run in --json; journal_missing when "
        "only the contact history knows the campaign), running, incomplete, finished, "
        "paused, canceled), rows by fate and reason, live calls, when the next calling "
        "window opens and the last run's exit code; on a PostgreSQL store also the "
        "campaign's run processes (processes in --json).",
    )
    st_fmt = st.add_mutually_exclusive_group()
    st_fmt.add_argument("--json", action="store_true", help="print the status as JSON")
    st_fmt.add_argument("--watch", action="store_true",
                        help="the live view (progress, pace, live calls, outcomes, caller IDs, "
                        "budget, last errors), redrawn every 2 s until Ctrl-C")

    rep = command(
        "report", "build the post-campaign report (HTML, JSON, Parquet)",
        "Build the post-campaign report from the journal: report.html, summary.json and "
        "results.parquet in output.dir, and a summary on the terminal. Two campaign files "
        "are compared side by side. Exits 66 if the campaign has not run yet.",
    )
    rep.add_argument("campaign", type=Path, nargs="+", help="one campaign file, or two to compare")
    out_fmt = rep.add_mutually_exclusive_group()
    out_fmt.add_argument("--text", action="store_true",
                         help="print the terminal summary only; write no file")
    out_fmt.add_argument("--json", action="store_true",
                         help="print the JSON summary only; write no file")

    campaign_cmd(
        "results", "rewrite results.csv from the journal",
        "Rewrite <output.dir>/results.csv from the journal and the contacts file (e.g. after "
        "it was deleted or edited). Places no call.",
    )
    campaign_cmd(
        "pause", "stop placing new calls (live calls go on)",
        "Pause the campaign: a running run places no new call (live calls are followed to the "
        "end) and later runs exit 75 until `resume`. On a PostgreSQL store every run process "
        "of the campaign obeys at its next heartbeat.",
    )
    campaign_cmd(
        "resume", "allow new calls again after a pause",
        "Resume a paused campaign. A canceled campaign cannot be resumed (exit 64).",
    )
    campaign_cmd(
        "cancel", "stop the campaign for good; rows not dialed are suppressed",
        "Cancel the campaign for good: no new call is ever placed, rows not dialed are "
        "recorded as suppressed (campaign_canceled). Live calls are not hung up.",
    )
    rel = campaign_cmd(
        "release", "decide calls that could not be confirmed (see status)",
        "An intent that could be resolved neither by replaying its key nor by looking the call "
        "up stays `unresolved` and is never re-sent until a person decides: `--as not-called` "
        "lets the next run dial those rows, `--as called` records them as called, never again. "
        "Exits 66 before any run, 64 for a --row that holds no unresolved call, 75 while a "
        "run process of the campaign is alive (PostgreSQL store).",
    )
    rel.add_argument("--as", dest="as_", required=True, choices=("not-called", "called"),
                     help="not-called: the next run dials them; called: never again")
    rel.add_argument("--row", type=int, action="append", metavar="N",
                     help="only this row (repeatable; default: every unresolved row)")

    cid = command(
        "caller-id", "rest or restore one number of the campaign's [caller_id] pool",
        "Take one number of the [caller_id] pool out of use (rest) or put it back (restore). "
        "The rest is kept in the contact history (or the team database): every campaign and "
        "process sharing it obeys it at its next call.",
    )
    cid.add_argument("action", choices=("rest", "restore"),
                     help="rest: no call from it until the rest ends; restore: end its rest")
    cid.add_argument("campaign", type=Path, help="the campaign file (TOML)")
    cid.add_argument("--number", required=True, metavar="ID",
                     help="the number's platform id, as in [caller_id] numbers (pn_...)")
    cid.add_argument("--days", type=_rest_days, metavar="N",
                     help="rest: for this many days (default: caller_id.rest_days)")
    ini = command(
        "init", "write a campaign file for a CRM export, then check it",
        "Write a commented campaign file for a contacts export: its columns detected as "
        "`check` detects them and written out as [inputs.columns], safe defaults, the "
        "agent (or a placeholder `run` refuses); then check it and print the plan. Never "
        "overwrites a file (exit 64) and never writes a key into it.",
    )
    ini.add_argument("contacts", type=Path, metavar="CONTACTS",
                     help="the contacts export (CSV from a CRM or a spreadsheet)")
    ini.add_argument("--dnc", type=Path, action="append", default=[], metavar="FILE",
                     help="a Do-Not-Call list (repeatable)")
    ini.add_argument("--consent", type=Path, metavar="FILE",
                     help="the consent ledger (without one every row is held back: no consent)")
    ini.add_argument("--agent", metavar="ID",
                     help="the Vantax agent that places the calls (default: a placeholder "
                     "to replace before `run`)")
    ini.add_argument("--out", type=Path, default=Path("campaign.toml"), metavar="FILE",
                     help="the campaign file to write (default: campaign.toml; must not exist)")
    ini.add_argument("--name", metavar="NAME",
                     help="the campaign's name (default: from the export's file name)")

    sbp = sandbox_parser()
    parents: list[Any] = [sbp]
    sub.add_parser(
        "sandbox", parents=parents, add_help=False, help="run the local Vantax API simulator",
        description=sbp.description, epilog=sbp.epilog, formatter_class=sbp.formatter_class,
    )

    demo = command(
        "demo", "run the demo campaign end to end against a local sandbox",
        "Copy the demo campaign (a few hundred messy contacts, a DNC list, a consent ledger) "
        "into --out, start the local sandbox, run the campaign on a simulated clock and build "
        "its report. Nothing leaves the machine and no key is needed; the demo uses a "
        "contact history of its own, never yours.",
    )
    demo.add_argument("--out", type=Path, default=None, metavar="DIR",
                      help="folder for the demo's campaign, results and report "
                      "(default: ./campaign-dialer-demo; must be new, empty or a previous demo)")
    again = demo.add_mutually_exclusive_group()
    again.add_argument("--fresh", dest="fresh", action="store_true", default=True,
                       help="forget any previous demo in --out first (the default)")
    again.add_argument("--resume", dest="fresh", action="store_false",
                       help="continue the previous demo in --out instead")
    demo.add_argument("--no-run", action="store_true",
                      help="only copy the demo campaign into --out (to run it yourself, e.g. "
                      "against `campaign-dialer sandbox`); places no call")
    return p


def _sandbox_argv(argv: Sequence[str]) -> list[str]:
    """The arguments after `sandbox`, handed to the sandbox's own command line untouched."""
    argv = list(argv)
    i = 0
    while i < len(argv) and argv[i] != "sandbox":
        i += 2 if argv[i] == "--log-level" else 1
    return argv[i + 1:]


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    if args.command == "sandbox":
        return sandbox_main(_sandbox_argv(argv))
    level = args.log_level or ("warning" if args.command == "demo" else "info")
    log.configure(level, json=args.log_json)
    json_logs = args.log_json if args.log_json is not None else not log.console().is_terminal
    try:
        return int(_dispatch(args))
    except DialerError as e:
        _fail(str(e), e.exit_code, json_logs=json_logs)
        return int(e.exit_code)
    except KeyboardInterrupt:
        return int(ExitCode.SIGINT)
    except Exception as e:  # noqa: BLE001 - a bug still gets one line and a documented code
        log.get().debug("unexpected_error_traceback", exc_info=True)
        _fail(f"unexpected error (a bug; --log-level debug shows where): "
              f"{type(e).__name__}: {e}", ExitCode.FAILURE, json_logs=json_logs)
        return int(ExitCode.FAILURE)


def _fail(message: str, code: ExitCode, *, json_logs: bool) -> None:
    """One line for a person; a log event only where logs are JSON (read by machines)."""
    con = log.console()
    msg = log.scrub(message)
    if con.is_terminal:
        con.print(f"[bold red]error[/]: {escape(msg)}", highlight=False, markup=True,
                  soft_wrap=True)
    else:
        print(f"campaign-dialer: error: {msg}", file=sys.stderr)
    if json_logs:
        log.get().error("failed", error=msg, exit_code=int(code))


def _dispatch(args: argparse.Namespace) -> ExitCode:
    # Lazy: the commands load pandas, pyarrow, the engine and the store; `--help`, `--version`
    # and a usage error answer before any of it (measured with `python -X importtime`).
    from campaign_dialer import commands

    cmd = args.command
    if cmd == "run":
        return commands.run(
            args.campaign, base_url=args.base_url, wait=args.wait, until=args.until,
            max_duration=args.max_duration, grace=args.grace, progress=not args.no_progress,
            pause_wait=args.pause_wait, serve=args.serve,
        )
    if cmd == "check":
        return commands.check(args.campaign, as_json=args.json)
    if cmd == "status":
        if args.watch:
            return commands.watch(args.campaign)
        return commands.status(args.campaign, as_json=args.json)
    if cmd == "results":
        return commands.results(args.campaign)
    if cmd == "release":
        return commands.release(args.campaign, as_called=args.as_ == "called", rows=args.row)
    if cmd in ("pause", "resume", "cancel"):
        return commands.control(args.campaign, cmd)
    if cmd == "report":
        return commands.report(args.campaign, text=args.text, as_json=args.json)
    if cmd == "init":
        return commands.init(args.contacts, dnc=args.dnc, consent=args.consent,
                             agent=args.agent, out=args.out, name=args.name)
    if cmd == "demo":
        return commands.demo(out=args.out, fresh=args.fresh, no_run=args.no_run)
    if cmd == "caller-id":
        return commands.caller_id_command(args.campaign, args.action, number=args.number,
                                          days=args.days)
    raise AssertionError(cmd)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
