"""The store's vocabulary: the records every backend reads and writes, and its clock format.

Plain frozen dataclasses and named tuples, no SQL: the engine, results, commands and the
report speak these, whichever database is behind the store.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

# Attempt states. `intent` and `placed` are open: the next run must resolve or follow them.
# `unresolved`: an intent neither a replay nor a lookup could settle; it is never re-sent
# until a person decides with `campaign-dialer release`.
INTENT, PLACED, FINAL, REJECTED, ERROR, NOT_PLACED, UNRESOLVED = (
    "intent", "placed", "final", "rejected", "error", "not_placed", "unresolved",
)
OPEN_STATES = (INTENT, PLACED)
ATTEMPT_STATES = (INTENT, PLACED, FINAL, REJECTED, ERROR, NOT_PLACED, UNRESOLVED)
# Attempt states that certainly did not ring anyone; every other state (intent, placed,
# final, and any state added later) counts as a call: when unsure, assume it rang.
NOT_CALLED = (NOT_PLACED, REJECTED, ERROR)
CONTROL_STATES = ("active", "paused", "canceled")

# Every column of an attempt record, in the journal's order (`id` is the backend's own).
ATTEMPT_COLUMNS = (
    "id", "person", "row", "attempt", "idem_key", "body", "state", "call_id", "http_status",
    "error_code", "error", "status", "outcome", "ended_reason", "posts", "intent_at",
    "placed_at", "ended_at", "duration_seconds", "recording_url", "evidence", "extra", "run_id",
    "updated_at",
)


def now_iso() -> str:
    """The wall clock as the store writes it: UTC, milliseconds, a `Z`."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def iso(dt: datetime | None) -> str | None:
    if dt is None:
        return None
    return dt.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso(s: str | None) -> datetime | None:
    """A stored time back as an aware datetime; None for blank or unreadable text."""
    if not s:
        return None
    try:
        dt = datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def json_object(text: Any) -> dict[str, Any]:
    """A stored JSON object (a run's summary, an HTTP exchange's body, a record's body or
    evidence), or {} for anything else: absent, unreadable, or not an object. An object
    already decoded is taken as it is."""
    if isinstance(text, dict):
        return text
    try:
        v = json.loads(text) if text else {}
    except (TypeError, ValueError):
        return {}
    return v if isinstance(v, dict) else {}


def _json(v: Any, default: Any) -> Any:
    if v is None or v == "":
        return default
    return json.loads(v) if isinstance(v, str | bytes) else v


@dataclass(frozen=True)
class Attempt:
    """One call attempt for one person: its intent, what the platform said, how it ended."""

    id: int
    person: str
    row: int
    attempt: int
    idem_key: str
    body: dict[str, Any]
    state: str
    call_id: str | None
    http_status: int | None
    error_code: str | None
    error: str | None
    status: str | None
    outcome: str | None
    ended_reason: str | None
    posts: int
    intent_at: str
    placed_at: str | None
    ended_at: str | None
    duration_seconds: float | None
    recording_url: str | None
    evidence: dict[str, Any]
    run_id: int | None

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES

    @classmethod
    def from_row(cls, r: Any) -> Attempt:
        """From a stored row (any mapping by column name; JSON columns as text or decoded)."""
        return cls(
            id=r["id"], person=r["person"], row=r["row"], attempt=r["attempt"],
            idem_key=r["idem_key"], body=_json(r["body"], {}), state=r["state"],
            call_id=r["call_id"], http_status=r["http_status"], error_code=r["error_code"],
            error=r["error"], status=r["status"], outcome=r["outcome"],
            ended_reason=r["ended_reason"], posts=r["posts"], intent_at=r["intent_at"],
            placed_at=r["placed_at"], ended_at=r["ended_at"],
            duration_seconds=r["duration_seconds"], recording_url=r["recording_url"],
            evidence=_json(r["evidence"], {}), run_id=r["run_id"],
        )


@dataclass(frozen=True)
class Fate:
    """What became of one input row (results.csv's disposition, reason, detail...)."""

    row: int
    person: str | None
    disposition: str
    reason: str | None = None
    detail: str | None = None
    next_open: str | None = None
    evidence: dict[str, Any] | None = None


@dataclass(frozen=True)
class CallerPick:
    """The owned number a claimed call goes out from, and why that one."""

    id: str  # the platform's phone-number id (`from_phone_number_id`)
    number: str  # its E.164
    reason: str  # sticky | local_area_code | local_state | pool


@dataclass(frozen=True)
class Claim:
    """The answer to "may this campaign call this person now?"; `ok` means it is claimed."""

    ok: bool
    reason: str | None = None  # "recently_called" | "already_called" | "caller_ids_exhausted"
    detail: str = ""
    next_open: datetime | None = None
    caller: CallerPick | None = None  # claimed with a caller-ID pool: the number taken


class CallerIdFacts(NamedTuple):
    """What the history knows of a pool, read inside a claim's transaction."""

    sticky_id: str | None  # the number that last called the person (any campaign)
    recent: Mapping[str, Sequence[datetime]]  # each pool number's calls in the last 24 h
    resting: Mapping[str, datetime]  # number id -> when its rest ends


@dataclass(frozen=True)
class CallerIdRequest:
    """A claim that must also take a number of the pool, in the same transaction.

    `choose` decides from the facts (a pick, or a refusing Claim); `amend` gives the key and
    record of the claim once the number is known (the request body carries it), so the
    history holds exactly what will be sent. The store knows neither the rule nor the API."""

    numbers: tuple[str, ...]
    choose: Callable[[CallerIdFacts], CallerPick | Claim]
    amend: Callable[[CallerPick], tuple[str, dict[str, Any]]]


@dataclass(frozen=True)
class NumberRest:
    """A caller ID taken out of use: by the health rule or by a person."""

    number_id: str
    since: datetime
    until: datetime
    reason: str  # low_answer_share | short_calls | manual | restored
    detail: str
    by: str  # "dialer" or "person"
    called_off: datetime | None = None  # a restore ended it then (its `until` stays planned)

    @property
    def ends(self) -> datetime:
        """When it ended or will: called off by a restore, else its planned end."""
        return self.called_off if self.called_off is not None else self.until

    def in_force(self, at: datetime) -> bool:
        """Resting at `at` (a rest begun on a clock ahead of ours counts; a restore is a
        mark, never a rest; a rest a restore called off never is again)."""
        return self.reason != "restored" and self.called_off is None and at < self.until


class NumberCall(NamedTuple):
    """One finished call from an owned number, as the health rule reads it."""

    status: str | None
    duration_seconds: float | None


@dataclass(frozen=True)
class PastCall:
    """One call in the contact history, as the cross-campaign rules see it."""

    campaign: str
    attempt: int
    at: datetime
    state: str


class CallFacts(NamedTuple):
    """One attempt as the report reads it (a tuple, so a frame is built from many fast)."""

    id: int
    row: int
    attempt: int
    state: str
    http_status: int | None
    error_code: str | None
    status: str | None
    outcome: str | None
    posts: int
    intent_at: str
    placed_at: str | None
    ended_at: str | None
    duration_seconds: float | None
    agent_id: str | None  # the request body's agent_id
    local_times: str | None  # the evidence's local_times
    from_id: str | None  # the request body's from_phone_number_id (the caller ID)


CALL_FACT_COLUMNS = CallFacts._fields


class HttpTally(NamedTuple):
    """HTTP exchanges grouped by method, status, code and (for no answer) error text."""

    method: str | None
    status: int | None
    code: str | None
    error: str | None  # the first 80 characters, only where there was no HTTP status
    events: int  # how many
    latency: float | None  # mean seconds


HTTP_TALLY_COLUMNS = HttpTally._fields


def record_local_times(record_text: str) -> str | None:
    """The recipient's local time(s) the gate recorded for an attempt (its evidence's
    `local_times`), from the history's stored record; None when absent or unreadable."""
    try:
        rec = json.loads(record_text)
    except ValueError:
        return None
    ev = rec.get("evidence") if isinstance(rec, dict) else None
    if isinstance(ev, str):
        try:
            ev = json.loads(ev)
        except ValueError:
            return None
    lt = ev.get("local_times") if isinstance(ev, dict) else None
    return lt if isinstance(lt, str) and lt else None


# -- shared campaigns (PostgreSQL): the rows a process claims ------------------------------
@dataclass(frozen=True)
class OpenIntent:
    """An attempt a dead process left open: resolve it with its key, never re-dial fresh."""

    attempt_id: int
    attempt: int
    idem_key: str
    state: str  # "intent" (may or may not have rung) or "placed" (follow call_id)
    call_id: str | None
    body: dict[str, Any]


@dataclass(frozen=True)
class ClaimedRow:
    row: int
    person: str
    taken_from: int | None  # the process id whose expired lease this was, if any
    open_intents: tuple[OpenIntent, ...]


@dataclass(frozen=True)
class ProcessInfo:
    id: int
    host: str
    pid: int
    started_at: datetime
    heartbeat_at: datetime
    ended_at: datetime | None
    exit_code: int | None
    live_calls: int
    rows_held: int
    alive: bool  # ended_at is None and its heartbeat is within its lease
