"""A journal's state transitions, written once for every backend.

Each is one `_update` of the attempt's row (or a read through `attempts`), so the SQLite and
PostgreSQL journals share them; a backend provides `_update`, `attempt`, `attempts` and
`_now`, and keeps its own transactions and fences.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from campaign_dialer.store.model import (
    ERROR,
    FINAL,
    INTENT,
    NOT_PLACED,
    PLACED,
    REJECTED,
    UNRESOLVED,
    Attempt,
    iso,
    now_iso,
)


class Stamped:
    """A journal's clock: every role of it stamps times from the clock it was opened with."""

    _now: Callable[[], datetime] | None

    def _ts(self) -> str:
        """Timestamps follow the run's clock, so a test clock sees a consistent journal."""
        return iso(self._now()) if self._now else now_iso()  # type: ignore[return-value]


class AttemptTransitions(Stamped):
    """The attempt state machine's writes, in terms of a backend's `_update`."""

    def _update(self, attempt_id: int, **fields: Any) -> None:
        raise NotImplementedError

    def attempt(self, attempt_id: int) -> Attempt:
        raise NotImplementedError

    def attempts(self, *, states: Sequence[str] | None = None) -> list[Attempt]:
        raise NotImplementedError

    def attempts_by_person(self) -> dict[str, list[Attempt]]:
        out: dict[str, list[Attempt]] = {}
        for a in self.attempts():
            out.setdefault(a.person, []).append(a)
        for lst in out.values():
            lst.sort(key=lambda a: a.attempt)
        return out

    def record_placed(
        self, attempt_id: int, *, call_id: str, http_status: int | None, status: str,
        placed_at: str | None,
    ) -> None:
        self._update(
            attempt_id, state=PLACED, call_id=call_id, http_status=http_status, status=status,
            placed_at=placed_at or self._ts(), error=None, error_code=None,
        )

    def record_status(self, attempt_id: int, status: str) -> None:
        self._update(attempt_id, status=status)

    def record_rejected(
        self, attempt_id: int, *, http_status: int | None, error_code: str | None, error: str
    ) -> None:
        self._update(
            attempt_id, state=REJECTED, http_status=http_status, error_code=error_code,
            error=error,
        )

    def record_error(
        self, attempt_id: int, *, http_status: int | None, error_code: str | None, error: str
    ) -> None:
        self._update(
            attempt_id, state=ERROR, http_status=http_status, error_code=error_code, error=error
        )

    def record_not_placed(
        self, attempt_id: int, *, http_status: int | None, error_code: str | None, error: str
    ) -> None:
        """Known NOT to have rung (auth refused, reconciled as absent): the same key is reused."""
        self._update(
            attempt_id, state=NOT_PLACED, http_status=http_status, error_code=error_code,
            error=error,
        )

    def reopen(
        self, attempt_id: int, body: dict[str, Any] | None = None, idem_key: str | None = None,
        evidence: dict[str, Any] | None = None,
    ) -> None:
        """A not-placed attempt goes back to intent before its key is sent again.

        `body`: the campaign was fixed since (agent, from-number), or the caller-ID pool
        chose another number; nothing was placed under the old key, so the corrected request
        goes out under `idem_key`, one of its own. `evidence`: this dial's, replacing the last.
        """
        fields: dict[str, Any] = {"state": INTENT}
        if evidence is not None:
            fields["evidence"] = json.dumps(evidence)
        if body is not None:
            fields["body"] = json.dumps(body, sort_keys=True)
        if idem_key is not None:
            fields["idem_key"] = idem_key
        self._update(attempt_id, **fields)

    def record_unresolved(self, attempt_id: int, *, error: str) -> None:
        """Neither replay nor lookup can tell whether this call rang: a person decides."""
        self._update(attempt_id, state=UNRESOLVED, error_code="unresolved", error=error)

    def release(self, *, rows: Iterable[int] | None, as_called: bool) -> list[Attempt]:
        """A person's decision on unresolved attempts: not placed (dial again) or called."""
        wanted = set(rows) if rows is not None else None
        done = []
        for a in self.attempts(states=[UNRESOLVED]):
            if wanted is not None and a.row not in wanted:
                continue
            if as_called:
                self._update(a.id, state=FINAL, status="unknown", error_code="released",
                             error="released by a person as called", ended_at=self._ts())
            else:
                self._update(a.id, state=NOT_PLACED, error_code="released",
                             error="released by a person as not placed")
            done.append(self.attempt(a.id))
        return done

    def note_error(
        self, attempt_id: int, *, http_status: int | None, error_code: str | None, error: str
    ) -> None:
        """Keep the last transient problem without changing the state."""
        self._update(attempt_id, http_status=http_status, error_code=error_code, error=error)
