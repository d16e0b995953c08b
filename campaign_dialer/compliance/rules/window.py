"""Rule 7, the calling window: the recipient's local hours in every zone the number (and the
row's hint) may be in (`CallingWindow`). Outside them the call waits for `next_open`; with no
zone known it is suppressed (unless the campaign allows unknown zones). Evidence: the zones
and their local times; an eligible row's detail is the window's word on it."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd
import pyarrow as pa

from campaign_dialer.compliance.base import OUTSIDE_WINDOW, to_ns
from campaign_dialer.compliance.rules.base import (
    NAT,
    Call,
    GateInputs,
    No,
    Rows,
    Said,
    coded,
)
from campaign_dialer.compliance.tables import area_codes
from campaign_dialer.compliance.window import WindowDecision, area_info
from campaign_dialer.contacts import STRING
from campaign_dialer.vocab import PENDING, SUPPRESSED


def window_groups(
    gate: GateInputs, rows: Rows
) -> tuple[np.ndarray, list[WindowDecision | None]]:
    """Group rows by (area zones and states, hint) and decide each group of checked rows once.

    Every member of a group has the same candidate zones and rule states, so one
    `CallingWindow.check` per group is the same as one per row.
    """
    phone, ints, hint = rows.phone, rows.ints, rows.hint
    # "+1NPANXXXXXX" is the int 1NPANXXXXXX: 11 digits starting with 1
    is_nanp = (ints >= 12_000_000_000) & (ints < 20_000_000_000)
    npa = np.where(is_nanp, (ints // 10_000_000) % 1000, -1)
    known = np.zeros(1000, dtype=bool)
    known[[int(k) for k in area_codes()]] = True
    in_table = (npa >= 0) & known[np.maximum(npa, 0)]
    area = np.where(in_table, npa, -1)
    other = rows.has_phone & ~in_table
    if other.any():  # international, toll-free: group by their area information
        codes, uniques = pd.factorize(pd.Series(phone.filter(pa.array(other)).to_pylist()))
        infos = []
        for e in uniques:
            info = area_info(e)
            infos.append("?" if info is None else " ".join(info[0]) + "|" + " ".join(info[1]))
        info_codes, _ = pd.factorize(pd.Series(infos, dtype=object))
        area[other] = 1000 + info_codes[codes]
    hint_codes, _ = pd.factorize(pd.Series(pd.array(hint, dtype=STRING)))
    key = area * (int(hint_codes.max(initial=0)) + 2) + (hint_codes + 1)
    group, _ = pd.factorize(key)
    decisions: list[WindowDecision | None] = [None] * (int(group.max(initial=-1)) + 1)
    cand_rows = np.flatnonzero(rows.checked)
    reps = pd.Series(cand_rows).groupby(group[cand_rows]).first()
    for g, i in zip(reps.index.to_numpy(), reps.to_numpy(), strict=True):
        decisions[g] = gate.window.check(phone[int(i)].as_py(), hint[int(i)].as_py(), rows.at)
    return np.asarray(group, dtype=np.int64), decisions


class CallingHours:
    name: ClassVar[str] = "window"
    stops: ClassVar[bool] = False
    evidence: ClassVar[bool] = True
    holds: ClassVar[bool] = False

    def check(self, gate: GateInputs, call: Call) -> No | None:
        window = gate.window.check(call.phone, call.hint, call.at)
        call.evidence["local_times"] = " ".join(window.local_times)
        call.evidence["zones"] = " ".join(window.zones)
        call.note = window.detail
        if window.ok:
            return None
        assert window.reason is not None
        disposition = PENDING if window.reason == OUTSIDE_WINDOW else SUPPRESSED
        return No(disposition, window.reason, window.detail, window.next_open)

    def columns(self, gate: GateInputs, rows: Rows, ask: np.ndarray) -> Said | None:
        group, decisions = window_groups(gate, rows)
        in_group = np.where(rows.checked, group, -1)
        rows.evidence["local_times"] = coded(
            in_group, [" ".join(d.local_times) if d else "" for d in decisions]
        )
        rows.evidence["zones"] = coded(
            in_group, [" ".join(d.zones) if d else "" for d in decisions]
        )
        details = [d.detail if d else "" for d in decisions]
        rows.note = (np.maximum(in_group, 0), details)
        ok = np.array([bool(d and d.ok) for d in decisions] + [False], dtype=bool)
        pending = np.array(
            [bool(d and d.reason == OUTSIDE_WINDOW) for d in decisions] + [False], dtype=bool
        )
        nxt = np.array(
            [to_ns(d.next_open) if d is not None and d.next_open else NAT for d in decisions]
            + [NAT],
            dtype=np.int64,
        )
        where = rows.checked & ~ok[group]
        if not where.any():
            return None
        return Said(
            where, pending[group], group, [d.reason if d else None for d in decisions],
            group, details, nxt[group],
        )
