"""Time zone, state and postal code cells as a `tz_hint` the calling window reads."""

from __future__ import annotations

import functools
import re
import unicodedata
import zoneinfo
from datetime import datetime, timedelta

from campaign_dialer.contacts.tables import (
    STATE_BY_NAME,
    STATE_CODES,
    ZONE_WORDS,
    shipped_rows,
)


@functools.lru_cache(maxsize=1)
def _zone_names() -> dict[str, str]:
    return {z.lower(): z for z in zoneinfo.available_timezones()}


@functools.lru_cache(maxsize=1)
def _named_zones() -> dict[str, tuple[str, ...]]:
    """Windows and Rails zone names (`data/zone_names.csv`), lower-cased -> IANA zones."""
    out: dict[str, set[str]] = {}
    for r in shipped_rows("zone_names.csv"):
        out.setdefault(r["name"].strip().lower(), set()).update(r["zones"].split())
    return {k: tuple(sorted(v)) for k, v in out.items()}


@functools.lru_cache(maxsize=1)
def _postal_table() -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
    """ZIP prefix (3 digits) or "CA:<letter>" -> (states, zones); `data/postal_zones.csv`."""
    return {
        r["prefix"]: (tuple(r["states"].split()), tuple(r["zones"].split()))
        for r in shipped_rows("postal_zones.csv")
    }


def postal_info(token: str) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """(states, zones) of a "zip:<prefix>" hint part; None when unknown."""
    return _postal_table().get(token[4:]) if token.startswith("zip:") else None


@functools.lru_cache(maxsize=1)
def _nanp_zones() -> tuple[str, ...]:
    zones: set[str] = set()
    for r in shipped_rows("area_codes.csv"):
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
        if low in ZONE_WORDS:
            return ";".join(ZONE_WORDS[low])
        named = _DISPLAY_PREFIX.sub("", v).strip().lower()
        if named in _named_zones():
            return ";".join(_named_zones()[named])
        if named in ZONE_WORDS:
            return ";".join(ZONE_WORDS[named])
        m = _OFFSET_HINT.match(v)
        if m:
            zones = _offset_zones(m.group(1), int(m.group(2)), int(m.group(3) or 0))
            if zones:
                return zones
        if low in ("gmt", "z", "utc+0", "utc-0", "gmt+0"):
            return "UTC"
    if v.upper() in STATE_CODES and len(v) == 2:
        return v.upper()
    if low in STATE_BY_NAME:
        return STATE_BY_NAME[low]
    if kind == "state" and low in ZONE_WORDS:
        return ";".join(ZONE_WORDS[low])
    if kind == "state" and low in _zone_names() and "/" in v:
        return _zone_names()[low]
    return v


def hint_recognised(value: str, kind: str) -> bool:
    h = normalize_hint(value, kind)
    return h is not None and h != unicodedata.normalize("NFKC", value).strip()

