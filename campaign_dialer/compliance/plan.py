"""The gate's verdict for every row of a contacts file at once: the same rule list as
`Gate.check` (`gate.rules`), each rule's column check (`compliance.rules`), walked in the
same order; and the plan's row columns (`row_columns`: what the engine dials with)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from campaign_dialer.compliance.base import EVIDENCE_KEYS, arrow_strings, aware
from campaign_dialer.compliance.gate import Gate
from campaign_dialer.compliance.rules import NAT, Rows, walk_columns
from campaign_dialer.compliance.rules.base import (
    DISPOSITIONS,
    PENDING_CODE,
    Decided,
    coded,
    strings,
)
from campaign_dialer.contacts import Contacts

PLAN_COLUMNS = ("row", "disposition", "reason", "detail", "next_open", *EVIDENCE_KEYS)
__all__ = [
    "NAT",
    "PLAN_COLUMNS",
    "build_plan",
    "holds_again",
    "codes_of",
    "decoded",
    "plan_columns",
    "plan_columns_frame",
    "plan_counts",
    "row_columns",
]


def decoded(arr: pa.Array) -> pa.Array:
    """A plain string array for a (possibly dictionary-encoded) plan column."""
    return arr.dictionary_decode() if pa.types.is_dictionary(arr.type) else arr


def codes_of(arr: pa.Array) -> tuple[np.ndarray, list[Any]]:
    """(code per row, -1 for null; labels) of a string column, dictionary-encoded or not."""
    enc = arr if pa.types.is_dictionary(arr.type) else pc.dictionary_encode(arr)
    codes = np.asarray(pc.fill_null(enc.indices, -1), dtype=np.int64)
    return codes, enc.dictionary.to_pylist()


# Rows walked at once: the rules' temporaries (numbers as text and ints, zone groups, person
# keys...) grow with the rows walked; a ten-million-row list walked whole needed ~2.7 GB of
# them on top of its contacts.
WALK_ROWS = 262_144


def plan_columns(contacts: Contacts, gate: Gate, at: datetime, *,
                 chunk: int = WALK_ROWS) -> dict[str, Any]:
    """`build_plan`'s columns as arrow and numpy: the label and evidence columns dictionary-
    encoded (evidence null where `build_plan` says ""), next_open as int64 ns (min = none).

    The walk of `gate.rules` (`rules.walk_columns`) over `chunk` rows at a time (every rule
    answers for a row from that row and the gate's inputs only), joined: per-row work is
    arrow and numpy; no column holds a string per row.
    """
    aware(at)
    f = contacts.frame
    # a list of millions in at most ~8 chunks: a few lookups cost the same whatever the
    # rows asked (the consent ledger's contact ids, hashed per lookup)
    chunk = max(chunk, -(-len(f) // 8))
    if len(f) <= chunk:
        return _walked(f, gate, at)
    parts = [_walked(f.iloc[lo: lo + chunk], gate, at) for lo in range(0, len(f), chunk)]
    out: dict[str, Any] = {}
    for k in list(parts[0]):
        # each chunk's column let go of as the joined one is made: one column's two copies
        # at a time, not every column's
        out[k] = _joined([p.pop(k) for p in parts])
    return out


def _walked(f: pd.DataFrame, gate: Gate, at: datetime) -> dict[str, Any]:
    d = walk_columns(gate.rules, gate, Rows(f, at))
    return {
        "row": f["row"].to_numpy(dtype=np.int64),
        "disposition": coded(d.disposition, DISPOSITIONS),
        "reason": coded(d.reason, d.reasons),
        "detail": coded(d.detail, d.details),
        "next_open": d.next_open,
        **{k: d.evidence[k] for k in EVIDENCE_KEYS},
    }


def _joined(parts: list[Any]) -> Any:
    """One column of the walked chunks as one: numpy concatenated; arrow in one array, of
    the dictionary type where any chunk is dictionary-encoded (a chunk whose rows carry no
    such evidence has plain nulls), with one dictionary."""
    if isinstance(parts[0], np.ndarray):
        return np.concatenate(parts)
    arrays = [p.combine_chunks() if isinstance(p, pa.ChunkedArray) else p for p in parts]
    kind = next((a.type for a in arrays if pa.types.is_dictionary(a.type)), arrays[0].type)
    if not pa.types.is_dictionary(kind):
        return pa.concat_arrays([a if a.type == kind else a.cast(kind) for a in arrays])
    dicts = [a.dictionary for a in arrays if pa.types.is_dictionary(a.type)]
    plain_nulls = all(a.null_count == len(a) for a in arrays
                      if not pa.types.is_dictionary(a.type))
    if plain_nulls and all(d is dicts[0] or d.equals(dicts[0]) for d in dicts[1:]):
        # one dictionary already (the consent evidence indexes the ledger's own texts)
        index = [a.indices if pa.types.is_dictionary(a.type) else
                 pa.nulls(len(a), kind.index_type) for a in arrays]
        return pa.DictionaryArray.from_arrays(pa.concat_arrays(index), dicts[0])
    # One dictionary for all (a label may be null: arrow's own unifier refuses those).
    labels: dict[Any, int] = {}
    codes: list[np.ndarray] = []
    for a in arrays:
        if not pa.types.is_dictionary(a.type):
            a = pc.dictionary_encode(a.cast(kind.value_type))
        own = np.array([labels.setdefault(v, len(labels)) for v in a.dictionary.to_pylist()]
                       or [0], dtype=np.int64)
        local = np.asarray(pc.fill_null(a.indices, -1), dtype=np.int64)
        codes.append(np.where(local >= 0, own[np.maximum(local, 0)], -1).astype(np.int32))
    code = np.concatenate(codes)
    del codes
    return pa.DictionaryArray.from_arrays(
        pa.array(code, type=kind.index_type, mask=code < 0),
        pa.array(list(labels), type=kind.value_type))


def row_columns(decided: Mapping[str, Any], frame: pd.DataFrame) -> dict[str, Any]:
    """The plan's columns: `decided` (`plan_columns`) and the row's numbers and hint (what the
    engine dials with)."""
    n = len(frame)
    return {
        "row": decided["row"],
        "phone": arrow_strings(frame["phone_e164"]),
        "cid": arrow_strings(frame["contact_id"]),
        "hint": arrow_strings(frame["tz_hint"]),
        "others": (
            arrow_strings(frame["phone_others"]) if "phone_others" in frame.columns
            else pa.nulls(n, pa.large_string())
        ),
        "disposition": decided["disposition"],
        "reason": decided["reason"],
        "detail": decided["detail"],
        "next_open": decided["next_open"].copy(),
        **{k: decided[k] for k in EVIDENCE_KEYS},
    }


# Rules asked again of a stored plan besides the holds (see `holds_again`).
ASKED_AGAIN = frozenset({"dnc"})


def holds_again(cols: Mapping[str, Any], gate: Gate, at: datetime) -> dict[str, Any]:
    """A stored plan's row columns with the list's holds (`rule.holds`: the contact history)
    and the Do-Not-Call rule asked again at `at`. The other rules' verdicts depend only on
    the inputs a stored plan is keyed by; a hold depends on calls made since (by any
    campaign, this one included), and the campaign's DNC ledger grows with every opt-out a
    run records (a plan keyed by it would be made again after every such call), so both are
    asked at every run, as the walk asks them: of a row no rule said no to, or one that only
    waits (a hold then waits for the later of the two instants; a DNC listing suppresses
    it). Rows are made for nobody."""
    aware(at)
    n = len(cols["row"])
    d_codes, d_labels = codes_of(decoded_dict(cols["disposition"]))
    by_label = np.array([DISPOSITIONS.index(x) for x in d_labels] or [0], dtype=np.int64)
    r_codes, r_labels = codes_of(decoded_dict(cols["reason"]))
    t_codes, t_labels = codes_of(decoded_dict(cols["detail"]))
    d = Decided(
        disposition=by_label[np.maximum(d_codes, 0)] if n else np.zeros(0, dtype=np.int64),
        reason=r_codes, reasons=list(r_labels), detail=t_codes, details=list(t_labels),
        next_open=np.asarray(cols["next_open"], dtype=np.int64).copy(),
    )
    waiting = (d.disposition == PENDING_CODE) & (d.next_open != NAT)
    ask = (d.disposition == 0) | waiting
    # Only the rows asked are looked up (a million-row plan asks a fraction of its rows: the
    # others are suppressed for good); the rules' answers are spread back over every row.
    at_rows = np.flatnonzero(ask)
    picked = pa.array(at_rows, type=pa.int64())
    rows = Rows.of_numbers(_taken(cols["phone"], picked), _taken(cols["cid"], picked),
                           _taken(cols["others"], picked), at)
    changed = False
    for rule in gate.rules:
        if not (rule.holds or rule.name in ASKED_AGAIN) or not ask.any():
            continue
        said = rule.columns(gate, rows, ask[at_rows])
        if said is None:
            continue
        said = said.spread(at_rows, n)
        take = said.where & ask
        if not take.any():
            continue
        d.take(rule, said, take, waiting)
        changed = True
        ask &= ~take
    out = dict(cols)
    if changed:
        out.update(disposition=coded(d.disposition, DISPOSITIONS),
                   reason=coded(d.reason, d.reasons), detail=coded(d.detail, d.details),
                   next_open=d.next_open)
    return out


def _taken(arr: Any, at: pa.Array) -> pa.Array:
    """The values of a plan column (an arrow array, chunked or not) at positions `at`."""
    out = pc.take(arr, at)
    return out.combine_chunks() if isinstance(out, pa.ChunkedArray) else out


def decoded_dict(arr: Any) -> pa.Array:
    """A plan column as one arrow array (chunks combined), dictionary-encoded or not."""
    return arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr


def plan_columns_frame(cols: Mapping[str, Any]) -> pd.DataFrame:
    """`plan_columns` as `build_plan`'s frame (strings; evidence "" when there is none)."""

    def evidence(arr: pa.Array) -> pd.api.extensions.ExtensionArray:
        return strings(pc.fill_null(decoded(arr), ""))

    return pd.DataFrame(
        {
            "row": cols["row"],
            "disposition": strings(decoded(cols["disposition"])),
            "reason": strings(decoded(cols["reason"])),
            "detail": strings(decoded(cols["detail"])),
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
