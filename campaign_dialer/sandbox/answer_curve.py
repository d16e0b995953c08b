"""An answer curve for the sandbox (`--answer-curve FILE`, off by default; issue 27).

With it, whether a call is answered depends on the recipient's local weekday and hour at the
moment it is placed: the call is answered (ends `completed`) with the curve's probability for
that cell, and otherwise it rings out (`no_answer`, or the busy/voicemail/failed fate the
number had anyway). A call the reputation model declined stays declined.

The file: JSON `{"curve": [[24 numbers] x 7], "zones": {"212": "America/New_York"},
"default_zone": "America/New_York"}` (Monday first; `zones` and `default_zone` optional), or
CSV: 7 lines of 24 probabilities, Monday first (a first line that is not numbers is a header).
The recipient's zone: the number's area code in `zones`, else in the small table below, else
`default_zone`. The sandbox imports nothing of the dialer, so it keeps its own short table.
Time: the machine's clock, or `--answer-clock ISO` (that instant when the sandbox starts, then
real time), so a test's simulated dialer clock and the sandbox agree.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from campaign_dialer.sandbox.lifecycle import CallPlan, plan_call

#: A few area codes per US zone, enough for tests and benchmarks (the file's `zones` add more).
AREA_ZONES = {
    **dict.fromkeys(("201", "212", "305", "404", "617", "718", "917"), "America/New_York"),
    **dict.fromkeys(("214", "312", "512", "612", "713", "773"), "America/Chicago"),
    **dict.fromkeys(("303", "406", "505", "801"), "America/Denver"),
    **dict.fromkeys(("480", "520", "602"), "America/Phoenix"),
    **dict.fromkeys(("206", "213", "310", "415", "503", "702"), "America/Los_Angeles"),
    "808": "Pacific/Honolulu", "907": "America/Anchorage",
}
RING_OUT_SECONDS = 30.0


@dataclass(frozen=True)
class AnswerCurve:
    curve: tuple[tuple[float, ...], ...]  # 7 x 24, Monday first
    zones: dict[str, str] = field(default_factory=dict)
    default_zone: str = "America/New_York"

    @classmethod
    def load(cls, path: Path) -> AnswerCurve:
        """Read a curve file (JSON or CSV); ValueError naming the file on anything wrong."""
        try:
            text = Path(path).read_text(encoding="utf-8-sig")
        except OSError as e:
            raise ValueError(f"{path}: cannot read the answer curve: {e.strerror}") from None
        zones: dict[str, str] = {}
        default = "America/New_York"
        if text.lstrip().startswith("{"):
            try:
                data: Any = json.loads(text)
            except ValueError as e:
                raise ValueError(f"{path}: not valid JSON: {e}") from None
            table = data.get("curve")
            zones = {str(k): str(v) for k, v in (data.get("zones") or {}).items()}
            default = str(data.get("default_zone") or default)
        else:
            lines = [r for r in csv.reader(io.StringIO(text)) if any(c.strip() for c in r)]
            if lines and not _numeric(lines[0][0]):
                lines = lines[1:]
            table = lines
        if not isinstance(table, list) or len(table) != 7 or any(
                not isinstance(r, list) or len(r) != 24 for r in table):
            raise ValueError(f"{path}: the answer curve must be 7 rows (Monday first) of 24 "
                             "hourly probabilities")
        try:
            rows = tuple(tuple(float(x) for x in r) for r in table)
        except (TypeError, ValueError):
            raise ValueError(f"{path}: every cell must be a number from 0 to 1") from None
        if any(not 0.0 <= p <= 1.0 for r in rows for p in r):
            raise ValueError(f"{path}: every cell must be a number from 0 to 1")
        for z in {default, *zones.values()}:
            try:
                ZoneInfo(z)
            except (ValueError, KeyError, OSError):
                raise ValueError(f"{path}: {z!r} is not an IANA time zone") from None
        return cls(rows, zones, default)

    def zone_for(self, to: str) -> ZoneInfo:
        npa = to[2:5] if to.startswith("+1") else ""
        return ZoneInfo(self.zones.get(npa) or AREA_ZONES.get(npa) or self.default_zone)

    def probability(self, to: str, at: datetime) -> float:
        local = at.astimezone(self.zone_for(to))
        return self.curve[local.weekday()][local.hour]

    def apply(
        self, plan: CallPlan, *, seed: int, to: str, attempt: int, at: datetime,
        unknown: str | None, span: tuple[float, float] | None,
    ) -> tuple[CallPlan, dict[str, Any]]:
        """The call's fate under the curve, and what the audit records of it."""
        p = self.probability(to, at)
        digest = hashlib.sha256(f"answer-curve|{seed}|{to}|{attempt}".encode()).digest()
        answered = int.from_bytes(digest[:8], "big") / 2**64 < p
        local = at.astimezone(self.zone_for(to))
        info = {"answer_probability": p, "recipient_local": local.isoformat(timespec="minutes"),
                "curve_answered": answered}
        if answered and plan.final_status != "completed":
            for k in range(64):  # the number's own completed fate (talk, outcome), stable
                alt = plan_call(seed, f"{to}#answer{attempt}.{k}", unknown, span)
                if alt.final_status == "completed":
                    return alt, info
        if not answered and plan.final_status == "completed":
            kept = tuple(ph for ph in plan.phases if ph[0] not in ("in_progress", "completed"))
            end = kept[-1][1] + RING_OUT_SECONDS
            plan = replace(plan, final_status="no_answer", outcome=None,
                           ended_reason="no_answer", phases=(*kept, ("no_answer", end)),
                           duration_seconds=0, transcript="", answered=False)
        return plan, info


def _numeric(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class AnswerClock:
    """The curve with the sandbox's clock: what the app asks for each placed call."""

    curve: AnswerCurve
    started_mono: float
    start: datetime  # what the clock reads at started_mono

    @classmethod
    def of(cls, config: Any, started_mono: float) -> AnswerClock | None:
        if config.answer_curve is None:
            return None
        curve = AnswerCurve.load(config.answer_curve)
        if config.answer_clock:
            try:
                start = datetime.fromisoformat(str(config.answer_clock).replace("Z", "+00:00"))
            except ValueError:
                raise ValueError(f"--answer-clock {config.answer_clock!r} is not an ISO 8601 "
                                 "date-time") from None
            if start.tzinfo is None:
                start = start.replace(tzinfo=UTC)
        else:
            start = datetime.now(UTC)
        return cls(curve, started_mono, start)

    def apply(self, plan: CallPlan, config: Any, to: str, attempt: int, now_mono: float,
              unknown: str | None) -> tuple[CallPlan, dict[str, Any]]:
        at = self.start + timedelta(seconds=now_mono - self.started_mono)
        return self.curve.apply(plan, seed=config.seed, to=to, attempt=attempt, at=at,
                                unknown=unknown, span=config.call_seconds)
