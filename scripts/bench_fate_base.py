"""What the fate base costs in a SQLite journal: bytes per row and the time to write and read.

A realistic base of N rows (default 1,000,000: rows 1..N, person "tel:+1" and 10 random
digits, dispositions and reasons in a campaign's usual mix, detail and next_open mostly
null, four evidence columns of low cardinality) is written with `set_fate_base` into a new
journal; the journal's growth (file and WAL, after a checkpoint) is divided by N. Beside it,
in the same run, the baseline: the same fates written the way journals kept them before, one
`fates` row per row (`set_fates`), unless `--no-baseline`.

    python scripts/bench_fate_base.py [--rows N] [--no-baseline] [--dir DIR] [--pg-url URL]

`--pg-url`: also the PostgreSQL journal (a campaign "bench-fate-base" in that database,
dropped after): the fate base tables' size (pg_total_relation_size) and the times.

Figures only (the target is <= 40 bytes/row); no assertion.
"""

from __future__ import annotations

import argparse
import gc
import os
import sqlite3
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from campaign_dialer.store import Fate
from campaign_dialer.store.fate_base import fates_of
from campaign_dialer.store.sqlite.journal import Journal

TEXT = pa.large_string()
# (disposition, reason, share, detail, next_open): a campaign's usual mix
MIX = [
    ("suppressed", "no_consent", 0.57, None, None),
    ("pending", "not_dialed_yet", 0.24, None, None),
    ("suppressed", "dnc_local", 0.09, None, None),
    ("suppressed", "consent_revoked", 0.05, None, None),
    ("pending", "outside_window", 0.02, None, "2026-06-10T13:00:00.000Z"),
    ("suppressed", "duplicate", 0.01, "duplicate_of", None),
    ("suppressed", "invalid_phone", 0.01, "not a phone number", None),
    ("suppressed", "dnc_ledger", 0.01, None, None),
]
ZONES = ["America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles"]
LOCAL = ["Wed 14:00 EDT", "Wed 13:00 CDT", "Wed 12:00 MDT", "Wed 11:00 PDT"]


def coded(codes: np.ndarray, values: Sequence[str | None]) -> pa.DictionaryArray:
    """Codes into `values` (a None value: null) as a dictionary column."""
    present = [v for v in values if v is not None]
    remap = np.array([present.index(v) if v is not None else -1 for v in values], np.int32)
    idx = remap[codes]
    return pa.DictionaryArray.from_arrays(pa.array(idx, mask=idx < 0),
                                          pa.array(present, TEXT))


def realistic_base(n: int, seed: int = 25) -> pa.Table:
    rng = np.random.default_rng(seed)
    shares = np.array([m[2] for m in MIX])
    kind = rng.choice(len(MIX), n, p=shares / shares.sum()).astype(np.int32)
    digits = pa.array(rng.integers(0, 10**10, n)).cast(pa.string())
    person = pc.binary_join_element_wise("tel:+1", pc.utf8_lpad(digits, 10, "0"), "")
    invalid = kind == [m[1] for m in MIX].index("invalid_phone")
    person = pc.if_else(pa.array(invalid), pa.nulls(n, pa.string()), person).cast(TEXT)
    zone = rng.choice(len(ZONES), n, p=[0.5, 0.25, 0.1, 0.15]).astype(np.int32)
    checked = np.where(kind == 0, 1, 0).astype(np.int32)  # no consent: lists not reached
    return pa.table({
        "row": pa.array(np.arange(1, n + 1, dtype=np.int64)),
        "person": person,
        "disposition": coded(kind, [m[0] for m in MIX]),
        "reason": coded(kind, [m[1] for m in MIX]),
        "detail": coded(kind, [m[3] for m in MIX]),
        "next_open": coded(kind, [m[4] for m in MIX]),
        "zones": coded(zone, ZONES),
        "local_times": coded(np.where(kind == 1, zone, len(LOCAL)).astype(np.int32),
                             [*LOCAL, None]),
        "dnc_lists_checked": coded(checked, ["dnc.csv", None]),
        "consent_source": coded(np.where(kind == 3, 0, 1).astype(np.int32),
                                ["ledger.csv", None]),
    })


def size(path: Path) -> int:
    wal = path.with_name(path.name + "-wal")
    return path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


def checkpoint(path: Path, mode: str) -> None:
    with sqlite3.connect(path, isolation_level=None) as db:
        db.execute(f"PRAGMA wal_checkpoint({mode})")


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    gc.collect()
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def measure(where: Path, n: int, write: Callable[[Journal], None], label: str) -> float:
    path = where / f"{label}.journal.sqlite"
    Journal(path, "bench").close()
    checkpoint(path, "TRUNCATE")
    empty = size(path)
    j = Journal(path, "bench")
    secs, _ = timed(lambda: write(j))
    grown = size(path) - empty  # the writer still open: its WAL as the write left it
    checkpoint(path, "PASSIVE")
    after_passive = size(path) - empty
    j.close()
    checkpoint(path, "TRUNCATE")
    after_truncate = size(path) - empty
    print(f"{label:>9}: write {secs:6.2f} s; journal growth (file + WAL) {grown / n:6.1f} "
          f"B/row as written, {after_passive / n:6.1f} after a checkpoint, "
          f"{after_truncate / n:6.1f} closed (WAL gone: "
          f"{after_truncate / 1e6:.1f} MB for {n:,} rows)")
    return after_truncate / n


def on_postgres(url: str, table: pa.Table) -> None:
    # Lazy: psycopg only when asked for (the SQLite figures need no server).
    from campaign_dialer.store.postgres import Database, PgJournal

    n, name = table.num_rows, "bench-fate-base"
    size_sql = ("SELECT pg_total_relation_size('fate_base_chunks') "
                "+ pg_total_relation_size('fate_bases')")
    with Database(url) as db:
        db.execute("DELETE FROM campaigns WHERE name = %s", (name,))
        before = int(db.fetchone(size_sql)[0])
        j = PgJournal(db, name)
        secs, _ = timed(lambda: j.set_fate_base(table, "bench"))
        grown = int(db.fetchone(size_sql)[0]) - before
        print(f"postgres: write {secs:6.2f} s; fate base tables grew {grown / n:6.1f} B/row "
              f"({grown / 1e6:.1f} MB)")
        secs, _ = timed(lambda: PgJournal(db, name).fate_counts())
        print(f"  fate_counts() (fresh): {secs:.2f} s")
        secs, _ = timed(lambda: PgJournal(db, name).fate_table())
        print(f"  fate_table() (fresh): {secs:.2f} s")
        db.execute("DELETE FROM campaigns WHERE name = %s", (name,))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--no-baseline", action="store_true")
    ap.add_argument("--dir", type=Path, default=None)
    ap.add_argument("--pg-url", default=None)
    a = ap.parse_args()
    n = a.rows
    where = a.dir or Path(tempfile.mkdtemp(prefix="bench-fate-base-"))
    where.mkdir(parents=True, exist_ok=True)
    secs, table = timed(lambda: realistic_base(n))
    print(f"rows: {n:,}; base table made in {secs:.2f} s "
          f"({table.nbytes / n:.1f} B/row in memory, dictionary-encoded); in {where}")

    per_row = measure(where, n, lambda j: j.set_fate_base(table, "bench"), "base")
    path = where / "base.journal.sqlite"
    for label, fn in [
        ("fate_base() (a fresh journal: read + decompress)",
         lambda: Journal(path, "bench").fate_base()),
        ("fate_counts() (fresh)", lambda: Journal(path, "bench").fate_counts()),
        ("fate_table() (fresh)", lambda: Journal(path, "bench").fate_table()),
    ]:
        secs, _ = timed(fn)
        print(f"  {label}: {secs:.2f} s")
    j = Journal(path, "bench")
    j.fate_base()
    secs, _ = timed(j.fate_counts)
    print(f"  fate_counts() again (base cached, overlay empty): {secs:.3f} s")
    j.set_fates([Fate(r, f"tel:+1{r:010d}", "dialed", "completed", "", None,
                      {"zones": "America/New_York"}) for r in range(1, n, max(n // 1000, 1))])
    secs, t = timed(j.fate_table)
    print(f"  fate_table() with a 1,000-row overlay: {secs:.2f} s ({t.num_rows:,} rows)")
    secs, _ = timed(j.fate_counts)
    print(f"  fate_counts() with a 1,000-row overlay: {secs:.3f} s")
    secs, f = timed(j.fates)
    print(f"  fates() (a Fate per row, for comparison): {secs:.2f} s ({len(f):,})")
    j.close()
    del f, t
    if not a.no_baseline:
        fates = list(fates_of(table))
        old = measure(where, n, lambda j: j.set_fates(fates), "baseline")
        secs, _ = timed(lambda: Journal(where / "baseline.journal.sqlite", "bench").fates())
        print(f"  baseline fates() (fresh): {secs:.2f} s")
        print(f"base / baseline bytes per row: {per_row / old:.3f}x")
    print(f"target <= 40 B/row: {'met' if per_row <= 40 else 'NOT met'} ({per_row:.1f})")
    if a.pg_url:
        on_postgres(a.pg_url, table)
    if a.dir is None:
        for p in where.iterdir():
            os.unlink(p)
        where.rmdir()


if __name__ == "__main__":
    main()
