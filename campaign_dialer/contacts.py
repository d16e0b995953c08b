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
- Header detection: `ROLE_ALIASES` (the shipped `data/header_aliases.csv`), compared case- and
  punctuation-insensitively, then by values for state and time zone; an explicit
  `[inputs.columns]` mapping always wins and must name a header that exists. Every phone-like
  column is read (main, then mobile, then others); a row is dialed on its first valid number
  and dedupe runs over all its numbers. Spreadsheet spellings are undone by
  `clean_phone_text`, the same for DNC lists and consent. Delimiter: comma, or `;`, tab or `|`
  when the header has no comma. Encoding: UTF-8 with or without BOM, UTF-16 with a BOM
  (Excel's "Unicode text"), else Windows-1252 with a warning; `encoding=` overrides.
"""

from __future__ import annotations

import codecs
import csv
import functools
import io
import itertools
import os
import re
import unicodedata
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

from campaign_dialer.errors import InputError

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

DATA = Path(__file__).resolve().parent / "data"


def _data_lines(name: str) -> list[str]:
    text = (DATA / name).read_text(encoding="utf-8")
    return [ln for ln in text.splitlines() if ln and not ln.startswith("#")]


def _load_aliases() -> dict[str, tuple[str, ...]]:
    out: dict[str, list[str]] = {}
    for r in csv.DictReader(_data_lines("header_aliases.csv")):
        out.setdefault(r["role"], []).append(r["alias"])
    return {role: tuple(v) for role, v in out.items()}


# Header spellings recognised per role, in priority order (first match wins), from the shipped
# table `data/header_aliases.csv` (HubSpot, Salesforce, Zoho, Pipedrive, Close, Salesloft,
# Outreach, Google Contacts, Outlook). Compared after lower-casing and collapsing every run of
# non-alphanumerics to "_" ("State/Region" -> "state_region"). An explicit [inputs.columns]
# mapping always wins over this. phone, mobile and other_phone are all phone columns.
ROLE_ALIASES: dict[str, tuple[str, ...]] = _load_aliases()
PHONE_ROLES = ("phone", "mobile", "other_phone")
ROLES = tuple(ROLE_ALIASES)
STANDARD_COLUMNS = (
    "row", "contact_id", "phone_raw", "phone_e164", "tz_hint", "reason", "detail",
    "phone_column", "phone_extension", "phone_others",
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


class ContactsError(InputError):
    """The contacts file cannot be used: the CLI exits 65 (EX_DATAERR) before any call."""


@dataclass
class Contacts:
    """A loaded contacts file: one frame row per data row, in input order."""

    path: Path
    frame: pd.DataFrame
    extra_columns: list[str] = field(default_factory=list)
    roles: dict[str, str] = field(default_factory=dict)  # role -> input header used
    phone_columns: list[str] = field(default_factory=list)  # priority order
    ignored_columns: list[str] = field(default_factory=list)  # headers no role took
    warnings: list[str] = field(default_factory=list)
    encoding: str = "utf-8"
    # phone cells that are not blank and not a valid number: row, column, value, problem
    unreadable: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=["row", "column", "value", "problem"])
    )


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


_SCIENTIFIC = re.compile(r"^[+-]?\d+(?:[.,]\d+)?[eE][+-]?\d+$")
_EXCEL_FLOAT = re.compile(r"^(\+?\d+)\.0+$")
_LEADING_LABEL = re.compile(r"^(?:tel:|[A-Za-z][A-Za-z .]*?\s*[:=-]\s*)(?=[+(\d])", re.I)
_TRAILING_LABEL = re.compile(
    r"(?:\s*[\(\[][^\)\]\d]*[A-Za-z][^\)\]\d]*[\)\]]|\s*[,;:/-]?\s*\b[A-Za-z]+\.?)\s*$"
)
_EXTENSION = re.compile(
    r"\s*(?:;\s*ext=|,?\s*(?:ext|extn|extension|x)\.?\s*:?\s*|\s#\s*)(\d{1,7})\s*$", re.I
)
PLAUSIBLE_DIGITS = 7  # a cell with this many digits is meant as a number: never drop it silently


@functools.lru_cache(maxsize=1 << 16)
def clean_phone_text(raw: str) -> tuple[str, str | None, str | None]:
    """(number text, extension, why it cannot be read) for one spreadsheet cell.

    Undoes what spreadsheets and CRMs do to a number, the same for contacts, DNC lists and
    consent: full-width digits and non-breaking spaces (NFKC), invisible marks, a leading
    apostrophe (Excel's "text" marker), `tel:` and `Mobile:` prefixes, Excel's float `.0`,
    labels after the number (`(cell)`, `home`, `mobile`) and extensions (`x12`, `ext. 12`).
    Scientific notation (`4.15555E+09`) has lost digits: it is never read as a number.
    """
    text = unicodedata.normalize("NFKC", raw)
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Cf").strip()
    text = text.lstrip("'\u2018\u2019`").strip()
    if _SCIENTIFIC.match(text):
        return text, None, "scientific notation (digits were lost)"
    m = _EXCEL_FLOAT.match(text)
    if m:
        text = m.group(1)
    ext = None
    for _ in range(4):
        before = text
        m = _EXTENSION.search(text)
        if m and any(c.isdigit() for c in text[: m.start()]):
            ext = ext or m.group(1)
            text = text[: m.start()].rstrip(" ,;")
        m = _TRAILING_LABEL.search(text)
        if m and any(c.isdigit() for c in text[: m.start()]):
            text = text[: m.start()].rstrip(" ,;:/-")
        if text == before:
            break
    text = _LEADING_LABEL.sub("", text, count=1).strip()
    m = _EXCEL_FLOAT.match(text)
    if m:
        text = m.group(1)
    if any(c.isalpha() for c in text) and any(c.isdigit() for c in text):
        return text, ext, "letters inside the number"
    return text, ext, None


def _digits(text: str) -> int:
    return sum(c.isdigit() for c in text)


@functools.lru_cache(maxsize=1 << 18)
def _parse_full(raw: str, region: str) -> tuple[str | None, str | None, str | None, bool]:
    """(E.164, problem, extension, plausible) for a stripped cell; see `clean_phone_text`.

    `plausible` marks a cell that holds 7+ digits yet cannot be read as exactly one complete
    number (digits lost or extra, two numbers, no area code, letters): somebody meant a number
    there and we cannot tell which, so a DNC list or a revocation refuses rather than drop it.
    A complete number that is merely not assigned (`(999) 555-1234`) is not plausible in this
    sense: it reads as one number, which no valid number we dial can equal; it is listed.
    """
    if not raw:
        return None, "blank", None, False
    text, ext, why = clean_phone_text(raw)
    if why is not None:
        return None, why, ext, _digits(text) >= PLAUSIBLE_DIGITS
    if not text:
        return None, "not a phone number", ext, False
    try:
        num = phonenumbers.parse(text, region)
    except NumberParseException as e:
        problem = _PARSE_ERRORS.get(e.error_type, "not a phone number")
        return None, problem, ext, _digits(text) >= PLAUSIBLE_DIGITS
    if num.extension:
        ext = ext or num.extension
    if phonenumbers.is_valid_number(num):
        return phonenumbers.format_number(num, PhoneNumberFormat.E164), None, ext, False
    why = _POSSIBLE.get(phonenumbers.is_possible_number_with_reason(num))
    if why is None:
        # one complete number of the right length, just not an assigned one: it reads
        # unambiguously and can never match a number we dial (we dial valid numbers only)
        where = phonenumbers.region_code_for_country_code(num.country_code or 0)
        return None, f"not a valid number for {where}", ext, False
    return None, why, ext, _digits(text) >= PLAUSIBLE_DIGITS


def _parse(raw: str, region: str) -> tuple[str | None, str | None]:
    """(E.164, None) or (None, why it is not a valid number). `raw` is already stripped."""
    e164, problem, _, _ = _parse_full(raw, region)
    return e164, problem


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


# A clean spelling with a `tel:` prefix and/or an extension after its last digit (` x12`,
# `ext. 12`): `clean_phone_text` reads it as the number between them (Excel's `.0` undone)
# plus that extension, so the fast path may decide the number between them. Narrower than
# `_EXTENSION` and `_LEADING_LABEL` on purpose (tested against `_parse_full`).
_AFFIXED = (
    r"^(?:(?i:tel): *)?(?P<number>\+?[0-9(][0-9 ().\-/]{0,40}[0-9])"
    r"(?: ?(?:[xX]|[eE][xX][tT]\.?) ?(?P<ext>[0-9]{1,7}))?$"
)


def _split_affixes(arr: pa.Array) -> tuple[pa.Array, pa.Array]:
    """(the number text of each cell, its extension or null) for the `_AFFIXED` spellings;
    other cells are returned as they are, with a null extension."""
    n = len(arr)
    # literal searches first (much cheaper than a regex over every cell): a prefix needs
    # "tel:", an extension an "x" (as in "ext")
    maybe = pc.or_(
        pc.starts_with(arr, "tel:", ignore_case=True),
        pc.match_substring(arr, "x", ignore_case=True),
    )
    cand = np.flatnonzero(np.asarray(pc.fill_null(maybe, False), dtype=bool))
    if cand.size == 0:
        return arr, pa.nulls(n, pa.large_string())
    ok = np.asarray(
        pc.fill_null(pc.match_substring_regex(arr.take(pa.array(cand)), _AFFIXED), False),
        dtype=bool,
    )
    hit = np.zeros(n, dtype=bool)
    hit[cand[ok]] = True
    if not hit.any():
        return arr, pa.nulls(n, pa.large_string())
    idx = np.flatnonzero(hit)
    parts = pc.extract_regex(arr.take(pa.array(idx)), _AFFIXED)
    core = pc.replace_substring_regex(
        pc.struct_field(parts, [0]), r"^(\+?[0-9]+)\.0+$", r"\1"
    ).cast(pa.large_string())
    ext = pc.struct_field(parts, [1]).cast(pa.large_string())
    ext = pc.if_else(pc.equal(ext, ""), pa.scalar(None, pa.large_string()), ext)
    mask = pa.array(hit)
    position = np.zeros(n, dtype=np.int64)
    position[idx] = np.arange(idx.size)
    where = pa.array(position)
    return (
        pc.if_else(mask, core.take(where), arr),
        pc.if_else(mask, ext.take(where), pa.nulls(n, pa.large_string())),
    )


def _threads() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def normalize_phones(values: pd.Series | Sequence[str], default_region: str) -> pd.DataFrame:
    """Normalise many phones at once: columns `e164`, `problem`, `extension` (strings or
    <NA>) and `plausible` (bool: not valid, yet 7+ digits: a number was meant).

    `problem` is "blank" for an empty cell, else why the number is invalid. Clean NANP
    spellings take a vectorised path (arrow kernels, in threads) that agrees with
    `normalize_phone` (tested); every other distinct spelling is parsed once by `phonenumbers`.
    """
    region = _check_region(default_region)
    index = values.index if isinstance(values, pd.Series) else pd.RangeIndex(len(values))
    arr = pc.utf8_trim_whitespace(_as_arrow(values))
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    # Excel's float spelling ("4155550192.0") is undone before the fast path, as
    # `clean_phone_text` does, so both paths read the same digits
    arr = pc.replace_substring_regex(arr, r"^(\+?[0-9]+)\.0+$", r"\1")
    core, core_ext = _split_affixes(arr)
    n = len(arr)
    parts = _threads() if n >= 100_000 else 1
    bounds = np.linspace(0, n, parts + 1).astype(int)
    slices = [core.slice(a, b - a) for a, b in itertools.pairwise(bounds)]
    if parts > 1:
        with ThreadPoolExecutor(parts) as pool:
            futures = [pool.submit(_fast_path, part, region) for part in slices]
            # meanwhile this thread parses (and caches) the spellings the fast path never takes
            # (and the international numbers, which have the fast path's shape but not +1)
            shaped = pc.and_(
                pc.fill_null(pc.match_substring_regex(core, _FAST_SHAPE), False),
                pc.invert(pc.fill_null(pc.match_substring_regex(core, r"^\+[02-9]"), False)),
            )
            for raw in pc.unique(arr.filter(pc.invert(shaped))).to_pylist():
                _parse_full(raw, region)
            fast = [f.result() for f in futures]
    else:
        fast = [_fast_path(part, region) for part in slices]
    e164 = pa.chunked_array(fast, type=pa.large_string()).combine_chunks()
    problem = pa.nulls(n, pa.large_string())
    extension = pc.if_else(pc.is_valid(e164), core_ext, pa.nulls(n, pa.large_string()))
    plausible = np.zeros(n, dtype=bool)

    rest = np.flatnonzero(np.asarray(pc.is_null(e164), dtype=bool))
    if rest.size:
        encoded = pc.dictionary_encode(arr.take(pa.array(rest)))
        results = [_parse_full(u, region) for u in encoded.dictionary.to_pylist()]
        mask = np.zeros(n, dtype=bool)
        mask[rest] = True
        position = np.zeros(n, dtype=np.int64)
        position[rest] = np.arange(rest.size)
        codes = encoded.indices
        mask_arr = pa.array(mask)

        def spread(k: int, current: pa.Array) -> pa.Array:
            slow = pa.array([r[k] for r in results], type=pa.large_string())
            return pc.if_else(mask_arr, slow.take(codes).take(pa.array(position)), current)

        e164 = spread(0, e164)
        problem = spread(1, problem)
        extension = spread(2, extension)
        flags = np.array([r[3] for r in results], dtype=bool)
        plausible[rest] = flags[np.asarray(codes, dtype=np.int64)]
    return pd.DataFrame(
        {
            "e164": pd.array(e164, dtype=STRING),
            "problem": pd.array(problem, dtype=STRING),
            "extension": pd.array(extension, dtype=STRING),
            "plausible": plausible,
        },
        index=index,
    )


# --------------------------------------------------------------------------------------------
# Time zone / state / postal code hints
# --------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _zone_names() -> dict[str, str]:
    return {z.lower(): z for z in zoneinfo.available_timezones()}


@functools.lru_cache(maxsize=1)
def _named_zones() -> dict[str, tuple[str, ...]]:
    """Windows and Rails zone names (`data/zone_names.csv`), lower-cased -> IANA zones."""
    out: dict[str, set[str]] = {}
    for r in csv.DictReader(_data_lines("zone_names.csv")):
        out.setdefault(r["name"].strip().lower(), set()).update(r["zones"].split())
    return {k: tuple(sorted(v)) for k, v in out.items()}


@functools.lru_cache(maxsize=1)
def _postal_table() -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
    """ZIP prefix (3 digits) or "CA:<letter>" -> (states, zones); `data/postal_zones.csv`."""
    return {
        r["prefix"]: (tuple(r["states"].split()), tuple(r["zones"].split()))
        for r in csv.DictReader(_data_lines("postal_zones.csv"))
    }


def postal_info(token: str) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """(states, zones) of a "zip:<prefix>" hint part; None when unknown."""
    return _postal_table().get(token[4:]) if token.startswith("zip:") else None


@functools.lru_cache(maxsize=1)
def _nanp_zones() -> tuple[str, ...]:
    zones: set[str] = set()
    for r in csv.DictReader(_data_lines("area_codes.csv")):
        zones.update(r["zones"].split())
    return tuple(sorted(zones))


_OFFSET_HINT = re.compile(
    r"^(?:\(?\s*(?:utc|gmt)\s*)?([+\-\u2212])\s*(\d{1,2})(?:[:.]?(\d{2}))?\s*\)?$", re.I
)
_DISPLAY_PREFIX = re.compile(r"^\(\s*(?:utc|gmt)\s*(?:[+\-\u2212]\s*\d{1,2}:?\d{2})?\s*\)\s*", re.I)


@functools.lru_cache(maxsize=256)
def _offset_zones(sign: str, hours: int, minutes: int) -> str | None:
    """Every North American zone that is at this UTC offset in winter or in summer, plus the
    fixed-offset zone: "UTC-05:00" may be Eastern standard or Central daylight time."""
    from datetime import datetime, timedelta

    off = timedelta(hours=hours, minutes=minutes) * (-1 if sign in "-\u2212" else 1)
    if off > timedelta(hours=14) or off < timedelta(hours=-12):
        return None
    zones = []
    for name in _nanp_zones():
        zi = zoneinfo.ZoneInfo(name)
        if any(
            datetime(2026, m, 15, 12, tzinfo=zi).utcoffset() == off for m in (1, 7)
        ):
            zones.append(name)
    if minutes == 0:
        zones.append("UTC" if hours == 0 else f"Etc/GMT{'+' if off < timedelta(0) else '-'}{hours}")
    return ";".join(zones) or None


def _postal_hint(v: str) -> str | None:
    """"zip:<prefix>" for a US ZIP (leading zeros Excel dropped are restored) or Canadian
    postal code we know; None when it is not one."""
    t = v.strip().upper().lstrip("'")
    m = re.fullmatch(r"(\d{3,5})(?:\.0+)?(?:[-\s]?\d{4})?", t)
    if m:
        z = m.group(1).zfill(5)
        return f"zip:{z[:3]}" if z[:3] in _postal_table() else None
    m = re.fullmatch(r"([A-Z])\d[A-Z]\s?-?\d[A-Z]\d", t)
    if m and f"CA:{m.group(1)}" in _postal_table():
        return f"zip:CA:{m.group(1)}"
    return None


@functools.lru_cache(maxsize=4096)
def normalize_hint(value: str, kind: str = "timezone") -> str | None:
    """Canonical hint for a time-zone, state or postal-code cell; None when blank.

    Returns IANA zones, state/province codes and "zip:<prefix>" parts joined by ";", or the
    stripped value itself when it cannot be interpreted (the compliance stage then treats the
    zone as unknown). Zone cells may be IANA names, abbreviations (PST), Windows names
    (`Pacific Standard Time`), Rails names (`Pacific Time (US & Canada)`, also with a
    "(GMT-08:00) " prefix), UTC offsets (every zone at that offset) or state names.
    """
    v = unicodedata.normalize("NFKC", value).strip()
    if not v:
        return None
    low = v.lower()
    if kind == "postal_code":
        return _postal_hint(v) or v
    if kind == "timezone":
        if low in _zone_names() and "/" in v or low in ("utc", "etc/utc"):
            return _zone_names()[low]
        if low in _ZONE_WORDS:
            return ";".join(_ZONE_WORDS[low])
        named = _DISPLAY_PREFIX.sub("", v).strip().lower()
        if named in _named_zones():
            return ";".join(_named_zones()[named])
        if named in _ZONE_WORDS:
            return ";".join(_ZONE_WORDS[named])
        m = _OFFSET_HINT.match(v)
        if m:
            zones = _offset_zones(m.group(1), int(m.group(2)), int(m.group(3) or 0))
            if zones:
                return zones
        if low in ("gmt", "z", "utc+0", "utc-0", "gmt+0"):
            return "UTC"
    if v.upper() in STATE_CODES and len(v) == 2:
        return v.upper()
    if low in _STATE_BY_NAME:
        return _STATE_BY_NAME[low]
    if kind == "state" and low in _ZONE_WORDS:
        return ";".join(_ZONE_WORDS[low])
    if kind == "state" and low in _zone_names() and "/" in v:
        return _zone_names()[low]
    return v


def _hint_recognised(value: str, kind: str) -> bool:
    h = normalize_hint(value, kind)
    return h is not None and h != unicodedata.normalize("NFKC", value).strip()


# --------------------------------------------------------------------------------------------
# Reading the file
# --------------------------------------------------------------------------------------------


def _canon(header: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", header.strip().lower()).strip("_")


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


def _sniff(
    path: Path, encoding: str | None = None, warnings: list[str] | None = None
) -> tuple[str, str]:
    """(encoding, delimiter); rejects what is plainly not a CSV file."""
    try:
        with path.open("rb") as f:
            head = f.read(65536)
    except OSError as e:
        raise ContactsError(path, f"cannot read: {e.strerror or e}") from e
    if encoding:
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise ContactsError(path, f"inputs.encoding {encoding!r} is not an encoding") from None
    enc = sniff_encoding(path, head, encoding, warnings if warnings is not None else [])
    if not enc:
        raise ContactsError(path, "not a CSV file (binary content)")
    if enc.replace("-", "").lower() in ("utf8", "utf8sig"):
        enc = "utf-8"
        text = head.decode("utf-8-sig", errors="replace")
    else:
        text = head.decode(enc, errors="replace").lstrip("\ufeff")
    if not text.strip():
        raise ContactsError(path, "empty file: no header row")
    first = text.splitlines()[0] if text.splitlines() else ""
    counts = {d: first.count(d) for d in (",", ";", "\t", "|")}
    delimiter = "," if counts[","] else max(counts, key=lambda d: counts[d])
    return enc, delimiter


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


def csv_source(path: Path, encoding: str, warnings: list[str] | None) -> Path | io.BytesIO:
    """The file to give the CSV reader: the file itself, or its bytes without a Salesforce
    report's footer (said in a warning, never silently)."""
    footer = report_footer(path, encoding)
    if footer is None:
        return path
    offset, n = footer
    if warnings is not None:
        warnings.append(
            f"{path}: the last {n} line(s) are a Salesforce report's footer (totals, copyright, "
            "confidentiality notice): not read as data"
        )
    with path.open("rb") as f:
        return io.BytesIO(f.read(offset))


def _read_header(path: Path, encoding: str, delimiter: str) -> list[str]:
    with path.open("rb") as f:
        head = f.read(1 << 20)
    if encoding == "utf-8":
        text = head.removeprefix(codecs.BOM_UTF8).decode("utf-8", errors="surrogateescape")
    else:
        text = head.decode(encoding, errors="replace").lstrip("\ufeff")
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
    text = raw.decode(encoding, errors="surrogateescape" if encoding == "utf-8" else "replace")
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
                    return ContactsError(
                        path, "not valid UTF-8 text (nor Windows-1252)", row=row, column=header[j]
                    )
            if len(record) < n:
                return ContactsError(
                    path,
                    f"has {len(record)} fields, the header has {n} (a missing field or an "
                    "unquoted line break?)",
                    row=row,
                    column=header[len(record)],
                )
            if len(record) > n and n == 1 and len(record) > 2:
                return ContactsError(
                    path,
                    f"has {len(record)} fields but the first line ({header[0]!r}) has one: is "
                    "it a report's title rather than the header? Delete the lines above the "
                    "header row",
                    row=row,
                    column=f"#{n + 1} (beyond the header)",
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


def _read_table(
    path: Path, encoding: str | None = None, warnings: list[str] | None = None
) -> tuple[list[str], pa.Table, str]:
    enc, delimiter = _sniff(path, encoding, warnings)
    header = _read_header(path, enc, delimiter)
    names = [f"c{i}" for i in range(len(header))]
    bad: list[object] = []

    def on_invalid(row: object) -> str:
        bad.append(row)
        return "skip"

    try:
        table = pacsv.read_csv(
            csv_source(path, enc, warnings),
            read_options=pacsv.ReadOptions(
                column_names=names, skip_rows=1, encoding=enc, block_size=1 << 22
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
        raise _locate_bad_row(path, enc, delimiter, header) from e
    if bad:
        raise _locate_bad_row(path, enc, delimiter, header)
    return header, table, enc


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


COLUMN_KEYS = ("phone", "contact_id", "timezone", "state")  # [inputs.columns] keys


def _explicit(path: Path, header: list[str], role: str, wanted: str) -> int:
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
    return hits[0]


def _resolve_roles(
    path: Path, header: list[str], columns: Mapping[str, object] | None
) -> tuple[dict[str, int], list[int]]:
    """(role -> column index, phone column indexes in priority order).

    Explicit mapping first (must exist; `phone` may be a list in priority order), then
    detection by alias: every phone-like column is taken, main phone first, then mobile, then
    the others.
    """
    found: dict[str, int] = {}
    phones: list[int] = []
    for role, wanted in (columns or {}).items():
        if wanted is None or wanted == "" or wanted == []:
            continue
        if role not in COLUMN_KEYS:
            raise ContactsError(
                path,
                f"[inputs.columns] has unknown role {role!r} (known: {', '.join(COLUMN_KEYS)})",
            )
        if role == "phone":
            wanted_list = [wanted] if isinstance(wanted, str) else list(wanted)  # type: ignore[call-overload]
            for w in wanted_list:
                i = _explicit(path, header, role, str(w))
                if i not in phones:
                    phones.append(i)
            found["phone"] = phones[0]
        else:
            found[role] = _explicit(path, header, role, str(wanted))
    canon = [_canon(h) for h in header]
    taken = set(found.values()) | set(phones)
    if not phones:
        for role in PHONE_ROLES:
            for alias in ROLE_ALIASES.get(role, ()):
                for i, c in enumerate(canon):
                    if c == alias and i not in taken:
                        phones.append(i)
                        taken.add(i)
        if phones:
            found["phone"] = phones[0]
    for role, aliases in ROLE_ALIASES.items():
        if role in found or role in PHONE_ROLES:
            continue
        for alias in aliases:
            hits = [i for i, c in enumerate(canon) if c == alias and i not in taken]
            if hits:
                found[role] = hits[0]
                taken.add(hits[0])
                break
    if "phone" not in found and "contact_id" not in found:
        raise ContactsError(
            path,
            "no phone or contact_id column (header: "
            + ", ".join(header)
            + "); name one in [inputs.columns]",
        )
    return found, phones


def _detect_by_values(
    table: pa.Table, header: list[str], found: dict[str, int], taken: set[int]
) -> dict[str, int]:
    """A column no header names, whose non-blank values are mostly (>= 80 %, at least two
    distinct) US state / Canadian province codes or names is the state column; one of zone
    names is the time zone column. Country columns are never taken ("CA" is also Canada)."""
    out: dict[str, int] = {}
    country_like = {"country", "country_code", "nation"}
    for role in ("state", "timezone"):
        if role in found:
            continue
        for i, h in enumerate(header):
            c = _canon(h)
            if i in taken or i in out.values() or c in country_like or "country" in c:
                continue
            sample = pc.unique(pc.utf8_trim_whitespace(table.column(i).slice(0, 5000)))
            values = [v for v in sample.to_pylist() if v]
            if len(values) < 2:
                continue
            if role == "state":
                hits = sum(
                    1 for v in values
                    if (h2 := normalize_hint(v, "state")) is not None and h2 in STATE_CODES
                )
            else:
                hits = sum(
                    1 for v in values
                    if _hint_recognised(v, "timezone") and v.strip().upper() not in STATE_CODES
                    and v.strip().lower() not in _STATE_BY_NAME
                )
            if hits >= 0.8 * len(values):
                out[role] = i
                break
    return out


def _group_codes(values: pd.Series, rows: np.ndarray, *, e164: bool) -> np.ndarray:
    """Dense codes of `values` at `rows` (-1 for missing). E.164 strings are keyed as int64."""
    # encoded over the whole column, then picked: no copy of a million strings
    sub = pa.array(values.astype(STRING), type=pa.large_string())
    if e164:
        digits = pc.utf8_slice_codeunits(sub, 1)
        ints = np.asarray(pc.fill_null(pc.cast(digits, pa.int64()), -1), dtype=np.int64)
        ints = ints[rows]
        codes, _ = pd.factorize(ints)
        return np.where(ints < 0, -1, codes)
    encoded = pc.dictionary_encode(sub)
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.combine_chunks()
    return np.asarray(pc.fill_null(encoded.indices, -1), dtype=np.int64)[rows]


def _dedupe(keys: Sequence[pd.Series | tuple[pd.Series, bool]], usable: np.ndarray) -> np.ndarray:
    """For each row, the index of the first row of its person group (itself if first).

    Groups are connected components of "shares a key" among usable rows (any E.164 number of
    the row, or its contact_id), found by propagating the smallest row index through every key
    until nothing changes. `keys`: (values, is_e164) per key column.
    """
    n = len(usable)
    label = np.arange(n)
    idx = np.flatnonzero(usable)
    if idx.size == 0:
        return label
    # (positions among usable rows, codes): every E.164 column shares one code space and one
    # pass, so a number in Phone meets the same number in another row's Mobile
    pairs: list[tuple[np.ndarray, np.ndarray]] = []
    e164_ints = []
    for k in keys:
        values, is_e164 = k if isinstance(k, tuple) else (k, True)
        if is_e164:
            e164_ints.append(_e164_int_values(values, idx))
        else:
            pairs.append((np.arange(idx.size), _group_codes(values, idx, e164=False)))
    if e164_ints:
        allints = np.concatenate(e164_ints)
        codes, _ = pd.factorize(allints)
        positions = np.tile(np.arange(idx.size), len(e164_ints))
        pairs.append((positions, np.where(allints < 0, -1, codes)))
    # a value only one row holds joins nothing: propagate through shared values only
    shared: list[tuple[np.ndarray, np.ndarray]] = []
    for pos, codes in pairs:
        m = codes >= 0
        pos, codes = pos[m], codes[m]
        if codes.size == 0:
            continue
        many = np.bincount(codes)[codes] > 1
        if many.any():
            dense, _ = pd.factorize(codes[many])
            shared.append((pos[many], np.asarray(dense, dtype=np.int64)))
    lab = idx.copy()
    while shared:
        before = lab.copy()
        for pos, codes in shared:
            best = np.full(int(codes.max()) + 1, n, dtype=np.int64)
            np.minimum.at(best, codes, lab[pos])
            np.minimum.at(lab, pos, best[codes])
        if np.array_equal(lab, before):
            break
    label[idx] = lab
    return label


def _e164_int_values(values: pd.Series, rows: np.ndarray) -> np.ndarray:
    sub = pa.array(values.astype(STRING), type=pa.large_string())
    digits = pc.utf8_slice_codeunits(sub, 1)
    return np.asarray(pc.fill_null(pc.cast(digits, pa.int64()), -1), dtype=np.int64)[rows]


# Values of a Do-Not-Call checkbox column that mean "may be called"; any other value holds
# the row back (a checkbox exported as 1/true/yes/x, or words nobody expected).
_FLAG_NO = frozenset({"", "0", "false", "no", "n", "f", "off", "unchecked", "0.0"})


def load_contacts(
    path: Path | str,
    *,
    default_region: str,
    columns: Mapping[str, object] | None = None,
    encoding: str | None = None,
) -> Contacts:
    """Read, normalise and de-duplicate a contacts CSV; raise `ContactsError` if unusable."""
    path = Path(path)
    region = _check_region(default_region)
    warnings: list[str] = []
    header, table, enc = _read_table(path, encoding, warnings)
    roles, phone_idx = _resolve_roles(path, header, columns)
    taken = set(roles.values()) | set(phone_idx)
    by_values = _detect_by_values(table, header, roles, taken)
    for role, i in by_values.items():
        roles[role] = i
        taken.add(i)
        warnings.append(
            f"{path}: column {header[i]!r} taken as the {role} column from its values "
            "(no header named it)"
        )
    n = table.num_rows
    frame_names = _unique_names(header)

    def col(i: int) -> pd.Series:
        return pd.Series(table.column(i).to_pandas(), dtype=STRING).reset_index(drop=True)

    if "contact_id" in roles:
        cid = col(roles["contact_id"]).str.strip()
        cid = cid.mask(cid == "")
    else:
        cid = pd.Series(pd.NA, index=range(n), dtype=STRING)

    # every phone column, normalised; the first valid number of a row is the one dialed
    phone_raw = pd.Series("", index=range(n), dtype=STRING)
    e164 = pd.Series(pd.NA, index=range(n), dtype=STRING)
    extension = pd.Series(pd.NA, index=range(n), dtype=STRING)
    problem = pd.Series("blank", index=range(n), dtype=STRING)
    chosen = np.full(n, -1, dtype=np.int64)
    first_bad = np.full(n, -1, dtype=np.int64)
    valid_cols: list[pd.Series] = []
    unreadable_parts: list[pd.DataFrame] = []
    # Google Contacts writes several numbers of one label as "A ::: B": each is a number of
    # the row (the first one where it stands, the others after every column)
    sources: list[tuple[str, pd.Series]] = []
    extra_sources: list[tuple[str, pd.Series]] = []
    for i in phone_idx:
        raw = col(i)
        multi = raw.str.contains(":::", regex=False).fillna(False)
        if not multi.any():
            sources.append((header[i], raw))
            continue
        parts = raw.str.split(r"\s*:::\s*", regex=True)
        sources.append((header[i], parts.str[0].astype(STRING)))
        for j in range(1, int(parts.str.len().max())):
            extra_sources.append((f"{header[i]} #{j + 1}", parts.str[j].astype(STRING)))
    sources += extra_sources
    named = (columns or {}).get("phone")
    explicit_phones = (
        {header[i] for i in phone_idx} if named not in (None, "", []) else set()
    )
    for k, (label, raw) in enumerate(sources):
        norm = normalize_phones(raw, region)
        valid = norm["e164"].notna().to_numpy(dtype=bool)
        bad = (norm["problem"].notna() & norm["problem"].ne("blank")).fillna(False)
        bad_np = bad.to_numpy(dtype=bool)
        take = valid & (chosen < 0)
        chosen[take] = k
        if take.any():
            t = pd.Series(take)
            phone_raw = phone_raw.mask(t, raw)
            e164 = e164.mask(t, norm["e164"])
            extension = extension.mask(t, norm["extension"])
            problem = problem.mask(t, pd.NA)
        if label in explicit_phones and bad_np.any() and not valid.any():
            r = int(np.flatnonzero(bad_np)[0])
            raise ContactsError(
                path,
                f"[inputs.columns] phone names {label!r}, but no cell of it holds a phone "
                f"number ({raw.iat[r]!r} is not one): the wrong column?",
                row=r + 1,
                column=label,
            )
        note = bad_np & (first_bad < 0)
        first_bad[note] = k
        valid_cols.append(norm["e164"])
        if bad_np.any():
            unreadable_parts.append(
                pd.DataFrame(
                    {
                        "row": np.flatnonzero(bad_np) + 1,
                        "column": label,
                        "value": raw[bad].to_numpy(dtype=object),
                        "problem": norm["problem"][bad].to_numpy(dtype=object),
                    }
                )
            )
        # rows with no valid number keep the first unreadable cell as their phone_raw
        unresolved = (chosen < 0) & note
        if unresolved.any():
            u = pd.Series(unresolved)
            phone_raw = phone_raw.mask(u, raw)
            problem = problem.mask(u, norm["problem"])
            extension = extension.mask(u, norm["extension"])
    others_list: list[str | None] = [None] * n
    if len(sources) > 1:
        stack = np.column_stack([c.fillna("").to_numpy(dtype=object) for c in valid_cols])
        multi = np.flatnonzero((stack != "").sum(axis=1) > 1)
        for r in multi.tolist():
            main = e164.iat[r]
            rest = []
            for v in stack[r]:
                if v and v != main and v not in rest:
                    rest.append(v)
            others_list[r] = " ".join(rest) or None
    phone_others = pd.Series(others_list, dtype=STRING)
    col_labels = [label for label, _ in sources]
    labels = np.array([*col_labels, None], dtype=object)
    phone_column = pd.Series(pd.array(labels[chosen], dtype=STRING))

    # each distinct cell is interpreted once, then each distinct combination joined once
    hint_codes: list[np.ndarray] = []
    hint_maps: list[list[str | None]] = []
    for role in ("timezone", "state", "postal_code"):
        if role in roles:
            cells = col(roles[role]).fillna("")
            codes, uniques = pd.factorize(cells)
            hint_codes.append(np.asarray(codes, dtype=np.int64))
            hint_maps.append([normalize_hint(u, role) for u in uniques])
    if hint_codes:
        key = np.zeros(n, dtype=np.int64)
        for codes, mapping in zip(hint_codes, hint_maps, strict=True):
            key = key * (len(mapping) + 1) + codes
        combo, first_rows = np.unique(key, return_index=True)
        joined: list[str | None] = []
        for r in first_rows.tolist():
            seen: list[str] = []
            for codes, mapping in zip(hint_codes, hint_maps, strict=True):
                part = mapping[codes[r]]
                if part is not None and part not in seen:
                    seen.append(part)
            joined.append(";".join(seen) if seen else None)
        which = np.searchsorted(combo, key)
        tz_hint = pd.Series(
            pd.array(np.array([*joined], dtype=object)[which], dtype=STRING)
        )
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
        if len(sources) > 1:
            where = np.array([f" ({h})" for h in col_labels] + [""], dtype=object)
            detail[invalid] = detail[invalid] + where[first_bad[invalid]]
    usable = reason == None  # noqa: E711 (element-wise)
    keys: list[pd.Series | tuple[pd.Series, bool]] = list(valid_cols) or [e164]
    keys.append((cid, False))
    first = _dedupe(keys, usable)
    dup = usable & (first != np.arange(n))
    reason[dup] = "duplicate"
    if dup.any():
        detail[dup] = np.char.add("duplicate_of=", (first[dup] + 1).astype(str)).astype(object)

    if "do_not_call" in roles:
        # A CRM's own Do-Not-Call checkbox (Salesforce DoNotCall): the person asked not to be
        # called. Every row of that person is held back; a value that is not plainly "no"
        # counts as yes.
        flag_name = header[roles["do_not_call"]]
        low = col(roles["do_not_call"]).fillna("").str.strip().str.lower()
        flagged = ~low.isin(list(_FLAG_NO)).to_numpy(dtype=bool)
        person = usable | dup
        groups = np.unique(first[flagged & person])
        hit = person & np.isin(first, groups)
        reason[hit] = "dnc_flag"
        detail[hit] = f"the contacts file's {flag_name!r} column says do not call this person"
    if len(phone_idx) > 1:
        warnings.append(
            f"{path}: {len(phone_idx)} phone columns; each row is dialed on its first valid "
            f"number in this order: {', '.join(col_labels)}"
        )
    if not ({"state", "timezone", "postal_code"} & set(roles)):
        warnings.append(
            f"{path}: no state, time zone or postal code column: zones come from area codes only"
        )
    frame = pd.DataFrame(
        {
            "row": np.arange(1, n + 1, dtype=np.int64),
            "contact_id": cid.reset_index(drop=True),
            "phone_raw": phone_raw.reset_index(drop=True),
            "phone_e164": e164.reset_index(drop=True),
            "tz_hint": tz_hint.reset_index(drop=True),
            "reason": pd.array(reason, dtype=STRING),
            "detail": pd.array(detail, dtype=STRING),
            "phone_column": phone_column.reset_index(drop=True),
            "phone_extension": extension.reset_index(drop=True),
            "phone_others": phone_others.reset_index(drop=True),
        }
    )
    extras = {name: col(i) for i, name in enumerate(frame_names)}
    frame = pd.concat([frame, pd.DataFrame(extras)], axis=1)
    role_names = {role: header[i] for role, i in roles.items()}
    unreadable = (
        pd.concat(unreadable_parts, ignore_index=True).sort_values("row", kind="stable")
        if unreadable_parts
        else pd.DataFrame(columns=["row", "column", "value", "problem"])
    )
    return Contacts(
        path=path,
        frame=frame,
        extra_columns=frame_names,
        roles=role_names,
        phone_columns=col_labels,
        ignored_columns=[h for i, h in enumerate(header) if i not in taken],
        warnings=warnings,
        encoding=enc,
        unreadable=unreadable.reset_index(drop=True),
    )
