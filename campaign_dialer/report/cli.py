"""`campaign-dialer report`: one campaign's report, or two compared."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from campaign_dialer.errors import NotRunYet
from campaign_dialer.exitcodes import ExitCode
from campaign_dialer.report.comparison import compare, print_compare, write_compare
from campaign_dialer.report.html import build_files
from campaign_dialer.report.metrics import summary
from campaign_dialer.report.text import print_text, say
from campaign_dialer.results import Redactor, redactor_for
from campaign_dialer.store.access import on_postgres, same_journal, where

if TYPE_CHECKING:
    from campaign_dialer.config import Campaign


def command(
    paths: Sequence[Path], *, load: Callable[[Path], Campaign], text: bool = False,
    as_json: bool = False,
) -> ExitCode:
    """`load` reads a campaign file (the caller's: the report reads no configuration)."""
    if not 1 <= len(paths) <= 2:
        say("report takes one campaign file, or two to compare")
        return ExitCode.USAGE

    campaigns = [load(p) for p in paths]
    for c in campaigns:
        # A database is asked when the report reads it (`data.load`); a file is looked at now.
        if not on_postgres(c) and not c.journal_path.exists():
            raise NotRunYet(f"{c.name}: nothing has run yet, so there is nothing to report; "
                            f"run the campaign first (no journal at {where(c)})")
    redact = Redactor(tuple({s for c in campaigns for s in redactor_for(c).secrets}))
    if len(campaigns) == 2:
        a, b = campaigns
        same = same_journal(a, b)
        titles, sides, path = compare(a, None if same else b)
        if as_json:
            print(redact(json.dumps({"compare": titles, "sides": sides}, indent=2)))
            return ExitCode.OK
        print_compare(titles, sides)
        if not text:
            write_compare(path, titles, sides, redact)
            say(f"comparison: {path}")
            say(f"            {path.resolve().as_uri()}")
        return ExitCode.OK
    c = campaigns[0]
    if as_json:
        print(redact(json.dumps(summary(c), indent=2)))
        return ExitCode.OK
    if text:
        print_text(summary(c))
        return ExitCode.OK
    files, s = build_files(c)
    print_text(s)
    say(f"report:  {files['report.html']}")
    say(f"         {files['report.html'].resolve().as_uri()}")
    say(f"summary: {files['summary.json']}")
    say(f"results: {c.results_path}")
    say(f"         {files['results.parquet']}")
    return ExitCode.OK
