"""Rule 5, reassigned numbers: a consent grant is void when the FCC Reassigned Numbers
Database says the number was disconnected since (`number_reassigned`), and, with
`compliance.require_reassigned_check`, unless a `no` answer vouches for it
(`reassigned_unchecked`). Asked only where consent is required and a grant is in effect on
the number dialed (the consent rule's finding). Evidence: when the deciding answer was queried.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd

from campaign_dialer.compliance.base import (
    NUMBER_REASSIGNED,
    REASSIGNED_UNCHECKED,
    e164_int,
    to_ns,
)
from campaign_dialer.compliance.rules.base import (
    Call,
    GateInputs,
    No,
    Rows,
    Said,
    coded,
    factorized,
)
from campaign_dialer.vocab import SUPPRESSED

# `ReassignedAnswers.decide`'s codes: 1 and 2 say no, by this table, defined once, here.
CODES: dict[int, str] = {1: NUMBER_REASSIGNED, 2: REASSIGNED_UNCHECKED}
DETAILS: dict[str, str] = {
    NUMBER_REASSIGNED: "the number was permanently disconnected since the consent was given "
    "(Reassigned Numbers Database: yes)",
    REASSIGNED_UNCHECKED: "no Reassigned Numbers Database 'no' answer vouches for the "
    "consent grant (compliance.require_reassigned_check)",
}


class Reassigned:
    name: ClassVar[str] = "reassigned"
    stops: ClassVar[bool] = False
    evidence: ClassVar[bool] = True
    holds: ClassVar[bool] = False

    def check(self, gate: GateInputs, call: Call) -> No | None:
        consent = call.consent
        if (
            consent is None or not (gate.require_consent and consent.allowed)
            or consent.event_at is None or not call.phone
        ):
            return None
        if gate.reassigned is None:
            code, queried = (2 if gate.require_reassigned_check else 0), None
        else:
            code, queried = gate.reassigned.decide_one(
                e164_int(call.phone), to_ns(consent.event_at),
                require=gate.require_reassigned_check,
            )
        call.evidence["rnd_queried_at"] = queried or ""
        reason = CODES.get(code)
        return None if reason is None else No(SUPPRESSED, reason, DETAILS[reason])

    def columns(self, gate: GateInputs, rows: Rows, ask: np.ndarray) -> Said | None:
        granted = rows.consent["granted"] & rows.has_phone & gate.require_consent
        if gate.reassigned is None:
            code = np.where(granted & gate.require_reassigned_check, 2, 0)
            # no answers: nothing to record (and no string per row to make)
        else:
            code, queried = gate.reassigned.decide(
                rows.ints, rows.consent["event_ns"], granted,
                require=gate.require_reassigned_check,
            )
            q_codes, q_labels = factorized(pd.Series(queried, dtype=object))
            rows.evidence["rnd_queried_at"] = coded(q_codes, q_labels)
        where = granted & np.isin(code, list(CODES))
        if not where.any():
            return None
        reason = np.maximum(code - 1, 0).astype(np.int64)  # 1, 2 -> the labels below
        labels = [CODES[1], CODES[2]]
        return Said(where, False, reason, labels, reason, [DETAILS[r] for r in labels])
