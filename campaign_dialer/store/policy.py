"""The cross-campaign rule: may a person's past calls let this campaign call them now?

Pure (no database): the plan applies it to what `recent_calls` read, and every backend's
`claim` applies it inside its transaction, so the two can never disagree.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from campaign_dialer.store.model import NOT_CALLED, Claim, PastCall, iso


def hold_back(
    past: list[PastCall], *, campaign: str, at: datetime, min_hours: float,
    state_limit: int | None, state: str | None = None,
) -> Claim | None:
    """Why `past` calls forbid calling now, or None. The one rule the plan and claims share."""
    called = [p for p in past if p.state not in NOT_CALLED]
    if min_hours > 0:
        gap = timedelta(hours=min_hours)
        others = [p for p in called if p.campaign != campaign and p.at > at - gap]
        if others:
            last = max(others, key=lambda p: p.at)
            return Claim(
                False, "recently_called",
                f"called by campaign {last.campaign} at {iso(last.at)}; "
                f"{min_hours:g} h between calls",
                last.at + gap,
            )
    if state_limit is not None:
        day = timedelta(hours=24)
        recent = sorted((p.at for p in called if p.at > at - day), reverse=True)
        if len(recent) >= state_limit:
            where = f" ({state})" if state else ""
            return Claim(
                False, "recently_called",
                f"state limit{where}: {state_limit} calls per 24 h, counted across campaigns",
                recent[state_limit - 1] + day + timedelta(seconds=1),
            )
    return None
