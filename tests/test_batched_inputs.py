"""DNC lists and consent ledgers are read in bounded batches: batch boundaries change nothing.

Each file is read with the reader's own block size (one batch for these files) and with a
block of a few rows, so every row, bad cell and refusal falls in another batch; the numbers,
events, unreadable cells, warnings and refusals (file, row, column, message) must be the same.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from campaign_dialer.compliance.base import ComplianceError
from campaign_dialer.compliance.consent import read_consent
from campaign_dialer.compliance.dnc import read_dnc_file
from campaign_dialer.contacts import csvfile

DATA = Path(__file__).parent / "data"
# bytes per batch: a few rows. A row longer than a block cannot be read in batches (nor
# whole: pyarrow's whole-file reader has the same limit, at 4 MB); the reader's is 8 MB.
SMALL = 600


def outcome(read: Any, *args: Any) -> Any:
    """What a reader gives for a file: its frames as plain values, or its refusal."""
    try:
        out = read(*args)
    except ComplianceError as e:
        return ("refused", str(e), e.row, e.column)
    if isinstance(out, tuple) and len(out) == 2:  # DNC: numbers, unreadable
        numbers, unreadable = out
        warnings: list[str] = []
    else:
        numbers, unreadable, warnings = out
    def plain(x: Any) -> Any:
        if isinstance(x, pd.DataFrame):
            return (list(x.columns), x.astype(object).where(x.notna(), None).values.tolist())
        return x.astype(object).where(x.notna(), None).tolist()
    return ("read", plain(numbers), plain(unreadable), warnings)


def both(monkeypatch: pytest.MonkeyPatch, read: Any, *args: Any) -> tuple[Any, Any]:
    whole = outcome(read, *args)
    with monkeypatch.context() as m:
        m.setattr(csvfile, "BATCH_BYTES", SMALL)
        batched = outcome(read, *args)
    return whole, batched


def dnc(path: Path) -> Any:
    warnings: list[str] = []
    numbers, unreadable = read_dnc_file(path, "US", None, warnings)
    return numbers, unreadable, warnings


def consent(path: Path) -> Any:
    return read_consent(path, "US")


FILES = sorted(p for p in DATA.rglob("*") if p.suffix in (".csv", ".txt"))


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_shipped_files_read_the_same_in_small_batches(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for read in (dnc, consent):
        whole, batched = both(monkeypatch, read, path)
        assert batched == whole, (read.__name__, path.name)


def mostly(good: list[str], bad: list[str]) -> st.SearchStrategy[str]:
    """Good values nine times in ten: files that read, and files refused at any row."""
    return st.one_of(st.sampled_from(good), st.sampled_from(good), st.sampled_from(good),
                     st.sampled_from(good), st.sampled_from(good), st.sampled_from(good),
                     st.sampled_from(good), st.sampled_from(good), st.sampled_from(good),
                     st.sampled_from(bad))


PHONES = mostly(
    ["4155550123", "+1 415 555 0124", "(415) 555-0125", "4155550123.0", "", "  ",
     "+44 20 7946 0958", "1-415-555-0127 x12", '"415\n555 0128"', "call me later"],
    ["4.155550126E+09", "415555012", "415 555 0129;415 555 0130", "12345678901234"],
)
EVENTS = mostly(["grant", "revoke", "Opted Out", "opt-in"], ["maybe"])
TIMES = mostly(["2026-01-02T03:04:05Z", "2026-01-02T03:04:05-05:00",
                "2025-12-31 23:59:59+01:00"], ["2026-01-02", "", "9999-01-01T00:00Z", "yesterday"])
EXPIRES = mostly(["", "2027-01-02T03:04:05Z"], ["2026-01-02", "9999-01-01T00:00Z", "soon"])
IDS = mostly(["", "C1", "C2", "101.0", "003A000001abcde"], ["1.2E+11"])


def quote(cell: str) -> str:
    return cell if cell.startswith('"') else f'"{cell}"' if "," in cell else cell


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(st.tuples(PHONES, PHONES, st.sampled_from(["", "US", "MX", "Narnia"])),
                  max_size=40),
    header=st.sampled_from(["phone,mobile,country", "Phone Number,Notes,Added", ""]),
    broken=st.one_of(st.none(), st.none(), st.none(), st.integers(0, 39)),
)
def test_dnc_lists_read_the_same_in_small_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rows: list[tuple[str, str, str]],
    header: str, broken: int | None,
) -> None:
    lines = [header] if header else []
    for k, (a, b, c) in enumerate(rows):
        line = ",".join(quote(x) for x in (a, b, c))
        lines.append(line + (",extra" if k == broken else ""))
    path = tmp_path / "dnc.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    whole, batched = both(monkeypatch, dnc, path)
    assert batched == whole


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(st.tuples(PHONES, PHONES, IDS, EVENTS, TIMES, EXPIRES), max_size=40),
    broken=st.one_of(st.none(), st.none(), st.none(), st.integers(0, 39)),
)
def test_consent_ledgers_read_the_same_in_small_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    rows: list[tuple[str, str, str, str, str, str]], broken: int | None,
) -> None:
    lines = ["phone,mobile,contact_id,event,event_at,expires_at,source"]
    for k, row in enumerate(rows):
        line = ",".join(quote(x) for x in row) + ",web"
        lines.append(line + (",extra" if k == broken else ""))
    path = tmp_path / "consent.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    whole, batched = both(monkeypatch, consent, path)
    assert batched == whole
