"""The lean report (issue #25): figures and the page's selection from the few columns they read,
results.parquet and the shown rows from results.csv batch by batch. Every output must equal
the whole-frame report's (one typed frame of every column, as before), which is kept here as
the oracle: summary.json, report.html (tiles, charts, the rows table) and results.parquet.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console

from campaign_dialer import log, report, results
from campaign_dialer.config import Campaign, load_campaign
from campaign_dialer.exitcodes import ExitCode
from campaign_dialer.report import data as report_data
from campaign_dialer.report import rows as report_rows
from campaign_dialer.report.html import render_html
from campaign_dialer.store import Journal

from .test_report import KEY, REPO, write_campaign


def bench_report() -> Any:
    """scripts/bench_report.py, whose `synthesize` writes a finished campaign of n rows."""
    spec = importlib.util.spec_from_file_location("bench_report",
                                                  REPO / "scripts" / "bench_report.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# -- the oracle: the whole-frame report, as it was built before ---------------------------


def whole_outputs(campaign: Campaign, out: Path, *, threshold: int | None,
                  bytes_max: int | None) -> tuple[dict[str, Any], str, Path]:
    data = report.load(campaign, refresh_results=True)  # every column, every row
    assert data.rows is None
    s = report.summarize(data)
    redact = results.redactor_for(campaign)
    html = redact(render_html(
        s, data.df, redact, zone=report.display_zone(campaign),
        segment_by=campaign.model.report.segment_by,
        opt_out_outcomes=campaign.model.compliance.opt_out_outcomes,
        threshold=threshold, bytes_max=bytes_max))
    parquet = out / "whole.parquet"
    data.df.to_parquet(parquet, index=False, engine="pyarrow")
    return s, html, parquet


def old_read_results_csv(path: Path) -> pd.DataFrame:
    """`results.read_results_csv` before the lean report: every column, pandas' unneutralize."""
    with open(path, encoding="utf-8", newline="") as fh:
        header = next(csv.reader(fh), [])
    if "disposition" not in header:
        raise ValueError("not a results file")
    seen: Counter[str] = Counter()
    names = []
    for n in header:
        names.append(n if not seen[n] else f"{n}.{seen[n]}")
        seen[n] += 1
    table = pacsv.read_csv(
        path, read_options=pacsv.ReadOptions(column_names=names, skip_rows=1),
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            column_types={n: pa.string() for n in names}, null_values=[""],
            strings_can_be_null=True, quoted_strings_can_be_null=True),
    )
    df = table.to_pandas()
    for c in df.columns:
        if c not in results.NUMERIC_COLUMNS:
            df[c] = results.unneutralize(df[c].astype("string"))
    return results.typed_frame(df)


def _normal_html(html: str) -> str:
    return re.sub(r"Generated [^<]*? UTC from", "Generated (when) from", html)


def _normal_summary(s: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in s.items() if k != "generated_at"}


def _small_batches(monkeypatch: pytest.MonkeyPatch, block_bytes: int, rows: int) -> None:
    """Blocks and batches small enough that a small campaign is read in many of them."""
    monkeypatch.setattr(results, "RESULTS_BLOCK_BYTES", block_bytes)
    monkeypatch.setattr(results, "RESULTS_BATCH_ROWS", rows)


def assert_lean_equals_whole(campaign: Campaign, tmp_path: Path, *, threshold: int | None,
                             bytes_max: int | None = None) -> dict[str, Any]:
    want_s, want_html, want_parquet = whole_outputs(campaign, tmp_path, threshold=threshold,
                                                    bytes_max=bytes_max)
    paths, s = report.build_files(campaign, threshold=threshold, bytes_max=bytes_max)
    got = json.loads(paths["summary.json"].read_text(encoding="utf-8"))
    assert _normal_summary(got) == _normal_summary(json.loads(json.dumps(want_s)))
    assert _normal_summary(s) == _normal_summary(want_s)
    assert _normal_html(paths["report.html"].read_text(encoding="utf-8")) == _normal_html(
        want_html)
    # results.parquet: the same schema (pandas' metadata included) and values
    assert pq.read_schema(paths["results.parquet"]).equals(pq.read_schema(want_parquet),
                                                            check_metadata=True)
    pd.testing.assert_frame_equal(pd.read_parquet(paths["results.parquet"]),
                                  pd.read_parquet(want_parquet), check_exact=True)
    pd.testing.assert_frame_equal(pq.read_table(paths["results.parquet"]).to_pandas(),
                                  pq.read_table(want_parquet).to_pandas(), check_exact=True)
    return got


def _segmented(path: Path, columns: list[str]) -> Campaign:
    text = path.read_text(encoding="utf-8")
    assert "[report]" not in text
    path.write_text(text + f"\n[report]\nsegment_by = {json.dumps(columns)}\n",
                    encoding="utf-8")
    return load_campaign(path)


@pytest.fixture
def big(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Campaign:
    monkeypatch.setenv("VANTAX_API_KEY", KEY)
    path = bench_report().synthesize(tmp_path / "big", 1500, seed=11, two_agents=True)
    campaign = _segmented(path, ["state", "company"])
    # results.csv as a run leaves it (synthesize writes the journal only)
    assert report.load(campaign, refresh_results=True).source == "results.csv"
    return campaign


@pytest.mark.parametrize(("threshold", "bytes_max"), [
    (None, None),  # 1,500 rows: under the threshold, every row on the page
    (400, None),  # above it: the rows a person must see and a sample
    (400, 60_000),  # above it, a page too big for its limit: drawn again, smaller
])
def test_lean_report_equals_the_whole_frame_report(
    big: Campaign, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, threshold: int | None,
    bytes_max: int | None,
) -> None:
    monkeypatch.setattr(report_rows, "SAMPLE_ROWS", 120)
    monkeypatch.setattr(report_rows, "MUST_SEE_MAX", 150)
    _small_batches(monkeypatch, 4096, 50)  # ~30 batches
    # Excerpts of some calls' transcripts (webhooks record them): on the page and in Parquet.
    real = report_data.transcript_excerpts
    ids = pd.read_csv(big.results_path, dtype=str)["call_id"].dropna().tolist()[::3]
    assert ids

    def excerpts(journal: Any) -> dict[str, str]:
        return {**real(journal), **{c: f"hello {c} \u2028 <b>" for c in ids}}

    monkeypatch.setattr(report_data, "transcript_excerpts", excerpts)
    got = assert_lean_equals_whole(big, tmp_path, threshold=threshold, bytes_max=bytes_max)
    assert got["headline"]["rows"] == 1500 and got["segments"]
    html = (big.output_dir / "report.html").read_text(encoding="utf-8")
    assert ("why_shown" in html) == (threshold is not None)
    assert (f"hello {ids[0]}" in html) == (threshold is None)  # row 1 is no sample


@pytest.mark.parametrize("threshold", [14, 13])
def test_lean_report_of_hostile_rows_equals_the_whole_frame_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, threshold: int
) -> None:
    """Formula cells, markup, line separators, a key echoed by the platform (redacted)."""
    monkeypatch.setenv("VANTAX_API_KEY", KEY)
    campaign = write_campaign(tmp_path / "rpt")
    monkeypatch.setattr(report_rows, "SAMPLE_ROWS", 3)
    # A batch per block of a few rows (a block holds the header, and any one row: as
    # `read_csv`, the streaming reader refuses a row longer than a block)
    _small_batches(monkeypatch, 1024, 1)
    assert_lean_equals_whole(campaign, tmp_path, threshold=threshold)
    assert KEY not in (campaign.output_dir / "report.html").read_text(encoding="utf-8")
    assert KEY not in pd.read_parquet(campaign.output_dir / "results.parquet").to_csv()


def test_a_stale_results_file_is_rebuilt_and_rewritten_as_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """results.csv that disagrees with the journal: rebuilt from it (every column), rewritten."""
    monkeypatch.setenv("VANTAX_API_KEY", KEY)
    campaign = write_campaign(tmp_path / "rpt")
    lines = campaign.results_path.read_text(encoding="utf-8").splitlines(keepends=True)
    campaign.results_path.write_text("".join(lines[:-1]), encoding="utf-8")  # a row short
    paths, s = report.build_files(campaign)
    assert s["source"] == "journal (results.csv was stale; rewritten)"
    assert len(pd.read_parquet(paths["results.parquet"])) == 14
    data = report.load(campaign, lean=True)
    try:
        assert data.source == "results.csv" and data.rows is not None  # rewritten: agrees
    finally:
        data.close()


def test_the_lean_frame_keeps_every_rows_fate_and_the_dialed_rows_evidence(
    big: Campaign
) -> None:
    data = report.load(big, lean=True)
    try:
        whole = report.load(big).df
        lean = data.df
        columns, dialed_only = report_data.figure_columns(big)
        assert set(lean.columns) == {c for c in whole.columns if c in columns}
        dialed = whole["disposition"].eq("dialed").to_numpy()
        for c in lean.columns:
            if c in dialed_only:
                pd.testing.assert_series_equal(lean[c][dialed], whole[c][dialed])
                assert lean[c][~dialed].isna().all()
            else:
                pd.testing.assert_series_equal(lean[c], whole[c])
        assert report.summarize(data)["evidence"] == report.summarize(report.load(big))[
            "evidence"]
    finally:
        data.close()


# -- the reader: batches and columns equal the whole file's, on hostile files ------------

CELL = st.one_of(
    st.just(""), st.text(max_size=6),
    st.sampled_from(["=1+2", "@SUM(A1)", "+1 212", "-3", "+12125550101", "-1.5e3", "'=x",
                     "''", "'", "a\r\nb", "\r", "\n", "x,y", '"q"', "\t=1", "\u2028",
                     "-\u0663", "+\u0661\u0662", "dialed", "pending"]),
)
NUMBER = st.one_of(st.just(""), st.integers(-5, 10**6).map(str), st.sampled_from(
    ["1.5", "1e3", " 7", "x", "-0", "3.0", "nan", "inf"]))
ROWNUM = st.integers(0, 10**6).map(str)


@st.composite
def results_files(draw: st.DrawFn) -> tuple[list[str], list[list[str]]]:
    extra = draw(st.lists(st.sampled_from(["note", "=cmd", "row", "disposition", "x", "x"]),
                          max_size=3))
    header = ["row", "disposition", "reason", "detail", "duration_seconds", "attempts",
              "http_status", *draw(st.permutations(["status", "outcome"])), *extra]
    n = draw(st.integers(0, 25))
    body = []
    for _ in range(n):
        line = []
        for h in header:
            if h == "row":
                line.append(draw(ROWNUM))
            elif h in results.NUMERIC_COLUMNS:
                line.append(draw(NUMBER))
            else:
                line.append(results.neutralize(draw(CELL)))
        body.append(line)
    return header, body


def _line(cells: list[str]) -> bytes:
    buf = io.StringIO(newline="")
    csv.writer(buf, lineterminator="\r\n").writerow([results.neutralize(c) for c in cells])
    return buf.getvalue().encode("utf-8")


def _write(path: Path, header: list[str], body: list[list[str]]) -> None:
    buf = io.StringIO(newline="")
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow([results.neutralize(h) for h in header])
    w.writerows(body)
    path.write_bytes(buf.getvalue().encode("utf-8"))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(results_files(), st.integers(1, 200), st.integers(1, 7))
def test_reading_results_in_batches_or_columns_equals_the_whole_file(
    tmp_path: Path, file: tuple[list[str], list[list[str]]], block: int, batch_rows: int
) -> None:
    header, body = file
    path = tmp_path / "results.csv"
    _write(path, header, body)
    try:
        want = old_read_results_csv(path)
    except (ValueError, ArithmeticError, pa.ArrowException) as e:  # refused by both
        with pytest.raises(type(e)):
            results.read_results_csv(path)
        return
    pd.testing.assert_frame_equal(results.read_results_csv(path), want, check_exact=True)
    with results.ResultsFile(path) as f:
        # A block holds the header and any one row (as `read_csv`, the streaming reader
        # refuses a row longer than a block), and a few rows at most.
        longest = max(len(_line(r)) for r in [header, *body])
        parts = list(f.batches(longest + block, batch_rows))
        some = ["reason", "duration_seconds", "x.1", "nothing"]
        pd.testing.assert_frame_equal(
            f.frame(some), results.typed_frame(want[[c for c in want.columns if c in some]]),
            check_exact=True)
    got = pd.concat(parts, ignore_index=True) if parts else want.iloc[:0]
    pd.testing.assert_frame_equal(got, want, check_exact=True, check_index_type=False)
    assert results.fate_pairs(got) == _old_fate_pairs(want)
    assert results.agrees(got, _old_fate_pairs(want))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(results_files(), st.integers(1, 200))
def test_a_frame_of_blocks_consumed_equals_the_frame_of_the_whole_table(
    tmp_path: Path, file: tuple[list[str], list[list[str]]], block: int
) -> None:
    """`results_table_frame` of the blocks the streaming reader gives (the list emptied as
    their columns are converted) is the frame of the same blocks as one table. (Whether the
    streaming reader reads every cell as the whole-file reader does is
    `test_reading_results_in_batches_or_columns_equals_the_whole_file`'s question.)"""
    header, body = file
    path = tmp_path / "results.csv"
    _write(path, header, body)
    with results.ResultsFile(path) as f:
        try:
            longest = max(len(_line(r)) for r in [header, *body])
            blocks = list(f.tables(block_bytes=longest + block))
        except (ValueError, ArithmeticError, pa.ArrowException):
            return  # a file the reader refuses (`test_reading_results_...` covers it)
    if not blocks:
        return
    whole = pa.concat_tables(blocks)
    try:
        want = results.results_table_frame(whole)
    except (ValueError, ArithmeticError, pa.ArrowException) as e:  # refused by both
        with pytest.raises(type(e)):
            results.results_table_frame(blocks)
        return
    got = results.results_table_frame(blocks)
    assert blocks == []
    pd.testing.assert_frame_equal(got, want, check_exact=True)


def _old_fate_pairs(df: pd.DataFrame) -> Counter[tuple[str, str]]:
    def blank(s: pd.Series) -> list[str]:
        return [("" if pd.isna(v) else str(v)) for v in s.astype(object)]
    return Counter(zip(blank(df["disposition"]), blank(df["reason"]), strict=True))


@given(st.lists(CELL.map(results.neutralize), max_size=40))
def test_unneutralize_in_arrow_equals_unneutralize(cells: list[str]) -> None:
    s = pd.Series([c or None for c in cells], dtype="string")
    got = pd.Series(pd.StringDtype().__from_arrow__(
        results.unneutralize_array(pa.array(s.array, from_pandas=True))))
    pd.testing.assert_series_equal(got, results.unneutralize(s), check_names=False)


KIND_VALUES = st.sampled_from(["", "dialed", "suppressed", "pending", "error", "rejected",
                               "no_consent", "dnc_listed", "duplicate", "opt_out",
                               "do_not_call", "completed", "unresolved", "call_live"])


@given(st.lists(st.tuples(*[KIND_VALUES] * 5), max_size=60),
       st.lists(st.sampled_from(["opt_out", "do_not_call", "", "completed"]), max_size=3))
def test_row_kinds_coded_by_combination_equal_the_kinds_per_row(
    rows: list[tuple[str, ...]], words: list[str]
) -> None:
    cols = report_rows.KIND_COLUMNS
    df = pd.DataFrame({c: pd.Series([r[i] or None for r in rows], dtype="string")
                       for i, c in enumerate(cols)})
    codes, labels = report_rows.kind_codes(df, words)
    want_codes, want_labels = pd.factorize(report_rows.must_see_kinds(df, words))
    assert labels == [str(u) for u in want_labels]
    assert np.array_equal(codes, want_codes)


# -- the end of a run: the summary from the report's figures ------------------------------


@pytest.fixture
def console(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    buf = io.StringIO()
    monkeypatch.setattr(log, "_out", Console(file=buf, width=200, color_system=None))
    return buf


def test_the_run_summary_from_the_reports_figures_reads_as_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, console: io.StringIO
) -> None:
    monkeypatch.setenv("VANTAX_API_KEY", KEY)
    campaign = write_campaign(tmp_path / "rpt")
    with Journal(campaign.journal_path, campaign.name, create=False) as j:
        report.print_summary(campaign, j, results.read_results_csv(campaign.results_path),
                             exit_code=ExitCode.TEMPFAIL, message="2 left")
        fates = Counter(j.fate_counts())
    before = console.getvalue()
    console.seek(0)
    console.truncate()
    _, s = report.build_files(campaign)
    report.print_run_summary(s, fates, exit_code=ExitCode.TEMPFAIL, message="2 left")
    assert console.getvalue() == before
    assert before.rstrip().endswith("exit=75 (2 left)")


def test_a_run_whose_report_failed_prints_the_rows_per_fate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, console: io.StringIO
) -> None:
    monkeypatch.setenv("VANTAX_API_KEY", KEY)
    campaign = write_campaign(tmp_path / "rpt")
    with Journal(campaign.journal_path, campaign.name, create=False) as j:
        fates = Counter(j.fate_counts())
    report.print_run_summary(None, fates, exit_code=ExitCode.OK)
    df = pd.read_csv(campaign.results_path)
    disp = Counter(df["disposition"])
    assert console.getvalue().splitlines() == [
        " ".join(f"{k}={disp.get(k, 0)}" for k in
                 ("dialed", "rejected", "suppressed", "error", "pending")),
        "exit=0",
    ]


def test_the_json_summary_and_a_comparison_read_the_lean_frame_to_the_same_figures(
    big: Campaign, tmp_path: Path
) -> None:
    """`report --json`/`--text` (`summary`) and `--compare` figures from the few columns."""
    want = report.summarize(report.load(big))
    got = report.summary(big)
    assert _normal_summary(got) == _normal_summary(want)
    titles, sides, _ = report.compare(big, None)  # its two agents side by side
    assert [s["agent_id"] for s in sides] == [a["agent_id"] for a in want["agents"][:2]]
    assert [s["headline"] for s in sides] == [a["headline"] for a in want["agents"][:2]]
