"""The gate: THE one decision "may this person be called at this instant, and if not,
why and until when". The plan (`plan.plan_columns`, vectorised, the same rules in the same
order) and every dial (`Gate.check`) ask it.

Order: the contacts file's own verdict (blank, invalid, duplicate, its DNC checkbox); a stale
national/state list; the DNC lists and the ledger (the number dialed or any other number of
the row); consent and the RND answers; the calling window; a contact_id-only row when the
campaign does not allow it; the contact history (another campaign called them lately, or a
state's cap is used up), given to the gate as data (`HistoryRule`), never read by it.

`check` reads no file and runs no query: it consults memory only. `reloaded` (blocking, run
it in a worker thread) reads again the inputs whose files changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import numpy as np

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
    _aware,
    _e164_int,
    _ns,
)
from campaign_dialer.compliance.consent import ConsentDecision, ConsentLedger
from campaign_dialer.compliance.dnc import DncList
from campaign_dialer.compliance.reassigned import ReassignedAnswers
from campaign_dialer.compliance.window import CallingWindow
from campaign_dialer.vocab import (
    CONTACT_REASONS,
    DNC_LIST_STALE,
    ELIGIBLE,
    PENDING,
    SUPPRESSED,
)

NO_PHONE_NUMBER = "no_phone_number"
NO_PHONE_DETAIL = "only a contact_id: local DNC lists cannot be checked without the number"


@dataclass(frozen=True)
class Verdict:
    disposition: str  # "eligible" | "suppressed" | "pending"
    reason: str | None
    detail: str
    next_open: datetime | None
    evidence: dict[str, str]


_CONSENT_DETAIL = {
    NO_CONSENT: "no consent on record at the time of the call",
    CONSENT_REVOKED: "consent revoked",
    CONSENT_EXPIRED: "consent grant expired",
    NUMBER_REASSIGNED: "the number was permanently disconnected since the consent was given "
    "(Reassigned Numbers Database: yes)",
    REASSIGNED_UNCHECKED: "no Reassigned Numbers Database 'no' answer vouches for the "
    "consent grant (compliance.require_reassigned_check)",
}


class Hold(Protocol):
    """The contact history's answer for one person: wait, why, and until when."""

    @property
    def reason(self) -> str: ...

    @property
    def detail(self) -> str: ...

    @property
    def next_open(self) -> datetime | None: ...


class HistoryRule(Protocol):
    """The contact history's answer as data: built from what it read beforehand (in a worker
    thread), so the gate never queries it. `people`: the person keys ("tel:<E.164>",
    "cid:<id>") it may hold back; it answers None for everyone else."""

    @property
    def people(self) -> AbstractSet[str]: ...

    def __call__(
        self, phone: str | None, contact_id: str | None, others: Sequence[str], at: datetime
    ) -> Hold | None: ...


def history_applies(disposition: str, reason: str | None, next_open: datetime | None) -> bool:
    """Whether the history is asked about a row with this verdict so far: not for a row held
    back for good, nor a pending one with nothing to wait for (its own reason says more)."""
    if reason in CONTACT_REASONS or disposition == SUPPRESSED:
        return False
    return not (disposition == PENDING and next_open is None)


def held_until(next_open: datetime | None, hold: Hold) -> datetime | None:
    """The later of the verdict's own `next_open` and the hold's (None: no known end)."""
    if next_open is None or (hold.next_open is not None and hold.next_open > next_open):
        return hold.next_open
    return next_open


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
    ) -> None:
        self.dnc = dnc
        self.consent = consent
        self.window = window
        self.require_consent = require_consent
        self.reassigned = reassigned
        self.require_reassigned_check = require_reassigned_check
        self.allow_contact_id_only = allow_contact_id_only
        self.history = history

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
        )

    def _rnd(
        self, ints: np.ndarray, grant_ns: np.ndarray, has_grant: np.ndarray
    ) -> tuple[np.ndarray, list[str | None]]:
        """The RND rule on granted numbers (see `ReassignedAnswers.decide`); plan and dial."""
        if self.reassigned is None:
            code = np.where(has_grant & self.require_reassigned_check, 2, 0)
            code[~has_grant] = -1
            return code.astype(np.int64), [None] * len(ints)
        return self.reassigned.decide(
            ints, grant_ns, has_grant, require=self.require_reassigned_check
        )

    def _consent(self, phone: str | None, cid: str | None, at: datetime) -> ConsentDecision:
        if self.consent is None:
            return ConsentDecision(False, NO_CONSENT, None, None)
        return self.consent.decide(phone_e164=phone, contact_id=cid, at=at)

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
        """Decide one call now (see the module doc for the order); evidence always complete.

        `other_phones`: the row's other numbers. A DNC entry or a revocation on any of them
        holds the call back (that person asked not to be called); consent and the window are
        those of the number dialed. `contact_reason`/`contact_detail`: what the contacts
        stage said about the row (blank_phone, invalid_phone, duplicate, dnc_flag), if anything.
        """
        _aware(at)
        if contact_reason is not None:
            # no number or no person of its own: nothing was checked, so no evidence
            evidence = dict.fromkeys(EVIDENCE_KEYS, "")
            return Verdict(SUPPRESSED, contact_reason, contact_detail, None, evidence)
        phone = phone_e164 or None
        cid = contact_id or None
        if phone is None and cid is None:
            raise ValueError("a call needs a phone or a contact_id")
        verdict = self._compliance(phone, cid, tz_hint, at, other_phones)
        if verdict.reason == DNC_LIST_STALE:
            return verdict
        if (
            not self.allow_contact_id_only and phone is None
            and verdict.disposition != SUPPRESSED
        ):
            # The platform would ring the contact's saved number, which no local DNC list,
            # consent record or time zone of ours can vouch for.
            return Verdict(SUPPRESSED, NO_PHONE_NUMBER, NO_PHONE_DETAIL, None, verdict.evidence)
        if self.history is not None and history_applies(
            verdict.disposition, verdict.reason, verdict.next_open
        ):
            hold = self.history(phone, cid, tuple(other_phones), at)
            if hold is not None:
                return Verdict(
                    PENDING, hold.reason, hold.detail, held_until(verdict.next_open, hold),
                    verdict.evidence,
                )
        return verdict

    def _compliance(
        self, phone: str | None, cid: str | None, tz_hint: str | None, at: datetime,
        other_phones: Sequence[str],
    ) -> Verdict:
        """DNC, consent (and RND), window: the rules on the number itself."""
        source = None
        for number in ([phone] if phone else []) + [o for o in other_phones if o]:
            source = self.dnc.source_of(number)
            if source is not None:
                break
        consent = self._consent(phone, cid, at)
        if consent.reason != CONSENT_REVOKED and self.consent is not None:
            for number in other_phones:
                other = self.consent.decide(phone_e164=number, contact_id=None, at=at)
                if other.reason == CONSENT_REVOKED:
                    consent = other
                    break
        window = self.window.check(phone, tz_hint, at)
        evidence = {
            "consent_event_at": consent.event_at_text,
            "consent_expires_at": consent.expires_at_text,
            "consent_source": consent.source or "",
            "local_times": " ".join(window.local_times),
            "zones": " ".join(window.zones),
            "dnc_lists_checked": self.dnc.checked_label() if phone else NO_PHONE_DNC,
            "rnd_queried_at": "",
        }
        if self.require_consent and consent.allowed and consent.event_at is not None and phone:
            code, queried = self._rnd(
                np.array([_e164_int(phone)], dtype=np.int64),
                np.array([_ns(consent.event_at)], dtype=np.int64), np.array([True]),
            )
            evidence["rnd_queried_at"] = queried[0] or ""
            if code[0] in (1, 2):
                reason = NUMBER_REASSIGNED if code[0] == 1 else REASSIGNED_UNCHECKED
                consent = ConsentDecision(False, reason, consent.event_at, consent.source)
        stale = self.dnc.stale(at)
        if stale:  # no call stands on a list too old to vouch for it (the engine stops: 78)
            return Verdict(PENDING, DNC_LIST_STALE, stale[0], None, evidence)
        if source is not None:
            return Verdict(SUPPRESSED, DNC_LOCAL, f"listed in {source}", None, evidence)
        needs = self.require_consent or consent.reason == CONSENT_REVOKED
        if needs and not consent.allowed:
            reason = consent.reason or NO_CONSENT
            return Verdict(SUPPRESSED, reason, _CONSENT_DETAIL[reason], None, evidence)
        if not window.ok:
            assert window.reason is not None
            disposition = PENDING if window.reason == OUTSIDE_WINDOW else SUPPRESSED
            return Verdict(disposition, window.reason, window.detail, window.next_open, evidence)
        return Verdict(ELIGIBLE, None, window.detail, None, evidence)
