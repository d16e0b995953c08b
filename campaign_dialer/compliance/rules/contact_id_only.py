"""Rule 6, a contact_id-only row when the campaign does not allow one
(`allow_contact_id_only = false`): the platform would ring the contact's saved number, which
no local DNC list, consent record or time zone of ours can vouch for."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pyarrow.compute as pc

from campaign_dialer.compliance.rules.base import Call, GateInputs, No, Rows, Said
from campaign_dialer.vocab import SUPPRESSED, Reason

NO_PHONE_NUMBER = Reason.NO_PHONE_NUMBER
NO_PHONE_DETAIL = "only a contact_id: local DNC lists cannot be checked without the number"


class ContactIdOnly:
    name: ClassVar[str] = "contact_id_only"
    stops: ClassVar[bool] = False
    evidence: ClassVar[bool] = False
    holds: ClassVar[bool] = False

    def check(self, gate: GateInputs, call: Call) -> No | None:
        if gate.allow_contact_id_only or call.phone is not None:
            return None
        return No(SUPPRESSED, NO_PHONE_NUMBER, NO_PHONE_DETAIL)

    def columns(self, gate: GateInputs, rows: Rows, ask: np.ndarray) -> Said | None:
        if gate.allow_contact_id_only:
            return None
        where = ask & np.asarray(pc.is_null(rows.phone), dtype=bool)
        if not where.any():
            return None
        zero = np.zeros(rows.n, dtype=np.int64)
        return Said(where, False, zero, [NO_PHONE_NUMBER], zero, [NO_PHONE_DETAIL])
