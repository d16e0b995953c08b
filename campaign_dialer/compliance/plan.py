"""The gate's verdict for every row of a contacts file at once (vectorised, same rules)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from campaign_dialer.compliance.base import (
    CONSENT_EXPIRED,
    CONSENT_REVOKED,
    DNC_LOCAL,
    EVIDENCE_KEYS,
    NO_CONSENT,
    NO_PHONE_DNC,
    NUMBER_REASSIGNED,
    OUTSIDE_WINDOW,
    REASSIGNED_UNCHECKED,
    _arrow_strings,
    _aware,
    _e164_ints,
    _ns,
)
from campaign_dialer.compliance.gate import _CONSENT_DETAIL, Gate
from campaign_dialer.compliance.tables import _area_codes
from campaign_dialer.compliance.window import WindowDecision, _area_info
from campaign_dialer.contacts import STRING, Contacts
from campaign_dialer.vocab import ELIGIBLE, PENDING, SUPPRESSED

PLAN_COLUMNS = ("row", "disposition", "reason", "detail", "next_open", *EVIDENCE_KEYS)


def _other_numbers(f: pd.DataFrame, cand: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(row position, E.164 int) of every other number of candidate rows (`phone_others`)."""
    if "phone_others" not in f.columns:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    others = f["phone_others"]
    has = others.notna().to_numpy(dtype=bool) & cand
    idx = np.flatnonzero(has)
    if idx.size == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    split = others.iloc[idx].str.split(" ")
    lengths = split.str.len().to_numpy(dtype=np.int64)
    rows = np.repeat(idx, lengths)
    flat = pa.array([x for parts in split.tolist() for x in parts], type=pa.large_string())
    return rows, _e164_ints(flat)
_DISPOSITIONS = [ELIGIBLE, SUPPRESSED, PENDING]  # codes 0, 1, 2 below


def _strings(arr: pa.Array | pa.ChunkedArray) -> pd.api.extensions.ExtensionArray:
    return pd.array(arr, dtype=STRING)


def _coded(codes: np.ndarray, labels: Sequence[str | None]) -> pa.DictionaryArray:
    """Strings by code (-1 = null) as a dictionary array: an int32 per row and each label
    once, not a string per row (a million rows, a handful of labels)."""
    return pa.DictionaryArray.from_arrays(
        pa.array(codes.astype(np.int32), mask=codes < 0),
        pa.array(list(labels), type=pa.large_string()),
    )


def decoded(arr: pa.Array) -> pa.Array:
    """A plain string array for a (possibly dictionary-encoded) plan column."""
    return arr.dictionary_decode() if pa.types.is_dictionary(arr.type) else arr


def _factorized(values: pd.Series) -> tuple[np.ndarray, list[str]]:
    codes, uniques = pd.factorize(values)
    return np.asarray(codes, dtype=np.int64), [str(u) for u in uniques]


def _window_groups(
    gate: Gate,
    phone: pa.Array,
    ints: np.ndarray,
    hint: pa.Array,
    cand: np.ndarray,
    at: datetime,
) -> tuple[np.ndarray, list[WindowDecision | None]]:
    """Group rows by (area zones and states, hint) and decide each group once.

    Every member of a group has the same candidate zones and rule states, so one
    `CallingWindow.check` per group is the same as one per row.
    """
    # "+1NPANXXXXXX" is the int 1NPANXXXXXX: 11 digits starting with 1
    is_nanp = (ints >= 12_000_000_000) & (ints < 20_000_000_000)
    npa = np.where(is_nanp, (ints // 10_000_000) % 1000, -1)
    known = np.zeros(1000, dtype=bool)
    known[[int(k) for k in _area_codes()]] = True
    in_table = (npa >= 0) & known[np.maximum(npa, 0)]
    area = np.where(in_table, npa, -1)
    has_phone = np.asarray(pc.is_valid(phone), dtype=bool)
    other = has_phone & ~in_table
    if other.any():  # international, toll-free: group by their area information
        codes, uniques = pd.factorize(pd.Series(phone.filter(pa.array(other)).to_pylist()))
        infos = []
        for e in uniques:
            info = _area_info(e)
            infos.append("?" if info is None else " ".join(info[0]) + "|" + " ".join(info[1]))
        info_codes, _ = pd.factorize(pd.Series(infos, dtype=object))
        area[other] = 1000 + info_codes[codes]
    hint_codes, _ = pd.factorize(pd.Series(pd.array(hint, dtype=STRING)))
    key = area * (int(hint_codes.max(initial=0)) + 2) + (hint_codes + 1)
    group, _ = pd.factorize(key)
    decisions: list[WindowDecision | None] = [None] * (int(group.max(initial=-1)) + 1)
    cand_rows = np.flatnonzero(cand)
    reps = pd.Series(cand_rows).groupby(group[cand_rows]).first()
    for g, i in zip(reps.index.to_numpy(), reps.to_numpy(), strict=True):
        decisions[g] = gate.window.check(phone[int(i)].as_py(), hint[int(i)].as_py(), at)
    return group, decisions


def plan_columns(contacts: Contacts, gate: Gate, at: datetime) -> dict[str, Any]:
    """`build_plan`'s columns as arrow and numpy: the label and evidence columns dictionary-
    encoded (evidence null where `build_plan` says ""), next_open as int64 ns (min = none).

    Vectorised: per-row work is arrow and numpy; the window is decided once per (area, hint)
    group; no column holds a string per row.
    """
    _aware(at)
    f = contacts.frame
    n = len(f)
    at_ns = _ns(at)
    own = f["reason"].notna().to_numpy(dtype=bool)
    cand = ~own
    cand_arr = pa.array(cand)
    null = pa.nulls(n, pa.large_string())
    phone = pc.if_else(cand_arr, _arrow_strings(f["phone_e164"]), null)
    cid = pc.if_else(cand_arr, _arrow_strings(f["contact_id"]), null)
    hint = _arrow_strings(f["tz_hint"])
    has_phone = np.asarray(pc.is_valid(phone), dtype=bool)

    # 1. DNC: the number dialed, or any other number of the row
    ints = _e164_ints(phone)
    src = gate.dnc.source_codes(ints)
    other_rows, other_ints = _other_numbers(f, cand)
    if other_rows.size:
        o_src = gate.dnc.source_codes(other_ints)
        hit = o_src >= 0
        first_src = np.full(n, -1, dtype=np.int32)
        # the first listed other number of each row is the evidence (rows ascending)
        rev = np.flatnonzero(hit)[::-1]
        first_src[other_rows[rev]] = o_src[rev]
        src = np.where(src >= 0, src, first_src).astype(np.int32)
        has_phone_or_other = has_phone | (first_src >= 0)
    else:
        has_phone_or_other = has_phone
    in_dnc = cand & has_phone_or_other & (src >= 0)

    # 2. consent
    consent_ev: dict[str, pa.Array] = {}
    if gate.consent is not None and len(gate.consent.events):
        win = gate.consent.latest(ints, cid, at_ns)
        win[~cand] = -1
        ev = gate.consent.events
        has = win >= 0
        w = np.maximum(win, 0)
        revoke = has & ev["revoke"].to_numpy(dtype=bool)[w]
        if other_rows.size:  # a revocation on any other number of the row decides
            o_win = gate.consent.latest(
                other_ints, pa.nulls(len(other_ints), pa.large_string()), at_ns
            )
            o_revoke = (o_win >= 0) & ev["revoke"].to_numpy(dtype=bool)[np.maximum(o_win, 0)]
            pick = np.flatnonzero(o_revoke)[::-1]
            pick = pick[~revoke[other_rows[pick]]]
            win[other_rows[pick]] = o_win[pick]
            has = win >= 0
            w = np.maximum(win, 0)
            revoke = has & ev["revoke"].to_numpy(dtype=bool)[w]
        expired = has & ~revoke & (ev["expires_ns"].to_numpy(dtype=np.int64)[w] <= at_ns)
        take = pa.array(win, type=pa.int64(), mask=~has)
        columns = {
            "consent_event_at": "event_text",
            "consent_expires_at": "expires_text",
            "consent_source": "source",
        }
        for k, col in columns.items():
            values = _arrow_strings(ev[col])
            consent_ev[k] = pa.DictionaryArray.from_arrays(take, values) if len(values) else null
        c_code = np.select([~has, revoke, expired], [0, 1, 2], default=-1)
        # 2b. the number's reassignment (RND answers) on rows whose grant is in effect
        granted = cand & has & ~revoke & ~expired & has_phone & gate.require_consent
        rnd, queried = gate._rnd(
            ints, ev["event_ns"].to_numpy(dtype=np.int64)[w], granted
        )
        c_code[rnd == 1] = 3
        c_code[rnd == 2] = 4
        if gate.reassigned is None:
            rnd_ev = null  # no answers: nothing to record (and no string per row to make)
        else:
            q_codes, q_labels = _factorized(pd.Series(queried, dtype=object))
            rnd_ev = _coded(q_codes, q_labels)
    else:
        c_code = np.zeros(n, dtype=np.int64)
        for k in EVIDENCE_KEYS[:3]:
            consent_ev[k] = null
        rnd_ev = null
    c_names = [
        NO_CONSENT, CONSENT_REVOKED, CONSENT_EXPIRED, NUMBER_REASSIGNED, REASSIGNED_UNCHECKED,
    ]
    needs = np.full(n, gate.require_consent) | (c_code == 1)
    c_block = cand & ~in_dnc & needs & (c_code >= 0)

    # 3. window
    group, decisions = _window_groups(gate, phone, ints, hint, cand, at)
    g_ok = np.array([bool(d and d.ok) for d in decisions] + [False], dtype=bool)
    g_pending = np.array(
        [bool(d and d.reason == OUTSIDE_WINDOW) for d in decisions] + [False], dtype=bool
    )
    nat = np.iinfo(np.int64).min
    g_next = np.array(
        [_ns(d.next_open) if d is not None and d.next_open else nat for d in decisions] + [nat],
        dtype=np.int64,
    )
    ok = g_ok[group]
    w_block = cand & ~in_dnc & ~c_block & ~ok
    eligible = cand & ~in_dnc & ~c_block & ok

    # assemble: codes into small label lists, decoded by arrow
    disp = np.where(cand, 0, 1)
    disp[in_dnc | c_block] = 1
    disp[w_block] = np.where(g_pending[group[w_block]], 2, 1)

    reason_labels = [DNC_LOCAL, *c_names] + [d.reason if d else None for d in decisions]
    r_code = np.full(n, -1, dtype=np.int64)
    r_code[in_dnc] = 0
    r_code[c_block] = 1 + c_code[c_block]
    r_code[w_block] = 1 + len(c_names) + group[w_block]
    # rows the contacts stage rejected keep its reason and detail (few distinct values)
    own_idx = np.flatnonzero(own)
    own_r, own_r_labels = _factorized(f["reason"].iloc[own_idx])
    r_code[own_idx] = len(reason_labels) + own_r
    reason_labels += own_r_labels

    base = 1 + len(gate.dnc.sources) + len(c_names)
    detail_labels = (
        [""]
        + [f"listed in {s}" for s in gate.dnc.sources]
        + [_CONSENT_DETAIL[c] for c in c_names]
        + [d.detail if d else "" for d in decisions]
    )
    d_code = np.zeros(n, dtype=np.int64)
    d_code[in_dnc] = 1 + src[in_dnc]
    d_code[c_block] = 1 + len(gate.dnc.sources) + c_code[c_block]
    d_code[w_block | eligible] = base + group[w_block | eligible]
    own_d, own_d_labels = _factorized(f["detail"].iloc[own_idx].fillna(""))
    d_code[own_idx] = len(detail_labels) + own_d
    detail_labels += own_d_labels

    nxt = np.full(n, nat, dtype=np.int64)
    nxt[w_block] = g_next[group[w_block]]

    in_group = np.where(cand, group, -1)
    return {
        "row": f["row"].to_numpy(dtype=np.int64),
        "disposition": _coded(disp, _DISPOSITIONS),
        "reason": _coded(r_code, reason_labels),
        "detail": _coded(d_code, detail_labels),
        "next_open": nxt,
        "consent_event_at": consent_ev["consent_event_at"],
        "consent_expires_at": consent_ev["consent_expires_at"],
        "consent_source": consent_ev["consent_source"],
        "local_times": _coded(in_group, [" ".join(d.local_times) if d else "" for d in decisions]),
        "zones": _coded(in_group, [" ".join(d.zones) if d else "" for d in decisions]),
        "dnc_lists_checked": _coded(
            np.select([~cand, has_phone], [0, 1], default=2),
            ["", gate.dnc.checked_label(), NO_PHONE_DNC],
        ),
        "rnd_queried_at": rnd_ev,
    }


def plan_columns_frame(cols: Mapping[str, Any]) -> pd.DataFrame:
    """`plan_columns` as `build_plan`'s frame (strings; evidence "" when there is none)."""

    def evidence(arr: pa.Array) -> pd.api.extensions.ExtensionArray:
        return _strings(pc.fill_null(decoded(arr), ""))

    return pd.DataFrame(
        {
            "row": cols["row"],
            "disposition": _strings(decoded(cols["disposition"])),
            "reason": _strings(decoded(cols["reason"])),
            "detail": _strings(decoded(cols["detail"])),
            "next_open": pd.Series(cols["next_open"].view("datetime64[ns]")).dt.tz_localize(
                "UTC"
            ),
            **{k: evidence(cols[k]) for k in EVIDENCE_KEYS},
        }
    )


def build_plan(contacts: Contacts, gate: Gate, at: datetime) -> pd.DataFrame:
    """One verdict per input row, in order; agrees with `Gate.check` row by row (tested).

    Columns: row, disposition, reason, detail, next_open (UTC or NaT), and the evidence columns
    consent_event_at, consent_expires_at, consent_source, local_times, zones, dnc_lists_checked.
    Rows the contacts stage already rejected (blank_phone, invalid_phone, duplicate) keep that
    reason and are suppressed; their evidence is empty.
    """
    return plan_columns_frame(plan_columns(contacts, gate, at))


def plan_counts(plan: pd.DataFrame) -> pd.DataFrame:
    """Counts by disposition and reason (what `campaign-dialer check` prints)."""
    counts = (
        plan.assign(reason=plan["reason"].fillna("-"))
        .groupby(["disposition", "reason"], sort=True)
        .size()
        .rename("count")
        .reset_index()
    )
    return counts
