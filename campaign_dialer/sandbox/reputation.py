"""Caller-ID reputation: how carriers' spam labels and people's patience change who answers.

Off by default (``SandboxConfig.reputation``; ``--reputation``). Every figure of the model is in
``FIGURES`` (sandbox/figures.py) with its source (shared/notes/caller-ids.md), so a benchmark
can say how the world it ran against was set. All times are simulated: the sandbox's clock runs
``1 / time_scale`` times faster than the wall (0.002: a simulated day is 172.8 real seconds).

The model, per call placed from number N to person P at simulated time t:

1. Carrier label ("Spam Likely"). N is flagged for ``flag_days`` when either
   - a call takes N over ``flag_calls_per_day`` calls in the rolling 24 h before it (reason
     ``calls_per_day``; that call already bears the label), or
   - once N has ``flag_window`` connected calls, the share of them shorter than
     ``short_call_seconds`` (by ``duration_seconds``) reaches ``flag_short_share``, judged when
     each connected call ends (reason ``short_call_share``; the flag's time is that end).
   A flagged number is not flagged again until its flag ends; a flag clears N's short-call
   window, so a new flag on that ground needs a full new window. The audit's ``flags`` lists
   each flag with its time.
2. Label effect: a call that would have been answered (final status ``completed``) from a
   flagged number is answered with ``flagged_answer_factor`` times the normal probability. The
   others ring out and end ``no_answer`` (``ended_reason`` ``no_answer``) after the usual 30 s
   ring: "Spam Likely" makes people ignore or decline the call, and the platform cannot tell
   that from anyone else who did not pick up. Not ``voicemail``: a declined call often lands
   in the person's voicemail, but the sandbox's ``voicemail`` is a connected call where the
   agent left a message; ringing out keeps the label's effect on the answer rate alone.
   Calls that would have reached voicemail or ended busy/failed keep their fate (the label
   changes who picks up, not the line).
3. People's patience: the 3rd and later call from N to P within 24 h (``repeat_calls_tolerated``
   = 2 are tolerated) is answered with ``repeat_answer_factor`` times the normal probability,
   and who does pick up hangs up within seconds (2-8 s: a short call, which feeds rule 1;
   also under a ``call_seconds`` span, whose lower bound such a call ignores).
   Rules 2 and 3 multiply. Calls from *another* number do not count toward P's 3 (the model
   does not simulate call screening that learns rotating numbers; see caller-ids.md).
4. Short calls do *not* grow on a flagged number: people who still pick up a labelled call
   chose to despite the label; no source gives a figure for it, and it would close a loop
   (flag -> short calls -> flagged again the moment the flag ends) whose strength would be
   ours alone and would dominate any comparison run against the model.
5. With the model on, each attempt to a person draws its own fate (``plan_call`` keyed by the
   number and the count of earlier calls to it), so a redial after ``no_answer`` may reach the
   person, as in life; off, a number's fate is fixed as before (tests predict it).

The model has its own random stream (two draws per placed call), so turning it on does not
move the fault streams; with a seed, the same requests at the same simulated times give the
same fates and flags (calls ending before or after a placement can change what it sees).
"""

from __future__ import annotations

import heapq
import random
from collections import deque
from dataclasses import replace
from typing import Any

from campaign_dialer.sandbox.config import SandboxConfig
from campaign_dialer.sandbox.figures import FIGURES
from campaign_dialer.sandbox.lifecycle import CallPlan, plan_call
from campaign_dialer.sandbox.wire import iso_ms

DAY = 86400.0
RING_OUT_SECONDS = 30.0  # as lifecycle's no_answer: the carrier gives up after 30 s of ringing


class Reputation:
    """Per-number history and flags of one sandbox run. Caller holds the app's lock."""

    def __init__(self, config: SandboxConfig, started_mono: float, started_wall: float) -> None:
        self.config = config
        self.enabled = config.reputation
        self._started = started_mono
        self._wall = started_wall
        self._rng = random.Random(f"reputation:{config.seed}")
        self._day_calls: dict[str, deque[float]] = {}  # number id -> sim times of its calls
        self._pair_calls: dict[tuple[str, str], deque[float]] = {}  # (number id, to) -> times
        self._windows: dict[str, deque[bool]] = {}  # number id -> last connected calls: short?
        # (end in sim seconds, seq, number id, number, short?) of connected calls not yet ended
        self._ends: list[tuple[float, int, str, str, bool]] = []
        self._until: dict[str, float] = {}  # number id -> sim time its flag ends
        self.flags: list[dict[str, Any]] = []

    def sim(self, mono: float) -> float:
        """Simulated seconds since the sandbox started."""
        return (mono - self._started) / self.config.time_scale

    def sim_iso(self, sim: float) -> str:
        """A simulated instant as ISO 8601 UTC: the start's wall time plus simulated seconds."""
        return iso_ms(self._wall + sim)

    def plan(
        self, now: float, seq: int, number_id: str, number: str, to: str, attempt: int,
        unknown: str | None,
    ) -> tuple[CallPlan, dict[str, Any]]:
        """The fate of a call placed at `now` (monotonic) and what the model did to it."""
        cfg = self.config
        t = self.sim(now)
        info: dict[str, Any] = {
            "placed_sim_at": self.sim_iso(t), "flagged": False, "repeat_call": False,
            "declined": False,
        }
        if not self.enabled:
            return plan_call(cfg.seed, to, unknown, cfg.call_seconds), info
        self.advance(now)
        day = self._day_calls.setdefault(number_id, deque())
        while day and day[0] <= t - DAY:
            day.popleft()
        day.append(t)
        if len(day) > cfg.flag_calls_per_day and not self._flagged(number_id, t):
            self._flag(number_id, number, t, "calls_per_day", {"calls_24h": len(day)})
        pair = self._pair_calls.setdefault((number_id, to), deque())
        while pair and pair[0] <= t - DAY:
            pair.popleft()
        repeat = len(pair) >= cfg.repeat_calls_tolerated
        pair.append(t)
        flagged = self._flagged(number_id, t)
        info.update(flagged=flagged, repeat_call=repeat)
        key = to if attempt == 0 else f"{to}#attempt{attempt}"
        plan = plan_call(cfg.seed, key, unknown, cfg.call_seconds)
        u_answer, u_length = self._rng.random(), self._rng.random()  # always two: stable stream
        if plan.final_status == "completed":
            factor = (cfg.flagged_answer_factor if flagged else 1.0) * (
                cfg.repeat_answer_factor if repeat else 1.0)
            if u_answer >= factor:
                plan = _rung_out(plan, cfg.call_seconds is not None)
                info["declined"] = True
            elif repeat:
                plan = _hung_up(plan, 2.0 + 6.0 * u_length)
        if plan.answered:
            end = t + plan.end_offset
            short = plan.duration_seconds < cfg.short_call_seconds
            heapq.heappush(self._ends, (end, seq, number_id, number, short))
        return plan, info

    def advance(self, now: float) -> None:
        """Judge the connected calls that ended by `now`, in the order they ended."""
        if not self.enabled:
            return
        cfg = self.config
        t = self.sim(now)
        ends = self._ends
        while ends and ends[0][0] <= t:
            end, _seq, number_id, number, short = heapq.heappop(ends)
            window = self._windows.setdefault(number_id, deque(maxlen=cfg.flag_window))
            window.append(short)
            if len(window) == cfg.flag_window and not self._flagged(number_id, end):
                share = sum(window) / len(window)
                if share >= cfg.flag_short_share:
                    self._flag(number_id, number, end, "short_call_share",
                               {"short_calls": sum(window), "window": len(window)})

    def settings(self) -> dict[str, float] | None:
        """The model's figures this run uses (for the audit's stats); None when it is off."""
        if not self.enabled:
            return None
        return {name: getattr(self.config, name) for name in FIGURES}

    def flagged_now(self, now: float) -> list[str]:
        t = self.sim(now)
        return sorted(n for n in self._until if self._flagged(n, t))

    def _flagged(self, number_id: str, t: float) -> bool:
        return t < self._until.get(number_id, float("-inf"))

    def _flag(self, number_id: str, number: str, t: float, reason: str,
              detail: dict[str, Any]) -> None:
        until = t + self.config.flag_days * DAY
        self._until[number_id] = until
        self._windows.pop(number_id, None)
        self.flags.append({
            "number_id": number_id, "number": number, "at": self.sim_iso(t), "reason": reason,
            "until": self.sim_iso(until), "detail": detail,
        })


def _before(plan: CallPlan, status: str) -> list[tuple[str, float]]:
    """The plan's phases up to (not including) `status`."""
    phases: list[tuple[str, float]] = []
    for name, begins in plan.phases:
        if name == status:
            break
        phases.append((name, begins))
    return phases


def _rung_out(plan: CallPlan, keep_length: bool) -> CallPlan:
    """The person did not pick up: it rings out (as long as planned under a call_seconds span)."""
    phases = _before(plan, "in_progress")
    end = plan.end_offset if keep_length else phases[-1][1] + RING_OUT_SECONDS
    return replace(
        plan, final_status="no_answer", outcome=None, ended_reason="no_answer",
        phases=(*phases, ("no_answer", end)), duration_seconds=0, transcript="", answered=False,
    )


def _hung_up(plan: CallPlan, seconds: float) -> CallPlan:
    """The person picked up a call too many and hung up at once."""
    phases = _before(plan, "completed")
    return replace(
        plan, outcome="not_interested", ended_reason="customer_hangup",
        phases=(*phases, ("completed", phases[-1][1] + seconds)),
        duration_seconds=round(seconds),
        transcript="Agent: Hi, this is your AI assistant calling.\n"
        "Customer: You called me three times today. (hangs up)",
    )
