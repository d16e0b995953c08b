"""The one-run-per-campaign lock: an flock on `.<campaign>.lock` in the output folder.

The kernel drops an flock when its process dies, so a killed run never leaves a stale lock
(an open run in a killed process's journal cannot say as much). A PostgreSQL store replaces
it with a registry of processes; on SQLite a second run gets exit 75.
"""

from __future__ import annotations

import fcntl
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from campaign_dialer.errors import DialerError
from campaign_dialer.exitcodes import ExitCode
from campaign_dialer.store.errors import JournalWriteError


class RunLocked(DialerError):
    """Another run of the campaign holds the lock (exit 75: try again later)."""

    exit_code = ExitCode.TEMPFAIL


def lock_path(output_dir: Path, campaign: str) -> Path:
    return output_dir / f".{campaign}.lock"


@contextmanager
def run_lock(output_dir: Path, campaign: str) -> Iterator[None]:
    """Hold the campaign's run lock for the block, or raise RunLocked naming the holder."""
    path = lock_path(output_dir, campaign)
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:  # read-only, full, or not a folder: 73/74, not a traceback
        raise JournalWriteError(path, e) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip()
            raise RunLocked(
                f"campaign {campaign!r} is already running ({holder or 'unknown holder'}); "
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


def run_lock_held(output_dir: Path, campaign: str) -> bool:
    """Is a run of this campaign going now? (a shared try-lock on its lock file)"""
    try:
        fd = os.open(lock_path(output_dir, campaign), os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False
