"""The breaker: the same non-transient error on N calls in a row is the campaign's fault.

A streak of one code (say `400 invalid_agent`) across `api.breaker_threshold` consecutive
calls stops the run (78 for 400/404/422, else 69) and marks those attempts not placed, so
their rows wait for the fixed campaign instead of counting as errors. Row-data errors
(`contact_not_found`) never count; any understood answer resets the streak.
"""

from __future__ import annotations

from campaign_dialer.client import VantaxError

# Codes about one row's own data; they never trip the breaker.
ROW_ERRORS = frozenset({"contact_not_found"})
# Error codes that are about the campaign file, not the row: the key to fix.
CAMPAIGN_ERRORS = {
    "agent_not_found": "campaign.agent_id",
    "phone_number_not_found": "campaign.from_phone_number_id",
}


class Breaker:
    def __init__(self, threshold: int) -> None:
        self.threshold = threshold
        self._code = ""
        self._ids: list[int] = []

    def reset(self) -> None:
        self._code, self._ids = "", []

    def count(self, e: VantaxError, attempt_id: int) -> list[int] | None:
        """Count one more error; the attempts of the streak when it trips, else None."""
        if e.code in ROW_ERRORS:
            return None  # about this row's data: a streak of them says nothing of the campaign
        code = f"{e.status} {e.code or ''}".strip()
        self._ids = [*self._ids, attempt_id] if code == self._code else [attempt_id]
        self._code = code
        if len(self._ids) < self.threshold:
            return None
        return list(self._ids)

    @property
    def code(self) -> str:
        return self._code
