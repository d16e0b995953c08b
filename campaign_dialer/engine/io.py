"""Off the event loop: every SQLite call and file read the engine makes from async code.

One lane (one long-lived worker thread fed by a queue) carries every call that touches
the journal, the contact history, the DNC ledger or the gate's files: they share SQLite
connections (the journal's change hook writes the history; the gate's DNC ledger reads it),
so they run one at a time, in order, in a worker thread, and the loop keeps pacing calls
meanwhile. A call that is cancelled waits for its thread: a commit is never half-made.

`AsyncJournal` is the journal's interface, awaited: the methods and arguments are the
store's own (`await journal.record_intent(...)`), so the store may change underneath.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import queue
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any, ParamSpec, TypeAlias, TypeVar

import anyio

from campaign_dialer.store import Attempt, Fate, JournalStore

P = ParamSpec("P")
T = TypeVar("T")
# A job for the lane: the call, its context, and where to send the answer (None: nobody waits).
_Job: TypeAlias = tuple[
    Callable[[], Any], contextvars.Context, "asyncio.AbstractEventLoop | None",
    "asyncio.Future[Any] | None",
]


class Lane:
    """One long-lived worker thread for blocking calls, run one at a time in the order asked.

    A queue feeds the thread, and each result comes back to the loop with one
    `call_soon_threadsafe`: a hand-off is a queue put and a loop wake-up, far less than a
    fresh `anyio.to_thread` call (capacity limiter, worker pool, a Python-level condition).
    The thread ends after `IDLE_EXIT_S` without work (a process running several engines,
    as the tests do, keeps no idle threads) and starts again on the next call.

    `post` queues a write without waiting for it (same order, same thread): for journal
    updates nothing on the loop waits on. Its failure is raised by the next `run`.

    `defer` holds such a write on the loop until the next `run` or `post`, which sends it
    ahead of itself, or `DEFER_S` at most: the same order, but no wake-up of the thread of
    its own (at 50 calls/s a wake-up per write was most of what the lane cost). A process
    killed meanwhile loses at most `DEFER_S` of such writes, which is what a kill between
    a POST and its commit always meant: the journal still says what may have rung.
    """

    IDLE_EXIT_S = 5.0
    DEFER_S = 0.05

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._failed: BaseException | None = None  # a posted write that raised
        # In the thread: whether it runs a batch of held writes now, and what runs once at
        # the end of each batch (a write the batch's jobs put off, made once for them all).
        self.holding = False
        self.after_held: list[Callable[[], Any]] = []
        # On the loop's thread only: writes held back by `defer`, and the timer sending them.
        self._held: list[tuple[Callable[[], Any], contextvars.Context]] = []
        self._timer: asyncio.TimerHandle | None = None

    def _submit(self, job: _Job) -> None:
        with self._lock:
            self._jobs.put(job)
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="dialer-lane",
                                                daemon=True)
                self._thread.start()

    def _work(self) -> None:
        jobs = self._jobs
        while True:
            try:
                job = jobs.get(timeout=self.IDLE_EXIT_S)
            except queue.Empty:
                with self._lock:
                    if jobs.empty():
                        self._thread = None
                        return
                continue
            if job is None:
                continue
            self._run_one(job)
            # Nothing of the job stays referenced while the thread waits for the next one
            # (the last job of a run, holding the engine, would otherwise stay alive while
            # the results and the report are written).
            del job

    def _run_one(self, job: _Job) -> None:
        fn, ctx, loop, fut = job
        try:
            result = ctx.run(fn)
        except BaseException as e:  # noqa: BLE001 - handed to the caller
            if fut is None or loop is None:
                self._failed = e
            else:
                _reply(loop, fut, None, e)
            return
        if fut is not None and loop is not None:
            _reply(loop, fut, result, None)

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """`fn(*args, **kwargs)` in the lane; a cancelled caller still waits for it to end
        (a commit is never half-made), and is cancelled at its next checkpoint."""
        self._raise_failed()
        call = functools.partial(fn, *args, **kwargs) if args or kwargs else fn
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[T] = loop.create_future()
        self.flush()
        self._submit((call, contextvars.copy_context(), loop, fut))
        with anyio.CancelScope(shield=True):
            result = await fut
        return result

    def post(self, fn: Callable[P, Any], *args: P.args, **kwargs: P.kwargs) -> None:
        """Queue `fn(*args, **kwargs)` behind the calls already asked, without waiting."""
        self._raise_failed()
        call = functools.partial(fn, *args, **kwargs) if args or kwargs else fn
        self.flush()
        self._submit((call, contextvars.copy_context(), None, None))

    def defer(self, fn: Callable[P, Any], *args: P.args, **kwargs: P.kwargs) -> None:
        """`post`, sent with the next `run` or `post` (or after `DEFER_S`): from the loop."""
        self._raise_failed()
        call = functools.partial(fn, *args, **kwargs) if args or kwargs else fn
        self._held.append((call, contextvars.copy_context()))
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.DEFER_S, self.flush)

    def flush(self) -> None:
        """Send the writes `defer` holds, as one job, ahead of anything asked later."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._held:
            return
        held, self._held = self._held, []
        self._submit((functools.partial(self._run_held, held), contextvars.Context(), None, None))

    def _run_held(self, held: list[tuple[Callable[[], Any], contextvars.Context]]) -> None:
        """In the thread: each held write in order, then `after_held`; one that fails does
        not stop the rest, and the first failure is raised by the next `run`."""
        first: BaseException | None = None
        self.holding = True
        try:
            for fn, ctx in held:
                try:
                    ctx.run(fn)
                except BaseException as e:  # noqa: BLE001 - handed to the next caller
                    first = first or e
        finally:
            self.holding = False
        for fn in self.after_held:
            try:
                fn()
            except BaseException as e:  # noqa: BLE001 - handed to the next caller
                first = first or e
        if first is not None:
            raise first

    def _raise_failed(self) -> None:
        if self._failed is not None:
            e, self._failed = self._failed, None
            raise e


def _settle(fut: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if fut.done():
        return
    if error is not None:
        fut.set_exception(error)
    else:
        fut.set_result(result)


def _reply(loop: asyncio.AbstractEventLoop, fut: asyncio.Future[Any], result: Any,
           error: BaseException | None) -> None:
    try:
        loop.call_soon_threadsafe(_settle, fut, result, error)
    except RuntimeError:  # the loop is closed: nobody is waiting any more
        pass


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
                     idem_key: str | None = None,
                     evidence: dict[str, Any] | None = None) -> None:
        await self.lane.run(self.sync.reopen, attempt_id, body=body, idem_key=idem_key,
                            evidence=evidence)

    async def count_post(self, attempt_id: int) -> None:
        await self.lane.run(self.sync.count_post, attempt_id)

    def record_placed(self, attempt_id: int, **kw: Any) -> None:
        """Deferred (`Lane.defer`), not awaited: the intent, committed before the POST, is
        what keeps the call from being placed twice; until this lands, a crash leaves the
        intent, and recovery finds the call by its key. In order with every later lane call."""
        self.lane.defer(self.sync.record_placed, attempt_id, **kw)

    def record_status(self, attempt_id: int, status: str) -> None:
        """Deferred, not awaited: a live call's progress, which nothing on the loop waits on;
        in order with every later lane call (the final record comes after it), and a
        failure is raised by the next awaited one. The journal's only: the contact history
        (`on_change`) reads statuses of final calls alone, and the final record brings the
        status there (one history write per status skipped)."""
        self.lane.defer(record_status_quietly, self.sync, attempt_id, status)

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


def record_status_quietly(journal: JournalStore, attempt_id: int, status: str) -> None:
    """`journal.record_status` without its `on_change` (in the lane, which runs every other
    use of this journal object, so the hook is back before anything else writes)."""
    hook = journal.on_change
    journal.on_change = None
    try:
        journal.record_status(attempt_id, status)
    finally:
        journal.on_change = hook
