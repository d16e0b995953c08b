"""Benchmark the whole plan (load, normalise, dedupe, DNC, consent, window) against naive code.

    python scripts/bench_plan.py                 # 1M contacts, 1M DNC numbers, 500k consent events
    python scripts/bench_plan.py --rows 100000   # smaller

Inputs come from scripts/gen_contacts.py (generated once into --out, reused after). The plan and
the baseline each run in a fresh child process, so each one's peak memory is its own. The naive
baseline (pandas C-engine read as str, `df.apply` of `phonenumbers.parse` + `is_valid_number` +
time zones per row, the same per DNC number and per consent event, consent decided by scanning
the events for each contact) is measured on samples and extrapolated linearly to the full sizes:
running it whole would take many minutes. Targets (issue #12): the whole `make_plan`, as `run`
and `check` use it, in <= 8 s with <= 1.2 GB peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

AT = datetime(2026, 6, 10, 18, 0, tzinfo=UTC)  # a Wednesday afternoon in the US


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_plan(out: Path, check_rows: int) -> dict:
    import numpy as np
    import pandas as pd

    from campaign_dialer.compliance import plan_counts
    from campaign_dialer.config import load_campaign
    from campaign_dialer.contacts import normalize_phone
    from campaign_dialer.planning import make_plan
    from tests.campaign_files import write_campaign_toml

    toml = out / "bench.toml"
    write_campaign_toml(toml, {
        "campaign": {"name": "bench-plan", "agent_id": "agt_bench"},
        "inputs": {"contacts": "contacts.csv", "dnc": ["dnc.csv"], "consent": "consent.csv"},
        "compliance": {"calling_window": ["09:00", "20:00"], "dnc_ledger": "dnc-ledger.csv"},
    })
    campaign = load_campaign(toml)
    rss_start = peak_mb()
    c0 = time.process_time()
    t0 = time.perf_counter()
    # the whole plan as `run` and `check` make it: load, normalise, dedupe, decide (the rows
    # stay columns; a PlannedRow is made when the engine asks for it)
    made = make_plan(campaign, AT)
    t2 = time.perf_counter()
    t1 = t2
    cpu = time.process_time() - c0
    peak = peak_mb()
    contacts, gate, plan = made.contacts, made.gate, made.frame
    dnc, consent = gate.dnc, gate.consent

    # not timed: the fast paths must agree with the slow ones on this data too
    rng = np.random.default_rng(1)
    f = contacts.frame
    rows = rng.choice(len(f), min(check_rows, len(f)), replace=False)
    mismatches = 0
    for i in rows.tolist():
        c = f.iloc[i]
        want = normalize_phone(c["phone_raw"], "US") if c["phone_raw"] else None
        got = None if pd.isna(c["phone_e164"]) else c["phone_e164"]
        mismatches += want != got
        if pd.isna(c["reason"]):
            v = gate.check(
                phone_e164=got,
                contact_id=None if pd.isna(c["contact_id"]) else c["contact_id"],
                tz_hint=None if pd.isna(c["tz_hint"]) else c["tz_hint"],
                at=AT,
            )
            p = made.rows[i]  # the plan's final word (the gate's later holds included)
            mismatches += (v.disposition, v.reason) != (p.disposition, p.reason)
    counts = {f"{r.disposition}/{r.reason}": int(r.count) for r in plan_counts(plan).itertuples()}
    return {
        "load_s": t1 - t0,
        "plan_s": t2 - t1,
        "total_s": t2 - t0,
        "cpu_s": cpu,
        "peak_mb": peak,
        "start_mb": rss_start,
        "rows": len(f),
        "dnc": len(dnc),
        "consent_events": len(consent) if consent is not None else 0,
        "counts": counts,
        "checked": len(rows),
        "mismatches": int(mismatches),
    }


def child_baseline(out: Path, sample: int, scan: int, sizes: dict) -> dict:
    import pandas as pd
    import phonenumbers
    from phonenumbers import timezone as pn_tz

    def naive(raw: str) -> str | None:
        try:
            num = phonenumbers.parse(raw, "US")
        except phonenumbers.NumberParseException:
            return None
        if not phonenumbers.is_valid_number(num):
            return None
        pn_tz.time_zones_for_number(num)
        return phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164)

    res: dict[str, float] = {}
    t = time.perf_counter()
    df = pd.read_csv(out / "contacts.csv", dtype=str, keep_default_na=False, encoding="utf-8-sig")
    dnc = pd.read_csv(out / "dnc.csv", dtype=str, keep_default_na=False)
    ev = pd.read_csv(out / "consent.csv", dtype=str, keep_default_na=False)
    res["read_s"] = time.perf_counter() - t

    s = df.head(sample).copy()
    t = time.perf_counter()
    s["e164"] = s.apply(lambda r: naive(r["Mobile Phone"]), axis=1)
    s = s.drop_duplicates("e164", keep="first")
    res["contacts_per_row_s"] = (time.perf_counter() - t) / sample

    d = dnc.head(sample)
    t = time.perf_counter()
    dset = set(d.apply(lambda r: naive(r["phone_number"]), axis=1).dropna())
    res["dnc_per_row_s"] = (time.perf_counter() - t) / len(d)

    e = ev.head(sample).copy()
    t = time.perf_counter()
    e["e164"] = e.apply(lambda r: naive(r["phone"]) if r["phone"] else None, axis=1)
    e["t"] = e["event_at"].map(lambda x: pd.Timestamp(x).tz_convert("UTC"))
    res["consent_per_event_s"] = (time.perf_counter() - t) / len(e)

    # consent by scanning: for each contact, filter every event (full ledger size)
    full = pd.concat([e] * max(1, sizes["consent"] // max(1, len(e))), ignore_index=True)
    at = pd.Timestamp(AT)
    contacts = s.head(scan)
    t = time.perf_counter()
    allowed = 0
    for e164, cid in zip(contacts["e164"], contacts["Contact ID"], strict=True):
        mine = full[((full["e164"] == e164) | (full["contact_id"] == cid)) & (full["t"] <= at)]
        allowed += bool(len(mine)) and mine.sort_values("t").iloc[-1]["event"] == "grant"
        allowed += e164 in dset
    res["scan_per_row_s"] = (time.perf_counter() - t) / len(contacts)
    res["total_s"] = (
        res["read_s"]
        + res["contacts_per_row_s"] * sizes["rows"]
        + res["dnc_per_row_s"] * sizes["dnc"]
        + res["consent_per_event_s"] * sizes["consent"]
        + res["scan_per_row_s"] * sizes["rows"]
    )
    res["peak_mb"] = peak_mb()
    return res


def run_child(args: list[str]) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, env=env, check=False
    )
    if out.returncode != 0:
        sys.stderr.write(out.stderr)
        raise SystemExit(f"child {args[0]} failed ({out.returncode})")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--dnc-rows", type=int, default=None, help="default: --rows")
    ap.add_argument("--consent-rows", type=int, default=None, help="default: --rows / 2")
    ap.add_argument("--baseline-sample", type=int, default=20_000)
    ap.add_argument("--scan-sample", type=int, default=200)
    ap.add_argument("--check-rows", type=int, default=3_000)
    ap.add_argument("--out", type=Path, default=ROOT / "out" / "bench")
    ap.add_argument("--regenerate", action="store_true")
    ap.add_argument("--child", choices=["plan", "baseline"], help=argparse.SUPPRESS)
    ap.add_argument("--sizes", help=argparse.SUPPRESS)
    a = ap.parse_args()
    sizes = {
        "rows": a.rows,
        "dnc": a.dnc_rows if a.dnc_rows is not None else a.rows,
        "consent": a.consent_rows if a.consent_rows is not None else a.rows // 2,
    }
    out = a.out / f"{sizes['rows']}-{sizes['dnc']}-{sizes['consent']}"
    if a.child == "plan":
        print(json.dumps(child_plan(out, a.check_rows)))
        return
    if a.child == "baseline":
        print(json.dumps(child_baseline(out, a.baseline_sample, a.scan_sample, sizes)))
        return

    from gen_contacts import generate

    if a.regenerate or not (out / "consent.csv").exists():
        t = time.perf_counter()
        generate(out, sizes["rows"], sizes["dnc"], sizes["consent"])
        print(f"generated inputs in {time.perf_counter() - t:.1f} s -> {out}")
    (out / "dnc-ledger.csv").unlink(missing_ok=True)
    common = ["--rows", str(a.rows), "--out", str(a.out)]
    common += ["--dnc-rows", str(sizes["dnc"]), "--consent-rows", str(sizes["consent"])]
    plan = run_child(["--child", "plan", "--check-rows", str(a.check_rows), *common])
    base = run_child(
        [
            "--child",
            "baseline",
            *common,
            "--baseline-sample",
            str(a.baseline_sample),
            "--scan-sample",
            str(a.scan_sample),
        ]  # fmt: skip
    )
    speedup = base["total_s"] / plan["total_s"]
    parse_only = base["total_s"] - base["scan_per_row_s"] * sizes["rows"]
    print(
        f"\ninputs: {plan['rows']:,} contacts, {sizes['dnc']:,} DNC rows "
        f"({plan['dnc']:,} distinct valid), {sizes['consent']:,} consent rows "
        f"({plan['consent_events']:,} keyed events); {os.cpu_count()} cores"
    )
    print(
        f"make_plan total (as run/check)     {plan['total_s']:7.2f} s   "
        f"peak RSS {plan['peak_mb']:,.0f} MB   CPU {plan['cpu_s']:.2f} s (all threads)"
    )
    print(
        f"naive  baseline (extrapolated)     {base['total_s']:7.1f} s   "
        f"peak RSS {base['peak_mb']:,.0f} MB (samples only)"
    )
    print(
        f"       read {base['read_s']:.2f} s"
        f" + per contact {base['contacts_per_row_s'] * 1e6:.0f} us"
        f" + per DNC {base['dnc_per_row_s'] * 1e6:.0f} us + per event "
        f"{base['consent_per_event_s'] * 1e6:.0f} us + scan per contact "
        f"{base['scan_per_row_s'] * 1e3:.1f} ms"
    )
    print(
        f"       measured on {a.baseline_sample:,}-row samples ({a.scan_sample} contacts for the "
        "scan) and extrapolated linearly to the full sizes"
    )
    print(
        f"       without the consent scan (parsing only): {parse_only:.1f} s "
        f"-> {parse_only / plan['total_s']:.1f}x"
    )
    print(
        f"speed-up {speedup:.1f}x   (target <= 8 s: {'ok' if plan['total_s'] <= 8 else 'MISSED'};"
        f" <= 1.2 GB: {'ok' if plan['peak_mb'] <= 1200 else 'MISSED'})"
    )
    print(
        f"cross-check: {plan['checked']:,} random rows re-decided one by one: "
        f"{plan['mismatches']} mismatches"
    )
    print("fates:", ", ".join(f"{k}={v:,}" for k, v in plan["counts"].items()))
    if plan["mismatches"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
