"""Caller IDs for people: each pool number's load and rests (`status`, `check`) and the
hand-made rest or restore (`campaign-dialer caller-id rest|restore FILE --number pn_...`).

Counts and rests live in the contact history (or the team's database), shared by every
campaign and process, so what is shown here is what the next claim will see.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from rich.table import Table
from rich.text import Text

from campaign_dialer import log
from campaign_dialer.clock import Clock
from campaign_dialer.compliance.callerid import Caps, PoolNumber, pool_capacity
from campaign_dialer.config import Campaign, load_campaign
from campaign_dialer.config_callerid import CallerIdSection
from campaign_dialer.errors import NotApplicable
from campaign_dialer.exitcodes import ExitCode
from campaign_dialer.planning import open_campaign_history
from campaign_dialer.store import HistoryStore, NumberRest, iso

HOUR, DAY = timedelta(hours=1), timedelta(hours=24)


def caller_id_data(
    campaign: Campaign, history: HistoryStore, now: datetime
) -> dict[str, Any] | None:
    """`status --json`'s `caller_ids`: per pool number its calls in the last hour and 24 h,
    its caps and the rest in force; None without a `[caller_id]` pool."""
    cid = campaign.model.caller_id
    if cid is None:
        return None
    load = history.caller_id_load(list(cid.ids), now)
    rests = history.caller_id_rests(list(cid.ids))
    numbers = []
    for n in cid.numbers:
        times = load.get(n.id, [])
        active = [r for r in rests if r.number_id == n.id and r.in_force(now)]
        rest = max(active, key=lambda r: r.until) if active else None
        numbers.append({
            "id": n.id,
            "number": n.number,
            "states": n.states,
            "calls_last_hour": sum(t > now - HOUR for t in times),
            "calls_24h": len(times),
            "max_calls_per_hour": cid.max_calls_per_number_per_hour,
            "max_calls_per_day": cid.max_calls_per_number_per_day,
            "resting_until": iso(rest.until) if rest else None,
            "rest_reason": rest.reason if rest else None,
            "rest_detail": rest.detail if rest else None,
        })
    return {
        "numbers": numbers,
        "sticky": cid.sticky,
        "local_presence": cid.local_presence,
        "daily_capacity": sum(cid.max_calls_per_number_per_day for n in numbers
                              if n["resting_until"] is None),
        "rests": [rest_row(r) for r in rests],
    }


def rest_row(r: NumberRest) -> dict[str, Any]:
    return {"number_id": r.number_id, "since": iso(r.since), "until": iso(r.ends),
            "reason": r.reason, "detail": r.detail, "by": r.by,
            "called_off": iso(r.called_off)}


def caller_id_table(data: dict[str, Any]) -> Any:
    t = Table(title="caller IDs (every campaign sharing the contact history)")
    for col in ("number", "id", "last hour", "24 h", "resting until"):
        t.add_column(col, justify="right" if col in ("last hour", "24 h") else "left")
    for n in data["numbers"]:
        rest = "-" if n["resting_until"] is None else f"{n['resting_until']} ({n['rest_reason']})"
        t.add_row(Text(n["number"]), Text(n["id"]),
                  f"{n['calls_last_hour']}/{n['max_calls_per_hour']}",
                  f"{n['calls_24h']}/{n['max_calls_per_day']}", Text(rest))
    return t


def caller_id_command(
    path: Path, action: str, *, number: str, days: float | None = None,
    clock: Clock | None = None,
) -> ExitCode:
    """Rest a pool number by hand (for `days`, default the campaign's `rest_days`), or end
    its rest. Every campaign sharing the history obeys it at its next claim."""
    campaign = load_campaign(path, check_inputs=False)
    cid = campaign.model.caller_id
    if cid is None:
        raise NotApplicable(f"{path}: the campaign has no [caller_id] pool")
    if number not in cid.ids:
        raise NotApplicable(
            f"{path}: {number!r} is not in the [caller_id] pool (its ids: {', '.join(cid.ids)})"
        )
    now = (clock or Clock.from_env()).now()
    history = open_campaign_history(campaign)
    try:
        if action == "rest":
            span = timedelta(days=cid.rest_days if days is None else days)
            history.rest_number(number, since=now, until=now + span, reason="manual",
                                detail="rested by a person", by="person")
            msg = f"{number} rests until {iso(now + span)}"
        else:
            history.rest_number(number, since=now, until=now, reason="restored",
                                detail="restored by a person", by="person")
            msg = f"{number} is back in use"
        log.get("caller_id").info(f"caller_id_{action}", number_id=number)
    finally:
        history.close()
    log.out().print(msg, highlight=False, markup=False)
    return ExitCode.OK


def caller_id_outlook(
    campaign: Campaign, history: HistoryStore, at: datetime, forecast: dict[str, Any],
    rules: Any,
) -> dict[str, Any]:
    """`check`'s caller-ID part: the pool's capacity against the forecast's calls a day, the
    day the pace would exhaust it, the states where local presence is off; without a pool,
    whether one number would carry more calls a day than a number can keep answerable."""
    days = forecast.get("days", [])
    busiest = max(days, key=lambda d: d["rows"], default=None)
    # the pace the forecast expects (pacing, or fewer when live calls hold the lines)
    rate = float(forecast.get("calls_per_second") or campaign.model.pacing.calls_per_second)
    cid = campaign.model.caller_id
    warnings: list[str] = []
    if cid is None:
        default = CallerIdSection.model_fields["max_calls_per_number_per_day"].default
        if busiest is not None and busiest["rows"] > default:
            warnings.append(
                f"{busiest['date']}: {busiest['rows']:,} calls planned from one number (the "
                "agent's, or campaign.from_phone_number_id); carriers label a number placing "
                f"more than about {default} calls a day 'Spam Likely' within hours: add a "
                "[caller_id] pool of owned numbers"
            )
        return {"pool": None, "calls_per_day": busiest["rows"] if busiest else 0,
                "warnings": warnings}
    now_rests = {r.number_id: r.until for r in history.caller_id_rests(list(cid.ids))
                 if r.in_force(at)}
    pool = [PoolNumber(n.id, n.number, frozenset(n.states) if n.states else None)
            for n in cid.numbers]
    cap = pool_capacity(pool, now_rests, at, Caps(cid.max_calls_per_number_per_day,
                                                  cid.max_calls_per_number_per_hour))
    exhausted = next((d for d in days if d["rows"] > cap.daily_capacity), None)
    if exhausted is not None:
        warnings.append(
            f"{exhausted['date']}: {exhausted['rows']:,} calls planned, but the pool's "
            f"{cap.available} usable number(s) carry {cap.daily_capacity:,} a day "
            f"({cid.max_calls_per_number_per_day} each): the rest wait "
            "(caller_ids_exhausted) for a number to free up; add numbers or expect more days"
        )
    if rate * 3600 > cap.hourly_capacity and cap.hourly_capacity:
        warnings.append(
            f"at {rate:g} new calls/s the pool's hourly cap ({cap.hourly_capacity} calls an "
            f"hour: {cap.available} x {cid.max_calls_per_number_per_hour}) is reached after "
            f"about {cap.hourly_capacity / rate / 60:.0f} min each hour; calls then wait for "
            "a number"
        )
    off = list(rules.off_states) if rules is not None else []
    return {
        "pool": cap.numbers,
        "usable": cap.available,
        "resting": list(cap.resting_now),
        "daily_capacity": cap.daily_capacity,
        "hourly_capacity": cap.hourly_capacity,
        "calls_per_day": busiest["rows"] if busiest else 0,
        "exhausted_on": exhausted["date"] if exhausted else None,
        "local_presence": cid.local_presence,
        "local_presence_off_states": off,
        "warnings": warnings,
    }


def caller_id_lines(c: dict[str, Any]) -> list[str]:
    """`check`'s caller-ID summary as lines (warnings are printed with the others)."""
    if c["pool"] is None:
        return []
    out = [f"caller IDs: {c['usable']} of {c['pool']} number(s) usable, "
           f"{c['daily_capacity']:,} calls a day, {c['hourly_capacity']:,} an hour; "
           f"busiest planned day {c['calls_per_day']:,}"]
    if c["resting"]:
        out.append(f"  resting: {', '.join(c['resting'])}")
    if c["local_presence_off_states"]:
        where = ", ".join(c["local_presence_off_states"])
        out.append(f"  local presence {'on' if c['local_presence'] else 'off'}; never a number "
                   f"local to the recipient in: {where} (state rules)")
    return out
