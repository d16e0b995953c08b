"""A line break inside a quoted cell is read exactly, wherever the reader's blocks fall.

Arrow's CSV reader drops the LF of a CR LF that falls across two of its reads, even inside a
quoted cell (apache/arrow#51368): a contact's note "a<CR><LF>b" came back "a<CR>b" when a
4 MB block ended between the two, and results.csv read in batches disagreed with the same
file read whole. Every CSV the tool reads goes to arrow through `CsvBytes`, whose reads never
end between a CR and its LF; these tests move such a cell across every block boundary.
"""

from __future__ import annotations

import codecs
import csv
import io
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from campaign_dialer import results
from campaign_dialer.contacts import CsvBytes, csvfile

BREAKS = st.sampled_from(["\r\n", "\r", "\n", "\r\r\n", "\r\n\r\n", "x", ""])


@settings(max_examples=200)
@given(
    st.lists(st.one_of(BREAKS, st.text(max_size=5)), max_size=30).map("".join),
    st.sampled_from(["utf-8", "utf-16", "cp1252"]),
    st.lists(st.integers(1, 9), min_size=1, max_size=20),
)
def test_csv_bytes_is_the_text_as_utf8_never_cut_between_cr_and_lf(
    text: str, encoding: str, sizes: list[int]
) -> None:
    raw = text.encode(encoding, errors="replace") if encoding == "cp1252" else text.encode(
        encoding)
    want = codecs.decode(raw, encoding).encode("utf-8")
    stream = CsvBytes(io.BytesIO(raw), encoding)
    reads: list[bytes] = []
    i = 0
    while chunk := stream.read(sizes[i % len(sizes)]):
        assert len(chunk) <= max(sizes[i % len(sizes)], 2)
        reads.append(chunk)
        i += 1
    assert b"".join(reads) == want
    for before, after in zip(reads, reads[1:], strict=False):
        assert not (before.endswith(b"\r") and after.startswith(b"\n"))


def _csv(rows: list[list[str]]) -> str:
    buf = io.StringIO(newline="")
    csv.writer(buf, lineterminator="\r\n").writerows(rows)
    return buf.getvalue()


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16", "cp1252"])
def test_a_contact_note_with_a_line_break_reads_exactly_at_every_block_boundary(
    tmp_path: Path, encoding: str
) -> None:
    path = tmp_path / "contacts.csv"
    block = 64
    for shift in range(40):
        rows = [["phone", "note"], ["+14155550188", "n" * shift + "call\r\nback"],
                *[["+1415555019" + str(i), "x\r\ny" * (i + 1)] for i in range(6)]]
        text = _csv(rows)
        path.write_bytes(text.encode(encoding))
        want = [r[1] for r in rows[1:]]
        got = [cell for _, batch in csvfile.StringBatches(path, block_size=block)
               for cell in batch.column(1).to_pylist()]
        assert got == want, shift
        _, whole, _ = csvfile.read_strings(path)
        assert whole.column(1).to_pylist() == want


def test_a_line_break_on_the_whole_file_readers_4_mb_boundary_reads_exactly(
    tmp_path: Path
) -> None:
    """The whole-file reader too reads in 4 MB blocks: the case a real list would meet."""
    block = 1 << 22
    head = _csv([["phone", "note"]])
    filler_row = _csv([["+14155550100", "f" * 90]])
    n = (block - len(head)) // len(filler_row) - 1
    body = head + filler_row * n
    # the note's CR is the block's last byte, its LF the next block's first
    pad = block - len(body) - len('+14155550188,"') - len("call\r")
    note = "p" * pad + "call\r\nback"
    text = body + _csv([["+14155550188", note], ["+14155550189", "end"]])
    assert text.encode()[block - 1:block + 1] == b"\r\n"
    path = tmp_path / "contacts.csv"
    path.write_bytes(text.encode())
    _, table, _ = csvfile.read_strings(path)
    assert table.column(1).to_pylist()[-2:] == [note, "end"]


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.lists(BREAKS, min_size=1, max_size=4).map("".join), min_size=1,
                max_size=8), st.integers(0, 30))
def test_results_read_in_blocks_keep_every_line_break_of_a_cell(
    tmp_path: Path, notes: list[str], extra: int
) -> None:
    header = ["row", "disposition", "reason", "note"]
    body = [[str(i), "dialed", "", note] for i, note in enumerate(notes)]
    text = _csv([header, *body])
    path = tmp_path / "results.csv"
    path.write_bytes(text.encode())
    longest = max(len(_csv([r]).encode()) for r in [header, *body])
    with results.ResultsFile(path) as f:
        parts = list(f.batches(longest + extra, 1))
        whole = f.frame()
    got = [v for p in parts for v in p["note"].fillna("").tolist()]
    assert got == notes
    assert whole["note"].fillna("").tolist() == notes
