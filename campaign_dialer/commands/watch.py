"""`status --watch`: the live page's view in a terminal, redrawn until Ctrl-C.

Read from the campaign's journal (the SQLite file, or the team's database), so it works from
any shell, beside one `run` or several (PostgreSQL), and before the first run (it waits for
one). Ctrl-C ends it with exit 0: watching is not a failure.
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from rich.live import Live
from rich.text import Text

from campaign_dialer import log
from campaign_dialer.clock import Clock
from campaign_dialer.config import Campaign, load_campaign
from campaign_dialer.exitcodes import ExitCode
from campaign_dialer.forecast import expected_call_seconds
from campaign_dialer.monitor import live_view, render
from campaign_dialer.planning import history_path, open_campaign_history
from campaign_dialer.store.access import existing_journal, running

EVERY_S = 2.0


def watch(path: Path, *, every: float = EVERY_S, frames: int | None = None,
          clock: Clock | None = None) -> ExitCode:
    """Redraw the view every `every` seconds (`frames`: stop after that many, for tests)."""
    campaign = load_campaign(path, check_inputs=False)
    clock = clock or Clock.from_env()
    con = log.out()
    source = _Source(campaign, clock)
    shown = 0
    try:
        with source, Live(console=con, auto_refresh=False, transient=False) as live:
            while frames is None or shown < frames:
                frame = source.frame()
                if con.is_terminal:
                    live.update(frame, refresh=True)
                else:  # a pipe or a file: one frame after another, nothing redrawn
                    con.print(frame)
                shown += 1
                if frames is not None and shown >= frames:
                    break
                time.sleep(every)
    except KeyboardInterrupt:
        pass
    return ExitCode.OK


class _Source:
    """The campaign's journal, opened once it exists, and the view drawn from it."""

    def __init__(self, campaign: Campaign, clock: Clock) -> None:
        self.campaign = campaign
        self.clock = clock
        self._stack = ExitStack()
        self._journal: Any = None
        self._expected: float | None = None

    def __enter__(self) -> _Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def _open(self) -> Any:
        if self._journal is None:
            stack = ExitStack()
            journal = stack.enter_context(existing_journal(self.campaign))
            if journal is None:
                stack.close()
                return None
            self._stack.callback(stack.close)
            self._journal = journal
        return self._journal

    def frame(self) -> Any:
        journal = self._open()
        if journal is None:
            return Text(f"{self.campaign.name}: never run; waiting for its first run "
                        "(Ctrl-C to stop)")
        view = live_view(journal, self.campaign.model, now=self.clock.now(),
                         expected_call_s=self.expected(),
                         running=running(self.campaign, journal))
        return render(view)

    def expected(self) -> float:
        """The history's median call length once (it prices the live calls), else the file's."""
        if self._expected is None:
            self._expected = float(self.campaign.model.report.expected_call_seconds)
            if self.campaign.model.budget is not None and self.campaign.store_url is None:
                if history_path(self.campaign).exists():
                    history = open_campaign_history(self.campaign)
                    try:
                        self._expected = expected_call_seconds(self.campaign, history)[0]
                    finally:
                        history.close()
        return self._expected
