"""`results` (rewrite results.csv from the journal) and `report`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from campaign_dialer import log
from campaign_dialer import report as rep
from campaign_dialer.commands.state import history_attempts
from campaign_dialer.config import Campaign, load_campaign
from campaign_dialer.contacts import load_campaign_contacts
from campaign_dialer.errors import DialerError, NotRunYet
from campaign_dialer.exitcodes import ExitCode
from campaign_dialer.results import write_results, write_transcripts
from campaign_dialer.store.access import existing_journal, on_postgres, where


def results(path: Path) -> ExitCode:
    campaign = load_campaign(path)
    with existing_journal(campaign) as journal:
        if journal is None or not _has_run(journal):
            # `pause` or `cancel` before the first run writes a journal with no run in it
            _journal_lost(campaign, journal, "there are no results to write")
            raise NotRunYet(f"{campaign.name}: nothing has run yet, so there are no results "
                            f"to write; run the campaign first ({_no_run_at(campaign, journal)})")
        contacts = load_campaign_contacts(campaign)
        write_results(contacts, journal, campaign.results_path)
        write_transcripts(contacts, journal, campaign.transcripts_path)
    log.out().print(f"results: {campaign.results_path}", highlight=False, soft_wrap=True)
    return ExitCode.OK


def report(paths: list[Path], *, text: bool = False, as_json: bool = False) -> ExitCode:
    def load(path: Path) -> Campaign:
        return load_campaign(path, check_inputs=False)

    if len(paths) in (1, 2):
        for path in paths:
            _require_a_run(load(path))
    return rep.command(paths, load=load, text=text, as_json=as_json)


def _require_a_run(campaign: Campaign) -> None:
    """66 for a journal that only holds a `pause`/`cancel` given before the first run: an
    empty report that exits 0 reads as "the campaign ran and nobody was reached". A missing
    or unreadable journal is left to the report, which says so with its own exit code."""
    try:
        with existing_journal(campaign) as journal:
            if journal is not None and _has_run(journal):
                return
    except DialerError:
        return
    _journal_lost(campaign, journal, "there is nothing to report")
    if journal is None:
        return
    raise NotRunYet(f"{campaign.name}: nothing has run yet, so there is nothing to report; "
                    f"run the campaign first ({_no_run_at(campaign, journal)})")


def _has_run(journal: Any) -> bool:
    """Has anything run into this journal (a run, or a row's fate)? A `pause`, `resume` or
    `cancel` given before the first run writes a journal that holds neither."""
    return (bool(journal.runs()) or journal.fate_base_digest() is not None
            or bool(journal.fate_counts()))


def _journal_lost(campaign: Campaign, journal: object, what: str) -> None:
    """No journal, but the contact history knows this campaign's calls: it did run, and
    "nothing has run yet" would send a person looking for the wrong problem."""
    if journal is not None:
        return
    try:
        known = 0 if on_postgres(campaign) else history_attempts(campaign)
    except DialerError:  # a history that cannot be read: the plain "not run" message stands
        return
    if known:
        raise NotRunYet(
            f"{campaign.name}: no journal at {where(campaign)}, so {what}; but the contact "
            f"history holds {known} attempt(s) of this campaign: the next `run` rebuilds the "
            "journal from it (nobody it knows is called again), then try again"
        )


def _no_run_at(campaign: Campaign, journal: object) -> str:
    what = "no journal" if journal is None else "no run in the journal"
    return f"{what} at {where(campaign)}"
