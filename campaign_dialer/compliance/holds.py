"""The plan's rows as columns: the gate's verdicts (`plan_columns`), then the holds the gate
adds after the rules on the number (a contact_id-only row; the contact history), decided by
the same functions `Gate.check` uses, so the plan and the dial cannot disagree."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from campaign_dialer.compliance.base import EVIDENCE_KEYS, _arrow_strings, _from_ns, _ns
from campaign_dialer.compliance.gate import (
    NO_PHONE_DETAIL,
    NO_PHONE_NUMBER,
    Gate,
    HistoryRule,
    held_until,
    history_applies,
)
from campaign_dialer.contacts.keys import person_keys, phone_of
from campaign_dialer.vocab import PENDING, SUPPRESSED

NAT = np.iinfo(np.int64).min  # next_open "none" in the ns column


def codes_of(arr: pa.Array) -> tuple[np.ndarray, list[Any]]:
    """(code per row, -1 for null; labels) of a string column, dictionary-encoded or not."""
    enc = arr if pa.types.is_dictionary(arr.type) else pc.dictionary_encode(arr)
    codes = np.asarray(pc.fill_null(enc.indices, -1), dtype=np.int64)
    return codes, enc.dictionary.to_pylist()


def _assign(arr: pa.Array, idx: np.ndarray, values: list[str | None]) -> pa.Array:
    """`arr` (a dictionary-encoded string column) with the cells at `idx` set to `values`."""
    if idx.size == 0:
        return arr
    codes, labels = codes_of(arr)
    codes[idx] = len(labels) + np.arange(idx.size)
    return pa.DictionaryArray.from_arrays(
        pa.array(codes.astype(np.int32), mask=codes < 0),
        pa.array(labels + values, type=pa.large_string()),
    )


def row_columns(
    decided: dict[str, Any], frame: pd.DataFrame, gate: Gate, at: datetime
) -> dict[str, Any]:
    """The plan's columns: `decided` (`plan_columns`) with the gate's later holds applied, and
    the row's numbers and hint (what the engine dials with)."""
    n = len(frame)
    phone = _arrow_strings(frame["phone_e164"])
    cid = _arrow_strings(frame["contact_id"])
    disposition = decided["disposition"]
    reason = decided["reason"]
    detail = decided["detail"]
    next_open = decided["next_open"].copy()
    if not gate.allow_contact_id_only:
        d_codes, d_labels = codes_of(disposition)
        not_suppressed = ~np.isin(
            d_codes, [k for k, v in enumerate(d_labels) if v == SUPPRESSED]
        )
        cid_only = np.flatnonzero(
            np.asarray(pc.and_(pc.is_null(phone), pc.is_valid(cid)), dtype=bool)
            & not_suppressed
        )
        if cid_only.size:
            k = cid_only.size
            disposition = _assign(disposition, cid_only, [SUPPRESSED] * k)
            reason = _assign(reason, cid_only, [NO_PHONE_NUMBER] * k)
            detail = _assign(detail, cid_only, [NO_PHONE_DETAIL] * k)
            next_open[cid_only] = NAT
    cols: dict[str, Any] = {
        "row": decided["row"],
        "phone": phone,
        "cid": cid,
        "hint": _arrow_strings(frame["tz_hint"]),
        "others": (
            _arrow_strings(frame["phone_others"]) if "phone_others" in frame.columns
            else pa.nulls(n, pa.large_string())
        ),
        "disposition": disposition,
        "reason": reason,
        "detail": detail,
        "next_open": next_open,
        **{k: decided[k] for k in EVIDENCE_KEYS},
    }
    if gate.history is not None:
        _hold_by_history(cols, gate.history, at)
    return cols


def _hold_by_history(cols: dict[str, Any], history: HistoryRule, at: datetime) -> None:
    """The history's holds (`Gate.check`'s last rule) on the rows whose person it knows: only
    those rows are looked at one by one."""
    people = history.people
    if not people:
        return
    phone, cid, others = cols["phone"], cols["cid"], cols["others"]

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
    reason, disp, nxt = cols["reason"], cols["disposition"], cols["next_open"]
    held_idx: list[int] = []
    held_reason: list[str | None] = []
    held_detail: list[str | None] = []
    for i in np.flatnonzero(seen).tolist():
        r_next = None if nxt[i] == NAT else _from_ns(int(nxt[i]))
        if not history_applies(disp[i].as_py(), reason[i].as_py(), r_next):
            continue
        o = others[i].as_py()
        hold = history(phone[i].as_py(), cid[i].as_py(), tuple(o.split(" ")) if o else (), at)
        if hold is None:
            continue
        held_idx.append(i)
        held_reason.append(hold.reason)
        held_detail.append(hold.detail)
        until = held_until(r_next, hold)
        nxt[i] = NAT if until is None else _ns(until)
    where = np.array(held_idx, dtype=np.int64)
    cols["disposition"] = _assign(disp, where, [PENDING] * len(held_idx))
    cols["reason"] = _assign(reason, where, held_reason)
    cols["detail"] = _assign(cols["detail"], where, held_detail)
