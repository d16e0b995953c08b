"""Rule 2, a stale list: a national or state Do-Not-Call list too old to vouch for any call
(16 CFR 310.4(b)(3)(iv): at most 31 days at the moment of dialing) holds every call, pending
without an end: the engine stops (exit 78) rather than dial on it."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from campaign_dialer.compliance.rules.base import Call, GateInputs, No, Rows, Said
from campaign_dialer.vocab import DNC_LIST_STALE, PENDING


class StaleList:
    name: ClassVar[str] = "stale_list"
    stops: ClassVar[bool] = False
    evidence: ClassVar[bool] = False
    holds: ClassVar[bool] = False

    def check(self, gate: GateInputs, call: Call) -> No | None:
        stale = gate.dnc.stale(call.at)
        return No(PENDING, DNC_LIST_STALE, stale[0]) if stale else None

    def columns(self, gate: GateInputs, rows: Rows, ask: np.ndarray) -> Said | None:
        """Nothing, on purpose: a stale list is a stop, not a row's fate. The plan is made for
        `check` (which warns about the list's age, `DncList.age_warnings`) and for `run`
        (which refuses with exit 78 before any call, `refuse_stale_lists`); only a list that
        goes stale during a run reaches a dial-time check, which holds the row."""
        return None
