"""The compliance rules, written once: one module per rule, each a class with its one-row
check (`check`, what `Gate.check` asks at every dial) and its column check (`columns`, what the
plan asks for a whole contacts file at once) side by side, and ONE ordered list, `RULES`, that
both walk (`base.walk_one`, `base.walk_columns`). The first rule that says no decides, in this
order, on both paths (see `base` for the two refinements: a stopping rule, a hold).

1. `contact.ContactVerdict`: the contacts file's own verdict (blank, invalid, duplicate, its
   DNC checkbox); nothing else is checked for such a row.
2. `stale.StaleList`: a national/state DNC list too old to dial against (dial time only).
3. `dnc.DoNotCall`: the DNC lists and the ledger, on every number of the row.
4. `consent.Consent`: consent (and a revocation on any number of the row).
5. `reassigned.Reassigned`: the Reassigned Numbers Database answers on a granted number.
6. `contact_id_only.ContactIdOnly`: a row with a contact_id but no number, when not allowed.
7. `window.CallingHours`: the recipient's local calling hours.
8. `history.ContactHistory`: the contact history's hold (another campaign called lately, a
   state's cap used up).

Next: the caller-ID rules (`compliance.callerid`: an owned number may call the person now) and
the budget (`monitor.budget`) are today decided by the engine after the gate; each becomes one
module here, a class with `check` and `columns`, added to `RULES` at its place (after the
history), and both paths follow. A new rule's reasons go in `vocab.Reason`; its code tables
live in its module. tests/test_rules.py checks every rule's two checks against each other.
"""

from __future__ import annotations

from campaign_dialer.compliance.rules.base import (
    NAT,
    Call,
    Decided,
    GateInputs,
    No,
    Rows,
    Rule,
    Said,
    walk_columns,
    walk_one,
)
from campaign_dialer.compliance.rules.consent import Consent
from campaign_dialer.compliance.rules.contact import ContactVerdict
from campaign_dialer.compliance.rules.contact_id_only import (
    NO_PHONE_DETAIL,
    NO_PHONE_NUMBER,
    ContactIdOnly,
)
from campaign_dialer.compliance.rules.dnc import DoNotCall
from campaign_dialer.compliance.rules.history import ContactHistory, HistoryRule, Hold
from campaign_dialer.compliance.rules.reassigned import Reassigned
from campaign_dialer.compliance.rules.stale import StaleList
from campaign_dialer.compliance.rules.window import CallingHours

RULES: tuple[Rule, ...] = (
    ContactVerdict(),
    StaleList(),
    DoNotCall(),
    Consent(),
    Reassigned(),
    ContactIdOnly(),
    CallingHours(),
    ContactHistory(),
    # the caller-ID rules and the budget come here (see the module doc)
)

__all__ = [
    "NAT",
    "NO_PHONE_DETAIL",
    "NO_PHONE_NUMBER",
    "RULES",
    "Call",
    "CallingHours",
    "Consent",
    "ContactHistory",
    "ContactIdOnly",
    "ContactVerdict",
    "Decided",
    "DoNotCall",
    "GateInputs",
    "HistoryRule",
    "Hold",
    "No",
    "Reassigned",
    "Rows",
    "Rule",
    "Said",
    "StaleList",
    "walk_columns",
    "walk_one",
]
