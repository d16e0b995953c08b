"""`status --watch` in a pseudo-terminal beside a run: live calls go up and down; Ctrl-C
(the terminal's own ^C) ends it with exit 0 and no traceback."""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import sys
import time
from pathlib import Path

import pytest

from .e2e_support import cli_env, numbers, popen_cli, write_campaign
from .test_monitor_e2e import sandbox

pytestmark = pytest.mark.e2e

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\r")
LIVE = re.compile(r"live calls (\d+) \(max")


def spawn_in_pty(*args: str) -> tuple[int, int]:
    """The CLI in a new pty (its controlling terminal): (pid, master fd)."""
    env = {**cli_env(), "TERM": "xterm-256color", "COLUMNS": "120", "LINES": "60"}
    pid, fd = pty.fork()
    if pid == 0:  # the child: its stdin/stdout/stderr are the terminal
        os.execve(sys.executable, [sys.executable, "-m", "campaign_dialer.cli", *args], env)
    return pid, fd


def read_some(fd: int, timeout: float) -> bytes:
    ready, _, _ = select.select([fd], [], [], timeout)
    if not ready:
        return b""
    try:
        return os.read(fd, 65536)
    except OSError:  # EIO: the child closed the terminal
        return b""


def test_status_watch_shows_live_calls_going_up_and_down(tmp_path: Path) -> None:
    contacts = [{"phone": p, "name": f"P{i}"} for i, p in enumerate(numbers(12))]
    camp = write_campaign(tmp_path, contacts=contacts, name="watched",
                          pacing="calls_per_second = 3", api="max_live_calls = 4")
    pid, fd = spawn_in_pty("--log-level", "warning", "status", "--watch", str(camp.path))
    out = b""
    try:
        with sandbox(time_scale=0.015) as sb:
            out += read_some(fd, 10.0)  # the first frame: never run yet
            proc = popen_cli("run", str(camp.path), "--base-url", sb.url)
            while proc.poll() is None:
                out += read_some(fd, 0.2)
            _, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, err[-3000:]
        deadline = time.monotonic() + 5  # two more frames after the run's end
        while time.monotonic() < deadline:
            out += read_some(fd, 0.2)
        os.write(fd, b"\x03")  # Ctrl-C, as a person types it
        end = time.monotonic() + 20
        status = None
        while status is None and time.monotonic() < end:
            out += read_some(fd, 0.2)
            done, code = os.waitpid(pid, os.WNOHANG)
            if done:
                status = code
    finally:
        if status is None:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(fd)
    text = ANSI.sub("", out.decode("utf-8", "replace"))
    assert status is not None and os.WIFEXITED(status), text[-2000:]
    assert os.WEXITSTATUS(status) == 0, text[-2000:]
    assert "Traceback" not in text and "error" not in text.lower(), text[-2000:]
    assert "watched: never run" in text
    live = [int(n) for n in LIVE.findall(text)]
    top = max(live, default=0)
    assert top >= 1, f"live calls never went up: {live}"
    assert live.index(top) < len(live) - 1 and live[-1] < top, f"never went down: {live}"
    assert live[-1] == 0 and "progress 12/12 rows" in text, text[-2000:]
