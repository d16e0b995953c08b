"""What a report reads: the journal's facts (through the store) and the rows (from results)."""

from __future__ import annotations

import gc
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from campaign_dialer.errors import NotRunYet
from campaign_dialer.memory import release_memory
from campaign_dialer.report.common import ReportError
from campaign_dialer.results import (
    Redactor,
    ResultsFile,
    agrees,
    current,
    redactor_for,
    results_table_frame,
    unneutralize_array,
)
from campaign_dialer.store import JournalError
from campaign_dialer.store.access import existing_journal, on_postgres, running, where
from campaign_dialer.store.model import CALL_FACT_COLUMNS, HTTP_TALLY_COLUMNS, json_object
from campaign_dialer.vocab import DIALED

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



# The columns of results.csv the figures (`metrics.summarize`), `results.agrees` and the page's
# selection of rows (`rows.select_rows`) read. Of these, the figures read every row of
# `ROW_COLUMNS`, and of the others (with `[report] segment_by`'s columns, as named in
# results.csv or under `input.`) only the dialed rows' values: a lean load blanks them on the
# other rows (a million-row campaign dials a few thousand). A figure that reads another column,
# or another row of these, adds it here (the tests compare every output with a whole-frame
# load). The page's rows and results.parquet read every column.
ROW_COLUMNS = ("row", "disposition", "reason", "status", "outcome", "ended_reason")
DIALED_COLUMNS = (
    "contact_id", "phone_e164", "duration_seconds", "local_times", "consent_event_at",
    "consent_source", "dnc_lists_checked", "dialed_at", "rnd_queried_at",
)


def figure_columns(campaign: Campaign) -> tuple[set[str], set[str]]:
    """The columns a lean load reads, and those of them it keeps for dialed rows only."""
    segments = campaign.model.report.segment_by
    dialed = {*DIALED_COLUMNS, *segments, *(f"input.{c}" for c in segments)} - set(ROW_COLUMNS)
    return {*ROW_COLUMNS, *dialed}, dialed


def lean_frame(results: ResultsFile, campaign: Campaign) -> pd.DataFrame:
    """The rows of results.csv as `figure_columns` says: every row's fate, the evidence and
    segments of dialed rows. Read a block at a time, each block's other rows blanked at once,
    so only the kept values add up."""
    columns, dialed_only = figure_columns(campaign)
    kept = [_dialed_values(block, dialed_only) for block in results.tables(columns)]
    if not kept:
        return results_table_frame(results.table(columns))  # no data row: the columns
    return results_table_frame(kept)  # consumed: each column's blocks go as it is converted


def _dialed_values(table: pa.Table, dialed_only: set[str]) -> pa.Table:
    """`table` with the `dialed_only` columns blank but on the dialed rows."""
    dialed = pc.fill_null(pc.equal(unneutralize_array(table.column("disposition")), DIALED),
                          False)
    if isinstance(dialed, pa.ChunkedArray):
        dialed = dialed.combine_chunks()
    for i, name in enumerate(table.column_names):
        if name in dialed_only:
            col = table.column(i)
            # nulls with the dialed rows' values (`if_else` would size its output as `col`)
            values = pc.filter(col, dialed).combine_chunks()
            table = table.set_column(
                i, name, pc.replace_with_mask(pa.nulls(len(col), col.type), dialed, values))
    return table


@dataclass
class Loaded:
    campaign: Campaign
    df: pd.DataFrame
    facts: JournalFacts
    source: str
    # Lean loads of an agreeing results.csv: `df` holds `figure_columns` only, every column
    # of a row is read from here (`ResultsRows`); None when `df` has every column.
    rows: ResultsRows | None = None

    def close(self) -> None:
        if self.rows is not None:
            self.rows.close()


def load(campaign: Campaign, *, refresh_results: bool = False, lean: bool = False,
         just_written: bool = False) -> Loaded:
    """Read the journal and the results in one snapshot.

    results.csv is used when it agrees with the journal; otherwise (missing, stale, or the
    campaign is running) the frame is rebuilt from the journal and the contacts, and with
    `refresh_results` a stale file of a campaign not running is rewritten so exports agree.
    `lean`: of results.csv, only the columns the figures read (`figure_columns`), the file
    kept open in `Loaded.rows` for the rest (close it: `Loaded.close`); a rebuilt frame has
    every column. `just_written`: a run's own report, after it wrote results.csv
    (`results.current`): taken as this run's end while the campaign runs elsewhere, or on
    PostgreSQL where other processes may have dialed since.
    """
    opened: list[ResultsFile] = []
    early: pd.DataFrame | Exception | None = None

    def read_lean() -> pd.DataFrame:
        if isinstance(early, Exception):
            raise early
        assert early is not None
        return early

    redact = redactor_for(campaign)
    try:
        if lean:
            # Read before the journal's facts, so the two peaks do not add up; a run that
            # ends in between leaves a file that disagrees with them: rebuilt, as any stale
            # file is.
            try:
                opened.append(ResultsFile(campaign.results_path))
                early = lean_frame(opened[0], campaign)
            except (OSError, ValueError, pa.ArrowException) as e:
                early = e  # `current` sees it as it would have seen it
            let_go()
        with ExitStack() as stack:
            try:
                journal = stack.enter_context(existing_journal(campaign))
            except JournalError as e:
                if on_postgres(campaign):
                    raise  # the database's own exit code (unreachable 69, refused 1...)
                raise ReportError(str(e)) from None  # a journal file that is not one
            if journal is None:
                raise NotRunYet(
                    f"{campaign.name}: nothing has run yet, so there is nothing to report; "
                    f"run the campaign first (no journal at {where(campaign)})")
            # The registry (PostgreSQL) or the run lock, read before the snapshot: a process
            # that dies is counted out once its lease expires.
            lock_held = running(campaign, journal)
            with journal.snapshot():
                facts = read_journal(journal)
                facts.lock_held = lock_held
                df, source = current(
                    campaign, journal, running=facts.running, refresh=refresh_results,
                    fresh=lambda old: agrees(old, facts.fate_counts),
                    read=read_lean if lean else None,
                    # SQLite: nobody else writes the journal; a disagreeing file is rebuilt
                    just_written=just_written and (facts.running or on_postgres(campaign)),
                )
                excerpts = transcript_excerpts(journal)
        rows = None
        if opened and source.startswith("results.csv"):
            rows = ResultsRows(opened.pop(), excerpts, redact)
        else:
            df = with_excerpts(df, excerpts)
    finally:
        for results in opened:
            results.close()
    early = None
    loaded = Loaded(campaign, redact.frame(df), facts, source, rows)
    del journal, df  # closed: its decoded fates go with it (`let_go`)
    let_go()
    return loaded


def let_go() -> None:
    """Hand the memory a step freed back to the system, so the next step's peak does not
    stand on it (`memory.release_memory`), once a closed journal's parts that refer to each
    other (its decoded fates with them) are collected."""
    gc.collect()
    release_memory()


TRANSCRIPT_EXCERPT_CHARS = 200


def transcript_excerpts(journal: Any) -> dict[str, str]:
    """The start of each call's final transcript (webhooks record it), by call id."""
    texts = {t["call_id"]: t["text"] for t in journal.transcripts() if t.get("text")}
    return {k: " ".join(str(v).split())[:TRANSCRIPT_EXCERPT_CHARS] for k, v in texts.items()}


def with_excerpts(df: pd.DataFrame, excerpt: dict[str, str]) -> pd.DataFrame:
    """The page's rows show the start of each call's final transcript."""
    if not excerpt or "call_id" not in df.columns:
        return df
    out = df.copy()
    # Only rows with a call are looked up (a million-row campaign dials a few thousand).
    ids = out["call_id"]
    called = ids.notna().to_numpy()
    col = pd.Series(pd.NA, index=out.index, dtype="string")
    if called.any():
        col[called] = ids[called].map(excerpt).astype("string")
    out["transcript_excerpt"] = col
    return out


class ResultsRows:
    """Every column of an agreeing results.csv, read batch by batch as the whole-frame load
    makes its rows (formula guard undone, typed, transcript excerpts, redacted): the rows the
    page shows, and results.parquet, without the whole file in memory."""

    def __init__(self, results: ResultsFile, excerpts: dict[str, str], redact: Redactor,
                 block_bytes: int | None = None) -> None:
        self.results = results
        self.excerpts = excerpts
        self.redact = redact
        self.block_bytes = block_bytes  # None: `results.RESULTS_BLOCK_BYTES`
        self._kept: tuple[np.ndarray | None, pd.DataFrame] | None = None

    def close(self) -> None:
        self.results.close()

    def batches(self) -> Iterator[pd.DataFrame]:
        """Every row, in order, a block at a time; each batch indexed by its rows' positions."""
        start = 0
        for batch in self.results.batches(self.block_bytes):
            batch.index = pd.RangeIndex(start, start + len(batch))
            start += len(batch)
            yield self.redact.frame(with_excerpts(batch, self.excerpts))

    def scan(self, keep: np.ndarray | None, each: Callable[[pd.DataFrame], None] | None = None
             ) -> pd.DataFrame:
        """One pass over the file: the rows at positions `keep` (sorted; None: every row)
        with every column, indexed by position; `each` is given every batch on the way."""
        parts: list[pd.DataFrame] = []
        first: pd.DataFrame | None = None
        for batch in self.batches():
            if each is not None:
                each(batch)
            if first is None:
                first = batch.iloc[:0]
            if keep is None:
                parts.append(batch)
                continue
            start = batch.index[0]
            lo, hi = np.searchsorted(keep, [start, start + len(batch)])
            if hi > lo:
                parts.append(batch.iloc[keep[lo:hi] - start])
        if first is None:  # no data row: the whole-file reader knows the columns' types
            first = self.redact.frame(with_excerpts(self.results.frame(), self.excerpts))
        out = pd.concat(parts) if parts else first.iloc[:0]
        self._kept = (None if keep is None else keep.copy(), out)
        return out

    def rows(self, positions: np.ndarray | None) -> pd.DataFrame:
        """The rows at `positions` (None: every row), the last pass's when it kept them."""
        if self._kept is not None:
            kept, frame = self._kept
            if (kept is None and positions is None) or (
                    kept is not None and positions is not None
                    and np.array_equal(kept, positions)):
                return frame
        return self.scan(None if positions is None else np.sort(positions))
