"""Load a contacts file: read it, take its roles, normalise every phone, one row per person.

`load_contacts` is a sequence of named steps, each a function below saying why it exists:
roles (which column is what), phones (every phone column, the first valid number dialed),
hints (where the person may be), country (a number that contradicts the row's country),
dedupe (one person, one call) and the CRM's own Do-Not-Call flag.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from campaign_dialer.contacts.country import calling_code, country_region
from campaign_dialer.contacts.csvfile import (
    UNREADABLE_COLUMNS,
    ContactsError,
    column_of,
    read_strings,
    refuse_title_lines,
)
from campaign_dialer.contacts.csvfile import first_bad as refuse_first
from campaign_dialer.contacts.dedupe import person_groups
from campaign_dialer.contacts.hints import normalize_hint
from campaign_dialer.contacts.ids import read_ids
from campaign_dialer.contacts.phones import check_region, normalize_phones
from campaign_dialer.contacts.roles import detect_by_values, resolve_roles, unique_names
from campaign_dialer.contacts.tables import PHONE_ROLES, ROLE_ALIASES, STRING

__all__ = ["Contacts", "load_contacts", "person_groups"]


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
        default_factory=lambda: pd.DataFrame(columns=UNREADABLE_COLUMNS)
    )


def load_contacts(
    path: Path | str,
    *,
    default_region: str,
    columns: Mapping[str, object] | None = None,
    encoding: str | None = None,
) -> Contacts:
    """Read, normalise and de-duplicate a contacts CSV; raise `ContactsError` if unusable."""
    path = Path(path)
    region = check_region(default_region)
    warnings: list[str] = []
    header, table, enc = read_strings(
        path, encoding=encoding, warnings=warnings, error=ContactsError, allow_empty=False
    )
    roles, phone_idx, taken = _take_roles(path, header, table, columns, encoding, warnings)
    n = table.num_rows

    def col(i: int) -> pd.Series:
        return column_of(table, i)

    cid = _contact_ids(path, header, roles, col, n)
    phones = _read_phones(path, header, phone_idx, col, columns, region, n)
    tz_hint = _zone_hints(roles, col, n)
    reason, detail = _unusable_rows(phones, cid)
    e164 = phones.e164
    if "country" in roles:
        e164 = _check_country(
            col(roles["country"]), header[roles["country"]], e164, reason, detail, warnings, path
        )
    first, person = _mark_duplicates(phones.valid or [e164], cid, reason, detail)
    if "do_not_call" in roles:
        _hold_flagged(col(roles["do_not_call"]), header[roles["do_not_call"]], first, person,
                      reason, detail)
    warnings += _reading_notes(path, phone_idx, phones.labels, roles)
    frame_names = unique_names(header)
    frame = pd.DataFrame(
        {
            "row": np.arange(1, n + 1, dtype=np.int64),
            "contact_id": cid.reset_index(drop=True),
            "phone_raw": phones.raw.reset_index(drop=True),
            "phone_e164": e164.reset_index(drop=True),
            "tz_hint": tz_hint.reset_index(drop=True),
            "reason": pd.array(reason, dtype=STRING),
            "detail": pd.array(detail, dtype=STRING),
            "phone_column": phones.column.reset_index(drop=True),
            "phone_extension": phones.extension.reset_index(drop=True),
            "phone_others": phones.others.reset_index(drop=True),
        }
    )
    extras = {name: col(i) for i, name in enumerate(frame_names)}
    frame = pd.concat([frame, pd.DataFrame(extras)], axis=1)
    return Contacts(
        path=path,
        frame=frame,
        extra_columns=frame_names,
        roles={role: header[i] for role, i in roles.items()},
        phone_columns=phones.labels,
        ignored_columns=[h for i, h in enumerate(header) if i not in taken],
        warnings=warnings,
        encoding=enc,
        unreadable=phones.unreadable,
    )


def _take_roles(
    path: Path, header: list[str], table: pa.Table, columns: Mapping[str, object] | None,
    encoding: str | None, warnings: list[str],
) -> tuple[dict[str, int], list[int], set[int]]:
    """Roles: (role -> column, phone columns in priority order, every column a role took).

    By the explicit mapping, then the header aliases, then (state, time zone) by values with a
    warning, since a column taken by its values is a guess the user should see. A file whose
    header names nothing we know, under a report's title lines, is refused naming the line of
    the real header: reading the title as the header would read no phone at all."""
    try:
        roles, phone_idx = resolve_roles(path, header, columns)
    except ContactsError:
        known = {a for r in (*PHONE_ROLES, "contact_id") for a in ROLE_ALIASES.get(r, ())}
        refuse_title_lines(path, known, ContactsError, encoding)
        raise
    taken = set(roles.values()) | set(phone_idx)
    for role, i in detect_by_values(table, header, roles, taken).items():
        roles[role] = i
        taken.add(i)
        warnings.append(
            f"{path}: column {header[i]!r} taken as the {role} column from its values "
            "(no header named it)"
        )
    return roles, phone_idx, taken


def _contact_ids(
    path: Path, header: list[str], roles: dict[str, int], col: Callable[[int], pd.Series],
    n: int,
) -> pd.Series:
    """The contact id per row (<NA> when blank or without the column), read as consent reads
    it (`read_ids`), so the same person keys the same in both files."""
    if "contact_id" not in roles:
        return pd.Series(pd.NA, index=range(n), dtype=STRING)
    return read_ids(path, col(roles["contact_id"]), header[roles["contact_id"]], ContactsError)


@dataclass
class _Phones:
    """Every phone column of the file, read: what the row is dialed on and why not."""

    labels: list[str]  # every phone source in priority order ("Phone", "Mobile", "Phone #2")
    raw: pd.Series  # the cell dialed, or the first unreadable one, or ""
    e164: pd.Series  # the number dialed (<NA>: none valid)
    extension: pd.Series
    problem: pd.Series  # <NA> when valid, "blank", or why the cell is not a number
    column: pd.Series  # the label the number was taken from
    first_bad: np.ndarray  # per row: the source of the first unreadable cell, -1
    valid: list[pd.Series]  # per source: its valid E.164 numbers (dedupe runs over all)
    others: pd.Series  # the row's other valid numbers, space-separated
    unreadable: pd.DataFrame  # row, column, value, problem


def _phone_sources(
    header: list[str], phone_idx: list[int], col: Callable[[int], pd.Series]
) -> list[tuple[str, pd.Series]]:
    """(label, cells) per phone source in priority order. Google Contacts writes several
    numbers of one label as "A ::: B": each is a number of the row, the first one where it
    stands, the others ("Phone #2") after every column, so no number is left unread."""
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
    return sources + extra_sources


def _read_phones(
    path: Path, header: list[str], phone_idx: list[int], col: Callable[[int], pd.Series],
    columns: Mapping[str, object] | None, region: str, n: int,
) -> _Phones:
    """Phones: every phone column normalised (`normalize_phones`); a row is dialed on its first
    valid number, in column priority, and keeps its first unreadable cell when none is valid
    (named in `unreadable`, never dropped). A phone column the user named explicitly that holds
    no number at all is refused: the mapping points at the wrong column."""
    sources = _phone_sources(header, phone_idx, col)
    phone_raw = pd.Series("", index=range(n), dtype=STRING)
    e164 = pd.Series(pd.NA, index=range(n), dtype=STRING)
    extension = pd.Series(pd.NA, index=range(n), dtype=STRING)
    problem = pd.Series("blank", index=range(n), dtype=STRING)
    chosen = np.full(n, -1, dtype=np.int64)
    first_bad = np.full(n, -1, dtype=np.int64)
    valid_cols: list[pd.Series] = []
    unreadable_parts: list[pd.DataFrame] = []
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
        if label in explicit_phones and not valid.any():
            def wrong_column(r: int, raw: pd.Series = raw, label: str = label) -> ContactsError:
                return ContactsError(
                    path,
                    f"[inputs.columns] phone names {label!r}, but no cell of it holds a phone "
                    f"number ({raw.iat[r]!r} is not one): the wrong column?",
                    row=r + 1,
                    column=label,
                )

            refuse_first(bad_np, wrong_column)
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
    labels = [label for label, _ in sources]
    column = pd.Series(pd.array(np.array([*labels, None], dtype=object)[chosen], dtype=STRING))
    unreadable = (
        pd.concat(unreadable_parts, ignore_index=True).sort_values("row", kind="stable")
        if unreadable_parts
        else pd.DataFrame(columns=UNREADABLE_COLUMNS)
    )
    return _Phones(
        labels=labels, raw=phone_raw, e164=e164, extension=extension, problem=problem,
        column=column, first_bad=first_bad, valid=valid_cols,
        others=_other_numbers(valid_cols, e164, n), unreadable=unreadable.reset_index(drop=True),
    )


def _other_numbers(valid_cols: list[pd.Series], e164: pd.Series, n: int) -> pd.Series:
    """`phone_others`: a row's valid numbers other than the one dialed, in column order, each
    once; a call to any of them is a call to the same person (history, DNC, consent)."""
    others_list: list[str | None] = [None] * n
    if len(valid_cols) > 1:
        stack = np.column_stack([c.fillna("").to_numpy(dtype=object) for c in valid_cols])
        multi = np.flatnonzero((stack != "").sum(axis=1) > 1)
        for r in multi.tolist():
            main = e164.iat[r]
            rest = []
            for v in stack[r]:
                if v and v != main and v not in rest:
                    rest.append(v)
            others_list[r] = " ".join(rest) or None
    return pd.Series(others_list, dtype=STRING)


def _zone_hints(roles: dict[str, int], col: Callable[[int], pd.Series], n: int) -> pd.Series:
    """Hints: `tz_hint` from the time zone, state and postal code columns, joined with ";"
    (the person may be in any of them, and the calling window must hold in every one). Each
    distinct cell is interpreted once, then each distinct combination joined once."""
    hint_codes: list[np.ndarray] = []
    hint_maps: list[list[str | None]] = []
    for role in ("timezone", "state", "postal_code"):
        if role in roles:
            cells = col(roles[role]).fillna("")
            codes, uniques = pd.factorize(cells)
            hint_codes.append(np.asarray(codes, dtype=np.int64))
            hint_maps.append([normalize_hint(u, role) for u in uniques])
    if not hint_codes:
        return pd.Series(pd.NA, index=range(n), dtype=STRING)
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
    return pd.Series(pd.array(np.array([*joined], dtype=object)[which], dtype=STRING))


def _unusable_rows(phones: _Phones, cid: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(reason, detail) per row for the rows nothing can be dialed on: `blank_phone` only
    when there is no contact id either (a row with an id is callable by it); `invalid_phone`
    even with an id (we will not guess which number the platform would ring), naming the
    column when the file has several."""
    problem = phones.problem
    n = len(problem)
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
        if len(phones.labels) > 1:
            where = np.array([f" ({h})" for h in phones.labels] + [""], dtype=object)
            detail[invalid] = detail[invalid] + where[phones.first_bad[invalid]]
    return reason, detail


def _check_country(
    cells: pd.Series, name: str, e164: pd.Series, reason: np.ndarray, detail: np.ndarray,
    warnings: list[str], path: Path,
) -> pd.Series:
    """Rows whose number is not of the calling code of the row's country cell become
    `invalid_phone` (a Mexican `55 1234 5678` read with region US is a New Jersey number);
    country cells we do not know are named in a warning, never taken as a country."""
    codes, uniques = pd.factorize(cells.fillna("").str.strip())
    regions = [country_region(u) for u in uniques]
    unknown = [u for u, r in zip(uniques, regions, strict=True) if u and r is None]
    if unknown:
        warnings.append(
            f"{path}: column {name!r}: country value(s) not recognised, numbers there are read "
            f"with the campaign's default_region: {', '.join(map(repr, unknown[:5]))}"
        )
    has = e164.notna().to_numpy(dtype=bool)
    wrong = np.zeros(len(e164), dtype=bool)
    for k, region in enumerate(regions):
        if region is None:
            continue
        rows = has & (codes == k)
        if not rows.any():
            continue
        prefix = f"+{calling_code(region)}"
        bad = rows & ~e164.str.startswith(prefix).fillna(False).to_numpy(dtype=bool)
        if bad.any():
            wrong |= bad
            detail[bad] = [
                f"the row's {name!r} is {uniques[k]!r} ({region}, {prefix}) but the number "
                f"reads as {v}: write it with its country code" for v in e164[bad]
            ]
    reason[wrong] = "invalid_phone"
    return e164.mask(pd.Series(wrong), pd.NA)


# Values of a Do-Not-Call checkbox column that mean "may be called"; any other value holds
# the row back (a checkbox exported as 1/true/yes/x, or words nobody expected).
_FLAG_NO = frozenset({"", "0", "false", "no", "n", "f", "off", "unchecked", "0.0"})


def _mark_duplicates(
    numbers: list[pd.Series], cid: pd.Series, reason: np.ndarray, detail: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Dedupe: rows sharing any number or the contact id (transitively) are one person; the
    first row is dialed, the others become `duplicate` with `duplicate_of=<row>`, so nobody is
    called twice from one file. Rows already unusable take no part. Returns (the first row
    of each row's group, the rows that are a person: usable or duplicate)."""
    n = len(reason)
    usable = reason == None  # noqa: E711 (element-wise)
    first = person_groups([*numbers, (cid, False)], usable)
    dup = usable & (first != np.arange(n))
    reason[dup] = "duplicate"
    if dup.any():
        detail[dup] = np.char.add("duplicate_of=", (first[dup] + 1).astype(str)).astype(object)
    return first, usable | dup


# Values of a Do-Not-Call checkbox column that mean "may be called"; any other value holds
# the row back (a checkbox exported as 1/true/yes/x, or words nobody expected).
_FLAG_NO = frozenset({"", "0", "false", "no", "n", "f", "off", "unchecked", "0.0"})


def _hold_flagged(
    cells: pd.Series, name: str, first: np.ndarray, person: np.ndarray, reason: np.ndarray,
    detail: np.ndarray,
) -> None:
    """The CRM's own Do-Not-Call checkbox (Salesforce DoNotCall): the person asked not to be
    called, so every row of that person (duplicates included) is held back as `dnc_flag`; a
    value that is not plainly "no" counts as yes."""
    low = cells.fillna("").str.strip().str.lower()
    flagged = ~low.isin(list(_FLAG_NO)).to_numpy(dtype=bool)
    groups = np.unique(first[flagged & person])
    hit = person & np.isin(first, groups)
    reason[hit] = "dnc_flag"
    detail[hit] = f"the contacts file's {name!r} column says do not call this person"


def _reading_notes(
    path: Path, phone_idx: list[int], labels: list[str], roles: dict[str, int]
) -> list[str]:
    """Warnings on how the file was read that change who is called where: the order phone
    columns are tried in, and zones from area codes alone."""
    out = []
    if len(phone_idx) > 1:
        out.append(
            f"{path}: {len(phone_idx)} phone columns; each row is dialed on its first valid "
            f"number in this order: {', '.join(labels)}"
        )
    if not ({"state", "timezone", "postal_code"} & set(roles)):
        out.append(
            f"{path}: no state, time zone or postal code column: zones come from area codes only"
        )
    return out
