"""Rule 3, Do-Not-Call: a local list or the DNC ledger holds the number dialed, or any other
number of the row (that person asked not to be called). Evidence: the lists checked."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from campaign_dialer.compliance.base import DNC_LOCAL, NO_PHONE_DNC
from campaign_dialer.compliance.rules.base import Call, GateInputs, No, Rows, Said, coded
from campaign_dialer.vocab import SUPPRESSED


def listed_in(source: str) -> str:
    return f"listed in {source}"


class DoNotCall:
    name: ClassVar[str] = "dnc"
    stops: ClassVar[bool] = False
    evidence: ClassVar[bool] = True
    holds: ClassVar[bool] = False

    def check(self, gate: GateInputs, call: Call) -> No | None:
        phone = call.phone
        call.evidence["dnc_lists_checked"] = gate.dnc.checked_label() if phone else NO_PHONE_DNC
        source = gate.dnc.source_of(phone) if phone else None
        if source is None:
            for number in call.others:
                if number and (source := gate.dnc.source_of(number)) is not None:
                    break
        return None if source is None else No(SUPPRESSED, DNC_LOCAL, listed_in(source))

    def columns(self, gate: GateInputs, rows: Rows, ask: np.ndarray) -> Said | None:
        has_phone = rows.has_phone
        rows.evidence["dnc_lists_checked"] = coded(
            np.select([~rows.checked, has_phone], [0, 1], default=2),
            ["", gate.dnc.checked_label(), NO_PHONE_DNC],
        )
        src = gate.dnc.source_codes(rows.ints)  # the number dialed
        other_rows, other_ints = rows.others
        if other_rows.size:  # else the first listed other number of the row (rows ascending)
            o_src = gate.dnc.source_codes(other_ints)
            first = np.full(rows.n, -1, dtype=np.int32)
            rev = np.flatnonzero(o_src >= 0)[::-1]
            first[other_rows[rev]] = o_src[rev]
            src = np.where(src >= 0, src, first).astype(np.int32)
        where = rows.checked & (src >= 0)
        if not where.any():
            return None
        codes = np.maximum(src, 0).astype(np.int64)
        return Said(
            where, False, np.zeros(rows.n, dtype=np.int64), [DNC_LOCAL],
            codes, [listed_in(s) for s in gate.dnc.sources],
        )
