"""How fast the engine dials: a real campaign against the sandbox at a few pacing settings.

For each rate R in --rates: a fresh campaign of N valid New York numbers (all with consent,
inside the calling window), a fresh sandbox *process* with the campaign's request and live-call
limits and no faults, and the real CLI (`python -m campaign_dialer.cli run`) as a second
process. The dialer is judged by the sandbox's audit, not by its own report:

- achieved placement rate = (calls - 1) / (last placed - first placed), against R (target
  >= 0.97 R), and the same per tenth of the campaign (a slowdown as the journal grows shows);
- makespan (process start to exit, and first POST to last request) against its lower bound
  max(N / R, N * mean call duration / max_live_calls);
- 429s: with faults off every 429 is the dialer's own doing (rate_limited: request pacing;
  concurrency_limited: live-call slots); the most POSTs and requests in any 1 s window;
- CPU seconds per call of the dialer process (getrusage of the reaped child), and the share of
  it that is fixed start-up cost (the CPU of `check` on the same campaign);
- event-loop lag of the dialer process: a probe started beside `Engine.run` (a loop timer
  re-armed every LAG_TICK_S, 5 ms) records how late each wake-up is; p99 and max are
  printed (target: max under 20 ms; anything blocking the loop, a SQLite commit, a file
  read, shows here);
- with --against DIR (a checkout of an earlier commit: `git worktree add ../prev REV`),
  the same campaign dialed by that checkout's engine too, under the same probe and sandbox,
  alternating with this one --rounds times: CPU per call is compared on the same machine in
  the same minutes (medians), since a figure from another day or machine says little;
- side by side, in the same run, against a fresh sandbox with the same settings: a naive
  sequential httpx loop (POST one call, poll it every poll_interval_s until final, next) for a
  bounded sample, with its calls/s, CPU per call and extrapolated makespan for the same N.

Only 127.0.0.1 is contacted. Bounded: each dialer run is stopped at 2 * N / R + 90 s, each
baseline at --baseline-seconds / --baseline-calls. Defaults: 5000 calls at the highest rate,
and R * --seconds-per-rate calls at the others (so the whole run takes ~5 minutes on 2 cores).

    .venv/bin/python scripts/bench_engine.py [--rates 10,25,50] [--calls 5000]
        [--seconds-per-rate 60] [--full] [--time-scale 0.005] [--poll 1]
        [--baseline-seconds 15] [--baseline-calls 200] [--keep DIR] [--json-out FILE]
        [--against DIR] [--rounds 1]
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import platform
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench_util import (  # noqa: E402
    AGENT,
    CLOCK_START,
    FROM_NUMBER_ID,
    PYTHON,
    REPO,
    AuditFigures,
    CampaignSpec,
    Sampler,
    SandboxProcess,
    analyse,
    children_cpu,
    cpu_by_decile,
    iter_json_lines,
    machine_busy,
    phone_numbers,
    self_cpu,
    write_campaign,
)

# The dialer is run through this wrapper: the real CLI, with a probe beside Engine.run (a
# loop timer re-armed every LAG_TICK_S, as a sleeping task's wake-up is) that writes to the
# file named by argv[1] how late it woke (p50/p99/max, seconds) and how much CPU the loop's
# own thread used within each tick (`busy`: a blocking call on the loop shows there; lateness
# without it is the machine, another thread holding the GIL or the process waiting for a
# core). Only the run is probed, not planning.
LAG_TICK_S = 0.005
LAG_RUNNER = f"""
import asyncio, json, sys, time
from campaign_dialer import engine as _engine
out = sys.argv.pop(1)
late, busy, when = [], [], []
_run = _engine.Engine.run
_perf, _cpu = time.perf_counter, time.thread_time
def _start_probe():
    # A timer callback that re-arms itself: the loop's own timers, as late as any task's
    # wake-up would be, without a task step per tick (the probe's cost stays out of the
    # dialer's CPU per call as far as it can).
    loop = asyncio.get_running_loop()
    t0 = _perf()
    handle = [None]
    def tick(t, c):
        now = _perf()
        late.append(now - t - {LAG_TICK_S})
        busy.append(_cpu() - c)
        when.append(t - t0)
        handle[0] = loop.call_later({LAG_TICK_S}, tick, now, _cpu())
    handle[0] = loop.call_later({LAG_TICK_S}, tick, _perf(), _cpu())
    return handle
def _stats(xs):
    s = sorted(xs)
    pick = lambda q: s[min(int(q * len(s)), len(s) - 1)] if s else None
    return {{"n": len(s), "p50": pick(0.5), "p99": pick(0.99), "max": s[-1] if s else None}}
async def _probed(self):
    handle = _start_probe()
    try:
        return await _run(self)
    finally:
        handle[0].cancel()
        with open(out, "w") as fh:
            worst = max(range(len(busy)), key=busy.__getitem__, default=None)
            json.dump({{**_stats(late), "busy": _stats(busy), "busy_worst_at_s":
                       None if worst is None else when[worst]}}, fh)
_engine.Engine.run = _probed
from campaign_dialer.cli import main
sys.argv[0] = "campaign-dialer"
sys.exit(main())
"""

KEY = "vx_test_" + secrets.token_hex(12)  # a fresh fake key per run, never committed
TERMINAL = frozenset({"completed", "no_answer", "busy", "voicemail", "failed", "canceled"})


@dataclass
class DialerResult:
    rate: float
    calls_planned: int
    rps: float
    max_live: int
    engine: str = "dialer"  # "dialer": this checkout; else the --against checkout's commit
    exit_code: int | None = None
    timed_out: bool = False
    wall_s: float = 0.0
    cpu_s: float = 0.0
    startup_cpu_s: float = 0.0  # CPU of `check` on the same campaign: imports + plan
    sandbox_cpu_s: float = 0.0
    others_cores: float = 0.0  # CPU used meanwhile by processes outside this benchmark
    audit: AuditFigures | None = None
    post_gaps_ms: dict[str, float] = field(default_factory=dict)
    cpu_decile: list[float] = field(default_factory=list)
    dispositions: dict[str, int] = field(default_factory=dict)
    log_events: dict[str, int] = field(default_factory=dict)
    lag: dict[str, Any] = field(default_factory=dict)  # event-loop lag, seconds


@dataclass
class BaselineResult:
    calls: int = 0
    elapsed_s: float = 0.0
    cpu_s: float = 0.0
    retries_429: int = 0
    others_cores: float = 0.0
    audit: AuditFigures | None = None

    @property
    def rate(self) -> float:
        return self.calls / self.elapsed_s if self.elapsed_s > 0 else 0.0


# ---- the dialer ------------------------------------------------------------------------------


def dialer_env(workdir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["CAMPAIGN_DIALER_HOME"] = str(workdir)  # a contact history of its own per run
    env["VANTAX_API_KEY"] = KEY
    env["CAMPAIGN_DIALER_TEST_CLOCK"] = CLOCK_START
    env.pop("CAMPAIGN_DIALER_LOG_LEVEL", None)
    return env


def startup_cpu(toml: Path, workdir: Path, repo: Path = REPO) -> float:
    """CPU of `check` on the campaign: interpreter, imports, loading and planning N rows."""
    before = children_cpu()
    with open(workdir / "check.out", "w") as out:
        subprocess.run(
            [PYTHON, "-m", "campaign_dialer.cli", "--log-level", "warning", "--log-json",
             "check", str(toml), "--json"],
            cwd=repo, env=dialer_env(workdir), stdout=out, stderr=subprocess.STDOUT, timeout=300,
            check=False,
        )
    return children_cpu() - before


def run_dialer(spec: CampaignSpec, args: argparse.Namespace, workdir: Path,
               repo: Path = REPO) -> DialerResult:
    """One dialer run; `repo` is the checkout whose engine dials (its folder is the
    process's working directory, so its `campaign_dialer` is the one imported)."""
    res = DialerResult(rate=spec.rate, calls_planned=spec.calls, rps=spec.rps,
                       max_live=spec.max_live,
                       engine="dialer" if repo == REPO else short_head(repo))
    toml = write_campaign(workdir / "campaign", spec)
    res.startup_cpu_s = startup_cpu(toml, workdir, repo)
    with SandboxProcess(key=KEY, rps=spec.rps, max_live=spec.max_live,
                        time_scale=args.time_scale, seed=args.seed,
                        log_path=workdir / "sandbox.log") as sb:
        lag_file = workdir / "lag.json"
        cmd = [PYTHON, "-c", LAG_RUNNER, str(lag_file), "--log-level", "warning", "--log-json",
               "run", str(toml), "--base-url", sb.url, "--no-progress", "--grace", "5"]
        limit = 2 * spec.calls / spec.rate + 90
        sb_cpu0 = sb.cpu() or 0.0
        cpu0 = children_cpu()
        busy0, self0 = machine_busy(), self_cpu()
        with open(workdir / "dialer.out", "w") as out, open(workdir / "dialer.err", "w") as err:
            started = time.monotonic()
            proc = subprocess.Popen(cmd, cwd=repo, env=dialer_env(workdir), stdout=out, stderr=err)
            sampler = Sampler(proc.pid, sb)
            sampler.start()
            try:
                res.exit_code = proc.wait(timeout=limit)
            except subprocess.TimeoutExpired:
                res.timed_out = True
                proc.send_signal(signal.SIGINT)
                try:
                    res.exit_code = proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    res.exit_code = proc.wait()
            res.wall_s = time.monotonic() - started
            sampler.stop()
        res.cpu_s = children_cpu() - cpu0
        res.sandbox_cpu_s = (sb.cpu() or 0.0) - sb_cpu0
        ours = res.cpu_s + res.sandbox_cpu_s + (self_cpu() - self0)
        res.others_cores = max(machine_busy() - busy0 - ours, 0.0) / res.wall_s
        audit = sb.audit()
    if args.keep is not None:
        (workdir / "audit.json").write_text(json.dumps(audit))
    res.audit = analyse(audit)
    res.post_gaps_ms = post_gaps(audit)
    res.cpu_decile = cpu_by_decile(sampler.samples, res.audit.placed_times)
    results_csv = workdir / "campaign" / "out" / "results.csv"
    if results_csv.exists():
        with open(results_csv, newline="", encoding="utf-8-sig") as fh:
            res.dispositions = dict(Counter(r["disposition"] for r in csv.DictReader(fh)))
    events: Counter[str] = Counter()
    for rec in iter_json_lines(workdir / "dialer.err"):
        events[f"{rec.get('level', '?')}:{rec.get('event', '?')}"] += 1
    res.log_events = dict(events)
    if lag_file.exists():
        res.lag = json.loads(lag_file.read_text())
    return res


def post_gaps(audit: dict[str, Any]) -> dict[str, float]:
    """Gaps between consecutive placements, in ms, as the sandbox saw them."""
    placed = sorted(c["placed_mono"] for c in audit["calls"])
    gaps = sorted((b - a) * 1e3 for a, b in zip(placed, placed[1:], strict=False))
    if not gaps:
        return {}
    pick = lambda q: gaps[min(len(gaps) - 1, int(q * len(gaps)))]  # noqa: E731
    return {"min": gaps[0], "p10": pick(0.10), "p50": pick(0.50),
            "mean": sum(gaps) / len(gaps), "p90": pick(0.90), "p99": pick(0.99),
            "max": gaps[-1]}


# ---- the baseline ----------------------------------------------------------------------------


def run_baseline(spec: CampaignSpec, args: argparse.Namespace, workdir: Path) -> BaselineResult:
    """POST one call, poll it until it is final, then the next: no concurrency at all."""
    res = BaselineResult()
    poll = args.baseline_poll if args.baseline_poll is not None else spec.poll_interval_s
    # Spread over the campaign's numbers: the sandbox fixes each number's call length, so the
    # sample then has the campaign's mix of short and long calls.
    every = phone_numbers(spec.calls)
    numbers = every[:: max(1, len(every) // max(args.baseline_calls, 1))][: args.baseline_calls]
    with SandboxProcess(key=KEY, rps=spec.rps, max_live=spec.max_live,
                        time_scale=args.time_scale, seed=args.seed,
                        log_path=workdir / "baseline-sandbox.log") as sb:
        client = httpx.Client(
            base_url=sb.url, trust_env=False, timeout=5.0,
            headers={"Authorization": f"Bearer {KEY}", "Accept": "application/json"},
        )
        started = time.perf_counter()
        cpu0 = time.process_time()
        busy0, self0 = machine_busy(), self_cpu()
        sb_cpu0 = sb.cpu() or 0.0
        try:
            for i, number in enumerate(numbers):
                if time.perf_counter() - started >= args.baseline_seconds:
                    break
                body = {"agent_id": AGENT, "phone_number": number,
                        "from_phone_number_id": FROM_NUMBER_ID}
                while True:
                    r = client.post("/v1/calls", json=body,
                                    headers={"Idempotency-Key": f"bench-baseline-{i}"})
                    if r.status_code == 201:
                        break
                    if r.status_code == 429:
                        res.retries_429 += 1
                        time.sleep(float(r.headers.get("Retry-After") or 0.5))
                        continue
                    raise SystemExit(f"baseline: POST answered {r.status_code}: {r.text[:200]}")
                call = r.json()["data"]
                while call["status"] not in TERMINAL:
                    time.sleep(poll)
                    r = client.get(f"/v1/calls/{call['id']}")
                    if r.status_code == 429:
                        res.retries_429 += 1
                        continue
                    r.raise_for_status()
                    call = r.json()["data"]
                res.calls += 1
        finally:
            res.elapsed_s = time.perf_counter() - started
            res.cpu_s = time.process_time() - cpu0
            ours = (self_cpu() - self0) + (sb.cpu() or 0.0) - sb_cpu0
            res.others_cores = max(machine_busy() - busy0 - ours, 0.0) / res.elapsed_s
            client.close()
        audit = sb.audit()
        if args.keep is not None:
            (workdir / "baseline-audit.json").write_text(json.dumps(audit))
        res.audit = analyse(audit)
    return res


# ---- report ----------------------------------------------------------------------------------


def _ms(x: float | None) -> str:
    return "-" if x is None else f"{x * 1e3:.1f} ms"


def fmt_s(x: float) -> str:
    if not math.isfinite(x):
        return "-"
    if x >= 3600:
        return f"{x / 3600:.1f} h"
    return f"{x:.0f} s" if x >= 100 else f"{x:.1f} s"


def print_table(rows: list[tuple[DialerResult, BaselineResult | None]]) -> None:
    hdr = (f"{'setting':<16}{'calls':>6}{'rate':>7}{'achieved':>10}{'ratio':>7}"
           f"{'makespan':>10}{'dial span':>10}{'bound':>8}{'ms/bound':>9}"
           f"{'429 own':>8}{'429 flt':>8}{'POST/1s':>8}{'req/1s':>8}{'limit':>6}"
           f"{'peak live':>10}{'CPU/call':>10}{'lag p99':>9}{'lag max':>9}{'busy max':>9}"
           f"{'others':>7}{'exit':>6}"
           f"{'>=0.97':>7}")
    print(hdr)
    print("-" * len(hdr))
    for d, b in rows:
        a = d.audit or AuditFigures()
        n = a.calls
        mean = a.mean_call_s
        bound = max(d.calls_planned / d.rate, d.calls_planned * mean / d.max_live)
        span = (a.last_request - a.first_post) if a.first_post else float("nan")
        own = a.rate_429_own + a.live_429_own
        cpu_call = d.cpu_s / n if n else float("nan")
        exit_ = ("TIMEOUT " if d.timed_out else "") + str(d.exit_code)
        print(f"{d.engine + ' @' + format(d.rate, 'g') + '/s':<16}{n:>6}{d.rate:>7.2f}"
              f"{a.placement_rate:>10.2f}{a.placement_rate / d.rate:>7.3f}"
              f"{fmt_s(d.wall_s):>10}{fmt_s(span):>10}{fmt_s(bound):>8}"
              f"{d.wall_s / bound:>9.2f}{own:>8}{a.fault_429:>8}{a.max_post_1s:>8}"
              f"{a.max_req_1s:>8}{int(d.rps):>6}{a.peak_live:>10}"
              f"{cpu_call * 1e3:>8.2f}ms{_ms(d.lag.get('p99')):>9}{_ms(d.lag.get('max')):>9}"
              f"{_ms((d.lag.get('busy') or {}).get('max')):>9}"
              f"{d.others_cores:>7.2f}{exit_:>6}"
              f"{'yes' if a.placement_rate >= 0.97 * d.rate else 'NO':>7}")
        if b is not None:
            ba = b.audit or AuditFigures()
            extrap = d.calls_planned / b.rate if b.rate else float("inf")
            bcpu = b.cpu_s / b.calls if b.calls else float("nan")
            print(f"{'  baseline seq.':<16}{b.calls:>6}{d.rate:>7.2f}{b.rate:>10.2f}"
                  f"{b.rate / d.rate:>7.3f}{fmt_s(extrap):>10}{'(extrap.)':>10}{fmt_s(bound):>8}"
                  f"{extrap / bound:>9.1f}{ba.rate_429_own + ba.live_429_own:>8}"
                  f"{ba.fault_429:>8}{ba.max_post_1s:>8}{ba.max_req_1s:>8}{int(d.rps):>6}"
                  f"{ba.peak_live:>10}{bcpu * 1e3:>8.2f}ms{'-':>9}{'-':>9}{'-':>9}"
                  f"{b.others_cores:>7.2f}{'-':>6}")
    print()
    print("rate = pacing.calls_per_second; achieved = (placed-1)/(last placed - first placed) "
          "from the sandbox audit;")
    print("makespan = dialer process start to exit; dial span = first POST to last request; "
          "bound = max(N/rate, N*mean call/max_live);")
    print("429 own = rate_limited + concurrency_limited without an injected fault (the dialer's "
          "own pacing); POST/1s, req/1s = most admitted")
    print("in any 1 s window (limit = the sandbox's requests/s); CPU/call = dialer process "
          "user+sys / calls placed (baseline: the loop's own CPU);")
    print(f"lag = how late the dialer's event loop woke a {LAG_TICK_S * 1e3:g} ms sleep during the "
          "run (p99, max; target max < 20 ms); busy = the loop thread's CPU within one tick;")
    print("others = cores busy meanwhile with processes outside this benchmark (> ~0.2: the "
          "machine was shared and the figures are pessimistic).")


def print_details(d: DialerResult, b: BaselineResult | None) -> None:
    a = d.audit or AuditFigures()
    n = a.calls
    print(f"\n== {d.engine} @ {d.rate:g} calls/s: {d.calls_planned} contacts, "
          f"requests_per_second={d.rps:g}, max_live_calls={d.max_live}")
    print(f"   placed {n} calls to {a.distinct_numbers} distinct numbers; POSTs {a.posts} "
          f"(admitted {a.posts_admitted}); GETs {a.gets} ({a.gets_per_call:.2f}/call); "
          f"exit {d.exit_code}{' (timed out)' if d.timed_out else ''}; "
          f"results.csv {d.dispositions}")
    print(f"   call duration on the platform: mean {a.mean_call_s:.2f} s, p95 "
          f"{a.p95_call_s:.2f} s; peak live {a.peak_live} / {d.max_live}")
    if d.post_gaps_ms:
        g = d.post_gaps_ms
        print(f"   gap between placements (ms; 1/rate = {1e3 / d.rate:.1f}): "
              + " ".join(f"{k} {v:.1f}" for k, v in g.items()))
    if a.by_decile:
        print("   placement rate per tenth of the campaign (calls/s): "
              + " ".join(f"{x:.1f}" for x in a.by_decile))
    if d.cpu_decile:
        print("   dialer CPU per tenth (cores busy):                   "
              + " ".join(f"{x:.2f}" for x in d.cpu_decile))
    if n:
        marginal = max(d.cpu_s - d.startup_cpu_s, 0.0) / n
        print(f"   dialer CPU {d.cpu_s:.1f} s = {d.cpu_s / n * 1e3:.2f} ms/call "
              f"(start-up, as `check`: {d.startup_cpu_s:.1f} s; the rest "
              f"{marginal * 1e3:.2f} ms/call); sandbox CPU {d.sandbox_cpu_s:.1f} s "
              f"= {d.sandbox_cpu_s / max(a.requests, 1) * 1e3:.2f} ms/request; other "
              f"processes on the machine meanwhile: {d.others_cores:.2f} cores")
    if d.lag:
        busy = d.lag.get("busy") or {}
        print(f"   event-loop lag (a {LAG_TICK_S * 1e3:g} ms sleep woken late by, "
              f"{d.lag.get('n')} samples): p50 {_ms(d.lag.get('p50'))} p99 "
              f"{_ms(d.lag.get('p99'))} max {_ms(d.lag.get('max'))} (target: max < 20 ms); "
              f"loop thread's own CPU within one tick: p99 {_ms(busy.get('p99'))} max "
              f"{_ms(busy.get('max'))} at {d.lag.get('busy_worst_at_s') or 0:.1f} s into the run "
              "(a blocking call on the loop shows here)")
    if a.other_errors:
        print(f"   other non-2xx answers: {a.other_errors}")
    if d.log_events:
        top = sorted(d.log_events.items(), key=lambda kv: -kv[1])[:8]
        print(f"   dialer log lines at warning+: {dict(top)}")
    if b is not None:
        ba = b.audit or AuditFigures()
        print(f"   baseline: {b.calls} calls in {b.elapsed_s:.1f} s = {b.rate:.2f} calls/s "
              f"(mean call {ba.mean_call_s:.2f} s), CPU {b.cpu_s:.2f} s = "
              f"{(b.cpu_s / b.calls * 1e3) if b.calls else float('nan'):.2f} ms/call, "
              f"429 retries {b.retries_429}; other processes: {b.others_cores:.2f} cores")


def short_head(repo: Path) -> str:
    """The short commit of a checkout (the label of the --against engine)."""
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=repo,
                              capture_output=True, text=True, timeout=10).stdout.strip() or "?"
    except (OSError, subprocess.SubprocessError):
        return "?"


def _median(xs: list[float]) -> float:
    s = sorted(xs)
    return (s[len(s) // 2] + s[(len(s) - 1) // 2]) / 2 if s else float("nan")


def print_comparison(rows: list[tuple[DialerResult, BaselineResult | None]]) -> None:
    """This engine against the --against one, per rate: medians of the alternating rounds."""
    for rate in sorted({d.rate for d, _ in rows}):
        runs = [d for d, _ in rows if d.rate == rate and d.audit and d.audit.calls]
        ours = [d for d in runs if d.engine == "dialer"]
        theirs = [d for d in runs if d.engine != "dialer"]
        if not ours or not theirs:
            continue

        def per_call(ds: list[DialerResult], net: bool) -> list[float]:
            return [((d.cpu_s - (d.startup_cpu_s if net else 0.0)) / d.audit.calls) * 1e3
                    for d in ds if d.audit]

        mine, prev = _median(per_call(ours, False)), _median(per_call(theirs, False))
        mine_n, prev_n = _median(per_call(ours, True)), _median(per_call(theirs, True))
        each = lambda ds: ", ".join(f"{x:.2f}" for x in per_call(ds, False))  # noqa: E731
        print(f"CPU per call @{rate:g}/s, median of {len(ours)} + {len(theirs)} alternating runs: "
              f"this engine {mine:.2f} ms ({each(ours)}), {theirs[0].engine} {prev:.2f} ms "
              f"({each(theirs)}): {mine / prev:.3f}x; net of start-up {mine_n:.2f} vs "
              f"{prev_n:.2f} ms: {mine_n / prev_n:.3f}x")


def git_state() -> str:
    """The code measured: HEAD and the files changed in the work tree."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                              capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "campaign_dialer"],
                               cwd=REPO, capture_output=True, text=True,
                               timeout=10).stdout.split("\n")
    except (OSError, subprocess.SubprocessError):
        return "git state unknown"
    changed = [line[3:] for line in dirty if line.strip()]
    return f"HEAD {head or '?'}" + (f", uncommitted changes in {', '.join(changed)}"
                                    if changed else ", clean work tree")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rates", default="10,25,50",
                   help="comma-separated pacing.calls_per_second settings (default 10,25,50)")
    p.add_argument("--calls", type=int, default=5000,
                   help="campaign size at the highest rate (and the cap at the others)")
    p.add_argument("--seconds-per-rate", type=float, default=60.0,
                   help="below the highest rate, dial rate * this many calls (capped at "
                        "--calls); default 60")
    p.add_argument("--full", action="store_true", help="dial --calls at every rate")
    p.add_argument("--time-scale", type=float, default=0.005,
                   help="sandbox real seconds per simulated second (0.005: mean call ~0.6 s)")
    p.add_argument("--poll", type=float, default=1.0, help="api.poll_interval_s (default 1)")
    p.add_argument("--max-live", type=int, default=None,
                   help="api.max_live_calls (default 3 * rate + 10: live calls never bind)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--baseline-seconds", type=float, default=15.0,
                   help="bound of each baseline sample in seconds (default 15)")
    p.add_argument("--baseline-calls", type=int, default=200,
                   help="bound of each baseline sample in calls (default 200)")
    p.add_argument("--baseline-poll", type=float, default=None,
                   help="the baseline's poll gap (default: the campaign's poll_interval_s)")
    p.add_argument("--no-baseline", action="store_true")
    p.add_argument("--keep", type=Path, default=None,
                   help="keep campaign folders, logs and audits here (default: a temp dir)")
    p.add_argument("--json-out", type=Path, default=None, help="write every figure as JSON")
    p.add_argument("--against", type=Path, default=None,
                   help="also dial each setting with the engine of this checkout (an earlier "
                        "commit: `git worktree add DIR REV`), alternating with this one")
    p.add_argument("--rounds", type=int, default=1,
                   help="runs per setting (and per engine with --against); default 1")
    args = p.parse_args(argv)
    if args.against is not None and not (args.against / "campaign_dialer").is_dir():
        p.error(f"--against {args.against}: no campaign_dialer package in that folder")
    if args.rounds < 1:
        p.error("--rounds must be at least 1")

    rates = sorted({float(x) for x in args.rates.split(",") if x.strip()})
    if not rates or min(rates) <= 0:
        p.error("--rates wants positive numbers")
    if not 2 <= args.calls <= 70_000:
        p.error("--calls must be within 2..70000")
    top = max(rates)
    plan: list[CampaignSpec] = []
    for r in rates:
        n = args.calls if (args.full or r == top) else min(
            args.calls, max(20, round(r * args.seconds_per_rate)))
        rps = 3 * r + 10
        live = args.max_live if args.max_live is not None else math.ceil(3 * r) + 10
        plan.append(CampaignSpec(calls=n, rate=r, rps=rps, max_live=live,
                                 poll_interval_s=args.poll, name=f"bench-engine-{r:g}"))

    print(f"bench_engine: {git_state()}")
    if args.against is not None:
        print(f"bench_engine: against {args.against} at {short_head(args.against)}, "
              f"{args.rounds} round(s) each, alternating")
    print(f"bench_engine: python {platform.python_version()} on {os.cpu_count()} CPU(s), "
          f"{platform.system()} {platform.release()}")
    print(f"sandbox: separate process, no faults, time_scale={args.time_scale:g}, "
          f"seed={args.seed}; dialer: `python -m campaign_dialer.cli run` as a process, "
          f"--log-level warning, test clock {CLOCK_START}")
    print("settings: " + "; ".join(
        f"{s.calls} calls @ {s.rate:g}/s (rps {s.rps:g}, max_live {s.max_live}, "
        f"poll {s.poll_interval_s:g} s)" for s in plan))
    if not args.no_baseline:
        print(f"baseline: sequential httpx loop, <= {args.baseline_calls} calls or "
              f"{args.baseline_seconds:g} s per setting, poll gap "
              f"{args.baseline_poll if args.baseline_poll is not None else args.poll:g} s")
    print(flush=True)

    tmp = None
    if args.keep is not None:
        root = args.keep
        root.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="bench-engine-")
        root = Path(tmp.name)
    rows: list[tuple[DialerResult, BaselineResult | None]] = []
    t_all = time.monotonic()
    try:
        for spec in plan:
            for round_ in range(args.rounds):
                engines = [REPO] if args.against is None else (
                    [args.against, REPO] if round_ % 2 == 0 else [REPO, args.against])
                for repo in engines:
                    name = "this" if repo == REPO else "against"
                    workdir = root / f"rate-{spec.rate:g}-{name}-{round_ + 1}"
                    if workdir.exists():
                        raise SystemExit(f"{workdir} exists; give --keep an empty folder")
                    workdir.mkdir(parents=True)
                    print(f"running {spec.calls} calls @ {spec.rate:g}/s with "
                          f"{'this engine' if repo == REPO else short_head(repo)} ...",
                          flush=True)
                    d = run_dialer(spec, args, workdir, repo)
                    b = None
                    if not args.no_baseline and round_ == 0 and repo == REPO:
                        print(f"running the baseline @ {spec.rate:g}/s settings ...",
                              flush=True)
                        b = run_baseline(spec, args, workdir)
                    print_details(d, b)
                    print(flush=True)
                    rows.append((d, b))
    finally:
        if tmp is not None:
            tmp.cleanup()

    print(f"\n== summary ({time.monotonic() - t_all:.0f} s in all)\n")
    print_table(rows)
    if args.against is not None:
        print()
        print_comparison(rows)
    ok_rate = all(d.audit and d.audit.placement_rate >= 0.97 * d.rate for d, _ in rows)
    own_429 = sum((d.audit.rate_429_own + d.audit.live_429_own) if d.audit else 0
                  for d, _ in rows)
    complete = all(d.audit and d.audit.calls == d.calls_planned and not d.timed_out
                   for d, _ in rows)
    print(f"\ntarget achieved >= 0.97 x configured rate: {'met' if ok_rate else 'NOT met'}; "
          f"429s caused by the dialer's own pacing: {own_429}; "
          f"every contact placed: {'yes' if complete else 'NO'}")
    if args.json_out is not None:
        def enc(o: Any) -> Any:
            if isinstance(o, (DialerResult, BaselineResult, AuditFigures)):
                dd = asdict(o)
                if "audit" in dd and dd["audit"]:
                    dd["audit"].pop("placed_times", None)
                dd.pop("placed_times", None)
                return dd
            raise TypeError(type(o))

        args.json_out.write_text(json.dumps(
            [{"dialer": enc(d), "baseline": enc(b) if b else None} for d, b in rows],
            indent=2, default=str))
    return 0 if ok_rate and own_429 == 0 and complete else 1


if __name__ == "__main__":
    sys.exit(main())
