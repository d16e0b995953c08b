"""The days a state's holiday rule covers: `federal` and the state-only days of the table.

The US federal holidays (5 U.S.C. 6103) come from the `holidays` package, both the actual
and the observed date: a state that forbids calls "on a holiday" may mean either, so neither
is called. The state-only days stay data in `data/state_rules.csv`; this module only reads
their spellings: easter-N (N days before Easter), mmm-dd (a fixed date, with the Friday/Monday
it is observed on), mmm-monK (K-th Monday), mmm-monL (last Monday).
"""

from __future__ import annotations

import functools
import re
from datetime import date, timedelta

import holidays
from dateutil.easter import easter
from dateutil.relativedelta import MO, relativedelta

_MONTHS = {
    m: i
    for i, m in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
    )
}


@functools.lru_cache(maxsize=256)
def us_federal_holidays(year: int) -> frozenset[date]:
    """US federal holidays of `year`, actual and observed dates (New Year's Day of `year + 1`
    observed on Dec 31 included)."""
    return frozenset(d for d in holidays.US(years=[year, year + 1]) if d.year == year)


def _observed(d: date) -> set[date]:
    """The day itself and, for a weekend day, the Friday/Monday it is observed on."""
    if d.weekday() == 5:
        return {d, d - timedelta(days=1)}
    if d.weekday() == 6:
        return {d, d + timedelta(days=1)}
    return {d}


def holiday_spec(spec: str, year: int) -> set[date]:
    """The days one `holidays` entry of the rules table names in `year`; ValueError if unknown."""
    if spec == "federal":
        return set(us_federal_holidays(year))
    if spec.startswith("easter-"):
        return {easter(year) - timedelta(days=int(spec[7:]))}
    m = re.fullmatch(r"([a-z]{3})-(\d\d)", spec)
    if m:
        return _observed(date(year, _MONTHS[m.group(1)], int(m.group(2))))
    m = re.fullmatch(r"([a-z]{3})-mon([1-5L])", spec)
    if m:
        first = date(year, _MONTHS[m.group(1)], 1)
        if m.group(2) == "L":
            return {first + relativedelta(day=31, weekday=MO(-1))}
        return {first + relativedelta(weekday=MO(int(m.group(2))))}
    raise ValueError(f"state_rules.csv: unknown holiday {spec!r}")
