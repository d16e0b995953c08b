"""From a campaign file to a dial plan: load the inputs, build the gate, decide every row.

`check` stops here; `run` hands the plan to the engine. Nothing here touches the network.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd

from campaign_dialer.compliance import (
    CallingWindow,
    ConsentLedger,
    DncLedger,
    DncList,
    Gate,
    build_plan,
)
from campaign_dialer.config import Campaign
from campaign_dialer.contacts import Contacts, load_contacts

CONTACT_REASONS = frozenset({"blank_phone", "invalid_phone", "duplicate", "no_phone_number"})


def person_key(phone_e164: str | None, contact_id: str | None) -> str | None:
    """Who a row rings: the line itself when we know it, else the platform's contact."""
    if phone_e164:
        return f"tel:{phone_e164}"
    if contact_id:
        return f"cid:{contact_id}"
    return None


@dataclass
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
    evidence: dict[str, str] = field(default_factory=dict)
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


def build_gate(campaign: Campaign) -> tuple[Gate, DncLedger]:
    m = campaign.model
    region = m.campaign.default_region
    ledger = DncLedger(campaign.dnc_ledger_path)
    encoding = m.inputs.encoding
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


def make_plan(campaign: Campaign, at: datetime) -> Plan:
    m = campaign.model
    contacts = load_campaign_contacts(campaign)
    gate, ledger = build_gate(campaign)
    frame = build_plan(contacts, gate, at)
    cf = contacts.frame
    evidence_cols = [
        c for c in frame.columns
        if c not in ("row", "disposition", "reason", "detail", "next_open")
    ]
    rows: list[PlannedRow] = []
    phones = cf["phone_e164"].tolist()
    cids = cf["contact_id"].tolist()
    hints = cf["tz_hint"].tolist()
    others = cf["phone_others"].tolist() if "phone_others" in cf.columns else [None] * len(cf)
    disp = frame["disposition"].tolist()
    reasons = frame["reason"].tolist()
    details = frame["detail"].tolist()
    opens = frame["next_open"].tolist()
    ev_lists = {c: frame[c].tolist() for c in evidence_cols}
    allow_cid_only = m.compliance.allow_contact_id_only
    for i, row in enumerate(frame["row"].tolist()):
        phone, cid = _na(phones[i]), _na(cids[i])
        nxt = _na(opens[i])
        disposition, reason, detail = str(disp[i]), _na(reasons[i]), str(_na(details[i]) or "")
        if phone is None and cid is not None and disposition != "suppressed" and not allow_cid_only:
            # The platform would ring the contact's saved number, which no local DNC list,
            # consent record or time zone of ours can vouch for.
            disposition, reason, nxt = "suppressed", "no_phone_number", None
            detail = "only a contact_id: local DNC lists cannot be checked without the number"
        if nxt is not None and not isinstance(nxt, datetime):
            nxt = pd.Timestamp(nxt).to_pydatetime()
        ev = {c: str(v) for c in evidence_cols if (v := _na(ev_lists[c][i])) not in (None, "")}
        rows.append(
            PlannedRow(
                row=int(row),
                order=i,
                person=person_key(phone, cid),
                phone_e164=phone,
                contact_id=cid,
                tz_hint=_na(hints[i]),
                disposition=disposition,
                reason=reason,
                detail=detail,
                next_open=nxt,
                evidence=ev,
                other_phones=tuple(o.split(" ")) if (o := _na(others[i])) else (),
            )
        )
    return Plan(campaign, contacts, gate, ledger, frame, rows, at)
