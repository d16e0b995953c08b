"""Benchmark reading the inputs (contacts, DNC list, consent ledger): this tree beside another.

    python scripts/bench_inputs.py --against /tmp/old-tree     # 1M contacts/DNC, 500k consent
    python scripts/bench_inputs.py --rows 200000 --against /tmp/old-tree

`--against` is a checkout of the code to compare with (e.g. `git archive main | tar -x -C DIR`).
Each load runs in a fresh process (alternating new, old), so each peak RSS is that load's own:
the interpreter with pandas and pyarrow imported ("base"), then the peak while loading. Each
load prints a digest of what it read, and the two trees' digests are compared: a faster reader
that reads differently is a failure, not a win. `scripts/bench_scale.py` runs this step too.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

# What a child process runs: load one input with the tree on sys.path[0], print figures.
CHILD = r"""
import hashlib, json, sys, time
sys.path.insert(0, sys.argv[1])
import numpy as np, pandas as pd, pyarrow

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) / 1024
    return 0.0

def digest(frame):
    h = pd.util.hash_pandas_object(frame.astype("string").fillna("<NA>"), index=False)
    return hashlib.sha256(h.to_numpy().tobytes() + "|".join(map(str, frame.columns)).encode()
                          ).hexdigest()[:16]

what, path = sys.argv[2], sys.argv[3]
base = status("VmRSS:")
t = time.perf_counter()
if what == "contacts":
    from campaign_dialer.contacts import load_contacts
    c = load_contacts(path, default_region="US")
    took = time.perf_counter() - t
    rows = len(c.frame)
    out = digest(c.frame) + "/" + digest(c.unreadable)
elif what == "dnc":
    from campaign_dialer.compliance import DncList
    d = DncList.load([path], default_region="US")
    took = time.perf_counter() - t
    rows = len(d)
    ints = np.sort(np.asarray(d._ints))
    out = hashlib.sha256(ints.tobytes()).hexdigest()[:16] + "/" + "/".join(
        digest(u) for u in d.unreadable.values())
else:
    from campaign_dialer.compliance import ConsentLedger
    led = ConsentLedger.load(path, default_region="US")
    took = time.perf_counter() - t
    rows = len(led)
    out = digest(led.events) + "/" + digest(led.unreadable)
print(json.dumps({"s": took, "base_mb": base, "peak_mb": status("VmHWM:"), "rows": rows,
                  "digest": out}))
"""


def load_in_child(tree: Path, what: str, path: Path) -> dict[str, Any]:
    res = subprocess.run(
        [sys.executable, "-c", CHILD, str(tree), what, str(path)],
        capture_output=True, text=True, check=False,
    )
    if res.returncode != 0:
        raise SystemExit(f"{what} ({tree}) failed:\n{res.stderr[-3000:]}")
    return dict(json.loads(res.stdout.strip().splitlines()[-1]))


def run(inputs: Path, against: Path | None, rounds: int = 1) -> None:
    """Load each input in fresh processes, this tree beside `against`, and print both."""
    files = {"contacts": inputs / "contacts.csv", "dnc": inputs / "dnc.csv",
             "consent": inputs / "consent.csv"}
    print(f"reading the inputs ({inputs}); peak RSS of a process that loads one input "
          "(base: python + pandas + pyarrow)")
    for what, path in files.items():
        new: list[dict[str, Any]] = []
        old: list[dict[str, Any]] = []
        for _ in range(rounds):
            new.append(load_in_child(ROOT, what, path))
            if against is not None:
                old.append(load_in_child(against, what, path))
        n = min(new, key=lambda r: r["s"])
        line = (f"  {what:<9} {n['rows']:>9,} rows  new {n['s']:6.2f} s "
                f"peak {n['peak_mb']:6,.0f} MB (base {n['base_mb']:4.0f})")
        if old:
            o = min(old, key=lambda r: r["s"])
            same = n["digest"] == o["digest"] and n["rows"] == o["rows"]
            line += (f"   old {o['s']:6.2f} s peak {o['peak_mb']:6,.0f} MB"
                     f"   same result: {same}")
        print(line, flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--out", type=Path, default=ROOT / "out" / "bench")
    ap.add_argument("--against", type=Path, default=None, help="a checkout of the old code")
    ap.add_argument("--rounds", type=int, default=1)
    a = ap.parse_args()
    inputs = a.out / f"{a.rows}-{a.rows}-{a.rows // 2}"
    if not (inputs / "consent.csv").exists():
        sys.path.insert(0, str(ROOT / "scripts"))
        from gen_contacts import generate

        generate(inputs, a.rows, a.rows, a.rows // 2)
    run(inputs, a.against, a.rounds)


if __name__ == "__main__":
    main()
