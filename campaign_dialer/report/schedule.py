"""Adaptive schedule vs its holdout (issue 27): answered share and conversion, with 95% intervals.

The holdout is the stable hash of campaign and person the schedule used (`answering.in_holdout`),
so the report finds the same people from the results alone. Answered: a dialed row whose call
ended `completed`; converted: one whose outcome is a `[report] success_outcomes`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

from campaign_dialer.answering import ANSWERED, in_holdout
from campaign_dialer.contacts import person_keys
from campaign_dialer.report.business import two_proportion, wilson
from campaign_dialer.report.common import ratio, text_of

if TYPE_CHECKING:
    from campaign_dialer.config import Campaign


def _arm(dialed: int, answered: int, won: int) -> dict[str, Any]:
    return {"dialed": dialed, "answered": answered, "answer_rate": ratio(answered, dialed),
            "answer_ci95": list(wilson(answered, dialed)), "conversions": won,
            "conversion_rate": ratio(won, dialed), "conversion_ci95": list(wilson(won, dialed))}


def _verdict(t: dict[str, Any], what: str) -> tuple[bool, str]:
    if t["p_value"] is None:
        return False, f"not enough calls yet to compare {what}"
    if t["p_value"] < 0.05:
        better = "adaptive" if t["diff"] > 0 else "the holdout (input order)"
        return True, f"{what}: {better} is better, significant (p = {t['p_value']:.3f})"
    return False, f"{what}: the difference is not yet significant (p = {t['p_value']:.2f})"


def schedule_comparison(df: pd.DataFrame, campaign: Campaign) -> dict[str, Any] | None:
    """The adaptive rows against the holdout rows; None under input order."""
    sched = campaign.model.schedule
    if sched.strategy != "adaptive":
        return None
    dialed = text_of(df["disposition"]).eq("dialed")
    phone = text_of(df["phone_e164"]) if "phone_e164" in df else pd.Series("", index=df.index)
    cid = text_of(df["contact_id"]) if "contact_id" in df else pd.Series("", index=df.index)
    person = person_keys(phone, cid).fillna("")
    name = campaign.name
    held = person.map(lambda p: in_holdout(name, p, sched.holdout_share)).astype(bool)
    answered = dialed & text_of(df["status"]).eq(ANSWERED)
    won = dialed & text_of(df["outcome"]).isin(list(campaign.model.report.success_outcomes))
    arms = {}
    for arm, mask in (("adaptive", dialed & ~held), ("holdout", dialed & held)):
        arms[arm] = _arm(int(mask.sum()), int((answered & mask).sum()),
                         int((won & mask).sum()))
    a, h = arms["adaptive"], arms["holdout"]
    t_ans = two_proportion(a["answered"], a["dialed"], h["answered"], h["dialed"])
    t_won = two_proportion(a["conversions"], a["dialed"], h["conversions"], h["dialed"])
    sig_ans, say_ans = _verdict(t_ans, "answered share")
    sig_won, say_won = _verdict(t_won, "conversion rate")
    return {
        "strategy": "adaptive", "holdout_share": sched.holdout_share, **arms,
        "answered_test": {**t_ans, "significant": sig_ans, "verdict": say_ans},
        "conversion_test": {**t_won, "significant": sig_won, "verdict": say_won},
    }
