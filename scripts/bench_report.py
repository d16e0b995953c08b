"""How long the post-campaign report of a large campaign takes to build, and how big it is.

Synthesises a finished campaign (contacts CSV, journal, results.csv) through the store (the
attempts in one `import_attempts` transaction), then times `report.build` on it. No network,
no sandbox: the journal is left as a long run would have left it.

Each build runs in its own process (its own peak RSS): the page with every row (the way
before issue #25's threshold) beside the page's selection (rows a person must see and a
sample, above `report.rows.PAGE_ALL_ROWS_MAX` rows), on the same campaign in the same run.

    .venv/bin/python scripts/bench_report.py [--rows 100000] [--keep DIR] [--campaign TOML]
    .venv/bin/python scripts/bench_report.py --rows 1000000   # issue #25's 1M-row page
"""

from __future__ import annotations

import argparse
import json
import random
import re
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.campaign_files
from campaign_dialer.config import load_campaign  # noqa: E402
from campaign_dialer.contacts import load_contacts  # noqa: E402
from campaign_dialer.results import write_results  # noqa: E402
from campaign_dialer.store import Fate, Journal, iso  # noqa: E402
from tests.campaign_files import write_campaign_toml  # noqa: E402

AGENTS = ("agt_3d9b21", "agt_7f00aa")
START = datetime(2026, 6, 9, 17, 0, tzinfo=UTC)  # 13:00 New York, 10:00 Los Angeles
AREAS = (("212", "America/New_York"), ("312", "America/Chicago"), ("415", "America/Los_Angeles"))
# (final status, cumulative probability), as the sandbox draws them
FINAL = (("completed", 0.60), ("voicemail", 0.72), ("no_answer", 0.84), ("busy", 0.90),
         ("failed", 0.96), ("canceled", 1.00))
OUTCOMES = (("opt_out", 0.025), ("do_not_call", 0.05), ("appointment_booked", 0.27),
            ("qualified", 0.47), ("not_interested", 0.75), ("callback_requested", 0.92),
            ("wrong_number", 1.00))


def campaign_sections(name: str, cps: float, max_live: int) -> dict[str, dict[str, Any]]:
    """A finished campaign's file: no consent required, the ledger under out/."""
    return {
        "campaign": {"name": name, "agent_id": AGENTS[0], "default_region": "US"},
        "api": {"base_url": "http://127.0.0.1:8787", "max_live_calls": max_live,
                "requests_per_second": 50},
        "pacing": {"calls_per_second": cps},
        "inputs": {"contacts": "contacts.csv"},
        "compliance": {"calling_window": ["09:00", "20:00"], "require_consent": False,
                       "dnc_ledger": "out/dnc-ledger.csv"},
    }


def _pick(table: tuple[tuple[str, float], ...], u: float) -> str:
    return next((name for name, p in table if u < p), table[-1][0])


def synthesize(
    folder: Path, rows: int, *, seed: int = 1, name: str = "bench", cps: float = 5.0,
    max_live: int = 800, two_agents: bool = False,
) -> Path:
    """Write a finished campaign of `rows` contacts under `folder`; return its campaign file.

    Fates follow rough real-world shares (a few blank/invalid/duplicate rows, DNC and consent
    hold-backs, rows outside their window, 409s, errors, the rest dialed with the sandbox's
    status and outcome mix), so every chart of the report has something to show.
    """
    rnd = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "campaign.toml"
    write_campaign_toml(path, campaign_sections(name, cps, max_live))
    kinds: list[str] = []
    phones: list[str] = []
    zones: list[str] = []
    lines = ["phone,contact_id,first_name,last_name,company,state"]
    for i in range(rows):
        u = rnd.random()
        kind = (
            "blank" if u < 0.02 else "invalid" if u < 0.04 else "duplicate" if u < 0.06
            else "dnc" if u < 0.09 else "consent" if u < 0.15 else "window" if u < 0.25
            else "rejected" if u < 0.26 else "error" if u < 0.265 else "queued" if u < 0.28
            else "dialed"
        )
        if kind == "duplicate" and not phones:
            kind = "dialed"
        area, zone = AREAS[i % len(AREAS)]
        phone = f"+1{area}{200 + i // 10000 % 800:03d}{i % 10000:04d}"
        if kind == "blank":
            phone = ""
        elif kind == "invalid":
            phone = "12345"
        elif kind == "duplicate":
            phone = rnd.choice(phones[-50:])
        else:
            phones.append(phone)
        kinds.append(kind)
        zones.append(zone)
        cid = "" if kind == "blank" else f"C{i + 1:07d}"
        lines.append(f"{phone},{cid},First{i % 997},Last{i % 1009},Company {i % 211},")
    (folder / "contacts.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")

    campaign = load_campaign(path)
    contacts = load_contacts(campaign.contacts_path, default_region="US")
    cf = contacts.frame
    journal = Journal(campaign.journal_path, campaign.name, now=lambda: START)
    run_id = journal.begin_run()
    fates: list[Fate] = []
    attempts: list[tuple[object, ...]] = []
    events: list[tuple[object, ...]] = []
    seen: set[str] = set()
    k = 0  # calls sent so far, spaced by the pacing
    e164s = cf["phone_e164"].tolist()
    contact_reasons = cf["reason"].tolist()
    for i, kind in enumerate(kinds):
        row = i + 1
        e164 = e164s[i]
        person = f"tel:{e164}" if isinstance(e164, str) else None
        creason = contact_reasons[i]
        if isinstance(creason, str):
            fates.append(Fate(row, person, "suppressed", creason, ""))
            continue
        if person in seen:  # a number repeated by chance: the journal keeps its first row
            fates.append(Fate(row, person, "suppressed", "duplicate", ""))
            continue
        seen.add(person or "")
        at = START + timedelta(seconds=k / cps)
        local = at.astimezone(ZoneInfo(zones[i])).isoformat(timespec="minutes")
        evidence = {
            "consent_event_at": "2026-01-01T00:00:00Z", "consent_source": "webform",
            "local_times": local, "zones": zones[i], "dnc_lists_checked": "ledger",
        }
        if kind == "dnc":
            fates.append(Fate(row, person, "suppressed", "dnc_local", "listed in dnc.csv",
                              None, evidence))
            continue
        if kind == "consent":
            fates.append(Fate(row, person, "suppressed", "no_consent", "no consent on record",
                              None, evidence))
            continue
        if kind in ("window", "queued"):
            reason = "outside_window" if kind == "window" else "not_dialed_yet"
            nxt = iso(START + timedelta(hours=16)) if kind == "window" else None
            fates.append(Fate(row, person, "pending", reason, "", nxt, evidence))
            continue
        k += 1
        agent = AGENTS[i % 2] if two_agents else AGENTS[0]
        ev = {**evidence, "dialed_at": iso(at)}
        body = json.dumps({"agent_id": agent, "phone_number": e164})
        idem = f"cd1-bench-{row}"
        t0 = at.timestamp()
        posts = 2 if rnd.random() < 0.02 else 1
        if posts == 2:
            events.append((t0, run_id, "POST", "/v1/calls", 503, "unavailable", 0.2, None))
        if kind == "rejected":
            attempts.append((person, row, 1, idem, body, "rejected", None, 409, "dnc_listed",
                             "on the platform's DNC list", None, None, None, posts, iso(at),
                             None, None, None, None, json.dumps(ev), run_id, iso(at)))
            events.append((t0, run_id, "POST", "/v1/calls", 409, "dnc_listed", 0.05, None))
            fates.append(Fate(row, person, "rejected", "dnc_listed", "", None, ev))
            continue
        if kind == "error":
            attempts.append((person, row, 1, idem, body, "error", None, 422, "invalid_request",
                             "phone_number rejected", None, None, None, posts, iso(at), None,
                             None, None, None, json.dumps(ev), run_id, iso(at)))
            events.append((t0, run_id, "POST", "/v1/calls", 422, "invalid_request", 0.05, None))
            fates.append(Fate(row, person, "error", "invalid_request", "", None, ev))
            continue
        status = _pick(FINAL, rnd.random())
        outcome = None
        talk = 0.0
        if status == "completed":
            outcome = _pick(OUTCOMES, rnd.random())
            talk = 45 + 255 * rnd.random()
        elif status == "voicemail":
            outcome, talk = "left_voicemail", 20 + 20 * rnd.random()
        ring = 5 + 20 * rnd.random()
        ended = at + timedelta(seconds=ring + talk)
        call_id = f"call_{row:08d}"
        attempts.append((person, row, 1, idem, body, "final", call_id, 201, None, None, status,
                         outcome, status, posts, iso(at), iso(at), iso(ended), round(talk),
                         f"https://rec.example/{call_id}.mp3" if talk else None, json.dumps(ev),
                         run_id, iso(ended)))
        events.append((t0, run_id, "POST", "/v1/calls", 201, None, 0.08, None))
        for j in range(1 + int((ring + talk) // 60)):
            events.append((t0 + 2 + 60 * j, run_id, "GET", f"/v1/calls/{call_id}", 200, None,
                           0.03, None))
        if rnd.random() < 0.01:
            events.append((t0 + 1, run_id, "GET", f"/v1/calls/{call_id}", 429, "rate_limited",
                           0.01, None))
        fates.append(Fate(row, person, "dialed", status, "", None, ev))
    journal.set_fates(fates)
    journal.add_http_events(events)
    journal.end_run(run_id, 75, {"placed": k})
    journal.set_meta("last_exit_code", "75")
    # Attempts in one transaction (record_intent commits each one: minutes for 70,000).
    cols = ("person", "row", "attempt", "idem_key", "body", "state", "call_id", "http_status",
            "error_code", "error", "status", "outcome", "ended_reason", "posts", "intent_at",
            "placed_at", "ended_at", "duration_seconds", "recording_url", "evidence", "run_id",
            "updated_at")
    journal.import_attempts(dict(zip(cols, a, strict=True)) for a in attempts)
    journal.close()
    with Journal(campaign.journal_path, campaign.name, create=False) as done:
        write_results(contacts, done, campaign.results_path)
    return path


WAYS = {"all": "every row in the page (before)", "selection": "the page's selection (now)"}


def build_one(path: Path, way: str) -> dict[str, Any]:
    """One `report.build` of the campaign at `path`, every row embedded (`all`, the way before
    issue #25's page threshold) or the page's selection above the threshold (`selection`)."""
    from campaign_dialer import report
    from campaign_dialer.report import rows

    if way == "all":
        rows.PAGE_ALL_ROWS_MAX = sys.maxsize
    campaign = load_campaign(path)
    t = time.perf_counter()
    html = report.build(campaign)
    seconds = time.perf_counter() - t
    page = html.read_text(encoding="utf-8")
    m = re.search(r'id="rows-data">(.*?)</script>', page, re.S)
    table = json.loads(m.group(1)) if m else {"rows": []}
    out = campaign.output_dir
    return {"way": way, "seconds": seconds, "html_bytes": html.stat().st_size,
            "page_rows": len(table["rows"]), "total": table.get("total"),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "files": {p.name: p.stat().st_size for p in sorted(out.iterdir())
                      if p.is_file() and p.name != html.name}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--keep", type=Path, help="build the campaign here and keep it")
    ap.add_argument("--campaign", type=Path,
                    help="a campaign.toml synthesised before (--keep): skip synthesising")
    ap.add_argument("--ways", default="all,selection",
                    help="report builds to time, each in its own process: all (every row, "
                         "the way before), selection (now); default both")
    ap.add_argument("--one", choices=sorted(WAYS), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.one:  # a child: one build, its figures as JSON
        assert args.campaign is not None
        print(json.dumps(build_one(args.campaign, args.one)))
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        path = args.campaign
        if path is None:
            folder = args.keep or Path(tmp)
            t = time.perf_counter()
            path = synthesize(folder, args.rows)
            print(f"synthesised {args.rows:,} rows in {time.perf_counter() - t:.1f}s",
                  flush=True)
        for way in args.ways.split(","):
            proc = subprocess.run(
                [sys.executable, __file__, "--campaign", str(path), "--one", way],
                capture_output=True, text=True, check=False,
            )
            if proc.returncode != 0:
                print(f"{way}: failed\n{proc.stderr[-3000:]}")
                return 1
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            print(f"{WAYS[way]}: report.build {r['seconds']:.2f}s, report.html "
                  f"{r['html_bytes'] / 1e6:.1f} MB holding {r['page_rows']:,} of "
                  f"{r['total']:,} rows, peak RSS {r['peak_rss_mb']:.0f} MB", flush=True)
            for name, size in r["files"].items():
                print(f"  {name}: {size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
