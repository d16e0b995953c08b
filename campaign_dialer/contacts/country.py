"""A contacts row's country cell, as the region its phone number must belong to.

A number written without its country code is read with the campaign's `default_region`; a
Mexican customer's `55 1234 5678` then reads as a valid New Jersey number (+1 551...), and a
stranger would be called. The country column says where the number belongs, so a number of
another calling code than that country's is not dialed.
"""

from __future__ import annotations

import re

import phonenumbers

# Names and ISO-3 codes as CRMs export them (HubSpot "Country/Region", Salesforce "Mailing
# Country"): lower case, letters and spaces only. ISO-2 codes are phonenumbers' own regions.
_NAMES = {
    "united states": "US", "united states of america": "US", "usa": "US", "us": "US",
    "u s a": "US", "u s": "US", "america": "US", "estados unidos": "US",
    "canada": "CA", "can": "CA", "mexico": "MX", "méxico": "MX", "mex": "MX",
    "puerto rico": "PR", "pri": "PR",
    "united kingdom": "GB", "uk": "GB", "u k": "GB", "great britain": "GB", "britain": "GB",
    "england": "GB", "scotland": "GB", "wales": "GB", "northern ireland": "GB", "gbr": "GB",
    "ireland": "IE", "irl": "IE", "germany": "DE", "deutschland": "DE", "deu": "DE",
    "france": "FR", "fra": "FR", "spain": "ES", "españa": "ES", "espana": "ES", "esp": "ES",
    "italy": "IT", "italia": "IT", "ita": "IT", "netherlands": "NL", "the netherlands": "NL",
    "nld": "NL", "belgium": "BE", "switzerland": "CH", "austria": "AT", "portugal": "PT",
    "sweden": "SE", "norway": "NO", "denmark": "DK", "finland": "FI", "poland": "PL",
    "india": "IN", "ind": "IN", "china": "CN", "japan": "JP", "south korea": "KR",
    "korea": "KR", "philippines": "PH", "phl": "PH", "australia": "AU", "aus": "AU",
    "new zealand": "NZ", "brazil": "BR", "brasil": "BR", "bra": "BR", "argentina": "AR",
    "colombia": "CO", "chile": "CL", "peru": "PE", "perú": "PE", "venezuela": "VE",
    "guatemala": "GT", "honduras": "HN", "el salvador": "SV", "costa rica": "CR",
    "panama": "PA", "panamá": "PA", "dominican republic": "DO", "jamaica": "JM",
    "bahamas": "BS", "israel": "IL", "south africa": "ZA", "nigeria": "NG",
    "united arab emirates": "AE", "uae": "AE", "singapore": "SG", "hong kong": "HK",
    "taiwan": "TW", "vietnam": "VN", "viet nam": "VN", "thailand": "TH", "indonesia": "ID",
    "malaysia": "MY", "pakistan": "PK", "turkey": "TR", "türkiye": "TR", "russia": "RU",
    "ukraine": "UA", "egypt": "EG", "saudi arabia": "SA",
}


def country_region(cell: str) -> str | None:
    """The region code a country cell names (`Mexico`, `MX`, `MEX`, `U.S.A.`), None when the
    cell is blank or not a country we know."""
    text = re.sub(r"[^\w]+", " ", cell.strip().lower()).strip()
    if not text:
        return None
    if text in _NAMES:
        return _NAMES[text]
    code = text.upper()
    if len(code) == 2 and code in phonenumbers.SUPPORTED_REGIONS:
        return code
    return None


def calling_code(region: str) -> int:
    return int(phonenumbers.country_code_for_region(region))
