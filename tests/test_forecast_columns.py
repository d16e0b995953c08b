"""The forecast from the plan's columns says exactly what the walk over every row said."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from campaign_dialer.config import load_campaign
from campaign_dialer.forecast import forecast
from campaign_dialer.planning import make_plan

from .campaign_files import write_campaign_toml
from .forecast_reference import forecast as forecast_per_row

# area codes in several zones (and Arizona, Hawaii), a UK and an Australian number
AREAS = ("212", "415", "312", "214", "602", "808", "907", "305", "503", "617")
STATES = ("", "", "", "CA", "NY", "TX", "America/Chicago", "EST", "Mars/Olympus", "ok", "HI")


def _campaign(folder: Path, rows: int, seed: int, window: str, cps: float) -> Path:
    """A messy list: many zones, hints (some unreadable), blanks, contact ids only,
    international and invalid numbers, repeats, DNC entries and consent for most."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    lines, consent, dnc = ["phone,contact_id,state"], ["phone,event,event_at,source"], ["phone"]
    for i in range(rows):
        kind = rng.random()
        area = AREAS[int(rng.integers(len(AREAS)))]
        num = f"+1{area}555{int(rng.integers(10_000)):04d}"
        phone = (num if kind < 0.8 else "" if kind < 0.85 else "+44 20 7946 0958"
                 if kind < 0.88 else "12345" if kind < 0.9 else f"{area}-555-01{i % 100:02d}")
        cid = f"C{i}" if rng.random() < 0.7 else ""
        lines.append(f"{phone},{cid},{STATES[int(rng.integers(len(STATES)))]}")
        if phone.startswith("+1") and rng.random() < 0.85:
            consent.append(f"{phone},grant,2026-01-01T00:00:00Z,web")
        if phone.startswith("+1") and rng.random() < 0.05:
            dnc.append(phone)
    (folder / "contacts.csv").write_text("\n".join(lines) + "\n")
    (folder / "consent.csv").write_text("\n".join(consent) + "\n")
    (folder / "dnc.csv").write_text("\n".join(dnc) + "\n")
    return write_campaign_toml(folder / "campaign.toml", {
        "campaign": {"name": "fc-cols", "agent_id": "agt_3d9b21"},
        "api": {"base_url": "http://127.0.0.1:9", "max_live_calls": 3},
        "pacing": {"calls_per_second": cps},
        "inputs": {"contacts": "contacts.csv", "dnc": ["dnc.csv"], "consent": "consent.csv"},
        "compliance": {"calling_window": window.split("-"), "dnc_ledger": "out/dnc.csv"},
        "history": {"path": "history.sqlite"},
        "output": {"dir": "out"},
    })


@pytest.mark.parametrize(("seed", "at", "window", "cps", "secs"), [
    (1, datetime(2026, 6, 9, 13, 0, tzinfo=UTC), "09:00-09:20", 0.05, 60.0),  # spills, waits
    (2, datetime(2026, 6, 9, 3, 17, 41, 250_000, tzinfo=UTC), "09:00-12:00", 0.5, 30.0),
    (3, datetime(2026, 6, 13, 22, 5, tzinfo=UTC), "10:00-10:30", 2.0, 90.0),  # a Saturday
    (4, datetime(2026, 12, 24, 18, 0, tzinfo=UTC), "08:00-21:00", 5.0, 45.0),  # holidays
])
def test_the_columns_forecast_equals_the_per_row_walk(
    tmp_path: Path, seed: int, at: datetime, window: str, cps: float, secs: float
) -> None:
    campaign = load_campaign(_campaign(tmp_path, 1_500, seed, window, cps))
    plan = make_plan(campaign, at)
    try:
        rows = plan.rows.frame()["row"].tolist()
        settled = [int(r) for r in np.random.default_rng(seed).choice(rows, 100)]
        for done in ([], settled):
            kw = {"call_seconds": secs, "call_seconds_source": "test", "settled": done}
            new = forecast(plan, **kw)
            old = forecast_per_row(plan, **kw)
            assert new == old
            # what the adaptive check asks: each placed row's instant, inside the forecast
            placed: dict[int, datetime] = {}
            assert forecast(plan, **kw, placements=placed) == new
            assert len(placed) == new["rows_placed"] and not set(placed) & set(done)
            if placed:
                last = datetime.fromisoformat(new["finishes_at"].replace("Z", "+00:00"))
                assert plan.at <= min(placed.values()) <= max(placed.values()) <= last
        # the cases the comparison must have met: rows placed over days, and (in the short
        # window) rows that still wait, named first
        assert old["rows_placed"] and old["days"] and old["windows"]
        assert old["waiting"]["first"] or window != "09:00-09:20"
    finally:
        assert plan.history is not None
        plan.history.close()
