"""A plan that cannot be kept (disk full, a read-only folder) is no reason to stop: the run
dials from the plan it made and the next run plans again; the error never changes a verdict."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from campaign_dialer.config import load_campaign
from campaign_dialer.planning import MADE, encode_plan, make_plan, plan_once
from campaign_dialer.store import PlanNotKept, open_plan_store

from .test_plan_store import CONTACTS, campaign_in

AT = datetime(2026, 6, 10, 17, 0, tzinfo=UTC)


def test_a_plan_that_cannot_be_kept_is_used_all_the_same(tmp_path: Path) -> None:
    campaign = load_campaign(campaign_in(tmp_path, CONTACTS[0]))
    (tmp_path / "blocker").write_text("a file where the plan's folder should be")
    store = open_plan_store(tmp_path / "blocker" / "journal.sqlite")
    with pytest.raises(PlanNotKept, match="cannot keep the plan"):
        store.save(encode_plan(make_plan(campaign, AT).rows, "f" * 40))
    plan = plan_once(campaign, AT, None, store)
    assert plan.source == MADE
    assert store.fingerprint() is None  # nothing kept, nothing half kept
    assert plan.rows.counts() == make_plan(campaign, AT).rows.counts()
    assert sorted(p.name for p in tmp_path.iterdir() if "tmp" in p.name) == []
