"""Rule 1, the contacts file's own verdict: a blank or invalid number, a repeat, its own
Do-Not-Call checkbox (`contacts` says so in the row's `reason`). Nothing else is checked for
such a row, so it carries no evidence."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from campaign_dialer.compliance.rules.base import Call, GateInputs, No, Rows, Said, factorized
from campaign_dialer.vocab import SUPPRESSED


class ContactVerdict:
    name: ClassVar[str] = "contact"
    stops: ClassVar[bool] = True
    evidence: ClassVar[bool] = False
    holds: ClassVar[bool] = False

    def check(self, gate: GateInputs, call: Call) -> No | None:
        if call.contact_reason is None:
            return None
        return No(SUPPRESSED, call.contact_reason, call.contact_detail)

    def columns(self, gate: GateInputs, rows: Rows, ask: np.ndarray) -> Said | None:
        f = rows.frame
        where = f["reason"].notna().to_numpy(dtype=bool) & ask
        idx = np.flatnonzero(where)
        if idx.size == 0:
            return None
        reason = np.zeros(rows.n, dtype=np.int64)
        detail = np.zeros(rows.n, dtype=np.int64)
        reason[idx], reasons = factorized(f["reason"].iloc[idx])
        detail[idx], details = factorized(f["detail"].iloc[idx].fillna(""))
        return Said(where, False, reason, reasons, detail, details)
