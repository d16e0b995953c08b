"""One run per campaign: the lock `run` and `release` hold, and the question `status` asks."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from campaign_dialer.config import Campaign


@contextmanager
def campaign_lock(campaign: Campaign) -> Iterator[None]:
    """One run per campaign (the store's run lock; exit 75 while another run holds it)."""
    from campaign_dialer.store import run_lock

    with run_lock(campaign.output_dir, campaign.name):
        yield


def lock_held(campaign: Campaign) -> bool:
    """Is a run going now? The lock says so; a crashed run's journal cannot."""
    from campaign_dialer.store import run_lock_held

    return run_lock_held(campaign.output_dir, campaign.name)
