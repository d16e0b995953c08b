"""A placed call: its phases computed once at placement, its status read off them at any
instant, its JSON as the API and the audit show it."""

from __future__ import annotations

from typing import Any

from campaign_dialer.sandbox.lifecycle import TERMINAL_STATUSES, CallPlan
from campaign_dialer.sandbox.wire import iso_ms


class Call:
    """A placed call; its status at any instant is read off its precomputed phase times."""

    __slots__ = (
        "agent_id",
        "caller",
        "contact_id",
        "created_at",
        "created_us",
        "created_wall",
        "ended_at",
        "faults",
        "from_number",
        "id",
        "idem_key",
        "phases",
        "placed",
        "plan",
        "recording_url",
        "seq",
        "started",
        "sub_account_id",
        "to",
    )

    def __init__(
        self, seq: int, call_id: str, sub_account_id: str, agent_id: str,
        contact_id: str | None, from_number: str, to: str, placed: float, wall: float,
        plan: CallPlan, time_scale: float, idem_key: str | None, faults: list[str],
        base_url: str, caller: dict[str, Any] | None = None,
    ) -> None:
        #: The caller-ID side for the audit: numbers asked and used, reputation effects.
        self.caller = caller or {}
        self.seq = seq
        self.id = call_id
        self.sub_account_id = sub_account_id
        self.agent_id = agent_id
        self.contact_id = contact_id
        self.from_number = from_number
        self.to = to
        ms = int(wall * 1000)
        self.created_wall = ms / 1000
        self.created_us = ms * 1000
        self.placed = placed
        self.plan = plan
        self.phases = [(status, placed + offset * time_scale) for status, offset in plan.phases]
        # The timeline is fixed at placement, so its timestamps are formatted once, here.
        self.created_at = iso_ms(self.created_wall)
        self.started: tuple[float, str] | None = None
        for status, begins in self.phases:
            if status == "in_progress":
                self.started = (begins, iso_ms(self._wall(begins)))
        self.ended_at = iso_ms(self._wall(self.end))
        self.idem_key = idem_key
        self.faults = faults
        self.recording_url = (
            f"{base_url}/_sandbox/recordings/{call_id}.mp3" if plan.answered else None
        )

    @property
    def end(self) -> float:
        return self.phases[-1][1]

    def _wall(self, mono: float) -> float:
        return self.created_wall + (mono - self.placed)

    def status_at(self, now: float) -> str:
        for status, begins in reversed(self.phases):
            if begins <= now:
                return status
        return self.phases[0][0]

    def to_json(self, now: float) -> dict[str, Any]:
        status = self.status_at(now)
        started = self.started[1] if self.started and self.started[0] <= now else None
        final = status in TERMINAL_STATUSES
        plan = self.plan
        return {
            "id": self.id,
            "sub_account_id": self.sub_account_id,
            "agent_id": self.agent_id,
            "contact_id": self.contact_id,
            "direction": "outbound",
            "status": status,
            "from": self.from_number,
            "to": self.to,
            "created_at": self.created_at,
            "started_at": started,
            "ended_at": self.ended_at if final else None,
            "duration_seconds": plan.duration_seconds if final else None,
            "outcome": plan.outcome if final else None,
            "ended_reason": plan.ended_reason if final else None,
            "transcript": plan.transcript if final else None,
            "recording_url": self.recording_url if final else None,
        }

    def audit(self, now: float) -> dict[str, Any]:
        plan = self.plan
        return {
            "id": self.id,
            "seq": self.seq,
            "to": self.to,
            "contact_id": self.contact_id,
            "agent_id": self.agent_id,
            "from": self.from_number,
            "idempotency_key": self.idem_key,
            "placed_mono": self.placed,
            "placed_at": self.created_at,
            "ended_mono": self.end,
            "ended_at": self.ended_at,
            "ended": self.end <= now,
            "final_status": plan.final_status,
            "outcome": plan.outcome,
            "ended_reason": plan.ended_reason,
            "duration_seconds": plan.duration_seconds,
            "statuses": [status for status, _ in self.phases],
            "faults": list(self.faults),
            **self.caller,
        }
