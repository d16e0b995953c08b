"""`results` (rewrite results.csv from the journal) and `report`."""

from __future__ import annotations

from pathlib import Path

from campaign_dialer import log
from campaign_dialer.config import Campaign, load_campaign
from campaign_dialer.errors import NotRunYet
from campaign_dialer.exitcodes import ExitCode


def results(path: Path) -> ExitCode:
    from campaign_dialer.planning import load_campaign_contacts
    from campaign_dialer.results import write_results, write_transcripts
    from campaign_dialer.store.access import existing_journal, where

    campaign = load_campaign(path)
    with existing_journal(campaign) as journal:
        if journal is None:
            raise NotRunYet(f"{campaign.name}: nothing has run yet, so there are no results "
                            f"to write; run the campaign first (no journal at "
                            f"{where(campaign)})")
        contacts = load_campaign_contacts(campaign)
        write_results(contacts, journal, campaign.results_path)
        write_transcripts(contacts, journal, campaign.transcripts_path)
    log.out().print(f"results: {campaign.results_path}", highlight=False, soft_wrap=True)
    return ExitCode.OK


def report(paths: list[Path], *, text: bool = False, as_json: bool = False) -> ExitCode:
    from campaign_dialer import report as rep

    def load(path: Path) -> Campaign:
        return load_campaign(path, check_inputs=False)

    return rep.command(paths, load=load, text=text, as_json=as_json)
