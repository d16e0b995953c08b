"""Polling against webhooks: the same campaign, realistic call lengths, in one run.

Two runs of the real CLI (`python -m campaign_dialer.cli run`), each against a fresh
in-process sandbox with the same seed and limits, and calls lasting 60-300 simulated seconds
(uniform; the sandbox's `call_seconds`), which is realistic relative to the poll interval
(2 simulated seconds, the default):

- polling: no `[webhook]`; every live call is polled until final;
- webhooks: `[webhook]` on a free loopback port, the sandbox delivering signed events to it;
  the reconciliation poll after 600 simulated seconds of quiet (the default).

Every limit is the production default in simulated time (10 requests/s, 20 live calls, 2
calls/s, poll every 2 s), turned into real seconds by --time-scale. Judged by the sandbox's
audit, for each run: GET /v1/calls/{id} requests per call, and the makespan (first POST to
the moment the dialer learned the last call's end: its last request, or the last webhook it
acknowledged) against its lower bound max(calls / rate, calls x mean duration / max_live),
the mean being the calls' real mean in that run. The dialer's exit (results, report) is shown
apart: it is a fixed cost, not the campaign's. Targets with webhooks: under 0.2 GET per
call, makespan within 10% of the bound. Only 127.0.0.1 is contacted.

    .venv/bin/python scripts/bench_webhooks.py [--calls 400] [--time-scale 0.02] [--seed 7]
        [--json-out FILE] [--keep DIR]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench_util import (  # noqa: E402
    CLOCK_START,
    PYTHON,
    REPO,
    CampaignSpec,
    write_campaign,
)

from campaign_dialer.sandbox import SandboxConfig, SandboxServer  # noqa: E402

KEY = "vx_test_" + secrets.token_hex(12)  # a fresh fake key per run, never committed
HOOK_SECRET = "whsec_" + secrets.token_hex(16)
# Simulated-time settings: the platform's and the dialer's defaults.
RPS, MAX_LIVE, RATE, POLL_S, RECONCILE_S = 10.0, 20, 2.0, 2.0, 600.0
CALL_SECONDS = (60.0, 300.0)


@dataclass
class RunFigures:
    mode: str
    exit_code: int
    calls: int
    finished_rows: int
    gets: int
    gets_per_call: float
    posts: int
    mean_call_s: float
    makespan_s: float
    to_exit_s: float
    bound_s: float
    over_bound: float
    webhooks_delivered: int
    peak_live: int


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(mode: str, args: argparse.Namespace, workdir: Path) -> RunFigures:
    ts = args.time_scale
    spec = CampaignSpec(
        calls=args.calls, rate=RATE / ts, rps=RPS / ts, max_live=MAX_LIVE,
        poll_interval_s=POLL_S * ts, name=f"bench-{mode}",
    )
    toml = write_campaign(workdir / mode, spec)
    port = free_port()
    hook_url = f"http://127.0.0.1:{port}/webhooks/vantax"
    text = toml.read_text().replace("request_timeout_s = 5", "request_timeout_s = 10")
    if mode == "webhooks":
        text += (f'\n[webhook]\nhost = "127.0.0.1"\nport = {port}\n'
                 'secret_env = ["BENCH_WEBHOOK_SECRET"]\n'
                 f'reconcile_after_s = {RECONCILE_S * ts:g}\n')
    toml.write_text(text)
    config = SandboxConfig(
        api_keys=(KEY,), seed=args.seed, time_scale=ts, requests_per_second=spec.rps,
        max_live_calls=MAX_LIVE, call_seconds=CALL_SECONDS,
        webhook_url=hook_url if mode == "webhooks" else None,
        webhook_secret=HOOK_SECRET if mode == "webhooks" else None,
    )
    env = dict(os.environ)
    env.update(CAMPAIGN_DIALER_HOME=str(workdir / mode / "home"), VANTAX_API_KEY=KEY,
               CAMPAIGN_DIALER_TEST_CLOCK=CLOCK_START, BENCH_WEBHOOK_SECRET=HOOK_SECRET)
    with SandboxServer(config) as sb:
        cmd = [PYTHON, "-m", "campaign_dialer.cli", "--log-level", "warning", "--log-json",
               "run", str(toml), "--base-url", sb.url, "--no-progress", "--grace", "5"]
        with open(workdir / f"{mode}.err", "w") as err:
            proc = subprocess.run(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                                  stderr=err, timeout=3600, check=False)
            ended = time.monotonic()
        audit = sb.audit()
    if args.keep is not None:
        (workdir / f"{mode}.audit.json").write_text(json.dumps(audit))
    calls = audit["calls"]
    gets = sum(1 for r in audit["requests"]
               if r["method"] == "GET" and r["path"].startswith("/v1/calls/"))
    posts = [r["mono"] for r in audit["requests"] if r["method"] == "POST"]
    mean = statistics.fmean(c["ended_mono"] - c["placed_mono"] for c in calls) if calls else 0.0
    n = len(calls)
    bound = max(n / spec.rate, n * mean / MAX_LIVE) if n else 0.0
    learned = [r["mono"] for r in audit["requests"]]
    learned += [h["mono"] for h in audit["webhooks"] if h["delivered"]]
    makespan = max(learned) - min(posts) if posts else 0.0
    with open(workdir / mode / "out" / "results.csv", newline="", encoding="utf-8") as fh:
        finished = sum(1 for r in csv.DictReader(fh)
                       if r["disposition"] == "dialed" and r["status"] in
                       {"completed", "no_answer", "busy", "voicemail", "failed", "canceled"})
    return RunFigures(
        mode=mode, exit_code=proc.returncode, calls=n, finished_rows=finished, gets=gets,
        gets_per_call=gets / n if n else 0.0, posts=len(posts), mean_call_s=mean,
        makespan_s=makespan, to_exit_s=ended - min(posts) if posts else 0.0,
        bound_s=bound, over_bound=makespan / bound - 1 if bound else 0.0,
        webhooks_delivered=sum(1 for h in audit["webhooks"] if h["delivered"]),
        peak_live=audit["stats"]["peak_live_calls"],
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--time-scale", type=float, default=0.02,
                        help="real seconds per simulated second")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json-out", type=Path, default=None)
    parser.add_argument("--keep", type=Path, default=None, help="keep the work folder here")
    args = parser.parse_args(argv)
    ts = args.time_scale
    with tempfile.TemporaryDirectory(prefix="bench-webhooks-") as tmp:
        workdir = args.keep or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        rows = [run(mode, args, workdir) for mode in ("polling", "webhooks")]
    print(f"{args.calls} calls of {CALL_SECONDS[0]:g}-{CALL_SECONDS[1]:g} simulated s; "
          f"time scale {ts:g} (real s per simulated s); limits {RPS:g} req/s, "
          f"{MAX_LIVE} live, {RATE:g} calls/s, poll every {POLL_S:g} s (simulated)")
    head = (f"{'mode':<9} {'exit':>4} {'calls':>5} {'final':>5} {'GET/call':>9} "
            f"{'makespan':>9} {'bound':>9} {'over':>7} {'mean call':>9} {'to exit':>9}")
    print(head)
    for r in rows:
        print(f"{r.mode:<9} {r.exit_code:>4} {r.calls:>5} {r.finished_rows:>5} "
              f"{r.gets_per_call:>9.2f} {r.makespan_s / ts:>8.0f}s {r.bound_s / ts:>8.0f}s "
              f"{r.over_bound:>+7.1%} {r.mean_call_s / ts:>8.0f}s {r.to_exit_s / ts:>8.0f}s")
    print("(in simulated seconds: real seconds / time scale; 'to exit' adds the dialer's "
          "shutdown, results and report)")
    hooks = rows[1]
    ok = hooks.gets_per_call < 0.2 and hooks.over_bound <= 0.10
    print(f"webhooks target (< 0.2 GET/call, makespan within 10% of bound): "
          f"{'met' if ok else 'NOT met'}")
    if args.json_out is not None:
        args.json_out.write_text(json.dumps([asdict(r) for r in rows], indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
