"""Benchmark issue #25's steps of `check` at scale, each beside the old way in the same run.

    python scripts/bench_scale.py                 # 1M contacts, 1M DNC numbers, 500k consent events
    python scripts/bench_scale.py --rows 200000   # smaller

Inputs come from scripts/gen_contacts.py (generated once into --out, reused after). One process
makes the plan as `check` does (`make_plan`, timed: the reference every figure is set beside),
then measures, on that plan:

- the formula guard of plan.csv's frame: `safe_for_spreadsheets` (vectorised) beside the old
  `neutralize` per cell through `Series.map` (kept here as the baseline), outputs compared;
- writing plan.csv: `write_atomic_csv` beside pandas' `to_csv`, bytes compared;
- the forecast: `forecast` beside the old walk over every materialised row, outputs compared.

Peak RSS is the process's (the plan's own included). Figures depend on the machine and what
else runs on it: compare within one run.

`--run SECONDS` also runs the real CLI (`campaign-dialer run --max-duration SECONDS`) on the
same inputs against a sandbox process (20 calls/s), three times: a first run (plans, keeps the
plan), a resumed run (reads the plan back: "after"), and a resumed run with the kept plan
deleted first (plans again at its start, as every run did before the plan was kept:
"before"). For each: seconds from the process's start to the sandbox's first placed call,
wall time, peak RSS (the child's own, from wait4), and the journal's growth per row not
dialed (the journal minus an empty one, over the rows the runs did not dial) beside the kept
plan's bytes per row.
"""

from __future__ import annotations

import argparse
import os
import resource
import secrets
import subprocess
import sys
import time
from collections.abc import Callable
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


def bench_run(out: Path, seconds: float, make_plan_s: float) -> None:
    """The CLI's `run`, first and resumed, against a sandbox process (see the module doc)."""
    from _bench_util import SandboxProcess

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
        "campaign": {"name": "bench-run", "agent_id": "agt_bench"},
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
        for what in ("first run", "resumed (after)", "resumed, plan dropped (before)"):
            if what.startswith("resumed, plan"):
                plan_file.unlink()
            cmd = [sys.executable, "-m", "campaign_dialer.cli", "--log-json", "run", str(toml),
                   "--base-url", sb.url, "--no-progress", "--grace", "5",
                   "--max-duration", f"{seconds:g}s"]
            log = work / f"{what.split()[0]}-{seen}.log"
            with open(log, "w") as f:
                t0 = time.monotonic()
                proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=f, stderr=f)
                _, status, usage = os.wait4(proc.pid, 0)
                wall = time.monotonic() - t0
            proc.returncode = os.waitstatus_to_exitcode(status)
            calls = sb.audit()["calls"]
            mine = sorted(c["placed_mono"] for c in calls[seen:] if c.get("placed_mono"))
            seen = len(calls)
            first = f"{mine[0] - t0:6.1f} s" if mine else "  none"
            text = log.read_text(errors="replace")
            how = "plan_reused" if '"plan_reused"' in text else (
                "plan_made" if '"plan_made"' in text else "?")
            print(f"  {what:<32} first call {first}   calls {len(mine):4d}   exit "
                  f"{proc.returncode:3d} after {wall:6.1f} s   peak RSS "
                  f"{usage.ru_maxrss / 1024:7,.0f} MB   ({how})")
        rows = sum(1 for _ in open(out / "contacts.csv", "rb")) - 1
        undialed = rows - seen
        grown = journal_bytes(campaign.journal_path) - empty_bytes
        print(f"  journal: +{grown / 1e6:,.1f} MB over an empty one, "
              f"{grown / max(undialed, 1):,.1f} bytes per row not dialed ({undialed:,} rows); "
              f"kept plan {file_mb(plan_file):,.1f} MB, "
              f"{plan_file.stat().st_size / max(rows, 1):,.1f} bytes per row")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--out", type=Path, default=ROOT / "out" / "bench")
    ap.add_argument("--skip", default="", help="comma list of: guard,write,forecast")
    ap.add_argument("--run", type=float, default=None, metavar="SECONDS",
                    help="also time `run` (first and resumed) against a sandbox for this long")
    a = ap.parse_args()
    skip = set(filter(None, a.skip.split(",")))
    sizes = {"rows": a.rows, "dnc": a.rows, "consent": a.rows // 2}
    out = a.out / f"{sizes['rows']}-{sizes['dnc']}-{sizes['consent']}"
    if not (out / "consent.csv").exists():
        from gen_contacts import generate

        t = time.perf_counter()
        generate(out, sizes["rows"], sizes["dnc"], sizes["consent"])
        print(f"generated inputs in {time.perf_counter() - t:.1f} s -> {out}")
    (out / "dnc-ledger.csv").unlink(missing_ok=True)

    from campaign_dialer.commands.check_plan import plan_frame, with_caller_ids
    from campaign_dialer.config import load_campaign
    from campaign_dialer.planning import make_plan
    from campaign_dialer.results import safe_for_spreadsheets, write_atomic_csv
    from tests.campaign_files import write_campaign_toml

    toml = out / "bench.toml"
    write_campaign_toml(toml, {
        "campaign": {"name": "bench-scale", "agent_id": "agt_bench"},
        "inputs": {"contacts": "contacts.csv", "dnc": ["dnc.csv"], "consent": "consent.csv"},
        "compliance": {"calling_window": ["09:00", "20:00"], "dnc_ledger": "dnc-ledger.csv"},
    })
    campaign = load_campaign(toml)
    plan_s, plan = timed(lambda: make_plan(campaign, AT))
    frame_s, frame = timed(lambda: with_caller_ids(plan_frame(plan), campaign, plan.history))
    print(f"{len(plan.rows):,} rows, {frame.shape[1]} plan.csv columns; "
          f"make_plan {plan_s:.2f} s (reference), plan_frame {frame_s:.2f} s, "
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
    print(f"peak RSS {peak_mb():,.0f} MB")
    if plan.history is not None:
        plan.history.close()
    if a.run is not None:
        del plan, frame, safe
        bench_run(out, a.run, plan_s)


if __name__ == "__main__":
    main()
