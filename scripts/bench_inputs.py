"""Benchmark reading the inputs (contacts, DNC list, consent ledger): this tree beside another.

    python scripts/bench_inputs.py --against ../old-tree     # 1M contacts/DNC, 500k consent
    python scripts/bench_inputs.py --rows 200000 --against ../old-tree

`--against` is a checkout of the code to compare with (e.g. `git archive main | tar -x -C DIR`).
Each load runs in a fresh process (alternating new, old), so each peak RSS is that load's own:
the interpreter with pandas and pyarrow imported ("base"), then the peak while loading. Each
load prints a digest of what it read, and the two trees' digests are compared: a faster reader
that reads differently is a failure, not a win.

    python scripts/bench_inputs.py --messy 300 --against ../old-tree

`--messy N` writes N seeded messy files of each kind (contacts, DNC, consent: every encoding,
Excel floats, multi-number cells, quoted line breaks, bad ids, dates, events and broken rows,
from none to most cells bad) and reads each with the other tree (whole) and with this one in
batches of 1 and 7 rows: every outcome (rows, numbers, events, unreadable cells, warnings, or
the refusal with its file, row and column) must be equal.
"""

from __future__ import annotations

import argparse
import json
import pickle
import random
import subprocess
import sys
import tempfile
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


# What a child process runs for --messy: read every file of a folder with the tree on
# sys.path[0] (in batches of argv[3] rows when not 0), pickle each outcome to argv[4].
MESSY_CHILD = r"""
import pickle, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
import pandas as pd
import campaign_dialer.contacts.csvfile as F
if int(sys.argv[3]):
    F.BATCH_ROWS, F.BATCH_BYTES = int(sys.argv[3]), 700
from campaign_dialer.compliance import ConsentLedger, DncList
from campaign_dialer.contacts import load_contacts
from campaign_dialer.errors import InputError

def plain(x):
    if isinstance(x, pd.DataFrame):
        return (list(x.columns), [str(t) for t in x.dtypes],
                x.astype(object).where(x.notna(), None).values.tolist())
    return (str(x.dtype), x.astype(object).where(x.notna(), None).tolist())

out = {}
for p in sorted(Path(sys.argv[2]).glob("*.csv")):
    try:
        if p.name[0] == "c":
            c = load_contacts(p, default_region="US")
            r = (plain(c.frame), plain(c.unreadable), c.roles, c.phone_columns,
                 c.ignored_columns, c.warnings, c.encoding)
        elif p.name[0] == "d":
            d = DncList.load([p], default_region="US")
            r = (len(d), sorted(d._ints.tolist()),
                 {k: plain(v) for k, v in d.unreadable.items()}, d.warnings)
        else:
            led = ConsentLedger.load(p, default_region="US")
            r = (plain(led.events), plain(led.unreadable))
    except InputError as e:
        r = ("refused", type(e).__name__, str(e), e.row, e.column)
    out[p.name] = r
pickle.dump(out, open(sys.argv[4], "wb"))
"""

_PHONES = ["4155550123", "+1 415 555 0124", "(415) 555-0125", "4155550123.0", "", "  ",
           "+44 20 7946 0958", "1-415-555-0127 x12", '"415\n555 0128"', "call me later",
           "415 555 0131 ::: (212) 555-0100", "x ::: 4155550132 ::: 555", "55 1234 5678",
           "4.155550126E+09", "415555012", "415 555 0129;415 555 0130", "12345678901234",
           "555-01"]
_IDS = ["", "C1", "C2", "101.0", "003A000001abcde", "0035e00000AbCdEQAX", "0035e00000AbCdE",
        "1.2E+11"]
_EVENTS = ["grant", "revoke", "Opted Out", "opt-in", "maybe"]
_TIMES = ["2026-01-02T03:04:05Z", "2026-01-02T03:04:05-05:00", "2025-12-31 23:59:59+01:00",
          "2026-01-02", "", "9999-01-01T00:00Z", "yesterday"]
_EXPIRES = ["", "2027-01-02T03:04:05Z", "2026-01-02", "soon"]
_HEADERS = ["Contact ID,Phone,Mobile,State,Country,Do Not Call,Notes",
            "Record ID,Phone,Mobile,Region,Country,DoNotCall,Notes",
            "Contact ID,Main,Cell,State,Nation,DNC,Notes"]


def write_messy(out: Path, count: int, seed: int = 7) -> None:
    """`count` contacts (c*.csv), DNC (d*.csv) and consent (s*.csv) files, seeded."""
    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)

    def q(cell: str) -> str:
        return cell if cell.startswith('"') else (f'"{cell}"' if "," in cell else cell)

    def pick(values: list[str], bad: float) -> str:  # the first half are the good values
        return rng.choice(values[: max(1, len(values) // 2)] if rng.random() > bad else values)

    for k in range(count):
        bad = rng.choice([0.0, 0.01, 0.05, 0.3])
        n = rng.choice([0, 1, 5, 30, 200])
        lines = [rng.choice(_HEADERS)]
        for _ in range(n):
            row = [pick(_IDS, bad), pick(_PHONES, bad), pick(_PHONES, bad),
                   rng.choice(["CA", "NY", "tx", "Texas", "", "ZZ"]),
                   rng.choice(["", "US", "USA", "Mexico", "MX", "Narnia"]),
                   rng.choice(["", "0", "false", "1", "yes"]),
                   rng.choice(["", "Zoë", '"two\nlines"', '"a, b"', "café"])]
            lines.append(",".join(q(x) for x in row) + (",extra" if rng.random() < bad / 20
                                                       else ""))
        encoding = rng.choice(["utf-8", "utf-8-sig", "cp1252", "utf-16"])
        (out / f"c{k}.csv").write_bytes(("\r\n".join(lines) + "\r\n").encode(encoding))
        header = rng.choice(["phone,mobile,country", "Phone Number,Notes,Added"])
        lines = [header] + [
            ",".join(q(x) for x in [pick(_PHONES, bad), pick(_PHONES, bad),
                                    rng.choice(["", "US", "MX", "Narnia"])])
            for _ in range(n)
        ]
        (out / f"d{k}.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
        lines = ["phone,mobile,contact_id,event,event_at,expires_at,source"] + [
            ",".join(q(x) for x in [pick(_PHONES, bad), pick(_PHONES, bad), pick(_IDS, bad),
                                    pick(_EVENTS, bad), pick(_TIMES, bad),
                                    pick(_EXPIRES, bad), "web"])
            for _ in range(n)
        ]
        (out / f"s{k}.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")


def compare_messy(count: int, against: Path) -> bool:
    """Read `count` messy files of each kind with both trees; print and return agreement."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "files"
        write_messy(folder, count)
        outcomes = {}
        for name, tree, rows in (("other tree, whole", against, 0),
                                 ("this tree, whole", ROOT, 0),
                                 ("this tree, 1-row batches", ROOT, 1),
                                 ("this tree, 7-row batches", ROOT, 7)):
            dump = Path(tmp) / f"{rows}-{len(outcomes)}.pkl"
            res = subprocess.run(
                [sys.executable, "-c", MESSY_CHILD, str(tree), str(folder), str(rows),
                 str(dump)], capture_output=True, text=True, check=False,
            )
            if res.returncode != 0:
                raise SystemExit(f"{name} failed:\n{res.stderr[-3000:]}")
            with dump.open("rb") as f:
                outcomes[name] = pickle.load(f)
    base = outcomes.pop("other tree, whole")
    refused = sum(1 for r in base.values() if r[0] == "refused")
    print(f"{len(base)} messy files ({refused} refused by the other tree)")
    same = True
    for name, got in outcomes.items():
        differ = sorted(k for k in base if base[k] != got[k])
        same = same and not differ
        print(f"  {name:<26} differs on {len(differ)}" + (f": {differ[:10]}" if differ else ""))
    return same


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
    ap.add_argument("--messy", type=int, default=0,
                    help="compare N messy files of each kind with --against instead")
    a = ap.parse_args()
    if a.messy:
        if a.against is None:
            raise SystemExit("--messy needs --against")
        raise SystemExit(0 if compare_messy(a.messy, a.against) else 1)
    inputs = a.out / f"{a.rows}-{a.rows}-{a.rows // 2}"
    if not (inputs / "consent.csv").exists():
        sys.path.insert(0, str(ROOT / "scripts"))
        from gen_contacts import generate

        generate(inputs, a.rows, a.rows, a.rows // 2)
    run(inputs, a.against, a.rounds)


if __name__ == "__main__":
    main()
