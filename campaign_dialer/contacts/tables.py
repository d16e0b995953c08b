"""The shipped tables contacts are read with: header aliases, state and province names,
the zone words CRMs write."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd

STRING = pd.StringDtype("pyarrow")  # missing values are pd.NA

DATA = Path(__file__).resolve().parent.parent / "data"


def shipped_rows(name: str) -> list[dict[str, str]]:
    """A table shipped in `data/` as rows: '#' lines are comments (the contacts' and the
    compliance tables alike)."""
    text = (DATA / name).read_text(encoding="utf-8")
    return list(csv.DictReader(ln for ln in text.splitlines() if ln and not ln.startswith("#")))


def _load_aliases() -> dict[str, tuple[str, ...]]:
    out: dict[str, list[str]] = {}
    for r in shipped_rows("header_aliases.csv"):
        out.setdefault(r["role"], []).append(r["alias"])
    return {role: tuple(v) for role, v in out.items()}


# Header spellings recognised per role, in priority order (first match wins), from the shipped
# table `data/header_aliases.csv` (HubSpot, Salesforce, Zoho, Pipedrive, Close, Salesloft,
# Outreach, Google Contacts, Outlook). Compared after lower-casing and collapsing every run of
# non-alphanumerics to "_" ("State/Region" -> "state_region"). An explicit [inputs.columns]
# mapping always wins over this. phone, mobile and other_phone are all phone columns.
ROLE_ALIASES: dict[str, tuple[str, ...]] = _load_aliases()
PHONE_ROLES = ("phone", "mobile", "other_phone")
STANDARD_COLUMNS = (
    "row", "contact_id", "phone_raw", "phone_e164", "tz_hint", "reason", "detail",
    "phone_column", "phone_extension", "phone_others",
)  # fmt: skip

US_STATES = {
    "AL": "Alabama", "AK": "Alaska", "AZ": "Arizona", "AR": "Arkansas", "CA": "California",
    "CO": "Colorado", "CT": "Connecticut", "DE": "Delaware", "DC": "District of Columbia",
    "FL": "Florida", "GA": "Georgia", "HI": "Hawaii", "ID": "Idaho", "IL": "Illinois",
    "IN": "Indiana", "IA": "Iowa", "KS": "Kansas", "KY": "Kentucky", "LA": "Louisiana",
    "ME": "Maine", "MD": "Maryland", "MA": "Massachusetts", "MI": "Michigan", "MN": "Minnesota",
    "MS": "Mississippi", "MO": "Missouri", "MT": "Montana", "NE": "Nebraska", "NV": "Nevada",
    "NH": "New Hampshire", "NJ": "New Jersey", "NM": "New Mexico", "NY": "New York",
    "NC": "North Carolina", "ND": "North Dakota", "OH": "Ohio", "OK": "Oklahoma", "OR": "Oregon",
    "PA": "Pennsylvania", "RI": "Rhode Island", "SC": "South Carolina", "SD": "South Dakota",
    "TN": "Tennessee", "TX": "Texas", "UT": "Utah", "VT": "Vermont", "VA": "Virginia",
    "WA": "Washington", "WV": "West Virginia", "WI": "Wisconsin", "WY": "Wyoming",
    "PR": "Puerto Rico", "GU": "Guam", "VI": "U.S. Virgin Islands", "AS": "American Samoa",
    "MP": "Northern Mariana Islands",
}  # fmt: skip
CA_PROVINCES = {
    "AB": "Alberta", "BC": "British Columbia", "MB": "Manitoba", "NB": "New Brunswick",
    "NL": "Newfoundland and Labrador", "NS": "Nova Scotia", "NT": "Northwest Territories",
    "NU": "Nunavut", "ON": "Ontario", "PE": "Prince Edward Island", "QC": "Quebec",
    "SK": "Saskatchewan", "YT": "Yukon",
}  # fmt: skip
STATE_CODES = {**US_STATES, **CA_PROVINCES}
STATE_BY_NAME = {name.lower(): code for code, name in STATE_CODES.items()} | {
    "washington dc": "DC", "washington d.c.": "DC", "quebec city": "QC", "québec": "QC",
    "newfoundland": "NL", "virgin islands": "VI", "us virgin islands": "VI",
}  # fmt: skip

# Zone words CRMs write instead of IANA names. "MST"/"Mountain" may be Arizona (no DST) or not,
# so they map to both: the window must then hold in both.
ZONE_WORDS: dict[str, tuple[str, ...]] = {
    "eastern": ("America/New_York",), "est": ("America/New_York",),
    "edt": ("America/New_York",), "et": ("America/New_York",),
    "us/eastern": ("America/New_York",),
    "central": ("America/Chicago",), "cst": ("America/Chicago",),
    "cdt": ("America/Chicago",), "ct": ("America/Chicago",), "us/central": ("America/Chicago",),
    "mountain": ("America/Denver", "America/Phoenix"), "mst": ("America/Denver", "America/Phoenix"),
    "mdt": ("America/Denver",), "mt": ("America/Denver", "America/Phoenix"),
    "us/mountain": ("America/Denver",), "arizona": ("America/Phoenix",),
    "pacific": ("America/Los_Angeles",), "pst": ("America/Los_Angeles",),
    "pdt": ("America/Los_Angeles",), "pt": ("America/Los_Angeles",),
    "us/pacific": ("America/Los_Angeles",),
    "alaska": ("America/Anchorage",), "akst": ("America/Anchorage",),
    "akdt": ("America/Anchorage",), "hawaii": ("Pacific/Honolulu",),
    "hst": ("Pacific/Honolulu",), "atlantic": ("America/Halifax",),
    "ast": ("America/Halifax", "America/Puerto_Rico"), "adt": ("America/Halifax",),
    "newfoundland time": ("America/St_Johns",), "nst": ("America/St_Johns",),
    "ndt": ("America/St_Johns",),
}  # fmt: skip

