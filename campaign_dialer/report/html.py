"""The offline report page and its exports (report.html, summary.json, results.parquet)."""

from __future__ import annotations

import base64
import hashlib
import json
import queue
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from markupsafe import Markup

from campaign_dialer.files import write_atomic, write_text_atomic
from campaign_dialer.report.business import display_zone
from campaign_dialer.report.charts import charts
from campaign_dialer.report.common import COLORS, FILES, HEADLINE_LABELS, label
from campaign_dialer.report.data import Loaded, ResultsRows, let_go, load
from campaign_dialer.report.metrics import parse_times, summarize
from campaign_dialer.report.rows import Selection, select_rows
from campaign_dialer.report.text import num, pct
from campaign_dialer.results import RESULT_COLUMNS, Redactor, redactor_for
from campaign_dialer.vocab import OPT_OUT_OUTCOMES

if TYPE_CHECKING:
    from campaign_dialer.config import Campaign


TABLE_ROW_CAP = 5000


_JSON_ESCAPES = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026",
                               "\u2028": "\\u2028", "\u2029": "\\u2029"})


def script_json(data: Any) -> str:
    """JSON safe inside <script>: no "</script>", "<!--" or line separator can survive."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"),
                      allow_nan=False).translate(_JSON_ESCAPES)


@lru_cache(maxsize=1)
def template_env() -> Any:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("campaign_dialer", "templates"),
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = num
    env.filters["pct"] = pct
    return env


@lru_cache(maxsize=1)
def _script() -> tuple[str, str]:
    """The page's one script and its CSP hash: nothing else may run, even if injected."""
    text = template_env().loader.get_source(template_env(), "report.js")[0]  # type: ignore[union-attr]
    return text, base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


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

# The first column of a page that holds a selection of the rows: "needs attention" or "sample".
SHOWN_KEY = "why_shown"


def _local_text(s: pd.Series, zone: Any) -> pd.Series:
    """ISO UTC instants as "2026-06-09 13:04:05" in the display zone (unreadable kept as is)."""
    t = parse_times(s)
    out = t.dt.tz_convert(zone).dt.strftime("%Y-%m-%d %H:%M:%S")
    return out.where(t.notna(), s.astype(object)).astype(object)


def _column_cells(s: pd.Series) -> list[Any]:
    """One column as JSON-ready cells: None for missing, whole numbers as int, other numbers
    rounded to 0.1, text cut at 300 characters."""
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


# The rows at some positions of the campaign's rows with every column (None: every row).
RowsAt = Callable[[np.ndarray | None], pd.DataFrame]


def frame_rows(df: pd.DataFrame) -> RowsAt:
    """`RowsAt` of a frame that has every column."""
    return lambda positions: df if positions is None else df.iloc[positions]


def page_table(
    df: pd.DataFrame, *, zone: Any = None, segment_by: Sequence[str] = (),
    opt_out_outcomes: Sequence[str] = OPT_OUT_OUTCOMES, threshold: int | None = None,
    must_see_max: int | None = None, sample_rows: int | None = None,
    rows: RowsAt | None = None, sel: Selection | None = None,
) -> tuple[dict[str, Any], Selection]:
    """The page's table: every row up to `rows.PAGE_ALL_ROWS_MAX`, above it the rows a person
    must see and a seeded sample (`rows.select_rows`), each marked with why it is shown.
    The selection is drawn from `df`; `rows` gives the rows it chose with every column
    (default: `df`'s own); `sel`, the selection these arguments draw, when drawn already."""
    rows = rows or frame_rows(df)
    if sel is None:
        sel = select_rows(df, opt_out_outcomes, threshold=threshold,
                          must_see_max=must_see_max, sample_rows=sample_rows)
    if not sel.reduced:
        return table_data(rows(None), None, zone=zone, segment_by=segment_by), sel
    table = table_data(rows(sel.positions), None, zone=zone, segment_by=segment_by)
    table["columns"].insert(0, SHOWN_KEY)
    table["labels"] = {SHOWN_KEY: "Why shown", **table["labels"]}
    table["rows"] = [[why, *r] for why, r in zip(sel.labels, table["rows"], strict=True)]
    table["filters"].insert(0, SHOWN_KEY)
    table["total"] = sel.total
    return table, sel


# Above `rows.PAGE_ALL_ROWS_MAX` rows the page is at most this many bytes whatever the rows
# hold (long notes, many columns): the selection's caps shrink until it fits.
PAGE_BYTES_MAX = 10_000_000
FIT_ROUNDS = 6


def render_html(
    s: dict[str, Any], df: pd.DataFrame, redact: Redactor, *, zone: Any = UTC,
    segment_by: Sequence[str] = (), opt_out_outcomes: Sequence[str] = OPT_OUT_OUTCOMES,
    threshold: int | None = None, bytes_max: int | None = None, rows: RowsAt | None = None,
    first: Selection | None = None,
) -> str:
    """The page. Up to the threshold it holds every row; above it a selection, drawn again
    with smaller caps (in proportion to what overflowed) until the page fits `bytes_max`.
    `df` needs the columns the selection reads; `rows` gives the rows shown (`page_table`);
    `first`, the first draw (`select_rows` with the default caps), when drawn already."""
    bytes_max = PAGE_BYTES_MAX if bytes_max is None else bytes_max
    must_see_max: int | None = None
    sample_rows: int | None = None
    for _ in range(FIT_ROUNDS):
        table, sel = page_table(df, zone=zone, segment_by=segment_by,
                                opt_out_outcomes=opt_out_outcomes, threshold=threshold,
                                must_see_max=must_see_max, sample_rows=sample_rows,
                                rows=rows, sel=first)
        first = None
        if must_see_max is not None:
            sel.bytes_max = bytes_max
        rows_json = redact(script_json(table))
        html = _page(s, table, sel, rows_json, redact, zone)
        size = len(html.encode("utf-8"))
        if not sel.reduced or size <= bytes_max:
            break
        rows_bytes = len(rows_json.encode("utf-8"))
        room = max(bytes_max - (size - rows_bytes), 0)
        scale = 0.97 * room / max(rows_bytes, 1)
        must_see_max = int(sel.must_see_shown * scale)
        sample_rows = int(sel.sampled * scale)
    return html


def _page(s: dict[str, Any], table: dict[str, Any], sel: Selection, rows_json: str,
          redact: Redactor, zone: Any) -> str:
    script, script_sha256 = _script()
    html = template_env().get_template("report.html.j2").render(
        s=s, charts=charts(s), colors=COLORS, labels=HEADLINE_LABELS, files=FILES,
        table_labels=table["labels"], when=lambda v: _when(v, zone),
        table_total=table["total"], table_columns=table["columns"], page=sel.notice(),
        # Markup only for text made safe here: escaped JSON and our own static script.
        rows_json=Markup(rows_json),
        script=Markup(script), script_sha256=script_sha256,
    )
    return redact(html)


def write_parquet(df: pd.DataFrame, path: Path) -> None:
    """Raw values (no formula guard): Parquet is read by programs, not spreadsheets."""
    write_atomic(path, lambda p: df.to_parquet(p, index=False, engine="pyarrow"))


class ParquetBatches:
    """results.parquet written a batch of rows at a time: the schema (and pandas' metadata)
    `write_parquet` gives the whole frame, as every batch has the whole frame's dtypes.
    Encoded in a thread of its own (Arrow lets go of the GIL), beside the reading of the
    next batch; at most `AHEAD` batches wait for it."""

    AHEAD = 1

    def __init__(self, path: Path) -> None:
        self.path = path
        self.writer: pq.ParquetWriter | None = None
        self.queue: queue.Queue[pa.Table | None] = queue.Queue(self.AHEAD)
        self.thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def __call__(self, batch: pd.DataFrame) -> None:
        if self.writer is None:
            table = pa.Table.from_pandas(batch, preserve_index=False)
            self.writer = pq.ParquetWriter(self.path, table.schema)
            self.thread = threading.Thread(target=self._write, name="parquet-writer",
                                           daemon=True)
            self.thread.start()
        else:
            table = pa.Table.from_pandas(batch, schema=self.writer.schema,
                                         preserve_index=False)
        self._check()
        self.queue.put(table)

    def _write(self) -> None:
        assert self.writer is not None
        while (table := self.queue.get()) is not None:
            if self.error is None:
                try:
                    self.writer.write_table(table)
                except BaseException as e:  # noqa: BLE001 - raised in the caller's thread
                    self.error = e

    def _check(self) -> None:
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        """Every batch written and the file closed; a writer's error raised here."""
        if self.thread is not None:
            self.queue.put(None)
            self.thread.join()
        if self.writer is not None:
            self.writer.close()
        self._check()


def write_parquet_rows(rows: ResultsRows, path: Path, keep: np.ndarray | None) -> None:
    """results.parquet from results.csv read batch by batch (`write_parquet`'s schema and
    values), keeping the rows at `keep` for the page on the way (`ResultsRows.rows`)."""

    def write(p: Path) -> None:
        batches = ParquetBatches(p)
        try:
            frame = rows.scan(keep, batches)
        finally:
            batches.close()
        if batches.writer is None:  # no data row
            write_parquet_file(frame, p)

    write_atomic(path, write)


def write_parquet_file(df: pd.DataFrame, path: Path) -> None:
    df.to_parquet(path, index=False, engine="pyarrow")


def build(campaign: Campaign) -> Path:
    """Write report.html, summary.json and results.parquet to the output dir."""
    paths, _ = build_files(campaign)
    return paths["report.html"]


def build_files(
    campaign: Campaign, *, threshold: int | None = None, bytes_max: int | None = None,
    just_written: bool = False,
) -> tuple[dict[str, Path], dict[str, Any]]:
    """The three files. The figures and the page's selection read the few columns they need
    (`data.load(lean=True)`); results.parquet and the rows the page shows read every column
    of results.csv a block of rows at a time (`data.ResultsRows`), so a million-row campaign
    is never one frame of every column. `threshold`, `bytes_max`: `render_html`'s;
    `just_written`: a run's own report, from the results.csv it wrote (`results.current`)."""
    data = load(campaign, refresh_results=True, lean=True, just_written=just_written)
    try:
        return _build_files(data, threshold=threshold, bytes_max=bytes_max)
    finally:
        data.close()


def _build_files(data: Loaded, *, threshold: int | None, bytes_max: int | None
                 ) -> tuple[dict[str, Path], dict[str, Any]]:
    campaign = data.campaign
    s = summarize(data)
    let_go()
    redact = redactor_for(campaign)
    out = campaign.output_dir
    paths = {name: out / name for name in FILES}
    opt_out_outcomes = campaign.model.compliance.opt_out_outcomes
    rows: RowsAt | None = None
    first: Selection | None = None
    if data.rows is None:  # every column in memory (rebuilt from the journal)
        write_parquet(data.df, paths["results.parquet"])
    else:
        # The page's first draw (`render_html` draws again only for a page too big): its
        # rows are kept by the pass that writes results.parquet.
        first = select_rows(data.df, opt_out_outcomes, threshold=threshold)
        write_parquet_rows(data.rows, paths["results.parquet"],
                           first.positions if first.reduced else None)
        let_go()
        rows = data.rows.rows
    summary = redact(json.dumps(s, indent=2, allow_nan=False)) + "\n"
    write_text_atomic(paths["summary.json"], summary)
    write_text_atomic(paths["report.html"], render_html(
        s, data.df, redact, zone=display_zone(campaign),
        segment_by=campaign.model.report.segment_by,
        opt_out_outcomes=opt_out_outcomes, threshold=threshold, bytes_max=bytes_max,
        rows=rows, first=first))
    return paths, s
