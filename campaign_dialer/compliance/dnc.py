"""Local Do-Not-Call lists: read, normalised, O(1) membership; their dates and ages."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from campaign_dialer.compliance.base import (
    DATED_KINDS,
    DNC_MAX_AGE_DAYS,
    DNC_WARN_AGE_DAYS,
    E164_PATTERN,
    ComplianceError,
    arrow_strings,
    aware,
    e164_ints,
    file_stamp,
    search_sorted,
)
from campaign_dialer.compliance.ledger import LedgerView
from campaign_dialer.contacts import PHONE_ROLES, ROLE_ALIASES, STRING, normalize_phones
from campaign_dialer.contacts.country import country_region
from campaign_dialer.contacts.csvfile import (
    UNREADABLE_COLUMNS,
    StringBatches,
    column_of,
    joined_cells,
    refuse_plausible,
    refuse_title_lines,
    unreadable_cells,
)
from campaign_dialer.contacts.csvfile import (
    canon as canon_header,
)
from campaign_dialer.memory import release_memory


@dataclass(frozen=True)
class DncListMeta:
    """What a DNC file is and when it was obtained (`[[inputs.dnc_lists]]`)."""

    kind: str  # national | state | internal | vendor
    state: str | None = None
    as_of: date | None = None
    key: str = ""  # the campaign key naming it, for messages


def dnc_age_days(as_of: date, at: datetime) -> int:
    """Whole days from the list's date to the moment of dialing (UTC calendar days)."""
    return (aware(at).astimezone(UTC).date() - as_of).days



_DNC_HEADERS = tuple(a for role in PHONE_ROLES for a in ROLE_ALIASES[role]) + (
    "dnc", "do_not_call", "phone_e164", "e164", "numbers",
)  # fmt: skip


class _Regions:
    """Each row's region from a country column (a CRM's Do-Not-Call export): a Mexican entry
    written `55 1234 5678` is +52 55 1234 5678, not the New Jersey number the campaign's
    default region would make of it (and the listed person called). Country cells we do not
    know are read with the default region and named in one warning for the file."""

    def __init__(self, at: int, name: str, region: str) -> None:
        self.at = at
        self.name = name
        self.region = region
        self.known: dict[str, str | None] = {}

    @classmethod
    def of(cls, canon: list[str], names: list[str], region: str) -> _Regions | None:
        aliases = set(ROLE_ALIASES.get("country", ()))
        at = next((i for i, c in enumerate(canon) if c in aliases), None)
        return None if at is None else cls(at, names[at], region)

    def of_rows(self, batch: pa.RecordBatch) -> pd.Series:
        cells = column_of(batch, self.at).fillna("")
        for u in pd.unique(cells):
            if u not in self.known:
                self.known[u] = country_region(u)
        return cells.map(lambda u: self.known[u] or self.region)

    def warn(self, path: Path, warnings: list[str] | None) -> None:
        unknown = sorted(u for u, r in self.known.items() if r is None and u.strip())
        if unknown and warnings is not None:
            warnings.append(
                f"{path}: column {self.name!r}: country value(s) not recognised, numbers there "
                f"are read with default_region {self.region}: "
                + ", ".join(repr(u) for u in unknown[:5])
            )


def _by_row_country(
    cells: pd.Series, norm: pd.DataFrame, regions: pd.Series, region: str
) -> pd.DataFrame:
    """`norm` with the rows of another country read with that country's region (a number
    written with its + code reads the same either way)."""
    out = norm.copy()
    for other in pd.unique(regions[regions != region]):
        again = normalize_phones(cells[(regions == other).to_numpy()], str(other))
        for c in out.columns:
            out.loc[again.index, c] = again[c]
    return out


class _Column:
    """One column of numbers of a DNC file, read batch by batch: what must be kept of it is
    its valid numbers and its unreadable cells, never the file. `as_ints`: the numbers kept
    as their `e164_ints` keys (8 bytes a number, what the gate holds), not as strings."""

    def __init__(self, label: str, as_ints: bool = False) -> None:
        self.label = label
        self.as_ints = as_ints
        self.numbers: list[pd.Series | np.ndarray] = []
        self.unreadable: list[pd.DataFrame] = []
        self.valid = 0
        self.refusal: ComplianceError | None = None

    def add(
        self, path: Path, cells: pd.Series, norm: pd.DataFrame, first_row: int
    ) -> None:
        """A plausible number that cannot be read refuses the file (`refuse_plausible`); its
        first such cell is kept and raised once the whole file is known to be readable."""
        if self.refusal is None:
            try:
                refuse_plausible(path, cells, norm, self.label, first_row, error=ComplianceError)
            except ComplianceError as e:
                self.refusal = e
        valid = norm["e164"].dropna()
        self.valid += len(valid)
        self.numbers.append(e164_ints(arrow_strings(valid)) if self.as_ints else valid)
        unreadable = unreadable_cells(cells, norm, self.label, first_row)
        if len(unreadable) or not self.unreadable:
            self.unreadable.append(unreadable)  # the first batch's, and those with cells

    def read(self) -> tuple[pd.Series | np.ndarray, pd.DataFrame]:
        numbers = _joined(self.numbers, self.as_ints)
        self.numbers = []
        if not self.unreadable:  # no row at all: the empty frame the whole column gives
            none = pd.Series([], dtype=STRING)
            self.unreadable.append(
                unreadable_cells(none, pd.DataFrame({"problem": none}), self.label, 1)
            )
        if isinstance(numbers, pd.Series):
            numbers = numbers.astype(STRING)
        return numbers, joined_cells(self.unreadable)


def _joined(parts: Sequence[pd.Series | np.ndarray], as_ints: bool) -> pd.Series | np.ndarray:
    """Numbers read in parts, as one column (strings, or `e164_ints` keys)."""
    if as_ints:
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    return pd.concat(parts, ignore_index=True) if parts else pd.Series([], dtype=STRING)


def _holding_numbers(
    path: Path, canon: list[str], region: str, encoding: str | None
) -> list[int]:
    """A header we do not know ("DNC Number", "Phone Numbers") over several columns: the
    phone-named columns holding at least one number ("Added" holds none). One pass over the
    file, batch by batch."""
    candidates = [
        i for i, c in enumerate(canon)
        if re.search(r"phone|number|tel|cell|mobile|dnc|do_not_call|e164", c)
    ]
    holding: set[int] = set()
    for _, batch in StringBatches(path, encoding=encoding, error=ComplianceError):
        for i in candidates:
            if i not in holding and normalize_phones(column_of(batch, i), region)[
                "e164"
            ].notna().any():
                holding.add(i)
    return sorted(holding)


def _headerless_cells(
    batches: StringBatches, path: Path, header_names: list[str]
) -> Iterator[tuple[int, pd.Series]]:
    """A headerless list, batch by batch: one column of numbers, or the FTC registry layout
    "area code,number" (3 + 7 digits, told by the first row)."""
    layout: str | None = None
    for start, batch in batches:
        if layout is None:
            if len(batches.names) == 1:
                layout = "one"
            elif (
                len(batches.names) == 2
                and re.fullmatch(r"\d{3}", batch.column(0)[0].as_py().strip())
                and re.fullmatch(r"\d{7}", batch.column(1)[0].as_py().strip())
            ):
                layout = "ftc"
            else:
                batches.drain()
                raise _which_column(path, header_names)
        if layout == "one":
            yield start, column_of(batch, 0)
        else:
            yield start, column_of(batch, 0).str.strip() + column_of(batch, 1).str.strip()
    if layout is None and len(batches.names) != 1:
        raise _which_column(path, header_names)


def _which_column(path: Path, header_names: list[str]) -> ComplianceError:
    return ComplianceError(
        path,
        "cannot tell which column holds the numbers: name it phone (first row: "
        + ", ".join(header_names)
        + ")",
    )


def read_dnc_file(
    path: Path, region: str, encoding: str | None = None, warnings: list[str] | None = None
) -> tuple[pd.Series, pd.DataFrame]:
    """(valid E.164 numbers, unreadable cells), read in bounded batches (`StringBatches`):
    memory follows the numbers kept, not the file. A plausible number that cannot be read
    refuses the file (`refuse_plausible`); other junk (`call me later`) is listed, never
    dropped silently; a file whose every non-blank cell is junk is refused (wrong column or
    file). A row the CSV reader cannot read refuses the file first, wherever it is."""
    numbers, unreadable = _read_dnc(path, region, encoding, warnings, as_ints=False)
    assert isinstance(numbers, pd.Series)
    return numbers, unreadable


def read_dnc_ints(
    path: Path, region: str, encoding: str | None, warnings: list[str] | None = None
) -> tuple[np.ndarray, pd.DataFrame]:
    """`read_dnc_file` with the numbers as their `e164_ints` keys (what `DncList` keeps)."""
    numbers, unreadable = _read_dnc(path, region, encoding, warnings, as_ints=True)
    assert isinstance(numbers, np.ndarray)
    return numbers, unreadable


def _read_dnc(
    path: Path, region: str, encoding: str | None, warnings: list[str] | None, *,
    as_ints: bool,
) -> tuple[pd.Series | np.ndarray, pd.DataFrame]:
    """`read_dnc_file`; `as_ints`: the numbers as their `e164_ints` keys, converted batch by
    batch (what `DncList` keeps: a million numbers are 8 MB, never a column of strings)."""
    batches = StringBatches(path, encoding=encoding, warnings=warnings, error=ComplianceError)
    names = batches.names
    if not names:
        batches.drain()
        return _joined([], as_ints), pd.DataFrame(columns=UNREADABLE_COLUMNS)
    canon = [canon_header(h) for h in names]
    # Every phone column: a DNC export with "Phone" and "Mobile" lists both numbers.
    aliases = set(_DNC_HEADERS)
    cols = [i for i, c in enumerate(canon) if c in aliases]
    header_names = names
    if not cols:
        iter(batches)
        batches.drain()  # a row that cannot be read is named before anything else
        # "Do Not Call list,," above "Phone,Mobile": read as a header, the title would make
        # one column the numbers and leave the others unread
        refuse_title_lines(path, aliases, ComplianceError, encoding)
    if not cols and len(names) > 1 and not any(
        normalize_phones(pd.Series(names, dtype=STRING), region)["e164"].notna()
    ):
        holding = _holding_numbers(path, canon, region, encoding)
        if len(holding) == 1:
            cols = holding
            batches = StringBatches(path, encoding=encoding, error=ComplianceError)
    columns = (
        [_Column(names[i], as_ints) for i in cols] if cols else [_Column("#1", as_ints)]
    )
    regions = _Regions.of(canon, names, region) if cols else None
    if cols:
        cells_of: Iterator[tuple[int, list[pd.Series], pa.RecordBatch | None]] = (
            (start, [column_of(batch, i) for i in cols], batch) for start, batch in batches
        )
    else:
        batches = StringBatches(path, header=False, encoding=encoding, error=ComplianceError)
        cells_of = (
            (start, [cells], None)
            for start, cells in _headerless_cells(batches, path, header_names)
        )
    try:
        for start, cells_list, batch in cells_of:
            rows = regions.of_rows(batch) if regions is not None and batch is not None else None
            for column, cells in zip(columns, cells_list, strict=True):
                norm = normalize_phones(cells, region)
                if rows is not None:
                    norm = _by_row_country(cells, norm, rows, region)
                column.add(path, cells, norm, start + 1)
    except ComplianceError:
        batches.drain()  # a row that cannot be read is named first, as the whole-file reader does
        raise
    if regions is not None:
        regions.warn(path, warnings)
    return _kept(path, columns, as_ints)


def _kept(
    path: Path, columns: list[_Column], as_ints: bool
) -> tuple[pd.Series | np.ndarray, pd.DataFrame]:
    """The file's numbers and unreadable cells once read whole, or its refusal: the first
    column (in order) holding a plausible number that cannot be read, else a file whose only
    phone-named columns hold no number at all (a "Do Not Call = Yes" flag column?)."""
    for column in columns:
        if column.refusal is not None:
            raise column.refusal
    valids: list[pd.Series | np.ndarray] = []
    bads: list[pd.DataFrame] = []
    junk: list[tuple[str, pd.DataFrame]] = []
    for column in columns:
        numbers, unreadable = column.read()
        if len(unreadable) and column.valid == 0:
            junk.append((column.label, unreadable))  # a flag column ("Do Not Call" = Yes)?
            continue
        valids.append(numbers)
        bads.append(unreadable)
    if not valids and junk:
        label, unreadable = junk[0]
        raise ComplianceError(
            path,
            f"no cell of column {label!r} holds a phone number "
            f"({unreadable['value'].iloc[0]!r} is not one): wrong column or file?",
            row=int(unreadable["row"].iloc[0]),
            column=label,
        )
    if not valids:
        return _joined([], as_ints), pd.DataFrame(columns=UNREADABLE_COLUMNS)
    if len(valids) == 1:
        one = valids[0]
        return (one.reset_index(drop=True) if isinstance(one, pd.Series) else one), bads[0]
    unreadable = pd.concat(bads, ignore_index=True).sort_values("row", kind="stable")
    numbers = _joined(valids, as_ints)
    if isinstance(numbers, pd.Series):
        numbers = numbers.reset_index(drop=True)
    return numbers, unreadable.reset_index(drop=True)



class DncList:
    """Local Do-Not-Call lists plus the ledger, normalised; membership by binary search.

    The numbers are kept as one sorted int64 array (`e164_ints`: 8 bytes a number, no hash
    table of a million entries), each with the code of the first list holding it."""

    def __init__(
        self, numbers: pd.Series | np.ndarray, source_codes: np.ndarray, sources: list[str]
    ) -> None:
        # numbers (E.164 strings, or their int64 keys); the first list holding one is evidence
        ints = (
            numbers.astype(np.int64, copy=False) if isinstance(numbers, np.ndarray)
            else e164_ints(arrow_strings(numbers.reset_index(drop=True)))
        )
        codes = np.asarray(source_codes, dtype=np.int32)
        if (ints < 0).any():
            ok = ints >= 0
            ints, codes = ints[ok], codes[ok]
        # sorted, each number once, with the index of its first occurrence (a stable sort)
        self._ints, first = np.unique(ints, return_index=True)
        self._source = codes[first]
        self.sources = sources
        self.ignored: dict[str, int] = {}  # per list: unreadable cells (listed in `unreadable`)
        self.unreadable: dict[str, pd.DataFrame] = {}
        self.warnings: list[str] = []
        self.ledger: LedgerView | None = None  # asked at every check: numbers added mid-run
        # how it was loaded, so `reloaded` can read the lists again when a file changed
        self._paths: tuple[Path, ...] = ()
        self._stamps: tuple[tuple[int, int, int] | None, ...] = ()
        self._load_kw: dict[str, object] = {}
        self.meta: dict[str, DncListMeta] = {}  # per list name: kind and date, when given

    @classmethod
    def load(
        cls,
        paths: Sequence[Path],
        *,
        default_region: str,
        ledger: LedgerView | None = None,
        encoding: str | None = None,
        meta: Sequence[DncListMeta | None] = (),
        read: Callable[[Path], tuple[np.ndarray, pd.DataFrame, list[str]]] | None = None,
    ) -> DncList:
        """Read every list (and the ledger); `ComplianceError` names the bad file and row.

        `meta`, parallel to `paths`, gives each list's kind and date (None: internal, undated).
        `read`: how one list is read ((numbers as `e164_ints` keys, unreadable cells,
        warnings)), default from its file (`kept.KeptReads` may answer from a read of the
        same bytes kept before).
        """
        parts: list[np.ndarray] = []
        metas: dict[str, DncListMeta] = {}
        codes: list[np.ndarray] = []
        sources: list[str] = []
        ignored: dict[str, int] = {}
        unreadable: dict[str, pd.DataFrame] = {}
        warnings: list[str] = []
        stamps = tuple(file_stamp(Path(p)) for p in paths)  # before reading: a change after counts
        for p in paths:
            p = Path(p)
            if read is None:
                nums, bad = read_dnc_ints(p, default_region, encoding, warnings)
            else:
                nums, bad, said = read(p)
                warnings.extend(said)
            name = p.name if p.name not in sources else str(p)
            m = meta[len(sources)] if len(sources) < len(meta) else None
            if m is not None:
                metas[name] = m
            parts.append(nums)
            codes.append(np.full(len(nums), len(sources), dtype=np.int32))
            sources.append(name)
            ignored[name] = len(bad)
            unreadable[name] = bad
        if ledger is not None:
            keys = e164_ints(arrow_strings(pd.Series(sorted(ledger.numbers()), dtype=STRING)))
            parts.append(keys)
            codes.append(np.full(len(keys), len(sources), dtype=np.int32))
            sources.append("ledger")
        numbers = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
        code = np.concatenate(codes) if codes else np.zeros(0, dtype=np.int32)
        del parts, codes
        out = cls(numbers, code, sources)
        del numbers, code
        release_memory()  # the lists' numbers as read, now sorted and kept once
        out.ignored = ignored
        out.unreadable = unreadable
        out.warnings = warnings
        out.ledger = ledger
        out._paths = tuple(Path(p) for p in paths)
        out._stamps = stamps
        out._load_kw = {"default_region": default_region, "encoding": encoding, "meta": meta}
        out.meta = metas
        return out

    def reloaded(self) -> DncList | None:
        """The lists read again when a file changed since loading (blocking), else None.
        The ledger is not re-read here: it is shared and catches up in place."""
        if tuple(file_stamp(p) for p in self._paths) == self._stamps:
            return None
        return DncList.load(self._paths, ledger=self.ledger, **self._load_kw)  # type: ignore[arg-type]

    def label(self, name: str) -> str:
        """A list as evidence names it: with its kind and date when the campaign gives them."""
        m = self.meta.get(name)
        if m is None:
            return name
        kind = f"{m.kind} {m.state}" if m.state else m.kind
        return f"{name} ({kind}, as of {m.as_of.isoformat()})" if m.as_of else f"{name} ({kind})"

    def checked_label(self) -> str:
        """`dnc_lists_checked`: every list the number was checked against, with its date."""
        return ", ".join(self.label(s) for s in self.sources)

    def ages(self, at: datetime) -> list[tuple[str, DncListMeta, int]]:
        """(name, meta, age in days) of every dated list at `at`."""
        return [
            (name, m, dnc_age_days(m.as_of, at))
            for name, m in self.meta.items() if m.as_of is not None
        ]

    def stale(self, at: datetime) -> list[str]:
        """National or state lists too old to call against at `at`, one message each."""
        return [
            f"{m.key or name}: the {m.kind} Do-Not-Call list {name} is {age} days old "
            f"(as of {m.as_of}); a national or state list may be at most {DNC_MAX_AGE_DAYS} "
            "days old at the moment of dialing: download a fresh copy and set its as_of"
            for name, m, age in self.ages(at)
            if m.kind in DATED_KINDS and age > DNC_MAX_AGE_DAYS
        ]

    def age_warnings(self, at: datetime) -> list[str]:
        """`check`: lists that are or soon will be too old (from DNC_WARN_AGE_DAYS days)."""
        out = []
        for name, m, age in self.ages(at):
            if m.kind not in DATED_KINDS or age < DNC_WARN_AGE_DAYS:
                continue
            if age > DNC_MAX_AGE_DAYS:
                out.append(
                    f"{m.key or name}: the {m.kind} Do-Not-Call list {name} is {age} days old "
                    f"(as of {m.as_of}): over {DNC_MAX_AGE_DAYS} days, `run` will not dial"
                )
            else:
                left = DNC_MAX_AGE_DAYS - age
                out.append(
                    f"{m.key or name}: the {m.kind} Do-Not-Call list {name} is {age} days old "
                    f"(as of {m.as_of}): {left} day(s) left before it is too old to dial "
                    f"against ({DNC_MAX_AGE_DAYS} days)"
                )
        return out

    def _listed(self, e164: str) -> str | None:
        """The list holding the number as loaded (not the ledger's later numbers)."""
        if not E164_PATTERN.fullmatch(e164) or len(self._ints) == 0:
            return None
        key = int(e164[1:])
        pos = int(np.searchsorted(self._ints, key))
        if pos == len(self._ints) or int(self._ints[pos]) != key:
            return None
        return self.sources[int(self._source[pos])]

    def __contains__(self, e164: object) -> bool:
        return isinstance(e164, str) and self.source_of(e164) is not None

    def __len__(self) -> int:
        return len(self._ints)

    def source_of(self, e164: str) -> str | None:
        """Which list holds the number (file name, or "ledger"), for evidence.

        The ledger is asked too (from memory), so a number this run recorded, or another
        campaign's that the last `reload` caught up with, is held back.
        """
        if not isinstance(e164, str):
            return None
        listed = self._listed(e164)
        if listed is not None:
            return listed
        if self.ledger is not None and e164 in self.ledger:
            return "ledger"
        return None

    def source_codes(self, numbers: pa.Array | np.ndarray) -> np.ndarray:
        """Vectorised `source_of`: index into `sources` per number, -1 where not listed.

        `numbers`: E.164 strings, or their `e164_ints` keys."""
        ints = numbers if isinstance(numbers, np.ndarray) else e164_ints(numbers)
        keys = self._ints
        if len(keys) == 0:
            return np.full(len(numbers), -1, dtype=np.int32)
        pos = np.minimum(search_sorted(keys, ints), len(keys) - 1)
        return np.where(keys[pos] == ints, self._source[pos], -1).astype(np.int32)

    def lookup(self, numbers: pd.Series) -> pd.Series:
        """Vectorised `source_of`: source name or <NA> per number."""
        codes = self.source_codes(arrow_strings(numbers))
        names = np.array([*self.sources, None], dtype=object)
        return pd.Series(names[codes], index=numbers.index, dtype=STRING)
