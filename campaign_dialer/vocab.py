"""The words the dialer writes for a row's fate: dispositions, reasons and call statuses.

One vocabulary for the plan, the gate, the engine, results.csv, `status` and the report, so
a funnel adds up and a new reason is added in one place. These strings are a public interface
(results.csv's `disposition` and `reason` columns, `status --json`); never rename one.
"""

from __future__ import annotations

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

# Reasons, grouped by the stage that gives them.
# The contacts file itself: no usable number, a repeat, its own Do-Not-Call checkbox.
CONTACT_REASONS: Final = (
    "blank_phone", "invalid_phone", "duplicate", "no_phone_number", "dnc_flag",
)
# A local DNC list or the DNC ledger holds the number.
DNC_REASONS: Final = ("dnc_local",)
# The consent ledger and the Reassigned Numbers Database.
CONSENT_REASONS: Final = (
    "no_consent", "consent_revoked", "consent_expired", "number_reassigned",
    "reassigned_unchecked",
)
# The recipient's local calling hours.
WINDOW_REASONS: Final = ("outside_window", "unknown_timezone")
# The contact history: another campaign called them, or a state's cap is used up.
HISTORY_REASONS: Final = ("recently_called",)
# The caller-ID pool: every owned number that could call the person is at its cap or resting.
CALLER_ID_REASONS: Final = ("caller_ids_exhausted",)
# How a call's caller ID was chosen (results.csv `caller_id_reason`).
CALLER_ID_CHOICES: Final = ("sticky", "local_area_code", "local_state", "pool", "agent_default")
# The platform's answer (409 dnc_listed), and the run's own states for a row not finished.
PLATFORM_REASONS: Final = ("dnc_listed",)
RUN_REASONS: Final = (
    "redial_scheduled", "unresolved", "call_live", "paused", "campaign_canceled", "not_planned",
    "budget_reached",
)
# Outcomes / ended reasons that mean the person opted out (`[compliance] opt_out_outcomes`'s
# default): the number goes on the DNC ledger.
OPT_OUT_OUTCOMES: Final = ("opt_out", "do_not_call", "dnc_requested", "customer_requested_dnc")
# Not a row's fate but a stop: a national/state DNC list too old to dial against (the gate
# holds the row pending with it; `run` refuses with exit 78). Not in REASONS: no row ends so.
DNC_LIST_STALE: Final = "dnc_list_stale"
# Pending rows that the gate has not let through (yet); every other pending row is eligible.
HELD_PENDING_REASONS: Final = (
    *WINDOW_REASONS, *HISTORY_REASONS, *CALLER_ID_REASONS, "not_planned",
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
