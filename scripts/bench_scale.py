"""Benchmark issue #25 at scale: `check` and the plan a run reads back, each figure beside
`make_plan` alone and the naive per-row plan, measured in the same run.

    python scripts/bench_scale.py                   # 1M contacts, 1M DNC numbers, 500k consent
    python scripts/bench_scale.py --rows 10000000 --no-naive --run 60 --runs first
                                                    # 10M (inputs generated, never committed)
    python scripts/bench_scale.py --rows 200000 --steps --run 60

Inputs come from scripts/gen_contacts.py (generated once into --out, reused after). Each of
these runs in a fresh child process, so its wall time and peak RSS (wait4) are its own:

- `make_plan` alone (the reference): the inputs read and every row decided, as columns;
- the naive per-row plan: `make_plan`, then a Python object for every row (`PlannedRow`)
  and the engine's person map over them, as every run built before #25;
- `check` (the real CLI, `campaign-dialer check`): plan, forecast, plan.csv, the summary;
- plan and keep: `plan_once` with no plan kept (plans, encodes, saves);
- resumed: `plan_once` with the plan kept (fingerprint, read back, the gate built again),
  then what a run needs before its first call from it: the dial columns, the row source,
  the first batch of rows taken (only those rows made);
- `--pg`: plan and keep in PostgreSQL (a throwaway local cluster), then two processes
  started together reading it back.

The kept plan's bytes per row are printed beside. `--steps` also compares, in one process,
the steps of `check` with their old ways (formula guard, writing plan.csv, the forecast).

`--run SECONDS` also runs the real CLI (`campaign-dialer run --max-duration SECONDS`) on the
same inputs against a sandbox process (20 calls/s), three times: a first run (plans, keeps the
plan), a resumed run (reads the plan back: "after"), and a resumed run with the kept plan
deleted first (plans again at its start, as every run did before the plan was kept:
"before"). For each: seconds from the process's start to the sandbox's first placed call,
wall time, peak RSS (the child's own, from wait4), and the journal's growth per row not
dialed (the journal minus an empty one, over the rows the runs did not dial) beside the kept
plan's bytes per row.

`--pg-run SECONDS` runs three `run` processes (the real CLI, `--max-duration SECONDS`) on one
campaign in PostgreSQL (a throwaway local cluster) against a sandbox process, started
together, each from its own folder (its own campaign file, output folder and DNC ledger, as
three machines; the inputs at the same paths, as a shared mount: the plan's fingerprint
includes their paths). For each: plan_made or plan_reused (one plans, the others read its
plan), seconds from its start to its first placed call (its log's call_placed ids in the
sandbox's audit), exit code, wall time, peak RSS (wait4), and the highest RSS sampled (every
0.1 s) in each phase, cut at its log's events: to the plan (made or read), to run_started
(before dialing), to run_finished (dialing), to results_written, to its exit (the report);
then the sandbox's calls vs distinct numbers.

Figures depend on the machine and what else runs on it: compare within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

AT = datetime(2026, 6, 10, 18, 0, tzinfo=UTC)  # a Wednesday afternoon in the US


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def old_safe_for_spreadsheets(df: Any) -> Any:
    """The formula guard before #25: a Python call per cell."""
    import pandas as pd

    from campaign_dialer.results import neutralize

    out = df.copy()
    for c in out.columns:
        if out[c].dtype == object or pd.api.types.is_string_dtype(out[c]):
            out[c] = out[c].map(neutralize)
    out.columns = [neutralize(str(c)) for c in out.columns]
    return out


def old_write_csv(df: Any, path: Path) -> None:
    """plan.csv's writer before #25: pandas' to_csv."""
    df.to_csv(path, index=False, lineterminator="\r\n", encoding="utf-8")


def line(what: str, new: float, old: float, extra: str = "") -> None:
    print(f"  {what:<34} new {new:7.2f} s   old {old:7.2f} s   ({old / max(new, 1e-9):5.1f}x)"
          f"{'   ' + extra if extra else ''}")


def file_mb(*paths: Path) -> float:
    return sum(p.stat().st_size for p in paths if p.exists()) / 1e6


def journal_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())


def bench_run(out: Path, seconds: float, make_plan_s: float,
              which: set[str] | None = None) -> None:
    """The CLI's `run`, first and resumed, against a sandbox process (see the module doc)."""
    from _bench_util import AGENT, FROM_NUMBER_ID, SandboxProcess

    from campaign_dialer.config import load_campaign
    from campaign_dialer.store import Journal
    from tests.campaign_files import write_campaign_toml

    key = "vx_test_" + secrets.token_hex(12)  # a fresh fake key per run, never committed
    work = out / "run"
    if work.exists():
        import shutil

        shutil.rmtree(work)
    work.mkdir(parents=True)
    (out / "dnc-ledger.csv").unlink(missing_ok=True)
    toml = out / "bench-run.toml"
    write_campaign_toml(toml, {
        "campaign": {"name": "bench-run", "agent_id": AGENT,
                     "from_phone_number_id": FROM_NUMBER_ID},
        "api": {"base_url": "http://127.0.0.1:9", "requests_per_second": 40,
                "max_live_calls": 20, "poll_interval_s": 0.5},
        "pacing": {"calls_per_second": 20},
        "inputs": {"contacts": "contacts.csv", "dnc": ["dnc.csv"], "consent": "consent.csv"},
        "compliance": {"calling_window": ["09:00", "20:00"], "dnc_ledger": "dnc-ledger.csv"},
        "output": {"dir": str(work / "out")},
    })
    campaign = load_campaign(toml)
    empty = work / "empty.journal.sqlite"
    Journal(empty, "bench-run").close()
    empty_bytes = journal_bytes(empty)
    env = dict(os.environ)
    env.update({"CAMPAIGN_DIALER_HOME": str(work), "VANTAX_API_KEY": key,
                "CAMPAIGN_DIALER_TEST_CLOCK": AT.isoformat().replace("+00:00", "Z")})
    env.pop("CAMPAIGN_DIALER_STORE_URL", None)
    plan_file = campaign.journal_path.with_name(campaign.journal_path.name + ".plan")
    print(f"\nrun --max-duration {seconds:g}s at 20 calls/s against the sandbox "
          f"(make_plan alone: {make_plan_s:.2f} s)")
    with SandboxProcess(key=key, rps=40, max_live=20, time_scale=0.01, seed=7,
                        log_path=work / "sandbox.log") as sb:
        seen = 0
        runs = {"first": "first run", "resumed": "resumed (after)",
                "sigterm": "resumed, SIGTERM after 10 s",
                "dropped": "resumed, plan dropped (before)"}
        for what in [v for k, v in runs.items() if which is None or k in which]:
            if what.startswith("resumed, plan"):
                plan_file.unlink()
            term = "SIGTERM" in what
            cmd = [sys.executable, "-m", "campaign_dialer.cli", "--log-json", "run", str(toml),
                   "--base-url", sb.url, "--no-progress", "--grace", "5",
                   "--max-duration", f"{seconds * (4 if term else 1):g}s"]
            log = work / f"{what.split()[0]}-{seen}.log"
            sent: float | None = None
            with open(log, "w") as f:
                t0 = time.monotonic()
                proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=f, stderr=f)
                if term:
                    # SIGTERM 10 s after this run's first call (grace 5 s): to exit, results
                    # and report included
                    while proc.poll() is None:
                        time.sleep(0.2)
                        if any(c.get("placed_mono") for c in sb.audit()["calls"][seen:]):
                            break
                    time.sleep(10)
                    sent = time.monotonic()
                    proc.send_signal(__import__("signal").SIGTERM)
                _, status, usage = os.wait4(proc.pid, 0)
                done = time.monotonic()
                wall = done - t0
            proc.returncode = os.waitstatus_to_exitcode(status)
            calls = sb.audit()["calls"]
            mine = sorted(c["placed_mono"] for c in calls[seen:] if c.get("placed_mono"))
            ends = [c["ended_mono"] for c in calls[seen:] if c.get("ended_mono")]
            seen = len(calls)
            first = f"{mine[0] - t0:6.1f} s" if mine else "  none"
            text = log.read_text(errors="replace")
            how = "plan_reused" if '"plan_reused"' in text else (
                "plan_made" if '"plan_made"' in text else "?")
            tail = (f"SIGTERM to exit {done - sent:5.1f} s" if sent is not None
                    else f"last call's end to exit {done - max(ends):5.1f} s" if ends else "")
            print(f"  {what:<32} first call {first}   calls {len(mine):4d}   exit "
                  f"{proc.returncode:3d} after {wall:6.1f} s   peak RSS "
                  f"{usage.ru_maxrss / 1024:7,.0f} MB   {tail}   ({how})")
        rows = sum(1 for _ in open(out / "contacts.csv", "rb")) - 1
        undialed = rows - seen
        grown = journal_bytes(campaign.journal_path) - empty_bytes
        print(f"  journal: +{grown / 1e6:,.1f} MB over an empty one, "
              f"{grown / max(undialed, 1):,.1f} bytes per row not dialed ({undialed:,} rows); "
              f"kept plan {file_mb(plan_file):,.1f} MB, "
              f"{plan_file.stat().st_size / max(rows, 1):,.1f} bytes per row")


def campaign_toml(out: Path) -> Path:
    from tests.campaign_files import write_campaign_toml

    return write_campaign_toml(out / "bench.toml", {
        "campaign": {"name": "bench-scale", "agent_id": "agt_bench"},
        "inputs": {"contacts": "contacts.csv", "dnc": ["dnc.csv"], "consent": "consent.csv"},
        "compliance": {"calling_window": ["09:00", "20:00"], "dnc_ledger": "dnc-ledger.csv"},
    })


def child(kind: str, out: Path) -> dict[str, Any]:
    """One measurement in this (fresh) process; its figures as a dict."""
    from campaign_dialer.config import load_campaign
    from campaign_dialer.planning import make_plan

    campaign = load_campaign(out / "bench.toml")
    res: dict[str, Any] = {}
    t0 = time.perf_counter()
    if kind == "make_plan":
        plan = make_plan(campaign, AT)
        res["rows"] = len(plan.rows)
    elif kind == "per_row":
        plan = make_plan(campaign, AT)
        rows = list(plan.rows)  # a PlannedRow per row, as the engine walked them
        by_person: dict[str, Any] = {}
        for r in rows:
            if r.person and not r.contact_suppressed and r.person not in by_person:
                by_person[r.person] = r
        res["rows"] = len(rows)
    elif kind in ("save", "resume", "pg_save", "pg_resume"):
        from campaign_dialer.engine.stored_plan import DialColumns, StoredPlanSource
        from campaign_dialer.planning import plan_once
        from campaign_dialer.store import open_plan_store

        if kind.startswith("pg_"):  # the team database (`--pg`): its plan tables
            from campaign_dialer.store.postgres import Database, PgHistory

            db = Database(os.environ["BENCH_PG_URL"])
            plans = open_plan_store(campaign.journal_path, db=db, campaign=campaign.name)
            plan = plan_once(campaign, AT, PgHistory(db), plans)
            kind = kind[3:]
        else:
            plans = open_plan_store(campaign.journal_path)
            plan = plan_once(campaign, AT, None, plans)
        res["source"] = plan.source
        res["plan_s"] = time.perf_counter() - t0
        if kind == "resume":
            src = StoredPlanSource(plan.rows, DialColumns(**plan.rows.dial_columns()))
            first = src.take(AT, 512)
            res["offered"] = len(src)
            res["first_batch"] = len(first)
            res["made_rows"] = plan.rows.made()
    res["seconds"] = time.perf_counter() - t0
    res["peak_mb"] = peak_mb()
    return res


def in_child(kind: str, out: Path) -> dict[str, Any]:
    """`child(kind)` in a fresh process: its own figures, and its wall time and peak RSS."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, __file__, "--child", kind, "--out", str(out)],
                            stdout=subprocess.PIPE, env=env, text=True)
    assert proc.stdout is not None
    text = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"child {kind} failed")
    res: dict[str, Any] = json.loads(text.strip().splitlines()[-1])
    res["wall_s"] = time.monotonic() - t0
    res["rss_mb"] = usage.ru_maxrss / 1024
    return res


def check_cli(out: Path, home: Path) -> dict[str, Any]:
    """`campaign-dialer check` on the inputs, as a person runs it: wall time and peak RSS."""
    env = dict(os.environ, CAMPAIGN_DIALER_HOME=str(home),
               CAMPAIGN_DIALER_TEST_CLOCK=AT.isoformat().replace("+00:00", "Z"))
    env.pop("CAMPAIGN_DIALER_STORE_URL", None)
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "campaign_dialer.cli", "check",
                             str(out / "bench.toml")], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - t0
    if os.waitstatus_to_exitcode(status):
        assert proc.stderr is not None
        sys.stderr.write(proc.stderr.read().decode(errors="replace"))
        raise SystemExit("check failed")
    return {"wall_s": wall, "rss_mb": usage.ru_maxrss / 1024}


def beside(what: str, secs: float, mb: float, ref: dict[str, Any], naive: dict[str, Any],
           extra: str = "", key: str = "seconds") -> None:
    """A figure and its ratios to make_plan's and the per-row plan's (`key`: their time in
    the process, or "wall_s", the whole process's, for a figure that is a whole process)."""
    print(f"  {what:<26} {secs:7.2f} s {mb:7,.0f} MB   "
          f"({secs / ref[key]:4.2f}x make_plan, {secs / naive[key]:4.2f}x per-row; "
          f"RSS {mb / ref['rss_mb']:4.2f}x, {mb / naive['rss_mb']:4.2f}x)"
          + (f"   {extra}" if extra else ""))


def figures(out: Path, pg: bool = False, naive_too: bool = True) -> float:
    """The figures beside make_plan alone and the naive per-row plan (module doc)."""
    work = out / "scale"
    if work.exists():
        import shutil

        shutil.rmtree(work)
    work.mkdir()
    os.environ["CAMPAIGN_DIALER_HOME"] = str(work)  # the children's contact history
    os.environ.pop("CAMPAIGN_DIALER_STORE_URL", None)
    (out / "dnc-ledger.csv").unlink(missing_ok=True)
    ref = in_child("make_plan", out)
    # --no-naive: the per-row plan needs ~1.4 GB a million rows (14 GB at 10M)
    naive = in_child("per_row", out) if naive_too else dict(ref)
    print(f"{ref['rows']:,} rows; each in its own process (wall incl. start-up; RSS: peak)")
    print(f"  {'make_plan alone':<26} {ref['seconds']:7.2f} s {ref['rss_mb']:7,.0f} MB   "
          f"(process wall {ref['wall_s']:.2f} s)")
    if naive_too:
        print(f"  {'naive per-row plan':<26} {naive['seconds']:7.2f} s "
              f"{naive['rss_mb']:7,.0f} MB   (process wall {naive['wall_s']:.2f} s)")
    else:
        print("  naive per-row plan: not run (--no-naive); its ratios below are make_plan's")
    chk = check_cli(out, work)
    beside("check (CLI, wall)", chk["wall_s"], chk["rss_mb"], ref, naive,
           "ratios to their processes' wall", key="wall_s")
    from campaign_dialer.config import load_campaign
    from campaign_dialer.store.sqlite.plan import plan_path

    kept = plan_path(load_campaign(out / "bench.toml").journal_path)
    kept.unlink(missing_ok=True)
    save = in_child("save", out)
    size = kept.stat().st_size if kept.exists() else 0
    beside("plan and keep (plan_once)", save["seconds"], save["rss_mb"], ref, naive,
           f"{save['source']}; kept plan {size / 1e6:,.1f} MB, "
           f"{size / max(ref['rows'], 1):.1f} bytes/row")
    res = in_child("resume", out)
    beside("resumed: plan read back", res["plan_s"], res["rss_mb"], ref, naive, res["source"])
    beside("resumed: first batch", res["seconds"], res["rss_mb"], ref, naive,
           f"{res['first_batch']} rows of {res['offered']:,} offered; "
           f"{res['made_rows']:,} row objects made")
    if pg:
        pg_figures(out, ref, naive)
    return float(ref["seconds"])


def pg_figures(out: Path, ref: dict[str, Any], naive: dict[str, Any]) -> None:
    """The same on PostgreSQL (a throwaway local cluster, tests/pg_cluster.py): one process
    plans and keeps the plan in the team database, then two processes start together and
    read it back (neither plans: the plan's fingerprint is theirs)."""
    from tests import pg_cluster

    cluster = pg_cluster.start()
    try:
        os.environ["BENCH_PG_URL"] = pg_cluster.create_database(cluster.url)
        save = in_child("pg_save", out)
        beside("PG: plan and keep", save["seconds"], save["rss_mb"], ref, naive,
               save["source"])
        with ThreadPoolExecutor(2) as pool:
            both = list(pool.map(lambda _: in_child("pg_resume", out), range(2)))
        for i, res in enumerate(both):
            beside(f"PG: resumed {i + 1} of 2, read", res["plan_s"], res["rss_mb"], ref, naive,
                   res["source"])
            beside(f"PG: resumed {i + 1} of 2, batch", res["seconds"], res["rss_mb"], ref,
                   naive, f"{res['first_batch']} rows taken, {res['made_rows']} made")
    finally:
        cluster.stop()


PHASE_ENDS = ("plan_made", "plan_reused", "run_started", "run_finished", "results_written")


def rss_kb(pid: int) -> int:
    """A live process's resident set now (Linux /proc), 0 once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    return next((int(x.split()[1]) for x in status.splitlines() if x.startswith("VmRSS:")), 0)


def pg_run(out: Path, seconds: float, processes: int = 3) -> None:
    """Three `run` processes on one campaign in PostgreSQL, started together (module doc)."""
    from _bench_util import AGENT, FROM_NUMBER_ID, SandboxProcess

    from tests import pg_cluster
    from tests.campaign_files import write_campaign_toml

    key = "vx_test_" + secrets.token_hex(12)  # a fresh fake key per run, never committed
    work = out / "pg-run"
    if work.exists():
        import shutil

        shutil.rmtree(work)
    work.mkdir(parents=True)
    tomls = [write_campaign_toml(work / f"machine-{i}" / "campaign.toml", {
        "campaign": {"name": "bench-pg-run", "agent_id": AGENT,
                     "from_phone_number_id": FROM_NUMBER_ID},
        "api": {"base_url": "http://127.0.0.1:9", "requests_per_second": 40,
                "max_live_calls": 20, "poll_interval_s": 0.5},
        "pacing": {"calls_per_second": 20},
        "inputs": {"contacts": str(out / "contacts.csv"), "dnc": [str(out / "dnc.csv")],
                   "consent": str(out / "consent.csv")},
        "compliance": {"calling_window": ["09:00", "20:00"], "dnc_ledger": "dnc-ledger.csv"},
        "output": {"dir": "out"},
    }) for i in range(processes)]
    cluster = pg_cluster.start()
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CAMPAIGN_DIALER_")}
        env.update({"VANTAX_API_KEY": key,
                    "CAMPAIGN_DIALER_STORE_URL": pg_cluster.create_database(cluster.url),
                    "CAMPAIGN_DIALER_TEST_CLOCK": AT.isoformat().replace("+00:00", "Z")})
        print(f"\n{processes} run processes on PostgreSQL, --max-duration {seconds:g}s at "
              "20 calls/s (shared) against the sandbox, started together")
        with SandboxProcess(key=key, rps=40, max_live=20, time_scale=0.01, seed=7,
                            log_path=work / "sandbox.log") as sb:
            procs = []
            for toml in tomls:
                log = open(toml.parent / "run.log", "w")  # noqa: SIM115 - closed below
                cmd = [sys.executable, "-m", "campaign_dialer.cli", "--log-json", "run",
                       str(toml), "--base-url", sb.url, "--no-progress", "--grace", "5",
                       "--max-duration", f"{seconds:g}s"]
                procs.append((time.monotonic(), log, subprocess.Popen(
                    cmd, cwd=ROOT, env=env, stdout=log, stderr=log)))
            ended: dict[int, tuple[float, int, float]] = {}
            samples: list[list[tuple[float, int]]] = [[] for _ in procs]  # (time(), RSS kB)
            while len(ended) < len(procs):  # each reaped when it ends: its own wall time
                time.sleep(0.1)
                for i, (t0, log, proc) in enumerate(procs):
                    if i in ended:
                        continue
                    samples[i].append((time.time(), rss_kb(proc.pid)))
                    pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                    if pid:
                        ended[i] = (time.monotonic() - t0, os.waitstatus_to_exitcode(status),
                                    usage.ru_maxrss / 1024)
                        log.close()
            calls = sb.audit()["calls"]
        placed = {c["id"]: c["placed_mono"] for c in calls if c.get("placed_mono")}
        for i, (t0, log, _) in enumerate(procs):
            wall, code, rss = ended[i]
            events = [json.loads(x) for x in Path(log.name).read_text(errors="replace")
                      .splitlines() if x.startswith("{")]
            names = {e.get("event") for e in events}
            how = "plan_reused" if "plan_reused" in names else (
                "plan_made" if "plan_made" in names else "no plan event")
            mine = sorted(placed[e["call_id"]] for e in events
                          if e.get("event") == "call_placed" and e.get("call_id") in placed)
            first = f"{mine[0] - t0:6.1f} s" if mine else "  none"
            print(f"  process {i + 1}: {how:<13} first call {first}   calls {len(mine):4d}   "
                  f"exit {code:3d} after {wall:6.1f} s   peak RSS {rss:7,.0f} MB")
            # the highest RSS sampled in each phase, a phase ending at one of these events
            cuts = [(e["event"], datetime.fromisoformat(e["timestamp"]).timestamp())
                    for e in events if e.get("event") in PHASE_ENDS]
            ends = [*cuts, ("exit", float("inf"))]
            top = [(f"to {what}", max((kb for t, kb in samples[i] if lo <= t < hi), default=0))
                   for (_, lo), (what, hi) in zip([("", 0.0), *cuts], ends, strict=True)]
            print("      highest RSS sampled (0.1 s): "
                  + ", ".join(f"{what} {kb / 1024:,.0f} MB" for what, kb in top))
        numbers = {c["to"] for c in calls}
        print(f"  sandbox: {len(calls)} calls to {len(numbers)} distinct numbers "
              f"({'nobody twice' if len(numbers) == len(calls) else 'SOMEONE CALLED TWICE'})")
    finally:
        cluster.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--out", type=Path, default=ROOT / "out" / "bench")
    ap.add_argument("--steps", action="store_true",
                    help="also compare check's steps with their old ways, in one process")
    ap.add_argument("--skip", default="", help="with --steps, comma list of: guard,write,forecast")
    ap.add_argument("--run", type=float, default=None, metavar="SECONDS",
                    help="also time `run` (first and resumed) against a sandbox for this long")
    ap.add_argument("--pg", action="store_true",
                    help="also keep and read the plan in PostgreSQL (a throwaway local cluster)")
    ap.add_argument("--no-naive", action="store_true",
                    help="skip the naive per-row plan (it needs ~14 GB at 10M rows)")
    ap.add_argument("--runs", default="first,resumed,sigterm,dropped",
                    help="with --run, which runs: comma list of first,resumed,sigterm,dropped")
    ap.add_argument("--pg-run", type=float, default=None, metavar="SECONDS",
                    help="also run three `run` processes on one campaign in PostgreSQL")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        print(json.dumps(child(a.child, a.out)))
        return
    skip = set(filter(None, a.skip.split(",")))
    sizes = {"rows": a.rows, "dnc": a.rows, "consent": a.rows // 2}
    out = a.out / f"{sizes['rows']}-{sizes['dnc']}-{sizes['consent']}"
    if not (out / "consent.csv").exists():
        # In a process of its own: a child's peak RSS (wait4's) starts from its parent's at
        # the fork, so inputs generated here would be every later figure's floor.
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", (
            "import sys; from pathlib import Path; sys.path.insert(0, sys.argv[1]); "
            "from gen_contacts import generate; "
            "generate(Path(sys.argv[2]), *map(int, sys.argv[3:]))"),
            str(Path(__file__).resolve().parent), str(out), str(sizes["rows"]),
            str(sizes["dnc"]), str(sizes["consent"])], check=True)
        print(f"generated inputs in {time.perf_counter() - t:.1f} s -> {out}")
    campaign_toml(out)
    plan_s = figures(out, a.pg, naive_too=not a.no_naive)
    if a.steps:
        steps(out, skip)
    if a.run is not None:
        bench_run(out, a.run, plan_s, set(a.runs.split(",")))
    if a.pg_run is not None:
        pg_run(out, a.pg_run)


def steps(out: Path, skip: set[str]) -> None:
    """check's steps beside their old ways, in this process (module doc)."""
    (out / "dnc-ledger.csv").unlink(missing_ok=True)

    from campaign_dialer.commands.check_plan import plan_frame, with_caller_ids
    from campaign_dialer.config import load_campaign
    from campaign_dialer.planning import make_plan
    from campaign_dialer.results import safe_for_spreadsheets, write_atomic_csv

    campaign = load_campaign(out / "bench.toml")
    plan_s, plan = timed(lambda: make_plan(campaign, AT))
    frame_s, frame = timed(lambda: with_caller_ids(plan_frame(plan), campaign, plan.history))
    print(f"\nsteps: make_plan {plan_s:.2f} s, plan_frame {frame_s:.2f} s, "
          f"peak {peak_mb():,.0f} MB")
    safe = None
    if "guard" not in skip or "write" not in skip:
        new_s, safe = timed(lambda: safe_for_spreadsheets(frame))
        if "guard" not in skip:
            old_s, old = timed(lambda: old_safe_for_spreadsheets(frame))
            same = old.equals(safe) and list(old.columns) == list(safe.columns)
            line("formula guard (plan.csv frame)", new_s, old_s, f"same output: {same}")
            del old
    if "write" not in skip:
        assert safe is not None
        new_p, old_p = out / "plan.new.csv", out / "plan.old.csv"
        new_s, _ = timed(lambda: write_atomic_csv(safe, new_p))
        old_s, _ = timed(lambda: old_write_csv(safe, old_p))
        same = new_p.read_bytes() == old_p.read_bytes()
        line("write plan.csv", new_s, old_s,
             f"same bytes: {same}, {new_p.stat().st_size / 1e6:,.0f} MB")
        new_p.unlink()
        old_p.unlink()
    if "forecast" not in skip:
        from campaign_dialer.forecast import forecast

        kw: dict[str, Any] = {"call_seconds": 60.0, "call_seconds_source": "bench"}
        new_s, new_f = timed(lambda: forecast(plan, **kw))
        from tests.forecast_reference import forecast as forecast_per_row

        old_s, old_f = timed(lambda: forecast_per_row(plan, **kw))
        line("forecast", new_s, old_s, f"same output: {new_f == old_f}")
    print(f"  peak RSS {peak_mb():,.0f} MB")
    if plan.history is not None:
        plan.history.close()


if __name__ == "__main__":
    main()
