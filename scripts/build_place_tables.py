"""Rebuild the shipped zone-name and postal-code tables (campaign_dialer/data/).

    pip install zipcodes==3.0.0 tzlocal==5.4.5   # only for this script, not a dependency
    python scripts/build_place_tables.py

- `zone_names.csv`: Windows time-zone names -> IANA, from tzlocal's `windows_tz.win_tz` (the
  Unicode CLDR windowsZones table, territory "001"), plus the Rails/ActiveSupport
  `ActiveSupport::TimeZone::MAPPING` names of the Americas and a few others (written out below,
  as that gem spells them; Zendesk, Intercom and many CRMs export these).
- `postal_zones.csv`: US ZIP code prefix (3 digits) -> every IANA zone and state of any ZIP under
  it, from the `zipcodes` package's embedded dataset (unitedstateszipcodes.org base data, USPS
  ZIP Locale Detail); a prefix spanning two zones keeps both (the window must hold in each).
  Canadian postal codes by first letter -> province (Canada Post's forward sortation areas).
"""

from __future__ import annotations

import importlib.metadata
from datetime import date
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "campaign_dialer" / "data"

RAILS = {
    "International Date Line West": "Etc/GMT+12", "Midway Island": "Pacific/Midway",
    "American Samoa": "Pacific/Pago_Pago", "Hawaii": "Pacific/Honolulu",
    "Alaska": "America/Juneau", "Pacific Time (US & Canada)": "America/Los_Angeles",
    "Tijuana": "America/Tijuana", "Mountain Time (US & Canada)": "America/Denver",
    "Arizona": "America/Phoenix", "Chihuahua": "America/Chihuahua",
    "Mazatlan": "America/Mazatlan", "Central Time (US & Canada)": "America/Chicago",
    "Saskatchewan": "America/Regina", "Guadalajara": "America/Mexico_City",
    "Mexico City": "America/Mexico_City", "Monterrey": "America/Monterrey",
    "Central America": "America/Guatemala", "Eastern Time (US & Canada)": "America/New_York",
    "Indiana (East)": "America/Indiana/Indianapolis", "Bogota": "America/Bogota",
    "Lima": "America/Lima", "Quito": "America/Lima", "Atlantic Time (Canada)": "America/Halifax",
    "Caracas": "America/Caracas", "La Paz": "America/La_Paz", "Santiago": "America/Santiago",
    "Newfoundland": "America/St_Johns", "Brasilia": "America/Sao_Paulo",
    "Buenos Aires": "America/Argentina/Buenos_Aires", "Montevideo": "America/Montevideo",
    "Georgetown": "America/Guyana", "Puerto Rico": "America/Puerto_Rico",
    "Greenland": "America/Godthab", "Mid-Atlantic": "Atlantic/South_Georgia",
    "Azores": "Atlantic/Azores", "Cape Verde Is.": "Atlantic/Cape_Verde",
    "Dublin": "Europe/Dublin", "Edinburgh": "Europe/London", "Lisbon": "Europe/Lisbon",
    "London": "Europe/London", "Casablanca": "Africa/Casablanca", "Monrovia": "Africa/Monrovia",
    "UTC": "Etc/UTC", "Amsterdam": "Europe/Amsterdam", "Berlin": "Europe/Berlin",
    "Madrid": "Europe/Madrid", "Paris": "Europe/Paris", "Rome": "Europe/Rome",
    "Guam": "Pacific/Guam",
}  # fmt: skip

CA_LETTERS = {
    "A": "NL", "B": "NS", "C": "PE", "E": "NB", "G": "QC", "H": "QC", "J": "QC", "K": "ON",
    "L": "ON", "M": "ON", "N": "ON", "P": "ON", "R": "MB", "S": "SK", "T": "AB", "V": "BC",
    "X": "NT NU", "Y": "YT",
}  # fmt: skip


def main() -> None:
    import zipcodes
    from tzlocal.windows_tz import win_tz

    today = date.today().isoformat()
    tzl = importlib.metadata.version("tzlocal")
    lines = [
        f"# Zone names CRMs write -> IANA zones. Built {today} by scripts/build_place_tables.py:",
        f"# windows = tzlocal {tzl} windows_tz.win_tz (Unicode CLDR windowsZones, territory 001);",
        "# rails = ActiveSupport::TimeZone::MAPPING (Ruby on Rails), Americas and a few others.",
        "name,kind,zones",
    ]
    lines += [f'"{k}",windows,{v}' for k, v in sorted(win_tz.items())]
    lines += [f'"{k}",rails,{v}' for k, v in sorted(RAILS.items())]
    (DATA / "zone_names.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")

    zv = importlib.metadata.version("zipcodes")
    acc: dict[str, tuple[set[str], set[str]]] = {}
    for z in zipcodes.list_all():
        if not z.get("timezone") or not z.get("state"):
            continue
        zones, states = acc.setdefault(z["zip_code"][:3], (set(), set()))
        zones.add(z["timezone"])
        states.add(z["state"])
    out = [
        f"# Postal code -> zones and states. Built {today} by scripts/build_place_tables.py",
        f"# from the zipcodes {zv} package dataset (unitedstateszipcodes.org, USPS ZIP Locale",
        "# Detail):",
        "# every zone and state of any ZIP under a 3-digit prefix; Canada: first letter of the",
        "# postal code -> province (Canada Post forward sortation areas), zones from area codes.",
        "prefix,states,zones",
    ]
    out += [
        f"{p},{' '.join(sorted(s))},{' '.join(sorted(z))}" for p, (z, s) in sorted(acc.items())
    ]
    out += [f"CA:{k},{v}," for k, v in CA_LETTERS.items()]
    (DATA / "postal_zones.csv").write_text("\n".join(out) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
