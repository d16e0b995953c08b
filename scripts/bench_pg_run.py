"""Several `run` processes on one campaign, PostgreSQL store, judged by the sandbox's audit.

In one run, each scenario on a fresh campaign of N New York numbers (all with consent, inside
the calling window on the test clock), a fresh sandbox process (its request and live-call
limits those of the campaign, no faults) and the real CLI (`python -m campaign_dialer.cli
run`) as child processes:

- `sqlite x1`: one process, the SQLite files (the default store): the baseline;
- `postgresql x1`: one process, the campaign in a fresh database of a throwaway cluster;
- `postgresql x3`: three processes on the same campaign (each from its own copy of the
  campaign folder, as from three machines), started together.

For each it prints:
- achieved rate / configured rate: (calls - 1) / (last placement - first), from the
  sandbox's audit of placements (target at least 0.97, never above 1 + the tolerance), and
  the most placements in any 1 s window (the limit is global: calls_per_second + 1 at most);
- CPU per call: the dialer processes' user+sys CPU (getrusage of the reaped children, summed
  over the processes) / calls placed;
- database round trips per call (PostgreSQL): the database's transactions committed or
  rolled back (pg_stat_database xact_commit + xact_rollback; the store's connections are in
  autocommit, so one statement = one transaction = one round trip, apart from the few
  explicit multi-statement transactions) over calls placed; includes each process's start
  (migration check, plan load, registration) and end;
- nobody called twice (distinct numbers = calls) and every row's fate.

The cluster: `CAMPAIGN_DIALER_TEST_PG_URL` if set (its role may create databases), else a
throwaway one started like the tests' (tests/pg_cluster.py: Debian's binaries, 127.0.0.1,
trust auth, stopped at the end). Only 127.0.0.1 is contacted.

    .venv/bin/python scripts/bench_pg_run.py [--calls 600] [--rate 10] [--processes 3]
        [--time-scale 0.005] [--poll 0.5] [--only sqlite,pg1,pg3] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench_util import (  # noqa: E402
    CLOCK_START,
    PYTHON,
    REPO,
    AuditFigures,
    CampaignSpec,
    SandboxProcess,
    analyse,
    children_cpu,
    machine_busy,
    max_in_window,
    self_cpu,
    write_campaign,
)

from tests import pg_cluster  # noqa: E402  (REPO is on sys.path: _bench_util puts it there)

KEY = "vx_test_" + os.urandom(12).hex()  # a fresh fake key per run, never committed
STORE_URL_ENV = "CAMPAIGN_DIALER_STORE_URL"
RATE_TOLERANCE = 0.02  # achieved / configured may exceed 1 by this (clock edges, n-1 gaps)


@dataclass
class Scenario:
    label: str
    processes: int
    postgres: bool


@dataclass
class Result:
    label: str
    processes: int
    exit_codes: list[int | None] = field(default_factory=list)
    timed_out: bool = False
    wall_s: float = 0.0
    cpu_s: float = 0.0
    others_cores: float = 0.0
    audit: AuditFigures | None = None
    round_trips: int | None = None
    dispositions: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    statements: list[tuple[int, str]] = field(default_factory=list)


def dialer_env(workdir: Path, url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAMPAIGN_DIALER_")}
    env["VANTAX_API_KEY"] = KEY
    env["CAMPAIGN_DIALER_TEST_CLOCK"] = CLOCK_START
    if url:
        env[STORE_URL_ENV] = url  # the history is the database's
    else:
        env["CAMPAIGN_DIALER_HOME"] = str(workdir / "home")  # a contact history of its own
    return env


def xacts(url: str) -> int:
    """Transactions the database has committed or rolled back (its backends' flushed stats)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        row = conn.execute(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database "
            "WHERE datname = current_database()"
        ).fetchone()
    return int(row[0]) if row else 0


def settled_xacts(url: str, previous: int | None = None) -> int:
    """The counter once every ended backend has flushed its stats (they do so at exit, and
    a live one at most once a second): read until two readings 1.2 s apart agree (each
    reading itself adds one transaction)."""
    last = xacts(url)
    for _ in range(10):
        time.sleep(1.2)
        now = xacts(url)
        if now - last <= 1:
            return now
        last = now
    return last


def enable_statements(cluster: pg_cluster.Cluster) -> bool:
    """Load pg_stat_statements into the throwaway cluster (a restart) for the per-statement
    breakdown; False (and the transaction count alone) when it is not installed."""
    import psycopg

    bins = pg_cluster.bin_dir()
    try:
        with psycopg.connect(cluster.url, autocommit=True) as conn:
            conn.execute("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'")
        subprocess.run(
            pg_cluster._as_server_user([str(bins / "pg_ctl"), "-D", str(cluster.base / "data"),
                                        "-w", "-t", "60", "restart"]),
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=cluster.base,
        )
        with psycopg.connect(cluster.url, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        return True
    except (psycopg.Error, subprocess.CalledProcessError, OSError, TypeError) as e:
        print(f"pg_stat_statements not available ({str(e).strip()[:120]}): transactions only")
        return False


def statements(server: str, url: str) -> list[tuple[int, str]]:
    """(calls, query) of every statement the scenario's database ran, most frequent first."""
    import psycopg

    dbname = url.rsplit("/", 1)[-1]
    with psycopg.connect(server, autocommit=True) as conn:
        return [(int(n), " ".join(q.split())) for n, q in conn.execute(
            "SELECT s.calls, s.query FROM pg_stat_statements s "
            "JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = %s ORDER BY s.calls DESC",
            (dbname,),
        ).fetchall()]


def run_scenario(sc: Scenario, spec: CampaignSpec, args: argparse.Namespace, workdir: Path,
                 server: str | None) -> Result:
    res = Result(sc.label, sc.processes)
    url = pg_cluster.create_database(server) if sc.postgres and server else None
    try:
        folders = []
        base = write_campaign(workdir / "campaign-0", spec).parent
        folders.append(base)
        for i in range(1, sc.processes):  # the same campaign, as another machine has it
            shutil.copytree(base, workdir / f"campaign-{i}")
            folders.append(workdir / f"campaign-{i}")
        with SandboxProcess(key=KEY, rps=spec.rps, max_live=spec.max_live,
                            time_scale=args.time_scale, seed=args.seed,
                            log_path=workdir / "sandbox.log") as sb:
            x0 = xacts(url) if url else None
            limit = 2 * spec.calls / spec.rate + 120
            cpu0, busy0, self0 = children_cpu(), machine_busy(), self_cpu()
            sb0 = sb.cpu() or 0.0
            procs, files = [], []
            started = time.monotonic()
            for i, folder in enumerate(folders):
                out = open(workdir / f"dialer-{i}.out", "w")  # noqa: SIM115 - closed below
                err = open(workdir / f"dialer-{i}.err", "w")  # noqa: SIM115
                files += [out, err]
                procs.append(subprocess.Popen(
                    [PYTHON, "-m", "campaign_dialer.cli", "--log-level", "warning",
                     "--log-json", "run", str(folder / "campaign.toml"), "--base-url", sb.url,
                     "--no-progress", "--grace", "5"],
                    cwd=REPO, env=dialer_env(workdir, url), stdout=out, stderr=err,
                ))
            for p in procs:
                left = max(limit - (time.monotonic() - started), 1.0)
                try:
                    res.exit_codes.append(p.wait(timeout=left))
                except subprocess.TimeoutExpired:
                    res.timed_out = True
                    p.send_signal(signal.SIGINT)
                    try:
                        res.exit_codes.append(p.wait(timeout=20))
                    except subprocess.TimeoutExpired:
                        p.kill()
                        res.exit_codes.append(p.wait())
            res.wall_s = time.monotonic() - started
            for fh in files:
                fh.close()
            res.cpu_s = children_cpu() - cpu0  # the dialers only: the sandbox still runs
            ours = res.cpu_s + ((sb.cpu() or 0.0) - sb0) + (self_cpu() - self0)
            res.others_cores = max(machine_busy() - busy0 - ours, 0.0) / res.wall_s
            audit = sb.audit()
        if url and x0 is not None:
            res.round_trips = settled_xacts(url) - x0
            if args.statements and server:
                res.statements = statements(server, url)
        if args.keep is not None:
            (workdir / "audit.json").write_text(json.dumps(audit))
        res.audit = analyse(audit)
        for folder in folders:
            res.dispositions.update(_dispositions(folder / "out" / "results.csv"))
        for i in range(len(folders)):
            res.errors += _errors(workdir / f"dialer-{i}.err")
    finally:
        if url and server:
            pg_cluster.drop_database(server, url)
    return res


def startup_cpu(spec: CampaignSpec, root: Path) -> float | None:
    """CPU of `check` on the campaign (SQLite): what each process spends before dialing."""
    folder = root / "startup"
    toml = write_campaign(folder, spec)
    before = children_cpu()
    done = subprocess.run(
        [PYTHON, "-m", "campaign_dialer.cli", "--log-level", "warning", "--log-json", "check",
         str(toml), "--json"],
        cwd=REPO, env=dialer_env(folder, None), capture_output=True, timeout=300, check=False,
    )
    return children_cpu() - before if done.returncode == 0 else None


def _dispositions(path: Path) -> Counter[str]:
    import csv

    if not path.exists():
        return Counter()
    with open(path, newline="", encoding="utf-8-sig") as fh:
        return Counter(r["disposition"] for r in csv.DictReader(fh))


def _errors(path: Path) -> list[str]:
    """The dialer's error lines (its one-line error message, or JSON events at error)."""
    out = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            if line.strip():
                out.append(line.strip()[:300])
            continue
        if isinstance(rec, dict) and rec.get("level") in ("error", "critical"):
            out.append(f"{rec.get('event')}: {rec.get('error') or rec.get('message') or ''}"[:300])
    return out


def report(results: list[Result], spec: CampaignSpec, startup: float | None) -> None:
    base = next((r for r in results if r.label.startswith("sqlite")), None)
    print(f"\ncampaign: {spec.calls} calls at calls_per_second = {spec.rate:g} "
          f"(requests_per_second {spec.rps:g}, max_live_calls {spec.max_live}); "
          f"target: achieved/configured in [0.97, {1 + RATE_TOLERANCE:.2f}], at most "
          f"{int(spec.rate) + 1} placements in any 1 s window\n")
    head = (f"{'scenario':<16}{'exit':>10}{'calls':>7}{'twice':>6}{'rate/cfg':>10}"
            f"{'max/1s':>8}{'peak live':>10}{'CPU ms/call':>13}{'RT/call':>9}{'wall s':>8}"
            f"{'others':>8}")
    print(head)
    print("-" * len(head))
    for r in results:
        a = r.audit
        calls = a.calls if a else 0
        ratio = a.placement_rate / spec.rate if a and a.placement_rate else 0.0
        twice = (a.calls - a.distinct_numbers) if a else 0
        cpu = 1e3 * r.cpu_s / calls if calls else float("nan")
        rt = f"{r.round_trips / calls:.1f}" if r.round_trips is not None and calls else "-"
        codes = ",".join("-" if c is None else str(c) for c in r.exit_codes)
        peak = max_in_window(a.placed_times) if a else 0
        print(f"{r.label:<16}{codes:>10}{calls:>7}{twice:>6}{ratio:>10.3f}{peak:>8}"
              f"{(a.peak_live if a else 0):>10}{cpu:>13.1f}{rt:>9}{r.wall_s:>8.1f}"
              f"{r.others_cores:>8.2f}")
    print()
    for r in results:
        a = r.audit
        if r.statements and a and a.calls:
            total = sum(n for n, _ in r.statements) / a.calls
            print(f"{r.label}: {total:.1f} statements per call placed (an upper bound on round "
                  "trips: executemany pipelines its statements); the most frequent:")
            for n, q in r.statements[:8]:
                print(f"    {n / a.calls:6.2f}  {q[:110]}")
    print()
    for r in results:
        a = r.audit
        verdict = []
        if a and a.calls:
            ratio = a.placement_rate / spec.rate
            ok = 0.97 <= ratio <= 1 + RATE_TOLERANCE
            verdict.append(f"rate {'met' if ok else 'NOT met'} ({ratio:.3f})")
            verdict.append("window ok" if max_in_window(a.placed_times) <= spec.rate + 1
                           else "WINDOW EXCEEDED")
            verdict.append("nobody twice" if a.calls == a.distinct_numbers
                           else f"{a.calls - a.distinct_numbers} CALLED TWICE")
            if startup is not None:
                net = (r.cpu_s - r.processes * startup) / a.calls
                verdict.append(f"CPU/call net of {r.processes} start-up(s) {1e3 * net:.1f} ms")
            if base and base is not r and base.audit and base.audit.calls and r.cpu_s:
                times = (r.cpu_s / a.calls) / (base.cpu_s / base.audit.calls)
                verdict.append(f"CPU/call x{times:.2f} of SQLite")
        else:
            verdict.append("no call placed")
        print(f"{r.label}: {'; '.join(verdict)}; fates {dict(r.dispositions)}"
              f"{'; TIMED OUT' if r.timed_out else ''}")
        for e in r.errors[:3]:
            print(f"    {e}")
    print("\n'others': cores busy with processes outside this benchmark meanwhile (of 2); "
          "RT: database transactions (one per autocommit statement) per call placed")
    if startup is not None:
        print(f"start-up CPU of one process (`check` of the same campaign: interpreter, imports, "
              f"plan): {startup:.2f} s")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--calls", type=int, default=600)
    ap.add_argument("--rate", type=float, default=10.0)
    ap.add_argument("--processes", type=int, default=3)
    ap.add_argument("--rps", type=float, default=None, help="default: 4 x rate")
    ap.add_argument("--max-live", type=int, default=20)
    ap.add_argument("--time-scale", type=float, default=0.005)
    ap.add_argument("--poll", type=float, default=0.5)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--only", default="sqlite,pg1,pg3")
    ap.add_argument("--keep", type=Path, default=None, help="keep the work folders here")
    args = ap.parse_args()
    args.statements = False
    spec = CampaignSpec(calls=args.calls, rate=args.rate, rps=args.rps or 4 * args.rate,
                        max_live=args.max_live, poll_interval_s=args.poll, name="bench-pg-run")
    wanted = set(args.only.split(","))
    scenarios = [s for key, s in (
        ("sqlite", Scenario("sqlite x1", 1, False)),
        ("pg1", Scenario("postgresql x1", 1, True)),
        ("pg3", Scenario(f"postgresql x{args.processes}", args.processes, True)),
    ) if key in wanted]

    root = args.keep or Path(tempfile.mkdtemp(prefix="bench-pg-run-"))
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o755)  # the cluster's folder inside is the server user's (as root)
    cluster = None
    server = os.environ.get(pg_cluster.ENV_URL, "").strip() or None
    if server is None and any(s.postgres for s in scenarios):
        try:
            cluster = pg_cluster.start(root / "pg")
            server = cluster.url
            args.statements = enable_statements(cluster)
        except (RuntimeError, OSError, subprocess.CalledProcessError) as e:
            print(f"no PostgreSQL cluster ({e}); the PostgreSQL scenarios are skipped")
            scenarios = [s for s in scenarios if not s.postgres]
    results = []
    startup = startup_cpu(spec, root)
    try:
        for sc in scenarios:
            print(f"{sc.label}: {spec.calls} calls at {spec.rate:g}/s ...", flush=True)
            work = root / sc.label.replace(" ", "-")
            work.mkdir(parents=True, exist_ok=True)
            results.append(run_scenario(sc, spec, args, work, server))
    finally:
        if cluster is not None:
            cluster.stop()
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    report(results, spec, startup)
    return 0


if __name__ == "__main__":
    sys.exit(main())
