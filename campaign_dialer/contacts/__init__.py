"""Contacts: read a CRM export, normalise every phone to E.164, one row per person.

Pure: reads files, never writes one; no network, no logging; imports only `errors` from the
rest of campaign_dialer. The compliance stage (`campaign_dialer.compliance`) builds on this
package and reads its DNC lists, consent ledger and RND answers with the same reader
(`csvfile`). Modules: `tables` (shipped tables), `csvfile` (the one CSV reader), `phones`,
`hints` (zones, states, postal codes), `roles` (header roles), `ids` (contact ids), `dedupe`
(one person, one call), `load` (`load_contacts`, in named steps), `campaign` (a campaign's
contacts, the one reader every command uses), `keys` (`person_key`, who a row rings).

Choices a careful compliance engineer makes here, and why:

- Phones are read as text (pyarrow, every column a string): a numeric dtype turns
  `+14155550188` into a number and loses the `+` and leading zeros.
- The file is read whole before anything else happens; any row that cannot be read (wrong number
  of fields, bytes that are not UTF-8) rejects the file with `ContactsError` naming file, data row
  and column. A file we half-understood is not a file we may dial from.
- Normalisation is exactly `phonenumbers` (parse with the campaign's default region, then
  `is_valid_number`, then E.164). The batch path (`normalize_phones`) parses each distinct string
  once and takes a vectorised fast path for the clean NANP spellings (`+1 415 555 0188`,
  `(415) 555-0188`, `1-415-555-0188`, ...), validating them with the same metadata patterns and
  the same region-selection order `phonenumbers` uses; the tests check it against the library.
- Time zone / state columns become `tz_hint`: an IANA zone name, a US state or Canadian province
  code, a few common zone words (EST, Pacific, ...) mapped to IANA zones, or several of those
  joined by ";" (a row with both a zone and a state column keeps both: the person may be in
  either, and the calling window must hold in every candidate zone). A value we cannot interpret
  is kept as written: the compliance stage then treats the zone as unknown (not callable by
  default) rather than silently ignoring what the CRM said about where the person is.
- One person, one call: rows with the same E.164 or the same contact_id (transitively) form one
  group; the first row wins and the others become `duplicate` with `duplicate_of=<row>`. Rows
  already unusable (blank or invalid phone) keep that reason and take no part in grouping.
  A row with a contact_id and a blank phone is callable by contact_id; `blank_phone` is only
  for a row with nothing to call; an invalid phone is `invalid_phone` even with a contact_id
  (we will not guess which number the platform would ring).
- Every input column is passed through untouched, as text, in input order (`extra_columns`
  lists their frame names). A header that clashes with a standard column (`row`, `reason`, ...)
  is renamed "<name> (input)"; a repeated header gets ".1", ".2" as pandas does.
- Header detection: `ROLE_ALIASES` (the shipped `data/header_aliases.csv`), compared case- and
  punctuation-insensitively, then by values for state and time zone; an explicit
  `[inputs.columns]` mapping always wins and must name a header that exists. Every phone-like
  column is read (main, then mobile, then others); a row is dialed on its first valid number
  and dedupe runs over all its numbers. Spreadsheet spellings are undone by
  `clean_phone_text`, the same for DNC lists and consent. Delimiter: comma, or `;`, tab or `|`
  when the header has no comma. Encoding: UTF-8 with or without BOM, UTF-16 with a BOM
  (Excel's "Unicode text"), else Windows-1252 with a warning; `encoding=` overrides.
"""

from __future__ import annotations

from campaign_dialer.contacts.campaign import load_campaign_contacts
from campaign_dialer.contacts.csvfile import (
    ContactsError,
    CsvBytes,
    csv_source,
    report_footer,
    sniff_encoding,
)
from campaign_dialer.contacts.dedupe import person_groups
from campaign_dialer.contacts.hints import normalize_hint, postal_info
from campaign_dialer.contacts.keys import person_key, person_keys, phone_key
from campaign_dialer.contacts.load import Contacts, load_contacts
from campaign_dialer.contacts.phones import (
    clean_phone_text,
    nanp_fast_path,
    normalize_phone,
    normalize_phones,
    parse_phone,
    split_affixes,
)
from campaign_dialer.contacts.roles import COLUMN_KEYS
from campaign_dialer.contacts.tables import (
    CA_PROVINCES,
    PHONE_ROLES,
    ROLE_ALIASES,
    STANDARD_COLUMNS,
    STATE_CODES,
    STRING,
    US_STATES,
)

__all__ = [
    "CA_PROVINCES",
    "COLUMN_KEYS",
    "PHONE_ROLES",
    "ROLE_ALIASES",
    "STANDARD_COLUMNS",
    "STATE_CODES",
    "STRING",
    "US_STATES",
    "Contacts",
    "ContactsError",
    "clean_phone_text",
    "CsvBytes",
    "csv_source",
    "load_campaign_contacts",
    "load_contacts",
    "nanp_fast_path",
    "normalize_hint",
    "normalize_phone",
    "normalize_phones",
    "parse_phone",
    "person_groups",
    "person_key",
    "person_keys",
    "phone_key",
    "postal_info",
    "report_footer",
    "sniff_encoding",
    "split_affixes",
]
