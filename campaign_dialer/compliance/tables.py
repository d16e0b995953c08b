"""The shipped area-code table: which states and zones a NANP number may be in."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from campaign_dialer.contacts.tables import shipped_rows


@dataclass(frozen=True)
class AreaCode:
    region: str
    states: tuple[str, ...]
    zones: tuple[str, ...]


@functools.lru_cache(maxsize=1)
def area_codes() -> dict[str, AreaCode]:
    return {
        r["npa"]: AreaCode(r["region"], tuple(r["states"].split()), tuple(r["zones"].split()))
        for r in shipped_rows("area_codes.csv")
    }


@functools.lru_cache(maxsize=1)
def state_zones() -> dict[str, tuple[str, ...]]:
    """Every zone of every area code of a state: the candidates for a state hint."""
    acc: dict[str, set[str]] = {}
    for ac in area_codes().values():
        for st in ac.states:
            acc.setdefault(st, set()).update(ac.zones)
    return {st: tuple(sorted(z)) for st, z in acc.items()}



def npa_of(e164: str) -> str | None:
    if len(e164) == 12 and e164.startswith("+1"):
        return e164[2:5]
    return None


def states_for_number(phone_e164: str) -> tuple[str, ...]:
    """Every US state / CA province the number's area code may be in (most likely first)."""
    npa = npa_of(phone_e164)
    ac = area_codes().get(npa) if npa else None
    return ac.states if ac else ()


def state_for_number(phone_e164: str) -> str | None:
    """US/CA state or province of the area code (the most likely one); territories: PR, GU..."""
    states = states_for_number(phone_e164)
    return states[0] if states else None

