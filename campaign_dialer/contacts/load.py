"""Load a contacts file: read it, take its roles, normalise every phone, one row per person."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from campaign_dialer.contacts.country import calling_code, country_region
from campaign_dialer.contacts.csvfile import ContactsError, read_strings, refuse_title_lines
from campaign_dialer.contacts.csvfile import first_bad as refuse_first
from campaign_dialer.contacts.hints import normalize_hint
from campaign_dialer.contacts.ids import read_ids
from campaign_dialer.contacts.phones import _check_region, normalize_phones
from campaign_dialer.contacts.roles import _detect_by_values, _resolve_roles, _unique_names
from campaign_dialer.contacts.tables import PHONE_ROLES, ROLE_ALIASES, STRING


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
    header, table, enc = read_strings(
        path, encoding=encoding, warnings=warnings, error=ContactsError, allow_empty=False
    )
    try:
        roles, phone_idx = _resolve_roles(path, header, columns)
    except ContactsError:
        # the header under a report's title lines ("Contacts report,,,"): say where it is
        known = {a for r in (*PHONE_ROLES, "contact_id") for a in ROLE_ALIASES.get(r, ())}
        refuse_title_lines(path, known, ContactsError, encoding)
        raise
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
        cid = read_ids(path, col(roles["contact_id"]), header[roles["contact_id"]], ContactsError)
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
    if "country" in roles:
        e164 = _check_country(
            col(roles["country"]), header[roles["country"]], e164, reason, detail, warnings, path
        )
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

