"""The gate: THE one decision "may this person be called at this instant, and if not,
why and until when". The plan (`plan.plan_columns`, every row at once) and every dial
(`Gate.check`) walk the same rule list (`compliance.rules.RULES`: the order and each rule are
documented there), so they cannot disagree.

`check` reads no file and runs no query: it consults memory only. `reloaded` (blocking, run
it in a worker thread) reads again the inputs whose files changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from campaign_dialer.compliance.base import EVIDENCE_KEYS, aware
from campaign_dialer.compliance.consent import ConsentLedger
from campaign_dialer.compliance.dnc import DncList
from campaign_dialer.compliance.reassigned import ReassignedAnswers
from campaign_dialer.compliance.rules import (
    NO_PHONE_DETAIL,
    NO_PHONE_NUMBER,
    RULES,
    Call,
    HistoryRule,
    Hold,
    Rule,
    walk_one,
)
from campaign_dialer.compliance.window import CallingWindow
from campaign_dialer.vocab import DNC_LIST_STALE, ELIGIBLE

__all__ = [
    "DNC_LIST_STALE",
    "NO_PHONE_DETAIL",
    "NO_PHONE_NUMBER",
    "Gate",
    "HistoryRule",
    "Hold",
    "Verdict",
]


@dataclass(frozen=True)
class Verdict:
    disposition: str  # "eligible" | "suppressed" | "pending"
    reason: str | None
    detail: str
    next_open: datetime | None
    evidence: dict[str, str]


_NO_EVIDENCE = dict.fromkeys(EVIDENCE_KEYS, "")


class Gate:
    """Every call passes here, at planning and again at the moment of dialing.

    Immutable once built, except the DNC ledger (shared, appended to in memory by whoever
    records an opt-out): `check` sees a number recorded a moment ago.
    """

    def __init__(
        self,
        *,
        dnc: DncList,
        consent: ConsentLedger | None,
        window: CallingWindow,
        require_consent: bool,
        reassigned: ReassignedAnswers | None = None,
        require_reassigned_check: bool = False,
        allow_contact_id_only: bool = True,
        history: HistoryRule | None = None,
        rules: Sequence[Rule] = RULES,
    ) -> None:
        self.dnc = dnc
        self.consent = consent
        self.window = window
        self.require_consent = require_consent
        self.reassigned = reassigned
        self.require_reassigned_check = require_reassigned_check
        self.allow_contact_id_only = allow_contact_id_only
        self.history = history
        self.rules = tuple(rules)  # the one ordered list the plan walks too

    def reloaded(self) -> Gate | None:
        """A gate on the inputs read again where their files changed (DNC lists, consent
        ledger, RND answers), or None when none did. Blocking: run it in a worker thread.

        The DNC ledger is caught up in place first (it is shared with the plan, which adds
        the numbers this run records): the current gate sees those numbers too.
        """
        if self.dnc.ledger is not None:
            self.dnc.ledger.reload()
        dnc = self.dnc.reloaded()
        consent = self.consent.reloaded() if self.consent is not None else None
        reassigned = self.reassigned.reloaded() if self.reassigned is not None else None
        if dnc is None and consent is None and reassigned is None:
            return None
        return Gate(
            dnc=dnc or self.dnc,
            consent=consent or self.consent,
            window=self.window,
            require_consent=self.require_consent,
            reassigned=reassigned or self.reassigned,
            require_reassigned_check=self.require_reassigned_check,
            allow_contact_id_only=self.allow_contact_id_only,
            history=self.history,
            rules=self.rules,
        )

    def check(
        self,
        *,
        phone_e164: str | None,
        contact_id: str | None,
        tz_hint: str | None,
        at: datetime,
        other_phones: Sequence[str] = (),
        contact_reason: str | None = None,
        contact_detail: str = "",
    ) -> Verdict:
        """Decide one call now: the first rule of `rules` that says no decides; evidence
        always complete (empty for a row the contacts stage rejected: nothing was checked).

        `other_phones`: the row's other numbers. A DNC entry or a revocation on any of them
        holds the call back (that person asked not to be called); consent and the window are
        those of the number dialed. `contact_reason`/`contact_detail`: what the contacts
        stage said about the row (blank_phone, invalid_phone, duplicate, dnc_flag), if anything.
        """
        aware(at)
        phone = phone_e164 or None
        cid = contact_id or None
        if contact_reason is None and phone is None and cid is None:
            raise ValueError("a call needs a phone or a contact_id")
        call = Call(
            phone, cid, tz_hint, at, other_phones, contact_reason, contact_detail,
            dict(_NO_EVIDENCE),
        )
        no = walk_one(self.rules, self, call)
        if no is None:
            return Verdict(ELIGIBLE, None, call.note, None, call.evidence)
        return Verdict(no.disposition, no.reason, no.detail, no.next_open, call.evidence)
