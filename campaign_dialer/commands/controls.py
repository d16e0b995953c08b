"""`pause`, `resume`, `cancel` and `release`: a person's decisions, written to the journal."""

from __future__ import annotations

from pathlib import Path

from campaign_dialer import log
from campaign_dialer.commands.lock import campaign_lock
from campaign_dialer.config import load_campaign
from campaign_dialer.errors import NotApplicable
from campaign_dialer.exitcodes import ExitCode


def control(path: Path, action: str) -> ExitCode:
    from campaign_dialer.store import Journal

    campaign = load_campaign(path, check_inputs=False)
    state = {"pause": "paused", "resume": "active", "cancel": "canceled"}[action]
    with Journal(campaign.journal_path, campaign.name) as journal:
        if journal.control() == "canceled":
            if action == "cancel":
                log.out().print(f"{campaign.name}: canceled (already)", highlight=False)
                return ExitCode.OK
            raise NotApplicable(
                f"{campaign.name} was canceled, and a canceled campaign stays canceled: "
                f"`{action}` does not apply. To call these contacts again, start a new "
                "campaign (a new campaign.name)"
            )
        journal.set_control(state)
    log.get("control", campaign=campaign.name).info("control_changed", state=state)
    log.out().print(f"{campaign.name}: {state}", highlight=False)
    return ExitCode.OK


def release(path: Path, *, as_called: bool, rows: list[int] | None = None) -> ExitCode:
    """A person's decision on calls neither replay nor lookup could confirm."""
    from campaign_dialer.store import Journal

    campaign = load_campaign(path, check_inputs=False)
    with campaign_lock(campaign), Journal(campaign.journal_path, campaign.name,
                                          create=False) as journal:
        done = journal.release(rows=rows, as_called=as_called)
    what = "called (never dialed again)" if as_called else "not called (the next run dials)"
    log.get("control", campaign=campaign.name).info(
        "unresolved_released", rows=[a.row for a in done], as_called=as_called
    )
    log.out().print(f"{campaign.name}: {len(done)} unresolved call(s) released as {what}")
    return ExitCode.OK
