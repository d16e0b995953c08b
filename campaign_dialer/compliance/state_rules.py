"""The state rules table (`data/state_rules.csv` or a team's `compliance.rules_file`)."""

from __future__ import annotations

import csv
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path

from campaign_dialer.compliance.base import DATA, ComplianceError, aware
from campaign_dialer.compliance.holiday import holiday_spec
from campaign_dialer.compliance.tables import states_for_number

Interval = tuple[time, time]
NO_CALLS = "none"


@dataclass(frozen=True)
class StateRule:
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
        return NO_CALLS
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

    rules: Mapping[str, StateRule]
    table_date: date
    origin: str  # "built-in" or the team's file

    def get(self, state: str) -> StateRule | None:
        return self.rules.get(state)

    def age_days(self, at: datetime) -> int:
        return (aware(at).astimezone(UTC).date() - self.table_date).days


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
    rules: dict[str, StateRule] = {}
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
                holiday_spec(spec, 2026)
            except (ValueError, KeyError):
                raise ValueError(f"{where}, column 'holidays': unknown holiday {spec!r}") from None
        rules[st] = StateRule(
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




def max_calls_per_24h(phone_e164: str, rules: StateRules | None = None) -> int | None:
    """The strictest per-24 h call cap among the area code's states (FL/OK/MD: 3), else None."""
    table = rules or builtin_state_rules()
    caps = [
        rule.max_24h
        for st in states_for_number(phone_e164)
        if (rule := table.get(st)) is not None and rule.max_24h is not None
    ]
    return min(caps) if caps else None



@functools.lru_cache(maxsize=1024)
def holidays_for(state: str, year: int, rules: StateRules | None = None) -> frozenset[date]:
    """The days `state`'s holiday rule applies to in `year` (empty if it has none)."""
    rule = (rules or builtin_state_rules()).get(state)
    if rule is None:
        return frozenset()
    days: set[date] = set()
    for spec in rule.holidays:
        days |= holiday_spec(spec, year)
    return frozenset(days)

