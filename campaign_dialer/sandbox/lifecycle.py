"""How a simulated call unfolds, decided from a hash of (seed, destination number).

Hashing the number instead of drawing from a shared random stream makes a call's fate
independent of request order and concurrency: two runs with the same seed agree on every
number's final status and outcome, so a test can predict it with `plan_call`.
Durations are in simulated seconds; the sandbox multiplies them by its time scale.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

TERMINAL_STATUSES: frozenset[str] = frozenset(
    {"completed", "no_answer", "busy", "voicemail", "failed", "canceled"}
)
#: Undocumented non-terminal statuses the `unknown_status` fault slips into a lifecycle.
UNKNOWN_STATUSES: tuple[str, ...] = ("queued", "dialing", "routing")

# (final status, cumulative probability)
_FINAL = (
    ("completed", 0.60),
    ("voicemail", 0.72),
    ("no_answer", 0.84),
    ("busy", 0.90),
    ("failed", 0.96),
    ("canceled", 1.00),
)
# (outcome, cumulative probability) for calls that were answered by a person
_OUTCOMES = (
    ("opt_out", 0.025),
    ("do_not_call", 0.05),
    ("appointment_booked", 0.27),
    ("qualified", 0.47),
    ("not_interested", 0.75),
    ("callback_requested", 0.92),
    ("wrong_number", 1.00),
)
DNC_OUTCOMES: frozenset[str] = frozenset({"opt_out", "do_not_call"})

_TRANSCRIPTS = {
    "appointment_booked": "Customer: Sure, Tuesday at 10 works.\nAgent: Booked, you'll get a text.",
    "qualified": "Customer: Yes, we're looking at this next quarter.\nAgent: Great, noted.",
    "not_interested": "Customer: No thanks, not interested.\nAgent: Understood, have a good day.",
    "callback_requested": "Customer: Can you call me back tomorrow?\nAgent: Of course.",
    "wrong_number": "Customer: I think you have the wrong number.\nAgent: Sorry to bother you.",
    "opt_out": "Customer: Please stop calling me.\nAgent: Understood, I'll remove your number.",
    "do_not_call": "Customer: Put me on your do-not-call list.\nAgent: Done, you won't be called.",
}


@dataclass(frozen=True)
class CallPlan:
    """A call's whole future, fixed when it is placed."""

    final_status: str
    outcome: str | None
    ended_reason: str
    #: (status, simulated seconds after placement when it begins); the last one is terminal.
    phases: tuple[tuple[str, float], ...]
    duration_seconds: int
    transcript: str
    answered: bool

    @property
    def end_offset(self) -> float:
        return self.phases[-1][1]


def _uniforms(seed: int, to: str) -> list[float]:
    digest = hashlib.sha256(f"vantax-sandbox|{seed}|{to}".encode()).digest()
    return [int.from_bytes(digest[i : i + 4], "big") / 2**32 for i in range(0, 32, 4)]


def _pick(table: tuple[tuple[str, float], ...], u: float) -> str:
    for name, cumulative in table:
        if u < cumulative:
            return name
    return table[-1][0]


def plan_call(
    seed: int, to: str, unknown_status: str | None = None,
    span: tuple[float, float] | None = None,
) -> CallPlan:
    """The deterministic fate of a call to `to` under `seed`.

    `unknown_status` (the fault) inserts an undocumented status right after `initiated`
    without changing the final status, outcome or duration. `span` (lo, hi) stretches every
    phase so the call lasts lo..hi simulated seconds from placement to its final status
    (uniform, from the number's hash): realistic durations for a benchmark.
    """
    u = _uniforms(seed, to)
    final = _pick(_FINAL, u[0])
    setup = 1.0 + 2.0 * u[2]  # initiated -> ringing
    outcome: str | None = None
    transcript = ""
    answered = False
    talk = 0.0
    phases: list[tuple[str, float]] = [("initiated", 0.0)]
    if final == "failed":
        reason = "carrier_error"
        end = setup + 2.0 * u[3]
    else:
        phases.append(("ringing", setup))
        if final == "completed":
            ring = 4.0 + 16.0 * u[3]
            outcome = _pick(_OUTCOMES, u[1])
            talk = (20.0 + 40.0 * u[4]) if outcome in DNC_OUTCOMES else (45.0 + 255.0 * u[4])
            reason = (
                "customer_requested_dnc"
                if outcome in DNC_OUTCOMES
                else ("customer_hangup" if u[5] < 0.5 else "agent_hangup")
            )
            transcript = "Agent: Hi, this is your AI assistant calling.\n" + _TRANSCRIPTS[outcome]
        elif final == "voicemail":
            ring = 15.0 + 10.0 * u[3]
            talk = 20.0 + 20.0 * u[4]
            outcome = "left_voicemail"
            reason = "voicemail_reached"
            transcript = "Agent (voicemail): Hi, sorry we missed you. Please call us back."
        elif final == "no_answer":
            ring, reason = 30.0, "no_answer"
        elif final == "busy":
            ring, reason = 2.0 + 2.0 * u[3], "busy"
        else:  # canceled
            ring, reason = 3.0 + 5.0 * u[3], "canceled_by_platform"
        if talk > 0:
            answered = True
            phases.append(("in_progress", setup + ring))
        end = setup + ring + talk
    phases.append((final, end))
    if span is not None:
        lo, hi = span
        factor = (lo + (hi - lo) * u[6]) / end
        phases = [(status, offset * factor) for status, offset in phases]
        talk *= factor
    if unknown_status is not None:
        # A short undocumented phase between initiated and the next documented status.
        second = phases[1][1]
        phases.insert(1, (unknown_status, second / 2.0))
    return CallPlan(
        final_status=final,
        outcome=outcome,
        ended_reason=reason,
        phases=tuple(phases),
        duration_seconds=round(talk),
        transcript=transcript,
        answered=answered,
    )
