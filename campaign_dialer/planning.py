"""From a campaign file to a dial plan: load the inputs, build the gate, decide every row.

`check` stops here; `run` hands the plan to the engine. Nothing here touches the network.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar, overload

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from campaign_dialer.compliance import (
    EVIDENCE_KEYS,
    CallingWindow,
    ConsentLedger,
    DncLedger,
    DncList,
    DncListMeta,
    Gate,
    ReassignedAnswers,
    StateRules,
    _from_ns,
    _ns,
    decoded,
    load_state_rules,
    max_calls_per_24h,
    plan_columns,
    plan_columns_frame,
    state_for_number,
)
from campaign_dialer.config import Campaign
from campaign_dialer.contacts import STRING, Contacts, load_contacts
from campaign_dialer.history import HistoryStore, PastCall, default_path, hold_back, open_history

CONTACT_REASONS = frozenset(
    {"blank_phone", "invalid_phone", "duplicate", "no_phone_number", "dnc_flag"}
)
# Held back by the contact history (another campaign called them, or a state's cap is used up).
HISTORY_REASONS = frozenset({"recently_called"})
_NAT = np.iinfo(np.int64).min  # next_open "none" in the ns column
NO_PHONE_DETAIL = "only a contact_id: local DNC lists cannot be checked without the number"


def person_key(phone_e164: str | None, contact_id: str | None) -> str | None:
    """Who a row rings: the line itself when we know it, else the platform's contact."""
    if phone_e164:
        return f"tel:{phone_e164}"
    if contact_id:
        return f"cid:{contact_id}"
    return None


@dataclass(slots=True)
class PlannedRow:
    row: int
    order: int
    person: str | None
    phone_e164: str | None
    contact_id: str | None
    tz_hint: str | None
    disposition: str
    reason: str | None
    detail: str
    next_open: datetime | None
    evidence: dict[str, str] = field(default_factory=dict)  # read-only: rows may share one
    # the row's other valid numbers: a DNC entry or revocation on any of them holds it back
    other_phones: tuple[str, ...] = ()

    @property
    def contact_suppressed(self) -> bool:
        """Held back by the contacts stage: these rows never ring, whatever happens later."""
        return self.reason in CONTACT_REASONS


class PlanRows(Sequence[PlannedRow]):
    """The plan's rows, kept as columns; a `PlannedRow` is made only when asked for.

    Indexing makes (and keeps) that one row; iterating makes every row once, in one pass,
    reusing the rows already made, so the same row is always the same object (the engine
    relies on identity). `check` reads the columns (`frame`, `counts`) and makes no row.
    """

    def __init__(self, cols: dict[str, Any], evidence_cols: list[str], n: int) -> None:
        self._cols = cols  # arrow arrays (strings), numpy arrays (row, next_open ns)
        self._evidence_cols = evidence_cols
        self._n = n
        self._made: dict[int, PlannedRow] = {}
        self._all: list[PlannedRow] | None = None

    def __len__(self) -> int:
        return self._n

    @overload
    def __getitem__(self, i: int) -> PlannedRow: ...

    @overload
    def __getitem__(self, i: slice) -> list[PlannedRow]: ...

    def __getitem__(self, i: int | slice) -> PlannedRow | list[PlannedRow]:
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(self._n))]
        if i < 0:
            i += self._n
        if not 0 <= i < self._n:
            raise IndexError(i)
        if self._all is not None:
            return self._all[i]
        r = self._made.get(i)
        if r is None:
            r = self._made[i] = self._make_one(i)
        return r

    def __iter__(self) -> Iterator[PlannedRow]:
        return iter(self._everything())

    def _make_one(self, i: int) -> PlannedRow:
        c = self._cols
        phone, cid = c["phone"][i].as_py(), c["cid"][i].as_py()
        ev = {k: v for k in self._evidence_cols if (v := c[k][i].as_py())}
        o = c["others"][i].as_py()
        nxt = int(c["next_open"][i])
        return PlannedRow(
            row=int(c["row"][i]),
            order=i,
            person=person_key(phone, cid),
            phone_e164=phone,
            contact_id=cid,
            tz_hint=c["hint"][i].as_py(),
            disposition=str(c["disposition"][i].as_py()),
            reason=c["reason"][i].as_py(),
            detail=c["detail"][i].as_py() or "",
            next_open=None if nxt == _NAT else _from_ns(nxt),
            evidence=ev,
            other_phones=tuple(o.split(" ")) if o else (),
        )

    def _everything(self) -> list[PlannedRow]:
        """Every row, made in one pass (rows with equal evidence share one read-only dict)."""
        if self._all is not None:
            return self._all
        c = self._cols
        phones = c["phone"].to_pylist()
        cids = c["cid"].to_pylist()
        hints = _pylist(c["hint"])
        others = _pylist(c["others"])
        disp = _pylist(c["disposition"])
        reasons = _pylist(c["reason"])
        details = _pylist(c["detail"])
        nxt_ns = c["next_open"]
        opens = {int(k): _from_ns(int(nxt_ns[k])) for k in np.flatnonzero(nxt_ns != _NAT)}
        ev_lists = [_pylist(c[k]) for k in self._evidence_cols]
        evidence_cols = self._evidence_cols
        ev_cache: dict[tuple[Any, ...], dict[str, str]] = {}
        made = self._made
        rows: list[PlannedRow] = []
        append = rows.append
        for i, (row, ev_values) in enumerate(
            zip(c["row"].tolist(), zip(*ev_lists, strict=True), strict=True)
        ):
            r = made.get(i)
            if r is not None:
                append(r)
                continue
            ev = ev_cache.get(ev_values)
            if ev is None:
                ev = {k: v for k, v in zip(evidence_cols, ev_values, strict=True) if v}
                ev_cache[ev_values] = ev
            phone, cid, o = phones[i], cids[i], others[i]
            append(
                PlannedRow(
                    row=row,
                    order=i,
                    person=person_key(phone, cid),
                    phone_e164=phone,
                    contact_id=cid,
                    tz_hint=hints[i],
                    disposition=disp[i],
                    reason=reasons[i],
                    detail=details[i] or "",
                    next_open=opens.get(i),
                    evidence=ev,
                    other_phones=tuple(o.split(" ")) if o else (),
                )
            )
        self._all = rows
        self._made = {}
        return rows

    def frame(self) -> pd.DataFrame:
        """The rows as a frame (row, phone_e164, contact_id, disposition, reason, detail,
        next_open as UTC timestamps or NaT, and the evidence columns, "" when none)."""
        c = self._cols
        return pd.DataFrame(
            {
                "row": c["row"],
                "phone_e164": pd.array(c["phone"], dtype=STRING),
                "contact_id": pd.array(c["cid"], dtype=STRING),
                "disposition": pd.array(decoded(c["disposition"]), dtype=STRING),
                "reason": pd.array(decoded(c["reason"]), dtype=STRING),
                "detail": pd.array(pc.fill_null(decoded(c["detail"]), ""), dtype=STRING),
                "next_open": pd.Series(c["next_open"].view("datetime64[ns]")).dt.tz_localize(
                    "UTC"
                ),
                **{
                    k: pd.array(pc.fill_null(decoded(c[k]), ""), dtype=STRING)
                    for k in self._evidence_cols
                },
            }
        )

    def counts(self) -> dict[tuple[str, str], int]:
        """Rows by (disposition, reason or "")."""
        d_codes, d_labels = _codes(self._cols["disposition"])
        r_codes, r_labels = _codes(self._cols["reason"])
        key = d_codes * (len(r_labels) + 1) + (r_codes + 1)
        uniq, counts = np.unique(key, return_counts=True)
        out: dict[tuple[str, str], int] = {}
        for k, cnt in zip(uniq.tolist(), counts.tolist(), strict=True):
            d, r = divmod(k, len(r_labels) + 1)
            name = (str(d_labels[d]), (r_labels[r - 1] if r else None) or "")
            out[name] = out.get(name, 0) + cnt
        return out


def _codes(arr: pa.Array) -> tuple[np.ndarray, list[Any]]:
    """(code per row, -1 for null; labels) of a string column, dictionary-encoded or not."""
    enc = arr if pa.types.is_dictionary(arr.type) else pc.dictionary_encode(arr)
    codes = np.asarray(pc.fill_null(enc.indices, -1), dtype=np.int64)
    return codes, enc.dictionary.to_pylist()


def _assign(arr: pa.Array, idx: np.ndarray, values: list[str | None]) -> pa.Array:
    """`arr` (a dictionary-encoded string column) with the cells at `idx` set to `values`."""
    if idx.size == 0:
        return arr
    codes, labels = _codes(arr)
    codes[idx] = len(labels) + np.arange(idx.size)
    return pa.DictionaryArray.from_arrays(
        pa.array(codes.astype(np.int32), mask=codes < 0),
        pa.array(labels + values, type=pa.large_string()),
    )


@dataclass
class Plan:
    campaign: Campaign
    contacts: Contacts
    gate: Gate
    dnc_ledger: DncLedger
    decided: dict[str, Any]  # `plan_columns`: the gate's verdicts, before the plan's own holds
    rows: PlanRows
    at: datetime
    history: HistoryStore | None = None

    @cached_property
    def frame(self) -> pd.DataFrame:
        """The gate's verdicts as `build_plan` gives them (made when first asked for)."""
        return plan_columns_frame(self.decided)

    def counts(self) -> dict[tuple[str, str], int]:
        return self.rows.counts()


def _na(v: Any) -> Any:
    if v is None or v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, float) and math.isnan(v):
        return None
    return v


class SharedDncLedger(DncLedger):
    """The DNC ledger in the contact history, plus `compliance.dnc_ledger` as an extra file.

    The file is imported into the history on first use (and whenever it changed), still read
    at every check and appended to, so no opt-out recorded in a ledger CSV is ever lost; the
    history shares every entry with the campaigns of other folders.
    """

    def __init__(self, path: Path, history: HistoryStore) -> None:
        super().__init__(path)
        self.history = history
        history.import_ledger(path)

    def numbers(self) -> set[str]:
        return super().numbers() | self.history.dnc_numbers()

    def __contains__(self, e164: object) -> bool:
        if not isinstance(e164, str):
            return False
        return super().__contains__(e164) or self.history.is_dnc(e164)

    def add(self, e164: str, *, reason: str, campaign: str, evidence: str, at: datetime) -> None:
        self.history.add_dnc(e164, reason=reason, campaign=campaign, evidence=evidence, at=at)
        super().add(e164, reason=reason, campaign=campaign, evidence=evidence, at=at)


def history_path(campaign: Campaign) -> Path:
    """`[history] path` if given, else `$CAMPAIGN_DIALER_HOME`, else the user's data folder."""
    return campaign.history_path or default_path()


def open_campaign_history(campaign: Campaign) -> HistoryStore:
    return open_history(history_path(campaign))


def build_gate(
    campaign: Campaign, history: HistoryStore | None = None
) -> tuple[Gate, DncLedger]:
    m = campaign.model
    region = m.campaign.default_region
    encoding = m.inputs.encoding
    ledger: DncLedger = (
        SharedDncLedger(campaign.dnc_ledger_path, history) if history is not None
        else DncLedger(campaign.dnc_ledger_path)
    )
    dnc = DncList.load(
        campaign.dnc_paths, default_region=region, ledger=ledger, encoding=encoding,
        meta=[
            None if d is None else DncListMeta(d[1].kind, d[1].state, d[1].as_of, key=d[0])
            for d in campaign.dnc_lists
        ],
    )
    consent = (
        ConsentLedger.load(campaign.consent_path, default_region=region, encoding=encoding)
        if campaign.consent_path is not None
        else None
    )
    reassigned = (
        ReassignedAnswers.load(campaign.reassigned_path, default_region=region, encoding=encoding)
        if campaign.reassigned_path is not None
        else None
    )
    start, end = m.compliance.calling_window
    window = CallingWindow(
        start,
        end,
        state_rules=m.compliance.state_rules,
        allow_unknown_timezone=m.compliance.allow_unknown_timezone,
        rules=load_state_rules(campaign.rules_path) if campaign.rules_path else None,
    )
    # refresh: every check re-reads a changed consent ledger and the DNC ledger's new lines;
    # the engine rebuilds the gate when a local DNC list changes (Engine._fresh_gate).
    gate = Gate(
        dnc=dnc, consent=consent, window=window, require_consent=m.compliance.require_consent,
        refresh=True, reassigned=reassigned,
        require_reassigned_check=m.compliance.require_reassigned_check,
    )
    return gate, ledger


def load_campaign_contacts(campaign: Campaign) -> Contacts:
    """The contacts file as the campaign maps and encodes it (what run, check and results use)."""
    m = campaign.model
    cols = {k: v for k, v in m.inputs.columns.model_dump().items() if v}
    return load_contacts(
        campaign.contacts_path,
        default_region=m.campaign.default_region,
        columns=cols or None,
        encoding=m.inputs.encoding,
    )


def _pylist(values: pd.Series | pa.Array | pa.ChunkedArray, *, shared: bool = True) -> list[Any]:
    """Column values as Python objects, None for missing, without a per-value check.

    `shared`: equal values are one Python object (dictionary-encoded in arrow): a million
    rows in a handful of zones hold a handful of strings, not a million copies."""
    arr = (
        values if isinstance(values, pa.Array | pa.ChunkedArray)
        else pa.array(values, from_pandas=True)
    )
    if not shared:
        return arr.to_pylist()  # type: ignore[no-any-return]
    enc = pc.dictionary_encode(arr)
    if isinstance(enc, pa.ChunkedArray):
        enc = enc.combine_chunks()
    uniques = np.array([*enc.dictionary.to_pylist(), None], dtype=object)
    codes = np.asarray(pc.fill_null(enc.indices, len(uniques) - 1), dtype=np.int64)
    return uniques[codes].tolist()  # type: ignore[no-any-return]


def _arrow(values: pd.Series) -> pa.Array:
    """A string column as one arrow array (no Python objects)."""
    arr = pa.array(values.astype(STRING), type=pa.large_string())
    return arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr


_T = TypeVar("_T")


def _released(fn: Callable[..., _T], *args: Any) -> _T:
    """`fn(*args)`, then arrow's allocator hands the memory its temporaries freed back to the
    system: it keeps freed pages per thread, and a million-row load leaves hundreds of MB."""
    try:
        return fn(*args)
    finally:
        pa.default_memory_pool().release_unused()


def make_plan(campaign: Campaign, at: datetime, history: HistoryStore | None = None) -> Plan:
    """The plan; `history` defaults to the campaign's contact history (opened here).

    The decisions stay columns (`PlanRows`): no Python object per row is made here."""
    from concurrent.futures import ThreadPoolExecutor

    m = campaign.model
    if history is None:
        history = open_campaign_history(campaign)
    # the contacts file and the compliance files are read at once: arrow releases the GIL
    with ThreadPoolExecutor(2) as pool:
        fc = pool.submit(_released, load_campaign_contacts, campaign)
        fg = pool.submit(_released, build_gate, campaign, history)
        contacts = fc.result()
        gate, ledger = fg.result()
    decided = _released(plan_columns, contacts, gate, at)
    cf = contacts.frame
    n = len(cf)
    evidence_cols = list(EVIDENCE_KEYS)
    phone = _arrow(cf["phone_e164"])
    cid = _arrow(cf["contact_id"])
    disposition = decided["disposition"]
    reason = decided["reason"]
    detail = decided["detail"]
    next_open = decided["next_open"].copy()
    if not m.compliance.allow_contact_id_only:
        # The platform would ring the contact's saved number, which no local DNC list,
        # consent record or time zone of ours can vouch for.
        d_codes, d_labels = _codes(disposition)
        not_suppressed = ~np.isin(
            d_codes, [k for k, v in enumerate(d_labels) if v == "suppressed"]
        )
        cid_only = np.flatnonzero(
            np.asarray(pc.and_(pc.is_null(phone), pc.is_valid(cid)), dtype=bool)
            & not_suppressed
        )
        if cid_only.size:
            k = cid_only.size
            disposition = _assign(disposition, cid_only, ["suppressed"] * k)
            reason = _assign(reason, cid_only, ["no_phone_number"] * k)
            detail = _assign(detail, cid_only, [NO_PHONE_DETAIL] * k)
            next_open[cid_only] = _NAT
    cols: dict[str, Any] = {
        "row": decided["row"],
        "phone": phone,
        "cid": cid,
        "hint": _arrow(cf["tz_hint"]),
        "others": (
            _arrow(cf["phone_others"]) if "phone_others" in cf.columns
            else pa.nulls(n, pa.large_string())
        ),
        "disposition": disposition,
        "reason": reason,
        "detail": detail,
        "next_open": next_open,
        **{k: decided[k] for k in evidence_cols},
    }
    _hold_recently_called(campaign, cols, history, at, gate.window.rules)
    return Plan(campaign, contacts, gate, ledger, decided, PlanRows(cols, evidence_cols, n), at,
                history)


def _hold_recently_called(
    campaign: Campaign, cols: dict[str, Any], history: HistoryStore, at: datetime,
    rules: StateRules | None = None,
) -> None:
    """Rows another campaign called within `min_hours_between_calls`, or whose state's cap
    is used up by every campaign's calls, wait with `recently_called` and a `next_open`.

    This campaign's own calls are its journal's (and its redial policy's) business. Only
    the rows whose person the history has seen lately are looked at one by one.
    """
    min_hours = campaign.model.history.min_hours_between_calls
    since = at - timedelta(hours=max(min_hours, 24.0))
    recent = history.recent_calls(since)
    if not recent:
        return
    name = campaign.name
    phone, cid = cols["phone"], cols["cid"]
    def text(v: str) -> pa.Scalar:
        return pa.scalar(v, pa.large_string())

    person = pc.coalesce(
        pc.binary_join_element_wise(text("tel:"), phone, text("")),
        pc.binary_join_element_wise(text("cid:"), cid, text("")),
    )
    seen = np.asarray(pc.fill_null(
        pc.is_in(person, value_set=pa.array(list(recent), pa.large_string())), False
    ), dtype=bool)
    others = cols["others"]
    recent_tel = [k[4:] for k in recent if k.startswith("tel:")]
    if recent_tel and others.null_count < len(others):
        # a row whose second or third number another campaign called is that person too
        lists = pc.split_pattern(pc.fill_null(others, ""), " ")
        hit = np.asarray(pc.fill_null(pc.is_in(
            pc.list_flatten(lists), value_set=pa.array(recent_tel, pa.large_string())
        ), False), dtype=bool)
        seen[np.asarray(pc.list_parent_indices(lists))[hit]] = True
    idx = np.flatnonzero(seen)
    reason, disp, nxt = cols["reason"], cols["disposition"], cols["next_open"]
    held_idx: list[int] = []
    held_reason: list[str | None] = []
    held_detail: list[str | None] = []
    for i in idx.tolist():
        r_reason, r_disp = reason[i].as_py(), disp[i].as_py()
        if r_reason in CONTACT_REASONS or r_disp == "suppressed":
            continue
        r_next = None if nxt[i] == _NAT else _from_ns(int(nxt[i]))
        if r_disp == "pending" and r_next is None:
            continue  # nothing to wait for (unknown zone): that reason says more
        past: list[PastCall] = recent.get(person[i].as_py(), [])
        o = others[i].as_py()
        for num in o.split(" ") if o else ():  # a call to any of their numbers is to them
            past = past + recent.get(f"tel:{num}", [])
        if not any(p.campaign != name for p in past):
            continue
        e164 = phone[i].as_py()
        limit = max_calls_per_24h(e164, rules) if e164 else None
        held = hold_back(
            past, campaign=name, at=at, min_hours=min_hours, state_limit=limit,
            state=state_for_number(e164) if e164 else None,
        )
        if held is None:
            continue
        held_idx.append(i)
        held_reason.append(held.reason)
        held_detail.append(held.detail)
        if r_next is None or (held.next_open is not None and held.next_open > r_next):
            nxt[i] = _NAT if held.next_open is None else _ns(held.next_open)
    where = np.array(held_idx, dtype=np.int64)
    cols["disposition"] = _assign(disp, where, ["pending"] * len(held_idx))
    cols["reason"] = _assign(reason, where, held_reason)
    cols["detail"] = _assign(cols["detail"], where, held_detail)
