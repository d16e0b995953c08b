"""Phone cells to E.164: `phonenumbers` exactly, with a vectorised path for clean NANP
spellings that agrees with it (tested), and the spreadsheet spellings undone first."""

from __future__ import annotations

import functools
import itertools
import os
import re
import unicodedata
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import phonenumbers
import pyarrow as pa
import pyarrow.compute as pc
from phonenumbers import NumberParseException, PhoneNumberFormat, ValidationResult

from campaign_dialer.contacts.tables import STRING

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


def check_region(default_region: str) -> str:
    region = default_region.upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"{default_region!r} is not a region phonenumbers knows")
    return region


_SCIENTIFIC = re.compile(r"^[+-]?\d+(?:[.,]\d+)?[eE][+-]?\d+$")
_EXCEL_FLOAT = re.compile(r"^(\+?\d+)[.,]0+$")
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
    apostrophe (Excel's "text" marker), `tel:` and `Mobile:` prefixes, Excel's float `.0` (`,0`
    in a decimal-comma locale),
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
def parse_phone(raw: str, region: str) -> tuple[str | None, str | None, str | None, bool]:
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
    e164, problem, _, _ = parse_phone(raw, region)
    return e164, problem


def normalize_phone(raw: str, default_region: str) -> str | None:
    """E.164 for a valid number, else None. Cached by raw string (parse once per spelling)."""
    return _parse(raw.strip(), check_region(default_region))[0]


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


def nanp_fast_path(raw: pa.Array, region: str) -> pa.Array:
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
# `_EXTENSION` and `_LEADING_LABEL` on purpose (tested against `parse_phone`).
_AFFIXED = (
    r"^(?:(?i:tel): *)?(?P<number>\+?[0-9(][0-9 ().\-/]{0,40}[0-9])"
    r"(?: ?(?:[xX]|[eE][xX][tT]\.?) ?(?P<ext>[0-9]{1,7}))?$"
)


def split_affixes(arr: pa.Array) -> tuple[pa.Array, pa.Array]:
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
        pc.struct_field(parts, [0]), r"^(\+?[0-9]+)[.,]0+$", r"\1"
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
    region = check_region(default_region)
    index = values.index if isinstance(values, pd.Series) else pd.RangeIndex(len(values))
    arr = pc.utf8_trim_whitespace(_as_arrow(values))
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    # Excel's float spelling ("4155550192.0") is undone before the fast path, as
    # `clean_phone_text` does, so both paths read the same digits
    arr = pc.replace_substring_regex(arr, r"^(\+?[0-9]+)[.,]0+$", r"\1")
    core, core_ext = split_affixes(arr)
    n = len(arr)
    parts = _threads() if n >= 100_000 else 1
    bounds = np.linspace(0, n, parts + 1).astype(int)
    slices = [core.slice(a, b - a) for a, b in itertools.pairwise(bounds)]
    if parts > 1:
        with ThreadPoolExecutor(parts) as pool:
            futures = [pool.submit(nanp_fast_path, part, region) for part in slices]
            # meanwhile this thread parses (and caches) the spellings the fast path never takes
            # (and the international numbers, which have the fast path's shape but not +1)
            shaped = pc.and_(
                pc.fill_null(pc.match_substring_regex(core, _FAST_SHAPE), False),
                pc.invert(pc.fill_null(pc.match_substring_regex(core, r"^\+[02-9]"), False)),
            )
            for raw in pc.unique(arr.filter(pc.invert(shaped))).to_pylist():
                parse_phone(raw, region)
            fast = [f.result() for f in futures]
    else:
        fast = [nanp_fast_path(part, region) for part in slices]
    e164 = pa.chunked_array(fast, type=pa.large_string()).combine_chunks()
    problem = pa.nulls(n, pa.large_string())
    extension = pc.if_else(pc.is_valid(e164), core_ext, pa.nulls(n, pa.large_string()))
    plausible = np.zeros(n, dtype=bool)

    rest = np.flatnonzero(np.asarray(pc.is_null(e164), dtype=bool))
    if rest.size:
        encoded = pc.dictionary_encode(arr.take(pa.array(rest)))
        results = [parse_phone(u, region) for u in encoded.dictionary.to_pylist()]
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

