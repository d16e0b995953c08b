"""The calling window: may a number be rung at this instant in every zone it may be in."""

from __future__ import annotations

import bisect
import functools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from phonenumbers.tzdata import TIMEZONE_DATA

from campaign_dialer.compliance.base import (
    LOOKAHEAD_DAYS,
    OUTSIDE_WINDOW,
    UNKNOWN_TIMEZONE,
    US_FEDERAL_WINDOW,
    aware,
)
from campaign_dialer.compliance.holiday import us_federal_holidays
from campaign_dialer.compliance.state_rules import (
    NO_CALLS,
    Interval,
    StateRules,
    builtin_state_rules,
    holidays_for,
)
from campaign_dialer.compliance.tables import area_codes, npa_of, state_zones
from campaign_dialer.contacts import STATE_CODES, postal_info


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
def _warm() -> None:
    """Load once per process what a check would otherwise read on first use: every zone of
    the area-code table and the federal holidays around today (the `holidays` package imports
    its US module lazily). A zone named only by a hint, or of a number outside NANP, is loaded
    by the plan, which decides every row before the engine asks `Gate.check` again."""
    for zones in state_zones().values():
        for z in zones:
            _zone(z)
    year = datetime.now(UTC).year
    for y in range(year - 1, year + 2):
        us_federal_holidays(y)


@functools.lru_cache(maxsize=1)
def _tz_keys() -> list[str]:
    return sorted(TIMEZONE_DATA)


@functools.lru_cache(maxsize=1 << 20)
def area_info(e164: str) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """(zones, states) of the number's area; None when nothing is known.

    NANP: the shipped area-code table. Elsewhere (and NANP codes not in it, e.g. toll-free):
    the longest `phonenumbers` time-zone prefix of the number, unioned with every longer prefix
    under it (its exchanges), so a fallback to one zone never hides the others. A number known
    only at country level gets every zone of its country, as the library says.
    """
    npa = npa_of(e164)
    if npa is not None and npa in area_codes():
        ac = area_codes()[npa]
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
            if st not in state_zones():
                return None
            zones.update(state_zones()[st])
            states.add(st)
        elif part.startswith("zip:"):
            info = postal_info(part)
            if info is None:
                return None
            p_states, p_zones = info
            for st in p_states:
                if not p_zones and st not in state_zones():
                    return None
                zones.update(p_zones or state_zones()[st])
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
        self.effective: Interval = eff
        self.clamped = eff != (start, end)
        self.state_rules = state_rules
        self.allow_unknown_timezone = allow_unknown_timezone
        self.rules = rules or builtin_state_rules()  # `compliance.rules_file` or the shipped one
        _warm()

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
            area = area_info(phone_e164)
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
                    if lim == NO_CALLS:
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
        return WindowDecision(False, OUTSIDE_WINDOW, nxt, zones, tuple(locals_), detail)

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
        aware(at)
        zones, states, why = self.candidates(phone_e164, tz_hint)
        if not zones:
            if self.allow_unknown_timezone:
                return WindowDecision(True, None, None, (), (), f"{why}; allowed by campaign")
            return WindowDecision(False, UNKNOWN_TIMEZONE, None, (), (), why)
        return self._evaluate(zones, states, at)

