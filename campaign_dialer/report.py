"""Post-campaign reporting, read from the journal and the results (never from memory)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd

from campaign_dialer import log
from campaign_dialer.config import Campaign
from campaign_dialer.exitcodes import ExitCode


def print_summary(
    campaign: Campaign, journal: Any, df: pd.DataFrame, *, exit_code: ExitCode, message: str = ""
) -> None:
    from rich.table import Table

    con = log.console()
    disp = Counter(df["disposition"].tolist())
    t = Table(title=f"{campaign.name}: {len(df)} rows")
    t.add_column("fate")
    t.add_column("reason")
    t.add_column("rows", justify="right")
    pairs = Counter(zip(df["disposition"].tolist(), df["reason"].fillna("").tolist(), strict=True))
    for (d, r), n in sorted(pairs.items(), key=lambda kv: (kv[0][0], -kv[1])):
        t.add_row(d, r or "-", str(n))
    con.print(t)
    con.print(
        " ".join(f"{k}={disp.get(k, 0)}" for k in
                 ("dialed", "rejected", "suppressed", "error", "pending"))
        + f"  exit={int(exit_code)}" + (f" ({message})" if message else "")
    )


def build(campaign: Campaign) -> Path:
    raise NotImplementedError("the HTML report is not built yet (issue 8)")


def command(paths: list[Path], *, text: bool = False, as_json: bool = False) -> ExitCode:
    log.console().print("report: not implemented yet (issue 8)")
    return ExitCode.FAILURE
