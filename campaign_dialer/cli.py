"""The command line: parse arguments, configure logging once, call the library, map exit codes."""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Sequence
from datetime import time
from pathlib import Path
from typing import NoReturn

from campaign_dialer import __version__, log
from campaign_dialer.exitcodes import DialerError, ExitCode


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


def _hhmm(text: str) -> time:
    m = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", text.strip())
    if not m:
        raise argparse.ArgumentTypeError(f"{text!r} is not a time like 18:30")
    return time(int(m.group(1)), int(m.group(2)))


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="campaign-dialer",
        description="Run outbound AI voice-call campaigns safely.",
        epilog="Exit codes: 0 done, 64 usage, 65 bad input data, 69 API unavailable, "
        "75 try again later, 77 not authorized, 78 bad campaign file, 130/143 interrupted.",
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    p.add_argument("--log-level", default=os.environ.get("CAMPAIGN_DIALER_LOG_LEVEL"),
                   help="debug, info (default; warning for demo), warning, error")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--log-json", dest="log_json", action="store_const", const=True,
                     help="JSON log lines (default when stderr is not a terminal)")
    fmt.add_argument("--log-console", dest="log_json", action="store_const", const=False)
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def campaign_cmd(name: str, help_: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help_, description=help_)
        sp.add_argument("campaign", type=Path, help="the campaign file (TOML)")
        return sp

    run = campaign_cmd("run", "place the campaign's calls (resumes where it stopped)")
    run.add_argument("--base-url", help="override api.base_url (e.g. a local sandbox)")
    run.add_argument("--wait", action="store_true",
                     help="stay up and dial each row when its calling window opens")
    run.add_argument("--until", type=_hhmm, help="place no new call after this local time")
    run.add_argument("--max-duration", type=_duration, help="place no new call after this long")
    run.add_argument("--grace", type=_duration, default=60.0,
                     help="on SIGINT/SIGTERM, keep following live calls this long (default 60s)")
    run.add_argument("--no-progress", action="store_true", help="no live progress display")
    run.add_argument("--pause-wait", type=_duration, default=15 * 60.0,
                     help="when paused, wait this long for `resume` before exiting 75 "
                     "(default 15m)")

    chk = campaign_cmd("check", "validate the campaign and show the plan; places no call")
    chk.add_argument("--json", action="store_true")

    st = campaign_cmd("status", "counts by fate, live calls, next window, last exit code")
    st.add_argument("--json", action="store_true")

    rep = sub.add_parser("report", help="build the post-campaign report")
    rep.add_argument("campaign", type=Path, nargs="+", help="one campaign file, or two to compare")
    rep.add_argument("--text", action="store_true", help="print the terminal summary only")
    rep.add_argument("--json", action="store_true", help="print the JSON summary")

    campaign_cmd("results", "rewrite results.csv from the journal")
    campaign_cmd("pause", "stop placing new calls (live calls go on)")
    campaign_cmd("resume", "allow new calls again after a pause")
    campaign_cmd("cancel", "stop the campaign for good; rows not dialed are suppressed")
    rel = campaign_cmd("release", "decide calls that could not be confirmed (see status)")
    rel.add_argument("--as", dest="as_", required=True, choices=("not-called", "called"),
                     help="not-called: the next run dials them; called: never again")
    rel.add_argument("--row", type=int, action="append", help="only this row (repeatable)")

    sb = sub.add_parser("sandbox", help="run the local Vantax API simulator", add_help=False)
    sb.add_argument("args", nargs=argparse.REMAINDER)

    demo = sub.add_parser("demo", help="run the demo campaign end to end against the sandbox")
    demo.add_argument("--out", type=Path, help="output folder (default: campaigns/demo/out)")
    demo.add_argument("--fresh", action="store_true", help="start the demo's journal anew")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "sandbox":
        from campaign_dialer.sandbox.cli import main as sandbox_main

        return sandbox_main(list(args.args))
    level = args.log_level or ("warning" if args.command == "demo" else "info")
    log.configure(level, json=args.log_json)
    from campaign_dialer.compliance import ComplianceError
    from campaign_dialer.contacts import ContactsError

    try:
        return int(_dispatch(args))
    except DialerError as e:
        _fail(str(e), e.exit_code)
        return int(e.exit_code)
    except (ContactsError, ComplianceError) as e:
        _fail(str(e), ExitCode.DATAERR)
        return int(ExitCode.DATAERR)
    except KeyboardInterrupt:
        return int(ExitCode.SIGINT)


def _fail(message: str, code: ExitCode) -> None:
    con = log.console()
    msg = log.scrub(message)
    if con.is_terminal:
        con.print(f"[bold red]error[/]: {msg}", highlight=False, markup=True)
    else:
        print(f"campaign-dialer: error: {msg}", file=sys.stderr)
    log.get().error("failed", error=msg, exit_code=int(code))


def _dispatch(args: argparse.Namespace) -> ExitCode:
    from campaign_dialer import commands

    cmd = args.command
    if cmd == "run":
        return commands.run(
            args.campaign, base_url=args.base_url, wait=args.wait, until=args.until,
            max_duration=args.max_duration, grace=args.grace, progress=not args.no_progress,
            pause_wait=args.pause_wait,
        )
    if cmd == "check":
        return commands.check(args.campaign, as_json=args.json)
    if cmd == "status":
        return commands.status(args.campaign, as_json=args.json)
    if cmd == "results":
        return commands.results(args.campaign)
    if cmd == "release":
        return commands.release(args.campaign, as_called=args.as_ == "called", rows=args.row)
    if cmd in ("pause", "resume", "cancel"):
        return commands.control(args.campaign, cmd)
    if cmd == "report":
        return commands.report(args.campaign, text=args.text, as_json=args.json)
    if cmd == "demo":
        return commands.demo(out=args.out, fresh=args.fresh)
    raise AssertionError(cmd)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
