"""Build campaign_dialer/data/area_codes.csv: NANP area code -> country, state, every IANA zone.

Why a shipped table and not `phonenumbers.timezone` at run time: the library resolves split area
codes by exchange and falls back to ONE zone for an exchange it does not list, and gives new
overlay codes (448, 364, 930, 458, ...) a single zone although they cover the same ground as the
split code they overlay. The calling-window check needs the union of every zone an area code can
be in, so this script takes, for each area code:

1. the union of the zones of every `phonenumbers` time-zone prefix under it (area and exchange
   level), and the states named by every geocoder prefix under it;
2. unioned across the area codes of one overlay complex (same ground, so same zones and states);
3. plus the few manual additions below, each with its reason.

A test (tests/test_compliance.py) fails when an installed `phonenumbers` knows a zone for an area
code that this table lacks: re-run this script then (`python scripts/build_area_codes.py`).
"""

from __future__ import annotations

import argparse
import re
from collections import Counter, defaultdict
from datetime import date
from pathlib import Path

import phonenumbers
from phonenumbers.geodata import GEOCODE_DATA
from phonenumbers.tzdata import TIMEZONE_DATA

OUT = Path(__file__).resolve().parent.parent / "campaign_dialer" / "data" / "area_codes.csv"

# Overlay complexes whose members cover the same ground (NANPA area code maps, nanpa.com).
# Only complexes where the zones or states of the members can differ in the library's data matter;
# the rest are listed for completeness of the Canadian and split-zone states.
OVERLAYS: list[tuple[str, ...]] = [
    ("850", "448"),  # Florida panhandle: Central west of the Apalachicola, Eastern east of it
    ("270", "364"),  # western Kentucky: Central and Eastern
    ("812", "930"),  # southern Indiana: Central (SW corner) and Eastern
    ("541", "458"),  # Oregon outside Portland: Pacific, Malheur County Mountain
    ("208", "986"),  # Idaho: Mountain south, Pacific north
    ("503", "971"),
    ("360", "564"),
    ("256", "938"),
    ("205", "659"),
    ("210", "726"),
    ("903", "430"),
    ("604", "250", "778", "236", "672", "257"),  # BC: Pacific; NE BC, Creston Mountain
    ("403", "780", "587", "825", "368"),  # Alberta
    ("306", "639", "474"),  # Saskatchewan (Lloydminster follows Alberta)
    ("204", "431", "584"),  # Manitoba
    ("705", "249", "683"),
    ("416", "647", "437", "942"),
    ("905", "289", "365", "742"),
    ("519", "226", "548", "382"),
    ("613", "343", "753"),
    ("418", "581", "367"),  # eastern Quebec: Eastern, Magdalen Islands Atlantic
    ("819", "873", "468"),
    ("514", "438", "263"),
    ("450", "579", "354"),
    ("506", "428"),
    ("902", "782"),
    ("709", "879"),  # Newfoundland time, Labrador Atlantic
]

# Additions the library's data lacks, each with why.
MANUAL_ZONES: dict[str, tuple[str, str]] = {
    "334": (
        "America/New_York",
        "Phenix City and the Chattahoochee valley (AL) keep Eastern time unofficially",
    ),
    "986": ("America/Denver", "overlays 208 (southern Idaho is Mountain)"),
}

US_STATES = {
    "Alabama": "AL", "Alaska": "AK", "Arizona": "AZ", "Arkansas": "AR", "California": "CA",
    "Colorado": "CO", "Connecticut": "CT", "Delaware": "DE", "District of Columbia": "DC",
    "Washington D.C.": "DC", "Washington DC": "DC", "Florida": "FL", "Georgia": "GA",
    "Hawaii": "HI", "Idaho": "ID", "Illinois": "IL", "Indiana": "IN", "Iowa": "IA",
    "Kansas": "KS", "Kentucky": "KY", "Louisiana": "LA", "Maine": "ME", "Maryland": "MD",
    "Massachusetts": "MA", "Michigan": "MI", "Minnesota": "MN", "Mississippi": "MS",
    "Missouri": "MO", "Montana": "MT", "Nebraska": "NE", "Nevada": "NV", "New Hampshire": "NH",
    "New Jersey": "NJ", "New Mexico": "NM", "New York": "NY", "North Carolina": "NC",
    "North Dakota": "ND", "Ohio": "OH", "Oklahoma": "OK", "Oregon": "OR", "Pennsylvania": "PA",
    "Rhode Island": "RI", "South Carolina": "SC", "South Dakota": "SD", "Tennessee": "TN",
    "Texas": "TX", "Utah": "UT", "Vermont": "VT", "Virginia": "VA", "Washington": "WA",
    "West Virginia": "WV", "Wisconsin": "WI", "Wyoming": "WY",
}  # fmt: skip
CA_PROVINCES = {
    "Alberta": "AB", "British Columbia": "BC", "Manitoba": "MB", "New Brunswick": "NB",
    "Newfoundland and Labrador": "NL", "Nova Scotia": "NS", "Ontario": "ON",
    "Prince Edward Island": "PE", "Quebec": "QC", "Saskatchewan": "SK", "Yukon": "YT",
    "Northwest Territories": "NT", "Nunavut": "NU",
}  # fmt: skip
NAMES = {**US_STATES, **CA_PROVINCES}
US_CODES = set(US_STATES.values())
CA_CODES = set(CA_PROVINCES.values())
CITY_STATE = re.compile(r",\s*([A-Z]{2})$")


def states_in(description: str) -> set[str]:
    """The state/province codes a geocoder description names ("Tallahassee, FL", "Ontario")."""
    m = CITY_STATE.search(description)
    if m and m.group(1) in US_CODES | CA_CODES:
        return {m.group(1)}
    found = set()
    for part in re.split(r"\s*/\s*", description):
        if part in NAMES:
            found.add(NAMES[part])
    return found


def region_of(npa: str) -> str | None:
    """The NANP region (US, CA, PR, JM, ...) phonenumbers gives valid numbers of the area code."""
    for exchange in range(200, 1000):
        num = phonenumbers.parse(f"+1{npa}{exchange}4567")
        if phonenumbers.is_valid_number(num):
            return phonenumbers.region_code_for_number(num)
    return None


def build() -> list[dict[str, str]]:
    zones: dict[str, set[str]] = defaultdict(set)
    states: dict[str, Counter[str]] = defaultdict(Counter)
    for key, zs in TIMEZONE_DATA.items():
        if key.startswith("1") and len(key) >= 4:
            zones[key[1:4]].update(z for z in zs if z != "Etc/Unknown")
    for key, texts in GEOCODE_DATA.items():
        if key.startswith("1") and len(key) >= 4:
            states[key[1:4]].update(states_in(texts.get("en", "")))
    primary = {npa: [s for s, _ in c.most_common()] for npa, c in states.items()}
    notes: dict[str, list[str]] = defaultdict(list)
    for group in OVERLAYS:
        z = set().union(*(zones[n] for n in group))
        s = sum((states[n] for n in group), Counter())
        for n in group:
            if zones[n] != z or set(states[n]) != set(s):
                notes[n].append("overlay " + "/".join(group))
            zones[n] |= z
            primary[n] = [x for x, _ in s.most_common()]
    for npa, (zone, why) in MANUAL_ZONES.items():
        zones[npa].add(zone)
        notes[npa].append(why)
    rows = []
    for npa in sorted(zones):
        if not zones[npa]:
            continue
        region = region_of(npa)
        if region is None:
            continue  # no valid number in it: not in service
        st = primary.get(npa, [])
        if region in ("PR", "GU", "VI", "AS", "MP"):
            st = [region]  # US territories: federal rules apply, no state table row
        elif region not in ("US", "CA"):
            st = []
        rows.append(
            {
                "npa": npa,
                "region": region,
                "states": " ".join(st),
                "zones": " ".join(sorted(zones[npa])),
                "note": "; ".join(notes[npa]),
            }
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    rows = build()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", encoding="utf-8", newline="") as f:
        f.write(
            f"# NANP area codes -> region, states, every IANA zone. Built {date.today()} by\n"
            f"# scripts/build_area_codes.py from phonenumbers {phonenumbers.__version__}"
            " (tzdata + geocoder, Google libphonenumber data)\n"
            "# unioned over each area code's exchanges and over NANPA overlay complexes;"
            " states most frequent first; manual additions noted per row.\n"
        )
        f.write("npa,region,states,zones,note\n")
        for r in rows:
            note = r["note"].replace('"', "'")
            f.write(f'{r["npa"]},{r["region"]},{r["states"]},{r["zones"]},"{note}"\n')
    print(f"wrote {len(rows)} area codes to {args.out}")


if __name__ == "__main__":
    main()
