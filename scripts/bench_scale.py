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
"""

from __future__ import annotations

import argparse
import resource
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--out", type=Path, default=ROOT / "out" / "bench")
    ap.add_argument("--skip", default="", help="comma list of: guard,write,forecast")
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


if __name__ == "__main__":
    main()
