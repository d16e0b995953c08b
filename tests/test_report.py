"""The post-campaign report: figures against the results file, escaping, exports, a browser.

The campaigns here are written with the journal's own API (no network): a handful of rows
with one of every fate, and contact data that tries to break out of the page or run as a
spreadsheet formula.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import importlib.util
import io
import json
import os
import random
import re
import shutil
import socket
import struct
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from campaign_dialer import commands, log, report
from campaign_dialer.commands import campaign_lock
from campaign_dialer.config import Campaign, load_campaign
from campaign_dialer.contacts import load_contacts
from campaign_dialer.errors import NotRunYet
from campaign_dialer.exitcodes import ExitCode
from campaign_dialer.results import RUN_END_SOURCE, neutralize, write_results
from campaign_dialer.store import Fate, Journal, iso

from .campaign_files import write_campaign_toml

REPO = Path(__file__).resolve().parents[1]
START = datetime(2026, 6, 9, 17, 0, tzinfo=UTC)  # 13:00 in New York
KEY = "vx_test_reportkey0000000000001"
AGENT = "agt_3d9b21"
SCRIPT_NAME = '<script>alert("name")</script>'
BREAKOUT = "</script><script>alert(2)</script>"
IMG = '"><img src=x onerror=alert(3)>'
FORMULA = '=HYPERLINK("http://evil.example","click")'
AT_FORMULA = "@SUM(A1:A9)"
LINE_SEP = "Dee\u2028& Sons\u2029"
HOSTILE_OUTCOME = "<b onmouseover=alert(5)>qualified</b>"
NOT_CONNECTED = {"no_answer", "busy", "voicemail", "failed", "canceled"}
HELD_PENDING = {"outside_window", "unknown_timezone", "not_planned"}


@dataclass
class Spec:
    phone: str
    cid: str
    name: str
    company: str
    fate: tuple[Any, ...]
    agent: str = AGENT


# (fate, ...) is what the journal records for the row; see `write_campaign`.
ROWS = [
    Spec("+12125550101", "C1", "Ann", "Acme", ("dialed", "completed", "appointment_booked", 120,
                                               "2026-06-09T13:00-04:00", 2)),
    Spec("+12125550102", "C2", SCRIPT_NAME, BREAKOUT,
         ("dialed", "completed", HOSTILE_OUTCOME, 95, "2026-06-09T13:01-04:00", 1)),
    Spec("+12125550103", "C3", IMG, FORMULA,
         ("dialed", "voicemail", "left_voicemail", 30, "2026-06-09T13:02-04:00", 1)),
    Spec("+12125550104", "C4", "Dee", AT_FORMULA,
         ("dialed", "no_answer", None, 0, "2026-06-09T13:03-04:00", 1)),
    Spec("", "", "Blank", "", ("suppressed", "blank_phone")),
    Spec("12345", "C6", "Short", "", ("suppressed", "invalid_phone")),
    Spec("+12125550101", "C7", "Ann again", "", ("suppressed", "duplicate")),
    Spec("+12125550108", "C8", "Listed", "", ("suppressed", "dnc_local")),
    Spec("+12125550109", "C9", "No consent", "", ("suppressed", "no_consent")),
    Spec("+14155550110", "C10", "Early", "", ("pending", "outside_window")),
    Spec("+12125550111", "C11", "Platform DNC", "", ("rejected",)),
    Spec("+12125550112", "C12", "Bad", "", ("error",)),
    Spec("+12125550113", "C13", LINE_SEP, "", ("live",)),
    Spec("+13125550114", "C14", "Two zones", "",
         ("dialed", "completed", "do_not_call", 40,
          "2026-06-09T12:05-05:00 2026-06-09T13:05-04:00", 1)),
]
# What ROWS must produce; asserted literally so that "summary equals results" cannot pass
# by both being empty or both being wrong the same way.
EXPECTED = {"rows": 14, "eligible": 8, "dialed": 5, "connected": 3, "outcomes": 4,
            "rejected": 1, "suppressed": 5, "errors": 1, "pending": 2, "calls_placed": 6}

def report_campaign(folder: Path, name: str) -> Path:
    """The report tests' campaign file in `folder` (contacts.csv beside it)."""
    return write_campaign_toml(folder / "campaign.toml", {
        "campaign": {"name": name, "agent_id": AGENT, "default_region": "US"},
        "api": {"base_url": "http://127.0.0.1:9", "max_live_calls": 5},
        "pacing": {"calls_per_second": 2},
        "inputs": {"contacts": "contacts.csv"},
        "compliance": {"calling_window": ["09:00", "20:00"], "require_consent": False,
                       "dnc_ledger": "out/dnc-ledger.csv"},
    })


def write_campaign(folder: Path, rows: list[Spec] = ROWS, *, name: str = "rpt",
                   finish: bool = True) -> Campaign:
    """A campaign on disk: contacts, a journal written through its API, results.csv."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "contacts.csv", "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["phone", "contact_id", "name", "company"])
        for s in rows:
            w.writerow([s.phone, s.cid, s.name, s.company])
    campaign = load_campaign(report_campaign(folder, name))
    contacts = load_contacts(campaign.contacts_path, default_region="US")
    e164 = contacts.frame["phone_e164"].tolist()
    clock = [START]
    journal = Journal(campaign.journal_path, campaign.name, now=lambda: clock[0])
    run = journal.begin_run()
    fates: list[Fate] = []
    events: list[tuple[Any, ...]] = []
    for i, s in enumerate(rows):
        row = i + 1
        phone = e164[i] if isinstance(e164[i], str) else None
        person = f"tel:{phone}" if phone else None
        kind = s.fate[0]
        at = START + timedelta(seconds=2 * i)
        clock[0] = at
        local = s.fate[4] if kind == "dialed" else "2026-06-09T13:10-04:00"
        ev = {"consent_event_at": "2026-01-02T10:00:00Z", "consent_source": "webform",
              "local_times": local, "zones": "America/New_York",
              "dnc_lists_checked": "dnc.csv, ledger", "dialed_at": iso(at)}
        if kind in ("suppressed", "pending"):
            fates.append(Fate(row, person, kind, s.fate[1], "", None,
                              None if s.fate[1] in ("blank_phone", "invalid_phone") else ev))
            continue
        assert person is not None
        a = journal.record_intent(
            person=person, row=row, attempt=1, idem_key=f"k-{name}-{row}",
            body={"agent_id": s.agent, "phone_number": phone}, evidence=ev, run_id=run,
        )
        t = at.timestamp()
        if kind == "rejected":
            journal.count_post(a.id)
            journal.record_rejected(a.id, http_status=409, error_code="dnc_listed",
                                    error="on the platform's Do-Not-Call list")
            events.append((t, run, "POST", "/v1/calls", 409, "dnc_listed", 0.04, None))
            fates.append(Fate(row, person, "rejected", "dnc_listed", "", None, ev))
            continue
        if kind == "error":
            journal.count_post(a.id)
            # A platform that echoes the key back: the report must not repeat it.
            journal.record_error(a.id, http_status=422, error_code="invalid_request",
                                 error=f"bad request for key {KEY}")
            events.append((t, run, "POST", "/v1/calls", 422, "invalid_request", 0.04, None))
            fates.append(Fate(row, person, "error", "invalid_request",
                              f"bad request for key {KEY}", None, ev))
            continue
        posts = s.fate[5] if kind == "dialed" else 1
        for p in range(posts):
            journal.count_post(a.id)
            if p < posts - 1:
                events.append((t, run, "POST", "/v1/calls", 429, "rate_limited", 0.01, None))
        events.append((t + 0.5, run, "POST", "/v1/calls", 201, None, 0.08, None))
        journal.record_placed(a.id, call_id=f"call_{row}", http_status=201, status="initiated",
                              placed_at=iso(at))
        events.append((t + 2, run, "GET", f"/v1/calls/call_{row}", 200, None, 0.02, None))
        if kind == "live":
            fates.append(Fate(row, person, "pending", "call_live", "", None, ev))
            continue
        _, status, outcome, duration = s.fate[:4]
        journal.record_final(
            a.id, status=status, outcome=outcome, ended_reason=status,
            ended_at=iso(at + timedelta(seconds=10 + duration)), duration_seconds=duration,
            recording_url=None,
        )
        fates.append(Fate(row, person, "dialed", status, "", None, ev))
    events.append((START.timestamp() + 3, run, "GET", "/v1/calls/call_1", 503, None, 0.5, None))
    events.append((START.timestamp() + 4, run, "GET", "/v1/calls/call_1", None, None, 2.0,
                   "ConnectTimeout"))
    journal.set_fates(fates)
    journal.add_http_events(events)
    if finish:
        journal.end_run(run, 75, {"placed": 6})
        journal.set_meta("last_exit_code", "75")
        write_results(contacts, journal, campaign.results_path)
    journal.close()
    return campaign


def csv_figures(path: Path) -> dict[str, int]:
    """The headline figures counted straight from results.csv, by the documented definitions."""
    with open(path, encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    disp = Counter(r["disposition"] for r in rows)
    dialed = [r for r in rows if r["disposition"] == "dialed"]
    held = sum(1 for r in rows if r["disposition"] == "suppressed"
               or (r["disposition"] == "pending" and r["reason"] in HELD_PENDING))
    return {
        "rows": len(rows),
        "eligible": len(rows) - held,
        "dialed": disp["dialed"],
        "connected": sum(1 for r in dialed if r["status"] == "completed"
                         or (r["outcome"] and r["status"] not in NOT_CONNECTED)),
        "outcomes": sum(1 for r in dialed if r["outcome"]),
        "rejected": disp["rejected"],
        "suppressed": disp["suppressed"],
        "errors": disp["error"],
        "pending": disp["pending"],
    }


@pytest.fixture
def campaign(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Campaign:
    monkeypatch.setenv("VANTAX_API_KEY", KEY)
    return write_campaign(tmp_path / "rpt")


@pytest.fixture
def console(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    buf = io.StringIO()
    monkeypatch.setattr(log, "_out", Console(file=buf, width=200, color_system=None))
    return buf


# --------------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------------


def test_summary_numbers_equal_the_results_file(campaign: Campaign) -> None:
    html = report.build(campaign)
    s = json.loads((campaign.output_dir / "summary.json").read_text())
    counted = csv_figures(campaign.results_path)
    assert {k: s["headline"][k] for k in counted} == counted
    assert s["headline"] == EXPECTED
    assert sum(s["by_disposition"].values()) == counted["rows"]
    assert sum(x["rows"] for x in s["by_reason"]) == counted["rows"]
    assert s["suppression_reasons"] == {"blank_phone": 1, "dnc_local": 1, "duplicate": 1,
                                        "invalid_phone": 1, "no_consent": 1}
    assert s["pending_reasons"] == {"call_live": 1, "outside_window": 1}
    assert [f["rows"] for f in s["funnel"]] == [14, 11, 10, 9, 8, 8, 8, 5, 3]
    assert s["statuses"] == {"completed": 3, "no_answer": 1, "voicemail": 1}
    assert s["outcomes"]["(none)"] == 1 and s["outcomes"][HOSTILE_OUTCOME] == 1
    assert s["rejections"] == {"rows": 1, "by_reason": {"dnc_listed": 1},
                               "http_409_by_code": {"dnc_listed": 1}}
    assert s["errors"]["by_reason"] == {"invalid_request": 1}
    assert s["retries"]["resent_posts"] == 1 and s["retries"]["posts_per_attempt"] == {
        "1": 7, "2": 1}
    assert s["http"]["errors_by_code"] == {
        "GET 503": 1, "GET no response ConnectTimeout": 1, "POST 409 dnc_listed": 1,
        "POST 422 invalid_request": 1, "POST 429 rate_limited": 1}
    assert s["durations"]["calls"] == 5 and s["durations"]["max"] == 120
    assert s["evidence"]["dialed_rows"] == 5 and s["evidence"]["with_consent_source"] == 5
    assert s["state"]["label"] == "incomplete" and s["source"] == "results.csv"
    assert html == campaign.output_dir / "report.html"


def test_local_hours_show_each_zone_and_flag_calls_outside_the_window(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VANTAX_API_KEY", KEY)
    s = report.summary(write_campaign(tmp_path / "ok"))
    lh = s["local_hours"]
    # 6 placed calls: 5 at 13:xx New York, the live one at 13:10; C14 also at 12:05 Chicago
    assert lh["by_hour"][13] == 6 and lh["by_hour"][12] == 1 and sum(lh["by_hour"]) == 7
    assert lh["outside_window"] == 0 and lh["calls"] == 6 and lh["with_local_times"] == 6

    late = [*ROWS[:3], Spec("+12125550199", "C99", "Late", "",
                            ("dialed", "completed", None, 10, "2026-06-09T20:30-04:00", 1))]
    lh = report.summary(write_campaign(tmp_path / "late", late, name="late"))["local_hours"]
    assert lh["outside_window"] == 1 and lh["by_hour"][20] == 1


@pytest.mark.parametrize(
    ("text", "minutes"),
    [
        ("2026-06-09T13:00-04:00", [780]),
        ("2026-06-09T13:00-04:00 2026-06-09T12:00-05:00", [780, 720]),
        ("2026-06-09 09:05-04:00, 2026-06-09T08:05-05:00", [545, 485]),
        ("13:45", [825]),
        ("", None),
        ("tomorrow", None),
        ("2026-06-09T25:00-04:00", None),
    ],
)
def test_local_times_are_parsed_defensively(text: str, minutes: list[int] | None) -> None:
    assert report.parse_local_times(text) == minutes


@pytest.mark.parametrize(
    ("disposition", "status", "outcome", "connected"),
    [
        ("dialed", "completed", None, True),
        ("dialed", "completed", "qualified", True),
        ("dialed", "voicemail", "left_voicemail", False),
        ("dialed", "no_answer", None, False),
        ("dialed", "in_progress", "qualified", True),  # an outcome from a status we don't know
        ("dialed", "failed", "qualified", False),
        ("pending", "completed", "qualified", False),  # a redial is due: not dialed (yet)
    ],
)
def test_connected_has_one_definition(
    disposition: str, status: str, outcome: str | None, connected: bool
) -> None:
    df = pd.DataFrame({"disposition": [disposition], "status": [status], "outcome": [outcome]})
    assert bool(report.connected_mask(df).iloc[0]) is connected


def test_terminal_summary_prints_the_same_figures(campaign: Campaign, console: io.StringIO,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert commands.report([campaign.path], text=True) == ExitCode.OK
    out = console.getvalue()
    for key, label in report.TERMINAL_LABELS.items():
        assert re.search(rf"{re.escape(label)}\s*│\s*{EXPECTED[key]}\s", out), (label, out)
    assert "0 outside the 09:00–20:00 window" in out
    assert not (campaign.output_dir / "report.html").exists()  # --text builds nothing

    assert commands.report([campaign.path], as_json=True) == ExitCode.OK
    printed = json.loads(capsys.readouterr().out)
    assert printed["headline"] == EXPECTED


def test_print_summary_after_a_run_uses_the_journal_and_frame(
    campaign: Campaign, console: io.StringIO
) -> None:
    df = report.read_results_csv(campaign.results_path)
    with Journal(campaign.journal_path, campaign.name, create=False) as j:
        report.print_summary(campaign, j, df, exit_code=ExitCode.TEMPFAIL, message="2 left")
    out = console.getvalue()
    assert re.search(r"of which connected\s*│\s*3\s", out)
    assert out.rstrip().endswith("exit=75 (2 left)")


def test_command_without_a_journal_says_run_first(tmp_path: Path, console: io.StringIO) -> None:
    folder = tmp_path / "new"
    folder.mkdir()
    (folder / "contacts.csv").write_text("phone\n+12125550101\n")
    report_campaign(folder, "new")
    with pytest.raises(NotRunYet, match="nothing has run yet") as ei:
        commands.report([folder / "campaign.toml"])
    assert ei.value.exit_code == ExitCode.NOINPUT == 66
    assert not (folder / "out" / "report.html").exists()


def test_command_builds_every_file_and_says_where(campaign: Campaign,
                                                  console: io.StringIO) -> None:
    assert commands.report([campaign.path]) == ExitCode.OK
    out = console.getvalue()
    for name in report.FILES:
        path = campaign.output_dir / name
        assert path.stat().st_size > 0
        assert str(path) in out.replace("\n", "")


# --------------------------------------------------------------------------------------------
# Escaping, secrets, exports
# --------------------------------------------------------------------------------------------


def _rows_json(html: str) -> dict[str, Any]:
    m = re.search(r'<script type="application/json" id="rows-data">(.*?)</script>', html, re.S)
    assert m, "no embedded rows"
    return json.loads(m.group(1))


def test_hostile_contact_data_is_escaped_in_the_page(campaign: Campaign) -> None:
    html = report.build(campaign).read_text(encoding="utf-8")
    assert "<script>alert" not in html and "alert(2)</script>" not in html
    assert "<img" not in html and "<b onmouseover" not in html
    assert "\u2028" not in html and "\u2029" not in html
    # exactly our two script elements: the rows (data) and the table's code
    assert len(re.findall(r"<script\b", html)) == 2
    assert len(re.findall(r"</script>", html)) == 2
    # ...and the data still arrives intact for the table
    data = _rows_json(html)
    cols = data["columns"]
    by_row = {r[cols.index("row")]: dict(zip(cols, r, strict=True)) for r in data["rows"]}
    assert (by_row[2]["name"], by_row[2]["company"], by_row[2]["outcome"]) == (
        SCRIPT_NAME, BREAKOUT, HOSTILE_OUTCOME)
    assert (by_row[3]["name"], by_row[3]["company"]) == (IMG, FORMULA)
    assert by_row[13]["name"] == LINE_SEP
    # the outcome label in the chart is escaped text, not markup
    assert "&lt;b onmouseover=alert(5)&gt;qualified&lt;/b&gt;" in html


def test_embedded_json_cannot_close_its_script() -> None:
    text = report.script_json({"a": BREAKOUT, "b": "<!-- x", "c": "x\u2028y\u2029&"})
    assert "<" not in text and ">" not in text and "&" not in text
    assert "\u2028" not in text and "\u2029" not in text
    assert json.loads(text) == {"a": BREAKOUT, "b": "<!-- x", "c": "x\u2028y\u2029&"}


def test_only_the_hashed_script_may_run(campaign: Campaign) -> None:
    html = report.build(campaign).read_text(encoding="utf-8")
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', html)
    assert csp and "default-src 'none'" in csp.group(1)
    script = re.findall(r"<script>(.*?)</script>", html, re.S)
    assert len(script) == 1
    digest = base64.b64encode(hashlib.sha256(script[0].encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in csp.group(1)
    assert "http://" not in html.replace("http://evil.example", "") and "https://" not in html


def test_the_api_key_never_reaches_an_output(campaign: Campaign, console: io.StringIO,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    campaign.results_path.unlink()  # rebuilt from the journal, whose error text holds the key
    commands.report([campaign.path])
    commands.report([campaign.path], as_json=True)
    outputs = [campaign.output_dir / n for n in (*report.FILES, "results.csv")]
    for path in outputs:
        assert KEY.encode() not in path.read_bytes(), path
    assert KEY not in console.getvalue() and KEY not in capsys.readouterr().out
    parquet = pd.read_parquet(campaign.output_dir / "results.parquet")
    assert parquet.loc[parquet["row"] == 12, "detail"].iloc[0] == "bad request for key [REDACTED]"


def test_csv_export_is_spreadsheet_safe_and_parquet_keeps_raw_values(campaign: Campaign) -> None:
    campaign.results_path.unlink()  # the report writes results.csv itself when it is missing
    report.build(campaign)
    with open(campaign.results_path, encoding="utf-8", newline="") as fh:
        rows = {r["row"]: r for r in csv.DictReader(fh)}
    assert rows["3"]["company"] == "'" + FORMULA
    assert rows["4"]["company"] == "'" + AT_FORMULA
    assert rows["1"]["phone_e164"] == "+12125550101"  # a phone is not a formula
    pq = pd.read_parquet(campaign.output_dir / "results.parquet")
    assert pq.loc[pq["row"] == 3, "company"].iloc[0] == FORMULA
    assert pq.loc[pq["row"] == 4, "company"].iloc[0] == AT_FORMULA
    assert pq.loc[pq["row"] == 2, "name"].iloc[0] == SCRIPT_NAME
    assert pq.loc[pq["row"] == 13, "name"].iloc[0] == LINE_SEP


def test_parquet_round_trips_the_results(campaign: Campaign) -> None:
    report.build(campaign)
    pq = pd.read_parquet(campaign.output_dir / "results.parquet")
    with open(campaign.results_path, encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
        header = list(rows[0])
    assert list(pq.columns) == header
    assert len(pq) == len(rows)
    assert str(pq["row"].dtype) == "int64" and str(pq["attempts"].dtype) == "Int64"
    assert pq["duration_seconds"].dtype == "float64"
    for col in ("disposition", "reason", "status", "outcome", "consent_event_at",
                "consent_source", "local_times", "dnc_lists_checked", "dialed_at"):
        want = [r[col] for r in rows]
        got = ["" if pd.isna(v) else str(v) for v in pq[col]]
        assert got == want, col
    # compliance evidence per dialed row
    dialed = pq[pq["disposition"] == "dialed"]
    assert dialed["consent_event_at"].notna().all() and dialed["dialed_at"].notna().all()
    assert (dialed["dnc_lists_checked"] == "dnc.csv, ledger").all()


def test_reading_results_back_undoes_only_the_formula_guard(tmp_path: Path) -> None:
    path = tmp_path / "results.csv"
    values = [FORMULA, "'" + FORMULA, "'plain", "-12.5", "+12125550101", "-x", "'"]
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["row", "disposition", "reason", "company"])
        for i, v in enumerate(values):
            w.writerow([i + 1, "dialed", "completed", neutralize(v)])
    back = report.read_results_csv(path)["company"].tolist()
    # the one ambiguous case: a raw "'=..." reads back as "=..."
    assert back == [FORMULA, FORMULA, "'plain", "-12.5", "+12125550101", "-x", "'"]


# --------------------------------------------------------------------------------------------
# Fresh, stale and running campaigns
# --------------------------------------------------------------------------------------------


def test_stale_results_are_rebuilt_from_the_journal(campaign: Campaign) -> None:
    with Journal(campaign.journal_path, campaign.name, create=False) as j:
        f = j.fates()[10]  # outside_window, now dialed by a later run (fate only, for brevity)
        j.set_fates([Fate(f.row, f.person, "dialed", "completed", "", None, f.evidence)])
    s = json.loads(report.build(campaign).with_name("summary.json").read_text())
    assert s["headline"]["dialed"] == EXPECTED["dialed"] + 1
    assert s["source"].startswith("journal (results.csv was stale")
    counted = csv_figures(campaign.results_path)  # rewritten: the exports agree again
    assert counted == {k: s["headline"][k] for k in counted}


def test_a_running_campaign_is_reported_without_touching_its_results(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VANTAX_API_KEY", KEY)
    campaign = write_campaign(tmp_path / "live", finish=False)
    # the run is still going: it holds the run lock and its journal stays open in another
    # connection; results not written
    other = Journal(campaign.journal_path, campaign.name, create=False)
    try:
        with campaign_lock(campaign):
            s = json.loads(report.build(campaign).with_name("summary.json").read_text())
        assert not campaign.results_path.exists()  # the run writes it when it ends
        killed = json.loads(report.build(campaign).with_name("summary.json").read_text())
    finally:
        other.close()
    assert s["state"]["running"] and s["state"]["label"] == "running"
    # the same journal without the lock is a run killed mid-way: not running, incomplete
    assert not killed["state"]["running"] and killed["state"]["label"] == "incomplete"
    assert s["headline"] == EXPECTED
    assert s["pending_reasons"]["call_live"] == 1 and s["timeline"]["peak_live"] >= 1


def test_a_runs_own_report_reads_the_results_it_wrote_while_others_still_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process of a shared campaign that ends before the others: its report is of the
    results.csv it has just written (not every row rebuilt from contacts and journal), and
    says so; `report` itself, asked meanwhile, still reads the journal."""
    monkeypatch.setenv("VANTAX_API_KEY", KEY)
    campaign = write_campaign(tmp_path / "shared", finish=False)
    with Journal(campaign.journal_path, campaign.name, create=False) as j:
        write_results(load_contacts(campaign.contacts_path, default_region="US"), j,
                      campaign.results_path)
    other = Journal(campaign.journal_path, campaign.name, create=False)  # still running
    try:
        with campaign_lock(campaign):
            paths, own = report.build_files(campaign, just_written=True)
            asked = report.summary(campaign)
    finally:
        other.close()
    assert own["state"]["running"] and own["source"] == RUN_END_SOURCE
    assert asked["source"].startswith("journal (results.csv")
    assert own["headline"] == asked["headline"] == EXPECTED
    counted = csv_figures(campaign.results_path)
    assert counted == {k: own["headline"][k] for k in counted}
    assert pd.read_parquet(paths["results.parquet"])["row"].tolist() == list(
        range(1, len(ROWS) + 1))


def test_a_runs_own_report_on_sqlite_still_rebuilds_a_file_that_disagrees(
    campaign: Campaign
) -> None:
    """Nobody else writes a SQLite journal: a results.csv that disagrees with it after the
    run is a file to rebuild, its own report or not."""
    with Journal(campaign.journal_path, campaign.name, create=False) as j:
        f = j.fates()[10]
        j.set_fates([Fate(f.row, f.person, "dialed", "completed", "", None, f.evidence)])
    _, s = report.build_files(campaign, just_written=True)
    assert s["source"].startswith("journal (results.csv was stale")
    assert s["headline"]["dialed"] == EXPECTED["dialed"] + 1


# --------------------------------------------------------------------------------------------
# Comparisons
# --------------------------------------------------------------------------------------------


def test_two_campaigns_side_by_side(campaign: Campaign, tmp_path: Path,
                                    console: io.StringIO) -> None:
    other = write_campaign(tmp_path / "b", ROWS[:4], name="small")
    assert commands.report([campaign.path, other.path]) == ExitCode.OK
    path = campaign.output_dir / "compare-rpt-vs-small.html"
    html = path.read_text(encoding="utf-8")
    m = re.search(r'data-metric="dialed"><td>Dialed</td><td class="n">(\d+)</td>'
                  r'<td class="n">(\d+)</td><td class="n">([^<]+)</td>', html)
    assert m and m.groups() == ("5", "4", "-1")
    assert "<script" not in html and "&lt;b onmouseover" in html
    assert re.search(r"Dialed\s*│\s*5\s*│\s*4\s*│\s*-1", console.getvalue())


def test_agents_of_one_campaign_side_by_side(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             console: io.StringIO) -> None:
    monkeypatch.setenv("VANTAX_API_KEY", KEY)
    rows = [Spec(s.phone, s.cid, s.name, s.company, s.fate, agent="agt_b" if i % 2 else AGENT)
            for i, s in enumerate(ROWS)]
    campaign = write_campaign(tmp_path / "split", rows, name="split")
    s = report.summary(campaign)
    agents = {a["agent_id"]: a["headline"] for a in s["agents"]}
    assert set(agents) == {AGENT, "agt_b"}
    for key in ("dialed", "connected", "rejected", "errors", "calls_placed"):
        assert sum(a[key] for a in agents.values()) == s["headline"][key], key
    assert agents[AGENT]["dialed"] == 2 and agents["agt_b"]["dialed"] == 3
    assert commands.report([campaign.path, campaign.path]) == ExitCode.OK
    assert (campaign.output_dir / "compare-split-agents.html").exists()
    html = report.build(campaign).read_text(encoding="utf-8")
    assert 'id="agents"' in html


def test_one_agent_cannot_be_compared_with_itself(campaign: Campaign) -> None:
    with pytest.raises(report.CompareError, match="not split between agents"):
        report.compare(campaign, None)


# --------------------------------------------------------------------------------------------
# The benchmark's synthetic campaign (kept working by building a small one)
# --------------------------------------------------------------------------------------------


def _bench_module() -> Any:
    spec = importlib.util.spec_from_file_location("bench_report", REPO / "scripts" /
                                                  "bench_report.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_bench_campaign_report_agrees_with_its_results(tmp_path: Path) -> None:
    path = _bench_module().synthesize(tmp_path / "bench", 2000, seed=3)
    campaign = load_campaign(path)
    html = report.build(campaign)
    s = json.loads(html.with_name("summary.json").read_text())
    counted = csv_figures(campaign.results_path)
    assert {k: s["headline"][k] for k in counted} == counted
    assert counted["dialed"] > 1000 and counted["suppressed"] > 100
    assert s["local_hours"]["outside_window"] == 0
    assert s["timeline"]["peak_requests_in_1s"] <= 5  # the bench spaces calls at 5/s
    rows_in_page = len(_rows_json(html.read_text(encoding="utf-8"))["rows"])
    assert rows_in_page == 2000


def test_the_page_embeds_at_most_the_capped_rows(campaign: Campaign) -> None:
    df = report.read_results_csv(campaign.results_path)
    data = report.table_data(df, cap=5)
    assert len(data["rows"]) == 5 and data["total"] == 14


# --------------------------------------------------------------------------------------------
# Above the page threshold: the rows a person must see and a sample (issue #25)
# --------------------------------------------------------------------------------------------


# The must-see rule as the page states it, written out again here from results.csv's words.
MUST_SEE_HELD = {"unresolved", "call_live", "dnc_flag", "dnc_local", "consent_revoked",
                 "dnc_listed", "blank_phone", "invalid_phone", "no_phone_number",
                 "number_reassigned", "no_consent", "consent_expired", "reassigned_unchecked",
                 "unknown_timezone", "caller_ids_exhausted", "budget_reached", "dnc_list_stale"}
OPT_OUTS = {"opt_out", "do_not_call", "dnc_requested", "customer_requested_dnc"}


def must_see_rows(results: Path) -> set[int]:
    with open(results, encoding="utf-8", newline="") as fh:
        return {int(r["row"]) for r in csv.DictReader(fh)
                if r["disposition"] in ("error", "rejected")
                or (r["disposition"] in ("suppressed", "pending") and r["reason"] in MUST_SEE_HELD)
                or OPT_OUTS & {r["outcome"], r["ended_reason"], r["status"]}}


def _page_figures(html: str, attr: str) -> dict[str, int]:
    found = re.findall(rf'data-{attr}="(\w+)"[^>]*><span class="v">([\d,]+)</span>', html)
    return {k: int(v.replace(",", "")) for k, v in found}


def _lower_threshold(monkeypatch: pytest.MonkeyPatch, threshold: int, sample: int) -> None:
    from campaign_dialer.report import rows

    monkeypatch.setattr(rows, "PAGE_ALL_ROWS_MAX", threshold)
    monkeypatch.setattr(rows, "SAMPLE_ROWS", sample)


def test_a_report_over_the_threshold_holds_the_must_see_rows_and_a_sample(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    campaign = load_campaign(_bench_module().synthesize(tmp_path / "big", 2000, seed=7))
    _lower_threshold(monkeypatch, 500, 150)
    html = report.build(campaign).read_text(encoding="utf-8")
    table = _rows_json(html)
    cols = table["columns"]
    assert cols[0] == "why_shown" and table["total"] == 2000
    page = {r[cols.index("row")]: r[0] for r in table["rows"]}
    must = must_see_rows(campaign.results_path)
    assert 300 < len(must) < 1000  # errors, 409s, DNC, consent, bad numbers, opt-out calls
    assert {r for r, why in page.items() if why == "needs attention"} == must
    assert sum(1 for why in page.values() if why == "sample") == 150
    assert len(page) == len(table["rows"]) == len(must) + 150  # bounded, no row twice
    rows_in_order = [r[cols.index("row")] for r in table["rows"]]
    assert rows_in_order == sorted(rows_in_order)
    # the page says what it holds and where the rest is
    notice = re.search(r'<div class="card" id="rows-notice"(.*?)</div>', html, re.S)
    assert notice, "no notice"
    text = notice.group(0)
    assert f'data-shown="{len(page)}" data-total="2000" data-must-see="{len(must)}"' in text
    assert f"This page shows {len(page):,} of the 2,000 rows" in text
    assert 'href="results.csv"' in text and 'href="results.parquet"' in text
    assert "no_consent" in text and "invalid_phone" in text and "dnc_local" in text
    # every figure is still computed from all rows
    counted = csv_figures(campaign.results_path)
    assert {k: _page_figures(html, "kpi")[k] for k in counted} == counted
    tiles = _page_figures(html, "tile")
    assert tiles["rows"] == 2000 and tiles["dialed"] == counted["dialed"]
    s = json.loads((campaign.output_dir / "summary.json").read_text())
    assert {k: s["headline"][k] for k in counted} == counted
    assert len(pd.read_parquet(campaign.output_dir / "results.parquet")) == 2000
    # the same results give the same page
    assert _rows_json(report.build(campaign).read_text(encoding="utf-8")) == table


def test_a_page_of_long_rows_over_the_threshold_shrinks_its_selection_to_fit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Above the threshold the page has a byte limit whatever the rows hold: here long notes
    in many columns; the selection shrinks, the page says so, the figures still count every
    row."""
    from campaign_dialer.report import html as page_html
    from campaign_dialer.results import read_results_csv, safe_for_spreadsheets, write_atomic_csv

    campaign = load_campaign(_bench_module().synthesize(tmp_path / "long", 2000, seed=3))
    df = read_results_csv(campaign.results_path)
    for i in range(12):  # long notes, non-ASCII and characters JSON escapes included
        df[f"note_{i}"] = [f"<note {r}> " + "é€ & " * 80 for r in df["row"]]
    write_atomic_csv(safe_for_spreadsheets(df), campaign.results_path)
    _lower_threshold(monkeypatch, 500, 150)
    unbounded = report.build(campaign).read_text(encoding="utf-8")
    size = len(unbounded.encode("utf-8"))
    limit = size // 3
    monkeypatch.setattr(page_html, "PAGE_BYTES_MAX", limit)
    html = report.build(campaign).read_text(encoding="utf-8")
    assert len(html.encode("utf-8")) <= limit
    table = _rows_json(html)
    assert 0 < len(table["rows"]) < len(_rows_json(unbounded)["rows"]) / 2
    assert table["total"] == 2000 and "note_11" in table["columns"]
    notice = re.search(r'<div class="card" id="rows-notice"(.*?)</div>', html, re.S)
    assert notice and f'data-bytes-max="{limit}"' in notice.group(0)
    assert f"This page shows {len(table['rows']):,} of the 2,000 rows" in notice.group(0)
    assert 'href="results.csv"' in notice.group(0)
    counted = csv_figures(campaign.results_path)
    assert {k: _page_figures(html, "kpi")[k] for k in counted} == counted
    assert "rows-fitted" not in unbounded


def test_at_the_threshold_every_row_stays_and_the_page_is_as_before(
    campaign: Campaign, monkeypatch: pytest.MonkeyPatch
) -> None:
    _lower_threshold(monkeypatch, 14, 3)  # the campaign has 14 rows
    html = report.build(campaign).read_text(encoding="utf-8")
    df = report.load(campaign).df
    before = report.table_data(df, None, zone=report.display_zone(campaign))
    assert _rows_json(html) == json.loads(report.script_json(before))
    assert "rows-notice" not in html and "why_shown" not in html
    assert "Every row of the contacts file" in html
    _lower_threshold(monkeypatch, 13, 3)
    table = _rows_json(report.build(campaign).read_text(encoding="utf-8"))
    assert len(table["rows"]) == len(must_see_rows(campaign.results_path)) + 3


def test_too_many_must_see_rows_keep_every_small_kind_whole() -> None:
    from campaign_dialer.report.rows import select_rows

    kinds = (["error"] * 40 + ["rejected"] * 300 + ["suppressed:no_consent"] * 5000
             + ["suppressed:dnc_local"] * 3000 + ["dialed"] * 8000
             + ["pending:outside_window"] * 900)
    random.Random(4).shuffle(kinds)
    df = pd.DataFrame({
        "row": range(1, len(kinds) + 1),
        "disposition": [k.split(":")[0] for k in kinds],
        "reason": [k.split(":")[1] if ":" in k else "invalid_request" if k == "error"
                   else "dnc_listed" if k == "rejected" else "completed" for k in kinds],
    })
    sel = select_rows(df, threshold=1000, must_see_max=1000, sample_rows=200)
    assert sel.reduced and sel.must_see == 8340 and sel.must_see_shown == 1000
    assert sel.kinds == {"suppressed: no_consent": [330, 5000],
                         "suppressed: dnc_local": [330, 3000],
                         "rejected (409): dnc_listed": [300, 300],
                         "error: invalid_request": [40, 40]}
    shown = df.iloc[sel.positions]
    assert (shown["disposition"] == "error").sum() == 40
    assert sel.sampled == 200 and len(shown) == 1200 and shown["row"].is_unique
    assert set(shown["disposition"][[w == "sample" for w in sel.labels]]) <= {"dialed", "pending"}


@given(st.dictionaries(st.sampled_from("abcdefg"), st.integers(0, 500), min_size=1),
       st.integers(0, 2000))
def testfair_shares_fill_the_budget_small_kinds_first(counts: dict[str, int],
                                                      budget: int) -> None:
    from campaign_dialer.report.rows import fair_shares

    shares = fair_shares(counts, budget)
    assert sum(shares.values()) == min(budget, sum(counts.values()))
    assert all(0 <= shares[k] <= counts[k] for k in counts)
    for k in counts:  # a kind cut short has at least as many as any other kind
        if shares[k] < counts[k]:
            assert all(shares[k] >= shares[j] - 1 for j in counts)


# --------------------------------------------------------------------------------------------
# Headless Chromium, driven over the DevTools protocol (stdlib only)
# --------------------------------------------------------------------------------------------


CHROMIUM = Path("/usr/bin/chromium")  # Debian's package, as .ci/run installs it


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None and CHROMIUM.exists():
        path = str(CHROMIUM)
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is not installed (CI installs it in .ci/run)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return path


def test_missing_chromium_skips_here_but_fails_in_ci(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setattr(sys.modules[__name__], "CHROMIUM", tmp_path / "no-chromium")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception):
        _chromium()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="not installed"):
        _chromium()


class _WebSocket:
    """Just enough RFC 6455 for the DevTools protocol: text frames, client masking."""

    def __init__(self, url: str, timeout: float) -> None:
        m = re.match(r"ws://([^:/]+):(\d+)(/.*)", url)
        assert m, url
        self.sock = socket.create_connection((m.group(1), int(m.group(2))), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            f"GET {m.group(3)} HTTP/1.1\r\nHost: {m.group(1)}:{m.group(2)}\r\n"
            f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(1)
            assert chunk, "DevTools closed the connection during the handshake"
            head += chunk
        assert head.startswith(b"HTTP/1.1 101"), head

    def _exact(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("DevTools closed the connection")
            buf += chunk
        return buf

    def send(self, text: str) -> None:
        data = text.encode()
        n = len(data)
        head = bytes([0x81])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 1 << 16:
            head += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack(">Q", n)
        mask = os.urandom(4)
        self.sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def recv(self) -> str:
        parts = b""
        while True:
            b0, b1 = self._exact(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._exact(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._exact(8))[0]
            mask = self._exact(4) if b1 & 0x80 else b""
            payload = self._exact(n)
            if mask:
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            opcode = b0 & 0x0F
            if opcode == 8:
                raise ConnectionError("DevTools closed the connection")
            if opcode in (9, 10):  # ping / pong: not used by DevTools
                continue
            parts += payload
            if b0 & 0x80:
                return parts.decode()

    def close(self) -> None:
        self.sock.close()


@dataclass
class Browser:
    """One headless Chromium page; console errors, exceptions and CSP reports collected."""

    proc: subprocess.Popen[bytes]
    ws: _WebSocket
    errors: list[str] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    _next: int = 0

    def call(self, method: str, params: dict[str, Any] | None = None,
             timeout: float = 60.0) -> dict[str, Any]:
        self._next += 1
        mid = self._next
        self.ws.send(json.dumps({"id": mid, "method": method, "params": params or {}}))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == mid:
                if "error" in msg:
                    raise AssertionError(f"{method}: {msg['error']}")
                return dict(msg.get("result", {}))
            self._event(msg)
        raise AssertionError(f"no answer to {method}")

    def _event(self, msg: dict[str, Any]) -> None:
        self.events.append(msg)
        method, p = msg.get("method"), msg.get("params", {})
        if method == "Runtime.exceptionThrown":
            d = p["exceptionDetails"]
            self.errors.append(d.get("exception", {}).get("description") or d.get("text", ""))
        elif method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            self.errors.append(" ".join(str(a.get("value", a.get("description")))
                                        for a in p.get("args", [])))
        elif method == "Log.entryAdded" and p["entry"].get("level") == "error":
            self.errors.append(f"{p['entry'].get('source')}: {p['entry'].get('text')}")

    def wait_for(self, method: str, *, since: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(e.get("method") == method for e in self.events[since:]):
                return
            msg = json.loads(self.ws.recv())
            if "id" not in msg:
                self._event(msg)
                if msg.get("method") == method:
                    return
        raise AssertionError(f"{method} did not come")

    def js(self, expression: str) -> Any:
        r = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                           "awaitPromise": True})
        if "exceptionDetails" in r:
            raise AssertionError(f"{expression}: {r['exceptionDetails']}")
        return r["result"].get("value")

    def open(self, path: Path) -> None:
        mark = len(self.events)
        self.call("Page.navigate", {"url": path.resolve().as_uri()})
        self.wait_for("Page.loadEventFired", since=mark)
        self.js("new Promise(r => setTimeout(r, 200))")  # late console messages, if any

    def screenshot(self, path: Path) -> None:
        r = self.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
        path.write_bytes(base64.b64decode(r["data"]))


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    exe = _chromium()
    profile = tmp_path / "chromium-profile"
    log_path = tmp_path / "chromium.log"
    with open(log_path, "wb") as err:
        proc = subprocess.Popen(
            [exe, "--headless", "--no-sandbox", "--disable-gpu",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--no-first-run", "--no-default-browser-check", f"--user-data-dir={profile}",
             "--remote-debugging-port=0", "--window-size=1280,2000", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=err,
        )
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (port_file.exists() and port_file.read_text().strip()):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("chromium did not start:\n" + log_path.read_text()[-3000:])
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        pages: list[dict[str, Any]] = []
        while not pages:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=30) as r:
                pages = [t for t in json.load(r) if t.get("type") == "page"]
            if not pages:
                time.sleep(0.1)
        b = Browser(proc, _WebSocket(pages[0]["webSocketDebuggerUrl"], timeout=60))
        for domain in ("Runtime", "Log", "Page"):
            b.call(f"{domain}.enable")
        b.call("Emulation.setDeviceMetricsOverride",
               {"width": 1280, "height": 2000, "deviceScaleFactor": 1, "mobile": False})
        yield b
        b.ws.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


PAGE = 500  # rows the page's table draws before "show every match"
KPIS_JS = """JSON.stringify(Object.fromEntries(Array.from(document.querySelectorAll('[data-kpi]'))
  .map(e => [e.dataset.kpi, e.querySelector('.v').textContent])))"""


def check_report_in_browser(
    browser: Browser, campaign: Campaign, shot: Path, *, charts: int = 8
) -> dict[str, int]:
    """Open the report; no console error; headline = results file; table filters work."""
    html = campaign.output_dir / "report.html"
    browser.open(html)
    assert browser.js("document.documentElement.getAttribute('data-table')") == "ready"
    kpis = {k: int(v.replace(",", "")) for k, v in json.loads(browser.js(KPIS_JS)).items()}
    counted = csv_figures(campaign.results_path)
    assert {k: kpis[k] for k in counted} == counted
    summary = json.loads((campaign.output_dir / "summary.json").read_text())
    assert kpis == summary["headline"]
    table = _rows_json(html.read_text(encoding="utf-8"))
    shown = len(table["rows"])  # every row, or above the threshold the page's selection
    if not table["columns"][0] == "why_shown":
        assert shown == counted["rows"]
    drawn = "document.getElementById('rows-body').rows.length"
    matches = "Number(document.getElementById('rows-body').dataset.matches)"
    assert browser.js(matches) == shown and browser.js(drawn) == min(shown, PAGE)
    fates = [r[table["columns"].index("disposition")] for r in table["rows"]]
    pick = "dialed" if "dialed" in fates else fates[0]
    browser.js(f"""(() => {{ const s = document.getElementById('f-disposition');
        s.value = '{pick}'; s.dispatchEvent(new Event('change')); }})()""")
    assert browser.js("document.getElementById('f-disposition').value") == pick
    assert browser.js(matches) == fates.count(pick)
    assert browser.js(drawn) == min(fates.count(pick), PAGE)
    if fates.count(pick) > PAGE:
        browser.js("document.getElementById('rows-more').click()")
        assert browser.js(drawn) == fates.count(pick)
    assert browser.js("document.querySelectorAll('svg.chart').length") >= charts
    browser.screenshot(shot)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert browser.errors == []
    return kpis


def test_report_renders_in_chromium_without_errors(browser: Browser, campaign: Campaign,
                                                   tmp_path: Path) -> None:
    report.build(campaign)
    kpis = check_report_in_browser(browser, campaign, tmp_path / "report.png")
    assert kpis == EXPECTED
    # hostile names were shown as text, never run
    assert browser.js("typeof window.alert === 'function' && !document.querySelector('img')")
    cells = browser.js("Array.from(document.querySelectorAll('#rows-body td'))"
                       ".map(td => td.textContent).join('|')")
    assert HOSTILE_OUTCOME in cells


def test_the_browser_check_does_see_console_errors(browser: Browser, tmp_path: Path) -> None:
    """A clean run of the test above means something only if errors would be caught."""
    page = tmp_path / "broken.html"
    page.write_text(
        "<!DOCTYPE html><meta http-equiv=\"Content-Security-Policy\" content=\"default-src "
        "'none'; script-src 'sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA='\">"
        "<link rel=icon href=\"data:,\"><p>x</p><script>console.log('blocked')</script>",
        encoding="utf-8",
    )
    browser.open(page)
    assert any("Content Security Policy" in e for e in browser.errors), browser.events[-5:]
    browser.errors.clear()
    page.write_text("<!DOCTYPE html><link rel=icon href=\"data:,\"><script>"
                    "console.error('boom'); undefinedFunction();</script>", encoding="utf-8")
    browser.open(page)
    assert any("boom" in e for e in browser.errors)
    assert any("undefinedFunction" in e for e in browser.errors)


def test_a_larger_report_pages_its_table(browser: Browser, tmp_path: Path) -> None:
    """More rows than the table draws at once: the rest come on request, no error."""
    path = _bench_module().synthesize(tmp_path / "bench", 1500, seed=5)
    campaign = load_campaign(path)
    report.build(campaign)
    kpis = check_report_in_browser(browser, campaign, tmp_path / "bench.png")
    assert kpis["dialed"] > PAGE  # so the dialed filter had to page


def test_a_page_over_the_threshold_renders_with_its_notice(
    browser: Browser, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Above the threshold: the selection's table works (filters, the "why shown" filter), the
    figures are still every row's, no script error."""
    path = _bench_module().synthesize(tmp_path / "bench", 1500, seed=5)
    campaign = load_campaign(path)
    _lower_threshold(monkeypatch, 1000, 600)
    report.build(campaign)
    kpis = check_report_in_browser(browser, campaign, tmp_path / "reduced.png")
    assert kpis["rows"] == 1500
    table = _rows_json((campaign.output_dir / "report.html").read_text(encoding="utf-8"))
    assert browser.js("document.getElementById('rows-notice').dataset.total") == "1500"
    browser.js("""(() => { document.getElementById('f-disposition').value = '';
        const s = document.getElementById('f-why_shown');
        s.value = 'needs attention'; s.dispatchEvent(new Event('change')); })()""")
    matches = "Number(document.getElementById('rows-body').dataset.matches)"
    assert browser.js(matches) == len(must_see_rows(campaign.results_path))
    assert browser.js(matches) == sum(1 for r in table["rows"] if r[0] == "needs attention")
    assert browser.errors == []


TILES_JS = """JSON.stringify(Object.fromEntries(Array.from(document.querySelectorAll(
  '[data-tile]')).map(e => [e.dataset.tile, e.querySelector('.v').textContent])))"""


@pytest.mark.slow
def test_a_100k_row_campaign_page_renders_in_chromium_with_tiles_from_results_csv(
    browser: Browser, tmp_path: Path
) -> None:
    """Issue #25: a 100,000-row campaign (its journal and results written directly, no call
    dialed) keeps every row in its page; Chromium opens it without an error and the tiles it
    shows are results.csv's rows counted by their definitions."""
    rows = 100_000
    campaign = load_campaign(_bench_module().synthesize(tmp_path / "big", rows, seed=11))
    html = report.build(campaign)
    browser.open(html)
    assert browser.js("document.documentElement.getAttribute('data-table')") == "ready"
    matches = "Number(document.getElementById('rows-body').dataset.matches)"
    assert browser.js(matches) == rows  # every row is in the page
    kpis = {k: int(v.replace(",", "")) for k, v in json.loads(browser.js(KPIS_JS)).items()}
    counted = csv_figures(campaign.results_path)
    assert {k: kpis[k] for k in counted} == counted
    tiles = {k: v.replace(",", "") for k, v in json.loads(browser.js(TILES_JS)).items()}
    success = set(campaign.model.report.success_outcomes)
    with open(campaign.results_path, encoding="utf-8", newline="") as fh:
        dialed = [r for r in csv.DictReader(fh) if r["disposition"] == "dialed"]
    conversions = sum(1 for r in dialed if r["outcome"] in success)
    assert {k: int(tiles[k]) for k in ("rows", "dialed", "reached", "conversions")} == {
        "rows": rows, "dialed": counted["dialed"], "reached": counted["connected"],
        "conversions": conversions}
    assert 0 < conversions < counted["connected"] < counted["dialed"] < rows
    assert browser.errors == []


def test_a_report_with_nothing_yet_renders_too(browser: Browser, tmp_path: Path) -> None:
    """Paused before its first run: empty charts and table, still no script error."""
    folder = tmp_path / "empty"
    folder.mkdir()
    (folder / "contacts.csv").write_text("phone,name\n+12125550101,A\n+12125550102,B\n")
    campaign = load_campaign(report_campaign(folder, "empty"))
    with Journal(campaign.journal_path, campaign.name) as j:
        j.set_control("paused")
    report.build(campaign)
    kpis = check_report_in_browser(browser, campaign, tmp_path / "empty.png", charts=3)
    assert kpis["rows"] == 2 and kpis["pending"] == 2 and kpis["calls_placed"] == 0
    assert browser.js("document.getElementById('state').textContent") == "paused"


@pytest.mark.e2e
@pytest.mark.slow
def test_demo_campaign_report_renders_in_chromium(browser: Browser, tmp_path: Path) -> None:
    """`campaign-dialer demo` end to end in a copy, then its report in the browser."""
    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAMPAIGN_DIALER_")}
    proc = subprocess.run(
        [sys.executable, "-m", "campaign_dialer.cli", "--log-json", "demo", "--out", "demo"],
        cwd=work, env=env, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    campaign = load_campaign(work / "demo" / "campaign.toml")
    assert campaign.output_dir.is_relative_to(work)
    assert (campaign.output_dir / "report.html").exists()  # built by the demo itself
    shot = Path(os.environ.get("REPORT_SCREENSHOT", tmp_path / "demo-report.png"))
    kpis = check_report_in_browser(browser, campaign, shot)
    assert kpis["dialed"] > 0 and kpis["suppressed"] > 0
    s = json.loads((campaign.output_dir / "summary.json").read_text())
    assert s["local_hours"]["outside_window"] == 0
    assert s["headline"]["rows"] == len(pd.read_csv(campaign.contacts_path, dtype=str))
    check_sales_view_in_browser(browser, campaign)


TILES_JS = """JSON.stringify(Object.fromEntries(Array.from(document.querySelectorAll('[data-tile]'))
  .map(e => [e.dataset.tile, e.querySelector('.v').textContent])))"""
HEAT_JS = """JSON.stringify(Array.from(document.querySelectorAll('#heatmap td'))
  .map(td => [Number(td.dataset.day), Number(td.dataset.hour), Number(td.dataset.dialed),
              td.title]))"""
AGENTS_JS = """JSON.stringify(Array.from(document.querySelectorAll('#agents-ab tr[data-agent]'))
  .map(tr => [tr.dataset.agent, tr.querySelector('td.ci').textContent,
              Number(tr.querySelector('td.ci').dataset.lo),
              Number(tr.querySelector('td.ci').dataset.hi)]))"""


def check_sales_view_in_browser(browser: Browser, campaign: Campaign) -> None:
    """Tiles, heatmap and agents as the page shows them, against results.csv counted here."""
    with open(campaign.results_path, encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    success = set(campaign.model.report.success_outcomes)
    dialed = [r for r in rows if r["disposition"] == "dialed"]
    reached = [r for r in dialed if r["status"] == "completed"
               or (r["outcome"] and r["status"] not in NOT_CONNECTED)]
    won = [r for r in dialed if r["outcome"] in success]
    tiles = json.loads(browser.js(TILES_JS))
    num = lambda k: int(tiles[k].replace(",", ""))  # noqa: E731
    assert (num("rows"), num("dialed"), num("reached"), num("conversions")) == (
        len(rows), len(dialed), len(reached), len(won))
    assert tiles["answer_rate"] == f"{100 * len(reached) / len(dialed):.1f}%"
    assert tiles["conversion_rate"] == f"{100 * len(won) / len(dialed):.1f}%"
    # the heatmap: every dialed row once, in its local weekday and hour at dialing
    want: Counter[tuple[int, int]] = Counter()
    for r in dialed:
        first = r["local_times"].split()[0]
        local = datetime.fromisoformat(first)
        want[(local.weekday(), local.hour)] += 1
    cells = json.loads(browser.js(HEAT_JS))
    assert len(cells) == 7 * 24
    assert sum(c[2] for c in cells) == len(dialed)
    assert {(d, h): n for d, h, n, _ in cells if n} == dict(want)
    assert all(f"{n} dialed" in title for _, _, n, title in cells if n)
    # both agents, each with its conversion rate's 95% interval, and the test's verdict
    agents = json.loads(browser.js(AGENTS_JS))
    assert {a[0] for a in agents} == {x for x, _ in campaign.model.campaign.agents}
    by_agent = Counter(r["agent_id"] for r in dialed)
    won_by = Counter(r["agent_id"] for r in won)
    for agent, text, lo, hi in agents:
        rate = won_by[agent] / by_agent[agent]
        assert lo <= rate <= hi and "%" in text and "–" in text
    verdict = browser.js("document.getElementById('ab-verdict').textContent")
    assert "significant" in verdict
    # filters and the CSV export cover every row; a formula cell is neutralised there
    browser.js("""document.querySelectorAll('#filters select').forEach(s => {
        s.value = ''; s.dispatchEvent(new Event('change')); })""")
    browser.js("""(() => { const s = document.getElementById('f-outcome');
        s.value = 'appointment_booked'; s.dispatchEvent(new Event('change')); })()""")
    booked = sum(1 for r in rows if r["outcome"] == "appointment_booked")
    assert browser.js("Number(document.getElementById('rows-body').dataset.matches)") == booked
    out = browser.js("window.reportRowsCsv()")
    assert len(list(csv.reader(io.StringIO(out)))) == booked + 1
    browser.js("""document.querySelectorAll('#filters select').forEach(s => {
        s.value = ''; s.dispatchEvent(new Event('change')); })""")
    every = list(csv.DictReader(io.StringIO(browser.js("window.reportRowsCsv()"))))
    assert len(every) == len(rows)
    assert not any(v.startswith("=") for r in every for v in r.values() if v)
    assert all(r["phone_e164"] == x["phone_e164"] for r, x in zip(every, rows, strict=True))
    assert browser.errors == []


def _figures_of(rows: list[tuple[str, str]]) -> dict[str, Any]:
    """`report.figures` of rows given as (disposition, reason), no call placed."""
    df = pd.DataFrame({
        "disposition": [d for d, _ in rows], "reason": [r for _, r in rows],
        "status": [None] * len(rows), "outcome": [None] * len(rows),
    }, dtype="string")
    return report.figures(df, pd.DataFrame({"placed_at": pd.Series([], dtype="string")}))


def test_the_funnel_adds_up_with_every_reason_of_the_vocabulary() -> None:
    """Every row the checks held back leaves the funnel at one stage, so its last check
    stage is the eligible count (rows with only a contact id, `no_phone_number`, included)."""
    from campaign_dialer import vocab

    held = [*vocab.CONTACT_REASONS, *vocab.DNC_REASONS, *vocab.CONSENT_REASONS,
            *vocab.WINDOW_REASONS, *vocab.HISTORY_REASONS]
    rows = [("suppressed", r) for r in held if r not in vocab.HELD_PENDING_REASONS]
    rows += [("pending", r) for r in held if r in vocab.HELD_PENDING_REASONS]
    rows += [("dialed", "completed"), ("pending", "redial_scheduled")]
    figs = _figures_of(rows)
    stages = {f["stage"]: f["rows"] for f in figs["funnel"]}
    assert figs["headline"]["eligible"] == 2
    assert stages["not_recent"] == stages["eligible"] == 2
    assert stages["rows"] - stages["valid"] == len(vocab.CONTACT_REASONS) - 1  # dnc_flag: DNC
    assert "not_canceled" not in stages  # no row the run held back: the stage is not shown


def test_the_funnel_adds_up_for_a_canceled_campaigns_rows() -> None:
    """A canceled campaign's unfinished rows (suppressed, campaign_canceled) and rows never
    planned pass every check stage, yet are not eligible: a stage of their own takes them
    out, so the last stage before "eligible" equals it."""
    rows = [("suppressed", "campaign_canceled")] * 3 + [("pending", "not_planned")]
    rows += [("suppressed", "dnc_local"), ("dialed", "completed"), ("pending", "redial_scheduled")]
    figs = _figures_of(rows)
    funnel = [(f["stage"], f["rows"]) for f in figs["funnel"]]
    assert figs["headline"]["eligible"] == 2
    assert funnel[:8] == [("rows", 7), ("valid", 7), ("not_dnc", 6), ("consent", 6),
                          ("window", 6), ("not_recent", 6), ("not_canceled", 2),
                          ("eligible", 2)]
