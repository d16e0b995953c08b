"""Contacts, DNC lists and consent ledgers are read in bounded batches: batch boundaries
change nothing.

Each file is read with the reader's own batch size (one batch for these files: read whole)
and in batches of any number of rows, one included, cut from blocks of a few hundred bytes, so
every row, bad cell and refusal falls in another batch; the rows, numbers, events, unreadable
cells, warnings and refusals (file, row, column, message) must be the same.
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
from campaign_dialer.contacts import Contacts, ContactsError, csvfile, load_contacts

DATA = Path(__file__).parent / "data"
# bytes per block: a few rows. A row longer than a block cannot be read in batches (nor
# whole: pyarrow's whole-file reader has the same limit); both readers' blocks are 4 MB.
SMALL = 600


def plain(x: Any) -> Any:
    """A frame or series as plain values (and a frame's dtypes), comparable with ==."""
    if isinstance(x, pd.DataFrame):
        return (list(x.columns), [str(t) for t in x.dtypes],
                x.astype(object).where(x.notna(), None).values.tolist())
    return (str(x.dtype), x.astype(object).where(x.notna(), None).tolist())


def outcome(read: Any, *args: Any) -> Any:
    """What a reader gives for a file: its frames as plain values, or its refusal."""
    try:
        out = read(*args)
    except (ComplianceError, ContactsError) as e:
        return ("refused", type(e).__name__, str(e), e.row, e.column)
    if isinstance(out, Contacts):
        return ("read", plain(out.frame), plain(out.unreadable), out.extra_columns, out.roles,
                out.phone_columns, out.ignored_columns, out.warnings, out.encoding)
    if isinstance(out, tuple) and len(out) == 2:  # DNC: numbers, unreadable
        numbers, unreadable = out
        warnings: list[str] = []
    else:
        numbers, unreadable, warnings = out
    return ("read", plain(numbers), plain(unreadable), warnings)


def both(
    monkeypatch: pytest.MonkeyPatch, read: Any, *args: Any, rows: int = 1
) -> tuple[Any, Any]:
    """(read whole, read in batches of `rows` rows cut from blocks of SMALL bytes)."""
    whole = outcome(read, *args)
    with monkeypatch.context() as m:
        m.setattr(csvfile, "BATCH_BYTES", SMALL)
        m.setattr(csvfile, "BATCH_ROWS", rows)
        batched = outcome(read, *args)
    return whole, batched


def dnc(path: Path) -> Any:
    warnings: list[str] = []
    numbers, unreadable = read_dnc_file(path, "US", None, warnings)
    return numbers, unreadable, warnings


def consent(path: Path) -> Any:
    return read_consent(path, "US")


def contacts(path: Path, columns: dict[str, str] | None = None) -> Any:
    return load_contacts(path, default_region="US", columns=columns)


FILES = sorted(p for p in DATA.rglob("*") if p.suffix in (".csv", ".txt"))


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_shipped_files_read_the_same_in_small_batches(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for read in (contacts, dnc, consent):
        for rows in (1, 2, 5):
            whole, batched = both(monkeypatch, read, path, rows=rows)
            assert batched == whole, (read.__name__, path.name, rows)


def test_a_bad_row_late_in_a_file_is_refused_as_when_read_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refusal in the 7th batch names the row a person counts (a quoted cell's line break
    inside one row), the same as the whole-file read, and nothing of the file is used."""
    lines = ["Contact ID,Phone,Notes"] + [
        f'C{k},415555{k:04d},"line one\nline two"' for k in range(1, 40)
    ]
    lines[30] = "C30,1.2E+11,x"  # a phone column can hold junk; an id cannot
    lines[33] = "4.1E+11,4155550999,x"
    path = tmp_path / "c.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    whole, batched = both(monkeypatch, contacts, path, rows=4)
    assert whole == batched
    assert whole[0] == "refused" and whole[3:] == (33, "Contact ID")
    lines[12] = "C12,4155550012,too,many"  # a row the CSV reader cannot read comes first
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    whole, batched = both(monkeypatch, contacts, path, rows=4)
    assert whole == batched
    assert whole[0] == "refused" and whole[3] == 12 and "has 4 fields" in whole[2]


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
    size=st.integers(1, 12),
)
def test_dnc_lists_read_the_same_in_small_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rows: list[tuple[str, str, str]],
    header: str, broken: int | None, size: int,
) -> None:
    lines = [header] if header else []
    for k, (a, b, c) in enumerate(rows):
        line = ",".join(quote(x) for x in (a, b, c))
        lines.append(line + (",extra" if k == broken else ""))
    path = tmp_path / "dnc.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    whole, batched = both(monkeypatch, dnc, path, rows=size)
    assert batched == whole


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(st.tuples(PHONES, PHONES, IDS, EVENTS, TIMES, EXPIRES), max_size=40),
    broken=st.one_of(st.none(), st.none(), st.none(), st.integers(0, 39)),
    size=st.integers(1, 12),
)
def test_consent_ledgers_read_the_same_in_small_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    rows: list[tuple[str, str, str, str, str, str]], broken: int | None, size: int,
) -> None:
    lines = ["phone,mobile,contact_id,event,event_at,expires_at,source"]
    for k, row in enumerate(rows):
        line = ",".join(quote(x) for x in row) + ",web"
        lines.append(line + (",extra" if k == broken else ""))
    path = tmp_path / "consent.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    whole, batched = both(monkeypatch, consent, path, rows=size)
    assert batched == whole


SF_FOOTER = (
    '\r\n"Grand Totals (3 records)"\r\n\r\n"Call list Q4"\r\n'
    '"Copyright (c) 2000-2026 salesforce.com, inc. All rights reserved."\r\n'
    '"Confidential Information - Do Not Distribute"\r\n'
)


@pytest.mark.parametrize("encoding", ["utf-8-sig", "cp1252", "utf-16"])
@pytest.mark.parametrize("footer", [False, True])
def test_encodings_and_a_report_footer_read_the_same_in_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, encoding: str, footer: bool
) -> None:
    """Every encoding sniffed today, and a Salesforce report's footer (left out, said in a
    warning), read in batches as whole; a bad row in a late batch is named alike."""
    if footer and encoding == "utf-16":
        return  # a footer is looked for in UTF-8 and Windows-1252 files only
    rows = [f'"C{k}","Zoë {k}","415555{k:04d}.0","café, {k}"' for k in range(1, 30)]
    text = '"Contact ID","Name","Phone","Notes"\r\n' + "\r\n".join(rows) + "\r\n"
    text += SF_FOOTER if footer else ""
    path = tmp_path / "c.csv"
    path.write_bytes(text.encode(encoding))
    for rows_per_batch in (1, 3):
        whole, batched = both(monkeypatch, contacts, path, rows=rows_per_batch)
        assert batched == whole
        assert whole[0] == "read" and len(whole[1][2]) == 29
        assert any("footer" in w for w in whole[7]) is footer
    rows[25] = '"C26","Zoë","4155550026","two","fields too many"'
    text = '"Contact ID","Name","Phone","Notes"\r\n' + "\r\n".join(rows) + "\r\n"
    path.write_bytes((text + (SF_FOOTER if footer else "")).encode(encoding))
    whole, batched = both(monkeypatch, contacts, path, rows=2)
    assert batched == whole
    assert whole[0] == "refused" and whole[3] == 26 and "has 5 fields" in whole[2]


CONTACT_PHONES = st.one_of(
    PHONES, st.sampled_from(["415 555 0131 ::: (212) 555-0100", "x ::: 4155550132 ::: 555"])
)
HEADERS = [
    # (header, columns mapping)
    ("Contact ID,Phone,Mobile,State,Country,Do Not Call,Notes", None),
    ("Record ID,Phone,Mobile,Region,Country,DoNotCall,Notes", None),  # state by its values
    ("Contact ID,Main,Cell,State,Nation,DNC,Notes", {"phone": "Main"}),
    ("Contact ID,Main,Cell,Province,Country,Flag,Notes", {"phone": "Cell"}),
]


@settings(max_examples=120, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(
        st.tuples(
            IDS, CONTACT_PHONES, CONTACT_PHONES,
            st.sampled_from(["CA", "NY", "tx", "Texas", "", "ZZ"]),
            st.sampled_from(["", "US", "USA", "Mexico", "MX", "Narnia"]),
            st.sampled_from(["", "0", "false", "1", "yes", "X"]),
            st.sampled_from(["", "a note", '"two\nlines"', '"a, b"']),
        ),
        max_size=40,
    ),
    layout=st.sampled_from(HEADERS),
    broken=st.one_of(st.none(), st.none(), st.none(), st.integers(0, 39)),
    size=st.integers(1, 12),
)
def test_contacts_read_the_same_in_batches_of_any_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rows: list[tuple[str, ...]],
    layout: tuple[str, dict[str, str] | None], broken: int | None, size: int,
) -> None:
    header, columns = layout
    lines = [header]
    for k, row in enumerate(rows):
        line = ",".join(quote(x) for x in row)
        lines.append(line + (",extra,more" if k == broken else ""))
    path = tmp_path / "contacts.csv"
    path.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8-sig")
    whole, batched = both(monkeypatch, contacts, path, columns, rows=size)
    assert batched == whole


def test_a_dnc_list_with_a_header_and_no_rows_lists_its_unreadable_cells_typed_alike(
    tmp_path: Path,
) -> None:
    """No batch at all (a header, no row) gives the unreadable-cells frame a column with no
    unreadable cell gives: the same columns and types, not a frame of objects."""
    empty, one = tmp_path / "empty.csv", tmp_path / "one.csv"
    empty.write_text("phone_number\n")
    one.write_text("phone_number\n4155550123\n")
    frames = [read_dnc_file(p, "US", None, [])[1] for p in (empty, one)]
    assert [str(t) for t in frames[0].dtypes] == [str(t) for t in frames[1].dtypes]
    assert list(frames[0].columns) == ["row", "column", "value", "problem"]
