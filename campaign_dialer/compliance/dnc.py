"""Local Do-Not-Call lists: read, normalised, O(1) membership; their dates and ages."""

from __future__ import annotations

import re
from collections.abc import Sequence
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
    positions,
)
from campaign_dialer.compliance.ledger import LedgerView
from campaign_dialer.contacts import PHONE_ROLES, ROLE_ALIASES, STRING, normalize_phones
from campaign_dialer.contacts.country import country_region
from campaign_dialer.contacts.csvfile import (
    UNREADABLE_COLUMNS,
    column_of,
    read_strings,
    refuse_plausible,
    refuse_title_lines,
    unreadable_cells,
)
from campaign_dialer.contacts.csvfile import (
    canon as canon_header,
)


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


def _row_regions(
    path: Path, names: list[str], canon: list[str], table: pa.Table, region: str,
    warnings: list[str] | None,
) -> pd.Series | None:
    """Each row's region from a country column (a CRM's Do-Not-Call export), None without
    one: a Mexican entry written `55 1234 5678` is +52 55 1234 5678, not the New Jersey
    number the campaign's default region would make of it (and the listed person called)."""
    aliases = set(ROLE_ALIASES.get("country", ()))
    at = next((i for i, c in enumerate(canon) if c in aliases), None)
    if at is None:
        return None
    cells = column_of(table, at).fillna("")
    uniques = pd.unique(cells)
    known = {u: country_region(u) for u in uniques}
    unknown = sorted(u for u, r in known.items() if r is None and u.strip())
    if unknown and warnings is not None:
        warnings.append(
            f"{path}: column {names[at]!r}: country value(s) not recognised, numbers there "
            f"are read with default_region {region}: " + ", ".join(repr(u) for u in unknown[:5])
        )
    return cells.map(lambda u: known[u] or region)


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


def _read_dnc_file(
    path: Path, region: str, encoding: str | None = None, warnings: list[str] | None = None
) -> tuple[pd.Series, pd.DataFrame]:
    """(valid E.164 numbers, unreadable cells). A plausible number that cannot be read refuses
    the file (`refuse_plausible`); other junk (`call me later`) is listed, never dropped
    silently; a file whose every non-blank cell is junk is refused (wrong column or file)."""
    names, table, _ = read_strings(
        path, header=True, encoding=encoding, warnings=warnings, error=ComplianceError
    )
    if not names:
        return pd.Series([], dtype=STRING), pd.DataFrame(columns=UNREADABLE_COLUMNS)
    canon = [canon_header(h) for h in names]
    # Every phone column: a DNC export with "Phone" and "Mobile" lists both numbers.
    aliases = set(_DNC_HEADERS)
    cols = [i for i, c in enumerate(canon) if c in aliases]
    header_names = names
    if not cols:
        # "Do Not Call list,," above "Phone,Mobile": read as a header, the title would make
        # one column the numbers and leave the others unread
        refuse_title_lines(path, aliases, ComplianceError, encoding)
    if not cols and len(names) > 1 and not any(
        normalize_phones(pd.Series(names, dtype=STRING), region)["e164"].notna()
    ):
        # A header we do not know ("DNC Number", "Phone Numbers") over several columns: the
        # one phone-named column holding numbers, if exactly one does ("Added" holds none).
        holding = [
            i for i, c in enumerate(canon)
            if re.search(r"phone|number|tel|cell|mobile|dnc|do_not_call|e164", c)
            and normalize_phones(column_of(table, i), region)["e164"].notna().any()
        ]
        if len(holding) == 1:
            cols = holding
    if cols:
        columns = [(column_of(table, i), names[i]) for i in cols]
    else:
        # No recognised header: a headerless list. One column of numbers, or the FTC registry
        # layout "area code,number" (3 + 7 digits).
        names, table, _ = read_strings(path, header=False, encoding=encoding, error=ComplianceError)
        if len(names) == 1:
            cells = column_of(table, 0)
        elif (
            len(names) == 2
            and table.num_rows
            and re.fullmatch(r"\d{3}", table.column(0)[0].as_py().strip())
            and re.fullmatch(r"\d{7}", table.column(1)[0].as_py().strip())
        ):
            cells = column_of(table, 0).str.strip() + column_of(table, 1).str.strip()
        else:
            raise ComplianceError(
                path,
                "cannot tell which column holds the numbers: name it phone (first row: "
                + ", ".join(header_names)
                + ")",
            )
        columns = [(cells, "#1")]
    first_row = 1
    valids: list[pd.Series] = []
    bads: list[pd.DataFrame] = []
    junk: list[tuple[str, pd.DataFrame]] = []
    regions = _row_regions(path, names, canon, table, region, warnings) if cols else None
    for cells, column in columns:
        norm = normalize_phones(cells, region)
        if regions is not None:
            norm = _by_row_country(cells, norm, regions, region)
        refuse_plausible(path, cells, norm, column, first_row, error=ComplianceError)
        valid = norm["e164"].dropna()
        unreadable = unreadable_cells(cells, norm, column, first_row)
        if len(unreadable) and valid.empty:
            junk.append((column, unreadable))  # a flag column ("Do Not Call" = Yes)?
            continue
        valids.append(valid)
        bads.append(unreadable)
    if not valids and junk:
        column, unreadable = junk[0]
        raise ComplianceError(
            path,
            f"no cell of column {column!r} holds a phone number "
            f"({unreadable['value'].iloc[0]!r} is not one): wrong column or file?",
            row=int(unreadable["row"].iloc[0]),
            column=column,
        )
    if not valids:
        return pd.Series([], dtype=STRING), pd.DataFrame(columns=UNREADABLE_COLUMNS)
    if len(valids) == 1:
        return valids[0].reset_index(drop=True), bads[0]
    unreadable = pd.concat(bads, ignore_index=True).sort_values("row", kind="stable")
    return (pd.concat(valids, ignore_index=True).reset_index(drop=True),
            unreadable.reset_index(drop=True))



class DncList:
    """Local Do-Not-Call lists plus the ledger, normalised; O(1) membership."""

    def __init__(self, numbers: pd.Series, source_codes: np.ndarray, sources: list[str]) -> None:
        # numbers are keyed as int64 (see `e164_ints`); the first list holding one is evidence
        ints = e164_ints(arrow_strings(numbers.reset_index(drop=True)))
        keep = ~pd.Index(ints).duplicated(keep="first") & (ints >= 0)
        self._ints = pd.Index(ints[keep])
        self._source = np.asarray(source_codes, dtype=np.int32)[keep]
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
    ) -> DncList:
        """Read every list (and the ledger); `ComplianceError` names the bad file and row.

        `meta`, parallel to `paths`, gives each list's kind and date (None: internal, undated).
        """
        parts: list[pd.Series] = []
        metas: dict[str, DncListMeta] = {}
        codes: list[np.ndarray] = []
        sources: list[str] = []
        ignored: dict[str, int] = {}
        unreadable: dict[str, pd.DataFrame] = {}
        warnings: list[str] = []
        stamps = tuple(file_stamp(Path(p)) for p in paths)  # before reading: a change after counts
        for p in paths:
            p = Path(p)
            nums, bad = _read_dnc_file(p, default_region, encoding, warnings)
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
            nums = pd.Series(sorted(ledger.numbers()), dtype=STRING)
            parts.append(nums)
            codes.append(np.full(len(nums), len(sources), dtype=np.int32))
            sources.append("ledger")
        numbers = pd.concat(parts, ignore_index=True) if parts else pd.Series([], dtype=STRING)
        code = np.concatenate(codes) if codes else np.zeros(0, dtype=np.int32)
        out = cls(numbers, code, sources)
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
        pos = int(self._ints.get_indexer([int(e164[1:])])[0])
        return None if pos < 0 else self.sources[int(self._source[pos])]

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
        pos = positions(self._ints, ints)
        if len(self._source) == 0:
            return np.full(len(numbers), -1, dtype=np.int32)
        return np.where(pos >= 0, self._source[np.maximum(pos, 0)], -1).astype(np.int32)

    def lookup(self, numbers: pd.Series) -> pd.Series:
        """Vectorised `source_of`: source name or <NA> per number."""
        codes = self.source_codes(arrow_strings(numbers))
        names = np.array([*self.sources, None], dtype=object)
        return pd.Series(names[codes], index=numbers.index, dtype=STRING)
