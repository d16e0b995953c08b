"""Rule 4, consent: the latest consent event at or before the call decides (`ConsentLedger`).
Without a grant in effect a campaign that requires consent does not call; a revocation (on
the number dialed, the contact_id, or any other number of the row) holds the call back even
when consent is not required: it is an opt-out. Evidence: the deciding event."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pyarrow as pa

from campaign_dialer.compliance.base import (
    CONSENT_EXPIRED,
    CONSENT_REVOKED,
    NO_CONSENT,
)
from campaign_dialer.compliance.consent import ConsentDecision
from campaign_dialer.compliance.rules.base import Call, GateInputs, No, Rows, Said
from campaign_dialer.vocab import SUPPRESSED

# The column check's codes: reason and detail by code, defined once, here.
CODES = (NO_CONSENT, CONSENT_REVOKED, CONSENT_EXPIRED)
DETAILS: dict[str, str] = {
    NO_CONSENT: "no consent on record at the time of the call",
    CONSENT_REVOKED: "consent revoked",
    CONSENT_EXPIRED: "consent grant expired",
}
_NONE, _REVOKED, _EXPIRED = range(3)
_EVENT_COLUMNS = {  # evidence key: the ledger's column
    "consent_event_at": "event_text",
    "consent_expires_at": "expires_text",
    "consent_source": "source",
}


class Consent:
    name: ClassVar[str] = "consent"
    stops: ClassVar[bool] = False
    evidence: ClassVar[bool] = True
    holds: ClassVar[bool] = False

    def check(self, gate: GateInputs, call: Call) -> No | None:
        ledger = gate.consent
        if ledger is None:
            consent = ConsentDecision(False, NO_CONSENT, None, None)
        else:
            consent = ledger.decide(phone_e164=call.phone, contact_id=call.cid, at=call.at)
            if consent.reason != CONSENT_REVOKED:
                for number in call.others:
                    other = ledger.decide(phone_e164=number, contact_id=None, at=call.at)
                    if other.reason == CONSENT_REVOKED:
                        consent = other
                        break
        call.consent = consent
        ev = call.evidence
        ev["consent_event_at"] = consent.event_at_text
        ev["consent_expires_at"] = consent.expires_at_text
        ev["consent_source"] = consent.source or ""
        if consent.allowed or not (gate.require_consent or consent.reason == CONSENT_REVOKED):
            return None
        reason = consent.reason or NO_CONSENT
        return No(SUPPRESSED, reason, DETAILS[reason])

    def columns(self, gate: GateInputs, rows: Rows, ask: np.ndarray) -> Said | None:
        """Records in `rows.consent` what the reassigned-numbers rule reads: per row, whether a
        grant is in effect (`granted`) and its instant (`event_ns`)."""
        n, cand = rows.n, rows.checked
        ledger = gate.consent
        if ledger is None or not len(ledger):
            code = np.full(n, _NONE, dtype=np.int64)
            rows.consent = {"granted": np.zeros(n, dtype=bool), "event_ns": np.zeros(n, np.int64)}
        else:
            revoke_of = ledger.revoke
            win = ledger.latest(rows.ints, rows.cid, rows.at_ns)
            win[~cand] = -1
            has = win >= 0
            revoke = has & revoke_of[np.maximum(win, 0)]
            other_rows, other_ints = rows.others
            if other_rows.size:  # a revocation on any other number of the row decides
                o_win = ledger.latest(
                    other_ints, pa.nulls(len(other_ints), pa.large_string()), rows.at_ns
                )
                o_revoke = (o_win >= 0) & revoke_of[np.maximum(o_win, 0)]
                pick = np.flatnonzero(o_revoke)[::-1]
                pick = pick[~revoke[other_rows[pick]]]
                win[other_rows[pick]] = o_win[pick]
                has = win >= 0
                revoke = has & revoke_of[np.maximum(win, 0)]
            w = np.maximum(win, 0)
            expired = has & ~revoke & (ledger.expires_ns[w] <= rows.at_ns)
            for key, col in _EVENT_COLUMNS.items():
                rows.evidence[key] = ledger.evidence(col, win, has)
            code = np.select([~has, revoke, expired], [_NONE, _REVOKED, _EXPIRED], default=-1)
            rows.consent = {
                "granted": cand & (code < 0),
                "event_ns": ledger.event_ns[w],
            }
        needs = np.full(n, gate.require_consent) | (code == _REVOKED)
        where = cand & needs & (code >= 0)
        if not where.any():
            return None
        code = np.maximum(code, 0)
        return Said(where, False, code, CODES, code, [DETAILS[c] for c in CODES])
