"""Off the event loop: every SQLite call and file read the engine makes from async code.

One lane (a `CapacityLimiter(1)` over `anyio.to_thread`) carries every call that touches
the journal, the contact history, the DNC ledger or the gate's files: they share SQLite
connections (the journal's change hook writes the history; the gate's DNC ledger reads it),
so they run one at a time, in order, in a worker thread, and the loop keeps pacing calls
meanwhile. A call that is cancelled waits for its thread: a commit is never half-made.

`AsyncJournal` is the journal's interface, awaited: the methods and arguments are the
store's own (`await journal.record_intent(...)`), so the store may change underneath.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from typing import Any, ParamSpec, TypeVar

import anyio
import anyio.to_thread

from campaign_dialer.store import Attempt, Fate, JournalStore

P = ParamSpec("P")
T = TypeVar("T")


class Lane:
    """One worker thread at a time for blocking calls, in the order they were asked."""

    def __init__(self) -> None:
        self._limiter: anyio.CapacityLimiter | None = None

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        if self._limiter is None:  # made in the loop that uses it
            self._limiter = anyio.CapacityLimiter(1)
        call = functools.partial(fn, *args, **kwargs) if args or kwargs else fn
        return await anyio.to_thread.run_sync(call, limiter=self._limiter)


class AsyncJournal:
    """The journal's methods the engine uses, each run in the lane."""

    def __init__(self, journal: JournalStore, lane: Lane) -> None:
        self.sync = journal  # for code already in the lane (a batch of calls, one hop)
        self.lane = lane

    async def control(self) -> str:
        return await self.lane.run(self.sync.control)

    async def set_meta(self, key: str, value: str) -> None:
        await self.lane.run(self.sync.set_meta, key, value)

    async def begin_run(self) -> int:
        return await self.lane.run(self.sync.begin_run)

    async def end_run(self, run_id: int, exit_code: int, summary: dict[str, Any]) -> None:
        await self.lane.run(self.sync.end_run, run_id, exit_code, summary)

    async def attempt(self, attempt_id: int) -> Attempt:
        return await self.lane.run(self.sync.attempt, attempt_id)

    async def attempts(self, *, states: Sequence[str] | None = None) -> list[Attempt]:
        return await self.lane.run(self.sync.attempts, states=states)

    async def attempts_for(self, person: str) -> list[Attempt]:
        return await self.lane.run(self.sync.attempts_for, person)

    async def record_intent(self, **kw: Any) -> Attempt:
        """Committed (and the history told) before this returns: the POST may follow."""
        return await self.lane.run(self.sync.record_intent, **kw)

    async def reopen(self, attempt_id: int, body: dict[str, Any] | None = None,
                     idem_key: str | None = None) -> None:
        await self.lane.run(self.sync.reopen, attempt_id, body=body, idem_key=idem_key)

    async def count_post(self, attempt_id: int) -> None:
        await self.lane.run(self.sync.count_post, attempt_id)

    async def record_placed(self, attempt_id: int, **kw: Any) -> None:
        await self.lane.run(self.sync.record_placed, attempt_id, **kw)

    async def record_status(self, attempt_id: int, status: str) -> None:
        await self.lane.run(self.sync.record_status, attempt_id, status)

    async def record_rejected(self, attempt_id: int, **kw: Any) -> None:
        await self.lane.run(self.sync.record_rejected, attempt_id, **kw)

    async def record_error(self, attempt_id: int, **kw: Any) -> None:
        await self.lane.run(self.sync.record_error, attempt_id, **kw)

    async def record_not_placed(self, attempt_id: int, **kw: Any) -> None:
        await self.lane.run(self.sync.record_not_placed, attempt_id, **kw)

    async def record_unresolved(self, attempt_id: int, *, error: str) -> None:
        await self.lane.run(self.sync.record_unresolved, attempt_id, error=error)

    async def note_error(self, attempt_id: int, **kw: Any) -> None:
        await self.lane.run(self.sync.note_error, attempt_id, **kw)

    async def set_fates(self, fates: Iterable[Fate]) -> None:
        await self.lane.run(self.sync.set_fates, list(fates))

    async def webhook_events(self, call_id: str) -> list[dict[str, Any]]:
        return await self.lane.run(self.sync.webhook_events, call_id)

    async def add_http_events(self, events: Sequence[tuple[Any, ...]]) -> None:
        await self.lane.run(self.sync.add_http_events, events)
