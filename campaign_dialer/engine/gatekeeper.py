"""The gate at dial time: asked in the lane, rebuilt when an input file changed.

Local DNC lists and the RND answers file are stamped (mtime, size) at most once a second and
the gate rebuilt from them when one changed, so a number added to a DNC list during the run
stops that call. The consent ledger and the DNC ledger are the gate's own to re-read: every
`Gate.check` re-reads a changed consent ledger and the DNC ledger's new entries (this run's
409s and opt-outs land there too). All of it runs in the lane: none of it on the loop.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from campaign_dialer import log
from campaign_dialer.compliance import DncLedger, Gate, Verdict

from .io import Lane
from .rows import Row

Stamp = tuple[tuple[int, int], ...]
# How often the input files are stamped (seconds).
STAMP_EVERY_S = 1.0


def stamp(paths: Sequence[Path]) -> Stamp:
    out = []
    for p in paths:
        try:
            st = p.stat()
            out.append((st.st_mtime_ns, st.st_size))
        except OSError:
            out.append((0, -1))
    return tuple(out)


class GateKeeper:
    """The run's gate and DNC ledger, used from async code."""

    def __init__(
        self, gate: Gate, ledger: DncLedger, *, lane: Lane, sources: Sequence[Path] = (),
        rebuild: Callable[[], Gate] | None = None, logger: Any = None,
    ) -> None:
        self.gate = gate
        self.ledger = ledger
        self.lane = lane
        self._sources = list(sources)
        self._rebuild = rebuild
        self._stamp = stamp(self._sources) if rebuild is not None else ()
        self._checked = time.monotonic()
        self.log = logger if logger is not None else log.get("engine")

    @property
    def rules(self) -> Any:
        """The state rules of the calling window (a state's cap on calls per 24 h)."""
        return self.gate.window.rules

    def _refresh(self) -> str | None:
        """In the lane: rebuild the gate if an input changed; the error if it cannot be."""
        if self._rebuild is None or time.monotonic() - self._checked < STAMP_EVERY_S:
            return None
        self._checked = time.monotonic()
        now = stamp(self._sources)
        if now == self._stamp:
            return None
        try:
            self.gate = self._rebuild()
        except Exception as e:  # noqa: BLE001 - any failure means we cannot vouch for a call
            return f"a compliance input changed and cannot be read: {e}"
        self._stamp = now
        self.log.info("compliance_inputs_reloaded")
        return None

    def _check(self, row: Row, at: datetime) -> tuple[Verdict, str | None]:
        problem = self._refresh()
        verdict = self.gate.check(
            phone_e164=row.phone_e164, contact_id=row.contact_id, tz_hint=row.tz_hint, at=at,
            other_phones=row.other_phones,
        )
        return verdict, problem

    async def check(self, row: Row, at: datetime) -> tuple[Verdict, str | None]:
        """The gate's verdict on calling `row` at `at`, from fresh inputs; and, when an
        input changed and cannot be read, why (the run must stop: 65)."""
        return await self.lane.run(self._check, row, at)

    def check_in_lane(self, row: Row, at: datetime) -> tuple[Verdict, str | None]:
        """`check`, for code already running in the lane (one hop for several calls)."""
        return self._check(row, at)

    async def add_dnc(
        self, e164: str, *, reason: str, campaign: str, evidence: str, at: datetime
    ) -> None:
        """Record a number on the shared DNC ledger (a 409 or an opt-out)."""
        await self.lane.run(
            lambda: self.ledger.add(e164, reason=reason, campaign=campaign, evidence=evidence,
                                    at=at)
        )
