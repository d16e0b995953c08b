"""`pause`, `resume`, `cancel` and `release`: a person's decisions, written to the journal.

On a PostgreSQL store the control is the campaign's row in the team's database: every `run`
process reads it with its heartbeat, so one `pause` reaches all of them, on any machine.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from campaign_dialer import log
from campaign_dialer.commands.lock import campaign_lock
from campaign_dialer.config import Campaign, load_campaign
from campaign_dialer.errors import CampaignLocked, NotApplicable, NotRunYet
from campaign_dialer.exitcodes import ExitCode
from campaign_dialer.store import UNRESOLVED, Journal, JournalError
from campaign_dialer.store.access import (
    control_journal,
    existing_journal,
    on_postgres,
    processes,
    where,
)

if TYPE_CHECKING:
    from campaign_dialer.store.interface import JournalStore


def control(path: Path, action: str) -> ExitCode:
    campaign = load_campaign(path, check_inputs=False)
    state = {"pause": "paused", "resume": "active", "cancel": "canceled"}[action]
    with control_journal(campaign) as journal:
        if journal.control() == "canceled":
            if action == "cancel":
                log.out().print(f"{campaign.name}: canceled (already)", highlight=False)
                return ExitCode.OK
            raise NotApplicable(
                f"{campaign.name} was canceled, and a canceled campaign stays canceled: "
                f"`{action}` does not apply. To call these contacts again, start a new "
                "campaign (a new campaign.name)"
            )
        try:
            journal.set_control(state)
        except JournalError:
            if journal.control() != "canceled":
                raise
            raise NotApplicable(  # another person canceled it a moment ago
                f"{campaign.name} was canceled meanwhile, and a canceled campaign stays "
                f"canceled: `{action}` does not apply"
            ) from None
    log.get("control", campaign=campaign.name).info("control_changed", state=state)
    log.out().print(f"{campaign.name}: {state}", highlight=False)
    return ExitCode.OK


def release(path: Path, *, as_called: bool, rows: list[int] | None = None) -> ExitCode:
    """A person's decision on calls neither replay nor lookup could confirm."""
    campaign = load_campaign(path, check_inputs=False)
    with _no_run_going(campaign) as journal:
        if rows:
            # A mistyped row number must not pass as "0 released" with exit 0: the person
            # believes the call decided and the row stays held.
            open_rows = sorted({a.row for a in journal.attempts(states=[UNRESOLVED])})
            unknown = sorted(set(rows) - set(open_rows))
            if unknown:
                listed = ", ".join(map(str, open_rows[:20])) if open_rows else "none"
                if len(open_rows) > 20:
                    listed += f" and {len(open_rows) - 20} more"
                raise NotApplicable(
                    f"{campaign.name}: row(s) {', '.join(map(str, unknown))} hold no "
                    f"unresolved call, so `release --row` does not apply to them (unresolved "
                    f"rows: {listed}; `campaign-dialer status` lists them); nothing released"
                )
        done = journal.release(rows=rows, as_called=as_called)
    what = "called (never dialed again)" if as_called else "not called (the next run dials)"
    log.get("control", campaign=campaign.name).info(
        "unresolved_released", rows=[a.row for a in done], as_called=as_called
    )
    log.out().print(f"{campaign.name}: {len(done)} unresolved call(s) released as {what}")
    return ExitCode.OK


@contextmanager
def _no_run_going(campaign: Campaign) -> Iterator[JournalStore]:
    """The journal, while no run of the campaign is going (exit 75 otherwise): a running
    process could be settling the very calls a person is deciding.

    SQLite: the run lock, held for the block. PostgreSQL: no process of the registry alive
    (a process that dies is counted out once its lease expires)."""
    if not on_postgres(campaign):
        if not campaign.journal_path.exists():
            raise NotRunYet(
                f"{campaign.name}: nothing has run yet, so no call waits for a decision; "
                f"run the campaign first (no journal at {campaign.journal_path})"
            )
        with campaign_lock(campaign), Journal(campaign.journal_path, campaign.name,
                                              create=False) as journal:
            yield journal
        return
    with existing_journal(campaign) as found:
        if found is None:
            raise NotRunYet(f"{campaign.name}: nothing has run yet, so no call waits for a "
                            f"decision; run the campaign first (no journal at {where(campaign)})")
        alive = [p for p in processes(found) or [] if p.alive]
        if alive:
            who = ", ".join(f"{p.host} pid {p.pid}" for p in alive)
            raise CampaignLocked(
                f"campaign {campaign.name!r} is running ({who}); release its unresolved "
                "calls when every process has finished"
            )
        yield found
