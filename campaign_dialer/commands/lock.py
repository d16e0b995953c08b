"""One run per campaign: the lock `run` and `release` hold, and the question `status` asks."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from campaign_dialer.config import Campaign
from campaign_dialer.store import run_lock, run_lock_held


@contextmanager
def campaign_lock(campaign: Campaign) -> Iterator[None]:
    """One run per campaign (the store's run lock; exit 75 while another run holds it)."""
    with run_lock(campaign.output_dir, campaign.name):
        yield


def lock_held(campaign: Campaign) -> bool:
    """Is a run going now? The lock says so; a crashed run's journal cannot."""
    return run_lock_held(campaign.output_dir, campaign.name)
