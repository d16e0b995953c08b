"""A local, faithful simulator of the Vantax voice API: the dialer's independent opponent.

It imports nothing from the rest of campaign_dialer on purpose: the tests judge the dialer by
this sandbox's audit, so the two must not share code (or share bugs). It only ever binds
loopback addresses and only ever sends webhooks to loopback URLs.

    from campaign_dialer.sandbox import SandboxConfig, SandboxServer

    with SandboxServer(SandboxConfig(seed=1, faults={"server_error": 0.1})) as sb:
        ...  # point the dialer at sb.url, then judge it by sb.audit()

HTTP surface: ``POST /v1/calls``, ``GET /v1/calls/{id}``, ``GET /v1/calls`` as in
shared/api-contract.md; admin routes ``GET /_sandbox/health``, ``GET /_sandbox/audit``,
``POST /_sandbox/dnc`` (``{"phone_number": "+1..."}``) need no key, are never limited and are
not audited. Requests without a valid key get 401 before the rate limiter sees them, so they
take no rate slot.

Where the contract is silent, the sandbox decides (and the dialer must cope either way):
CALL always carries every field, ``null`` until known; ``duration_seconds`` is in simulated
seconds (a 180 s call) while timestamps are real wall time, compressed by ``time_scale``; a
second call to a number that is on a live call gets 409 ``call_in_progress`` whether it is
named by contact or by number; an Idempotency-Key is remembered only when a call was placed
(a refused request may be retried with the same key); a call that ends in ``opt_out`` /
``do_not_call`` puts its number on the DNC list when it ends (``dnc_on_opt_out``).

The call's ``from`` is the E.164 of the owned number it was placed from: the request's
``from_phone_number_id`` or the agent's outbound number (unknown id: 404
``phone_number_not_found``), or another owned number under the ``from_substitute`` fault. The
default data owns a local-presence pool of ten numbers besides the agents' (sandbox/data.py).

Caller-ID reputation (sandbox/reputation.py), off by default (``reputation=True``,
``--reputation``): a number over ``flag_calls_per_day`` calls in 24 simulated hours, or with a
high share of short calls, is flagged for ``flag_days`` and its calls are answered far less; a
person answers the 3rd call in 24 h from one number far less. Its figures and their sources
are in ``reputation.FIGURES``.

Audit (``sb.audit()``, ``GET /_sandbox/audit``, and the JSON file written at shutdown when
``audit_path`` / ``--audit-out`` is set) is ``{"requests", "calls", "webhooks", "stats",
"flags"}``:

- requests: ``seq``, ``mono`` (time.monotonic() at admission, the rate limiter's clock),
  ``wall`` (ISO 8601 UTC), ``method``, ``path``, ``query``, ``key_fingerprint`` (first 12 hex
  of sha256(key), never the key; null without a key), ``idempotency_key``, ``body`` (parsed
  JSON or null), ``status``, ``error_code`` (null on success and HTML 5xx), ``faults`` (names
  injected), ``admitted`` (took a rate-limit slot), ``replayed`` (idempotent replay),
  ``call_id``.
- calls (every call actually placed): ``id``, ``seq``, ``to``, ``contact_id``, ``agent_id``,
  ``from``, ``idempotency_key``, ``placed_mono``, ``placed_at``, ``ended_mono``, ``ended_at``,
  ``ended`` (end time passed at snapshot), ``final_status``, ``outcome``, ``ended_reason``,
  ``duration_seconds``, ``statuses`` (the lifecycle it goes through), ``faults``;
  caller ID: ``from_phone_number_id`` (the id asked for: the request's, else the agent's),
  ``from_phone_number_id_used`` (differs under ``from_substitute``), ``from_substituted``,
  ``placed_sim_at`` (ISO 8601 UTC on the simulated clock: start wall time + simulated seconds),
  ``flagged`` (its number was flagged when it was placed), ``repeat_call`` (3rd or later call
  from that number to that person in 24 simulated h), ``declined`` (a call that would have been
  answered rang out because of either); the last three are false with the model off.
  The end is planned at placement, so these are known before the call ends.
- webhooks: one entry per delivery: ``event``, ``call_id``, ``status``, ``attempts``,
  ``response_status``, ``delivered``, ``duplicate``, ``reordered``, ``delayed``, ``lost``
  (never sent: the ``webhook_lost`` fault), ``mono`` (when it was answered or given up),
  ``wall``. ``sb.set_webhook_secret(s)`` rotates
  the signing secret while the sandbox runs.
- stats: ``peak_live_calls``, ``live_calls``, request and call counts, limits, seed, faults,
  ``reputation`` (the model's figures in use; null when off), ``flagged_numbers`` (ids now).
- flags (``[]`` with the model off): one per flag, in order: ``number_id``, ``number``,
  ``at`` and ``until`` (ISO 8601 UTC, simulated clock), ``reason`` (``calls_per_day`` |
  ``short_call_share``), ``detail`` (``{"calls_24h"}`` or ``{"short_calls", "window"}``).
"""

from campaign_dialer.sandbox.config import FAULTS, RETRY_AFTER_MODES, SandboxConfig
from campaign_dialer.sandbox.data import Agent, Contact, PhoneNumber, SubAccountData
from campaign_dialer.sandbox.lifecycle import TERMINAL_STATUSES, CallPlan, plan_call
from campaign_dialer.sandbox.server import SandboxServer
from campaign_dialer.sandbox.webhooks import sign as sign_webhook

__all__ = [
    "FAULTS",
    "RETRY_AFTER_MODES",
    "TERMINAL_STATUSES",
    "Agent",
    "CallPlan",
    "Contact",
    "PhoneNumber",
    "SandboxConfig",
    "SandboxServer",
    "SubAccountData",
    "plan_call",
    "sign_webhook",
]
