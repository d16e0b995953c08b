"""Compliance: who may be called, and when. Do-Not-Call, consent, calling hours.

Pure: reads its input files, never writes one; no network, no SQL, no logging. The engine
re-checks every call here at the moment of dialing (`Gate.check`, from memory only);
`build_plan` gives the same answers for a whole contacts file at once (tested row by row).
Choices a careful compliance engineer makes here, and why (each one is tested):

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
  campaigns; the gate sees it as numbers in memory (`ledger.LedgerView`). Writing it (lock,
  fsync) is `campaign_dialer.store.ledger_file`'s job; `Gate.reloaded` catches up with what others
  appended, in a worker thread.
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
  observed date (the `holidays` package), plus the state-only days listed in the table.
  Canada: the CRTC telemarketing hours for every province. Start inclusive, end exclusive:
  21:00:00 is already too late.
- A row may have several numbers (`phone_others`): a DNC entry or a revocation on any of them
  holds the row back (`Gate.check(other_phones=...)`); consent and window are the dialed one's.
- Contacts with a contact_id but no phone are callable by contact_id: they cannot be checked
  against local DNC lists (no number; the evidence says so) and have no zone unless the CSV
  gives one (so, by default, they are not callable). The platform's own DNC check still applies.

Modules, one job each: `tables` (area codes), `state_rules` and `holiday` (the state rules table),
`window`, `dnc`, `ledger`, `consent`, `reassigned` (the inputs); `rules` (every rule, once:
its one-row and its column check, in the one ordered list), `gate` (the one decision, one row)
and `plan` (the same walk for a whole file), `inputs` (loading them at once).
"""

from __future__ import annotations

from campaign_dialer.compliance.base import (
    DNC_MAX_AGE_DAYS,
    DNC_WARN_AGE_DAYS,
    EVIDENCE_KEYS,
    LOOKAHEAD_DAYS,
    NO_PHONE_DNC,
    US_FEDERAL_WINDOW,
    ComplianceError,
    from_ns,
    search_sorted,
    to_ns,
)
from campaign_dialer.compliance.consent import ConsentDecision, ConsentLedger
from campaign_dialer.compliance.dnc import DncList, DncListMeta, dnc_age_days
from campaign_dialer.compliance.gate import (
    DNC_LIST_STALE,
    NO_PHONE_DETAIL,
    Gate,
    HistoryRule,
    Hold,
    Verdict,
)
from campaign_dialer.compliance.holiday import us_federal_holidays
from campaign_dialer.compliance.inputs import load_inputs
from campaign_dialer.compliance.ledger import LedgerNumbers, LedgerView
from campaign_dialer.compliance.plan import (
    NAT,
    PLAN_COLUMNS,
    build_plan,
    codes_of,
    decoded,
    holds_again,
    plan_columns,
    plan_columns_frame,
    plan_counts,
    row_columns,
)
from campaign_dialer.compliance.reassigned import ReassignedAnswers, day_ns
from campaign_dialer.compliance.state_rules import (
    RULES_MAX_AGE_DAYS,
    StateRules,
    builtin_state_rules,
    holidays_for,
    load_state_rules,
    max_calls_per_24h,
    parse_state_rules,
)
from campaign_dialer.compliance.tables import state_for_number, states_for_number
from campaign_dialer.compliance.window import CallingWindow, WindowDecision

__all__ = [
    "DNC_LIST_STALE",
    "DNC_MAX_AGE_DAYS",
    "DNC_WARN_AGE_DAYS",
    "EVIDENCE_KEYS",
    "LOOKAHEAD_DAYS",
    "NAT",
    "NO_PHONE_DETAIL",
    "NO_PHONE_DNC",
    "PLAN_COLUMNS",
    "RULES_MAX_AGE_DAYS",
    "US_FEDERAL_WINDOW",
    "CallingWindow",
    "ComplianceError",
    "ConsentDecision",
    "ConsentLedger",
    "DncList",
    "DncListMeta",
    "Gate",
    "HistoryRule",
    "Hold",
    "LedgerNumbers",
    "LedgerView",
    "ReassignedAnswers",
    "StateRules",
    "Verdict",
    "WindowDecision",
    "day_ns",
    "from_ns",
    "to_ns",
    "build_plan",
    "holds_again",
    "codes_of",
    "day_ns",
    "from_ns",
    "builtin_state_rules",
    "decoded",
    "dnc_age_days",
    "holidays_for",
    "load_inputs",
    "load_state_rules",
    "max_calls_per_24h",
    "parse_state_rules",
    "plan_columns",
    "plan_columns_frame",
    "plan_counts",
    "row_columns",
    "search_sorted",
    "state_for_number",
    "to_ns",
    "states_for_number",
    "us_federal_holidays",
]
