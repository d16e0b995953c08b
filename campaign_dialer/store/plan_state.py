"""A stored plan: the verdicts of one input version, kept so a run does not plan twice.

A plan is keyed by its inputs' fingerprint (`planning.plan_fingerprint`): a run whose
inputs have not changed reads the plan back instead of making it again; a changed input is
planned again (and the gate still checks every row at the moment of dialing).

What is kept is compact per-row state, as columns (`EncodedPlan`): the row number, the
numbers dialing needs, and small integer codes into per-plan dictionaries for what repeats
(a verdict: disposition, reason, detail; the evidence; the zone hint). No JSON or Python
object per row: a backend writes and reads the columns (`store.sqlite.plan`,
`store.postgres.plan`).
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pyarrow as pa

if TYPE_CHECKING:
    from campaign_dialer.store.postgres.db import Database

# next_open "none" in the ns column (as `compliance.holds.NAT`)
NO_TIME = np.iinfo(np.int64).min


@dataclass
class EncodedPlan:
    """One plan's rows as columns, in plan order (`ord` is the position).

    - `row`: the contacts file's row numbers (int64);
    - `phone`, `cid`, `others`: strings or nulls (arrow arrays, large_string);
    - `zone`, `verdict`: int32 codes into `zones`, `verdicts`;
    - `evidence`: per evidence key (`evidence_keys`), an int32 code column into that key's
      `evidence_values` (-1: none); a key's values repeat (a list's name, a zone) or are
      one per person (a consent event's time), never one JSON object per row;
    - `next_open`: ns since the epoch, `NO_TIME` when none (int64).
    """

    fingerprint: str
    row: np.ndarray
    phone: pa.Array
    cid: pa.Array
    others: pa.Array
    zone: np.ndarray
    zones: list[str | None]
    verdict: np.ndarray
    verdicts: list[tuple[str, str | None, str | None]]  # disposition, reason, detail
    evidence_keys: list[str]
    evidence: list[np.ndarray]
    evidence_values: list[list[str]]
    next_open: np.ndarray

    def __len__(self) -> int:
        return len(self.row)


class PlanStore(Protocol):
    """Where a campaign's plan is kept (one plan per campaign: a new one replaces it)."""

    def planning(self) -> AbstractContextManager[None]:
        """Held while a plan is looked for and, if none is current, made and saved: on
        PostgreSQL only one process of the campaign is inside at a time."""
        ...

    def fingerprint(self) -> str | None:
        """The fingerprint of the plan kept, None when none is (or it is incomplete)."""
        ...

    def load(self) -> EncodedPlan | None:
        """The plan kept, None when none is."""
        ...

    def save(self, plan: EncodedPlan) -> None:
        """Keep `plan` in place of the one kept (atomically: a reader sees one or the
        other, a crash leaves the old one or none)."""
        ...

    def close(self) -> None: ...


def text_array(values: Any) -> pa.Array:
    """Strings or nulls as one large_string arrow array."""
    arr = pa.array(values, type=pa.large_string()) if not isinstance(
        values, pa.Array | pa.ChunkedArray) else values
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if arr.type != pa.large_string():
        arr = arr.cast(pa.large_string())
    return arr


def open_plan_store(
    journal_path: Path, *, db: Database | None = None, campaign: str = ""
) -> PlanStore:
    """The campaign's plan store: in the team's database when given `db` (PostgreSQL),
    else the file beside its SQLite journal."""
    if db is not None:
        # Lazy: PostgreSQL's driver is loaded only by campaigns that use it (as `open`).
        from campaign_dialer.store.postgres.plan import PgPlanStore

        return PgPlanStore(db, campaign)
    # Lazy: the backend module imports this one (the columns it stores).
    from campaign_dialer.store.sqlite.plan import SqlitePlanStore, plan_path

    return SqlitePlanStore(plan_path(journal_path))
