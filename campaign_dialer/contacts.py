"""Contacts: read a CRM export, normalise every phone to E.164, one row per person.

Pure: no network, no logging, no imports from the rest of campaign_dialer. The compliance stage
(`campaign_dialer.compliance`) builds on this module, the CLI and engine build on both.

Choices a careful compliance engineer makes here, and why:

- Phones are read as text (pyarrow, every column a string): a numeric dtype turns
  `+14155550188` into a number and loses the `+` and leading zeros.
- The file is read whole before anything else happens; any row that cannot be read (wrong number
  of fields, bytes that are not UTF-8) rejects the file with `ContactsError` naming file, data row
  and column. A file we half-understood is not a file we may dial from.
- Normalisation is exactly `phonenumbers` (parse with the campaign's default region, then
  `is_valid_number`, then E.164). The batch path (`normalize_phones`) parses each distinct string
  once and takes a vectorised fast path for the clean NANP spellings (`+1 415 555 0188`,
  `(415) 555-0188`, `1-415-555-0188`, ...), validating them with the same metadata patterns and
  the same region-selection order `phonenumbers` uses; the tests check it against the library.
- Time zone / state columns become `tz_hint`: an IANA zone name, a US state or Canadian province
  code, a few common zone words (EST, Pacific, ...) mapped to IANA zones, or several of those
  joined by ";" (a row with both a zone and a state column keeps both: the person may be in
  either, and the calling window must hold in every candidate zone). A value we cannot interpret
  is kept as written: the compliance stage then treats the zone as unknown (not callable by
  default) rather than silently ignoring what the CRM said about where the person is.
- One person, one call: rows with the same E.164 or the same contact_id (transitively) form one
  group; the first row wins and the others become `duplicate` with `duplicate_of=<row>`. Rows
  already unusable (blank or invalid phone) keep that reason and take no part in grouping.
  A row with a contact_id and a blank phone is callable by contact_id; `blank_phone` is only
  for a row with nothing to call; an invalid phone is `invalid_phone` even with a contact_id
  (we will not guess which number the platform would ring).
- Every input column is passed through untouched, as text, in input order (`extra_columns`
  lists their frame names). A header that clashes with a standard column (`row`, `reason`, ...)
  is renamed "<name> (input)"; a repeated header gets ".1", ".2" as pandas does.
- Header detection: `ROLE_ALIASES`, compared case- and punctuation-insensitively; an explicit
  `[inputs.columns]` mapping always wins and must name a header that exists. Delimiter: comma,
  or `;`, tab or `|` when the header has no comma. Encoding: UTF-8 with or without BOM, or
  UTF-16 with a BOM (Excel's "Unicode text").
"""

from __future__ import annotations

import codecs
import csv
import functools
import io
import itertools
import os
import re
import zoneinfo
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import phonenumbers
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from phonenumbers import NumberParseException, PhoneNumberFormat, ValidationResult

__all__ = [
    "ROLE_ALIASES",
    "Contacts",
    "ContactsError",
    "load_contacts",
    "normalize_hint",
    "normalize_phone",
    "normalize_phones",
    "phone_problem",
]

STRING = pd.StringDtype("pyarrow")  # missing values are pd.NA

# Header spellings recognised per role, in priority order (first match wins). Compared after
# lower-casing and collapsing every run of non-alphanumerics to "_" ("Mobile Phone" ->
# "mobile_phone"). An explicit [inputs.columns] mapping always wins over this.
ROLE_ALIASES: dict[str, tuple[str, ...]] = {
    "phone": (
        "phone", "phone_number", "phonenumber", "phone_no", "phone_num", "telephone",
        "telephone_number", "tel", "mobile_phone", "mobile_phone_number", "mobile",
        "mobile_number", "cell_phone", "cellphone", "cell", "cell_number", "msisdn",
        "contact_phone", "primary_phone", "phone_1", "phone1", "number", "home_phone",
        "work_phone", "business_phone",
    ),
    "contact_id": (
        "contact_id", "contactid", "id", "record_id", "crm_id", "customer_id", "lead_id",
        "external_id", "person_id", "contact",
    ),
    "timezone": (
        "timezone", "time_zone", "tz", "iana_timezone", "iana_time_zone", "contact_timezone",
        "local_timezone",
    ),
    "state": (
        "state", "state_code", "province", "state_province", "state_or_province",
        "province_code", "us_state",
    ),
}  # fmt: skip
ROLES = tuple(ROLE_ALIASES)
STANDARD_COLUMNS = (
    "row", "contact_id", "phone_raw", "phone_e164", "tz_hint", "reason", "detail",
)  # fmt: skip

US_STATES = {
    "AL": "Alabama", "AK": "Alaska", "AZ": "Arizona", "AR": "Arkansas", "CA": "California",
    "CO": "Colorado", "CT": "Connecticut", "DE": "Delaware", "DC": "District of Columbia",
    "FL": "Florida", "GA": "Georgia", "HI": "Hawaii", "ID": "Idaho", "IL": "Illinois",
    "IN": "Indiana", "IA": "Iowa", "KS": "Kansas", "KY": "Kentucky", "LA": "Louisiana",
    "ME": "Maine", "MD": "Maryland", "MA": "Massachusetts", "MI": "Michigan", "MN": "Minnesota",
    "MS": "Mississippi", "MO": "Missouri", "MT": "Montana", "NE": "Nebraska", "NV": "Nevada",
    "NH": "New Hampshire", "NJ": "New Jersey", "NM": "New Mexico", "NY": "New York",
    "NC": "North Carolina", "ND": "North Dakota", "OH": "Ohio", "OK": "Oklahoma", "OR": "Oregon",
    "PA": "Pennsylvania", "RI": "Rhode Island", "SC": "South Carolina", "SD": "South Dakota",
    "TN": "Tennessee", "TX": "Texas", "UT": "Utah", "VT": "Vermont", "VA": "Virginia",
    "WA": "Washington", "WV": "West Virginia", "WI": "Wisconsin", "WY": "Wyoming",
    "PR": "Puerto Rico", "GU": "Guam", "VI": "U.S. Virgin Islands", "AS": "American Samoa",
    "MP": "Northern Mariana Islands",
}  # fmt: skip
CA_PROVINCES = {
    "AB": "Alberta", "BC": "British Columbia", "MB": "Manitoba", "NB": "New Brunswick",
    "NL": "Newfoundland and Labrador", "NS": "Nova Scotia", "NT": "Northwest Territories",
    "NU": "Nunavut", "ON": "Ontario", "PE": "Prince Edward Island", "QC": "Quebec",
    "SK": "Saskatchewan", "YT": "Yukon",
}  # fmt: skip
STATE_CODES = {**US_STATES, **CA_PROVINCES}
_STATE_BY_NAME = {name.lower(): code for code, name in STATE_CODES.items()} | {
    "washington dc": "DC", "washington d.c.": "DC", "quebec city": "QC", "québec": "QC",
    "newfoundland": "NL", "virgin islands": "VI", "us virgin islands": "VI",
}  # fmt: skip

# Zone words CRMs write instead of IANA names. "MST"/"Mountain" may be Arizona (no DST) or not,
# so they map to both: the window must then hold in both.
_ZONE_WORDS: dict[str, tuple[str, ...]] = {
    "eastern": ("America/New_York",), "est": ("America/New_York",),
    "edt": ("America/New_York",), "et": ("America/New_York",),
    "us/eastern": ("America/New_York",),
    "central": ("America/Chicago",), "cst": ("America/Chicago",),
    "cdt": ("America/Chicago",), "ct": ("America/Chicago",), "us/central": ("America/Chicago",),
    "mountain": ("America/Denver", "America/Phoenix"), "mst": ("America/Denver", "America/Phoenix"),
    "mdt": ("America/Denver",), "mt": ("America/Denver", "America/Phoenix"),
    "us/mountain": ("America/Denver",), "arizona": ("America/Phoenix",),
    "pacific": ("America/Los_Angeles",), "pst": ("America/Los_Angeles",),
    "pdt": ("America/Los_Angeles",), "pt": ("America/Los_Angeles",),
    "us/pacific": ("America/Los_Angeles",),
    "alaska": ("America/Anchorage",), "akst": ("America/Anchorage",),
    "akdt": ("America/Anchorage",), "hawaii": ("Pacific/Honolulu",),
    "hst": ("Pacific/Honolulu",), "atlantic": ("America/Halifax",),
    "ast": ("America/Halifax", "America/Puerto_Rico"), "adt": ("America/Halifax",),
    "newfoundland time": ("America/St_Johns",), "nst": ("America/St_Johns",),
    "ndt": ("America/St_Johns",),
}  # fmt: skip


class ContactsError(Exception):
    """The contacts file cannot be used: the CLI exits 65 (EX_DATAERR) before any call."""

    def __init__(
        self,
        path: Path | str,
        problem: str,
        *,
        row: int | None = None,
        column: str | None = None,
    ) -> None:
        self.path = Path(path)
        self.row = row
        self.column = column
        self.problem = problem
        where = str(self.path)
        if row is not None:
            where += f": row {row}"
        if column is not None:
            where += f", column {column!r}" if row is not None else f": column {column!r}"
        super().__init__(f"{where}: {problem}")


@dataclass
class Contacts:
    """A loaded contacts file: one frame row per data row, in input order."""

    path: Path
    frame: pd.DataFrame
    extra_columns: list[str] = field(default_factory=list)
    roles: dict[str, str] = field(default_factory=dict)  # role -> input header used


# --------------------------------------------------------------------------------------------
# Phone normalisation
# --------------------------------------------------------------------------------------------

_PARSE_ERRORS = {
    NumberParseException.INVALID_COUNTRY_CODE: "unknown country code",
    NumberParseException.NOT_A_NUMBER: "not a phone number",
    NumberParseException.TOO_SHORT_AFTER_IDD: "too short after the international prefix",
    NumberParseException.TOO_SHORT_NSN: "too short",
    NumberParseException.TOO_LONG: "too long",
}
_POSSIBLE = {
    ValidationResult.INVALID_COUNTRY_CODE: "unknown country code",
    ValidationResult.TOO_SHORT: "too short",
    ValidationResult.TOO_LONG: "too long",
    ValidationResult.INVALID_LENGTH: "wrong length",
    ValidationResult.IS_POSSIBLE_LOCAL_ONLY: "local number without area code",
}


def _check_region(default_region: str) -> str:
    region = default_region.upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"{default_region!r} is not a region phonenumbers knows")
    return region


@functools.lru_cache(maxsize=1 << 18)
def _parse(raw: str, region: str) -> tuple[str | None, str | None]:
    """(E.164, None) or (None, why it is not a valid number). `raw` is already stripped."""
    if not raw:
        return None, "blank"
    try:
        num = phonenumbers.parse(raw, region)
    except NumberParseException as e:
        return None, _PARSE_ERRORS.get(e.error_type, "not a phone number")
    if phonenumbers.is_valid_number(num):
        return phonenumbers.format_number(num, PhoneNumberFormat.E164), None
    why = _POSSIBLE.get(phonenumbers.is_possible_number_with_reason(num))
    where = phonenumbers.region_code_for_country_code(num.country_code or 0)
    return None, why or f"not a valid number for {where}"


def normalize_phone(raw: str, default_region: str) -> str | None:
    """E.164 for a valid number, else None. Cached by raw string (parse once per spelling)."""
    return _parse(raw.strip(), _check_region(default_region))[0]


def phone_problem(raw: str, default_region: str) -> str | None:
    """Why `raw` is not a valid number ("blank", "too short", ...), None when it is valid."""
    return _parse(raw.strip(), _check_region(default_region))[1]


@functools.lru_cache(maxsize=1)
def _nanp_rules() -> list[tuple[str | None, str | None]]:
    """Per NANP region, in phonenumbers' order: (leading-digits regex, known-type regex).

    Mirrors `phonenumbers.is_valid_number` for a 10-digit national number of country code 1:
    the region is the first one whose leading digits prefix-match, or (for regions without
    leading digits, US and CA) the first one where the number has a known type; the number is
    valid when it has a known type in that region, i.e. it matches the general pattern and some
    type pattern whose possible lengths admit 10 digits (`_number_type_helper`).
    """

    def usable(desc: phonenumbers.PhoneNumberDesc | None) -> str | None:
        if desc is None or not desc.national_number_pattern:
            return None
        if desc.possible_length and 10 not in desc.possible_length:
            return None
        return desc.national_number_pattern

    rules: list[tuple[str | None, str | None]] = []
    for region in phonenumbers.COUNTRY_CODE_TO_REGION_CODE[1]:
        md = phonenumbers.PhoneMetadata.metadata_for_region(region)
        if md is None:
            continue
        general = usable(md.general_desc)
        types = [
            t
            for t in map(
                usable,
                (
                    md.premium_rate,
                    md.toll_free,
                    md.shared_cost,
                    md.voip,
                    md.personal_number,
                    md.pager,
                    md.uan,
                    md.voicemail,
                    md.fixed_line,
                    md.mobile,
                ),  # fmt: skip
            )
            if t
        ]
        known = None
        if general and types:
            # both anchored: general AND (any type); RE2 has no lookahead, so two patterns
            known = f"^(?:{general})$\x00^(?:" + "|".join(f"(?:{t})" for t in types) + ")$"
        rules.append((md.leading_digits, known))
    return rules


def _nanp_valid(nsn: pa.Array) -> np.ndarray:
    """Vectorised `is_valid_number` for 10-digit NANP national numbers (see `_nanp_rules`)."""
    n = len(nsn)
    valid = np.zeros(n, dtype=bool)
    remaining = np.ones(n, dtype=bool)
    for leading, rule in _nanp_rules():
        idx = np.flatnonzero(remaining)
        if idx.size == 0:
            break
        sub = nsn.take(pa.array(idx))
        if rule is not None:
            general, types = rule.split("\x00")
            known = np.asarray(
                pc.and_(
                    pc.match_substring_regex(sub, general),
                    pc.match_substring_regex(sub, types),
                )
            )
        else:
            known = np.zeros(idx.size, dtype=bool)
        if leading is not None:
            chosen = np.asarray(pc.match_substring_regex(sub, f"^(?:{leading})"))
            valid[idx[chosen]] = known[chosen]
        else:
            chosen = known
            valid[idx[chosen]] = True
        remaining[idx[chosen]] = False
    return valid


_FAST_SHAPE = r"^\+?[0-9(][0-9 ().\-/]{0,40}$"


def _as_arrow(values: pd.Series | Sequence[str]) -> pa.Array:
    if isinstance(values, pd.Series):
        arr = pa.array(values.astype(STRING), type=pa.large_string())
    else:
        arr = pa.array(list(values), type=pa.large_string())
    return pc.fill_null(arr, "")


def _fast_path(raw: pa.Array, region: str) -> pa.Array:
    """E.164 for the clean NANP spellings in `raw` (stripped), null for everything else.

    Null means "not decided here": blanks, invalid numbers and other formats go to
    `phonenumbers` itself. Pure arrow kernels, so it runs in threads without the GIL.
    """
    raw = raw.cast(pa.large_string())
    n = len(raw)
    out = pa.nulls(n, pa.large_string())
    shape = pc.match_substring_regex(raw, _FAST_SHAPE)
    idx = np.flatnonzero(np.asarray(pc.fill_null(shape, False), dtype=bool))
    if idx.size == 0:
        return out
    digits = raw.take(pa.array(idx))
    for ch in " ().-/":
        digits = pc.replace_substring(digits, ch, "")
    take = pc.match_substring_regex(digits, r"^\+1[2-9][0-9]{9}$")
    if region in ("US", "CA"):
        take = pc.or_(take, pc.match_substring_regex(digits, r"^1?[2-9][0-9]{9}$"))
    take_np = np.asarray(take, dtype=bool)
    if not take_np.any():
        return out
    sel = idx[take_np]
    nsn = pc.utf8_slice_codeunits(digits.filter(take), -10)
    ok = _nanp_valid(nsn)
    if not ok.any():
        return out
    e164 = pc.binary_join_element_wise(
        pa.scalar("+1", pa.large_string()),
        nsn.filter(pa.array(ok)),
        pa.scalar("", pa.large_string()),
    )
    mask = np.zeros(n, dtype=bool)
    mask[sel[ok]] = True
    position = np.zeros(n, dtype=np.int64)
    position[sel[ok]] = np.arange(int(ok.sum()))
    return pc.if_else(pa.array(mask), e164.take(pa.array(position)), out)


def _threads() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def normalize_phones(values: pd.Series | Sequence[str], default_region: str) -> pd.DataFrame:
    """Normalise many phones at once: columns `e164` and `problem` (both strings or <NA>).

    `problem` is "blank" for an empty cell, else why the number is invalid. Clean NANP
    spellings take a vectorised path (arrow kernels, in threads) that agrees with
    `normalize_phone` (tested); every other distinct spelling is parsed once by `phonenumbers`.
    """
    region = _check_region(default_region)
    index = values.index if isinstance(values, pd.Series) else pd.RangeIndex(len(values))
    arr = pc.utf8_trim_whitespace(_as_arrow(values))
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    n = len(arr)
    parts = _threads() if n >= 100_000 else 1
    bounds = np.linspace(0, n, parts + 1).astype(int)
    slices = [arr.slice(a, b - a) for a, b in itertools.pairwise(bounds)]
    if parts > 1:
        with ThreadPoolExecutor(parts) as pool:
            futures = [pool.submit(_fast_path, part, region) for part in slices]
            # meanwhile this thread parses (and caches) the spellings the fast path never takes
            shaped = pc.fill_null(pc.match_substring_regex(arr, _FAST_SHAPE), False)
            for raw in pc.unique(arr.filter(pc.invert(shaped))).to_pylist():
                _parse(raw, region)
            fast = [f.result() for f in futures]
    else:
        fast = [_fast_path(part, region) for part in slices]
    e164 = pa.chunked_array(fast, type=pa.large_string()).combine_chunks()
    problem = pa.nulls(n, pa.large_string())

    rest = np.flatnonzero(np.asarray(pc.is_null(e164), dtype=bool))
    if rest.size:
        encoded = pc.dictionary_encode(arr.take(pa.array(rest)))
        results = [_parse(u, region) for u in encoded.dictionary.to_pylist()]
        slow_e164 = pa.array([r[0] for r in results], type=pa.large_string())
        slow_problem = pa.array([r[1] for r in results], type=pa.large_string())
        mask = np.zeros(n, dtype=bool)
        mask[rest] = True
        position = np.zeros(n, dtype=np.int64)
        position[rest] = np.arange(rest.size)
        codes = encoded.indices
        mask_arr = pa.array(mask)
        e164 = pc.if_else(mask_arr, slow_e164.take(codes).take(pa.array(position)), e164)
        problem = pc.if_else(mask_arr, slow_problem.take(codes).take(pa.array(position)), problem)
    return pd.DataFrame(
        {"e164": pd.array(e164, dtype=STRING), "problem": pd.array(problem, dtype=STRING)},
        index=index,
    )


# --------------------------------------------------------------------------------------------
# Time zone / state hints
# --------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _zone_names() -> dict[str, str]:
    return {z.lower(): z for z in zoneinfo.available_timezones()}


@functools.lru_cache(maxsize=4096)
def normalize_hint(value: str, kind: str = "timezone") -> str | None:
    """Canonical hint for a time-zone or state cell; None when blank.

    Returns an IANA zone, a state/province code, several joined by ";", or the stripped value
    itself when it cannot be interpreted (the compliance stage then treats the zone as unknown).
    """
    v = value.strip()
    if not v:
        return None
    low = v.lower()
    if kind == "timezone":
        if low in _zone_names() and "/" in v or low in ("utc", "etc/utc"):
            return _zone_names()[low]
        if low in _ZONE_WORDS:
            return ";".join(_ZONE_WORDS[low])
    if v.upper() in STATE_CODES and len(v) == 2:
        return v.upper()
    if low in _STATE_BY_NAME:
        return _STATE_BY_NAME[low]
    if kind == "state" and low in _ZONE_WORDS:
        return ";".join(_ZONE_WORDS[low])
    if kind == "state" and low in _zone_names() and "/" in v:
        return _zone_names()[low]
    return v


# --------------------------------------------------------------------------------------------
# Reading the file
# --------------------------------------------------------------------------------------------


def _canon(header: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", header.strip().lower()).strip("_")


def _sniff(path: Path) -> tuple[str, str]:
    """(encoding, delimiter); rejects what is plainly not a CSV file."""
    try:
        with path.open("rb") as f:
            head = f.read(65536)
    except OSError as e:
        raise ContactsError(path, f"cannot read: {e.strerror or e}") from e
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"
        text = head.decode("utf-16", errors="replace")
    else:
        if b"\x00" in head:
            raise ContactsError(path, "not a CSV file (binary content)")
        encoding = "utf-8"
        text = head.decode("utf-8-sig", errors="replace")
    if not text.strip():
        raise ContactsError(path, "empty file: no header row")
    first = text.splitlines()[0] if text.splitlines() else ""
    counts = {d: first.count(d) for d in (",", ";", "\t", "|")}
    delimiter = "," if counts[","] else max(counts, key=lambda d: counts[d])
    return encoding, delimiter


def _read_header(path: Path, encoding: str, delimiter: str) -> list[str]:
    with path.open("rb") as f:
        head = f.read(1 << 20)
    if encoding == "utf-8":
        text = head.removeprefix(codecs.BOM_UTF8).decode("utf-8", errors="surrogateescape")
    else:
        text = head.decode(encoding, errors="replace")
    try:
        header = next(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    except (StopIteration, csv.Error) as e:
        raise ContactsError(path, f"cannot read the header row: {e}") from e
    header = [h.strip() for h in header]
    bad = [h for h in header if any("\udc80" <= ch <= "\udcff" for ch in h)]
    if bad:
        raise ContactsError(path, "the header row is not valid UTF-8 text")
    if not any(header):
        raise ContactsError(path, "empty header row")
    return header


def _locate_bad_row(path: Path, encoding: str, delimiter: str, header: list[str]) -> ContactsError:
    """Re-read slowly to name the first data row (and column) that cannot be read."""
    raw = path.read_bytes()
    if encoding == "utf-8" and raw.startswith(codecs.BOM_UTF8):
        raw = raw[3:]
    text = raw.decode(encoding, errors="surrogateescape")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        next(reader)
        n = len(header)
        row = 0
        for record in reader:
            if not record:
                continue  # blank line: skipped, not a data row
            row += 1
            for j, cell in enumerate(record[:n]):
                if any("\udc80" <= ch <= "\udcff" for ch in cell):
                    return ContactsError(path, "not valid UTF-8 text", row=row, column=header[j])
            if len(record) < n:
                return ContactsError(
                    path,
                    f"has {len(record)} fields, the header has {n} (a missing field or an "
                    "unquoted line break?)",
                    row=row,
                    column=header[len(record)],
                )
            if len(record) > n:
                return ContactsError(
                    path,
                    f"has {len(record)} fields, the header has {n} (an unquoted comma?)",
                    row=row,
                    column=f"#{n + 1} (beyond the header)",
                )
    except csv.Error as e:
        return ContactsError(path, f"not valid CSV: {e}", row=reader.line_num - 1 or None)
    return ContactsError(path, "cannot be read as CSV")


def _read_table(path: Path) -> tuple[list[str], pa.Table]:
    encoding, delimiter = _sniff(path)
    header = _read_header(path, encoding, delimiter)
    names = [f"c{i}" for i in range(len(header))]
    bad: list[object] = []

    def on_invalid(row: object) -> str:
        bad.append(row)
        return "skip"

    try:
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(
                column_names=names, skip_rows=1, encoding=encoding, block_size=1 << 22
            ),
            parse_options=pacsv.ParseOptions(
                delimiter=delimiter, newlines_in_values=True, invalid_row_handler=on_invalid
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.string() for n in names},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError) as e:
        raise _locate_bad_row(path, encoding, delimiter, header) from e
    if bad:
        raise _locate_bad_row(path, encoding, delimiter, header)
    return header, table


def _unique_names(header: list[str]) -> list[str]:
    """Input column names as frame columns: duplicates get ".1", ".2" (as pandas does) and a
    name that clashes with a standard column gets " (input)", so nothing is overwritten."""
    seen: dict[str, int] = {}
    out = []
    for h in header:
        name = h or "unnamed"
        if name in STANDARD_COLUMNS:
            name = f"{name} (input)"
        base = name
        while name in seen:
            seen[base] += 1
            name = f"{base}.{seen[base]}"
        seen.setdefault(name, 0)
        out.append(name)
    return out


def _resolve_roles(
    path: Path, header: list[str], columns: Mapping[str, str | None] | None
) -> dict[str, int]:
    """Role -> column index. Explicit mapping first (must exist), then detection by alias."""
    found: dict[str, int] = {}
    for role, wanted in (columns or {}).items():
        if wanted is None or wanted == "":
            continue
        if role not in ROLE_ALIASES:
            raise ContactsError(
                path, f"[inputs.columns] has unknown role {role!r} (known: {', '.join(ROLES)})"
            )
        exact = [i for i, h in enumerate(header) if h == wanted]
        loose = [i for i, h in enumerate(header) if _canon(h) == _canon(wanted)]
        hits = exact or loose
        if len(hits) != 1:
            problem = "is not in the header" if not hits else "matches several header columns"
            raise ContactsError(
                path,
                f"[inputs.columns] {role} = {wanted!r} {problem} (header: {', '.join(header)})",
                column=wanted,
            )
        found[role] = hits[0]
    canon = [_canon(h) for h in header]
    for role, aliases in ROLE_ALIASES.items():
        if role in found:
            continue
        taken = set(found.values())
        for alias in aliases:
            hits = [i for i, c in enumerate(canon) if c == alias and i not in taken]
            if hits:
                found[role] = hits[0]
                break
    if "phone" not in found and "contact_id" not in found:
        raise ContactsError(
            path,
            "no phone or contact_id column (header: "
            + ", ".join(header)
            + "); name one in [inputs.columns]",
        )
    return found


def _group_codes(values: pd.Series, rows: np.ndarray, *, e164: bool) -> np.ndarray:
    """Dense codes of `values` at `rows` (-1 for missing). E.164 strings are keyed as int64."""
    sub = pa.array(values.iloc[rows].astype(STRING), type=pa.large_string())
    if e164:
        digits = pc.utf8_slice_codeunits(sub, 1)
        ints = np.asarray(pc.fill_null(pc.cast(digits, pa.int64()), -1), dtype=np.int64)
        codes, _ = pd.factorize(ints)
        return np.where(ints < 0, -1, codes)
    encoded = pc.dictionary_encode(sub)
    return np.asarray(pc.fill_null(encoded.indices, -1), dtype=np.int64)


def _dedupe(e164: pd.Series, cid: pd.Series, usable: np.ndarray) -> np.ndarray:
    """For each row, the index of the first row of its person group (itself if first).

    Groups are connected components of "same E.164 or same contact_id" among usable rows,
    found by propagating the smallest row index through both keys until nothing changes.
    """
    n = len(e164)
    label = np.arange(n)
    idx = np.flatnonzero(usable)
    if idx.size == 0:
        return label
    keys = [_group_codes(e164, idx, e164=True), _group_codes(cid, idx, e164=False)]
    lab = idx.copy()
    while True:
        before = lab.copy()
        for codes in keys:
            m = codes >= 0
            if not m.any():
                continue
            best = np.full(int(codes.max()) + 1, n, dtype=np.int64)
            np.minimum.at(best, codes[m], lab[m])
            lab[m] = np.minimum(lab[m], best[codes[m]])
        if np.array_equal(lab, before):
            break
    label[idx] = lab
    return label


def load_contacts(
    path: Path | str,
    *,
    default_region: str,
    columns: Mapping[str, str | None] | None = None,
) -> Contacts:
    """Read, normalise and de-duplicate a contacts CSV; raise `ContactsError` if unusable."""
    path = Path(path)
    region = _check_region(default_region)
    header, table = _read_table(path)
    roles = _resolve_roles(path, header, columns)
    n = table.num_rows
    frame_names = _unique_names(header)

    def col(i: int) -> pd.Series:
        return pd.Series(table.column(i).to_pandas(), dtype=STRING).reset_index(drop=True)

    if "contact_id" in roles:
        cid = col(roles["contact_id"]).str.strip()
        cid = cid.mask(cid == "")
    else:
        cid = pd.Series(pd.NA, index=range(n), dtype=STRING)

    if "phone" in roles:
        raw = col(roles["phone"])
        blank_raw = raw.str.strip() == ""
        phone_raw = raw.mask(blank_raw, "")
        norm = normalize_phones(raw, region)
        e164, problem = norm["e164"], norm["problem"]
    else:
        phone_raw = pd.Series("", index=range(n), dtype=STRING)
        e164 = pd.Series(pd.NA, index=range(n), dtype=STRING)
        problem = pd.Series("blank", index=range(n), dtype=STRING)

    hints = []
    for role in ("timezone", "state"):
        if role in roles:
            cells = col(roles[role]).fillna("")
            codes, uniques = pd.factorize(cells)
            mapped = np.array([normalize_hint(u, role) for u in uniques] + [None], dtype=object)
            hints.append(pd.Series(mapped[codes], dtype=object))
    if len(hints) == 2:
        both = [
            a if b is None or a == b else b if a is None else f"{a};{b}"
            for a, b in zip(hints[0], hints[1], strict=True)
        ]
        tz_hint = pd.Series(both, dtype=STRING)
    elif hints:
        tz_hint = hints[0].astype(STRING)
    else:
        tz_hint = pd.Series(pd.NA, index=range(n), dtype=STRING)

    blank = problem.eq("blank").fillna(False).to_numpy(dtype=bool)
    invalid = (problem.notna() & ~problem.eq("blank")).fillna(False).to_numpy(dtype=bool)
    has_cid = cid.notna().to_numpy(dtype=bool)
    reason = np.full(n, None, dtype=object)
    detail = np.full(n, "", dtype=object)
    reason[blank & ~has_cid] = "blank_phone"
    detail[blank & ~has_cid] = "no phone and no contact_id"
    reason[invalid] = "invalid_phone"
    if invalid.any():
        detail[invalid] = problem[invalid].to_numpy(dtype=object)
    usable = reason == None  # noqa: E711 (element-wise)
    first = _dedupe(e164, cid, usable)
    dup = usable & (first != np.arange(n))
    reason[dup] = "duplicate"
    if dup.any():
        detail[dup] = np.char.add("duplicate_of=", (first[dup] + 1).astype(str)).astype(object)

    frame = pd.DataFrame(
        {
            "row": np.arange(1, n + 1, dtype=np.int64),
            "contact_id": cid.reset_index(drop=True),
            "phone_raw": phone_raw.reset_index(drop=True),
            "phone_e164": e164.reset_index(drop=True),
            "tz_hint": tz_hint.reset_index(drop=True),
            "reason": pd.array(reason, dtype=STRING),
            "detail": pd.array(detail, dtype=STRING),
        }
    )
    extras = {name: col(i) for i, name in enumerate(frame_names)}
    frame = pd.concat([frame, pd.DataFrame(extras)], axis=1)
    return Contacts(
        path=path,
        frame=frame,
        extra_columns=frame_names,
        roles={role: header[i] for role, i in roles.items()},
    )
