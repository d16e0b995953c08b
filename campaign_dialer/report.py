"""Post-campaign reporting, read from the journal and the results (never from memory).

One `summary` dict feeds the HTML page, summary.json and the terminal, so the three cannot
disagree. Row figures come from the results (results.csv when it agrees with the journal,
else rebuilt from the journal); call figures (timeline, local hours, retries, HTTP) come from
the journal's attempts and HTTP events. The page is one offline file: charts are inline SVG
drawn here, the only script is inline and pinned by hash in its Content-Security-Policy.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import json
import math
import os
import re
import tempfile
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from campaign_dialer import log
from campaign_dialer.config import KEY_PATTERN, Campaign, load_campaign
from campaign_dialer.errors import DialerError, NotRunYet
from campaign_dialer.exitcodes import ExitCode

SCHEMA_VERSION = 1
DISPOSITIONS = ("dialed", "rejected", "suppressed", "error", "pending")
# A call that ended in one of these reached no one in person, whatever outcome it carries.
NOT_CONNECTED_STATUSES = frozenset({"no_answer", "busy", "voicemail", "failed", "canceled"})
CONTACT_REASONS = ("blank_phone", "invalid_phone", "duplicate")
DNC_REASONS = ("dnc_local",)
CONSENT_REASONS = (
    "no_consent", "consent_revoked", "consent_expired", "number_reassigned", "reassigned_unchecked",
)
WINDOW_REASONS = ("outside_window", "unknown_timezone")
# Held back by the contact history: another campaign called them, or a state's cap is used up.
HISTORY_REASONS = ("recently_called",)
# Pending rows that the gate has not let through (yet); every other pending row is eligible.
HELD_PENDING_REASONS = (*WINDOW_REASONS, *HISTORY_REASONS, "not_planned")
FEDERAL_WINDOW_MIN = (8 * 60, 21 * 60)
TABLE_ROW_CAP = 5000
TABLE_INPUT_COLUMNS = 4  # the input's own columns shown (names help find a row); all in exports
TABLE_COLUMNS = (
    "row", "contact_id", "phone_e164", "phone_raw", "disposition", "reason", "status", "outcome",
    "duration_seconds", "attempts", "placed_at", "consent_event_at", "consent_source",
    "local_times", "dnc_lists_checked", "rnd_queried_at", "detail",
)
NUMERIC_COLUMNS = {"row": "int64", "http_status": "Int64", "attempts": "Int64",
                   "duration_seconds": "float64"}
DEFINITIONS = {
    "rows": "data rows of the contacts file",
    "eligible": "rows the contacts, DNC, consent and calling-window checks let through "
                "(dialed, rejected by the platform, errored, or still waiting for a call)",
    "dialed": "rows whose call reached a final status",
    "connected": "dialed rows whose call completed, or that carry an outcome while their "
                 "status is not no_answer, busy, voicemail, failed or canceled",
    "outcomes": "dialed rows with an outcome recorded",
    "rejected": "rows the platform refused with 409 (its Do-Not-Call list)",
    "suppressed": "rows held back for good (bad or duplicate number, DNC, no consent, unknown "
                  "time zone, campaign canceled)",
    "errors": "rows whose call request failed for good",
    "pending": "rows left for a later run (window closed, redial due, call live, unresolved)",
    "calls_placed": "calls the platform accepted, redials included",
}
HEADLINE_LABELS = {
    "rows": "Rows", "eligible": "Eligible", "dialed": "Dialed", "connected": "Connected",
    "outcomes": "Outcomes", "rejected": "Rejected (409)", "suppressed": "Suppressed",
    "errors": "Errors", "pending": "Pending", "calls_placed": "Calls placed",
}
# On the terminal, connected and outcomes read as two parts of "dialed", not one of the other.
TERMINAL_LABELS = {**HEADLINE_LABELS, "connected": "  of which connected",
                   "outcomes": "  of which with an outcome"}
COLORS = {"dialed": "#2e7d32", "rejected": "#ef6c00", "suppressed": "#78909c",
          "error": "#c62828", "pending": "#1565c0", "bar": "#3b6ea5", "ref": "#c62828",
          "live": "#6a1b9a", "band": "#e8f5e9"}
FILES = ("report.html", "summary.json", "results.parquet")


class ReportError(DialerError):
    exit_code = ExitCode.DATAERR


class CompareError(DialerError):
    """Asked to compare what cannot be compared: the command line is at fault."""

    exit_code = ExitCode.USAGE


# --------------------------------------------------------------------------------------------
# Definitions shared by every output
# --------------------------------------------------------------------------------------------


def _text(s: pd.Series) -> pd.Series:
    """Missing as "" and everything else as str, so comparisons never meet NA."""
    if isinstance(s.dtype, pd.StringDtype):
        return s.fillna("").astype("str")
    return s.astype(object).where(s.notna(), "").astype("str")


def _pairs(a: pd.Series, b: pd.Series) -> Counter[tuple[str, str]]:
    vc = pd.DataFrame({"a": a.to_numpy(), "b": b.to_numpy()}).value_counts(sort=False)
    return Counter({(str(x), str(y)): int(n) for (x, y), n in vc.items()})


def connected_mask(df: pd.DataFrame) -> pd.Series:
    """Rows where someone answered: the one definition the page, JSON and terminal use."""
    status = _text(df["status"])
    outcome = _text(df["outcome"])
    dialed = _text(df["disposition"]).eq("dialed")
    return dialed & (status.eq("completed")
                     | (outcome.ne("") & ~status.isin(NOT_CONNECTED_STATUSES)))


def held_mask(df: pd.DataFrame) -> pd.Series:
    """Rows the checks held back (or never planned): the complement of eligible."""
    disp = _text(df["disposition"])
    reason = _text(df["reason"])
    return disp.eq("suppressed") | (disp.eq("pending") & reason.isin(HELD_PENDING_REASONS))


# --------------------------------------------------------------------------------------------
# Reading results and journal
# --------------------------------------------------------------------------------------------


def _unneutralize(s: pd.Series) -> pd.Series:
    """Undo results.csv's formula guard, so Parquet and the page get the raw value.

    A guarded cell is "'" + a value `neutralize` would guard; a raw value that itself starts
    with "'" and a formula character reads back without its quote (the one ambiguous case).
    """
    from campaign_dialer.results import neutralize

    quoted = s.str.startswith("'").fillna(False).astype(bool)
    if not quoted.any():
        return s
    cand = s[quoted]
    raw = cand.str.slice(1)
    guarded = raw.map(neutralize).eq(cand)
    out = s.copy()
    out[guarded[guarded].index] = raw[guarded]
    return out


def read_results_csv(path: Path) -> pd.DataFrame:
    """results.csv back as the frame `results_frame` made: typed numbers, raw strings."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    with open(path, encoding="utf-8", newline="") as fh:
        header = next(csv.reader(fh), [])
    if "disposition" not in header:
        raise ValueError(f"{path} is not a results file (no disposition column)")
    names = _unique(header)
    table = pacsv.read_csv(
        path,
        read_options=pacsv.ReadOptions(column_names=names, skip_rows=1),
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            column_types={n: pa.string() for n in names}, null_values=[""],
            strings_can_be_null=True, quoted_strings_can_be_null=True,
        ),
    )
    df = table.to_pandas()
    for c in df.columns:
        if c not in NUMERIC_COLUMNS:
            df[c] = _unneutralize(df[c].astype("string"))
    return _typed(df)


def _unique(names: Sequence[str]) -> list[str]:
    seen: Counter[str] = Counter()
    out = []
    for n in names:
        out.append(n if not seen[n] else f"{n}.{seen[n]}")
        seen[n] += 1
    return out


def _typed(df: pd.DataFrame) -> pd.DataFrame:
    """One set of dtypes whichever way the frame was made: numbers typed, text as string."""
    df = df.copy()
    for c, dtype in NUMERIC_COLUMNS.items():
        if c in df.columns:
            num = pd.to_numeric(df[c], errors="coerce")
            df[c] = num.round().astype(dtype) if dtype != "float64" else num.astype(dtype)
    for c in df.columns:
        if c not in NUMERIC_COLUMNS and not isinstance(df[c].dtype, pd.StringDtype):
            df[c] = df[c].astype(object).where(df[c].notna(), None).astype("string")
    for c in ("disposition", "reason", "status", "outcome"):
        if c not in df.columns:
            df[c] = pd.Series(pd.NA, index=df.index, dtype="string")
    return df


@dataclass
class JournalFacts:
    """What the report needs from the journal, read in one snapshot."""

    calls: pd.DataFrame  # one row per attempt
    http: pd.DataFrame  # HTTP exchanges grouped by method, status, code, error
    runs: list[dict[str, Any]]
    control: str
    last_exit_code: int | None
    fate_counts: Counter[tuple[str, str]]
    fate_rows: int
    lock_held: bool | None = None  # the run lock, where known: a killed run left no end time

    @property
    def running(self) -> bool:
        open_run = bool(self.runs) and self.runs[-1].get("ended_at") is None
        return open_run and self.lock_held is not False


def read_journal(journal: Any) -> JournalFacts:
    """What the report needs from the journal, through its typed reads."""
    from campaign_dialer.store.model import CALL_FACT_COLUMNS, HTTP_TALLY_COLUMNS

    calls = pd.DataFrame.from_records(journal.call_facts(), columns=list(CALL_FACT_COLUMNS))
    http = pd.DataFrame.from_records(journal.http_tally(), columns=list(HTTP_TALLY_COLUMNS))
    http = http.rename(columns={"events": "count"})
    runs = []
    for r in journal.runs():
        s = _loads(r.get("summary"))
        runs.append({"id": r["id"], "started_at": r["started_at"], "ended_at": r["ended_at"],
                     "exit_code": r["exit_code"], "placed": s.get("placed"),
                     "completed": s.get("completed"), "clock_source": s.get("clock_source")})
    counts: Counter[tuple[str, str]] = Counter(journal.fate_counts())
    last = journal.get_meta("last_exit_code")
    return JournalFacts(
        calls=calls, http=http, runs=runs, control=journal.control(),
        last_exit_code=int(last) if last not in (None, "") else None,
        fate_counts=counts, fate_rows=sum(counts.values()),
    )


def _loads(text: Any) -> dict[str, Any]:
    try:
        v = json.loads(text) if text else {}
    except (TypeError, ValueError):
        return {}
    return v if isinstance(v, dict) else {}


def _agrees(df: pd.DataFrame, facts: JournalFacts) -> bool:
    """Does results.csv say what the journal says? (its mtime cannot tell: a WAL checkpoint
    touches the journal after the results are written)"""
    got = _pairs(_text(df["disposition"]), _text(df["reason"]))
    want = Counter(facts.fate_counts)
    if len(df) < facts.fate_rows:
        return False
    if len(df) > facts.fate_rows:
        want[("pending", "not_planned")] += len(df) - facts.fate_rows
    return +got == +want


@dataclass
class Loaded:
    campaign: Campaign
    df: pd.DataFrame
    facts: JournalFacts
    source: str


def load(campaign: Campaign, *, refresh_results: bool = False) -> Loaded:
    """Read the journal and the results in one snapshot.

    results.csv is used when it agrees with the journal; otherwise (missing, stale, or the
    campaign is running) the frame is rebuilt from the journal and the contacts, and with
    `refresh_results` a stale file of a campaign not running is rewritten so exports agree.
    """
    from campaign_dialer.store import Journal, JournalError, run_lock_held

    if not campaign.journal_path.exists():
        raise NotRunYet(f"{campaign.name}: nothing has run yet, so there is nothing to report; "
                        f"run the campaign first (no journal at {campaign.journal_path})")
    try:
        journal = Journal(campaign.journal_path, campaign.name, create=False)
    except JournalError as e:
        raise ReportError(str(e)) from None
    with journal, journal.snapshot():
        facts = read_journal(journal)
        facts.lock_held = run_lock_held(campaign.output_dir, campaign.name)
        df, source = _results(campaign, journal, facts, refresh_results)
        df = _with_transcript_excerpts(df, journal)
    return Loaded(campaign, _redactor(campaign).frame(df), facts, source)


TRANSCRIPT_EXCERPT_CHARS = 200


def _with_transcript_excerpts(df: pd.DataFrame, journal: Any) -> pd.DataFrame:
    """The page's rows show the start of each call's final transcript (webhooks record it)."""
    texts = {t["call_id"]: t["text"] for t in journal.transcripts() if t.get("text")}
    if not texts or "call_id" not in df.columns:
        return df
    excerpt = {k: " ".join(str(v).split())[:TRANSCRIPT_EXCERPT_CHARS] for k, v in texts.items()}
    out = df.copy()
    out["transcript_excerpt"] = out["call_id"].map(excerpt).astype("string")
    return out


def _results(
    campaign: Campaign, journal: Any, facts: JournalFacts, refresh: bool
) -> tuple[pd.DataFrame, str]:
    import pyarrow as pa

    from campaign_dialer.contacts import ContactsError, load_contacts
    from campaign_dialer.results import results_frame, safe_for_spreadsheets, write_atomic_csv

    path = campaign.results_path
    old: pd.DataFrame | None = None
    try:
        old = read_results_csv(path)
    except (OSError, ValueError, pa.ArrowException):
        old = None  # missing or unreadable: rebuilt below
    if old is not None and not facts.running and _agrees(old, facts):
        return old, "results.csv"
    why = "missing" if old is None else "stale"
    m = campaign.model
    cols = {k: v for k, v in m.inputs.columns.model_dump().items() if v}
    try:
        contacts = load_contacts(
            campaign.contacts_path, default_region=m.campaign.default_region,
            columns=cols or None, encoding=m.inputs.encoding,
        )
    except (OSError, ContactsError) as e:
        if old is not None:
            return old, f"results.csv (may be out of date; contacts unreadable: {e})"
        raise ReportError(f"results.csv is missing and the contacts cannot be read: {e}") from e
    df = _typed(results_frame(contacts, journal))
    if facts.running:
        # The run rewrites results.csv when it ends; a copy written now could land after
        # that one and leave stale results behind.
        return df, f"journal (results.csv {why}: the campaign is running)"
    if refresh:
        write_atomic_csv(safe_for_spreadsheets(_redactor(campaign).frame(df)), path)
        return df, f"journal (results.csv was {why}; rewritten)"
    return df, f"journal (results.csv is {why})"


# --------------------------------------------------------------------------------------------
# Secrets
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Redactor:
    """Whatever leaked into the journal, the key never reaches a report or an export."""

    secrets: tuple[str, ...] = ()

    def __call__(self, text: str) -> str:
        for s in self.secrets:
            text = text.replace(s, "[REDACTED]")
        return KEY_PATTERN.sub("[REDACTED]", text)

    def frame(self, df: pd.DataFrame) -> pd.DataFrame:
        """Platform error text lands in `detail`: scrub the columns the journal fills."""
        for c in ("detail", "error_code", "reason"):
            if c not in df.columns:
                continue
            s = df[c].astype("string")
            hit = s.str.contains("vx_", regex=False).fillna(False).astype(bool)
            hit[hit] = s[hit].map(lambda v: bool(KEY_PATTERN.search(v)))
            for sec in self.secrets:
                hit |= s.str.contains(sec, regex=False).fillna(False).astype(bool)
            if hit.any():
                df = df.copy()
                df.loc[hit, c] = s[hit].map(self)
        return df


def _redactor(campaign: Campaign) -> Redactor:
    key = os.environ.get(campaign.model.api.api_key_env, "").strip()
    if len(key) >= 4:
        log.register_secret(key)
        return Redactor((key,))
    return Redactor()


# --------------------------------------------------------------------------------------------
# The summary
# --------------------------------------------------------------------------------------------


def summary(campaign: Campaign) -> dict[str, Any]:
    """The JSON summary: the figures the page and the terminal show, for dashboards."""
    return summarize(load(campaign))


def summarize(data: Loaded, *, generated_at: datetime | None = None) -> dict[str, Any]:
    """Every figure of every output, computed once (and so never disagreeing)."""
    campaign, df, facts = data.campaign, data.df, data.facts
    cfg = campaign.model
    calls = facts.calls
    figs = figures(df, calls)
    disp = _text(df["disposition"])
    reason = _text(df["reason"])
    start_min, end_min = _window_minutes(campaign)
    out: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "campaign": campaign.name,
        "agent_id": cfg.campaign.agent_label,
        "agents_configured": [{"id": a, "weight": w} for a, w in cfg.campaign.agents],
        "display_timezone": display_zone(campaign).key,
        "generated_at": _iso(generated_at or datetime.now(UTC)),
        "source": data.source,
        "state": _state(facts, figs["headline"]["pending"]),
        # Which clock judged the local hours of the last run: "system" for a real one.
        "clock_source": facts.runs[-1].get("clock_source") if facts.runs else None,
        "config": {
            "calls_per_second": cfg.pacing.calls_per_second,
            "max_live_calls": cfg.api.max_live_calls,
            "requests_per_second": cfg.api.requests_per_second,
            "calling_window": [_hhmm(start_min), _hhmm(end_min)],
            "require_consent": cfg.compliance.require_consent,
        },
        "definitions": DEFINITIONS,
        **figs,
        "suppression_reasons": _counts(reason[disp.eq("suppressed")]),
        "pending_reasons": _counts(reason[disp.eq("pending")]),
        "rejections": {
            "rows": int(disp.eq("rejected").sum()),
            "by_reason": _counts(reason[disp.eq("rejected")]),
            "http_409_by_code": _http_codes(facts.http, 409),
        },
        "errors": {
            "rows": int(disp.eq("error").sum()),
            "by_reason": _counts(reason[disp.eq("error")]),
        },
        "retries": _retries(calls),
        "http": _http(facts.http),
        "timeline": _timeline(calls, cfg.pacing.calls_per_second, cfg.api.max_live_calls),
        "local_hours": _local_hours(calls, start_min, end_min),
        "evidence": _evidence(df),
        "runs": facts.runs,
        "agents": _agents(df, calls, cfg.report.success_outcomes),
    }
    out.update(business(df, calls, campaign))
    out["ab_test"] = ab_test(out["agents"])
    return out


def figures(df: pd.DataFrame, calls: pd.DataFrame) -> dict[str, Any]:
    """Row figures of a campaign, or of one agent's share of it (compared side by side)."""
    disp = _text(df["disposition"])
    reason = _text(df["reason"])
    by_disp = {d: int(disp.eq(d).sum()) for d in DISPOSITIONS}
    dialed = disp.eq("dialed")
    conn = connected_mask(df)
    held = held_mask(df)
    n = len(df)
    headline = {
        "rows": n,
        "eligible": int(n - held.sum()),
        "dialed": by_disp["dialed"],
        "connected": int(conn.sum()),
        "outcomes": int((dialed & _text(df["outcome"]).ne("")).sum()),
        "rejected": by_disp["rejected"],
        "suppressed": by_disp["suppressed"],
        "errors": by_disp["error"],
        "pending": by_disp["pending"],
        "calls_placed": int(calls["placed_at"].notna().sum()) if len(calls) else 0,
    }
    held_reason = reason.where(held, "\x00")
    stages = [("rows", "Input rows", n)]
    left = n
    for key, label, reasons in (
        ("valid", "Valid, unique numbers", CONTACT_REASONS),
        ("not_dnc", "Not on a DNC list", DNC_REASONS),
        ("consent", "With consent", CONSENT_REASONS),
        ("window", "Inside the calling window", WINDOW_REASONS),
        ("not_recent", "Not called recently by another campaign", HISTORY_REASONS),
    ):
        left -= int(held_reason.isin(reasons).sum())
        stages.append((key, label, left))
    stages += [
        ("eligible", "Eligible", headline["eligible"]),
        ("dialed", "Dialed", headline["dialed"]),
        ("connected", "Connected", headline["connected"]),
    ]
    pairs = _pairs(disp, reason)
    return {
        "headline": headline,
        "rates": {
            "eligible_of_rows": _ratio(headline["eligible"], n),
            "dialed_of_eligible": _ratio(headline["dialed"], headline["eligible"]),
            "connected_of_dialed": _ratio(headline["connected"], headline["dialed"]),
        },
        "by_disposition": by_disp,
        "by_reason": [
            {"disposition": d, "reason": r or None, "rows": k}
            for (d, r), k in sorted(pairs.items(), key=lambda kv: (-kv[1], kv[0]))
        ],
        "funnel": [{"stage": k, "label": label, "rows": v} for k, label, v in stages],
        "statuses": _counts(_text(df["status"])[dialed], missing="(none)"),
        "outcomes": _counts(_text(df["outcome"])[dialed], missing="(none)"),
        "durations": _durations(df["duration_seconds"][dialed] if "duration_seconds" in df
                                else pd.Series(dtype=float)),
    }


def _ratio(a: int, b: int) -> float | None:
    return round(a / b, 4) if b else None


def _counts(s: pd.Series, *, missing: str | None = None) -> dict[str, int]:
    """Value counts, biggest first then by name, `missing` last (stable for diffs and tests)."""
    c = s[s.ne("")].value_counts(sort=False)
    out = {str(k): int(v) for k, v in sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))}
    blank = int(s.eq("").sum())
    if missing is not None and blank:
        out[missing] = blank
    return out


def state_label(*, running: bool, control: str, runs: int, pending: int) -> str:
    """One word for where a campaign stands; `run`, `report` and `status` all say this one."""
    if running:
        return "running"
    if control in ("canceled", "paused"):
        return control
    if not runs:
        return "never run"
    return "finished" if pending == 0 else "incomplete"


def _state(facts: JournalFacts, pending: int) -> dict[str, Any]:
    runs = facts.runs
    label = state_label(running=facts.running, control=facts.control, runs=len(runs),
                        pending=pending)
    return {
        "label": label,
        "control": facts.control,
        "running": facts.running,
        "last_exit_code": facts.last_exit_code,
        "runs": len(runs),
        "first_started_at": runs[0]["started_at"] if runs else None,
        "last_ended_at": runs[-1]["ended_at"] if runs else None,
    }


def _window_minutes(campaign: Campaign) -> tuple[int, int]:
    """The configured window clamped to the federal 08:00-21:00 (state rules only narrow it)."""
    start, end = campaign.model.compliance.calling_window

    def minutes(t: time) -> int:
        return 24 * 60 if t >= time(23, 59, 59) else t.hour * 60 + t.minute

    return (max(minutes(start), FEDERAL_WINDOW_MIN[0]), min(minutes(end), FEDERAL_WINDOW_MIN[1]))


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _times(s: pd.Series) -> pd.Series:
    return pd.to_datetime(s, utc=True, errors="coerce", format="ISO8601")


def _durations(s: pd.Series) -> dict[str, Any]:
    d = pd.to_numeric(s, errors="coerce").dropna()
    d = d[d >= 0].to_numpy(dtype=float)
    if not len(d):
        return {"calls": 0, "total_seconds": 0, "mean": None, "median": None, "p90": None,
                "max": None, "histogram": {"bin_seconds": None, "counts": []}}
    top = float(d.max())
    width = next((w for w in (5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600)
                  if math.floor(top / w) + 1 <= 24), 3600)
    counts = np.bincount((d // width).astype(int), minlength=int(top // width) + 1)
    return {
        "calls": len(d),
        "total_seconds": round(float(d.sum()), 1),
        "mean": round(float(d.mean()), 1),
        "median": round(float(np.median(d)), 1),
        "p90": round(float(np.percentile(d, 90)), 1),
        "max": round(top, 1),
        "histogram": {"bin_seconds": width, "counts": [int(x) for x in counts]},
    }


def _retries(calls: pd.Series | pd.DataFrame) -> dict[str, Any]:
    if not len(calls):
        return {"attempts": 0, "posts": 0, "resent_posts": 0, "attempts_resent": 0,
                "redials": 0, "posts_per_attempt": {}}
    posts = pd.to_numeric(calls["posts"], errors="coerce").fillna(0).astype(int)
    sent = posts[posts > 0]
    per = Counter(sent.tolist())
    return {
        "attempts": len(calls),
        "posts": int(posts.sum()),
        "resent_posts": int((sent - 1).sum()),
        "attempts_resent": int((sent > 1).sum()),
        "redials": int((pd.to_numeric(calls["attempt"], errors="coerce") > 1).sum()),
        "posts_per_attempt": {str(k): int(v) for k, v in sorted(per.items())},
    }


def _str(v: Any) -> str | None:
    return v if isinstance(v, str) and v else None


def _http_label(row: Any) -> str:
    status = "no response" if pd.isna(row.status) else str(int(row.status))
    extra = _str(row.code) or _str(row.error) or ""
    return f"{_str(row.method) or '?'} {status}" + (f" {extra}" if extra else "")


def _http(http: pd.DataFrame) -> dict[str, Any]:
    if not len(http):
        return {"requests": 0, "errors": 0, "by_status": [], "errors_by_code": {}}
    rows: list[dict[str, Any]] = []
    errors: Counter[str] = Counter()
    for r in http.itertuples(index=False):
        label = _http_label(r)
        rows.append({
            "method": _str(r.method), "status": None if pd.isna(r.status) else int(r.status),
            "code": _str(r.code), "error": _str(r.error), "count": int(r.count),
            "mean_latency_ms": None if pd.isna(r.latency) else round(float(r.latency) * 1000, 1),
        })
        if pd.isna(r.status) or int(r.status) >= 400:
            errors[label] += int(r.count)
    rows.sort(key=lambda x: (-x["count"], x["method"] or "", x["status"] or 0))
    return {
        "requests": int(http["count"].sum()),
        "errors": int(sum(errors.values())),
        "by_status": rows,
        "errors_by_code": dict(sorted(errors.items(), key=lambda kv: (-kv[1], kv[0]))),
    }


def _http_codes(http: pd.DataFrame, status: int) -> dict[str, int]:
    if not len(http):
        return {}
    sub = http[pd.to_numeric(http["status"], errors="coerce").eq(status)]
    c: Counter[str] = Counter()
    for r in sub.itertuples(index=False):
        c[_str(r.code) or "(no code)"] += int(r.count)
    return dict(sorted(c.items(), key=lambda kv: (-kv[1], kv[0])))


BUCKETS_S = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600,
             43200, 86400)


def _timeline(calls: pd.DataFrame, cps: float, max_live: int) -> dict[str, Any]:
    """New call requests and live calls per time bucket, on the run's clock.

    Pacing governs when a new call's first POST is sent, which is just after its intent is
    journaled, so requests are counted at `intent_at` (re-sends excluded); a call is live from
    `placed_at` to `ended_at` (or to the last journaled instant while still open).
    """
    base: dict[str, Any] = {
        "bucket_seconds": None, "start": None, "end": None, "requests": [], "live": [],
        "calls_per_second": cps, "max_live_calls": max_live, "peak_requests_in_1s": 0,
        "peak_live": 0, "mean_requests_per_second": None, "peak_calls_per_second": None,
    }
    if not len(calls):
        return base
    posts = pd.to_numeric(calls["posts"], errors="coerce").fillna(0)
    sent = _times(calls["intent_at"])[posts.gt(0)].dropna()
    placed = _times(calls["placed_at"])
    ok = placed.notna()
    ended = _times(calls["ended_at"])[ok]
    everything = pd.concat([sent, placed[ok], ended.dropna()])
    if not len(everything):
        return base
    t0, t_end = everything.min(), everything.max()
    sec = (sent - t0).dt.total_seconds().to_numpy()
    start_sec = (placed[ok] - t0).dt.total_seconds().to_numpy()
    end_sec = np.maximum((ended.fillna(t_end) - t0).dt.total_seconds().to_numpy(), start_sec)
    span = max(float((t_end - t0).total_seconds()), 1.0)
    bucket = next((b for b in BUCKETS_S if span / b <= 120), BUCKETS_S[-1])
    n = int(span // bucket) + 1
    requests = np.bincount((sec // bucket).astype(int), minlength=n)[:n]
    # live calls: +1 when placed, -1 when ended; ends sort before starts at the same instant
    times = np.concatenate([start_sec, end_sec])
    deltas = np.concatenate([np.ones(len(start_sec), dtype=int),
                             -np.ones(len(end_sec), dtype=int)])
    live = np.zeros(n, dtype=int)
    if len(times):
        order = np.lexsort((deltas, times))
        level = np.cumsum(deltas[order])
        b = np.minimum((times[order] // bucket).astype(int), n - 1)
        np.maximum.at(live, b, level)
        before = pd.Series(level).groupby(b).last().reindex(range(n)).ffill().shift(1)
        live = np.maximum(live, before.fillna(0).to_numpy(dtype=int))
    srt = np.sort(sec)
    # calls in any 1 s window (t-1, t]; 1 ms of slack for the journal's ms timestamps
    in_1s = np.arange(len(srt)) - np.searchsorted(srt, srt - 1.0 + 1e-3, side="right") + 1
    active = float(srt[-1] - srt[0]) if len(srt) else 0.0
    # The limit is a rate (evenly spaced calls), so the peak is one too: from each call to the
    # first call at least 1 s later, the gaps between them over the time they span (near the
    # end, the calls that follow within the last second, over a whole second).
    idx = np.arange(len(srt))
    later = np.searchsorted(srt, srt + 1.0 - 1e-3, side="left")
    has = later < len(srt)
    spans = np.where(has, srt[np.minimum(later, len(srt) - 1)] - srt, 1.0)
    gaps = np.where(has, later - idx, len(srt) - 1 - idx)
    rates = gaps / np.maximum(spans, 1.0 - 1e-3)
    return {
        **base,
        "bucket_seconds": bucket,
        "start": _iso(t0.to_pydatetime()),
        "end": _iso(t_end.to_pydatetime()),
        "requests": [int(x) for x in requests],
        "live": [int(x) for x in live],
        "peak_requests_in_1s": int(in_1s.max()) if len(srt) else 0,
        "peak_calls_per_second": round(float(rates.max()), 2) if len(rates) else None,
        "peak_live": int(live.max()),
        "mean_requests_per_second": round((len(srt) - 1) / active, 3) if active > 0 else None,
    }


_LOCAL_TIME = re.compile(r"^(?:\d{4}-\d{2}-\d{2}[T ])?(\d{1,2}):(\d{2})")
_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _parse_local_times(text: str) -> list[int] | None:
    """Minutes of the day of each local time (one per candidate zone); None if unreadable.

    Compliance writes ISO local times with their offset, space separated
    ("2026-06-09T13:00-04:00 2026-06-09T12:00-05:00"); commas, semicolons and a space
    between date and time are tolerated.
    """
    out = []
    for tok in re.split(r"[\s,;]+", text.strip()):
        if not tok or _DATE_ONLY.match(tok):
            continue
        m = _LOCAL_TIME.match(tok)
        if not m or int(m.group(1)) > 23 or int(m.group(2)) > 59:
            return None
        out.append(int(m.group(1)) * 60 + int(m.group(2)))
    return out or None


def _local_hours(calls: pd.DataFrame, start_min: int, end_min: int) -> dict[str, Any]:
    """Placed calls by the recipient's local hour at dialing: evidence that windows held.

    A number that may be in several zones counts once in each distinct hour its zones show;
    a call is outside the window if any of its local times is.
    """
    by_hour = [0] * 24
    res: dict[str, Any] = {
        "calls": 0, "with_local_times": 0, "unreadable": 0, "outside_window": 0,
        "window": [_hhmm(start_min), _hhmm(end_min)], "by_hour": by_hour,
    }
    if not len(calls):
        return res
    placed = calls[calls["placed_at"].notna()]
    res["calls"] = len(placed)
    texts = _text(placed["local_times"]).str.strip()
    texts = texts[texts.ne("")]
    res["with_local_times"] = len(texts)
    codes, uniques = pd.factorize(texts)
    parsed = [_parse_local_times(u) for u in uniques]
    per_code_hours = [sorted({m // 60 for m in p}) if p else [] for p in parsed]
    outside = [any(not (start_min <= m < end_min) for m in p) if p else False for p in parsed]
    n_codes = np.bincount(codes, minlength=len(uniques)) if len(uniques) else np.array([])
    for i, k in enumerate(n_codes):
        if parsed[i] is None:
            res["unreadable"] += int(k)
            continue
        for h in per_code_hours[i]:
            by_hour[h] += int(k)
        if outside[i]:
            res["outside_window"] += int(k)
    return res


def _evidence(df: pd.DataFrame) -> dict[str, Any]:
    dialed = _text(df["disposition"]).eq("dialed")
    out: dict[str, Any] = {"dialed_rows": int(dialed.sum())}
    for c in ("consent_event_at", "consent_source", "local_times", "dnc_lists_checked",
              "dialed_at", "rnd_queried_at"):
        out[f"with_{c}"] = int((dialed & _text(df[c]).ne("")).sum()) if c in df else 0
    # the lists (with their kinds and dates) dialed rows were checked against, and how many
    lists = _text(df["dnc_lists_checked"])[dialed] if "dnc_lists_checked" in df else None
    out["dnc_lists"] = (
        {str(k): int(v) for k, v in lists[lists.ne("")].value_counts().head(10).items()}
        if lists is not None else {}
    )
    return out


def _row_agents(calls: pd.DataFrame) -> pd.Series:
    """The agent of each row's last attempt, indexed by row number."""
    if not len(calls):
        return pd.Series(dtype=object)
    last = calls.sort_values(["row", "attempt"]).drop_duplicates("row", keep="last")
    return pd.Series(last["agent_id"].to_numpy(), index=last["row"].to_numpy())


def _agents(
    df: pd.DataFrame, calls: pd.DataFrame, success: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """Per-agent figures when rows were split between agents (else empty)."""
    agents = _row_agents(calls).dropna()
    names = sorted({str(a) for a in agents.tolist()})
    if len(names) < 2:
        return []
    out = []
    for name in names:
        rows = agents.index[agents.astype(str).eq(name)]
        sub = df[df["row"].isin(rows)]
        sub_calls = calls[calls["agent_id"].astype(str).eq(name)]
        figs = figures(sub, sub_calls)
        dialed = figs["headline"]["dialed"]
        conv = int((_text(sub["disposition"]).eq("dialed")
                    & _text(sub["outcome"]).isin(list(success))).sum())
        lo, hi = wilson(conv, dialed)
        out.append({"agent_id": name, **figs, "conversion": {
            "conversions": conv, "dialed": dialed, "rate": _ratio(conv, dialed),
            "ci95": [lo, hi]}})
    return out


# --------------------------------------------------------------------------------------------
# What a sales-ops lead reads: conversions, talk time, cost, where and when people answer
# --------------------------------------------------------------------------------------------

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
NONE_LABELS = {"(none)": "No outcome reported", "": "No outcome reported"}
CODE_LABELS = {
    "dnc_local": "On a local DNC list", "dnc_listed": "On the platform's DNC list",
    "outside_window": "Outside the calling window", "unknown_timezone": "Time zone unknown",
    "recently_called": "Called recently by another campaign", "not_planned": "Not planned yet",
    "invalid_phone": "Invalid phone number", "blank_phone": "No phone number",
    "no_phone_number": "No phone number (contact id only)", "duplicate": "Duplicate number",
    "no_answer": "No answer", "dialed": "Dialed", "error": "Error",
    "number_reassigned": "Number reassigned since consent (RND)",
    "reassigned_unchecked": "Consent not vouched for by an RND check",
}
SEGMENT_LIMIT = 15  # the biggest values of a segment column; the rest in "others"
# Local time at dialing as compliance writes it: "2026-06-09T13:00-04:00 ..." (first zone)
_LOCAL_DAY_HOUR = r"^\s*(\d{4}-\d{2}-\d{2})[T ](\d{1,2}):"


def label(code: Any) -> str:
    """`appointment_booked` -> "Appointment booked"; the code stays in filters and exports."""
    text = "" if code is None else str(code)
    if text in NONE_LABELS:
        return NONE_LABELS[text]
    if text in CODE_LABELS:
        return CODE_LABELS[text]
    words = text.replace("_", " ").strip()
    return words[:1].upper() + words[1:] if words else text


def display_zone(campaign: Campaign) -> Any:
    """`[report] display_timezone`, else the machine's own zone (UTC when it has none)."""
    from zoneinfo import ZoneInfo

    name = campaign.model.report.display_timezone
    if name:
        return ZoneInfo(name)
    tz = os.environ.get("TZ", "").lstrip(":")
    if tz:
        try:
            return ZoneInfo(tz)
        except (ValueError, OSError, KeyError):
            pass
    try:
        target = Path("/etc/localtime").resolve()
        parts = target.parts
        if "zoneinfo" in parts:
            return ZoneInfo("/".join(parts[parts.index("zoneinfo") + 1:]))
    except (ValueError, OSError, KeyError):
        pass
    return ZoneInfo("UTC")


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float | None, float | None]:
    """95% interval of a proportion (Wilson: sane at 0, 1 and small n)."""
    if n <= 0:
        return None, None
    p = k / n
    den = 1 + z * z / n
    mid = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return round(max(0.0, mid - half), 4), round(min(1.0, mid + half), 4)


def two_proportion(k1: int, n1: int, k2: int, n2: int) -> dict[str, Any]:
    """Two-proportion z-test (pooled) and a 95% interval of the difference (unpooled)."""
    if n1 <= 0 or n2 <= 0:
        return {"z": None, "p_value": None, "diff": None, "diff_ci95": [None, None]}
    p1, p2 = k1 / n1, k2 / n2
    pool = (k1 + k2) / (n1 + n2)
    se0 = math.sqrt(pool * (1 - pool) * (1 / n1 + 1 / n2))
    z = (p1 - p2) / se0 if se0 > 0 else 0.0
    p_value = math.erfc(abs(z) / math.sqrt(2))
    se = math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    d = p1 - p2
    return {"z": round(z, 3), "p_value": round(p_value, 4), "diff": round(d, 4),
            "diff_ci95": [round(d - 1.96 * se, 4), round(d + 1.96 * se, 4)]}


def ab_test(agents: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The two biggest agents' conversion rates compared; says when it is not yet significant."""
    if len(agents) < 2:
        return None
    a, b = sorted(agents, key=lambda x: -x["conversion"]["dialed"])[:2]
    ca, cb = a["conversion"], b["conversion"]
    t = two_proportion(ca["conversions"], ca["dialed"], cb["conversions"], cb["dialed"])
    sig = t["p_value"] is not None and t["p_value"] < 0.05
    if t["p_value"] is None:
        verdict = "not enough calls yet to compare the agents"
    elif sig:
        best = a if t["diff"] > 0 else b
        verdict = (f"{best['agent_id']} converts better: the difference is significant "
                   f"(p = {t['p_value']:.3f})")
    else:
        verdict = (f"the difference is not yet significant (p = {t['p_value']:.2f}); "
                   "keep calling before choosing an agent")
    return {"a": a["agent_id"], "b": b["agent_id"], **t, "significant": sig,
            "verdict": verdict}


def _rate_rows(
    keys: pd.Series, dialed: pd.Series, reached: pd.Series, won: pd.Series,
    *, order: Sequence[str] | None = None, limit: int | None = None, labels: bool = False,
) -> list[dict[str, Any]]:
    """Dialed rows, answer rate and conversion rate per key (dialed rows only)."""
    frame = pd.DataFrame({"k": keys[dialed].to_numpy(), "r": reached[dialed].to_numpy(),
                          "w": won[dialed].to_numpy()})
    g = frame.groupby("k", sort=False).agg(n=("r", "size"), r=("r", "sum"), w=("w", "sum"))
    if order is not None:
        g = g.reindex(order, fill_value=0)
    else:
        g = g.sort_values("n", ascending=False, kind="stable")
    items = [(str(k), int(x.n), int(x.r), int(x.w)) for k, x in g.iterrows()]
    if limit is not None and len(items) > limit:
        rest = items[limit - 1:]
        items = [*items[: limit - 1], (f"{len(rest)} others", sum(x[1] for x in rest),
                                       sum(x[2] for x in rest), sum(x[3] for x in rest))]
    return [{"key": k, "label": label(k) if labels else (k or "(blank)"), "dialed": n,
             "reached": r, "answer_rate": _ratio(r, n), "conversions": w,
             "conversion_rate": _ratio(w, n)} for k, n, r, w in items]


def _states(phones: pd.Series) -> pd.Series:
    """US/CA state of each number's area code (computed once per area code)."""
    from campaign_dialer.compliance import state_for_number

    prefix = phones.str.slice(0, 5)
    out: dict[str, str] = {}
    for p in prefix.unique():
        if isinstance(p, str) and p.startswith("+1") and len(p) == 5:
            out[p] = state_for_number(p + "5550100") or "(unknown)"
    return prefix.map(out).fillna("(unknown)")


def business(df: pd.DataFrame, calls: pd.DataFrame, campaign: Campaign) -> dict[str, Any]:
    """Tiles, the hour x weekday heatmap and the breakdowns, all from the results rows."""
    rc = campaign.model.report
    success = list(rc.success_outcomes)
    disp = _text(df["disposition"])
    dialed = disp.eq("dialed")
    reached = connected_mask(df)
    won = dialed & _text(df["outcome"]).isin(success)
    n_dialed, n_reached, n_won = int(dialed.sum()), int(reached.sum()), int(won.sum())
    # Talk time is billed per call placed, redials included: read it from every attempt.
    if len(calls):
        secs = pd.to_numeric(calls["duration_seconds"], errors="coerce").clip(lower=0)
        talk_s = float(secs.fillna(0).sum())
        placed = int(calls["placed_at"].notna().sum())
    else:
        talk_s, placed = 0.0, 0
    cost = None
    if rc.cost_per_minute is not None or rc.cost_per_call is not None:
        cost = round((rc.cost_per_minute or 0) * talk_s / 60 + (rc.cost_per_call or 0) * placed,
                     2)
    tiles = {
        "rows": len(df), "dialed": n_dialed, "reached": n_reached,
        "answer_rate": _ratio(n_reached, n_dialed), "conversions": n_won,
        "conversion_rate": _ratio(n_won, n_dialed), "talk_minutes": round(talk_s / 60, 1),
        "calls_placed": placed, "cost": cost,
        "cost_per_conversion": round(cost / n_won, 2) if cost is not None and n_won else None,
    }
    # Recipient's local day and hour at dialing (the first zone when a number may be in two).
    lt = _text(df["local_times"]) if "local_times" in df else pd.Series("", index=df.index)
    codes, uniques = pd.factorize(lt.where(dialed, ""))  # few distinct local minutes
    parts = pd.Series(uniques, dtype="string").str.extract(_LOCAL_DAY_HOUR)
    u_day = pd.to_datetime(parts[0], errors="coerce", format="%Y-%m-%d").dt.day_of_week
    u_hour = pd.to_numeric(parts[1], errors="coerce")
    day = pd.Series(u_day.to_numpy(dtype=float, na_value=np.nan)[codes], index=df.index)
    hour = pd.Series(u_hour.to_numpy(dtype=float, na_value=np.nan)[codes], index=df.index)
    known = dialed & day.notna() & hour.between(0, 23)
    cell = (day.where(known, 0) * 24 + hour.where(known, 0)).astype(int)
    n_cells = 7 * 24
    counts = [np.bincount(cell[known & m], minlength=n_cells)
              for m in (known, reached, won)]
    heat = [[{"dialed": int(counts[0][d * 24 + h]), "reached": int(counts[1][d * 24 + h]),
              "conversions": int(counts[2][d * 24 + h])} for h in range(24)] for d in range(7)]
    hours = [f"{h:02d}" for h in range(24)]
    hkey = hour.where(known, -1).astype(int).map(lambda h: f"{h:02d}")
    dkey = day.where(known, -1).astype(int).map(lambda d: WEEKDAYS[d] if d >= 0 else "")
    phones = _text(df["phone_e164"]) if "phone_e164" in df else pd.Series("", index=df.index)
    segments = {}
    for col in rc.segment_by:
        name = col if col in df.columns else f"input.{col}"
        if name not in df.columns:
            continue
        segments[col] = _rate_rows(_text(df[name]).str.strip(), dialed, reached, won,
                                   limit=SEGMENT_LIMIT)
    return {
        "success_outcomes": success,
        "tiles": tiles,
        "heatmap": {"weekdays": list(WEEKDAYS), "cells": heat,
                    "dialed_without_local_time": int((dialed & ~known).sum())},
        "by_local_hour": [{**r, "label": f"{r['key']}:00–{int(r['key']) + 1:02d}:00"}
                          for r in _rate_rows(hkey, known, reached, won, order=hours)],
        "by_weekday": _rate_rows(dkey, known, reached, won, order=list(WEEKDAYS)),
        "by_state": _rate_rows(_states(phones), dialed, reached, won, limit=SEGMENT_LIMIT),
        "segments": segments,
        "outcome_labels": {k: label(k) for k in
                           sorted({*_text(df["outcome"]).unique(), *success, "(none)"})},
    }


# --------------------------------------------------------------------------------------------
# The terminal summary
# --------------------------------------------------------------------------------------------


def print_summary(
    campaign: Campaign, journal: Any, df: pd.DataFrame, *, exit_code: ExitCode, message: str = ""
) -> None:
    con = log.out()
    try:
        data = Loaded(campaign, _redactor(campaign).frame(_typed(df)),
                      read_journal(journal), "results.csv (written by this run)")
        print_text(summarize(data))
    except Exception as e:  # a summary bug must not turn a finished run into a failure
        log.get("report", campaign=campaign.name).warning("summary_failed", error=repr(e))
        disp = Counter(df["disposition"].tolist())
        con.print(" ".join(f"{k}={disp.get(k, 0)}" for k in DISPOSITIONS))
    con.print(f"exit={int(exit_code)}" + (f" ({message})" if message else ""))


def _n(v: Any) -> str:
    return "-" if v is None else f"{v:,}" if isinstance(v, int) else str(v)


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.1f}%"


def _say(text: str) -> None:
    """A plain line: no markup read from data, no hard wraps inside paths, no key."""
    text = KEY_PATTERN.sub("[REDACTED]", log.scrub(text))
    log.out().print(text, highlight=False, markup=False, soft_wrap=True)


def print_text(s: dict[str, Any]) -> None:
    """The same figures as the page, for the end of a run and `report --text`."""
    from rich.table import Table

    con = log.out()
    h = s["headline"]
    state = s["state"]
    runs = f"{state['runs']} run{'' if state['runs'] == 1 else 's'}"
    last = state["last_exit_code"]
    _say(f"{s['campaign']}: {state['label']} ({runs}"
         + (f", last exit code {last}" if last is not None else "") + ")")
    head = Table(show_header=False)
    head.add_column("figure")
    head.add_column("rows", justify="right")
    for k, label in TERMINAL_LABELS.items():
        head.add_row(label, _n(h[k]))
    head.add_row("Connected / dialed", _pct(s["rates"]["connected_of_dialed"]))
    con.print(head)
    t = Table(title="Rows by fate and reason")
    t.add_column("fate")
    t.add_column("reason")
    t.add_column("rows", justify="right")
    for item in s["by_reason"]:
        t.add_row(item["disposition"], item["reason"] or "-", _n(item["rows"]))
    con.print(t)
    for title, counts in (("outcomes", s["outcomes"]), ("statuses", s["statuses"])):
        if counts:
            _say(f"{title}: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
    lh = s["local_hours"]
    _say(f"local hours: {lh['calls']:,} calls placed, {lh['outside_window']:,} outside the "
         f"{'–'.join(lh['window'])} window, {lh['calls'] - lh['with_local_times']:,} without "
         "local time evidence" + ("  << CHECK" if lh["outside_window"] else ""))
    tl = s["timeline"]
    if tl["bucket_seconds"]:
        rate = tl.get("peak_calls_per_second")
        mean = tl.get("mean_requests_per_second")
        _say(f"pacing: configured {tl['calls_per_second']:g} new calls/s, evenly spaced; "
             + (f"peak {rate:.1f}/s over any 1 s, " if rate is not None else "")
             + (f"{mean:.1f}/s on average; " if mean is not None else "")
             + f"peak {tl['peak_live']} live (limit {tl['max_live_calls']})")
    d = s["durations"]
    if d["calls"]:
        _say(f"durations: {d['calls']:,} calls, median {d['median']:g}s, p90 {d['p90']:g}s, "
             f"max {d['max']:g}s")
    r, hp = s["retries"], s["http"]
    errs = ", ".join(f"{k} {v:,}" for k, v in list(hp["errors_by_code"].items())[:6])
    _say(f"retries: {r['resent_posts']:,} POST re-sends over {r['attempts_resent']:,} "
         f"attempts, {r['redials']:,} redials; HTTP: {hp['requests']:,} requests, "
         f"{hp['errors']:,} errors" + (f" ({errs})" if errs else ""))
    if s["rejections"]["rows"]:
        _say("409 rejections: " + ", ".join(
            f"{k} {v:,}" for k, v in s["rejections"]["by_reason"].items()))
    tiles = s.get("tiles")
    if tiles:
        cost = "" if tiles["cost"] is None else (
            f", cost {tiles['cost']:,.2f}"
            + (f" ({tiles['cost_per_conversion']:,.2f} per conversion)"
               if tiles["cost_per_conversion"] is not None else ""))
        _say(f"sales: reached {tiles['reached']:,} of {tiles['dialed']:,} dialed "
             f"({_pct(tiles['answer_rate'])}), conversions {tiles['conversions']:,} "
             f"({_pct(tiles['conversion_rate'])}), talk {tiles['talk_minutes']:,} min{cost}")
    for a in s.get("agents", []):
        ah = a["headline"]
        conv = a.get("conversion") or {}
        ci = conv.get("ci95") or [None, None]
        _say(f"agent {a['agent_id']}: dialed {ah['dialed']:,}, connected {ah['connected']:,}, "
             f"rejected {ah['rejected']:,}, errors {ah['errors']:,}"
             + (f", conversion {_pct(conv.get('rate'))} (95% {_pct(ci[0])}–{_pct(ci[1])})"
                if conv else ""))
    if s.get("ab_test"):
        _say(f"A/B: {s['ab_test']['verdict']}")
    if not s["source"].startswith("results.csv") or state["running"]:
        _say(f"source: {s['source']}")


# --------------------------------------------------------------------------------------------
# Charts: geometry here, markup in the template (autoescaped)
# --------------------------------------------------------------------------------------------


def _nice(v: float) -> float:
    if v <= 0:
        return 1.0
    mag = 10 ** math.floor(math.log10(v))
    return next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= v)


def _fmt(v: float) -> str:
    return f"{v:,}" if isinstance(v, int) else f"{v:,.2f}".rstrip("0").rstrip(".")


def _short(label: str, n: int = 28) -> str:
    return label if len(label) <= n else label[: n - 1] + "…"


def hbar(
    items: Sequence[tuple[str, float]], *, colors: Sequence[str] | None = None,
    width: int = 560, label_w: int = 190, empty: str = "none", limit: int = 16,
) -> dict[str, Any]:
    if len(items) > limit:  # many distinct labels (a chatty API): the long tail in one bar
        rest = items[limit - 1:]
        items = [*items[: limit - 1], (f"{len(rest)} others", sum(v for _, v in rest))]
        colors = colors[:limit] if colors else None
    top = max((v for _, v in items), default=0) or 1
    area = width - label_w - 70
    bars = []
    for i, (label, v) in enumerate(items):
        bars.append({
            "label": str(label), "short": _short(str(label)), "text": _fmt(v), "y": i * 24,
            "w": round(area * v / top, 1),
            "color": colors[i] if colors else COLORS["bar"],
        })
    return {"width": width, "height": len(items) * 24 + 4, "label_w": label_w, "bars": bars,
            "empty": empty}


def columns(
    values: Sequence[float], labels: Sequence[str], *, band: tuple[float, float] | None = None,
    width: int = 560, height: int = 200, every: int = 1, empty: str = "none",
    color: str = COLORS["bar"], highlight: Sequence[bool] | None = None,
) -> dict[str, Any]:
    left, bottom, topp = 44, 22, 8
    n = max(len(values), 1)
    plot_w, plot_h = width - left - 8, height - bottom - topp
    step = plot_w / n
    ymax = _nice(max(values, default=0))
    bars, ticks = [], []
    for i, v in enumerate(values):
        h = plot_h * v / ymax
        bars.append({"x": round(left + i * step + step * 0.1, 1), "w": round(step * 0.8, 1),
                     "y": round(topp + plot_h - h, 1), "h": round(h, 1), "label": labels[i],
                     "text": _fmt(v),
                     "color": COLORS["ref"] if highlight and highlight[i] and v else color})
        if i % every == 0:
            ticks.append({"x": round(left + i * step + step / 2, 1), "text": labels[i]})
    band_px = None
    if band is not None:
        band_px = {"x": round(left + band[0] * step, 1), "w": round((band[1] - band[0]) * step, 1)}
    return {"width": width, "height": height, "left": left, "top": topp, "plot_h": plot_h,
            "plot_w": plot_w, "bars": bars, "ticks": ticks, "band": band_px,
            "ymax": _fmt(ymax if ymax != int(ymax) else int(ymax)), "empty": empty,
            "has_data": any(values)}


def line(
    values: Sequence[float], *, ref: float | None, ref_label: str, x_labels: Sequence[str],
    width: int = 560, height: int = 200, color: str = COLORS["bar"], empty: str = "none",
) -> dict[str, Any]:
    left, bottom, topp = 44, 22, 8
    plot_w, plot_h = width - left - 8, height - bottom - topp
    n = len(values)
    ymax = _nice(max([*values, ref or 0]) * 1.1) if n else 1.0
    step = plot_w / max(n - 1, 1)

    def y(v: float) -> float:
        return round(topp + plot_h - plot_h * v / ymax, 1)

    pts = " ".join(f"{round(left + i * step, 1)},{y(v)}" for i, v in enumerate(values))
    k = max(n // 5, 1)
    ticks = [{"x": round(left + i * step, 1), "text": x_labels[i]} for i in range(0, n, k)]
    return {"width": width, "height": height, "left": left, "top": topp, "plot_h": plot_h,
            "plot_w": plot_w, "points": pts, "ticks": ticks, "color": color,
            "ref_y": y(ref) if ref is not None else None, "ref_label": ref_label,
            "ymax": _fmt(ymax if ymax != int(ymax) else int(ymax)), "empty": empty,
            "has_data": n > 0}


def _labelled(counts: dict[str, int]) -> list[tuple[str, int]]:
    """Chart bars under readable labels; the codes stay in summary.json and the exports."""
    return [(label(k), v) for k, v in counts.items()]


def charts(s: dict[str, Any]) -> dict[str, Any]:
    """Every chart of the page, drawn from the summary so its numbers are the JSON's."""
    out: dict[str, Any] = {}
    funnel = s["funnel"]
    out["funnel"] = hbar([(f["label"], f["rows"]) for f in funnel])
    out["dispositions"] = hbar(
        [(label(d), s["by_disposition"][d]) for d in DISPOSITIONS],
        colors=[COLORS[d] for d in DISPOSITIONS],
    )
    out["suppression"] = hbar(_labelled(s["suppression_reasons"]), empty="no row held back")
    out["pending"] = hbar(_labelled(s["pending_reasons"]), empty="no row pending")
    out["outcomes"] = hbar(_labelled(s["outcomes"]), empty="no call dialed yet")
    out["statuses"] = hbar(_labelled(s["statuses"]), empty="no call dialed yet")
    out["rejections"] = hbar(list(s["rejections"]["by_reason"].items()), empty="no 409")
    out["http409"] = hbar(list(s["rejections"]["http_409_by_code"].items()),
                          empty="no 409 response")
    out["row_errors"] = hbar(list(s["errors"]["by_reason"].items()), empty="no error")
    out["http_errors"] = hbar(list(s["http"]["errors_by_code"].items()),
                              empty="no HTTP error")
    ppa = s["retries"]["posts_per_attempt"]
    out["posts"] = hbar([(f"{k} POST{'s' if k != '1' else ''}", v) for k, v in ppa.items()],
                        empty="no POST sent")
    tl = s["timeline"]
    if tl["bucket_seconds"]:
        b = tl["bucket_seconds"]
        t0 = datetime.fromisoformat(tl["start"].replace("Z", "+00:00"))
        long_span = b * len(tl["requests"]) > 86400
        labels = [
            (t0 + pd.Timedelta(seconds=i * b)).strftime("%m-%d %H:%M" if long_span
                                                        else "%H:%M:%S")
            for i in range(len(tl["requests"]))
        ]
        out["placed"] = line([round(x / b, 3) for x in tl["requests"]],
                             ref=tl["calls_per_second"], ref_label="configured pacing",
                             x_labels=labels)
        out["live"] = line(tl["live"], ref=tl["max_live_calls"], ref_label="max live calls",
                           x_labels=labels, color=COLORS["live"])
    else:
        out["placed"] = line([], ref=None, ref_label="", x_labels=[],
                             empty="no call placed yet")
        out["live"] = out["placed"]
    lh = s["local_hours"]
    start_h = int(lh["window"][0][:2]) + int(lh["window"][0][3:]) / 60
    end_h = int(lh["window"][1][:2]) + int(lh["window"][1][3:]) / 60
    outside = [h + 1 <= start_h or h >= end_h for h in range(24)]  # wholly outside
    out["hours"] = columns(lh["by_hour"], [f"{h:02d}" for h in range(24)],
                           band=(start_h, end_h), every=2, highlight=outside,
                           empty="no call placed yet")
    d = s["durations"]
    hist = d["histogram"]
    if hist["counts"]:
        w = hist["bin_seconds"]
        labs = [f"{i * w}" for i in range(len(hist["counts"]))]
        out["durations"] = columns(hist["counts"], labs, every=max(len(labs) // 8, 1))
    else:
        out["durations"] = columns([], [], empty="no duration recorded")
    return out


# --------------------------------------------------------------------------------------------
# HTML
# --------------------------------------------------------------------------------------------

_JSON_ESCAPES = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026",
                               "\u2028": "\\u2028", "\u2029": "\\u2029"})


def script_json(data: Any) -> str:
    """JSON safe inside <script>: no "</script>", "<!--" or line separator can survive."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"),
                      allow_nan=False).translate(_JSON_ESCAPES)


@lru_cache(maxsize=1)
def _env() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("campaign_dialer", "templates"),
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = _n
    env.filters["pct"] = _pct
    return env


@lru_cache(maxsize=1)
def _script() -> tuple[str, str]:
    """The page's one script and its CSP hash: nothing else may run, even if injected."""
    text = _env().loader.get_source(_env(), "report.js")[0]  # type: ignore[union-attr]
    return text, base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


def _cell(v: Any) -> Any:
    if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
        return None
    if isinstance(v, int | np.integer) and not isinstance(v, bool):
        return int(v)
    if isinstance(v, np.floating | float):
        return round(float(v), 1)
    return str(v)[:300]


TIME_COLUMNS = ("placed_at", "ended_at", "dialed_at")
# Standard columns the page shows first; the input's own columns follow, then the rest.
PAGE_COLUMNS = ("row", "contact_id", "phone_e164", "disposition", "reason", "outcome", "status",
                "agent_id", "duration_seconds", "attempts", "placed_at", "recording_url",
                "transcript_excerpt")
PAGE_TAIL = ("detail",)  # the other evidence columns are in results.csv and results.parquet
# Evidence a compliance officer reads per row, shown when a campaign has any of it.
PAGE_EVIDENCE = ("dnc_lists_checked", "rnd_queried_at")
COLUMN_LABELS = {"row": "Row", "contact_id": "Contact", "phone_e164": "Phone",
                 "disposition": "Fate", "reason": "Reason", "outcome": "Outcome",
                 "status": "Call ended", "agent_id": "Agent", "duration_seconds": "Talk (s)",
                 "attempts": "Attempts", "placed_at": "Placed", "recording_url": "Recording",
                 "transcript_excerpt": "Transcript", "phone_raw": "Phone as given",
                 "detail": "Detail", "local_times": "Their local time",
                 "consent_source": "Consent source",
                 "dnc_lists_checked": "DNC lists checked (as of)",
                 "rnd_queried_at": "Reassigned check (queried)"}
FILTER_COLUMNS = ("disposition", "reason", "outcome", "agent_id")


def _local_text(s: pd.Series, zone: Any) -> pd.Series:
    """ISO UTC instants as "2026-06-09 13:04:05" in the display zone (unreadable kept as is)."""
    t = _times(s)
    out = t.dt.tz_convert(zone).dt.strftime("%Y-%m-%d %H:%M:%S")
    return out.where(t.notna(), s.astype(object)).astype(object)


def _column_cells(s: pd.Series) -> list[Any]:
    """One column as JSON-ready cells (what `_cell` does per value, a column at a time)."""
    if pd.api.types.is_bool_dtype(s.dtype):
        return [None if v is None else str(v) for v in s.to_numpy(dtype=object, na_value=None)]
    if pd.api.types.is_integer_dtype(s.dtype):
        return list(s.to_numpy(dtype=object, na_value=None))
    if pd.api.types.is_float_dtype(s.dtype):
        return s.round(1).astype(object).where(s.notna(), None).tolist()
    text = s.astype("string").str.slice(0, 300)
    return list(text.to_numpy(dtype=object, na_value=None))


def table_data(df: pd.DataFrame, cap: int | None = TABLE_ROW_CAP, *, zone: Any = None,
               segment_by: Sequence[str] = ()) -> dict[str, Any]:
    """Every row for the page's table (paged there), the input's own columns kept."""
    from campaign_dialer.results import RESULT_COLUMNS

    head = df if cap is None else df.head(cap)
    inputs = [c for c in head.columns if c not in RESULT_COLUMNS
              and c not in PAGE_COLUMNS and c not in PAGE_TAIL]
    evidence = [c for c in PAGE_EVIDENCE
                if c in head.columns and head[c].astype("string").fillna("").str.len().gt(0).any()]
    cols: dict[str, list[Any]] = {}
    for c in (*PAGE_COLUMNS, *inputs, *evidence, *PAGE_TAIL):
        if c not in head.columns:
            if c in ("transcript_excerpt",):
                continue
            cols[c] = [None] * len(head)
        elif c in TIME_COLUMNS and zone is not None:
            cols[c] = _column_cells(pd.Series(_local_text(head[c], zone), dtype="string"))
        else:
            cols[c] = _column_cells(head[c])
    rows = [list(r) for r in zip(*cols.values(), strict=True)]
    segs = [c if c in cols else f"input.{c}" for c in segment_by]
    filters = [c for c in (*FILTER_COLUMNS, *segs) if c in cols]
    coded = {str(v) for c in ("disposition", "reason", "outcome", "status")
             for v in set(cols.get(c, [])) if v is not None and v is not pd.NA}
    return {"columns": list(cols), "labels": {c: COLUMN_LABELS.get(c, c) for c in cols},
            "codes": {v: label(v) for v in sorted(coded)},
            "filters": filters, "rows": rows, "total": len(df),
            "zone": getattr(zone, "key", None)}


def _when(v: Any, zone: Any) -> str:
    """An ISO instant as people read it: display zone, to the minute, zone named."""
    if not v:
        return "-"
    try:
        t = datetime.fromisoformat(str(v).replace("Z", "+00:00"))
    except ValueError:
        return str(v)
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t.astimezone(zone).strftime("%a %d %b %Y %H:%M %Z")


def render_html(
    s: dict[str, Any], df: pd.DataFrame, redact: Redactor, *, zone: Any = UTC,
    segment_by: Sequence[str] = (),
) -> str:
    from markupsafe import Markup

    script, script_sha256 = _script()
    table = table_data(df, None, zone=zone, segment_by=segment_by)
    html = _env().get_template("report.html.j2").render(
        s=s, charts=charts(s), colors=COLORS, labels=HEADLINE_LABELS, files=FILES,
        table_labels=table["labels"], when=lambda v: _when(v, zone),
        table_total=table["total"], table_columns=table["columns"],
        # Markup only for text made safe here: escaped JSON and our own static script.
        rows_json=Markup(redact(script_json(table))),
        script=Markup(script), script_sha256=script_sha256,
    )
    return redact(html)


def _write_atomic(path: Path, write: Callable[[Path], object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_text(path: Path, text: str) -> None:
    _write_atomic(path, lambda p: p.write_text(text, encoding="utf-8"))


def write_parquet(df: pd.DataFrame, path: Path) -> None:
    """Raw values (no formula guard): Parquet is read by programs, not spreadsheets."""
    _write_atomic(path, lambda p: df.to_parquet(p, index=False, engine="pyarrow"))


def build(campaign: Campaign) -> Path:
    """Write report.html, summary.json and results.parquet to the output dir."""
    paths, _ = _build(campaign)
    return paths["report.html"]


def _build(campaign: Campaign) -> tuple[dict[str, Path], dict[str, Any]]:
    data = load(campaign, refresh_results=True)
    s = summarize(data)
    redact = _redactor(campaign)
    out = campaign.output_dir
    paths = {name: out / name for name in FILES}
    write_parquet(data.df, paths["results.parquet"])
    _write_text(paths["summary.json"], redact(json.dumps(s, indent=2, allow_nan=False)) + "\n")
    _write_text(paths["report.html"], render_html(
        s, data.df, redact, zone=display_zone(campaign),
        segment_by=campaign.model.report.segment_by))
    return paths, s


# --------------------------------------------------------------------------------------------
# Comparisons
# --------------------------------------------------------------------------------------------

COMPARE_METRICS = (
    *HEADLINE_LABELS.items(),
    ("connected_of_dialed", "Connected / dialed"),
    ("median_duration", "Median duration (s)"),
)


def _metric(side: dict[str, Any], key: str) -> float | int | None:
    if key in side["headline"]:
        return side["headline"][key]
    if key in side["rates"]:
        return side["rates"][key]
    if key == "median_duration":
        return side["durations"]["median"]
    return None


def compare_rows(sides: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for key, label in COMPARE_METRICS:
        a, b = (_metric(x, key) for x in sides)
        pct = key == "connected_of_dialed"
        diff = None if a is None or b is None else b - a
        out.append({
            "key": key, "label": label,
            "a": _pct(a) if pct else _n(a), "b": _pct(b) if pct else _n(b),
            "diff": "-" if diff is None else (
                f"{100 * diff:+.1f} pt" if pct else
                f"{diff:+,}" if isinstance(diff, int) else f"{diff:+.1f}"),
        })
    return out


def _side(title: str, s: dict[str, Any]) -> dict[str, Any]:
    return {
        "title": title, "s": s,
        "funnel": hbar([(f["label"], f["rows"]) for f in s["funnel"]], width=460, label_w=170),
        "outcomes": hbar(list(s["outcomes"].items()), width=460, label_w=170,
                         empty="no call dialed"),
        "statuses": hbar(list(s["statuses"].items()), width=460, label_w=170,
                         empty="no call dialed"),
    }


def compare(
    a: Campaign, b: Campaign | None
) -> tuple[list[str], list[dict[str, Any]], Path]:
    """Side by side: two campaigns, or the agents of one (b None) when rows were split."""
    sa = summarize(load(a))
    if b is None:
        agents = sa["agents"]
        if len(agents) < 2:
            raise CompareError(f"{a.name}: its rows were not split between agents; "
                              "give two campaigns to compare")
        sides = [{**x, "campaign": a.name} for x in agents[:2]]
        titles = [f"agent {x['agent_id']}" for x in agents[:2]]
        return titles, sides, a.output_dir / f"compare-{a.name}-agents.html"
    titles = [a.name, b.name]
    if a.name == b.name:
        titles = [f"{a.name} ({a.path.parent.name})", f"{b.name} ({b.path.parent.name})"]
    sides = [sa, summarize(load(b))]
    return titles, sides, a.output_dir / f"compare-{a.name}-vs-{b.name}.html"


def write_compare(
    path: Path, titles: Sequence[str], sides: Sequence[dict[str, Any]], redact: Redactor
) -> Path:
    html = _env().get_template("compare.html.j2").render(
        title=f"{titles[0]} vs {titles[1]}", rows=compare_rows(sides),
        sides=[_side(t, x) for t, x in zip(titles, sides, strict=True)],
        generated_at=_iso(datetime.now(UTC)), colors=COLORS,
    )
    _write_text(path, redact(html))
    return path


def print_compare(titles: Sequence[str], sides: Sequence[dict[str, Any]]) -> None:
    from rich.table import Table

    t = Table(title=f"{titles[0]} vs {titles[1]}")
    t.add_column("figure")
    t.add_column(titles[0], justify="right")
    t.add_column(titles[1], justify="right")
    t.add_column("difference", justify="right")
    for r in compare_rows(sides):
        t.add_row(r["label"], r["a"], r["b"], r["diff"])
    log.out().print(t)


# --------------------------------------------------------------------------------------------
# The command
# --------------------------------------------------------------------------------------------


def command(paths: list[Path], *, text: bool = False, as_json: bool = False) -> ExitCode:
    if not 1 <= len(paths) <= 2:
        _say("report takes one campaign file, or two to compare")
        return ExitCode.USAGE
    campaigns = [load_campaign(p, check_inputs=False) for p in paths]
    for c in campaigns:
        if not c.journal_path.exists():
            raise NotRunYet(f"{c.name}: nothing has run yet, so there is nothing to report; "
                            f"run the campaign first (no journal at {c.journal_path})")
    redact = Redactor(tuple({s for c in campaigns for s in _redactor(c).secrets}))
    if len(campaigns) == 2:
        a, b = campaigns
        same = a.journal_path.resolve() == b.journal_path.resolve()
        titles, sides, path = compare(a, None if same else b)
        if as_json:
            print(redact(json.dumps({"compare": titles, "sides": sides}, indent=2)))
            return ExitCode.OK
        print_compare(titles, sides)
        if not text:
            write_compare(path, titles, sides, redact)
            _say(f"comparison: {path}")
            _say(f"            {path.resolve().as_uri()}")
        return ExitCode.OK
    c = campaigns[0]
    if as_json:
        print(redact(json.dumps(summary(c), indent=2)))
        return ExitCode.OK
    if text:
        print_text(summary(c))
        return ExitCode.OK
    files, s = _build(c)
    print_text(s)
    _say(f"report:  {files['report.html']}")
    _say(f"         {files['report.html'].resolve().as_uri()}")
    _say(f"summary: {files['summary.json']}")
    _say(f"results: {c.results_path}")
    _say(f"         {files['results.parquet']}")
    return ExitCode.OK
