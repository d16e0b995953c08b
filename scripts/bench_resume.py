"""Benchmark a resumed run's memory and time before its first call (issue #25), against an
older tree, in the same run.

    python scripts/bench_resume.py --against ../main-c47f894            # 1M rows
    python scripts/bench_resume.py --against ../main-c47f894 --rounds 3 --check

`--against` is a checkout of the tree to compare with (`git worktree add --detach DIR
<commit>`); this script's own tree is "after". The inputs are `scripts/bench_scale.py`'s
(generated there once, under --out: 1M contacts, 1M DNC numbers, 500k consent events), each
tree gets a folder of its own beside them (links to the inputs, its own campaign file, plan
and contact history), and its plan is made once by its own code (`plan_once`), so what is
read back is what that tree keeps.

Then, for each tree, in a fresh child process (its wall time and peak RSS its own), rounds
alternating between the trees:

- `steps`: the steps of a resumed run one after the other, RSS and peak after each (the gate
  built, the plan loaded, `stored_plan`, the dial columns, the row source, the first batch);
- `plan_once`: the resumed path as `run` takes it (`plan_once`: the gate built while the plan
  is read), then the dial columns, the row source and the first batch taken;
- `gate`: the gate alone, its compliance inputs read in parallel (a worker thread) and one
  after the other, with their peaks (is reading both at once worth its memory?);
- `--check`: `campaign-dialer check` on the inputs (the CLI, wall time and peak RSS).

Figures depend on the machine and what else runs on it: compare within one run (medians of
the rounds when there are several).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
AT = datetime(2026, 6, 10, 18, 0, tzinfo=UTC)  # as scripts/bench_scale.py
INPUTS = ("contacts.csv", "dnc.csv", "consent.csv")
CAMPAIGN = """[campaign]
name = "bench-resume"
agent_id = "agt_bench"

[inputs]
contacts = "contacts.csv"
dnc = ["dnc.csv"]
consent = "consent.csv"

[compliance]
calling_window = ["09:00", "20:00"]
dnc_ledger = "dnc-ledger.csv"
"""


# -- in the child: one tree's code (its root first on sys.path) ---------------------------

def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
    return 0.0


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class _Steps:
    def __init__(self) -> None:
        self.t0 = time.perf_counter()
        self.rows: list[dict[str, Any]] = []

    def __call__(self, what: str) -> None:
        self.rows.append({"step": what, "s": time.perf_counter() - self.t0,
                          "rss": _rss_mb(), "peak": _peak_mb()})


def child(kind: str, folder: Path) -> dict[str, Any]:
    """One measurement of the tree first on sys.path (module doc)."""
    say = _Steps()
    from campaign_dialer import planning
    from campaign_dialer.config import load_campaign
    from campaign_dialer.engine.stored_plan import DialColumns, StoredPlanSource
    from campaign_dialer.store import open_plan_store

    say("imports")
    campaign = load_campaign(folder / "campaign.toml")
    plans = open_plan_store(campaign.journal_path)
    res: dict[str, Any] = {}
    if kind == "keep":  # this tree's plan, made once by its own code
        plan = planning.plan_once(campaign, AT, None, plans)
        res["source"] = plan.source
    elif kind == "steps":
        history = planning.open_campaign_history(campaign)
        gate = planning.build_gate(campaign, history, AT, parallel=True)
        planning.release_memory()
        say("gate built")
        encoded = plans.load()
        assert encoded is not None, "no plan kept: run `keep` first"
        say("plan loaded")
        plan = planning.stored_plan(campaign, AT, encoded, history, gate)
        del encoded
        say("stored_plan")
        cols = DialColumns(**plan.rows.dial_columns())
        say("dial columns")
        src = StoredPlanSource(plan.rows, cols)
        say("row source")
        res["first_batch"] = len(src.take(AT, 512))
        say("first batch")
    elif kind == "plan_once":
        plan = planning.plan_once(campaign, AT, None, plans)
        res["source"] = plan.source
        say("plan_once")
        src = StoredPlanSource(plan.rows, DialColumns(**plan.rows.dial_columns()))
        say("dial columns + source")
        res["first_batch"] = len(src.take(AT, 512))
        say("first batch")
    elif kind in ("gate_parallel", "gate_serial"):
        history = planning.open_campaign_history(campaign)
        gate = planning.build_gate(campaign, history, AT, parallel=kind == "gate_parallel")
        planning.release_memory()
        say("gate built")
        res["dnc"] = len(gate[0].dnc)
    else:
        raise SystemExit(f"unknown child {kind}")
    res["steps"] = say.rows
    return res


# -- in the parent ------------------------------------------------------------------------

def in_child(tree: Path, kind: str, folder: Path) -> dict[str, Any]:
    """`child(kind)` in a fresh process importing `tree`'s code."""
    env = dict(os.environ, PYTHONPATH=str(tree), CAMPAIGN_DIALER_HOME=str(folder / "home"))
    env.pop("CAMPAIGN_DIALER_STORE_URL", None)
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--child", kind, "--folder",
         str(folder)], cwd=tree, env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    text = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"{tree}: child {kind} failed")
    res: dict[str, Any] = json.loads(text.strip().splitlines()[-1])
    res["wall_s"] = time.monotonic() - t0
    res["cpu_s"] = usage.ru_utime + usage.ru_stime
    res["peak_mb"] = usage.ru_maxrss / 1024
    return res


def check_cli(tree: Path, folder: Path) -> dict[str, Any]:
    """`campaign-dialer check` with `tree`'s code: wall time and peak RSS."""
    env = dict(os.environ, PYTHONPATH=str(tree), CAMPAIGN_DIALER_HOME=str(folder / "home"),
               CAMPAIGN_DIALER_TEST_CLOCK=AT.isoformat().replace("+00:00", "Z"))
    env.pop("CAMPAIGN_DIALER_STORE_URL", None)
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "campaign_dialer.cli", "check", str(folder / "campaign.toml")],
        cwd=tree, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - t0
    if os.waitstatus_to_exitcode(status):
        assert proc.stderr is not None
        sys.stderr.write(proc.stderr.read().decode(errors="replace"))
        raise SystemExit(f"{tree}: check failed")
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime,
            "peak_mb": usage.ru_maxrss / 1024}


def folder_for(inputs: Path, name: str) -> Path:
    """A tree's own folder: links to the inputs, its campaign file, plan and history."""
    folder = inputs / "resume" / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "home").mkdir(exist_ok=True)
    for f in INPUTS:
        link = folder / f
        if not link.exists():
            link.symlink_to((inputs / f).resolve())
    (folder / "campaign.toml").write_text(CAMPAIGN, encoding="utf-8")
    (folder / "dnc-ledger.csv").unlink(missing_ok=True)
    return folder


def median_steps(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per step, the median of the rounds' figures."""
    out = []
    for i, step in enumerate(runs[0]["steps"]):
        out.append({"step": step["step"], **{
            k: statistics.median(r["steps"][i][k] for r in runs) for k in ("s", "rss", "peak")
        }})
    return out


def show(title: str, before: list[dict[str, Any]], after: list[dict[str, Any]]) -> None:
    print(f"\n{title}: seconds since start, RSS and peak RSS (MB) after each step")
    print(f"  {'step':<24} {'before':>24}   {'after':>24}")
    for b, a in zip(median_steps(before), median_steps(after), strict=True):
        print(f"  {b['step']:<24} {b['s']:6.2f} s {b['rss']:5.0f} {b['peak']:5.0f} MB"
              f"   {a['s']:6.2f} s {a['rss']:5.0f} {a['peak']:5.0f} MB")
    pb = statistics.median(r["peak_mb"] for r in before)
    pa_ = statistics.median(r["peak_mb"] for r in after)
    wb = statistics.median(r["wall_s"] for r in before)
    wa = statistics.median(r["wall_s"] for r in after)
    cb = statistics.median(r["cpu_s"] for r in before)
    ca = statistics.median(r["cpu_s"] for r in after)
    print(f"  {'process (wait4)':<24} {wb:6.2f} s       {pb:5.0f} MB"
          f"   {wa:6.2f} s       {pa_:5.0f} MB   (peak {pa_ / pb:.2f}x)")
    print(f"  {'process CPU (user+sys)':<24} {cb:6.2f} s"
          f"                   {ca:6.2f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--against", type=Path, help="a checkout of the tree to compare with")
    ap.add_argument("--inputs", type=Path,
                    default=ROOT / "out" / "bench" / "1000000-1000000-500000",
                    help="bench_scale.py's inputs folder (contacts.csv, dnc.csv, consent.csv)")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--check", action="store_true", help="also time `campaign-dialer check`")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        sys.path.insert(0, os.getcwd())  # the tree measured (cwd), before any installed copy
        print(json.dumps(child(a.child, a.folder)))
        return
    if not all((a.inputs / f).exists() for f in INPUTS):
        raise SystemExit(f"no inputs in {a.inputs}: run scripts/bench_scale.py --out ... first")
    trees = {"after": ROOT}
    if a.against is not None:
        trees = {"before": a.against.resolve(), **trees}
    folders = {name: folder_for(a.inputs, name) for name in trees}
    for name, tree in trees.items():
        kept = in_child(tree, "keep", folders[name])
        print(f"{name}: {tree} (plan {kept['source']})")
    kinds = ["steps", "plan_once", "gate_parallel", "gate_serial"]
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for _ in range(a.rounds):
        for kind in kinds:
            for name, tree in trees.items():
                runs.setdefault((kind, name), []).append(in_child(tree, kind, folders[name]))
    before = "before" if "before" in trees else "after"
    for kind in kinds:
        show(kind, runs[(kind, before)], runs[(kind, "after")])
    if a.check:
        print("\ncheck (CLI): wall time, peak RSS")
        for _ in range(a.rounds):
            for name, tree in trees.items():
                c = check_cli(tree, folders[name])
                print(f"  {name:<8} {c['wall_s']:6.2f} s wall, {c['cpu_s']:6.2f} s CPU, "
                      f"peak {c['peak_mb']:5.0f} MB")
    for folder in folders.values():
        shutil.rmtree(folder / "home", ignore_errors=True)


if __name__ == "__main__":
    main()
