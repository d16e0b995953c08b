"""Fates: what results.csv says of each row, from the plan, the attempts and the run.

`row_fate` asks the redial policy (`redial.next_attempt`, through a `RedialPolicy`) whether
a row waits for another attempt; it knows nothing else of the engine.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from campaign_dialer import vocab
from campaign_dialer.store import (
    ERROR,
    FINAL,
    INTENT,
    NOT_PLACED,
    PLACED,
    REJECTED,
    UNRESOLVED,
    Attempt,
    Fate,
    iso,
)

from .redial import RedialPolicy
from .rows import Row


def attempt_fate(row: Row, a: Attempt) -> Fate:
    """A row's fate from its last attempt alone."""
    ev = {**row.evidence, **a.evidence}
    if a.state == FINAL:
        return Fate(row.row, row.person, vocab.DIALED, a.status, a.error or "", None, ev)
    if a.state == REJECTED:
        return Fate(
            row.row, row.person, vocab.REJECTED, a.error_code or "dnc_listed", a.error, None, ev
        )
    if a.state == ERROR:
        return Fate(row.row, row.person, vocab.ERROR, a.error_code or f"http_{a.http_status}",
                    a.error, None, ev)
    if a.state == PLACED:
        return Fate(row.row, row.person, vocab.PENDING, "call_live", "", None, ev)
    if a.state == INTENT:
        return Fate(row.row, row.person, vocab.PENDING, "unresolved", a.error or "", None, ev)
    if a.state == UNRESOLVED:
        detail = f"{a.error or 'unconfirmed'}; a person decides: campaign-dialer release"
        return Fate(row.row, row.person, vocab.PENDING, "unresolved", detail, None, ev)
    return Fate(
        row.row, row.person, vocab.PENDING, a.error_code or "not_placed", a.error or "", None, ev
    )


def row_fate(
    r: Row, attempts: list[Attempt], rows_by_person: Mapping[str, Row], policy: RedialPolicy,
    now: datetime, control: str, stored: Fate | None, dial_time: Fate | None,
) -> Fate:
    """One row's fate from the plan, the person's attempts and this run's dial-time verdicts.

    `rows_by_person`: the row that dials for each person (later rows are duplicates).
    """
    if r.contact_suppressed or r.person is None:
        return Fate(r.row, r.person, vocab.SUPPRESSED, r.reason, r.detail, None, r.evidence)
    if rows_by_person.get(r.person) is not r:
        first = rows_by_person.get(r.person)
        return Fate(r.row, r.person, vocab.SUPPRESSED, "duplicate",
                    f"duplicate_of={first.row}" if first else r.detail, None, r.evidence)
    if attempts:
        last = attempts[-1]
        fate = attempt_fate(r, last)
        nxt = policy.next(r, attempts, now) if last.state == FINAL else None
        if nxt is not None and control == "active":
            when = nxt[1]
            if (r.reason in vocab.HISTORY_REASONS and r.next_open
                    and (when is None or r.next_open > when)):
                # other campaigns' calls hold the redial back longer than our own policy does
                return Fate(r.row, r.person, vocab.PENDING, r.reason, r.detail,
                            iso(r.next_open), fate.evidence)
            detail = f"attempt {nxt[0]} after {iso(when) if when else 'now'}; last: {last.status}"
            return Fate(r.row, r.person, vocab.PENDING, "redial_scheduled", detail, iso(when),
                        fate.evidence)
        if (last.state == NOT_PLACED and stored is not None
                and stored.disposition == vocab.PENDING):
            return Fate(r.row, r.person, vocab.PENDING, stored.reason, stored.detail,
                        stored.next_open, stored.evidence)
        return fate
    if control == "canceled":
        return Fate(r.row, r.person, vocab.SUPPRESSED, "campaign_canceled", "", None, r.evidence)
    if dial_time is not None:
        return dial_time
    if r.disposition == vocab.SUPPRESSED:
        return Fate(r.row, r.person, vocab.SUPPRESSED, r.reason, r.detail, None, r.evidence)
    if r.disposition == vocab.PENDING:
        return Fate(r.row, r.person, vocab.PENDING, r.reason, r.detail, iso(r.next_open),
                    r.evidence)
    reason = "paused" if control == "paused" else "not_dialed_yet"
    return Fate(r.row, r.person, vocab.PENDING, reason, "", None, r.evidence)
