"""The words the dialer writes for a row's fate: dispositions, reasons and call statuses.

One vocabulary for the plan, the gate, the engine, results.csv, `status` and the report, so
a funnel adds up and a new reason is added in one place. These strings are a public interface
(results.csv's `disposition` and `reason` columns, `status --json`); never rename one.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

# results.csv `disposition`, in the order reports show them.
DIALED: Final = "dialed"
REJECTED: Final = "rejected"
SUPPRESSED: Final = "suppressed"
ERROR: Final = "error"
PENDING: Final = "pending"
DISPOSITIONS: Final = (DIALED, REJECTED, SUPPRESSED, ERROR, PENDING)
# The plan's own words before any call: "eligible" rows become dialed/pending/... at run time.
ELIGIBLE: Final = "eligible"
PLAN_DISPOSITIONS: Final = (ELIGIBLE, SUPPRESSED, PENDING)

class Reason(StrEnum):
    """Every reason a row's fate can carry, one member per word. A `StrEnum`: each member IS
    its string (equal to it, hashed like it, written as it), so results files, `status --json`
    and every comparison with the plain word keep working; the grouping tuples below name the
    members by the stage that gives them."""

    # The contacts file itself: no usable number, a repeat, its own Do-Not-Call checkbox.
    BLANK_PHONE = "blank_phone"
    INVALID_PHONE = "invalid_phone"
    DUPLICATE = "duplicate"
    NO_PHONE_NUMBER = "no_phone_number"
    DNC_FLAG = "dnc_flag"
    # A local DNC list or the DNC ledger holds the number.
    DNC_LOCAL = "dnc_local"
    # The consent ledger and the Reassigned Numbers Database.
    NO_CONSENT = "no_consent"
    CONSENT_REVOKED = "consent_revoked"
    CONSENT_EXPIRED = "consent_expired"
    NUMBER_REASSIGNED = "number_reassigned"
    REASSIGNED_UNCHECKED = "reassigned_unchecked"
    # The recipient's local calling hours.
    OUTSIDE_WINDOW = "outside_window"
    UNKNOWN_TIMEZONE = "unknown_timezone"
    # The contact history: another campaign called them, or a state's cap is used up.
    RECENTLY_CALLED = "recently_called"
    # The caller-ID pool: every owned number that could call the person is at its cap or
    # resting.
    CALLER_IDS_EXHAUSTED = "caller_ids_exhausted"
    # The platform's answer (409 dnc_listed).
    DNC_LISTED = "dnc_listed"
    # The run's own states for a row not finished.
    REDIAL_SCHEDULED = "redial_scheduled"
    UNRESOLVED = "unresolved"
    CALL_LIVE = "call_live"
    PAUSED = "paused"
    CAMPAIGN_CANCELED = "campaign_canceled"
    NOT_PLANNED = "not_planned"
    BUDGET_REACHED = "budget_reached"
    # Not a row's fate but a stop: a national/state DNC list too old to dial against (the gate
    # holds the row pending with it; `run` refuses with exit 78). Not in REASONS: no row ends so.
    DNC_LIST_STALE = "dnc_list_stale"


# Reasons, grouped by the stage that gives them.
CONTACT_REASONS: Final = (
    Reason.BLANK_PHONE, Reason.INVALID_PHONE, Reason.DUPLICATE, Reason.NO_PHONE_NUMBER,
    Reason.DNC_FLAG,
)
DNC_REASONS: Final = (Reason.DNC_LOCAL,)
CONSENT_REASONS: Final = (
    Reason.NO_CONSENT, Reason.CONSENT_REVOKED, Reason.CONSENT_EXPIRED, Reason.NUMBER_REASSIGNED,
    Reason.REASSIGNED_UNCHECKED,
)
WINDOW_REASONS: Final = (Reason.OUTSIDE_WINDOW, Reason.UNKNOWN_TIMEZONE)
HISTORY_REASONS: Final = (Reason.RECENTLY_CALLED,)
CALLER_ID_REASONS: Final = (Reason.CALLER_IDS_EXHAUSTED,)
# How a call's caller ID was chosen (results.csv `caller_id_reason`).
CALLER_ID_CHOICES: Final = ("sticky", "local_area_code", "local_state", "pool", "agent_default")
PLATFORM_REASONS: Final = (Reason.DNC_LISTED,)
RUN_REASONS: Final = (
    Reason.REDIAL_SCHEDULED, Reason.UNRESOLVED, Reason.CALL_LIVE, Reason.PAUSED,
    Reason.CAMPAIGN_CANCELED, Reason.NOT_PLANNED, Reason.BUDGET_REACHED,
)
# Outcomes / ended reasons that mean the person opted out (`[compliance] opt_out_outcomes`'s
# default): the number goes on the DNC ledger.
OPT_OUT_OUTCOMES: Final = ("opt_out", "do_not_call", "dnc_requested", "customer_requested_dnc")
DNC_LIST_STALE: Final = Reason.DNC_LIST_STALE
# Pending rows that the gate has not let through (yet); every other pending row is eligible.
HELD_PENDING_REASONS: Final = (
    *WINDOW_REASONS, *HISTORY_REASONS, *CALLER_ID_REASONS, Reason.NOT_PLANNED,
)
GATE_REASONS: Final = (
    *CONTACT_REASONS, *DNC_REASONS, *CONSENT_REASONS, *WINDOW_REASONS, *HISTORY_REASONS,
)
REASONS: Final = (*GATE_REASONS, *CALLER_ID_REASONS, *PLATFORM_REASONS, *RUN_REASONS)

# Call statuses (the API contract); a dialed row's reason is its final status.
TERMINAL_STATUSES: Final = frozenset(
    {"completed", "no_answer", "busy", "voicemail", "failed", "canceled"}
)
LIVE_STATUSES: Final = frozenset({"initiated", "ringing", "in_progress"})
KNOWN_STATUSES: Final = TERMINAL_STATUSES | LIVE_STATUSES
# A call that ended in one of these reached no one in person, whatever outcome it carries.
NOT_CONNECTED_STATUSES: Final = frozenset({"no_answer", "busy", "voicemail", "failed", "canceled"})
