"""The one CSV reader for every input file: contacts, DNC lists, consent, RND answers.

Every column is read as text (pyarrow, no type guessing: `+14155550188` keeps its `+`); a row
that cannot be read rejects the file naming file, row and column; nothing is half-read.
Encoding: UTF-8 with or without BOM, UTF-16 with a BOM (Excel's "Unicode text"), else
Windows-1252 with a warning; `encoding=` overrides. Delimiter: comma, or `;`, tab or `|` when
it splits the first line into more fields (quotes honoured); Excel's `sep=;` first line is
refused by name. A Salesforce report's footer is left out, with a warning.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from campaign_dialer.contacts.tables import STRING
from campaign_dialer.errors import InputError

UNREADABLE_COLUMNS = ["row", "column", "value", "problem"]


class ContactsError(InputError):
    """The contacts file cannot be used: the CLI exits 65 (EX_DATAERR) before any call."""


def canon(header: str) -> str:
    """A header as compared with the aliases: lower case, runs of other characters "_"."""
    return re.sub(r"[^a-z0-9]+", "_", header.strip().lower()).strip("_")


def first_bad(
    bad: np.ndarray, error: Callable[[int], InputError]
) -> None:
    """Raise `error(i)` for the first position `i` where `bad` holds: the one "first bad row
    refuses the file, naming it" step every reader shares."""
    if bad.any():
        raise error(int(np.flatnonzero(bad)[0]))


def _decodes_as(path: Path, encoding: str) -> bool:
    """Decode the whole file incrementally (4 MB at a time): no full copy in memory."""
    dec = codecs.getincrementaldecoder(encoding)()
    try:
        with path.open("rb") as f:
            while chunk := f.read(1 << 22):
                dec.decode(chunk)
        dec.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def sniff_encoding(
    path: Path, head: bytes, encoding: str | None, warnings: list[str]
) -> str:
    """The file's encoding: an explicit one, UTF-16 by BOM, UTF-8, else Windows-1252 (what
    Excel's "CSV" writes on Windows), with a warning naming the file; "" for binary."""
    if encoding:
        return encoding
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if b"\x00" in head:
        return ""
    if _decodes_as(path, "utf-8"):
        return "utf-8"
    if _decodes_as(path, "cp1252"):
        warnings.append(
            f"{path}: not valid UTF-8; read as Windows-1252 (Excel on Windows). "
            "Set inputs.encoding if that is wrong"
        )
        return "cp1252"
    return "utf-8"  # the reader then names the first row that is not UTF-8



def sniff(
    path: Path, encoding: str | None, warnings: list[str] | None, error: type[InputError],
) -> tuple[str, str, str | None]:
    """(encoding, delimiter, the first line, None for an empty file). Rejects what is plainly
    not a CSV file."""
    try:
        with path.open("rb") as f:
            head = f.read(65536)
    except OSError as e:
        raise error(path, f"cannot read: {e.strerror or e}") from e
    if encoding:
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise error(path, f"inputs.encoding {encoding!r} is not an encoding") from None
    enc = sniff_encoding(path, head, encoding, warnings if warnings is not None else [])
    if not enc:
        raise error(path, "not a CSV file (binary content)")
    if enc.replace("-", "").lower() in ("utf8", "utf8sig"):
        enc = "utf-8"
        text = head.decode("utf-8-sig", errors="replace")
    else:
        text = head.decode(enc, errors="replace").lstrip("\ufeff")
    if not text.strip():
        return enc, ",", None
    first = text.splitlines()[0] if text.splitlines() else ""
    if re.fullmatch(r'"?sep=.?"?[,;\t|]*', first.strip(), re.I):
        raise error(
            path,
            f"line 1 is Excel's delimiter directive {first.strip()!r}, not the header row: "
            "delete that line (the delimiter is detected from the header)",
            row=None,
        )
    return enc, _delimiter(first), first


def _delimiter(first: str) -> str:
    """Comma, unless `;`, tab or `|` splits the header line into more fields (quotes
    honoured): a European export's `Name;Phone;"Betrag (EUR, netto)"` is `;`-separated."""
    fields = {d: len(next(csv.reader([first], delimiter=d), [])) for d in (",", ";", "\t", "|")}
    best = max((";", "\t", "|"), key=lambda d: fields[d])
    return best if fields[best] > fields[","] else ","


# The lines a Salesforce report export ends with, after a blank line: "Grand Totals (n
# records)", the report's title, a copyright line, "Confidential Information - Do Not
# Distribute", "Generated By: <user> <date>", the company's name.
_FOOTER_LINE = re.compile(
    r"grand totals\b|confidential information - do not distribute|copyright \(c\)"
    r"|generated by:", re.I,
)
_FOOTER_MARK = re.compile(
    r"confidential information - do not distribute|copyright \(c\).*salesforce\.com", re.I
)


def report_footer(path: Path, encoding: str) -> tuple[int, int] | None:
    """(byte offset, lines) of a Salesforce report's footer at the end of the file, or None.

    A footer starts after a blank line; each of its lines is one field, and is a known footer
    line or holds fewer than 7 digits (no phone number is ever taken for a footer), and the
    block carries Salesforce's copyright or confidentiality mark.
    """
    if encoding not in ("utf-8", "cp1252"):
        return None
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            start = max(0, size - 8192)
            f.seek(start)
            tail = f.read()
    except OSError:
        return None
    lines = tail.split(b"\n")
    offsets = list(itertools.accumulate((len(ln) + 1 for ln in lines), initial=start))
    text = [ln.decode(encoding, "replace").strip() for ln in lines]
    for i in range(1 if start else 0, len(lines)):
        if text[i] not in ("", '""'):
            continue
        block = [t for t in text[i + 1:] if t not in ("", '""')]
        if not block or not any(_FOOTER_MARK.search(t) for t in block):
            continue
        ok = True
        for t in block:
            rec = next(csv.reader([t]), [])
            if len(rec) != 1 or not (
                _FOOTER_LINE.match(rec[0].strip()) or sum(c.isdigit() for c in rec[0]) < 7
            ):
                ok = False
                break
        if ok:
            return offsets[i], len(block)
    return None


class _Prefix(io.RawIOBase):
    """The first `size` bytes of a file, as a stream: read in blocks, never held whole."""

    def __init__(self, path: Path, size: int) -> None:
        super().__init__()
        self._file = path.open("rb")
        self._left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._left <= 0:
            return 0
        n = self._file.readinto(memoryview(buffer)[: self._left]) or 0
        self._left -= n
        return n

    def close(self) -> None:
        self._file.close()
        super().close()


class CsvBytes(io.RawIOBase):
    """A CSV file's bytes for arrow's reader: UTF-8, and never cut between a CR and its LF.

    Arrow's CSV reader (through 26.0, apache/arrow#51368) drops the LF of a CR LF that falls
    across two of its reads, even inside a quoted cell: a note "a<CR><LF>b" came back
    "a<CR>b" wherever a block boundary fell, silently. A read here that would end on such a
    CR ends before it instead. The text is transcoded here (strictly, as arrow's transcoder
    does) rather than by arrow, so a UTF-16 or cp1252 file gets the same guard. Closes
    `raw` on `close` only when `owns` it.
    """

    def __init__(self, raw: BinaryIO, encoding: str = "utf-8", *, owns: bool = True) -> None:
        super().__init__()
        self._raw = raw
        self._owns = owns
        self._decoder = (
            None if codecs.lookup(encoding).name == "utf-8"
            else codecs.getincrementaldecoder(encoding)("strict")
        )
        self._held = b""
        self._eof = False

    def readable(self) -> bool:
        return True

    def _fill(self, want: int) -> None:
        chunk = self._raw.read(max(want, 1 << 16))
        if not chunk:
            self._eof = True
            if self._decoder is not None:
                self._held += self._decoder.decode(b"", final=True).encode("utf-8")
            return
        if self._decoder is not None:
            chunk = self._decoder.decode(chunk).encode("utf-8")
        self._held += chunk

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            while not self._eof:
                self._fill(1 << 22)
            out, self._held = self._held, b""
            return out
        size = max(size, 2)  # room for a CR and its LF
        # One byte beyond the read is needed to see whether it would end between CR and LF.
        while not self._eof and len(self._held) <= size:
            self._fill(size + 1 - len(self._held))
        cut = min(size, len(self._held))
        if self._held[cut - 1:cut + 1] == b"\r\n":
            cut -= 1
        out, self._held = self._held[:cut], self._held[cut:]
        return out

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        memoryview(buffer)[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if self._owns and not self.closed:
            self._raw.close()
        super().close()


def csv_source(path: Path, encoding: str, warnings: list[str] | None) -> CsvBytes:
    """The stream to give the CSV reader (with `_csv_options`: it is UTF-8): the file's
    bytes (`CsvBytes`), without a Salesforce report's footer (said in a warning, never
    silently). The caller closes it."""
    footer = report_footer(path, encoding)
    if footer is None:
        return CsvBytes(path.open("rb"), encoding)
    offset, n = footer
    if warnings is not None:
        warnings.append(
            f"{path}: the last {n} line(s) are a Salesforce report's footer (totals, copyright, "
            "confidentiality notice): not read as data"
        )
    return CsvBytes(io.BufferedReader(_Prefix(path, offset)), encoding)


def _closed(source: CsvBytes) -> None:
    source.close()


def _decoded(path: Path, encoding: str, size: int | None = None) -> str:
    """The file's text (or its first `size` bytes'); bytes that are not UTF-8 become
    surrogates, which the callers name as such."""
    with path.open("rb") as f:
        raw = f.read(size) if size is not None else f.read()
    if encoding == "utf-8":
        return raw.removeprefix(codecs.BOM_UTF8).decode("utf-8", errors="surrogateescape")
    return raw.decode(encoding, errors="replace").lstrip("\ufeff")


def _lines(path: Path, encoding: str) -> Iterator[str]:
    """The file's lines (endings kept), decoded as `_decoded` decodes it, read as a stream:
    naming a bad row near the end of a large file does not hold the file in memory."""
    if encoding == "utf-8":
        f = path.open(encoding="utf-8-sig", errors="surrogateescape", newline="")
    else:
        f = path.open(encoding=encoding, errors="replace", newline="")
    with f:
        first = True
        for line in f:
            yield line.lstrip("\ufeff") if first and encoding != "utf-8" else line
            first = False


def _not_utf8(cell: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in cell)


def read_header(
    path: Path, encoding: str, delimiter: str, error: type[InputError]
) -> list[str]:
    """The header row, each name stripped."""
    text = _decoded(path, encoding, 1 << 20)
    try:
        header = next(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    except (StopIteration, csv.Error) as e:
        raise error(path, f"cannot read the header row: {e}") from e
    header = [h.strip() for h in header]
    if any(_not_utf8(h) for h in header):
        raise error(path, "the header row is not valid UTF-8 text")
    if not any(header):
        raise error(path, "empty header row")
    return header


def locate_bad_row(
    path: Path, encoding: str, delimiter: str, header: list[str] | None,
    error: type[InputError],
) -> InputError:
    """Re-read slowly to name the first data row (and column) that cannot be read.
    `header` None: a headerless file, whose first record sets the number of fields."""
    reader = csv.reader(_lines(path, encoding), delimiter=delimiter, strict=True)
    try:
        if header is not None:
            next(reader)
        names = header
        row = 0
        for record in reader:
            if not record:
                continue  # blank line: skipped, not a data row
            if names is None:
                names = [f"#{j + 1}" for j in range(len(record))]
            n = len(names)
            row += 1
            for j, cell in enumerate(record[:n]):
                if _not_utf8(cell):
                    return error(
                        path, "not valid UTF-8 text (nor Windows-1252)", row=row, column=names[j]
                    )
            if len(record) < n:
                return error(
                    path,
                    f"has {len(record)} fields, the header has {n} (a missing field or an "
                    "unquoted line break?)",
                    row=row,
                    column=names[len(record)],
                )
            if len(record) > n and n == 1 and len(record) > 2:
                return error(
                    path,
                    f"has {len(record)} fields but the first line ({names[0]!r}) has one: is "
                    "it a report's title rather than the header? Delete the lines above the "
                    "header row",
                    row=row,
                    column=f"#{n + 1} (beyond the header)",
                )
            if len(record) > n:
                return error(
                    path,
                    f"has {len(record)} fields, the header has {n} (an unquoted comma?)",
                    row=row,
                    column=f"#{n + 1} (beyond the header)",
                )
    except csv.Error as e:
        return error(path, f"not valid CSV: {e}", row=reader.line_num - 1 or None)
    return error(path, "cannot be read as CSV")


def _csv_options(
    names: list[str], header: bool, delimiter: str, on_invalid: Callable[[object], str],
    block_size: int,
) -> tuple[pacsv.ReadOptions, pacsv.ParseOptions, pacsv.ConvertOptions]:
    """The reader's options, the same for the whole-file and the batched reader: every column
    text, nothing null, quoted line breaks kept inside their cell, bad rows collected. The
    source is `csv_source`'s stream, UTF-8 whatever the file's encoding."""
    cols = [f"c{i}" for i in range(len(names))]
    return (
        pacsv.ReadOptions(
            column_names=cols, skip_rows=1 if header else 0, encoding="utf8",
            block_size=block_size,
        ),
        pacsv.ParseOptions(
            delimiter=delimiter, newlines_in_values=True, invalid_row_handler=on_invalid
        ),
        pacsv.ConvertOptions(
            column_types={c: pa.string() for c in cols},
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )


def _names(
    path: Path, header: bool, enc: str, delimiter: str, first: str, error: type[InputError]
) -> list[str]:
    if header:
        return read_header(path, enc, delimiter, error)
    return [f"c{i}" for i in range(len(next(csv.reader([first], delimiter=delimiter))))]


def read_strings(
    path: Path,
    *,
    header: bool = True,
    encoding: str | None = None,
    warnings: list[str] | None = None,
    error: type[InputError] = InputError,
    allow_empty: bool = True,
) -> tuple[list[str], pa.Table, str]:
    """(names, every column as text, encoding). `header=False` names the columns c0..cn.

    An empty file is ([], an empty table) when `allow_empty`, else refused.
    """
    path = Path(path)
    enc, delimiter, first = sniff(path, encoding, warnings, error)
    if first is None:
        if not allow_empty:
            raise error(path, "empty file: no header row")
        return [], pa.table({}), enc
    names = _names(path, header, enc, delimiter, first, error)
    bad: list[object] = []

    def on_invalid(row: object) -> str:
        bad.append(row)
        return "skip"

    read, parse, convert = _csv_options(names, header, delimiter, on_invalid, 1 << 22)
    source = csv_source(path, enc, warnings)
    try:
        table = pacsv.read_csv(
            source, read_options=read, parse_options=parse, convert_options=convert
        )
    except UnicodeDecodeError as e:
        if enc != "utf-8":
            raise error(path, f"not valid {enc} text (see inputs.encoding): {e}") from e
        raise locate_bad_row(path, enc, delimiter, names if header else None, error) from e
    except pa.ArrowInvalid as e:
        raise locate_bad_row(path, enc, delimiter, names if header else None, error) from e
    finally:
        _closed(source)
    if bad:
        raise locate_bad_row(path, enc, delimiter, names if header else None, error)
    return names, table, enc


BATCH_BYTES = 1 << 22  # the batched reader's block: about 4 MB of the file per batch
BATCH_ROWS = 1 << 17  # and at most this many rows per batch (a block is cut into slices)


class StringBatches:
    """A CSV file read in bounded batches, every column as text, refused exactly as
    `read_strings` refuses it: the same sniffing, options and messages.

    Iterating yields (index of the batch's first data row, batch), so a reader names the row
    of a bad cell as the whole-file reader does. A file is only usable once read to its end:
    a row the CSV reader could not read anywhere in it refuses the file, before any problem a
    reader found in a cell (`drain` reads on to find such a row: call it before raising a
    cell's error, so the same file gets the same message as from the whole-file reader).
    """

    def __init__(
        self, path: Path, *, header: bool = True, encoding: str | None = None,
        warnings: list[str] | None = None, error: type[InputError] = InputError,
        block_size: int | None = None, rows: int | None = None,
    ) -> None:
        self.path = Path(path)
        self.header = header
        self.error = error
        self.warnings = warnings
        self.block_size = block_size or BATCH_BYTES
        self.rows = rows or BATCH_ROWS
        self.encoding, self.delimiter, first = sniff(self.path, encoding, warnings, error)
        self.names: list[str] = (
            [] if first is None
            else _names(self.path, header, self.encoding, self.delimiter, first, error)
        )
        self._gen: Iterator[tuple[int, pa.RecordBatch]] | None = None

    def __iter__(self) -> Iterator[tuple[int, pa.RecordBatch]]:
        self._gen = self._batches()
        return self._gen

    def drain(self) -> None:
        """Read the rest of the file without looking at it; raise what `read_strings` would
        raise for a row that cannot be read."""
        if self._gen is not None:
            for _ in self._gen:
                pass

    def _refused(self) -> InputError:
        names = self.names if self.header else None
        return locate_bad_row(self.path, self.encoding, self.delimiter, names, self.error)

    def _batches(self) -> Iterator[tuple[int, pa.RecordBatch]]:
        if not self.names:
            return
        bad: list[object] = []

        def on_invalid(row: object) -> str:
            bad.append(row)
            return "skip"

        read, parse, convert = _csv_options(
            self.names, self.header, self.delimiter, on_invalid, self.block_size
        )
        start = 0
        source = csv_source(self.path, self.encoding, self.warnings)
        try:
            reader = pacsv.open_csv(
                source, read_options=read, parse_options=parse, convert_options=convert
            )
            while True:
                try:
                    batch = reader.read_next_batch()
                except StopIteration:
                    break
                for at in range(0, batch.num_rows, self.rows):
                    part = batch.slice(at, self.rows)
                    yield start, part
                    start += part.num_rows
        except UnicodeDecodeError as e:
            if self.encoding != "utf-8":
                raise self.error(
                    self.path, f"not valid {self.encoding} text (see inputs.encoding): {e}"
                ) from e
            raise self._refused() from e
        except pa.ArrowInvalid as e:
            raise self._refused() from e
        finally:
            _closed(source)
        if bad:
            raise self._refused()


def column_of(table: pa.Table, i: int) -> pd.Series:
    return pd.Series(table.column(i).to_pandas(), dtype=STRING).reset_index(drop=True)


def unreadable_cells(
    cells: pd.Series, norm: pd.DataFrame, column: str, first_row: int
) -> pd.DataFrame:
    """The cells that are not blank and not a valid number: row, column, value, problem."""
    bad = (norm["problem"].notna() & norm["problem"].ne("blank")).fillna(False).to_numpy(bool)
    idx = np.flatnonzero(bad)
    return pd.DataFrame(
        {
            "row": idx + first_row,
            "column": column,
            "value": cells.iloc[idx].to_numpy(dtype=object),
            "problem": norm["problem"].iloc[idx].to_numpy(dtype=object),
        },
        columns=UNREADABLE_COLUMNS,
    )


def joined_cells(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """One column's unreadable cells, read in batches, as `unreadable_cells` gives them for
    the whole column: the batches that have some, joined (an empty batch's frame would turn
    the text columns into objects), else the first batch's empty frame."""
    some = [f for f in frames if len(f)]
    if not some:
        return frames[0] if frames else pd.DataFrame(columns=UNREADABLE_COLUMNS)
    return some[0] if len(some) == 1 else pd.concat(some, ignore_index=True)


def refuse_plausible(
    path: Path, cells: pd.Series, norm: pd.DataFrame, column: str, first_row: int,
    where: np.ndarray | None = None, what: str = "Do-Not-Call entry",
    error: type[InputError] = InputError,
) -> None:
    """A cell holding 7+ digits that is not exactly one valid number refuses the file: the
    person meant a number there, and we cannot tell which (never dropped silently)."""
    plausible = norm["plausible"].to_numpy(dtype=bool)
    if where is not None:
        plausible = plausible & where
    first_bad(plausible, lambda i: error(
        path,
        f"{what} {cells.iloc[i]!r} looks like a phone number but cannot be read as exactly "
        f"one valid number ({norm['problem'].iloc[i]}); write it as one full number, "
        "e.g. +14155550123",
        row=i + first_row,
        column=column,
    ))


def header_further_down(
    path: Path, known: set[str], *, encoding: str | None = None, lines: int = 10
) -> tuple[int, str] | None:
    """(line number, header name) of the first line after line 1, among the first `lines`,
    holding a header name we know: the real header row under a report's title lines (Excel
    pads those with commas, so they look like a header row that names nothing)."""
    try:
        enc, delimiter, first = sniff(path, encoding, None, InputError)
    except InputError:
        return None
    if first is None:
        return None
    text = _decoded(path, enc, 1 << 16)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        for k, record in enumerate(reader):
            if k >= lines:
                break
            if k == 0:
                continue
            hit = next((c.strip() for c in record if canon(c) in known), None)
            if hit is not None:
                return reader.line_num, hit
    except csv.Error:
        return None
    return None


def refuse_title_lines(
    path: Path, known: set[str], error: type[InputError], encoding: str | None = None
) -> None:
    """Refuse a file whose header row is not its first line, naming the line: reading the
    title as the header would read the wrong columns (or none) as data."""
    found = header_further_down(path, known, encoding=encoding)
    if found is not None:
        line, name = found
        raise error(
            path,
            f"line 1 is not a header row we know, but line {line} is (it names {name!r}): "
            "is line 1 a report's title? Delete the lines above the header row",
            column=name,
        )
