"""How long results.csv takes at scale, and how much memory: results.csv written a slice of
rows at a time (`write_results`), from the vectorised frame of every row (`results_frame`),
or from a frame built a dict per row (`results_frame_rows`, the way before issue #25), each
in a fresh process, on the same campaign in the same run.

The campaign: a `gen_contacts.py` contacts file (a CRM export: BOM, CRLF, messy phones, blank
and invalid rows, people twice), a journal with every row's fate (`set_fates`, evidence on
the rows the plan looked at) and a few thousand attempts in every state, some people called
twice. Each child loads the contacts as `results` does (`load_campaign_contacts`, timed on its
own), builds the frame, guards it and writes results.csv; the files must be the same bytes.
A journal that keeps a fate base (`set_fate_base`) gets every row's planned fate there and
the rows dialed in the overlay, as a run leaves them. `--against` a checkout from before
runs the old way with that tree's `results_frame`, guard and writer.

    .venv/bin/python scripts/bench_results.py [--rows 1000000] [--attempts 5000] [--keep DIR]
    mkdir ../main-tree && git archive main | tar -x -C ../main-tree   # old: main's dialer
    .venv/bin/python scripts/bench_results.py --keep ../c1m --against ../main-tree --rounds 3 \
        --ways old,new,sliced

`sliced` is `write_results` as a run calls it (a slice of rows at a time, issue #25's memory),
`new` the frame of every row (`write_results_frame`, its oracle): the files must be the same
bytes. The peak is the step's (reset after the contacts are read, where Linux allows).
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TREE = "BENCH_RESULTS_TREE"
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.campaign_files
sys.path.insert(0, str(ROOT / "scripts"))  # gen_contacts
if os.environ.get(TREE):  # a child timing the dialer of another tree (--against)
    sys.path.insert(0, os.environ[TREE])
from gen_contacts import generate  # noqa: E402

from campaign_dialer import results  # noqa: E402
from campaign_dialer.config import load_campaign  # noqa: E402
from campaign_dialer.contacts import load_campaign_contacts  # noqa: E402
from campaign_dialer.store import Fate, Journal  # noqa: E402
from tests.campaign_files import write_campaign_toml  # noqa: E402

WAYS = {"old": "a dict per row (results_frame_rows, before)",
        "new": "vectorised, the frame of every row (write_results_frame)",
        "sliced": "a slice of rows at a time (write_results, now)"}
AT = "2026-06-09T17:00:00.000Z"
STATES = ("final", "final", "final", "rejected", "error", "not_placed", "unresolved", "placed",
          "intent")
FINAL = ("completed", "voicemail", "no_answer", "busy", "failed")
ATTEMPT_KEYS = ("person", "row", "attempt", "idem_key", "body", "state", "call_id",
                "http_status", "error_code", "error", "status", "outcome", "ended_reason",
                "posts", "intent_at", "placed_at", "ended_at", "duration_seconds",
                "recording_url", "evidence", "run_id", "updated_at")


def synthesize(folder: Path, rows: int, attempts: int, seed: int = 7) -> Path:
    """A campaign of `rows` contacts with every row's fate and `attempts` attempts."""
    t = time.perf_counter()
    generate(folder, rows, dnc_rows=1000, consent_rows=1000, seed=seed)
    path = write_campaign_toml(folder / "campaign.toml", {
        "campaign": {"name": "bench", "agent_id": "agt_3d9b21", "default_region": "US"},
        "api": {"base_url": "http://127.0.0.1:8787"},
        "inputs": {"contacts": "contacts.csv"},
        "compliance": {"calling_window": ["09:00", "20:00"], "require_consent": False,
                       "dnc_ledger": "out/dnc-ledger.csv"},
    })
    campaign = load_campaign(path)
    cf = load_campaign_contacts(campaign).frame
    print(f"  contacts generated and read in {time.perf_counter() - t:.1f}s", flush=True)
    rnd = random.Random(seed)
    fates: list[Fate] = []
    dialed: list[tuple[int, str, dict[str, str]]] = []
    seen: set[str] = set()
    for row, e164, cid, reason, detail in zip(
        cf["row"].tolist(), cf["phone_e164"].tolist(), cf["contact_id"].tolist(),
        cf["reason"].tolist(), cf["detail"].tolist(), strict=True,
    ):
        person = f"tel:{e164}" if isinstance(e164, str) else (
            f"cid:{cid}" if isinstance(cid, str) else None)
        if isinstance(reason, str):
            fates.append(Fate(row, person, "suppressed", reason, detail or ""))
            continue
        if person in seen:
            fates.append(Fate(row, person, "skipped", "duplicate", "same person as before"))
            continue
        seen.add(person or "")
        evidence = {"consent_event_at": "2026-01-01T00:00:00Z", "consent_source": "web form",
                    "local_times": "2026-06-09T13:00-04:00", "zones": "America/New_York",
                    "dnc_lists_checked": "dnc.csv (2026-06-01)"}
        u = rnd.random()
        if len(dialed) < attempts and u < 0.3 and person:
            fates.append(Fate(row, person, "dialed", "completed", "", None,
                              {**evidence, "dialed_at": AT}))
            dialed.append((row, person, evidence))
        elif u < 0.45:
            fates.append(Fate(row, person, "suppressed", "dnc_local", "listed in dnc.csv",
                              None, evidence))
        elif u < 0.75:
            fates.append(Fate(row, person, "pending", "outside_window", "",
                              "2026-06-10T13:00:00.000Z", evidence))
        else:
            fates.append(Fate(row, person, "pending", "not_dialed_yet", "", None, evidence))
    records: list[dict[str, Any]] = []
    for row, person, evidence in dialed:
        for number in range(1, (3 if rnd.random() < 0.1 else 2)):
            state = rnd.choice(STATES)
            placed = state in ("final", "placed", "unresolved")
            status = rnd.choice(FINAL) if state == "final" else ("queued" if placed else None)
            call_id = f"call_{row:08d}_{number}" if placed else None
            records.append(dict(zip(ATTEMPT_KEYS, (
                person, row, number, f"cd1-bench-{row}-{number}",
                json.dumps({"agent_id": "agt_3d9b21", "phone_number": person[4:]}), state,
                call_id, 201 if placed else (409 if state == "rejected" else None),
                "dnc_listed" if state == "rejected" else None,
                "no" if state in ("rejected", "error") else None, status,
                "qualified" if status == "completed" else None, status, 1, AT,
                AT if placed else None, AT if state == "final" else None,
                float(rnd.randint(0, 300)) if state == "final" else None,
                f"https://rec.example/{call_id}.mp3" if state == "final" else None,
                json.dumps({**evidence, "dialed_at": AT, "from_number": "+12125550199",
                            "from_phone_number_id": "pn_55ad12", "caller_id_reason": "pool"}),
                None, AT), strict=True)))
    t = time.perf_counter()
    with Journal(campaign.journal_path, campaign.name) as journal:
        how = "set_fates"
        if hasattr(journal, "set_fate_base"):  # a journal with the fate base (issue #25):
            # every row's planned fate in the base, the rows dialed in the overlay
            dialed_rows = {row for row, _, _ in dialed}
            planned = [Fate(f.row, f.person, "pending", "not_dialed_yet", "", None,
                            f.evidence) if f.row in dialed_rows else f for f in fates]
            journal.set_fate_base(results.fates_as_table(planned), "bench")
            fates = [f for f in fates if f.row in dialed_rows]
            how = "set_fate_base and set_fates (the rows dialed)"
        journal.set_fates(fates)
        journal.import_attempts(records)
    print(f"  journal ({how}): {len(cf):,} rows' fates, {len(records):,} attempts of "
          f"{len(dialed):,} people in {time.perf_counter() - t:.1f}s", flush=True)
    return path


def run_one(path: Path, way: str, out: Path, batch_rows: int) -> dict[str, Any]:
    """One child: contacts as `results` reads them, then the frame, the guard, the file."""
    def rss(field: str = "VmHWM") -> float:
        """Peak RSS so far (VmRSS: now), MB: VmHWM starts afresh at exec (ru_maxrss keeps
        the parent's high-water mark across fork and exec)."""
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    def reset_peak() -> None:
        """The peak starts again from now (Linux: 5 to clear_refs resets VmHWM), so the
        step's peak is not the contacts reader's."""
        try:
            Path("/proc/self/clear_refs").write_text("5")
        except OSError:
            pass

    took: dict[str, float] = {}
    # old: the dict-per-row frame, kept as `results_frame_rows`; in a tree from before it
    # (--against) that is its `results_frame`, timed with that tree's guard and writer
    against = bool(os.environ.get(TREE))
    build = getattr(results, "results_frame" if way == "new" or against else
                    "results_frame_rows")
    fate_table_of = getattr(results, "fate_table_of", None)
    if fate_table_of is not None:
        def timed_fates(journal: Any) -> Any:
            t = time.perf_counter()
            table = fate_table_of(journal)
            took["fate_table"] = time.perf_counter() - t
            return table

        results.fate_table_of = timed_fates  # the new frame's read of the fates, timed apart
    campaign = load_campaign(path)
    start = rss()
    t = time.perf_counter()
    contacts = load_campaign_contacts(campaign)
    took["contacts"] = time.perf_counter() - t
    contacts_peak = rss()
    reset_peak()
    after_contacts = rss("VmRSS")
    with Journal(campaign.journal_path, campaign.name, create=False) as journal:
        if way == "sliced" and not against:  # the step as the run makes it: one call
            t = time.perf_counter()
            rows = results.write_results(contacts, journal, out, batch_rows=batch_rows).rows
            took["frame"], took["write"] = 0.0, time.perf_counter() - t
        else:
            t = time.perf_counter()
            df = build(contacts, journal)
            took["frame"] = time.perf_counter() - t
            t = time.perf_counter()
            results.write_atomic_csv(results.safe_for_spreadsheets(df), out)
            took["write"] = time.perf_counter() - t
            rows = len(df)
    return {"way": way, "took": took, "rss_start_mb": start, "rss_contacts_mb": after_contacts,
            "contacts_peak_mb": contacts_peak, "peak_rss_mb": max(rss(), after_contacts),
            "rows": rows, "bytes": out.stat().st_size}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--attempts", type=int, default=5000, help="people dialed")
    ap.add_argument("--keep", type=Path, help="build the campaign here and keep it")
    ap.add_argument("--campaign", type=Path, help="a campaign.toml made before (--keep)")
    ap.add_argument("--ways", default="new,sliced",
                    help=f"of {', '.join(WAYS)} (old: slow, a dict per row)")
    ap.add_argument("--against", type=Path,
                    help="a checkout from before (e.g. `git archive main`): the old way runs "
                         "its results_frame, guard and writer")
    ap.add_argument("--batch-rows", type=int, default=100_000,
                    help="sliced: input rows per slice (write_results' batch_rows)")
    ap.add_argument("--rounds", type=int, default=1, help="alternating rounds (medians)")
    ap.add_argument("--one", choices=sorted(WAYS), help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one:  # a child: one way, its figures as JSON
        print(json.dumps(run_one(args.campaign, args.one, args.out, args.batch_rows)))
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-results-") as tmp:
        path = args.campaign
        if path is None:
            print(f"synthesising {args.rows:,} rows", flush=True)
            path = synthesize(args.keep or Path(tmp), args.rows, args.attempts)
        ways = args.ways.split(",")
        files = {way: Path(tmp) / f"results-{way}.csv" for way in ways}
        figures: dict[str, list[dict[str, Any]]] = {way: [] for way in ways}
        for n in range(args.rounds):  # the ways alternate: a busy machine hits both alike
            for way in ways:
                r = child(path, way, files[way], args.against if way == "old" else None,
                          args.batch_rows)
                if r is None:
                    return 1
                figures[way].append(r)
                print(f"round {n + 1}: {line(r, way, args.against)}", flush=True)
        if args.rounds > 1:
            for way in ways:
                print(f"median: {line(median(figures[way]), way, args.against)}", flush=True)
        if len(files) > 1:
            first, *others = files.values()
            print("results.csv the same bytes every way:",
                  all(filecmp.cmp(first, b, shallow=False) for b in others), flush=True)
    return 0


def child(path: Path, way: str, out: Path, against: Path | None, batch_rows: int
          ) -> dict[str, Any] | None:
    """One way in a fresh process; its figures, None when it failed (said why)."""
    env = dict(os.environ)
    env.pop(TREE, None)
    if against:
        env[TREE] = str(against.resolve())
    proc = subprocess.run(
        [sys.executable, __file__, "--campaign", str(path), "--one", way, "--out", str(out),
         "--batch-rows", str(batch_rows)],
        capture_output=True, text=True, check=False, env=env,
    )
    if proc.returncode != 0:
        print(f"{way}: failed\n{proc.stderr[-3000:]}")
        return None
    figures: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return figures


def median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Each figure's median over the rounds."""
    out = dict(runs[0])
    out["took"] = {k: statistics.median(r["took"][k] for r in runs) for k in runs[0]["took"]}
    for k in ("rss_start_mb", "rss_contacts_mb", "contacts_peak_mb", "peak_rss_mb"):
        out[k] = statistics.median(r[k] for r in runs)
    return out


def line(r: dict[str, Any], way: str, against: Path | None) -> str:
    k = r["took"]
    read = f", of it fates read {k['fate_table']:.2f}s" if "fate_table" in k else ""
    label = f"old: {against}'s results_frame" if way == "old" and against else WAYS[way]
    parts = (f"frame {k['frame']:.2f}s{read}; guard and write {k['write']:.2f}s"
             if k["frame"] else "frame, guard and write a slice at a time")
    return (f"{label}: write_results {k['frame'] + k['write']:.2f}s ({parts}), peak RSS "
            f"{r['peak_rss_mb']:.0f} MB, {r['peak_rss_mb'] - r['rss_contacts_mb']:+.0f} MB "
            f"over the contacts loaded; contacts {k['contacts']:.2f}s, RSS "
            f"{r['rss_start_mb']:.0f} -> {r['rss_contacts_mb']:.0f} MB (peak "
            f"{r['contacts_peak_mb']:.0f}); results.csv {r['bytes'] / 1e6:.0f} MB, "
            f"{r['rows']:,} rows")


if __name__ == "__main__":
    sys.exit(main())
