"""What a report reads: the journal's facts (through the store) and the rows (from results)."""

from __future__ import annotations

from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from campaign_dialer.errors import NotRunYet
from campaign_dialer.report.common import ReportError
from campaign_dialer.results import agrees, current, redactor_for
from campaign_dialer.store import JournalError
from campaign_dialer.store.access import existing_journal, on_postgres, running, where
from campaign_dialer.store.model import CALL_FACT_COLUMNS, HTTP_TALLY_COLUMNS, json_object

if TYPE_CHECKING:
    from campaign_dialer.config import Campaign


@dataclass
class JournalFacts:
    """What the report needs from the journal, read in one snapshot."""

    calls: pd.DataFrame  # one row per attempt
    http: pd.DataFrame  # HTTP exchanges grouped by method, status, code, error
    runs: list[dict[str, Any]]
    control: str
    last_exit_code: int | None
    fate_counts: Counter[tuple[str, str]]
    # The run lock (SQLite) or a live process in the registry (PostgreSQL), where known: a
    # killed run left no end time.
    lock_held: bool | None = None

    @property
    def running(self) -> bool:
        # Any open run: on PostgreSQL several processes run at once, the newest may be done.
        open_run = any(r.get("ended_at") is None for r in self.runs)
        return open_run and self.lock_held is not False


def read_journal(journal: Any) -> JournalFacts:
    """What the report needs from the journal, through its typed reads."""
    calls = pd.DataFrame.from_records(journal.call_facts(), columns=list(CALL_FACT_COLUMNS))
    http = pd.DataFrame.from_records(journal.http_tally(), columns=list(HTTP_TALLY_COLUMNS))
    http = http.rename(columns={"events": "count"})
    runs = []
    for r in journal.runs():
        s = json_object(r.get("summary"))
        runs.append({"id": r["id"], "started_at": r["started_at"], "ended_at": r["ended_at"],
                     "exit_code": r["exit_code"], "placed": s.get("placed"),
                     "completed": s.get("completed"), "clock_source": s.get("clock_source")})
    counts: Counter[tuple[str, str]] = Counter(journal.fate_counts())
    last = journal.get_meta("last_exit_code")
    return JournalFacts(
        calls=calls, http=http, runs=runs, control=journal.control(),
        last_exit_code=int(last) if last not in (None, "") else None,
        fate_counts=counts,
    )



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
    with ExitStack() as stack:
        try:
            journal = stack.enter_context(existing_journal(campaign))
        except JournalError as e:
            if on_postgres(campaign):
                raise  # the database's own exit code (unreachable 69, refused 1...)
            raise ReportError(str(e)) from None  # a journal file that is not one
        if journal is None:
            raise NotRunYet(f"{campaign.name}: nothing has run yet, so there is nothing to "
                            f"report; run the campaign first (no journal at {where(campaign)})")
        # The registry (PostgreSQL) or the run lock, read before the snapshot: a process
        # that dies is counted out once its lease expires.
        lock_held = running(campaign, journal)
        with journal.snapshot():
            facts = read_journal(journal)
            facts.lock_held = lock_held
            df, source = current(
                campaign, journal, running=facts.running, refresh=refresh_results,
                fresh=lambda old: agrees(old, facts.fate_counts),
            )
            df = _with_transcript_excerpts(df, journal)
    return Loaded(campaign, redactor_for(campaign).frame(df), facts, source)


TRANSCRIPT_EXCERPT_CHARS = 200


def _with_transcript_excerpts(df: pd.DataFrame, journal: Any) -> pd.DataFrame:
    """The page's rows show the start of each call's final transcript (webhooks record it)."""
    texts = {t["call_id"]: t["text"] for t in journal.transcripts() if t.get("text")}
    if not texts or "call_id" not in df.columns:
        return df
    excerpt = {k: " ".join(str(v).split())[:TRANSCRIPT_EXCERPT_CHARS] for k, v in texts.items()}
    out = df.copy()
    # Only rows with a call are looked up (a million-row campaign dials a few thousand).
    ids = out["call_id"]
    called = ids.notna().to_numpy()
    col = pd.Series(pd.NA, index=out.index, dtype="string")
    if called.any():
        col[called] = ids[called].map(excerpt).astype("string")
    out["transcript_excerpt"] = col
    return out
