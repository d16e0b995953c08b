"""What the dialer asks of a store: the journal of one campaign and the contact history.

Typed `Protocol`s, so a backend is any class with these methods: `store.sqlite` is the first
(and the default); a PostgreSQL backend implements the same for teams on several machines.
Nothing outside `campaign_dialer.store` speaks SQL.

Contract every backend keeps (the contract tests in tests/test_store_contract.py check it):

- Durability: a write method returns only once its transaction is committed; a process
  killed right after sees it after reopening. The intent of a call is durable before its
  POST is sent; that is the whole point of the journal.
- Atomicity: each write method is one transaction, whole or absent. `record_intent` is an
  insert guarded by UNIQUE (person, attempt) and UNIQUE idem_key in the database itself;
  `claim` checks and inserts in one transaction that no concurrent claim can interleave.
- Schema: opening creates the schema or migrates an older one forward (meta
  `schema_version`), and refuses a newer one with `SchemaTooNew` (exit 78).
- Errors: a write that cannot be made raises `JournalWriteError` (73 read-only / 74 disk or
  I/O), never a driver exception; a refused intent raises `DuplicateAttempt`.
- Threads: methods are called from worker threads (never on the event loop), one at a time
  per object or concurrently; a backend serialises what it must.
- Times are ISO-8601 UTC strings with milliseconds and a `Z` (`model.iso`), stamped from
  the clock the journal was opened with.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa

from campaign_dialer.store.model import (
    Attempt,
    CallerIdRequest,
    CallFacts,
    Claim,
    ClaimedRow,
    Fate,
    HttpTally,
    NumberCall,
    NumberRest,
    PastCall,
)

# An HTTP exchange as the engine's telemetry hands it over:
# (t: unix seconds, run_id, method, path, status or None, error code, latency s, error text).
HttpEvent = tuple[Any, ...]

# The rates a shared campaign's processes take their slots from (`Coordination`'s limiters).
SHARED_CALLS = "calls"  # calls_per_second: new calls placed
SHARED_REQUESTS = "requests"  # requests_per_second: every API request


class AttemptLog(Protocol):
    """Every attempt of the campaign and every row's fate: what the engine writes as it
    dials and follows, and what results and resume read back."""

    campaign: str
    # Called with an attempt's record (`attempt_record`) after every attempt update, outside
    # the transaction: the contact history follows the journal.
    on_change: Callable[[dict[str, Any]], None] | None

    # -- attempts ---------------------------------------------------------------------
    def record_intent(
        self, *, person: str, row: int, attempt: int, idem_key: str, body: dict[str, Any],
        evidence: dict[str, Any], run_id: int | None,
    ) -> Attempt:
        """Commit what is about to be sent, before it is sent (state "intent", posts 0).

        Raises DuplicateAttempt when (person, attempt) or idem_key is already there: the
        database itself refuses, so two processes can never both record (and so send) it."""

    def attempt(self, attempt_id: int) -> Attempt:
        """One attempt (JournalError if absent)."""

    def attempts(self, *, states: Sequence[str] | None = None) -> list[Attempt]:
        """All attempts (or those in `states`), in the order their intents were recorded."""

    def attempts_for(self, person: str) -> list[Attempt]:
        """One person's attempts by attempt number."""

    def attempts_by_person(self) -> dict[str, list[Attempt]]:
        """Every attempt by person, each list by attempt number."""

    def attempt_record(self, attempt_id: int) -> dict[str, Any]:
        """An attempt as a plain record: every ATTEMPT_COLUMNS but `id`, JSON columns as
        text. The contact history stores and returns exactly this."""

    def attempt_records(self) -> list[dict[str, Any]]:
        """`attempt_record` of every attempt, in intent order."""

    def import_attempts(self, records: Iterable[dict[str, Any]]) -> int:
        """Put back attempt records the history knows and this journal lost (run_id None);
        a record whose idem_key or (person, attempt) is already here is skipped. One
        transaction. Returns how many were inserted."""

    def count_post(self, attempt_id: int) -> None:
        """posts += 1, committed before the POST goes out."""

    def record_placed(
        self, attempt_id: int, *, call_id: str, http_status: int | None, status: str,
        placed_at: str | None,
    ) -> None:
        """State "placed"; clears error and error_code. placed_at defaults to now."""

    def record_status(self, attempt_id: int, status: str) -> None: ...

    def record_final(
        self, attempt_id: int, *, status: str, outcome: str | None, ended_reason: str | None,
        ended_at: str | None, duration_seconds: float | None, recording_url: str | None,
        extra: dict[str, Any] | None = None, error: str | None = None,
        transcript: str | None = None, call_id: str | None = None,
    ) -> None:
        """State "final". A transcript is committed (upserted per attempt) BEFORE the final
        state, so a crash in between leaves the call open and the next run writes it again."""

    def record_rejected(
        self, attempt_id: int, *, http_status: int | None, error_code: str | None, error: str
    ) -> None: ...

    def record_error(
        self, attempt_id: int, *, http_status: int | None, error_code: str | None, error: str
    ) -> None: ...

    def record_not_placed(
        self, attempt_id: int, *, http_status: int | None, error_code: str | None, error: str
    ) -> None:
        """Known NOT to have rung: the same attempt (and key) may be sent again."""

    def record_unresolved(self, attempt_id: int, *, error: str) -> None:
        """Neither replay nor lookup can tell whether it rang: never re-sent until released."""

    def note_error(
        self, attempt_id: int, *, http_status: int | None, error_code: str | None, error: str
    ) -> None:
        """Keep the last transient problem without changing the state."""

    def reopen(
        self, attempt_id: int, body: dict[str, Any] | None = None, idem_key: str | None = None,
        evidence: dict[str, Any] | None = None,
    ) -> None:
        """A not-placed attempt back to "intent" (optionally a corrected body under a new
        key) before it is sent again."""

    def release(self, *, rows: Iterable[int] | None, as_called: bool) -> list[Attempt]:
        """A person's decision on unresolved attempts (all, or those of `rows`): final with
        status "unknown" (as_called) or not_placed. Returns them as they are now."""

    # Every error text written by the methods above is passed through `log.scrub` first.

    # -- fates: a base of every row's fate as planned, and an overlay (`store.fate_base`) --
    def set_fate_base(self, table: pa.Table, digest: str) -> None:
        """Replace the fate base (every row's fate as the plan implies it: `row` int64
        ascending and unique, `person`, `disposition` never null, `reason`, `detail`,
        `next_open` ISO text, then one text column per evidence key, null when absent;
        plain or dictionary-encoded large_string) and its digest, in one transaction. The
        overlay is left as it is. ValueError when `table` cannot be a base."""

    def fate_base_digest(self) -> str | None:
        """The digest of the base kept, None when none (a run whose base has this digest
        need not write it again)."""

    def fate_base(self) -> pa.Table | None:
        """The base kept (every column but `row` and `person` dictionary-encoded), None
        when none."""

    def set_fates(self, fates: Iterable[Fate]) -> None:
        """Upsert overlay fates by row (rows whose fate differs from the base), all in one
        transaction."""

    def overlay_fates(self) -> dict[int, Fate]:
        """The overlay alone, by row in row order."""

    def drop_fates(self, rows: Iterable[int]) -> None:
        """Delete these rows' overlay fates (their base fate stands again), one transaction."""

    def fates(self) -> dict[int, Fate]:
        """Every row's fate by row, in row order: the base's rows, the overlay's winning. A
        Fate per row (a base row's evidence: its non-null evidence columns, None when none):
        for tests and small readers."""

    def fate_table(self) -> pa.Table:
        """Every row's fate as columns, sorted by row: the base's shape with every string
        large_string (evidence columns: the base's, then the overlay's other keys), the
        overlay winning; without a base, the overlay alone. Vectorised (a Python object per
        overlay row only)."""


class Controls(Protocol):
    """The campaign's meta, its control state (pause, resume, cancel) and its runs: what
    `pause`/`resume`/`cancel`, `status` and the start and end of every run touch."""

    # -- meta and control -------------------------------------------------------------
    def get_meta(self, key: str) -> str | None: ...

    def set_meta(self, key: str, value: str) -> None:
        """Upsert one key, committed."""

    def control(self) -> str:
        """"active" | "paused" | "canceled"; read fresh on every call (other processes set it)."""

    def set_control(self, state: str) -> None:
        """Set the control state (ValueError if not one of CONTROL_STATES).

        Atomic check-and-set: once "canceled", any other state raises JournalError.
        Also stamps meta `control_at`."""

    # -- runs -------------------------------------------------------------------------
    def begin_run(self) -> int:
        """Record a run's start (time, pid); returns its id, increasing."""

    def end_run(self, run_id: int, exit_code: int, summary: dict[str, Any]) -> None: ...

    def runs(self) -> list[dict[str, Any]]:
        """Every run, oldest first: id, started_at, ended_at, exit_code, pid, summary (JSON
        text)."""


class Telemetry(Protocol):
    """What the run observes rather than decides: HTTP exchanges and webhook deliveries."""

    def add_http_events(self, events: Sequence[HttpEvent]) -> None:
        """Append a batch of HTTP exchanges (one transaction; lossy telemetry is tolerable,
        but a batch is whole or absent)."""

    # -- webhook events ---------------------------------------------------------------
    def add_webhook_event(
        self, *, call_id: str, event: str, status: str, body_sha256: str, data: str
    ) -> bool:
        """Commit one delivered event; False when (call_id, event, status) was already there
        (deliveries are at least once; the check and insert are one atomic statement)."""

    def webhook_events(self, call_id: str) -> list[dict[str, Any]]:
        """event, status, received_at, data of one call's events, in arrival order."""


class ReportReads(Protocol):
    """What the report and results read, in one consistent view."""

    def snapshot(self) -> AbstractContextManager[None]:
        """One consistent read view for the reads inside it (fates, attempts and events of a
        running campaign agree). Reads only; no write may happen inside."""

    def call_facts(self) -> list[CallFacts]:
        """Every attempt as the report reads it, in intent order."""

    def http_tally(self) -> list[HttpTally]:
        """HTTP events aggregated by (method, status, code, error[:80] when no status)."""

    def fate_counts(self) -> dict[tuple[str, str], int]:
        """How many rows per (disposition, reason or "") over `fate_table`'s rows (the base's
        rows not in the overlay, and the overlay's), vectorised."""

    def transcripts(self) -> list[dict[str, Any]]:
        """call_id, row, person, text of every transcript, by row then attempt."""


class JournalStore(AttemptLog, Controls, Telemetry, ReportReads, Protocol):
    """One campaign's journal: every fact about its calls, durable before it matters (the
    union of the roles above; a caller that needs one role is typed against that role)."""

    campaign: str
    path: Path  # where it lives (a file; a backend without one gives a descriptive path)

    def close(self) -> None: ...

    def __enter__(self) -> JournalStore: ...

    def __exit__(self, *exc: object) -> None:
        """Closes it."""

    def twin(self) -> JournalStore:
        """The same journal through a connection of its own, on the wall clock (the
        webhook sink's and the monitor's, which work beside the engine's)."""


class RateSlots(Protocol):
    """A rate limit's slots (`aiolimiter.AsyncLimiter`'s shape): wait for the next one."""

    async def acquire(self) -> None: ...


class Coordination(Protocol):
    """A process's part in a campaign several processes run at once (PostgreSQL): the rows
    it leases, the campaign's global limits, and its heartbeat. `open_stores` gives one
    (`Stores.coordinator`) when the campaign has a store URL; none on SQLite.

    Every method but `keep_alive` blocks on one round trip: call it off the event loop."""

    lease_seconds: float

    def ensure_campaign(self, *, max_live_calls: int | None = None) -> None:
        """Create the campaign's row if absent; set its global live-call cap."""

    def configure_limits(self, *, calls_per_second: float, requests_per_second: float) -> None:
        """Set the campaign's rates every process shares."""

    @property
    def calls_limiter(self) -> RateSlots:
        """The campaign's calls_per_second, shared by every process."""

    @property
    def requests_limiter(self) -> RateSlots:
        """The campaign's requests_per_second, shared by every process."""

    def load_rows(self, rows: Iterable[tuple[int, str]]) -> int:
        """Offer the plan's callable rows (row, person); idempotent. Returns how many were
        new."""

    def claim(self, n: int) -> list[ClaimedRow]:
        """Lease up to n rows for this process (with a dead process's open intents)."""

    def release(self, row: int, *, not_before: datetime | None = None) -> None:
        """Give a row back undone (due again at `not_before`)."""

    def finish(self, rows: Sequence[int]) -> int:
        """These rows need no more calls; returns how many were this process's."""

    def due_elsewhere(self) -> int:
        """Rows not done and due now that this process does not hold."""

    def remaining(self) -> int:
        """Rows not done."""

    def live_calls(self) -> int:
        """Open calls of the campaign across all its processes."""

    async def keep_alive(
        self, on_control: Callable[[str], None], *, every: float | None = None
    ) -> None:
        """Heartbeat forever, calling `on_control` when the control state changes; raises
        LeaseLost if this process was ended meanwhile."""


class HistoryStore(Protocol):
    """Every call and opt-out of every campaign of a user or team (the contact history)."""

    path: str  # where it lives (a file path, or a redacted database URL)

    def claim(
        self, *, campaign: str, person: str, phone_e164: str | None, contact_id: str | None,
        attempt: int, idem_key: str, record: dict[str, Any], at: datetime, min_hours: float,
        state_limit: int | None, state: str | None = None, also: Sequence[str] = (),
        caller: CallerIdRequest | None = None,
    ) -> Claim:
        """Check the person's past calls (under `person` and every key in `also`) and record
        the claim, in ONE transaction no concurrent claim for the same keys can interleave
        with (SQLite: BEGIN IMMEDIATE; PostgreSQL: a row/advisory lock on the person).

        Refused with "already_called" when this campaign has an attempt >= `attempt` for the
        person not in state not_placed; with `policy.hold_back`'s answer otherwise. A
        not_placed claim of the same attempt is re-claimed (state back to intent, new key).

        `caller`: also take a caller ID in the same transaction, serialised with every other
        claim that takes one (any campaign, any process): `caller.choose` sees the person's
        last number, each pool number's calls of the last 24 h (states in NOT_CALLED do not
        count) and the rests in force; its refusal is returned as it is; its pick is stored
        with the claim (`from_id`, `from_number`) under `caller.amend`'s key and record."""

    # -- caller IDs: counted, rested, read by `check`, `status` and the report ----------
    def caller_id_load(self, numbers: Sequence[str], at: datetime) -> dict[str, list[datetime]]:
        """Each number's calls (any campaign, not NOT_CALLED) claimed in the 24 h to `at`."""

    def caller_id_rests(self, numbers: Sequence[str] | None = None) -> list[NumberRest]:
        """Every rest and restore of the numbers (or of all), oldest first."""

    def rest_number(
        self, number_id: str, *, since: datetime, until: datetime, reason: str, detail: str,
        by: str, only_if_active_before: datetime | None = None,
    ) -> bool:
        """Record a rest (reason "restored": a mark that calls off every rest in force at `since`,
        whose until becomes its own start; a mark is never a rest). With
        `only_if_active_before`, nothing is written when a rest of the number ended after it
        (another process rested it for the same calls). True when written. Committed."""

    def number_calls(
        self, number_id: str, *, after: datetime | None, limit: int
    ) -> list[NumberCall]:
        """The number's last `limit` final calls claimed after `after`, newest first."""

    def sticky_numbers(self, persons: Sequence[str]) -> dict[str, str]:
        """person -> the caller ID of their last call (any campaign), where one is known."""

    def sync(self, campaign: str, records: Iterable[dict[str, Any]]) -> None:
        """Upsert journal attempt records by idem_key (the journal wins), one transaction."""

    def records(self, campaign: str) -> list[dict[str, Any]]:
        """The campaign's attempt records (as `JournalStore.attempt_record` gave them, with
        the history's current state, call_id, status, placed_at, ended_at), by claim time."""

    def recent_calls(self, since: datetime) -> dict[str, list[PastCall]]:
        """Every campaign's calls claimed after `since`, by person."""

    def call_seconds(self, limit: int = 2000) -> list[float]:
        """Placed-to-ended seconds of the most recent `limit` finished calls, any campaign."""

    def answer_facts(self, limit: int = 200_000) -> list[tuple[str, str | None, str | None]]:
        """(person, final status, local_times) of the most recent `limit` placed calls that
        ended, every campaign: what the adaptive schedule learns when people answer from."""

    def add_dnc(
        self, e164: str, *, reason: str, campaign: str, evidence: str, at: datetime,
        source: str = "dialer",
    ) -> None:
        """Record an opt-out/409 (idempotent on (number, reason, evidence)), committed."""

    def is_dnc(self, e164: str) -> bool: ...

    def dnc_numbers(self) -> set[str]: ...

    def import_ledger(self, path: Path) -> int:
        """Copy a ledger CSV's entries in (only when the file changed since the last import);
        returns how many were new."""

    def close(self) -> None: ...
