"""From a campaign file to a dial plan: load the inputs, build the gate, decide every row.

`check` stops here; `run` hands the plan to the engine. Nothing here touches the network.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from campaign_dialer.compliance import (
    CallingWindow,
    ConsentLedger,
    DncLedger,
    DncList,
    Gate,
    build_plan,
    max_calls_per_24h,
    state_for_number,
)
from campaign_dialer.config import Campaign
from campaign_dialer.contacts import Contacts, load_contacts
from campaign_dialer.history import HistoryStore, PastCall, default_path, hold_back, open_history

CONTACT_REASONS = frozenset(
    {"blank_phone", "invalid_phone", "duplicate", "no_phone_number", "dnc_flag"}
)
# Held back by the contact history (another campaign called them, or a state's cap is used up).
HISTORY_REASONS = frozenset({"recently_called"})


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


@dataclass
class Plan:
    campaign: Campaign
    contacts: Contacts
    gate: Gate
    dnc_ledger: DncLedger
    frame: pd.DataFrame
    rows: list[PlannedRow]
    at: datetime
    history: HistoryStore | None = None

    def counts(self) -> dict[tuple[str, str], int]:
        out: dict[tuple[str, str], int] = {}
        for r in self.rows:
            k = (r.disposition, r.reason or "")
            out[k] = out.get(k, 0) + 1
        return out


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
        campaign.dnc_paths, default_region=region, ledger=ledger, encoding=encoding
    )
    consent = (
        ConsentLedger.load(campaign.consent_path, default_region=region, encoding=encoding)
        if campaign.consent_path is not None
        else None
    )
    start, end = m.compliance.calling_window
    window = CallingWindow(
        start,
        end,
        state_rules=m.compliance.state_rules,
        allow_unknown_timezone=m.compliance.allow_unknown_timezone,
    )
    # refresh: every check re-reads a changed consent ledger and the DNC ledger's new lines;
    # the engine rebuilds the gate when a local DNC list changes (Engine._fresh_gate).
    gate = Gate(
        dnc=dnc, consent=consent, window=window, require_consent=m.compliance.require_consent,
        refresh=True,
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


def _pylist(values: pd.Series, *, shared: bool = True) -> list[Any]:
    """Column values as Python objects, None for missing, without a per-value check.

    `shared`: equal values are one Python object (dictionary-encoded in arrow): a million
    rows in a handful of zones hold a handful of strings, not a million copies."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = pa.array(values, from_pandas=True)
    if not shared:
        return arr.to_pylist()  # type: ignore[no-any-return]
    enc = pc.dictionary_encode(arr)
    uniques = np.array([*enc.dictionary.to_pylist(), None], dtype=object)
    codes = np.asarray(pc.fill_null(enc.indices, len(uniques) - 1), dtype=np.int64)
    return uniques[codes].tolist()  # type: ignore[no-any-return]


def make_plan(campaign: Campaign, at: datetime, history: HistoryStore | None = None) -> Plan:
    """The plan; `history` defaults to the campaign's contact history (opened here)."""
    from concurrent.futures import ThreadPoolExecutor

    m = campaign.model
    if history is None:
        history = open_campaign_history(campaign)
    # the contacts file and the compliance files are read at once: arrow releases the GIL
    with ThreadPoolExecutor(2) as pool:
        fc = pool.submit(load_campaign_contacts, campaign)
        fg = pool.submit(build_gate, campaign, history)
        contacts = fc.result()
        gate, ledger = fg.result()
    frame = build_plan(contacts, gate, at)
    cf = contacts.frame
    evidence_cols = [
        c for c in frame.columns
        if c not in ("row", "disposition", "reason", "detail", "next_open")
    ]
    rows: list[PlannedRow] = []
    n = len(cf)
    phones = _pylist(cf["phone_e164"], shared=False)
    cids = _pylist(cf["contact_id"], shared=False)
    hints = _pylist(cf["tz_hint"])
    others = _pylist(cf["phone_others"]) if "phone_others" in cf.columns else [None] * n
    disp = _pylist(frame["disposition"])
    reasons = _pylist(frame["reason"])
    details = _pylist(frame["detail"])
    has_open = frame["next_open"].notna().to_numpy()
    opens: dict[int, datetime] = {
        int(k): v.to_pydatetime() for k, v in frame["next_open"][has_open].items()
    }
    ev_lists = [_pylist(frame[c]) for c in evidence_cols]
    allow_cid_only = m.compliance.allow_contact_id_only
    no_phone_detail = "only a contact_id: local DNC lists cannot be checked without the number"
    ev_cache: dict[tuple[Any, ...], dict[str, str]] = {}
    for i, (row, ev_values) in enumerate(
        zip(frame["row"].tolist(), zip(*ev_lists, strict=True), strict=True)
    ):
        phone, cid = phones[i], cids[i]
        nxt = opens.get(i)
        disposition, reason, detail = str(disp[i]), reasons[i], details[i] or ""
        if phone is None and cid is not None and disposition != "suppressed" and not allow_cid_only:
            # The platform would ring the contact's saved number, which no local DNC list,
            # consent record or time zone of ours can vouch for.
            disposition, reason, nxt = "suppressed", "no_phone_number", None
            detail = no_phone_detail
        ev = ev_cache.get(ev_values)
        if ev is None:  # rows with the same evidence share one (read-only) dict
            ev = {c: v for c, v in zip(evidence_cols, ev_values, strict=True) if v}
            ev_cache[ev_values] = ev
        o = others[i]
        rows.append(
            PlannedRow(
                row=int(row),
                order=i,
                person=person_key(phone, cid),
                phone_e164=phone,
                contact_id=cid,
                tz_hint=hints[i],
                disposition=disposition,
                reason=reason,
                detail=detail,
                next_open=nxt,
                evidence=ev,
                other_phones=tuple(o.split(" ")) if o else (),
            )
        )
    _hold_recently_called(campaign, rows, history, at)
    return Plan(campaign, contacts, gate, ledger, frame, rows, at, history)


def _hold_recently_called(
    campaign: Campaign, rows: list[PlannedRow], history: HistoryStore, at: datetime
) -> None:
    """Rows another campaign called within `min_hours_between_calls`, or whose state's cap
    is used up by every campaign's calls, wait with `recently_called` and a `next_open`.

    This campaign's own calls are its journal's (and its redial policy's) business.
    """
    min_hours = campaign.model.history.min_hours_between_calls
    since = at - timedelta(hours=max(min_hours, 24.0))
    recent = history.recent_calls(since)
    if not recent:
        return
    name = campaign.name
    for r in rows:
        if r.person is None or r.contact_suppressed or r.disposition == "suppressed":
            continue
        if r.disposition == "pending" and r.next_open is None:
            continue  # nothing to wait for (unknown zone): that reason says more
        past: list[PastCall] = recent.get(r.person, [])
        for o in r.other_phones:  # a call to any of the person's numbers is a call to them
            past = past + recent.get(f"tel:{o}", [])
        if not any(p.campaign != name for p in past):
            continue
        limit = max_calls_per_24h(r.phone_e164) if r.phone_e164 else None
        held = hold_back(
            past, campaign=name, at=at, min_hours=min_hours, state_limit=limit,
            state=state_for_number(r.phone_e164) if r.phone_e164 else None,
        )
        if held is None:
            continue
        r.disposition, r.reason, r.detail = "pending", held.reason, held.detail
        if r.next_open is None or (held.next_open is not None and held.next_open > r.next_open):
            r.next_open = held.next_open
