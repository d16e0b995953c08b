"""The summary on a terminal (end of a run, `report --text`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pandas as pd
from rich.table import Table

from campaign_dialer import log
from campaign_dialer.exitcodes import ExitCode
from campaign_dialer.report.common import TERMINAL_LABELS
from campaign_dialer.report.data import Loaded, read_journal
from campaign_dialer.report.metrics import summarize
from campaign_dialer.results import Redactor, redactor_for, typed_frame
from campaign_dialer.vocab import (
    DISPOSITIONS,
)

if TYPE_CHECKING:
    from campaign_dialer.config import Campaign


def print_summary(
    campaign: Campaign, journal: Any, df: pd.DataFrame, *, exit_code: ExitCode, message: str = ""
) -> None:
    con = log.out()
    try:
        data = Loaded(campaign, redactor_for(campaign).frame(typed_frame(df)),
                      read_journal(journal), RUN_SOURCE)
        print_text(summarize(data))
    except Exception as e:  # a summary bug must not turn a finished run into a failure
        log.get("report", campaign=campaign.name).warning("summary_failed", error=repr(e))
        disp = Counter(df["disposition"].tolist())
        con.print(" ".join(f"{k}={disp.get(k, 0)}" for k in DISPOSITIONS))
    con.print(f"exit={int(exit_code)}" + (f" ({message})" if message else ""))


# Where the summary at the end of a run says its rows come from (`print_text` names a source
# that is not results.csv).
RUN_SOURCE = "results.csv (written by this run)"


def print_run_summary(
    s: dict[str, Any] | None, fate_counts: Mapping[tuple[str, str], int], *,
    exit_code: ExitCode, message: str = "",
) -> None:
    """The end of a run: the report's summary `s` (built from the results the run wrote),
    else, when the report could not be built, the rows per fate (the journal's counts)."""
    con = log.out()
    printed = False
    if s is not None:
        try:
            print_text({**s, "source": RUN_SOURCE})
            printed = True
        except Exception as e:  # a summary bug must not turn a finished run into a failure
            log.get("report", campaign=s.get("campaign")).warning(
                "summary_failed", error=repr(e))
    if not printed:
        disp: Counter[str] = Counter()
        for (d, _reason), n in fate_counts.items():
            disp[d] += n
        con.print(" ".join(f"{k}={disp.get(k, 0)}" for k in DISPOSITIONS))
    con.print(f"exit={int(exit_code)}" + (f" ({message})" if message else ""))


def num(v: Any) -> str:
    return "-" if v is None else f"{v:,}" if isinstance(v, int) else str(v)


def pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.1f}%"


def say(text: str) -> None:
    """A plain line: no markup read from data, no hard wraps inside paths, no key."""
    text = Redactor()(log.scrub(text))
    log.out().print(text, highlight=False, markup=False, soft_wrap=True)


def print_text(s: dict[str, Any]) -> None:
    """The same figures as the page, for the end of a run and `report --text`."""
    con = log.out()
    h = s["headline"]
    state = s["state"]
    runs = f"{state['runs']} run{'' if state['runs'] == 1 else 's'}"
    last = state["last_exit_code"]
    say(f"{s['campaign']}: {state['label']} ({runs}"
         + (f", last exit code {last}" if last is not None else "") + ")")
    head = Table(show_header=False)
    head.add_column("figure")
    head.add_column("rows", justify="right")
    for k, label in TERMINAL_LABELS.items():
        head.add_row(label, num(h[k]))
    head.add_row("Connected / dialed", pct(s["rates"]["connected_of_dialed"]))
    con.print(head)
    t = Table(title="Rows by fate and reason")
    t.add_column("fate")
    t.add_column("reason")
    t.add_column("rows", justify="right")
    for item in s["by_reason"]:
        t.add_row(item["disposition"], item["reason"] or "-", num(item["rows"]))
    con.print(t)
    for title, counts in (("outcomes", s["outcomes"]), ("statuses", s["statuses"])):
        if counts:
            say(f"{title}: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
    lh = s["local_hours"]
    say(f"local hours: {lh['calls']:,} calls placed, {lh['outside_window']:,} outside the "
         f"{'–'.join(lh['window'])} window, {lh['calls'] - lh['with_local_times']:,} without "
         "local time evidence" + ("  << CHECK" if lh["outside_window"] else ""))
    tl = s["timeline"]
    if tl["bucket_seconds"]:
        rate = tl.get("peak_calls_per_second")
        mean = tl.get("mean_requests_per_second")
        say(f"pacing: configured {tl['calls_per_second']:g} new calls/s, evenly spaced; "
             + (f"peak {rate:.1f}/s over any 1 s, " if rate is not None else "")
             + (f"{mean:.1f}/s on average; " if mean is not None else "")
             + f"peak {tl['peak_live']} live (limit {tl['max_live_calls']})")
    d = s["durations"]
    if d["calls"]:
        say(f"durations: {d['calls']:,} calls, median {d['median']:g}s, p90 {d['p90']:g}s, "
             f"max {d['max']:g}s")
    r, hp = s["retries"], s["http"]
    errs = ", ".join(f"{k} {v:,}" for k, v in list(hp["errors_by_code"].items())[:6])
    say(f"retries: {r['resent_posts']:,} POST re-sends over {r['attempts_resent']:,} "
         f"attempts, {r['redials']:,} redials; HTTP: {hp['requests']:,} requests, "
         f"{hp['errors']:,} errors" + (f" ({errs})" if errs else ""))
    if s["rejections"]["rows"]:
        say("409 rejections: " + ", ".join(
            f"{k} {v:,}" for k, v in s["rejections"]["by_reason"].items()))
    tiles = s.get("tiles")
    if tiles:
        cost = "" if tiles["cost"] is None else (
            f", cost {tiles['cost']:,.2f}"
            + (f" ({tiles['cost_per_conversion']:,.2f} per conversion)"
               if tiles["cost_per_conversion"] is not None else ""))
        say(f"sales: reached {tiles['reached']:,} of {tiles['dialed']:,} dialed "
             f"({pct(tiles['answer_rate'])}), conversions {tiles['conversions']:,} "
             f"({pct(tiles['conversion_rate'])}), talk {tiles['talk_minutes']:,} min{cost}")
    for a in s.get("agents", []):
        ah = a["headline"]
        conv = a.get("conversion") or {}
        ci = conv.get("ci95") or [None, None]
        say(f"agent {a['agent_id']}: dialed {ah['dialed']:,}, connected {ah['connected']:,}, "
             f"rejected {ah['rejected']:,}, errors {ah['errors']:,}"
             + (f", conversion {pct(conv.get('rate'))} (95% {pct(ci[0])}–{pct(ci[1])})"
                if conv else ""))
    if s.get("ab_test"):
        say(f"A/B: {s['ab_test']['verdict']}")
    if s.get("schedule"):
        sc = s["schedule"]
        for arm in ("adaptive", "holdout"):
            x = sc[arm]
            say(f"schedule {arm}: answered {x['answered']:,} of {x['dialed']:,} "
                 f"({pct(x['answer_rate'])}, 95% {pct(x['answer_ci95'][0])}–"
                 f"{pct(x['answer_ci95'][1])}), conversion {pct(x['conversion_rate'])} "
                 f"(95% {pct(x['conversion_ci95'][0])}–{pct(x['conversion_ci95'][1])})")
        say(f"schedule: {sc['answered_test']['verdict']}; {sc['conversion_test']['verdict']}")
    if not s["source"].startswith("results.csv") or state["running"]:
        say(f"source: {s['source']}")
