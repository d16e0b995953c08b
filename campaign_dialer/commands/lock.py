"""One run per campaign: the lock `run` and `release` hold, and the question `status` asks."""

from __future__ import annotations

import fcntl
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager

from campaign_dialer.config import Campaign
from campaign_dialer.errors import CampaignLocked


@contextmanager
def campaign_lock(campaign: Campaign) -> Iterator[None]:
    """One run per campaign: an flock the kernel drops when the process dies."""
    from campaign_dialer.store import JournalWriteError

    path = campaign.output_dir / f".{campaign.name}.lock"
    try:
        campaign.output_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:  # read-only, full, or not a folder: 73/74, not a traceback
        raise JournalWriteError(path, e) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip()
            raise CampaignLocked(
                f"campaign {campaign.name!r} is already running ({holder or 'unknown holder'}); "
                "try again when it has finished"
            ) from None
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid={os.getpid()} host={socket.gethostname()}\n".encode(), 0)
        except OSError as e:
            raise JournalWriteError(path, e) from None
        yield
    finally:
        os.close(fd)


def lock_held(campaign: Campaign) -> bool:
    """Is a run going now? The lock says so; a crashed run's journal cannot."""
    from campaign_dialer.store import run_lock_held

    return run_lock_held(campaign.output_dir, campaign.name)
