"""Compliance: who may be called, and when. Do-Not-Call, consent, calling hours.

Pure: no network, no logging. The engine re-checks every call here at the moment of dialing
(`Gate.check`); `build_plan` gives the same answers for a whole contacts file at once (tested
row by row). Choices a careful compliance engineer makes here, and why (each one is tested):

- Fail closed. A DNC or consent file we cannot read rejects the campaign (`ComplianceError`,
  exit 65). An unknown time zone means no call unless the campaign allows it. No consent on
  record means no call when `require_consent` is on.
- DNC entries are normalised like contacts (the same spreadsheet spellings). An entry with 7+
  digits that cannot be read as exactly one complete number (`4.15555E+09`, two numbers, a
  digit missing) rejects the file naming row and column: someone meant a number, we cannot
  tell which. Other unreadable entries (text, an unassigned but complete number, which no
  valid number we call can equal) are counted and listed (`DncList.ignored`/`unreadable`,
  shown by `check`); a list with no readable number at all is rejected (wrong column?). The
  same goes for the phone of a revocation; an unreadable grant is listed and counts for
  nothing. A headerless list may be one column of numbers or the FTC layout "area code,number".
- The DNC ledger (numbers the platform answered `409 dnc_listed` for, opt-outs) is shared by
  campaigns, appended under an `fcntl` lock with fsync, and re-read at every dial-time check.
- Consent: the latest event *by time* at or before the call decides; file order means nothing.
  Ties at the same instant go to revoke, and between grants to the earliest expiry. A grant
  whose expiry is at or before the call is `consent_expired`; a future-dated event does not
  count yet. Events match by phone and by contact_id (a revocation under either applies).
  A revocation is honoured even when `require_consent` is off: it is an opt-out. Timestamps
  without a UTC offset are rejected (a naive time is ambiguous by up to a day).
- Calling window: a call is inside only if it is inside in *every* candidate zone: every zone of
  the number's area code (the shipped `data/area_codes.csv`, built from `phonenumbers` and
  unioned over exchanges and overlays), plus the contact's own zone/state hint. Outside NANP,
  the library's longest time-zone prefix unioned with the prefixes under it (a number known
  only at country level gets every zone of its country, so toll-free numbers never share a
  window: pending without a `next_open`). A hint we cannot interpret makes the zone unknown.
- The window is the campaign's, clamped to the US federal 08:00-21:00 (applied to every number:
  a bound a campaign cannot widen), then narrowed by the stricter rules (`data/state_rules.csv`:
  hours, Saturdays, Sundays, holidays, sources and date in the file) of every state the area
  code or the hint points to. Holidays: US federal (5 U.S.C. 6103), both the actual and the
  observed date, plus the state-only days listed in the table. Canada: the CRTC telemarketing
  hours for every province. Start inclusive, end exclusive: 21:00:00 is already too late.
- A row may have several numbers (`phone_others`): a DNC entry or a revocation on any of them
  holds the row back (`Gate.check(other_phones=...)`); consent and window are the dialed one's.
- Contacts with a contact_id but no phone are callable by contact_id: they cannot be checked
  against local DNC lists (no number; the evidence says so) and have no zone unless the CSV
  gives one (so, by default, they are not callable). The platform's own DNC check still applies.
"""

from __future__ import annotations

import bisect
import codecs
import csv
import fcntl
import functools
import io
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from phonenumbers.tzdata import TIMEZONE_DATA

from campaign_dialer.contacts import (
    PHONE_ROLES,
    ROLE_ALIASES,
    STATE_CODES,
    STRING,
    Contacts,
    csv_source,
    load_contacts,
    normalize_phones,
    postal_info,
    sniff_encoding,
)
from campaign_dialer.errors import InputError

__all__ = [
    "US_FEDERAL_WINDOW",
    "CallingWindow",
    "ComplianceError",
    "ConsentDecision",
    "ConsentLedger",
    "DncLedger",
    "DncList",
    "Gate",
    "Verdict",
    "WindowDecision",
    "build_plan",
    "plan_columns",
    "plan_columns_frame",
    "plan_counts",
    "holidays_for",
    "load_inputs",
    "max_calls_per_24h",
    "state_for_number",
    "states_for_number",
    "us_federal_holidays",
]

US_FEDERAL_WINDOW = (time(8), time(21))
DATA = Path(__file__).resolve().parent / "data"
LOOKAHEAD_DAYS = 14  # how far `next_open` searches; beyond that it is None
EVIDENCE_KEYS = (
    "consent_event_at",
    "consent_expires_at",
    "consent_source",
    "local_times",
    "zones",
    "dnc_lists_checked",
    "rnd_queried_at",
)
NO_PHONE_DNC = "(no phone: local lists not checked)"
# 16 CFR 310.4(b)(3)(iv): the safe harbour needs a national registry copy at most 31 days old
# at the moment of the call; `check` warns some days ahead so the list is renewed in time.
DNC_MAX_AGE_DAYS = 31
DNC_WARN_AGE_DAYS = 25
DATED_KINDS = frozenset({"national", "state"})


@dataclass(frozen=True)
class DncListMeta:
    """What a DNC file is and when it was obtained (`[[inputs.dnc_lists]]`)."""

    kind: str  # national | state | internal | vendor
    state: str | None = None
    as_of: date | None = None
    key: str = ""  # the campaign key naming it, for messages


def dnc_age_days(as_of: date, at: datetime) -> int:
    """Whole days from the list's date to the moment of dialing (UTC calendar days)."""
    return (_aware(at).astimezone(UTC).date() - as_of).days


class ComplianceError(InputError):
    """A DNC or consent file cannot be used: the CLI exits 65 before any call."""


_E164 = re.compile(r"\+[1-9]\d{5,14}")


def _aware(at: datetime, name: str = "at") -> datetime:
    if not isinstance(at, datetime):
        raise TypeError(f"{name} must be a datetime, got {type(at).__name__}")
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (got naive {at.isoformat()})")
    return at


# --------------------------------------------------------------------------------------------
# Shipped tables
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _AreaCode:
    region: str
    states: tuple[str, ...]
    zones: tuple[str, ...]


def _data_rows(name: str) -> list[dict[str, str]]:
    text = (DATA / name).read_text(encoding="utf-8")
    lines = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    return list(csv.DictReader(lines))


@functools.lru_cache(maxsize=1)
def _area_codes() -> dict[str, _AreaCode]:
    return {
        r["npa"]: _AreaCode(r["region"], tuple(r["states"].split()), tuple(r["zones"].split()))
        for r in _data_rows("area_codes.csv")
    }


@functools.lru_cache(maxsize=1)
def _state_zones() -> dict[str, tuple[str, ...]]:
    """Every zone of every area code of a state: the candidates for a state hint."""
    acc: dict[str, set[str]] = {}
    for ac in _area_codes().values():
        for st in ac.states:
            acc.setdefault(st, set()).update(ac.zones)
    return {st: tuple(sorted(z)) for st, z in acc.items()}


Interval = tuple[time, time]
_NO_CALLS = "none"


@dataclass(frozen=True)
class _StateRule:
    state: str
    weekday: Interval | None | str  # None = no state limit, "none" = no calls
    saturday: Interval | None | str
    sunday: Interval | None | str
    holiday: Interval | None | str
    holidays: tuple[str, ...]
    max_24h: int | None
    source: str


def _hours(text: str, where: str) -> Interval | None | str:
    text = text.strip()
    if not text:
        return None
    if text == "none":
        return _NO_CALLS
    m = re.fullmatch(r"(\d\d):(\d\d)-(\d\d):(\d\d)", text)
    if not m:
        raise ValueError(f"{where}: bad hours {text!r}")
    a, b, c, d = (int(x) for x in m.groups())
    end = time(23, 59, 59) if c == 24 else time(c, d)
    return (time(a, b), end)


RULES_MAX_AGE_DAYS = 180  # `check` warns when the state rules table is older
_TABLE_DATE = re.compile(r"#\s*table_date:\s*(\S+)")
_RULE_COLUMNS = ("state", "weekday", "saturday", "sunday", "holiday", "holidays", "max_24h",
                 "source")


@dataclass(frozen=True, eq=False)
class StateRules:
    """A table of state calling rules and the day it was last reviewed (`# table_date:`)."""

    rules: Mapping[str, _StateRule]
    table_date: date
    origin: str  # "built-in" or the team's file

    def get(self, state: str) -> _StateRule | None:
        return self.rules.get(state)

    def age_days(self, at: datetime) -> int:
        return (_aware(at).astimezone(UTC).date() - self.table_date).days


def parse_state_rules(text: str, origin: str) -> StateRules:
    """Read and validate a rules table; ValueError names the row and the column."""
    lines = text.splitlines()
    found = [m.group(1) for ln in lines if (m := _TABLE_DATE.match(ln.strip()))]
    if not found:
        raise ValueError(f"{origin}: no '# table_date: YYYY-MM-DD' line (the day it was reviewed)")
    try:
        table_date = date.fromisoformat(found[0])
    except ValueError:
        raise ValueError(f"{origin}: table_date {found[0]!r} is not a date YYYY-MM-DD") from None
    data = [(i + 1, ln) for i, ln in enumerate(lines) if ln.strip() and not ln.startswith("#")]
    if not data:
        raise ValueError(f"{origin}: no header row")
    reader = csv.DictReader([ln for _, ln in data])
    missing = [c for c in _RULE_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise ValueError(f"{origin}: missing column(s) {', '.join(missing)}")
    rules: dict[str, _StateRule] = {}
    for (line_no, _), r in zip(data[1:], reader, strict=False):
        where = f"{origin} line {line_no}"
        st = (r["state"] or "").strip()
        if not re.fullmatch(r"[A-Z]{2}", st):
            raise ValueError(f"{where}, column 'state': {st!r} is not a two-letter code")
        cap = (r["max_24h"] or "").strip()
        if cap and not (cap.isdigit() and int(cap) >= 1):
            raise ValueError(f"{where}, column 'max_24h': {cap!r} is not a whole number >= 1")
        holidays = tuple((r["holidays"] or "").split())
        for spec in holidays:
            try:
                _holiday_spec(spec, 2026)
            except (ValueError, KeyError):
                raise ValueError(f"{where}, column 'holidays': unknown holiday {spec!r}") from None
        rules[st] = _StateRule(
            state=st,
            weekday=_hours(r["weekday"] or "", f"{where}, column 'weekday'"),
            saturday=_hours(r["saturday"] or "", f"{where}, column 'saturday'"),
            sunday=_hours(r["sunday"] or "", f"{where}, column 'sunday'"),
            holiday=_hours(r["holiday"] or "", f"{where}, column 'holiday'"),
            holidays=holidays,
            max_24h=int(cap) if cap else None,
            source=r["source"] or "",
        )
    return StateRules(rules, table_date, origin)


@functools.lru_cache(maxsize=1)
def builtin_state_rules() -> StateRules:
    return parse_state_rules((DATA / "state_rules.csv").read_text(encoding="utf-8"), "built-in")


def load_state_rules(path: Path) -> StateRules:
    """`compliance.rules_file`: a team's own table, validated like the built-in one."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ComplianceError(path, f"cannot read the rules table: {e}") from None
    try:
        return parse_state_rules(text, str(path))
    except ValueError as e:
        raise ComplianceError(path, str(e).removeprefix(f"{path}: ")) from None


def _state_rules() -> Mapping[str, _StateRule]:
    return builtin_state_rules().rules


def _npa(e164: str) -> str | None:
    if len(e164) == 12 and e164.startswith("+1"):
        return e164[2:5]
    return None


def states_for_number(phone_e164: str) -> tuple[str, ...]:
    """Every US state / CA province the number's area code may be in (most likely first)."""
    npa = _npa(phone_e164)
    ac = _area_codes().get(npa) if npa else None
    return ac.states if ac else ()


def state_for_number(phone_e164: str) -> str | None:
    """US/CA state or province of the area code (the most likely one); territories: PR, GU..."""
    states = states_for_number(phone_e164)
    return states[0] if states else None


def max_calls_per_24h(phone_e164: str, rules: StateRules | None = None) -> int | None:
    """The strictest per-24 h call cap among the area code's states (FL/OK/MD: 3), else None."""
    table = rules or builtin_state_rules()
    caps = [
        rule.max_24h
        for st in states_for_number(phone_e164)
        if (rule := table.get(st)) is not None and rule.max_24h is not None
    ]
    return min(caps) if caps else None


# --------------------------------------------------------------------------------------------
# Holidays
# --------------------------------------------------------------------------------------------


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    """n-th (1-based) weekday of a month; n = -1 for the last one."""
    if n > 0:
        first = date(year, month, 1)
        return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))
    nxt = date(year + (month == 12), month % 12 + 1, 1)
    last = nxt - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def _easter(year: int) -> date:
    """Gregorian Easter Sunday (anonymous Gregorian algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = b // 4, b % 4
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = c // 4, c % 4
    ll = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * ll) // 451
    month = (h + ll - 7 * m + 114) // 31
    day = (h + ll - 7 * m + 114) % 31 + 1
    return date(year, month, day)


def _observed(d: date) -> set[date]:
    """The day itself and, for a weekend day, the Friday/Monday it is observed on."""
    if d.weekday() == 5:
        return {d, d - timedelta(days=1)}
    if d.weekday() == 6:
        return {d, d + timedelta(days=1)}
    return {d}


@functools.lru_cache(maxsize=256)
def us_federal_holidays(year: int) -> frozenset[date]:
    """US federal holidays (5 U.S.C. 6103) of `year`: actual and observed dates.

    Both dates count: a state that forbids calls "on a holiday" may mean either, so neither is
    called. Juneteenth from 2021. New Year's Day of `year + 1` observed on Dec 31 is included.
    """
    days: set[date] = set()
    fixed = [(1, 1), (7, 4), (11, 11), (12, 25)] + ([(6, 19)] if year >= 2021 else [])
    for m, d in fixed:
        days |= _observed(date(year, m, d))
    days |= {x for x in _observed(date(year + 1, 1, 1)) if x.year == year}
    days |= {
        _nth_weekday(year, 1, 0, 3),  # Martin Luther King Jr. Day
        _nth_weekday(year, 2, 0, 3),  # Washington's Birthday
        _nth_weekday(year, 5, 0, -1),  # Memorial Day
        _nth_weekday(year, 9, 0, 1),  # Labor Day
        _nth_weekday(year, 10, 0, 2),  # Columbus Day
        _nth_weekday(year, 11, 3, 4),  # Thanksgiving
    }
    return frozenset(x for x in days if x.year == year)


_MONTHS = {
    m: i
    for i, m in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
    )
}


def _holiday_spec(spec: str, year: int) -> set[date]:
    if spec == "federal":
        return set(us_federal_holidays(year))
    if spec.startswith("easter-"):
        return {_easter(year) - timedelta(days=int(spec[7:]))}
    m = re.fullmatch(r"([a-z]{3})-(\d\d)", spec)
    if m:
        return _observed(date(year, _MONTHS[m.group(1)], int(m.group(2))))
    m = re.fullmatch(r"([a-z]{3})-mon([1-5L])", spec)
    if m:
        n = -1 if m.group(2) == "L" else int(m.group(2))
        return {_nth_weekday(year, _MONTHS[m.group(1)], 0, n)}
    raise ValueError(f"state_rules.csv: unknown holiday {spec!r}")


@functools.lru_cache(maxsize=1024)
def holidays_for(state: str, year: int, rules: StateRules | None = None) -> frozenset[date]:
    """The days `state`'s holiday rule applies to in `year` (empty if it has none)."""
    rule = (rules or builtin_state_rules()).get(state)
    if rule is None:
        return frozenset()
    days: set[date] = set()
    for spec in rule.holidays:
        days |= _holiday_spec(spec, year)
    return frozenset(days)


# --------------------------------------------------------------------------------------------
# Calling window
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WindowDecision:
    ok: bool
    reason: str | None  # None | "outside_window" | "unknown_timezone"
    next_open: datetime | None  # UTC; None when ok, unknown, or not open within 14 days
    zones: tuple[str, ...]
    local_times: tuple[str, ...]
    detail: str = ""


@functools.lru_cache(maxsize=1024)
def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


@functools.lru_cache(maxsize=1)
def _tz_keys() -> list[str]:
    return sorted(TIMEZONE_DATA)


@functools.lru_cache(maxsize=1 << 20)
def _area_info(e164: str) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """(zones, states) of the number's area; None when nothing is known.

    NANP: the shipped area-code table. Elsewhere (and NANP codes not in it, e.g. toll-free):
    the longest `phonenumbers` time-zone prefix of the number, unioned with every longer prefix
    under it (its exchanges), so a fallback to one zone never hides the others. A number known
    only at country level gets every zone of its country, as the library says.
    """
    npa = _npa(e164)
    if npa is not None and npa in _area_codes():
        ac = _area_codes()[npa]
        return ac.zones, ac.states
    digits = e164.lstrip("+")
    key = next((digits[:n] for n in range(len(digits), 0, -1) if digits[:n] in TIMEZONE_DATA), None)
    if key is None:
        return None
    zones = set(TIMEZONE_DATA[key])
    keys = _tz_keys()
    i = bisect.bisect_right(keys, key)
    while i < len(keys) and keys[i].startswith(key):
        zones.update(TIMEZONE_DATA[keys[i]])
        i += 1
    zones.discard("Etc/Unknown")
    return (tuple(sorted(zones)), ()) if zones else None


@functools.lru_cache(maxsize=4096)
def _hint_info(tz_hint: str) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """(zones, states) named by a hint; None if any part of it cannot be interpreted."""
    zones: set[str] = set()
    states: set[str] = set()
    for part in (p.strip() for p in tz_hint.split(";")):
        if not part:
            continue
        if part.upper() in STATE_CODES and len(part) == 2:
            st = part.upper()
            if st not in _state_zones():
                return None
            zones.update(_state_zones()[st])
            states.add(st)
        elif part.startswith("zip:"):
            info = postal_info(part)
            if info is None:
                return None
            p_states, p_zones = info
            for st in p_states:
                if not p_zones and st not in _state_zones():
                    return None
                zones.update(p_zones or _state_zones()[st])
            states.update(p_states)
        elif "/" in part and _zone(part) is not None:
            zones.add(part)
        elif part.upper() == "UTC" and _zone("UTC") is not None:
            zones.add("UTC")
        else:
            return None
    return tuple(sorted(zones)), tuple(sorted(states))


def _fmt(t: time) -> str:
    return t.strftime("%H:%M")


class CallingWindow:
    """When a number may be rung: the campaign's hours, clamped and narrowed (see module doc)."""

    def __init__(
        self,
        start: time,
        end: time,
        *,
        state_rules: bool = True,
        allow_unknown_timezone: bool = False,
        rules: StateRules | None = None,
    ) -> None:
        if start.tzinfo is not None or end.tzinfo is not None:
            raise ValueError("calling window times are local wall-clock times, without tzinfo")
        lo, hi = US_FEDERAL_WINDOW
        eff = (max(start, lo), min(end, hi))
        if not eff[0] < eff[1]:
            raise ValueError(
                f"calling window {_fmt(start)}-{_fmt(end)} is empty inside the federal "
                f"{_fmt(lo)}-{_fmt(hi)}"
            )
        self.requested = (start, end)
        self.effective: Interval = eff
        self.clamped = eff != (start, end)
        self.state_rules = state_rules
        self.allow_unknown_timezone = allow_unknown_timezone
        self.rules = rules or builtin_state_rules()  # `compliance.rules_file` or the shipped one

    def __repr__(self) -> str:
        s, e = self.effective
        return (
            f"CallingWindow({_fmt(s)}-{_fmt(e)}, state_rules={self.state_rules}, "
            f"allow_unknown_timezone={self.allow_unknown_timezone})"
        )

    # -- candidates ----------------------------------------------------------------------

    def candidates(
        self, phone_e164: str | None, tz_hint: str | None
    ) -> tuple[tuple[str, ...], tuple[str, ...], str]:
        """(zones, rule states, why unknown) — zones () means unknown."""
        zones: set[str] = set()
        states: set[str] = set()
        if tz_hint is not None and tz_hint.strip():
            hint = _hint_info(tz_hint)
            if hint is None:
                return (), (), f"time zone hint {tz_hint!r} not recognised"
            zones.update(hint[0])
            states.update(hint[1])
        if phone_e164:
            area = _area_info(phone_e164)
            if area is not None:
                zones.update(area[0])
                states.update(area[1])
        if not zones:
            why = "no phone and no time zone hint" if not phone_e164 else "no time zone known"
            return (), (), why
        if any(_zone(z) is None for z in zones):
            bad = sorted(z for z in zones if _zone(z) is None)
            return (), (), f"zone {bad[0]} not in the installed tz database"
        return tuple(sorted(zones)), tuple(sorted(states)), ""

    def zones_for(self, phone_e164: str | None, tz_hint: str | None) -> tuple[str, ...]:
        """Candidate IANA zones, () if unknown."""
        return self.candidates(phone_e164, tz_hint)[0]

    # -- rules ---------------------------------------------------------------------------

    def hours_on(self, day: date, states: Iterable[str]) -> Interval | None:
        """Allowed local hours on `day` for a number under `states`' rules; None = no calls."""
        start, end = self.effective
        if self.state_rules:
            for st in states:
                rule = self.rules.get(st)
                if rule is None:
                    continue
                wd = day.weekday()
                limits = [rule.weekday if wd < 5 else rule.saturday if wd == 5 else rule.sunday]
                if rule.holiday is not None and day in holidays_for(st, day.year, self.rules):
                    limits.append(rule.holiday)
                for lim in limits:
                    if lim == _NO_CALLS:
                        return None
                    if isinstance(lim, tuple):
                        start, end = max(start, lim[0]), min(end, lim[1])
        return (start, end) if start < end else None

    def _evaluate(
        self, zones: tuple[str, ...], states: tuple[str, ...], at: datetime
    ) -> WindowDecision:
        locals_ = []
        closed = []
        for z in zones:
            zi = _zone(z)
            assert zi is not None
            local = at.astimezone(zi)
            locals_.append(local.isoformat(timespec="minutes"))
            hours = self.hours_on(local.date(), states)
            if hours is None or not (hours[0] <= local.time().replace(tzinfo=None) < hours[1]):
                closed.append(z)
        if not closed:
            return WindowDecision(True, None, None, zones, tuple(locals_))
        nxt = self._next_open(zones, states, at)
        where = ", ".join(closed)
        detail = f"closed in {where}" + ("" if nxt else f"; not open within {LOOKAHEAD_DAYS} days")
        return WindowDecision(False, "outside_window", nxt, zones, tuple(locals_), detail)

    def open_intervals(
        self, zone: str, states: tuple[str, ...], at: datetime, days: int = LOOKAHEAD_DAYS
    ) -> list[tuple[datetime, datetime]]:
        """The window's UTC intervals in `zone` from the day before `at`, `days` + 2 days."""
        zi = _zone(zone)
        assert zi is not None
        first = at.astimezone(zi).date() - timedelta(days=1)
        out = []
        for k in range(days + 2):
            day = first + timedelta(days=k)
            hours = self.hours_on(day, states)
            if hours is None:
                continue
            a = datetime.combine(day, hours[0], tzinfo=zi).astimezone(UTC)
            b = datetime.combine(day, hours[1], tzinfo=zi).astimezone(UTC)
            if a < b:
                out.append((a, b))
        return out

    def _next_open(
        self, zones: tuple[str, ...], states: tuple[str, ...], at: datetime
    ) -> datetime | None:
        """First instant >= at inside every zone's window (UTC), or None within the lookahead."""
        at_utc = at.astimezone(UTC)
        common = [(at_utc, at_utc + timedelta(days=LOOKAHEAD_DAYS))]
        for z in zones:
            mine = self.open_intervals(z, states, at)
            merged = []
            for a, b in common:
                for c, d in mine:
                    lo, hi = max(a, c), min(b, d)
                    if lo < hi:
                        merged.append((lo, hi))
            common = merged
            if not common:
                return None
        return min(a for a, _ in common)

    def check(self, phone_e164: str | None, tz_hint: str | None, at: datetime) -> WindowDecision:
        """Is `at` inside the window in every candidate zone of this number?"""
        _aware(at)
        zones, states, why = self.candidates(phone_e164, tz_hint)
        if not zones:
            if self.allow_unknown_timezone:
                return WindowDecision(True, None, None, (), (), f"{why}; allowed by campaign")
            return WindowDecision(False, "unknown_timezone", None, (), (), why)
        return self._evaluate(zones, states, at)


# --------------------------------------------------------------------------------------------
# Reading DNC and consent files
# --------------------------------------------------------------------------------------------


def _canon(h: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", h.strip().lower()).strip("_")


def _read_strings(
    path: Path,
    *,
    header: bool,
    encoding: str | None = None,
    warnings: list[str] | None = None,
) -> tuple[list[str], pa.Table]:
    """Every column as text; `header=False` names columns c0..cn. Errors name file and row.

    UTF-8 (BOM or not), UTF-16 with a BOM, else Windows-1252 with a warning; `encoding` wins.
    """
    try:
        with path.open("rb") as f:
            head = f.read(65536)
    except OSError as e:
        raise ComplianceError(path, f"cannot read: {e.strerror or e}") from e
    if encoding:
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise ComplianceError(
                path, f"inputs.encoding {encoding!r} is not an encoding"
            ) from None
    enc = sniff_encoding(path, head, encoding, warnings if warnings is not None else [])
    if not enc:
        raise ComplianceError(path, "not a CSV file (binary content)")
    if enc.replace("-", "").lower() in ("utf8", "utf8sig"):
        enc = "utf-8"
    text = head.decode(enc if enc != "utf-8" else "utf-8-sig", errors="replace").lstrip("\ufeff")
    first = text.splitlines()[0] if text.strip() else ""
    counts = {d: first.count(d) for d in (",", ";", "\t", "|")}
    delim = "," if counts[","] or not any(counts.values()) else max(counts, key=counts.__getitem__)
    if not text.strip():
        return [], pa.table({})
    names_row = next(csv.reader([first], delimiter=delim))
    if header:
        names = [h.strip().lstrip("\ufeff") for h in names_row]
    else:
        names = [f"c{i}" for i in range(len(names_row))]
    bad: list[object] = []

    def on_invalid(row: object) -> str:
        bad.append(row)
        return "skip"

    try:
        table = pacsv.read_csv(
            csv_source(path, enc, warnings),
            read_options=pacsv.ReadOptions(
                column_names=[f"c{i}" for i in range(len(names))],
                skip_rows=1 if header else 0,
                encoding=enc,
            ),
            parse_options=pacsv.ParseOptions(
                delimiter=delim,
                newlines_in_values=True,
                invalid_row_handler=on_invalid,
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={f"c{i}": pa.string() for i in range(len(names))},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except UnicodeDecodeError as e:
        raise ComplianceError(path, f"not valid {enc} text (see inputs.encoding): {e}") from e
    except pa.ArrowInvalid as e:
        raise _locate(path, delim, len(names), header, enc) from e
    if bad:
        raise _locate(path, delim, len(names), header, enc)
    return names, table


def _locate(
    path: Path, delim: str, n: int, header: bool, enc: str = "utf-8"
) -> ComplianceError:
    raw = path.read_bytes().removeprefix(b"\xef\xbb\xbf")
    if enc == "utf-8":
        text = raw.decode("utf-8", "surrogateescape")
    else:
        text = raw.decode(enc, "replace").lstrip("\ufeff")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delim)
    row = 0
    try:
        for i, rec in enumerate(reader):
            if header and i == 0 or not rec:
                continue
            row += 1
            for j, cell in enumerate(rec):
                if any("\udc80" <= ch <= "\udcff" for ch in cell):
                    return ComplianceError(
                        path, "not valid UTF-8 text", row=row, column=f"#{j + 1}"
                    )
            if len(rec) != n:
                return ComplianceError(
                    path,
                    f"has {len(rec)} fields, expected {n}",
                    row=row,
                    column=f"#{min(len(rec), n) + 1}",
                )
    except csv.Error as e:
        return ComplianceError(path, f"not valid CSV: {e}", row=row + 1)
    return ComplianceError(path, "cannot be read as CSV")


def _column(table: pa.Table, i: int) -> pd.Series:
    return pd.Series(table.column(i).to_pandas(), dtype=STRING).reset_index(drop=True)


_DNC_HEADERS = tuple(a for role in PHONE_ROLES for a in ROLE_ALIASES[role]) + (
    "dnc", "do_not_call", "phone_e164", "e164", "numbers",
)  # fmt: skip
UNREADABLE_COLUMNS = ["row", "column", "value", "problem"]


def _unreadable(cells: pd.Series, norm: pd.DataFrame, column: str, first_row: int) -> pd.DataFrame:
    """The cells that are not blank and not a valid number: row, column, value, problem."""
    bad = (norm["problem"].notna() & norm["problem"].ne("blank")).fillna(False).to_numpy(bool)
    idx = np.flatnonzero(bad)
    return pd.DataFrame(
        {
            "row": idx + first_row,
            "column": column,
            "value": cells.iloc[idx].to_numpy(dtype=object),
            "problem": norm["problem"].iloc[idx].to_numpy(dtype=object),
        },
        columns=UNREADABLE_COLUMNS,
    )


def _refuse_plausible(
    path: Path, cells: pd.Series, norm: pd.DataFrame, column: str, first_row: int,
    where: np.ndarray | None = None, what: str = "Do-Not-Call entry",
) -> None:
    """A cell holding 7+ digits that is not exactly one valid number refuses the file: the
    person meant a number there, and we cannot tell which (never dropped silently)."""
    plausible = norm["plausible"].to_numpy(dtype=bool)
    if where is not None:
        plausible = plausible & where
    if plausible.any():
        i = int(np.flatnonzero(plausible)[0])
        raise ComplianceError(
            path,
            f"{what} {cells.iloc[i]!r} looks like a phone number but cannot be read as exactly "
            f"one valid number ({norm['problem'].iloc[i]}); write it as one full number, "
            "e.g. +14155550123",
            row=i + first_row,
            column=column,
        )


def _read_dnc_file(
    path: Path, region: str, encoding: str | None = None, warnings: list[str] | None = None
) -> tuple[pd.Series, pd.DataFrame]:
    """(valid E.164 numbers, unreadable cells). A plausible number that cannot be read refuses
    the file (`_refuse_plausible`); other junk (`call me later`) is listed, never dropped
    silently; a file whose every non-blank cell is junk is refused (wrong column or file)."""
    names, table = _read_strings(path, header=True, encoding=encoding, warnings=warnings)
    if not names:
        return pd.Series([], dtype=STRING), pd.DataFrame(columns=UNREADABLE_COLUMNS)
    canon = [_canon(h) for h in names]
    # Every phone column: a DNC export with "Phone" and "Mobile" lists both numbers.
    aliases = set(_DNC_HEADERS)
    cols = [i for i, c in enumerate(canon) if c in aliases]
    header_names = names
    if not cols and len(names) > 1 and not any(
        normalize_phones(pd.Series(names, dtype=STRING), region)["e164"].notna()
    ):
        # A header we do not know ("DNC Number", "Phone Numbers") over several columns: the
        # one phone-named column holding numbers, if exactly one does ("Added" holds none).
        holding = [
            i for i, c in enumerate(canon)
            if re.search(r"phone|number|tel|cell|mobile|dnc|do_not_call|e164", c)
            and normalize_phones(_column(table, i), region)["e164"].notna().any()
        ]
        if len(holding) == 1:
            cols = holding
    if cols:
        columns = [(_column(table, i), names[i]) for i in cols]
    else:
        # No recognised header: a headerless list. One column of numbers, or the FTC registry
        # layout "area code,number" (3 + 7 digits).
        names, table = _read_strings(path, header=False, encoding=encoding)
        if len(names) == 1:
            cells = _column(table, 0)
        elif (
            len(names) == 2
            and table.num_rows
            and re.fullmatch(r"\d{3}", table.column(0)[0].as_py().strip())
            and re.fullmatch(r"\d{7}", table.column(1)[0].as_py().strip())
        ):
            cells = _column(table, 0).str.strip() + _column(table, 1).str.strip()
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
    for cells, column in columns:
        norm = normalize_phones(cells, region)
        _refuse_plausible(path, cells, norm, column, first_row)
        valid = norm["e164"].dropna()
        unreadable = _unreadable(cells, norm, column, first_row)
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


def _arrow_strings(values: pd.Series) -> pa.Array:
    arr = pa.array(values.astype(STRING), type=pa.large_string())
    return arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr


def _e164_ints(numbers: pa.Array) -> np.ndarray:
    """E.164 strings as int64 (digits after "+"; -1 for null): injective, since no country
    code starts with 0 and E.164 has at most 15 digits; hashing and sorting ints is fast."""
    digits = pc.utf8_slice_codeunits(numbers, 1)
    return np.asarray(pc.fill_null(pc.cast(digits, pa.int64()), -1), dtype=np.int64)


def _positions(keys: pd.Index, queries: np.ndarray) -> np.ndarray:
    """Index of each query in `keys` (unique int64; its hash table is built once), -1 if absent."""
    if len(keys) == 0:
        return np.full(len(queries), -1, dtype=np.int64)
    return keys.get_indexer(queries)


class DncList:
    """Local Do-Not-Call lists plus the ledger, normalised; O(1) membership."""

    def __init__(self, numbers: pd.Series, source_codes: np.ndarray, sources: list[str]) -> None:
        # numbers are keyed as int64 (see `_e164_ints`); the first list holding one is evidence
        ints = _e164_ints(_arrow_strings(numbers.reset_index(drop=True)))
        keep = ~pd.Index(ints).duplicated(keep="first") & (ints >= 0)
        self._ints = pd.Index(ints[keep])
        self._source = np.asarray(source_codes, dtype=np.int32)[keep]
        self.sources = sources
        self.ignored: dict[str, int] = {}  # per list: unreadable cells (listed in `unreadable`)
        self.unreadable: dict[str, pd.DataFrame] = {}
        self.warnings: list[str] = []
        self.ledger: DncLedger | None = None  # re-read at every check: numbers added mid-run
        self.meta: dict[str, DncListMeta] = {}  # per list name: kind and date, when given

    @classmethod
    def load(
        cls,
        paths: Sequence[Path],
        *,
        default_region: str,
        ledger: DncLedger | None = None,
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
        out.meta = metas
        return out

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
        """The list holding the number as loaded (no ledger re-read)."""
        if not _E164.fullmatch(e164) or len(self._ints) == 0:
            return None
        pos = int(self._ints.get_indexer([int(e164[1:])])[0])
        return None if pos < 0 else self.sources[int(self._source[pos])]

    def __contains__(self, e164: object) -> bool:
        return isinstance(e164, str) and self.source_of(e164) is not None

    def __len__(self) -> int:
        return len(self._ints)

    def source_of(self, e164: str) -> str | None:
        """Which list holds the number (file name, or "ledger"), for evidence.

        The ledger is read again (only its new bytes), so a number another campaign or this
        run recorded after loading is held back too.
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

        `numbers`: E.164 strings, or their `_e164_ints` keys."""
        ints = numbers if isinstance(numbers, np.ndarray) else _e164_ints(numbers)
        pos = _positions(self._ints, ints)
        if len(self._source) == 0:
            return np.full(len(numbers), -1, dtype=np.int32)
        return np.where(pos >= 0, self._source[np.maximum(pos, 0)], -1).astype(np.int32)

    def lookup(self, numbers: pd.Series) -> pd.Series:
        """Vectorised `source_of`: source name or <NA> per number."""
        codes = self.source_codes(_arrow_strings(numbers))
        names = np.array([*self.sources, None], dtype=object)
        return pd.Series(names[codes], index=numbers.index, dtype=STRING)


class DncLedger:
    """Append-only CSV of numbers the platform or a callee put on Do-Not-Call.

    Shared by campaigns and read again at every dial-time check (only the bytes appended since
    the last read). Each append takes an exclusive `fcntl` lock, catches up with what others
    appended, skips a number already there (idempotent), writes one line and fsyncs: a crash
    loses at most the line being written, never an earlier one. A torn last line (a crash
    mid-write) is read once its phone field is complete, and closed off by the next append.
    """

    HEADER = ("phone", "reason", "campaign", "evidence", "at")

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._known: set[str] = set()
        self._offset = 0
        self._inode: int | None = None

    @staticmethod
    def _parse(text: str) -> set[str]:
        out = set()
        for rec in csv.reader(io.StringIO(text)):
            # a record counts once its phone field is complete (a separator follows it)
            if len(rec) >= 2 and _E164.fullmatch(rec[0]):
                out.add(rec[0])
        return out

    def _catch_up(self, fd: int) -> bytes:
        """Read what was appended since last time (caller holds a lock); returns the tail."""
        st = os.fstat(fd)
        if st.st_ino != self._inode or st.st_size < self._offset:
            self._known, self._offset, self._inode = set(), 0, st.st_ino
        data = os.pread(fd, st.st_size - self._offset, self._offset) if st.st_size else b""
        end = data.rfind(b"\n") + 1
        self._known |= self._parse(data[:end].decode("utf-8", errors="replace"))
        tail = data[end:]
        if tail:  # torn last line: honour its number if complete, re-read it later
            self._known |= self._parse(tail.decode("utf-8", errors="replace"))
        self._offset += end
        return tail

    def _refresh(self) -> None:
        """Catch up with appends; a stat tells cheaply when there is nothing new."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self._known, self._offset, self._inode = set(), 0, None
            return
        if st.st_ino == self._inode and st.st_size == self._offset:
            return  # nothing appended, no torn tail pending
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
            self._catch_up(fd)
        finally:
            os.close(fd)

    def numbers(self) -> set[str]:
        """Every number in the ledger (an absent ledger is empty)."""
        self._refresh()
        return set(self._known)

    def __contains__(self, e164: object) -> bool:
        if not isinstance(e164, str):
            return False
        self._refresh()
        return e164 in self._known

    def add(self, e164: str, *, reason: str, campaign: str, evidence: str, at: datetime) -> None:
        """Record a number (idempotent per number), durably, safe with concurrent appenders."""
        if not _E164.fullmatch(e164):
            raise ValueError(f"{e164!r} is not an E.164 number")
        for name, value in (("reason", reason), ("campaign", campaign), ("evidence", evidence)):
            if "\n" in value or "\r" in value:
                raise ValueError(f"{name} must be one line")
        _aware(at)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        created = not self.path.exists()
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            tail = self._catch_up(fd)
            if e164 in self._known:
                return
            buf = io.StringIO()
            if tail:
                buf.write("\n")  # close a torn line left by a crash
            w = csv.writer(buf, lineterminator="\n")
            if self._offset == 0 and not tail:
                w.writerow(self.HEADER)
            w.writerow(
                [e164, reason, campaign, evidence, at.astimezone(UTC).isoformat(timespec="seconds")]
            )
            os.write(fd, buf.getvalue().encode("utf-8"))
            os.fsync(fd)
            self._known.add(e164)
        finally:
            os.close(fd)  # releases the lock
        if created:
            dfd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)


# --------------------------------------------------------------------------------------------
# Consent
# --------------------------------------------------------------------------------------------


RND_COLUMNS = ("phone", "date_queried", "result", "queried_at")
_RND_RESULTS = {"yes": "yes", "no": "no", "no_data": "no_data", "no data": "no_data",
                "nodata": "no_data"}


class ReassignedAnswers:
    """The FCC Reassigned Numbers Database answers a team downloaded (`inputs.reassigned`).

    A `yes` (the number was permanently disconnected since `date_queried`) voids a consent
    grant given at or before that date: the grant came from the number's previous owner.
    A disconnection after the grant voids it too, so a `yes` with a later date also voids.
    A `no` vouches for a grant given at or after its `date_queried` (47 CFR 64.1200(m)).
    """

    def __init__(self, path: Path, answers: pd.DataFrame) -> None:
        self.path = path
        self.answers = answers  # phone (E.164), date_queried (date), result, queried_at
        ints = _e164_ints(_arrow_strings(answers["phone"])) if len(answers) else np.zeros(0)
        yes = answers["result"].to_numpy() == "yes" if len(answers) else np.zeros(0, bool)
        self._yes = pd.Index(np.asarray(ints, dtype=np.int64)[yes]).unique()
        self._yes_queried: dict[int, str] = {}
        for k, q in zip(np.asarray(ints)[yes], answers["queried_at"].to_numpy()[yes],
                        strict=True):
            self._yes_queried.setdefault(int(k), str(q))
        # per number, its `no` answers sorted by date: the earliest vouches for the most grants
        no = answers["result"].to_numpy() == "no" if len(answers) else np.zeros(0, bool)
        nos = pd.DataFrame({
            "k": np.asarray(ints, dtype=np.int64)[no],
            "d": [_day_ns(d) for d in answers["date_queried"].to_numpy()[no]],
            "q": answers["queried_at"].to_numpy()[no],
        }).sort_values(["k", "d"], kind="stable").drop_duplicates("k", keep="first")
        self._no = pd.Index(nos["k"].to_numpy(dtype=np.int64))
        self._no_day = nos["d"].to_numpy(dtype=np.int64)
        self._no_queried = [str(q) for q in nos["q"].to_numpy()]

    def __len__(self) -> int:
        return len(self.answers)

    @classmethod
    def load(cls, path: Path, *, default_region: str, encoding: str | None = None,
             ) -> ReassignedAnswers:
        """Read the answers; a cell that cannot be read refuses the file (row and column)."""
        names, table = _read_strings(path, header=True, encoding=encoding)
        canon = [_canon(h) for h in names]
        idx: dict[str, int] = {}
        for col in RND_COLUMNS:
            if col not in canon:
                raise ComplianceError(
                    path, f"no {col!r} column (an RND answer file has columns "
                    + ", ".join(RND_COLUMNS) + "; first row: " + ", ".join(names) + ")"
                )
            idx[col] = canon.index(col)
        cells = {c: _column(table, i).fillna("").str.strip() for c, i in idx.items()}
        norm = normalize_phones(cells["phone"], default_region)
        rows: list[tuple[str, date, str, str]] = []
        for i in range(table.num_rows):
            row = i + 1
            e164 = norm["e164"].iloc[i]
            if pd.isna(e164):
                raise ComplianceError(
                    path, f"{cells['phone'].iloc[i]!r} is not a phone number", row=row,
                    column=names[idx["phone"]],
                )
            try:
                day = date.fromisoformat(cells["date_queried"].iloc[i])
            except ValueError:
                raise ComplianceError(
                    path, f"{cells['date_queried'].iloc[i]!r} is not a date (YYYY-MM-DD)",
                    row=row, column=names[idx["date_queried"]],
                ) from None
            result = _RND_RESULTS.get(cells["result"].iloc[i].lower().replace("-", "_"))
            if result is None:
                raise ComplianceError(
                    path, f"{cells['result'].iloc[i]!r} is not an RND answer (yes, no, no_data)",
                    row=row, column=names[idx["result"]],
                )
            rows.append((str(e164), day, result, cells["queried_at"].iloc[i]))
        frame = pd.DataFrame(rows, columns=list(RND_COLUMNS))
        return cls(Path(path), frame)

    def decide(
        self, ints: np.ndarray, grant_ns: np.ndarray, has_grant: np.ndarray, *, require: bool
    ) -> tuple[np.ndarray, list[str | None]]:
        """Per number: 0 ok, 1 `number_reassigned`, 2 `reassigned_unchecked`, -1 no grant;
        and the `queried_at` of the answer that decided (None when none did)."""
        ints = np.asarray(ints, dtype=np.int64)
        n = len(ints)
        code = np.where(has_grant, 0, -1).astype(np.int64)
        queried: list[str | None] = [None] * n
        yes = self._yes.get_indexer(ints) >= 0 if len(self._yes) else np.zeros(n, bool)
        pos = self._no.get_indexer(ints) if len(self._no) else np.full(n, -1)
        vouched = (pos >= 0) & (
            self._no_day[np.maximum(pos, 0)] <= np.asarray(grant_ns, dtype=np.int64)
            if len(self._no_day) else np.zeros(n, bool)
        )
        void = has_grant & yes
        code[void] = 1
        if require:
            code[has_grant & ~void & ~vouched] = 2
        for i in np.flatnonzero(void):
            queried[int(i)] = self._yes_queried.get(int(ints[i]))
        for i in np.flatnonzero(has_grant & ~void & vouched):
            queried[int(i)] = self._no_queried[int(pos[i])]
        return code, queried


def _day_ns(d: date) -> int:
    """A `date_queried` as the UTC start of that day: a grant at or after it is vouched for."""
    return _ns(datetime(d.year, d.month, d.day, tzinfo=UTC))


@dataclass(frozen=True)
class ConsentDecision:
    allowed: bool
    reason: str | None  # None | "no_consent" | "consent_revoked" | "consent_expired"
    event_at: datetime | None
    source: str | None
    expires_at: datetime | None = None
    event_at_text: str = ""  # the ledger's own text, for evidence
    expires_at_text: str = ""


_OFFSET = r"(?:[zZ]|[+-]\d\d(?::?\d\d)?)$"
_NO_EXPIRY = np.iinfo(np.int64).max


def _timestamps(path: Path, cells: pd.Series, column: str, *, optional: bool) -> np.ndarray:
    """UTC nanoseconds; rejects (naming the row) a missing offset or an unparseable value."""
    text = cells.fillna("").str.strip()
    blank = text.eq("").to_numpy(dtype=bool)
    if optional:
        check = ~blank
    else:
        if blank.any():
            i = int(np.flatnonzero(blank)[0])
            raise ComplianceError(path, "is blank", row=i + 1, column=column)
        check = np.ones(len(text), dtype=bool)
    has_offset = text.str.contains(_OFFSET, regex=True).fillna(False).to_numpy(dtype=bool)
    has_time = text.str.contains("T| ", regex=True).fillna(False).to_numpy(dtype=bool)
    naive = check & ~(has_offset & has_time)
    if naive.any():
        i = int(np.flatnonzero(naive)[0])
        raise ComplianceError(
            path,
            f"{text.iloc[i]!r} is not an ISO 8601 date-time with a UTC offset",
            row=i + 1,
            column=column,
        )
    parsed = pd.to_datetime(
        text.where(~pd.Series(blank, index=text.index), None),
        utc=True,
        format="ISO8601",
        errors="coerce",
    )
    bad = check & parsed.isna().to_numpy(dtype=bool)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ComplianceError(
            path, f"{text.iloc[i]!r} is not a valid date-time", row=i + 1, column=column
        )
    # pandas keeps 9999-12-31 or 0001-01-01 at microsecond resolution; nanoseconds (what the
    # ledger compares in) only reach 1677-2262, so such a date is named, not a traceback.
    lo, hi = pd.Timestamp.min.tz_localize("UTC"), pd.Timestamp.max.tz_localize("UTC")
    outside = check & ((parsed < lo) | (parsed > hi)).fillna(False).to_numpy(dtype=bool)
    if outside.any():
        i = int(np.flatnonzero(outside)[0])
        raise ComplianceError(
            path, f"{text.iloc[i]!r} is outside the supported years 1678-2261",
            row=i + 1, column=column,
        )
    ns = parsed.dt.as_unit("ns").to_numpy(dtype="datetime64[ns]").astype(np.int64)
    return np.where(blank, _NO_EXPIRY, ns)


def _ns(at: datetime) -> int:
    return int(pd.Timestamp(_aware(at)).tz_convert("UTC").as_unit("ns").value)


def _from_ns(ns: int) -> datetime:
    return pd.Timestamp(ns, unit="ns", tz="UTC").to_pydatetime()


def _file_stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


class ConsentLedger:
    """Consent events keyed by phone and by contact_id, ordered by time (not file order).

    `events` is sorted by "later" (time, then revoke over grant, then earlier expiry), so an
    event's position is its rank and the deciding event is the one of highest rank at or before
    the call. `refresh()` re-reads the file when it changed, so a revocation written during a
    run stops the next call to that person.
    """

    def __init__(self, path: Path, events: pd.DataFrame, *, default_region: str = "US") -> None:
        self.path = Path(path)
        self.default_region = default_region
        self.encoding: str | None = None
        self.unreadable = pd.DataFrame(columns=UNREADABLE_COLUMNS)  # phone cells not read
        self.warnings: list[str] = []
        self._stamp = _file_stamp(self.path)
        self._set_events(events)

    def _set_events(self, events: pd.DataFrame) -> None:
        self.events = events
        is_phone = events["kind"].to_numpy() == "p"
        p_codes, p_keys = pd.factorize(events["key"][is_phone])
        c_codes, c_keys = pd.factorize(events["key"][~is_phone])
        key_code = np.empty(len(events), dtype=np.int64)
        key_code[is_phone] = p_codes
        key_code[~is_phone] = c_codes + len(p_keys)
        self._key_code = key_code
        self._event_ns = events["event_ns"].to_numpy(dtype=np.int64)
        self._phone_keys = _arrow_strings(pd.Series(p_keys, dtype=STRING))
        self._phone_ints = pd.Index(_e164_ints(self._phone_keys))
        self._cid_keys = _arrow_strings(pd.Series(c_keys, dtype=STRING))
        self._key_dict: dict[tuple[str, str], int] | None = None
        self._order: np.ndarray | None = None
        self._sorted_codes = np.zeros(0, dtype=np.int64)

    @classmethod
    def load(
        cls, path: Path, *, default_region: str, encoding: str | None = None
    ) -> ConsentLedger:
        """Read and validate the whole ledger; `ComplianceError` names file, row and column."""
        path = Path(path)
        events, unreadable, warnings = _read_consent_full(path, default_region, encoding)
        out = cls(path, events, default_region=default_region)
        out.encoding = encoding
        out.unreadable = unreadable
        out.warnings = warnings
        return out

    def refresh(self) -> bool:
        """Re-read the file if it changed since loading; True when it did."""
        stamp = _file_stamp(self.path)
        if stamp == self._stamp:
            return False
        events, self.unreadable, self.warnings = _read_consent_full(
            self.path, self.default_region, self.encoding
        )
        self._stamp = stamp
        self._set_events(events)
        return True

    def __len__(self) -> int:
        return len(self.events)

    def _latest_for(self, code: int, at_ns: int) -> int:
        """Position (= rank) of the latest event of one key at or before `at_ns`, or -1."""
        if self._order is None:
            self._order = np.argsort(self._key_code, kind="stable")
            self._sorted_codes = self._key_code[self._order]
        a, b = np.searchsorted(self._sorted_codes, [code, code + 1])
        pos = self._order[a:b]  # ascending rank, hence ascending time
        j = int(np.searchsorted(self._event_ns[pos], at_ns, side="right"))
        return int(pos[j - 1]) if j else -1

    def _code(self, kind: str, key: str | None) -> int | None:
        if not key:
            return None
        if self._key_dict is None:
            p = self._phone_keys.to_pylist()
            c = self._cid_keys.to_pylist()
            d = {("p", k): i for i, k in enumerate(p)}
            d.update({("c", k): i + len(p) for i, k in enumerate(c)})
            self._key_dict = d
        return self._key_dict.get((kind, key))

    def decide(
        self, *, phone_e164: str | None, contact_id: str | None, at: datetime
    ) -> ConsentDecision:
        """Consent at `at`: the latest event by time at or before it decides."""
        at_ns = _ns(at)
        best = -1
        for kind, key in (("p", phone_e164), ("c", contact_id)):
            code = self._code(kind, key)
            if code is not None:
                best = max(best, self._latest_for(code, at_ns))
        if best < 0:
            return ConsentDecision(False, "no_consent", None, None)
        ev = self.events.iloc[best]
        return _decision(
            bool(ev["revoke"]),
            int(ev["event_ns"]),
            int(ev["expires_ns"]),
            str(ev["source"]),
            str(ev["event_text"]),
            str(ev["expires_text"]),
            at_ns,
        )

    def latest(
        self, phones: pa.Array | np.ndarray, contact_ids: pa.Array, at_ns: int
    ) -> np.ndarray:
        """Vectorised: position of the deciding event per contact (-1 when none).

        `phones`: E.164 strings, or their `_e164_ints` keys."""
        ints = phones if isinstance(phones, np.ndarray) else _e164_ints(phones)
        mask = self._event_ns <= at_ns
        latest = np.full(len(self._phone_keys) + len(self._cid_keys), -1, dtype=np.int64)
        np.maximum.at(latest, self._key_code[mask], np.flatnonzero(mask))
        best = np.full(len(phones), -1, dtype=np.int64)
        pos = _positions(self._phone_ints, ints)
        hit = pos >= 0
        best[hit] = latest[pos[hit]]
        if len(self._cid_keys):
            found = pc.index_in(contact_ids, value_set=self._cid_keys)
            pos = np.asarray(pc.fill_null(found, -1), dtype=np.int64)
            hit = pos >= 0
            best[hit] = np.maximum(best[hit], latest[pos[hit] + len(self._phone_keys)])
        return best


# How consent ledgers and CRM exports spell the two events (letters only, lower case). Any
# other word refuses the file: a revocation must never be read as something else.
_EVENT_WORDS = {
    **dict.fromkeys(
        ("grant", "granted", "optin", "optedin", "consent", "consented", "subscribe",
         "subscribed"), "grant"),
    **dict.fromkeys(
        ("revoke", "revoked", "revocation", "optout", "optedout", "unsubscribe",
         "unsubscribed", "withdraw", "withdrawn", "withdrew"), "revoke"),
}


def _read_consent(path: Path, default_region: str, encoding: str | None = None) -> pd.DataFrame:
    return _read_consent_full(path, default_region, encoding)[0]


def _read_consent_full(
    path: Path, default_region: str, encoding: str | None = None
) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """(events, unreadable phone cells, warnings). A revocation whose phone holds 7+ digits
    but is not one valid number refuses the file; other unreadable phones are listed."""
    warnings: list[str] = []
    unreadable = pd.DataFrame(columns=UNREADABLE_COLUMNS)
    names, table = _read_strings(path, header=True, encoding=encoding, warnings=warnings)
    if not names:
        raise ComplianceError(path, "empty file: no header row")
    canon = [_canon(h) for h in names]

    def find(*aliases: str) -> int | None:
        return next((canon.index(a) for a in aliases if a in canon), None)

    i_phone = find("phone", "phone_number", "phone_e164", "e164", "mobile_phone", "number")
    i_cid = find("contact_id", "contactid", "id", "customer_id", "record_id")
    i_event = find("event", "event_type", "action", "consent_status", "consent_event", "status")
    i_at = find("event_at", "timestamp", "at", "occurred_at", "event_time", "event_date",
                "created_at", "recorded_at", "date")
    i_exp = find("expires_at", "expiry", "expires")
    i_src = find("source", "evidence")
    if i_phone is None and i_cid is None:
        raise ComplianceError(path, "no phone or contact_id column", column="phone")
    if i_event is None:
        raise ComplianceError(path, "no event column (grant|revoke)", column="event")
    if i_at is None:
        raise ComplianceError(path, "no event_at column", column="event_at")
    n = table.num_rows
    empty = pd.Series([""] * n, dtype=STRING)

    event_cells = _column(table, i_event)
    event = event_cells.str.lower().str.replace(r"[^a-z]+", "", regex=True).map(
        _EVENT_WORDS, na_action="ignore"
    ).astype(STRING)
    bad = ~event.isin(["grant", "revoke"]).to_numpy(dtype=bool)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ComplianceError(
            path,
            f"event {event_cells.iloc[i]!r} is not grant or revoke (nor opt-in/opt-out, "
            "granted/revoked, subscribed/unsubscribed)",
            row=i + 1,
            column=names[i_event],
        )
    at_text = _column(table, i_at).str.strip()
    event_ns = _timestamps(path, at_text, names[i_at], optional=False)
    if i_exp is not None:
        exp_text = _column(table, i_exp).str.strip()
        expires_ns = _timestamps(path, exp_text, names[i_exp], optional=True)
    else:
        exp_text = empty
        expires_ns = np.full(n, _NO_EXPIRY, dtype=np.int64)
    source = _column(table, i_src).str.strip() if i_src is not None else empty
    if i_phone is not None:
        phone_cells = _column(table, i_phone)
        norm = normalize_phones(phone_cells, default_region)
        revoke = event.eq("revoke").to_numpy(dtype=bool)
        _refuse_plausible(
            path, phone_cells, norm, names[i_phone], 1, where=revoke, what="revocation phone"
        )
        unreadable = _unreadable(phone_cells, norm, names[i_phone], 1)
        phone = norm["e164"]
        raw_blank = phone_cells.fillna("").str.strip().eq("")
    else:
        phone = pd.Series(pd.NA, index=range(n), dtype=STRING)
        raw_blank = pd.Series(True, index=range(n))
    if i_cid is not None:
        cid = _column(table, i_cid).str.strip()
        cid = cid.mask(cid == "")
    else:
        cid = pd.Series(pd.NA, index=range(n), dtype=STRING)
    nothing = (raw_blank & cid.isna()).to_numpy(dtype=bool)
    if nothing.any():
        i = int(np.flatnonzero(nothing)[0])
        col = names[i_phone if i_phone is not None else i_cid]  # type: ignore[index]
        raise ComplianceError(path, "has neither a phone nor a contact_id", row=i + 1, column=col)
    base = pd.DataFrame(
        {
            "row": np.arange(1, n + 1),
            "revoke": event.eq("revoke").to_numpy(dtype=bool),
            "event_ns": event_ns,
            "expires_ns": expires_ns,
            # arrow strings, not a Python object per cell (half a million events)
            "source": source.fillna("").astype(STRING).array,
            "event_text": at_text.fillna("").astype(STRING).array,
            "expires_text": exp_text.fillna("").astype(STRING).array,
        }
    )
    has_phone = phone.notna().to_numpy(dtype=bool)
    has_cid = cid.notna().to_numpy(dtype=bool)
    by_phone = base[has_phone].assign(kind="p", key=phone[has_phone].astype(STRING).array)
    by_cid = base[has_cid].assign(kind="c", key=cid[has_cid].astype(STRING).array)
    events = pd.concat([by_phone, by_cid], ignore_index=True)
    # total order of "later": time, then revoke over grant, then earlier expiry
    events["neg_exp"] = -events["expires_ns"].astype(np.float64)
    events = events.sort_values(["event_ns", "revoke", "neg_exp", "row"], kind="stable")
    return events.drop(columns="neg_exp").reset_index(drop=True), unreadable, warnings


def _decision(
    revoke: bool,
    event_ns: int,
    expires_ns: int,
    source: str,
    event_text: str,
    expires_text: str,
    at_ns: int,
) -> ConsentDecision:
    event_at = _from_ns(event_ns)
    expires = None if expires_ns == _NO_EXPIRY else _from_ns(expires_ns)
    src = source or None
    if revoke:
        reason: str | None = "consent_revoked"
    elif expires_ns <= at_ns:
        reason = "consent_expired"
    else:
        reason = None
    return ConsentDecision(reason is None, reason, event_at, src, expires, event_text, expires_text)


# --------------------------------------------------------------------------------------------
# The gate and the plan
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    disposition: str  # "eligible" | "suppressed" | "pending"
    reason: str | None
    detail: str
    next_open: datetime | None
    evidence: dict[str, str]


_CONSENT_DETAIL = {
    "no_consent": "no consent on record at the time of the call",
    "consent_revoked": "consent revoked",
    "consent_expired": "consent grant expired",
    "number_reassigned": "the number was permanently disconnected since the consent was given "
    "(Reassigned Numbers Database: yes)",
    "reassigned_unchecked": "no Reassigned Numbers Database 'no' answer vouches for the "
    "consent grant (compliance.require_reassigned_check)",
}


class Gate:
    """Every call passes here, at planning and again at the moment of dialing.

    With `refresh` (the default) each `check` first re-reads what changed on disk: numbers
    appended to the DNC ledger and a rewritten consent ledger. `build_plan` uses the state as
    loaded (it is the plan; the dial-time check is the last word).
    """

    def __init__(
        self,
        *,
        dnc: DncList,
        consent: ConsentLedger | None,
        window: CallingWindow,
        require_consent: bool,
        refresh: bool = True,
        reassigned: ReassignedAnswers | None = None,
        require_reassigned_check: bool = False,
    ) -> None:
        self.dnc = dnc
        self.consent = consent
        self.window = window
        self.require_consent = require_consent
        self.refresh = refresh
        self.reassigned = reassigned
        self.require_reassigned_check = require_reassigned_check

    def _rnd(
        self, ints: np.ndarray, grant_ns: np.ndarray, has_grant: np.ndarray
    ) -> tuple[np.ndarray, list[str | None]]:
        """The RND rule on granted numbers (see `ReassignedAnswers.decide`); plan and dial."""
        if self.reassigned is None:
            code = np.where(has_grant & self.require_reassigned_check, 2, 0)
            code[~has_grant] = -1
            return code.astype(np.int64), [None] * len(ints)
        return self.reassigned.decide(
            ints, grant_ns, has_grant, require=self.require_reassigned_check
        )

    def _consent(self, phone: str | None, cid: str | None, at: datetime) -> ConsentDecision:
        if self.consent is None:
            return ConsentDecision(False, "no_consent", None, None)
        if self.refresh:
            self.consent.refresh()
        return self.consent.decide(phone_e164=phone, contact_id=cid, at=at)

    def check(
        self,
        *,
        phone_e164: str | None,
        contact_id: str | None,
        tz_hint: str | None,
        at: datetime,
        other_phones: Sequence[str] = (),
    ) -> Verdict:
        """Decide one call now. Order: DNC, consent, window; evidence always complete.

        `other_phones`: the row's other numbers. A DNC entry or a revocation on any of them
        holds the call back (that person asked not to be called); consent and the window are
        those of the number dialed.
        """
        _aware(at)
        phone = phone_e164 or None
        cid = contact_id or None
        if phone is None and cid is None:
            raise ValueError("a call needs a phone or a contact_id")
        source = None
        for number in ([phone] if phone else []) + [o for o in other_phones if o]:
            source = self.dnc.source_of(number) if self.refresh else self.dnc._listed(number)
            if source is not None:
                break
        consent = self._consent(phone, cid, at)
        if consent.reason != "consent_revoked" and self.consent is not None:
            for number in other_phones:
                other = self.consent.decide(phone_e164=number, contact_id=None, at=at)
                if other.reason == "consent_revoked":
                    consent = other
                    break
        window = self.window.check(phone, tz_hint, at)
        evidence = {
            "consent_event_at": consent.event_at_text,
            "consent_expires_at": consent.expires_at_text,
            "consent_source": consent.source or "",
            "local_times": " ".join(window.local_times),
            "zones": " ".join(window.zones),
            "dnc_lists_checked": self.dnc.checked_label() if phone else NO_PHONE_DNC,
            "rnd_queried_at": "",
        }
        if self.require_consent and consent.allowed and consent.event_at is not None and phone:
            code, queried = self._rnd(
                _e164_ints(pa.array([phone], type=pa.large_string())),
                np.array([_ns(consent.event_at)], dtype=np.int64), np.array([True]),
            )
            evidence["rnd_queried_at"] = queried[0] or ""
            if code[0] in (1, 2):
                reason = "number_reassigned" if code[0] == 1 else "reassigned_unchecked"
                consent = ConsentDecision(False, reason, consent.event_at, consent.source)
        stale = self.dnc.stale(at)
        if stale:  # no call stands on a list too old to vouch for it (the engine stops: 78)
            return Verdict("pending", "dnc_list_stale", stale[0], None, evidence)
        if source is not None:
            return Verdict("suppressed", "dnc_local", f"listed in {source}", None, evidence)
        needs = self.require_consent or consent.reason == "consent_revoked"
        if needs and not consent.allowed:
            reason = consent.reason or "no_consent"
            return Verdict("suppressed", reason, _CONSENT_DETAIL[reason], None, evidence)
        if not window.ok:
            assert window.reason is not None
            disposition = "pending" if window.reason == "outside_window" else "suppressed"
            return Verdict(disposition, window.reason, window.detail, window.next_open, evidence)
        return Verdict("eligible", None, window.detail, None, evidence)


PLAN_COLUMNS = ("row", "disposition", "reason", "detail", "next_open", *EVIDENCE_KEYS)


def _other_numbers(f: pd.DataFrame, cand: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(row position, E.164 int) of every other number of candidate rows (`phone_others`)."""
    if "phone_others" not in f.columns:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    others = f["phone_others"]
    has = others.notna().to_numpy(dtype=bool) & cand
    idx = np.flatnonzero(has)
    if idx.size == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    split = others.iloc[idx].str.split(" ")
    lengths = split.str.len().to_numpy(dtype=np.int64)
    rows = np.repeat(idx, lengths)
    flat = pa.array([x for parts in split.tolist() for x in parts], type=pa.large_string())
    return rows, _e164_ints(flat)
_DISPOSITIONS = ["eligible", "suppressed", "pending"]


def _labels(codes: np.ndarray, labels: Sequence[str | None]) -> pa.Array:
    """Strings by code (-1 = null), decoded in arrow: no Python loop over rows."""
    dictionary = pa.array(list(labels), type=pa.large_string())
    return dictionary.take(pa.array(codes, type=pa.int64(), mask=codes < 0))


def _strings(arr: pa.Array | pa.ChunkedArray) -> pd.api.extensions.ExtensionArray:
    return pd.array(arr, dtype=STRING)


def _coded(codes: np.ndarray, labels: Sequence[str | None]) -> pa.DictionaryArray:
    """Strings by code (-1 = null) as a dictionary array: an int32 per row and each label
    once, not a string per row (a million rows, a handful of labels)."""
    return pa.DictionaryArray.from_arrays(
        pa.array(codes.astype(np.int32), mask=codes < 0),
        pa.array(list(labels), type=pa.large_string()),
    )


def decoded(arr: pa.Array) -> pa.Array:
    """A plain string array for a (possibly dictionary-encoded) plan column."""
    return arr.dictionary_decode() if pa.types.is_dictionary(arr.type) else arr


def _factorized(values: pd.Series) -> tuple[np.ndarray, list[str]]:
    codes, uniques = pd.factorize(values)
    return np.asarray(codes, dtype=np.int64), [str(u) for u in uniques]


def _window_groups(
    gate: Gate,
    phone: pa.Array,
    ints: np.ndarray,
    hint: pa.Array,
    cand: np.ndarray,
    at: datetime,
) -> tuple[np.ndarray, list[WindowDecision | None]]:
    """Group rows by (area zones and states, hint) and decide each group once.

    Every member of a group has the same candidate zones and rule states, so one
    `CallingWindow.check` per group is the same as one per row.
    """
    # "+1NPANXXXXXX" is the int 1NPANXXXXXX: 11 digits starting with 1
    is_nanp = (ints >= 12_000_000_000) & (ints < 20_000_000_000)
    npa = np.where(is_nanp, (ints // 10_000_000) % 1000, -1)
    known = np.zeros(1000, dtype=bool)
    known[[int(k) for k in _area_codes()]] = True
    in_table = (npa >= 0) & known[np.maximum(npa, 0)]
    area = np.where(in_table, npa, -1)
    has_phone = np.asarray(pc.is_valid(phone), dtype=bool)
    other = has_phone & ~in_table
    if other.any():  # international, toll-free: group by their area information
        codes, uniques = pd.factorize(pd.Series(phone.filter(pa.array(other)).to_pylist()))
        infos = []
        for e in uniques:
            info = _area_info(e)
            infos.append("?" if info is None else " ".join(info[0]) + "|" + " ".join(info[1]))
        info_codes, _ = pd.factorize(pd.Series(infos, dtype=object))
        area[other] = 1000 + info_codes[codes]
    hint_codes, _ = pd.factorize(pd.Series(pd.array(hint, dtype=STRING)))
    key = area * (int(hint_codes.max(initial=0)) + 2) + (hint_codes + 1)
    group, _ = pd.factorize(key)
    decisions: list[WindowDecision | None] = [None] * (int(group.max(initial=-1)) + 1)
    cand_rows = np.flatnonzero(cand)
    reps = pd.Series(cand_rows).groupby(group[cand_rows]).first()
    for g, i in zip(reps.index.to_numpy(), reps.to_numpy(), strict=True):
        decisions[g] = gate.window.check(phone[int(i)].as_py(), hint[int(i)].as_py(), at)
    return group, decisions


def plan_columns(contacts: Contacts, gate: Gate, at: datetime) -> dict[str, Any]:
    """`build_plan`'s columns as arrow and numpy: the label and evidence columns dictionary-
    encoded (evidence null where `build_plan` says ""), next_open as int64 ns (min = none).

    Vectorised: per-row work is arrow and numpy; the window is decided once per (area, hint)
    group; no column holds a string per row.
    """
    _aware(at)
    f = contacts.frame
    n = len(f)
    at_ns = _ns(at)
    own = f["reason"].notna().to_numpy(dtype=bool)
    cand = ~own
    cand_arr = pa.array(cand)
    null = pa.nulls(n, pa.large_string())
    phone = pc.if_else(cand_arr, _arrow_strings(f["phone_e164"]), null)
    cid = pc.if_else(cand_arr, _arrow_strings(f["contact_id"]), null)
    hint = _arrow_strings(f["tz_hint"])
    has_phone = np.asarray(pc.is_valid(phone), dtype=bool)

    # 1. DNC: the number dialed, or any other number of the row
    ints = _e164_ints(phone)
    src = gate.dnc.source_codes(ints)
    other_rows, other_ints = _other_numbers(f, cand)
    if other_rows.size:
        o_src = gate.dnc.source_codes(other_ints)
        hit = o_src >= 0
        first_src = np.full(n, -1, dtype=np.int32)
        # the first listed other number of each row is the evidence (rows ascending)
        rev = np.flatnonzero(hit)[::-1]
        first_src[other_rows[rev]] = o_src[rev]
        src = np.where(src >= 0, src, first_src).astype(np.int32)
        has_phone_or_other = has_phone | (first_src >= 0)
    else:
        has_phone_or_other = has_phone
    in_dnc = cand & has_phone_or_other & (src >= 0)

    # 2. consent
    consent_ev: dict[str, pa.Array] = {}
    if gate.consent is not None and len(gate.consent.events):
        win = gate.consent.latest(ints, cid, at_ns)
        win[~cand] = -1
        ev = gate.consent.events
        has = win >= 0
        w = np.maximum(win, 0)
        revoke = has & ev["revoke"].to_numpy(dtype=bool)[w]
        if other_rows.size:  # a revocation on any other number of the row decides
            o_win = gate.consent.latest(
                other_ints, pa.nulls(len(other_ints), pa.large_string()), at_ns
            )
            o_revoke = (o_win >= 0) & ev["revoke"].to_numpy(dtype=bool)[np.maximum(o_win, 0)]
            pick = np.flatnonzero(o_revoke)[::-1]
            pick = pick[~revoke[other_rows[pick]]]
            win[other_rows[pick]] = o_win[pick]
            has = win >= 0
            w = np.maximum(win, 0)
            revoke = has & ev["revoke"].to_numpy(dtype=bool)[w]
        expired = has & ~revoke & (ev["expires_ns"].to_numpy(dtype=np.int64)[w] <= at_ns)
        take = pa.array(win, type=pa.int64(), mask=~has)
        columns = {
            "consent_event_at": "event_text",
            "consent_expires_at": "expires_text",
            "consent_source": "source",
        }
        for k, col in columns.items():
            values = _arrow_strings(ev[col])
            consent_ev[k] = pa.DictionaryArray.from_arrays(take, values) if len(values) else null
        c_code = np.select([~has, revoke, expired], [0, 1, 2], default=-1)
        # 2b. the number's reassignment (RND answers) on rows whose grant is in effect
        granted = cand & has & ~revoke & ~expired & has_phone & gate.require_consent
        rnd, queried = gate._rnd(
            ints, ev["event_ns"].to_numpy(dtype=np.int64)[w], granted
        )
        c_code[rnd == 1] = 3
        c_code[rnd == 2] = 4
        if gate.reassigned is None:
            rnd_ev = null  # no answers: nothing to record (and no string per row to make)
        else:
            q_codes, q_labels = _factorized(pd.Series(queried, dtype=object))
            rnd_ev = _coded(q_codes, q_labels)
    else:
        c_code = np.zeros(n, dtype=np.int64)
        for k in EVIDENCE_KEYS[:3]:
            consent_ev[k] = null
        rnd_ev = null
    c_names = [
        "no_consent", "consent_revoked", "consent_expired", "number_reassigned",
        "reassigned_unchecked",
    ]
    needs = np.full(n, gate.require_consent) | (c_code == 1)
    c_block = cand & ~in_dnc & needs & (c_code >= 0)

    # 3. window
    group, decisions = _window_groups(gate, phone, ints, hint, cand, at)
    g_ok = np.array([bool(d and d.ok) for d in decisions] + [False], dtype=bool)
    g_pending = np.array(
        [bool(d and d.reason == "outside_window") for d in decisions] + [False], dtype=bool
    )
    nat = np.iinfo(np.int64).min
    g_next = np.array(
        [_ns(d.next_open) if d is not None and d.next_open else nat for d in decisions] + [nat],
        dtype=np.int64,
    )
    ok = g_ok[group]
    w_block = cand & ~in_dnc & ~c_block & ~ok
    eligible = cand & ~in_dnc & ~c_block & ok

    # assemble: codes into small label lists, decoded by arrow
    disp = np.where(cand, 0, 1)
    disp[in_dnc | c_block] = 1
    disp[w_block] = np.where(g_pending[group[w_block]], 2, 1)

    reason_labels = ["dnc_local", *c_names] + [d.reason if d else None for d in decisions]
    r_code = np.full(n, -1, dtype=np.int64)
    r_code[in_dnc] = 0
    r_code[c_block] = 1 + c_code[c_block]
    r_code[w_block] = 1 + len(c_names) + group[w_block]
    # rows the contacts stage rejected keep its reason and detail (few distinct values)
    own_idx = np.flatnonzero(own)
    own_r, own_r_labels = _factorized(f["reason"].iloc[own_idx])
    r_code[own_idx] = len(reason_labels) + own_r
    reason_labels += own_r_labels

    base = 1 + len(gate.dnc.sources) + len(c_names)
    detail_labels = (
        [""]
        + [f"listed in {s}" for s in gate.dnc.sources]
        + [_CONSENT_DETAIL[c] for c in c_names]
        + [d.detail if d else "" for d in decisions]
    )
    d_code = np.zeros(n, dtype=np.int64)
    d_code[in_dnc] = 1 + src[in_dnc]
    d_code[c_block] = 1 + len(gate.dnc.sources) + c_code[c_block]
    d_code[w_block | eligible] = base + group[w_block | eligible]
    own_d, own_d_labels = _factorized(f["detail"].iloc[own_idx].fillna(""))
    d_code[own_idx] = len(detail_labels) + own_d
    detail_labels += own_d_labels

    nxt = np.full(n, nat, dtype=np.int64)
    nxt[w_block] = g_next[group[w_block]]

    in_group = np.where(cand, group, -1)
    return {
        "row": f["row"].to_numpy(dtype=np.int64),
        "disposition": _coded(disp, _DISPOSITIONS),
        "reason": _coded(r_code, reason_labels),
        "detail": _coded(d_code, detail_labels),
        "next_open": nxt,
        "consent_event_at": consent_ev["consent_event_at"],
        "consent_expires_at": consent_ev["consent_expires_at"],
        "consent_source": consent_ev["consent_source"],
        "local_times": _coded(in_group, [" ".join(d.local_times) if d else "" for d in decisions]),
        "zones": _coded(in_group, [" ".join(d.zones) if d else "" for d in decisions]),
        "dnc_lists_checked": _coded(
            np.select([~cand, has_phone], [0, 1], default=2),
            ["", gate.dnc.checked_label(), NO_PHONE_DNC],
        ),
        "rnd_queried_at": rnd_ev,
    }


def plan_columns_frame(cols: Mapping[str, Any]) -> pd.DataFrame:
    """`plan_columns` as `build_plan`'s frame (strings; evidence "" when there is none)."""

    def evidence(arr: pa.Array) -> pd.api.extensions.ExtensionArray:
        return _strings(pc.fill_null(decoded(arr), ""))

    return pd.DataFrame(
        {
            "row": cols["row"],
            "disposition": _strings(decoded(cols["disposition"])),
            "reason": _strings(decoded(cols["reason"])),
            "detail": _strings(decoded(cols["detail"])),
            "next_open": pd.Series(cols["next_open"].view("datetime64[ns]")).dt.tz_localize(
                "UTC"
            ),
            **{k: evidence(cols[k]) for k in EVIDENCE_KEYS},
        }
    )


def build_plan(contacts: Contacts, gate: Gate, at: datetime) -> pd.DataFrame:
    """One verdict per input row, in order; agrees with `Gate.check` row by row (tested).

    Columns: row, disposition, reason, detail, next_open (UTC or NaT), and the evidence columns
    consent_event_at, consent_expires_at, consent_source, local_times, zones, dnc_lists_checked.
    Rows the contacts stage already rejected (blank_phone, invalid_phone, duplicate) keep that
    reason and are suppressed; their evidence is empty.
    """
    return plan_columns_frame(plan_columns(contacts, gate, at))


def plan_counts(plan: pd.DataFrame) -> pd.DataFrame:
    """Counts by disposition and reason (what `campaign-dialer check` prints)."""
    counts = (
        plan.assign(reason=plan["reason"].fillna("-"))
        .groupby(["disposition", "reason"], sort=True)
        .size()
        .rename("count")
        .reset_index()
    )
    return counts


def load_inputs(
    contacts_path: Path,
    *,
    default_region: str,
    columns: Mapping[str, str | None] | None = None,
    dnc_paths: Sequence[Path] = (),
    consent_path: Path | None = None,
    ledger: DncLedger | None = None,
) -> tuple[Contacts, DncList, ConsentLedger | None]:
    """Load contacts, DNC lists and consent ledger concurrently; same result as one by one.

    Most of the work is arrow parsing and kernels that release the GIL, so the three files
    overlap on two cores. The first error (contacts, then DNC, then consent) is raised.
    """
    with ThreadPoolExecutor(3) as pool:
        fc = pool.submit(
            load_contacts, contacts_path, default_region=default_region, columns=columns
        )
        fd = pool.submit(DncList.load, dnc_paths, default_region=default_region, ledger=ledger)
        fl = (
            pool.submit(ConsentLedger.load, consent_path, default_region=default_region)
            if consent_path is not None
            else None
        )
        contacts = fc.result()
        dnc = fd.result()
        consent = fl.result() if fl is not None else None
    return contacts, dnc, consent
