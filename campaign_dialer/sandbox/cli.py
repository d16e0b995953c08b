"""Command line for the sandbox: serve until SIGINT/SIGTERM, then write the audit.

Exit codes follow sysexits like the rest of the project (without importing it): 64 for a bad
command line, 78 for a bad data file or setting, 0 after a clean stop.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

from campaign_dialer.sandbox.config import FAULTS, RETRY_AFTER_MODES, SandboxConfig
from campaign_dialer.sandbox.config import is_loopback_host as _is_loopback
from campaign_dialer.sandbox.data import LOCAL_POOL, SubAccountData
from campaign_dialer.sandbox.figures import FIGURES
from campaign_dialer.sandbox.server import SandboxServer

EX_USAGE = 64
EX_CONFIG = 78
KEY_ENV = "VANTAX_API_KEY"


class DefaultsFormatter(argparse.HelpFormatter):
    """Show each option's default where it has a meaningful one."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        help_ = action.help or ""
        if (
            "%(default)" not in help_ and "default" not in help_
            and action.option_strings and action.default is not None
            and action.default is not False and action.default != []
            and action.default != argparse.SUPPRESS
        ):
            help_ += " (default: %(default)s)"
        return help_


def _world() -> str:
    """The records a sandbox without --data holds, for --help and the start-up lines."""
    return describe(SubAccountData.generate(0))


def describe(data: SubAccountData) -> str:
    numbers = data.phone_numbers
    agents = ", ".join(
        f"{a.id} ({a.name}, calls from {a.outbound_phone_number_id} "
        f"{numbers[a.outbound_phone_number_id].number})"
        for a in data.agents.values()
    )
    states = {pn_id: state for pn_id, number, state in LOCAL_POOL
              if pn_id in numbers and numbers[pn_id].number == number}
    owned = ", ".join(
        f"{p.id} {p.number}" + (f" ({states[p.id]})" if p.id in states else "")
        for p in numbers.values()
    )
    return (f"agents: {agents}; phone numbers: {owned}; "
            f"{len(data.contacts)} contacts, {len(data.dnc)} numbers on its DNC list")


#: The reputation model's tuning flags: (flag METAVAR, SandboxConfig field, type, help).
REPUTATION_FLAGS: tuple[tuple[str, str, type, str], ...] = (
    ("--flag-calls-per-day N", "flag_calls_per_day", int,
     "flag a number past this many calls in a rolling 24 simulated hours"),
    ("--flag-short-share X", "flag_short_share", float,
     "flag a number when this share of its last --flag-window connected calls is short"),
    ("--short-call-seconds SECONDS", "short_call_seconds", float,
     "a connected call shorter than this (simulated seconds) is short"),
    ("--flag-window N", "flag_window", int,
     "connected calls the short-call share is taken over (judged once full)"),
    ("--flagged-answer-factor F", "flagged_answer_factor", float,
     "a flagged number's calls are answered with this times the normal probability"),
    ("--flag-days D", "flag_days", float, "simulated days a flag lasts"),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="campaign-dialer sandbox",
        description="Run a local simulator of the Vantax voice API on a loopback address "
        f"until Ctrl-C or SIGTERM. Keys come from --key or ${KEY_ENV}.",
        epilog=f"Without --data the sandbox holds these records: {_world()}. "
        "Point a campaign at it with `campaign-dialer run FILE --base-url URL`. "
        "Exit codes: 0 stopped cleanly, 64 bad command line, 78 bad data file or setting.",
        formatter_class=DefaultsFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind")
    parser.add_argument("--port", type=int, default=0, help="port; 0 picks a free one")
    parser.add_argument("--seed", type=int, default=0, help="seed of data, outcomes and faults")
    parser.add_argument(
        "--key", action="append", default=None, metavar="KEY",
        help=f"accepted API key (repeatable); default: ${KEY_ENV}",
    )
    parser.add_argument("--time-scale", type=float, default=0.002,
                        help="real seconds per simulated second (0.002: 3 min call = 360 ms)")
    parser.add_argument("--rps", type=float, default=10.0,
                        help="requests per second admitted (sliding 1 s window); 0 = no limit")
    parser.add_argument("--max-live", type=int, default=20,
                        help="live calls at once; 0 = no limit")
    parser.add_argument("--retry-after", choices=RETRY_AFTER_MODES, default="mixed",
                        help="how 429 responses carry Retry-After")
    parser.add_argument(
        "--fault", action="append", default=[], metavar="NAME=RATE",
        help=f"inject a fault at a rate in 0..1 (repeatable); names: {', '.join(FAULTS)}",
    )
    parser.add_argument("--fault-seed", type=int, default=None,
                        help="seed of the fault streams (default: --seed)")
    parser.add_argument("--slow-seconds", type=float, default=15.0,
                        help="how long the slow fault holds a response")
    parser.add_argument("--data", type=Path, default=None, metavar="FILE",
                        help="JSON file with agents, phone numbers, contacts and DNC numbers")
    parser.add_argument("--audit-out", type=Path, default=None, metavar="FILE",
                        help="write the audit (requests and placed calls) here at shutdown")
    parser.add_argument("--idempotency-ttl", type=float, default=24 * 3600.0, metavar="SECONDS",
                        help="how long a placed call's Idempotency-Key is remembered, in real "
                        "seconds (small values stand for 'more than 24 h later')")
    parser.add_argument("--webhook-url", default=None, help="loopback URL to POST events to")
    parser.add_argument("--webhook-secret-env", default=None, metavar="NAME",
                        help="environment variable holding the webhook signing secret")
    parser.add_argument("--webhook-delay-seconds", type=float, default=2.0, metavar="SECONDS",
                        help="how late the webhook_delay fault delivers an event")
    parser.add_argument(
        "--reputation", action="store_true",
        help="turn on the caller-ID reputation model (off by default): numbers over a call "
        "volume or short-call share are flagged and answered far less, and a person answers "
        "a 3rd call from one number in 24 h far less; flags go to the audit's 'flags'",
    )
    parser.add_argument(
        "--answer-curve", type=Path, default=None, metavar="FILE",
        help="answer calls by the recipient's local weekday and hour (off by default): a 7x24 "
        "table of answer probabilities, JSON or CSV (see sandbox/answer_curve.py)",
    )
    parser.add_argument(
        "--answer-clock", default=None, metavar="ISO",
        help="the instant the answer curve's clock reads at start, then real time (default: "
        "the machine's clock); needs --answer-curve",
    )
    for spec, name, kind, text in REPUTATION_FLAGS:
        flag, metavar = spec.split()
        figure = FIGURES[name].value
        shown = int(figure) if kind is int or figure == int(figure) else figure
        parser.add_argument(flag, type=kind, default=None, metavar=metavar,
                            help=f"{text}; needs --reputation (default: {shown})")
    return parser


def _fail(code: int, message: str) -> int:
    print(f"sandbox: {message}", file=sys.stderr, flush=True)
    return code


def _parse_faults(items: list[str]) -> dict[str, float]:
    faults: dict[str, float] = {}
    for item in items:
        name, sep, rate = item.partition("=")
        if not sep:
            raise ValueError(f"--fault wants NAME=RATE, got {item!r}")
        try:
            faults[name.strip()] = float(rate)
        except ValueError:
            raise ValueError(f"--fault {name}: rate {rate!r} is not a number") from None
    return faults


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help exits 0; usage errors become EX_USAGE
        return 0 if exc.code in (0, None) else EX_USAGE
    if not _is_loopback(args.host):
        return _fail(EX_USAGE, f"--host {args.host} is not a loopback address; refusing to bind")
    keys = args.key or ([os.environ[KEY_ENV]] if os.environ.get(KEY_ENV) else [])
    if not keys:
        return _fail(EX_USAGE, f"no API key: pass --key KEY or set {KEY_ENV}")
    secret = None
    if args.webhook_secret_env:
        secret = os.environ.get(args.webhook_secret_env)
        if not secret:
            return _fail(EX_USAGE, f"--webhook-secret-env: ${args.webhook_secret_env} is not set")
    tuning = {name: getattr(args, name) for _flag, name, _kind, _text in REPUTATION_FLAGS
              if getattr(args, name) is not None}
    if tuning and not args.reputation:
        flags = ", ".join(f.split()[0] for f, name, _k, _t in REPUTATION_FLAGS if name in tuning)
        return _fail(EX_USAGE, f"{flags}: the reputation model is off; add --reputation")
    try:
        config = SandboxConfig(
            api_keys=tuple(keys),
            seed=args.seed,
            time_scale=args.time_scale,
            requests_per_second=args.rps if args.rps > 0 else None,
            max_live_calls=args.max_live if args.max_live > 0 else None,
            retry_after=args.retry_after,
            faults=_parse_faults(args.fault),
            fault_seed=args.fault_seed,
            slow_seconds=args.slow_seconds,
            data_file=args.data,
            audit_path=args.audit_out,
            webhook_url=args.webhook_url,
            webhook_secret=secret,
            webhook_delay_seconds=args.webhook_delay_seconds,
            idempotency_ttl=args.idempotency_ttl,
            reputation=args.reputation,
            answer_curve=args.answer_curve,
            answer_clock=args.answer_clock,
            **tuning,
        )
        server = SandboxServer(config, host=args.host, port=args.port)
    except (ValueError, OSError) as exc:
        return _fail(EX_CONFIG, str(exc))
    stop = threading.Event()
    previous: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():

        def _on_signal(signum: int, frame: FrameType | None) -> None:
            stop.set()

        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, _on_signal)
    try:
        server.start()
    except (OSError, RuntimeError) as exc:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        return _fail(EX_CONFIG, f"cannot serve on {args.host}:{args.port}: {exc}")
    try:
        print(f"sandbox listening on {server.url}", flush=True)
        print(describe(server.app.data), file=sys.stderr, flush=True)  # stdout: the URL only
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
