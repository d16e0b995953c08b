"""The report's "Caller IDs" section: each number's calls per day, answer rate, short-call
share, and its rests with why (from the contact history the runs share).

Counted over this campaign's attempts (the journal); the rests are the pool's, whoever
caused them (a number worn out by another campaign rests for this one too).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

from campaign_dialer.store.model import NumberRest, iso

if TYPE_CHECKING:
    from campaign_dialer.config import Campaign

AGENT_DEFAULT = "agent_default"  # calls with no from_phone_number_id (the agent's own number)


def caller_id_figures(
    campaign: Campaign, calls: pd.DataFrame, rests: list[NumberRest], zone: Any,
) -> dict[str, Any] | None:
    """Per caller ID: calls, calls per local day (in `zone`), answered share of finished
    calls (ended `completed`), share of completed calls shorter than `short_call_seconds`,
    and its rests. None when the campaign has no pool and every call used one number."""
    cid = campaign.model.caller_id
    if cid is None and ("from_id" not in calls.columns or calls["from_id"].isna().all()):
        return None
    short_s = cid.short_call_seconds if cid is not None else 10.0
    placed = calls[calls["placed_at"].notna()].copy()
    placed["from_id"] = placed["from_id"].fillna(AGENT_DEFAULT).astype(str)
    when = pd.to_datetime(placed["placed_at"], utc=True, errors="coerce")
    placed["day"] = when.dt.tz_convert(zone).dt.strftime("%Y-%m-%d")
    numbers = {n.id: n.number for n in cid.numbers} if cid is not None else {}
    ids = list(numbers) + sorted(set(placed["from_id"]) - set(numbers))
    out = []
    for nid in ids:
        mine = placed[placed["from_id"] == nid]
        final = mine[mine["state"] == "final"]
        completed = final[final["status"] == "completed"]
        dur = pd.to_numeric(completed["duration_seconds"], errors="coerce").dropna()
        mine_rests = [r for r in rests if r.number_id == nid]
        out.append({
            "id": nid,
            "number": numbers.get(nid),
            "calls": int(len(mine)),
            "calls_per_day": {str(k): int(v) for k, v in
                              mine["day"].value_counts().sort_index().items()},
            "finished": int(len(final)),
            "answered": int(len(completed)),
            "answer_rate": (len(completed) / len(final)) if len(final) else None,
            "short_call_share": float((dur < short_s).mean()) if len(dur) else None,
            "rests": [{"since": iso(r.since), "until": iso(r.ends), "reason": r.reason,
                       "detail": r.detail, "by": r.by,
                       "called_off": r.called_off is not None} for r in mine_rests],
        })
    return {
        "pool": cid is not None,
        "short_call_seconds": short_s,
        "caps": {"per_day": cid.max_calls_per_number_per_day,
                 "per_hour": cid.max_calls_per_number_per_hour} if cid is not None else None,
        "numbers": out,
    }
