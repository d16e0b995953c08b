"""Every figure of the summary, computed once from the rows and the journal's facts."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, time
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa

from campaign_dialer.report.aggregate import Group, Rows, count, tally, value_counts
from campaign_dialer.report.business import ab_test, business, display_zone, wilson
from campaign_dialer.report.callerids import caller_id_figures
from campaign_dialer.report.common import (
    DEFINITIONS,
    FEDERAL_WINDOW_MIN,
    SCHEMA_VERSION,
    ratio,
    text_of,
)
from campaign_dialer.report.data import JournalFacts, Loaded, load
from campaign_dialer.report.schedule import schedule_comparison
from campaign_dialer.store.access import caller_id_rests
from campaign_dialer.vocab import (
    CONSENT_REASONS,
    CONTACT_REASONS,
    DISPOSITIONS,
    DNC_REASONS,
    HISTORY_REASONS,
    WINDOW_REASONS,
)

if TYPE_CHECKING:
    from campaign_dialer.config import Campaign

# The funnel's stages, in the vocabulary's words; the contacts file's own Do-Not-Call box
# counts where a reader looks for it (DNC), every other contacts reason as "not valid".
FUNNEL_CONTACT_REASONS = tuple(r for r in CONTACT_REASONS if r != "dnc_flag")
FUNNEL_DNC_REASONS = ("dnc_flag", *DNC_REASONS)


def summary(campaign: Campaign) -> dict[str, Any]:
    """The JSON summary: the figures the page and the terminal show, for dashboards (from the
    few columns of results.csv they read: `data.load(lean=True)`)."""
    data = load(campaign, lean=True)
    try:
        return summarize(data)
    finally:
        data.close()


def summarize(data: Loaded, *, generated_at: datetime | None = None) -> dict[str, Any]:
    """Every figure of every output, computed once (and so never disagreeing)."""
    campaign, df, facts = data.campaign, data.df, data.facts
    cfg = campaign.model
    calls = facts.calls
    rows = Rows(df)
    groups = rows.groups()
    figs = figures_of(groups, _dialed_durations(df, rows.dialed), calls)
    start_min, end_min = _window_minutes(campaign)
    out: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "campaign": campaign.name,
        "agent_id": cfg.campaign.agent_label,
        "agents_configured": [{"id": a, "weight": w} for a, w in cfg.campaign.agents],
        "display_timezone": display_zone(campaign).key,
        "generated_at": iso_utc(generated_at or datetime.now(UTC)),
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
        "suppression_reasons": _reasons_of(groups, "suppressed"),
        "pending_reasons": _reasons_of(groups, "pending"),
        "rejections": {
            "rows": figs["by_disposition"]["rejected"],
            "by_reason": _reasons_of(groups, "rejected"),
            "http_409_by_code": _http_codes(facts.http, 409),
        },
        "errors": {
            "rows": figs["by_disposition"]["error"],
            "by_reason": _reasons_of(groups, "error"),
        },
        "retries": _retries(calls),
        "http": _http(facts.http),
        "timeline": timeline(calls, cfg.pacing.calls_per_second, cfg.api.max_live_calls),
        "local_hours": _local_hours(calls, start_min, end_min),
        "evidence": _evidence(df),
        "runs": facts.runs,
        "agents": agent_figures(rows, calls, cfg.report.success_outcomes),
    }
    out["caller_ids"] = caller_id_figures(
        campaign, calls, caller_id_rests(campaign), display_zone(campaign))
    out.update(business(df, calls, campaign, rows=rows, groups=groups))
    out["ab_test"] = ab_test(out["agents"])
    out["schedule"] = schedule_comparison(df, campaign)
    return out


def figures(df: pd.DataFrame, calls: pd.DataFrame) -> dict[str, Any]:
    """Row figures of a campaign, or of one agent's share of it (compared side by side)."""
    rows = Rows(df)
    return figures_of(rows.groups(), _dialed_durations(df, rows.dialed), calls)


def _dialed_durations(df: pd.DataFrame, dialed: np.ndarray) -> pd.Series:
    if "duration_seconds" not in df:
        return pd.Series(dtype=float)
    return df["duration_seconds"][dialed]


def figures_of(
    groups: Sequence[Group], durations: pd.Series, calls: pd.DataFrame
) -> dict[str, Any]:
    """`figures` from the rows counted per fate (`aggregate.Rows.groups`)."""
    n = count(groups)
    by_disp = {d: count(groups, lambda g, d=d: g.disposition == d) for d in DISPOSITIONS}
    eligible = n - count(groups, lambda g: g.held)
    headline = {
        "rows": n,
        "eligible": eligible,
        "dialed": by_disp["dialed"],
        "connected": count(groups, lambda g: g.connected),
        "outcomes": count(groups, lambda g: g.dialed and g.outcome != ""),
        "rejected": by_disp["rejected"],
        "suppressed": by_disp["suppressed"],
        "errors": by_disp["error"],
        "pending": by_disp["pending"],
        "calls_placed": int(calls["placed_at"].notna().sum()) if len(calls) else 0,
    }
    stages = [("rows", "Input rows", n)]
    left = n
    for key, label, reasons in (
        ("valid", "Valid, unique numbers", FUNNEL_CONTACT_REASONS),
        ("not_dnc", "Not on a DNC list", FUNNEL_DNC_REASONS),
        ("consent", "With consent", CONSENT_REASONS),
        ("window", "Inside the calling window", WINDOW_REASONS),
        ("not_recent", "Not called recently by another campaign", HISTORY_REASONS),
    ):
        left -= count(groups, lambda g, reasons=reasons: g.held and g.reason in reasons)
        stages.append((key, label, left))
    # Rows the run itself held back (a canceled campaign's unfinished rows, rows never
    # planned) pass every check above; a stage of their own, shown only when there are
    # some, brings the last check stage down to the eligible count.
    by_run = left - headline["eligible"]
    if by_run:
        left -= by_run
        stages.append(("not_canceled", "Not canceled or left unplanned", left))
    stages += [
        ("eligible", "Eligible", headline["eligible"]),
        ("dialed", "Dialed", headline["dialed"]),
        ("connected", "Connected", headline["connected"]),
    ]
    pairs = Counter[tuple[str, str]]()
    for g in groups:
        pairs[(g.disposition, g.reason)] += g.rows
    dialed = lambda g: g.dialed  # noqa: E731
    return {
        "headline": headline,
        "rates": {
            "eligible_of_rows": ratio(headline["eligible"], n),
            "dialed_of_eligible": ratio(headline["dialed"], headline["eligible"]),
            "connected_of_dialed": ratio(headline["connected"], headline["dialed"]),
        },
        "by_disposition": by_disp,
        "by_reason": [
            {"disposition": d, "reason": r or None, "rows": k}
            for (d, r), k in sorted(pairs.items(), key=lambda kv: (-kv[1], kv[0]))
        ],
        "funnel": [{"stage": k, "label": label, "rows": v} for k, label, v in stages],
        "statuses": value_counts(tally(groups, lambda g: g.status, dialed), missing="(none)"),
        "outcomes": value_counts(tally(groups, lambda g: g.outcome, dialed),
                                 missing="(none)"),
        "durations": _durations(durations),
    }


def _reasons_of(groups: Sequence[Group], disposition: str) -> dict[str, int]:
    return value_counts(tally(groups, lambda g: g.reason,
                              lambda g: g.disposition == disposition))


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


def iso_utc(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def parse_times(s: pd.Series) -> pd.Series:
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


def timeline(calls: pd.DataFrame, cps: float, max_live: int) -> dict[str, Any]:
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
    sent = parse_times(calls["intent_at"])[posts.gt(0)].dropna()
    placed = parse_times(calls["placed_at"])
    ok = placed.notna()
    ended = parse_times(calls["ended_at"])[ok]
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
        "start": iso_utc(t0.to_pydatetime()),
        "end": iso_utc(t_end.to_pydatetime()),
        "requests": [int(x) for x in requests],
        "live": [int(x) for x in live],
        "peak_requests_in_1s": int(in_1s.max()) if len(srt) else 0,
        "peak_calls_per_second": round(float(rates.max()), 2) if len(rates) else None,
        "peak_live": int(live.max()),
        "mean_requests_per_second": round((len(srt) - 1) / active, 3) if active > 0 else None,
    }


_LOCAL_TIME = re.compile(r"^(?:\d{4}-\d{2}-\d{2}[T ])?(\d{1,2}):(\d{2})")


_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_local_times(text: str) -> list[int] | None:
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
    texts = text_of(placed["local_times"]).str.strip()
    texts = texts[texts.ne("")]
    res["with_local_times"] = len(texts)
    codes, uniques = pd.factorize(texts)
    parsed = [parse_local_times(u) for u in uniques]
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
    dialed = text_of(df["disposition"]).eq("dialed")
    out: dict[str, Any] = {"dialed_rows": int(dialed.sum())}
    for c in ("consent_event_at", "consent_source", "local_times", "dnc_lists_checked",
              "dialed_at", "rnd_queried_at"):
        out[f"with_{c}"] = int((dialed & text_of(df[c]).ne("")).sum()) if c in df else 0
    # the lists (with their kinds and dates) dialed rows were checked against, and how many
    lists = text_of(df["dnc_lists_checked"])[dialed] if "dnc_lists_checked" in df else None
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


def agent_figures(
    rows: Rows, calls: pd.DataFrame, success: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """Per-agent figures when rows were split between agents (else empty): the rows counted
    per agent (of their last attempt) and fate."""
    agents = _row_agents(calls).dropna()
    names = sorted({str(a) for a in agents.tolist()})
    if len(names) < 2:
        return []
    df = rows.df
    of_row = df["row"].map(pd.Series(agents.astype(str).to_numpy(), index=agents.index))
    agent = of_row.astype(object).where(of_row.notna(), None).to_numpy(dtype=object)
    groups = rows.groups(pa.array(agent, type=pa.string()))
    out = []
    for name in names:
        mine = [g for g in groups if g.key == name]
        sub_calls = calls[calls["agent_id"].astype(str).eq(name)]
        durations = _dialed_durations(df, rows.dialed & (agent == name))
        figs = figures_of(mine, durations, sub_calls)
        dialed = figs["headline"]["dialed"]
        conv = count(mine, lambda g: g.won(success))
        lo, hi = wilson(conv, dialed)
        out.append({"agent_id": name, **figs, "conversion": {
            "conversions": conv, "dialed": dialed, "rate": ratio(conv, dialed),
            "ci95": [lo, hi]}})
    return out
