"""Rule 8, the contact history: another campaign called the person lately, or a state's cap
is used up (`store.hold_back`), given to the gate as data (`HistoryRule`, read beforehand in a
worker thread), never queried by it. A hold: it also takes over a row the window only delays,
which then waits for the later of the two instants."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from campaign_dialer.compliance.base import to_ns
from campaign_dialer.compliance.rules.base import (
    NAT,
    Call,
    GateInputs,
    HistoryRule,
    Hold,
    No,
    Rows,
    Said,
)
from campaign_dialer.contacts.keys import person_keys, phone_of
from campaign_dialer.vocab import PENDING

__all__ = ["ContactHistory", "HistoryRule", "Hold"]


class ContactHistory:
    name: ClassVar[str] = "history"
    stops: ClassVar[bool] = False
    evidence: ClassVar[bool] = False
    holds: ClassVar[bool] = True

    def check(self, gate: GateInputs, call: Call) -> No | None:
        if gate.history is None:
            return None
        hold = gate.history(call.phone, call.cid, tuple(call.others), call.at)
        return None if hold is None else No(PENDING, hold.reason, hold.detail, hold.next_open)

    def columns(self, gate: GateInputs, rows: Rows, ask: np.ndarray) -> Said | None:
        """Only the asked rows whose person the history knows are looked at one by one."""
        history = gate.history
        if history is None or not history.people:
            return None
        people = history.people
        phone, cid, others = rows.phone, rows.cid, rows.others_text

        person = person_keys(phone, cid)
        seen = np.asarray(pc.fill_null(
            pc.is_in(person, value_set=pa.array(list(people), pa.large_string())), False
        ), dtype=bool)
        known_tel = [p for k in people if (p := phone_of(k)) is not None]
        if known_tel and others.null_count < len(others):
            # a row whose second or third number the history knows is that person too
            lists = pc.split_pattern(pc.fill_null(others, ""), " ")
            hit = np.asarray(pc.fill_null(pc.is_in(
                pc.list_flatten(lists), value_set=pa.array(known_tel, pa.large_string())
            ), False), dtype=bool)
            seen[np.asarray(pc.list_parent_indices(lists))[hit]] = True
        where = np.zeros(rows.n, dtype=bool)
        code = np.zeros(rows.n, dtype=np.int64)
        nxt = np.full(rows.n, NAT, dtype=np.int64)
        reasons: list[str | None] = []
        details: list[str] = []
        for i in np.flatnonzero(seen & ask).tolist():
            o = others[i].as_py()
            hold = history(phone[i].as_py(), cid[i].as_py(), tuple(o.split(" ")) if o else (),
                           rows.at)
            if hold is None:
                continue
            where[i] = True
            code[i] = len(reasons)
            reasons.append(hold.reason)
            details.append(hold.detail)
            nxt[i] = NAT if hold.next_open is None else to_ns(hold.next_open)
        if not reasons:
            return None
        return Said(where, True, code, reasons, code, details, nxt)
