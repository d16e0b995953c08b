"""What the engine needs to know of a row: the plan's row, read-only.

The engine does not import the planning module: it takes any row with these fields (the
plan's `PlannedRow` is one), and makes a `RecoveredRow` for an attempt the plan no longer
has (a row removed from the contacts file while a call of its was open).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from campaign_dialer.store import Attempt
from campaign_dialer.vocab import CONTACT_REASONS, ELIGIBLE


class Row(Protocol):
    """One contact row as planned; the engine never changes one."""

    @property
    def row(self) -> int: ...
    @property
    def order(self) -> int: ...
    @property
    def person(self) -> str | None: ...
    @property
    def phone_e164(self) -> str | None: ...
    @property
    def contact_id(self) -> str | None: ...
    @property
    def tz_hint(self) -> str | None: ...
    @property
    def disposition(self) -> str: ...
    @property
    def reason(self) -> str | None: ...
    @property
    def detail(self) -> str: ...
    @property
    def next_open(self) -> datetime | None: ...
    @property
    def evidence(self) -> dict[str, str]: ...
    @property
    def other_phones(self) -> tuple[str, ...]: ...
    @property
    def contact_suppressed(self) -> bool: ...


@dataclass
class RecoveredRow:
    """A row rebuilt from an open attempt's request body, to resolve that attempt."""

    row: int
    order: int
    person: str | None
    phone_e164: str | None
    contact_id: str | None
    tz_hint: str | None = None
    disposition: str = ELIGIBLE
    reason: str | None = None
    detail: str = ""
    next_open: datetime | None = None
    evidence: dict[str, str] = field(default_factory=dict)
    other_phones: tuple[str, ...] = ()

    @property
    def contact_suppressed(self) -> bool:
        return self.reason in CONTACT_REASONS


def row_for_attempt(a: Attempt) -> RecoveredRow:
    """A row for an open attempt whose row the plan no longer has."""
    return RecoveredRow(
        row=a.row, order=a.row, person=a.person, phone_e164=a.body.get("phone_number"),
        contact_id=a.body.get("contact_id"),
    )
