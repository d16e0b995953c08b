"""Which input column plays which role: an explicit `[inputs.columns]` mapping, the shipped
header aliases, then (state, time zone) the values themselves."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from campaign_dialer.contacts.csvfile import ContactsError
from campaign_dialer.contacts.csvfile import canon as canon_header
from campaign_dialer.contacts.hints import hint_recognised, normalize_hint
from campaign_dialer.contacts.tables import (
    PHONE_ROLES,
    ROLE_ALIASES,
    STANDARD_COLUMNS,
    STATE_BY_NAME,
    STATE_CODES,
)


def unique_names(header: list[str]) -> list[str]:
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
    loose = [i for i, h in enumerate(header) if canon_header(h) == canon_header(wanted)]
    hits = exact or loose
    if len(hits) != 1:
        problem = "is not in the header" if not hits else "matches several header columns"
        raise ContactsError(
            path,
            f"[inputs.columns] {role} = {wanted!r} {problem} (header: {', '.join(header)})",
            column=wanted,
        )
    return hits[0]


def resolve_roles(
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
    canon = [canon_header(h) for h in header]
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


def detect_by_values(
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
            c = canon_header(h)
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
                    if hint_recognised(v, "timezone") and v.strip().upper() not in STATE_CODES
                    and v.strip().lower() not in STATE_BY_NAME
                )
            if hits >= 0.8 * len(values):
                out[role] = i
                break
    return out

