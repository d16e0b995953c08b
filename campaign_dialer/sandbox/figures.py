"""The caller-ID reputation model's figures (sandbox/reputation.py), each with its source.

They are `SandboxConfig`'s defaults (`--flag-*` and friends override them), so they live apart
from both: the settings read them, the model reads the settings, and `sandbox --help` and a
benchmark print them with where each comes from.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Figure:
    value: float
    meaning: str
    source: str


#: The model's figures: SandboxConfig's defaults, with where each comes from.
FIGURES: dict[str, Figure] = {
    "flag_calls_per_day": Figure(
        100, "calls from one number in a rolling 24 simulated hours before it is flagged",
        "caller-ids.md: ~75 calls per number per day is a common ceiling (vahorizon, 'not "
        "gospel'). 100/day (the issue's figure): flagged a little past the ceiling "
        "practitioners keep under",
    ),
    "flag_short_share": Figure(
        0.6, "share of a number's last flag_window connected calls that are short to flag it",
        "caller-ids.md: calls shorter than ~10 s count as negative events (unlimcall); no "
        "engine publishes a threshold, 0.6 is the issue's figure (most calls are negative)",
    ),
    "short_call_seconds": Figure(
        10, "a connected call shorter than this (duration_seconds) is short",
        "caller-ids.md: calls shorter than ~10 s are negative events (unlimcall.com blog)",
    ),
    "flag_window": Figure(
        50, "connected calls the short-call share is taken over (judged once full)",
        "the issue's figure; large enough that a few hang-ups do not flag a number",
    ),
    "flagged_answer_factor": Figure(
        0.2, "a flagged number's calls are answered with this times the normal probability",
        "the issue's figure ('answered far less'); caller-ids.md: carriers' engines (Hiya, "
        "First Orion, TNS) label calls; no engine or carrier publishes the label's effect",
    ),
    "flag_days": Figure(
        30, "simulated days a flag lasts",
        "caller-ids.md: rest a flagged number 60 days to 6 months (Infobip, Kixie); 30 is the "
        "issue's figure, shorter than the advice, so a benchmark's week never sees one end",
    ),
    "repeat_calls_tolerated": Figure(
        2, "calls a day from one number one person tolerates; later ones are penalised",
        "caller-ids.md: First Orion, Call Behavior Best Practices: recipients tolerate 2 calls "
        "a day from the same calling party, from the 3rd they block or report",
    ),
    "repeat_answer_factor": Figure(
        0.2, "a call past the tolerated ones is answered with this times the normal "
        "probability, and who answers hangs up within 2-8 s",
        "First Orion (as above) gives no figure: the model's choice, the same factor as the "
        "label's ('far less')",
    ),
}
