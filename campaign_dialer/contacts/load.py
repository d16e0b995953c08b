"""Load a contacts file: read it, take its roles, normalise every phone, one row per person.

`load_contacts` is a sequence of named steps, each a function below saying why it exists:
roles (which column is what), phones (every phone column, the first valid number dialed),
hints (where the person may be), country (a number that contradicts the row's country),
dedupe (one person, one call) and the CRM's own Do-Not-Call flag.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from campaign_dialer.contacts.country import calling_code, country_region
from campaign_dialer.contacts.csvfile import (
    UNREADABLE_COLUMNS,
    ContactsError,
    StringBatches,
    column_of,
    refuse_title_lines,
)
from campaign_dialer.contacts.dedupe import e164_keys, person_groups
from campaign_dialer.contacts.hints import normalize_hint
from campaign_dialer.contacts.ids import read_ids
from campaign_dialer.contacts.phones import check_region, normalize_phones
from campaign_dialer.contacts.roles import detect_by_values, resolve_roles, unique_names
from campaign_dialer.contacts.tables import PHONE_ROLES, ROLE_ALIASES, STRING
from campaign_dialer.memory import release_memory

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
    passthrough: bool = True,
) -> Contacts:
    """Read, normalise and de-duplicate a contacts CSV; raise `ContactsError` if unusable.

    `passthrough=False`: the input's own columns are not kept in the frame (`extra_columns`
    is empty): for a reader that writes no results (`check`; ten million rows: ~0.7 GB).

    Read in bounded batches (`StringBatches`): each batch's cells are read into the rows'
    columns, and what must be known across rows (every valid number and id for dedupe, the
    phone sources of the whole file, the first refusal) is kept apart and decided at the end,
    so a file read in batches of any size reads, and is refused, as when read whole."""
    path = Path(path)
    region = check_region(default_region)
    warnings: list[str] = []
    batches = StringBatches(path, encoding=encoding, warnings=warnings, error=ContactsError)
    header = batches.names
    if not header:
        raise ContactsError(path, "empty file: no header row")
    rows = iter(batches)
    try:
        roles, phone_idx, taken = _header_roles(path, header, columns, encoding)
    except ContactsError:
        batches.drain()  # a row that cannot be read is named first, as it always was
        raise
    leading = _leading_rows(rows, _BY_VALUES_ROWS)
    _value_roles(path, header, _sample(leading, len(header)), roles, taken, warnings)
    reading = _Reading(path, header, roles, phone_idx, columns, region, passthrough)
    try:
        for start, batch in itertools.chain(leading, rows):
            reading.add(start, batch)
        if not reading.parts:  # a header and no rows: the columns of an empty batch
            reading.add(0, pa.RecordBatch.from_pydict(
                {f"c{i}": pa.array([], pa.string()) for i in range(len(header))}
            ))
    except ContactsError:
        batches.drain()
        raise
    return reading.contacts(batches.encoding, warnings)


# roles taken by their values look at the file's first rows, as many as this
_BY_VALUES_ROWS = 5000


def _leading_rows(
    rows: Iterator[tuple[int, pa.RecordBatch]], want: int
) -> list[tuple[int, pa.RecordBatch]]:
    """The first batches, until they hold `want` rows (or the file ends)."""
    out: list[tuple[int, pa.RecordBatch]] = []
    have = 0
    while have < want:
        nxt = next(rows, None)
        if nxt is None:
            break
        out.append(nxt)
        have += nxt[1].num_rows
    return out


def _sample(leading: list[tuple[int, pa.RecordBatch]], width: int) -> pa.Table:
    """The leading batches as one table (every column, possibly no row)."""
    if leading:
        return pa.Table.from_batches([b for _, b in leading])
    return pa.table({f"c{i}": pa.array([], pa.string()) for i in range(width)})


def _header_roles(
    path: Path, header: list[str], columns: Mapping[str, object] | None,
    encoding: str | None,
) -> tuple[dict[str, int], list[int], set[int]]:
    """Roles by the explicit mapping, then the header aliases: (role -> column, phone columns
    in priority order, every column a role took). A file whose header names nothing we know,
    under a report's title lines, is refused naming the line of the real header: reading the
    title as the header would read no phone at all."""
    try:
        roles, phone_idx = resolve_roles(path, header, columns)
    except ContactsError:
        known = {a for r in (*PHONE_ROLES, "contact_id") for a in ROLE_ALIASES.get(r, ())}
        refuse_title_lines(path, known, ContactsError, encoding)
        raise
    return roles, phone_idx, set(roles.values()) | set(phone_idx)


def _value_roles(
    path: Path, header: list[str], sample: pa.Table, roles: dict[str, int], taken: set[int],
    warnings: list[str],
) -> None:
    """(State, time zone) by the values of the file's first rows, with a warning: a column
    taken by its values is a guess the user should see."""
    for role, i in detect_by_values(sample, header, roles, taken).items():
        roles[role] = i
        taken.add(i)
        warnings.append(
            f"{path}: column {header[i]!r} taken as the {role} column from its values "
            "(no header named it)"
        )


@dataclass
class _Part:
    """One batch of rows, read: every per-row column of the frame but the verdict, and what
    the verdict needs (numbers, problems, flags)."""

    n: int
    cid: pd.Series
    phones: _Phones
    e164: pd.Series  # the number dialed, after the country check
    wrong: np.ndarray  # per row: the number contradicts the row's country
    wrong_detail: np.ndarray  # per row: why (object; "" elsewhere)
    flagged: np.ndarray | None  # per row: the CRM's Do-Not-Call checkbox says yes
    keys: dict[str, np.ndarray]  # per phone source: its valid numbers as `e164_keys` (dedupe)
    tz_hint: pd.Series
    extras: dict[str, pd.Series]


class _Reading:
    """A contacts file being read, batch by batch: the parts read so far and what the whole
    file decides (its phone sources, a phone column holding no number, unknown countries)."""

    def __init__(
        self, path: Path, header: list[str], roles: dict[str, int], phone_idx: list[int],
        columns: Mapping[str, object] | None, region: str, passthrough: bool = True,
    ) -> None:
        self.path = path
        self.header = header
        self.roles = roles
        self.phone_idx = phone_idx
        self.region = region
        named = (columns or {}).get("phone")
        self.explicit = {header[i] for i in phone_idx} if named not in (None, "", []) else set()
        self.parts: list[_Part] = []
        self.rows = 0
        self.sources: dict[int, int] = {i: 1 for i in phone_idx}  # numbers per cell, at most
        self.any_valid: set[str] = set()  # phone sources holding a valid number
        self.first_bad: dict[str, tuple[int, str]] = {}  # source -> (row, cell) unreadable
        self.unknown_countries: dict[str, None] = {}  # in order of first appearance
        self.frame_names = unique_names(header) if passthrough else []

    def add(self, start: int, batch: pa.RecordBatch) -> None:
        """Read one batch (its first data row is `start` + 1). A contact id in scientific
        notation refuses the file here, naming its row."""
        n = batch.num_rows
        roles, header = self.roles, self.header

        def col(i: int) -> pd.Series:
            return column_of(batch, i)

        cid = _contact_ids(self.path, header, roles, col, n, start + 1)
        sources, counts = _phone_sources(header, self.phone_idx, col)
        for i, k in counts.items():
            self.sources[i] = max(self.sources[i], k)
        phones = _read_phones(sources, self.region, n, start + 1)
        for label, problem, raw in phones.notes:
            if problem is None:
                self.any_valid.add(label)
            elif label not in self.first_bad:
                self.first_bad[label] = (int(problem), str(raw))
        e164 = phones.e164
        wrong = np.zeros(n, dtype=bool)
        wrong_detail = np.full(n, "", dtype=object)
        if "country" in roles:
            e164 = _check_country(
                col(roles["country"]), header[roles["country"]], e164, wrong, wrong_detail,
                self.unknown_countries,
            )
        keys = {label: e164_keys(v) for label, v in phones.valid.items()}
        phones.valid.clear()  # kept as `keys` (8 bytes a number), not as strings
        flagged = None
        if "do_not_call" in roles:
            low = col(roles["do_not_call"]).fillna("").str.strip().str.lower()
            flagged = ~low.isin(list(_FLAG_NO)).to_numpy(dtype=bool)
        self.parts.append(_Part(
            n=n, cid=cid, phones=phones, e164=e164, wrong=wrong, wrong_detail=wrong_detail,
            flagged=flagged, tz_hint=_zone_hints(roles, col, n),
            keys=keys,
            extras={name: col(i) for i, name in enumerate(self.frame_names)},
        ))
        self.rows += n

    def labels(self) -> list[str]:
        """Every phone source of the file in priority order: its phone columns, then the
        further numbers of a cell ("Phone #2"), as many as the fullest cell holds."""
        header = self.header
        return [header[i] for i in self.phone_idx] + [
            f"{header[i]} #{k}" for i in self.phone_idx for k in range(2, self.sources[i] + 1)
        ]

    def contacts(self, encoding: str, warnings: list[str]) -> Contacts:
        """The file read whole: refusals the whole file decides, the verdicts, the frame."""
        path, header, roles = self.path, self.header, self.roles
        labels = self.labels()
        for label in labels:
            if label in self.explicit and label not in self.any_valid and (
                label in self.first_bad
            ):
                row, raw = self.first_bad[label]
                raise ContactsError(
                    path,
                    f"[inputs.columns] phone names {label!r}, but no cell of it holds a phone "
                    f"number ({raw!r} is not one): the wrong column?",
                    row=row,
                    column=label,
                )
        parts = self.parts
        n = self.rows

        def joined(series: list[pd.Series]) -> pd.Series:
            return one_chunk(pd.concat(series, ignore_index=True))

        def taken(get: Callable[[_Part], pd.Series],
                  forget: Callable[[_Part], None]) -> pd.Series:
            """A column of every part joined into one array, the parts' own copies let go of
            as it is made (the frame is made column by column, never beside its parts)."""
            series = [get(p) for p in parts]
            for p in parts:
                forget(p)
            out = joined(series)
            del series
            release_memory()  # the parts' pages, before the next column is made
            return out

        cid = joined([p.cid for p in parts])
        problem = joined([p.phones.problem for p in parts])
        first_bad = np.concatenate([p.phones.first_bad for p in parts])
        reason, detail = _unusable_rows(problem, first_bad, cid, len(labels) > 1)
        wrong = np.concatenate([p.wrong for p in parts])
        reason[wrong] = "invalid_phone"
        detail[wrong] = np.concatenate([p.wrong_detail for p in parts])[wrong]
        if "country" in roles and self.unknown_countries:
            warnings.append(
                f"{path}: column {header[roles['country']]!r}: country value(s) not "
                "recognised, numbers there are read with the campaign's default_region: "
                + ", ".join(map(repr, list(self.unknown_countries)[:5]))
            )
        e164 = joined([p.e164 for p in parts])
        valid: list[pd.Series | np.ndarray] = [
            np.concatenate([p.keys.get(label, np.full(p.n, -1, np.int64)) for p in parts])
            for label in labels
        ]
        first, person = _mark_duplicates(valid or [e164], cid, reason, detail)
        release_memory()  # dedupe's codes of every row
        if "do_not_call" in roles:
            flagged = np.concatenate([p.flagged for p in parts if p.flagged is not None])
            _hold_flagged(flagged, header[roles["do_not_call"]], first, person, reason, detail)
        warnings += _reading_notes(path, self.phone_idx, labels, roles)
        unreadable = [p.phones.unreadable for p in parts if len(p.phones.unreadable)]
        frame = pd.DataFrame(
            {
                "row": np.arange(1, n + 1, dtype=np.int64),
                "contact_id": cid,
                "phone_raw": taken(lambda p: p.phones.raw, lambda p: _forget(p.phones, "raw")),
                "phone_e164": e164,
                "tz_hint": taken(lambda p: p.tz_hint, lambda p: _forget(p, "tz_hint")),
                "reason": pd.array(reason, dtype=STRING),
                "detail": pd.array(detail, dtype=STRING),
                "phone_column": taken(lambda p: p.phones.column,
                                      lambda p: _forget(p.phones, "column")),
                "phone_extension": taken(lambda p: p.phones.extension,
                                         lambda p: _forget(p.phones, "extension")),
                "phone_others": taken(lambda p: p.phones.others,
                                      lambda p: _forget(p.phones, "others")),
            }
        )
        def extra(name: str) -> pd.Series:
            def forget(p: _Part) -> None:
                p.extras.pop(name, None)
            return taken(lambda p: p.extras[name], forget)

        extras = {name: extra(name) for name in self.frame_names}
        frame = pd.concat([frame, pd.DataFrame(extras)], axis=1)
        return Contacts(
            path=path,
            frame=frame,
            extra_columns=self.frame_names,
            roles={role: header[i] for role, i in roles.items()},
            phone_columns=labels,
            ignored_columns=[h for i, h in enumerate(header) if i not in (
                set(roles.values()) | set(self.phone_idx))],
            warnings=warnings,
            encoding=encoding,
            unreadable=(
                pd.concat(unreadable, ignore_index=True) if unreadable
                else pd.DataFrame(columns=UNREADABLE_COLUMNS)
            ),
        )


def _forget(holder: object, name: str) -> None:
    """A part's column dropped once joined (an empty one in its place)."""
    setattr(holder, name, _NO_TEXT)


_NO_TEXT = pd.Series([], dtype=STRING)


def one_chunk(s: pd.Series) -> pd.Series:
    """A text column read in batches as one arrow array (copied once, here): every later
    reader of it as arrow (the plan's columns, the rules, the results) then takes the
    frame's own array instead of joining the batches again (a copy each time)."""
    if not isinstance(s.dtype, pd.StringDtype) or s.dtype.storage != "pyarrow":
        return s
    arr = pa.array(s)
    if not isinstance(arr, pa.ChunkedArray) or arr.num_chunks <= 1:
        return s
    return pd.Series(pd.array(arr.combine_chunks(), dtype=s.dtype), index=s.index, name=s.name)


def _contact_ids(
    path: Path, header: list[str], roles: dict[str, int], col: Callable[[int], pd.Series],
    n: int, first_row: int,
) -> pd.Series:
    """The contact id per row (<NA> when blank or without the column), read as consent reads
    it (`read_ids`), so the same person keys the same in both files."""
    if "contact_id" not in roles:
        return pd.Series(pd.NA, index=range(n), dtype=STRING)
    return read_ids(
        path, col(roles["contact_id"]), header[roles["contact_id"]], ContactsError, first_row
    )


@dataclass
class _Phones:
    """Every phone source of a batch, read: what the row is dialed on and why not."""

    raw: pd.Series  # the cell dialed, or the first unreadable one, or ""
    e164: pd.Series  # the number dialed (<NA>: none valid)
    extension: pd.Series
    problem: pd.Series  # <NA> when valid, "blank", or why the cell is not a number
    column: pd.Series  # the label the number was taken from
    first_bad: np.ndarray  # per row: the label of the first unreadable cell, or None (object)
    valid: dict[str, pd.Series]  # per source: its valid E.164 numbers (dedupe runs over all)
    others: pd.Series  # the row's other valid numbers, space-separated
    unreadable: pd.DataFrame  # row, column, value, problem
    # per source: (label, None) when it holds a valid number, else (label, row, cell) of its
    # first unreadable cell, when it has one
    notes: list[tuple[str, int | None, str | None]]


def _phone_sources(
    header: list[str], phone_idx: list[int], col: Callable[[int], pd.Series]
) -> tuple[list[tuple[str, pd.Series]], dict[int, int]]:
    """(label, cells) per phone source in priority order, and per phone column the most
    numbers one cell holds. Google Contacts writes several numbers of one label as "A ::: B":
    each is a number of the row, the first one where it stands, the others ("Phone #2") after
    every column, so no number is left unread."""
    sources: list[tuple[str, pd.Series]] = []
    extra_sources: list[tuple[str, pd.Series]] = []
    counts: dict[int, int] = {}
    for i in phone_idx:
        raw = col(i)
        multi = raw.str.contains(":::", regex=False).fillna(False)
        if not multi.any():
            sources.append((header[i], raw))
            continue
        parts = raw.str.split(r"\s*:::\s*", regex=True)
        sources.append((header[i], parts.str[0].astype(STRING)))
        counts[i] = int(parts.str.len().max())
        for j in range(1, counts[i]):
            extra_sources.append((f"{header[i]} #{j + 1}", parts.str[j].astype(STRING)))
    return sources + extra_sources, counts


def _read_phones(
    sources: list[tuple[str, pd.Series]], region: str, n: int, first_row: int
) -> _Phones:
    """Phones: every phone source normalised (`normalize_phones`); a row is dialed on its
    first valid number, in source priority, and keeps its first unreadable cell when none is
    valid (named in `unreadable`, never dropped)."""
    phone_raw = pd.Series("", index=range(n), dtype=STRING)
    e164 = pd.Series(pd.NA, index=range(n), dtype=STRING)
    extension = pd.Series(pd.NA, index=range(n), dtype=STRING)
    problem = pd.Series("blank", index=range(n), dtype=STRING)
    chosen = np.full(n, -1, dtype=np.int64)
    first_bad = np.full(n, -1, dtype=np.int64)
    valid_cols: dict[str, pd.Series] = {}
    unreadable_parts: list[pd.DataFrame] = []
    notes: list[tuple[str, int | None, str | None]] = []
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
        if valid.any():
            notes.append((label, None, None))
        elif bad_np.any():
            r = int(np.flatnonzero(bad_np)[0])
            notes.append((label, r + first_row, str(raw.iat[r])))
        note = bad_np & (first_bad < 0)
        first_bad[note] = k
        valid_cols[label] = norm["e164"]
        if bad_np.any():
            unreadable_parts.append(
                pd.DataFrame(
                    {
                        "row": np.flatnonzero(bad_np) + first_row,
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
    labels = np.array([label for label, _ in sources] + [None], dtype=object)
    column = pd.Series(pd.array(labels[chosen], dtype=STRING))
    unreadable = (
        pd.concat(unreadable_parts, ignore_index=True).sort_values("row", kind="stable")
        if unreadable_parts
        else pd.DataFrame(columns=UNREADABLE_COLUMNS)
    )
    return _Phones(
        raw=phone_raw, e164=e164, extension=extension, problem=problem, column=column,
        first_bad=labels[first_bad], valid=valid_cols,
        others=_other_numbers(list(valid_cols.values()), e164, n),
        unreadable=unreadable.reset_index(drop=True), notes=notes,
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


def _unusable_rows(
    problem: pd.Series, first_bad: np.ndarray, cid: pd.Series, several: bool
) -> tuple[np.ndarray, np.ndarray]:
    """(reason, detail) per row for the rows nothing can be dialed on: `blank_phone` only
    when there is no contact id either (a row with an id is callable by it); `invalid_phone`
    even with an id (we will not guess which number the platform would ring), naming the
    source of the first unreadable cell when the file has `several`."""
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
        if several:
            where = np.array(
                [f" ({h})" if h is not None else "" for h in first_bad[invalid]], dtype=object
            )
            detail[invalid] = detail[invalid] + where
    return reason, detail


def _check_country(
    cells: pd.Series, name: str, e164: pd.Series, wrong: np.ndarray, detail: np.ndarray,
    unknown: dict[str, None],
) -> pd.Series:
    """Rows whose number is not of the calling code of the row's country cell are marked
    `wrong` (they become `invalid_phone`: a Mexican `55 1234 5678` read with region US is a
    New Jersey number); country cells we do not know are added to `unknown` (named in a
    warning), never taken as a country."""
    codes, uniques = pd.factorize(cells.fillna("").str.strip())
    regions = [country_region(u) for u in uniques]
    for u, r in zip(uniques, regions, strict=True):
        if u and r is None:
            unknown.setdefault(u, None)
    has = e164.notna().to_numpy(dtype=bool)
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
    return e164.mask(pd.Series(wrong), pd.NA)


def _mark_duplicates(
    numbers: list[pd.Series | np.ndarray], cid: pd.Series, reason: np.ndarray,
    detail: np.ndarray,
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
    flagged: np.ndarray, name: str, first: np.ndarray, person: np.ndarray, reason: np.ndarray,
    detail: np.ndarray,
) -> None:
    """The CRM's own Do-Not-Call checkbox (Salesforce DoNotCall): the person asked not to be
    called, so every row of that person (duplicates included) is held back as `dnc_flag`; a
    value that is not plainly "no" counts as yes (`flagged`, read per batch)."""
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
