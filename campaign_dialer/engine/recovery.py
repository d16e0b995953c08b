"""Crash recovery: resolve what a previous run left open, never placing a second call.

A PLACED attempt is followed again. An INTENT (the POST may or may not have reached the
platform) is looked up first, bounded by the platform's own clock; the same key is replayed
only when no call exists and the gate still allows it; what neither can settle waits for a
person (`campaign-dialer release`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Set
from datetime import datetime, timedelta
from typing import Any

import anyio

from campaign_dialer import vocab
from campaign_dialer.client import AuthError, Call, ValidationFailed, VantaxClient, VantaxError
from campaign_dialer.compliance import Verdict
from campaign_dialer.exitcodes import ExitCode
from campaign_dialer.store import PLACED, Attempt, iso, parse_iso

from .base import RunContext
from .calls import Dialer, request_body
from .follow import Follower
from .pacing import backoff
from .rows import Row, row_for_attempt

# Crash recovery looks a call up from this long before the intent, on the platform's clock:
# the Date header it sent has whole seconds, the dialer may have died mid-request.
LOOKUP_MARGIN = timedelta(minutes=15)
_UNKNOWN = Call(id="", status="unknown")
_UNDECIDABLE = Call(id="", status="undecidable")


def _digits(s: str) -> str:
    return "".join(ch for ch in s if ch.isdigit())


def may_be_this_call(c: Call, body: dict[str, Any], after: datetime | None) -> bool:
    """A platform may ignore a list filter (`to`, `agent_id`, `created_after`): a listed call
    is taken as this attempt's only when nothing it says contradicts the request. A field it
    leaves out contradicts nothing, so a doubtful match still counts (no second call)."""
    phone = body.get("phone_number")
    if phone and c.to and _digits(c.to) != _digits(str(phone)):
        return False
    cid = body.get("contact_id")
    if not phone and cid and c.contact_id and c.contact_id != cid:
        return False
    agent = body.get("agent_id")
    if agent and c.agent_id and c.agent_id != agent:
        return False
    created = parse_iso(c.created_at)
    return not (after is not None and created is not None and created < after)


class Recovery:
    """Resolves the attempts a previous run (or a dead process) left open: follows a placed
    call, looks an intent up, replays its key only when no call exists; dials through the
    `Dialer`'s POST and follows through the `Follower`. `flagged`: people the contacts file
    itself marks Do-Not-Call (an open intent of theirs is never re-sent)."""

    def __init__(
        self, ctx: RunContext, client: VantaxClient, dialer: Dialer, follower: Follower, *,
        rows_by_person: Mapping[str, Row], flagged: Set[str],
    ) -> None:
        self.ctx = ctx
        self.client = client
        self.dialer = dialer
        self.follower = follower
        self.rows_by_person = rows_by_person
        self.flagged = flagged
        self.cfg = ctx.cfg
        self.journal = ctx.journal
        self.stats = ctx.stats
        self.state = ctx.state
        self.log = ctx.log

    async def resume(self, a: Attempt) -> None:
        """Resolve what a previous run left open, without ever placing a second call.

        The platform is asked first: its idempotency memory may be shorter than promised, so
        the same key is replayed only after a lookup, bounded by the platform's own clock,
        found no call for this attempt. An attempt neither can settle waits for a person.
        """
        row: Row = self.rows_by_person.get(a.person) or row_for_attempt(a)
        bound = self.log.bind(row=a.row, attempt=a.attempt, resumed=True)
        ctx, state = self.ctx, self.state
        async with ctx.limits.live_slots:
            if a.state == PLACED and a.call_id:
                # Poll at least once even if the last status seen was final: the crash may
                # have come before the outcome was recorded.
                call = Call(id=a.call_id, status="resuming", created_at=a.placed_at)
                await self.follower.follow(a, call, row, bound)
                return
            # INTENT: the POST may or may not have reached the platform.
            found = await self._lookup(a, row)
            if found is _UNKNOWN:
                self.stats.unresolved += 1
                return
            if found is _UNDECIDABLE:
                await self._hold_for_a_person(
                    a, row, bound, "the platform cannot be asked whether this call exists"
                )
                return
            if found is not None:
                self.journal.record_placed(
                    a.id, call_id=found.id, http_status=None, status=found.status,
                    placed_at=a.intent_at,
                )
                bound.info("reconciled_by_lookup", call_id=found.id)
                # A list may give a summary: the call is asked for in full at least once (an
                # outcome such as an opt-out must not be lost because the list left it out).
                a = dataclasses.replace(a, status=found.status)
                resumed = Call(id=found.id, status="resuming", created_at=found.created_at)
                await self.follower.follow(a, resumed, row, bound)
                return
            now = ctx.clock.now()
            verdict, problem = await ctx.gate.check(row, now)
            if problem is not None:
                state.abort(ExitCode.DATAERR, problem)
            if a.person in self.flagged:  # the CRM now says do not call: never re-send
                verdict = Verdict(vocab.SUPPRESSED, "dnc_flag", "", None, {})
            if verdict.disposition == vocab.ELIGIBLE and a.body == request_body(
                    self.cfg, ctx.campaign.name, row):
                if await self.journal.control() != "active":
                    bound.info("replay_waits_for_resume")  # a paused campaign places nothing
                    return
                # No call exists: the same key and body can ring this person at most once.
                # The replay may place the call, so it takes a call slot like a first dial
                # (shared by every process of a campaign on PostgreSQL).
                await ctx.limits.calls.acquire()
                bound.info("replaying_open_intent")
                replayed = await self.dialer.post(a, row, bound)
                if replayed is not None:
                    await self.follower.follow(a, replayed, row, bound)
                return
            age = self._intent_age(a, now)
            settle = timedelta(seconds=max(60.0, 3 * self.cfg.api.request_timeout_s))
            if age is None:
                await self._hold_for_a_person(
                    a, row, bound, "no platform time is known for this intent and no call "
                    "was found; it may still be in flight"
                )
                return
            if age > settle:
                await self.journal.record_not_placed(
                    a.id, http_status=None, error_code="not_found_on_platform",
                    error="reconciled: no call exists for this attempt",
                )
                bound.info("reconciled_not_placed")
                if verdict.disposition == vocab.ELIGIBLE:
                    state.schedule.push(row, None)  # the campaign changed: dial it afresh
                elif a.person not in self.flagged:
                    await self.dialer.defer(row, verdict, bound)
            else:
                self.stats.unresolved += 1  # may still be in flight: the next run decides

    def _intent_age(self, a: Attempt, now: datetime) -> timedelta | None:
        """How long ago the intent was, on the platform's clock when both ends know it."""
        platform_at = parse_iso(a.evidence.get("platform_at"))
        platform_now = self.client.platform_now()
        if platform_at is not None and platform_now is not None:
            return platform_now - platform_at
        if platform_now is None:  # a platform without Date headers: our clock is all we have
            return now - (parse_iso(a.intent_at) or now)
        return None

    async def _hold_for_a_person(self, a: Attempt, row: Row, bound: Any, why: str) -> None:
        await self.journal.record_unresolved(a.id, error=why)
        self.stats.held_unresolved += 1
        bound.warning("intent_unresolved", reason=why)
        await self.dialer.set_fate_from_attempt(row, a.id)

    async def _lookup(self, a: Attempt, row: Row, *, bounded: bool = True) -> Call | None:
        """The call this intent placed, if any: bounded by the platform's clock, not ours.

        `created_after` is the platform's time at the intent (from its Date header) less a
        generous margin; calls this journal already knows are skipped. Without a platform
        time there is no lower bound: any unknown call from this agent to this person counts
        as this one (the person is then never rung again by this attempt).
        """
        filters: dict[str, Any] = {"agent_id": a.body.get("agent_id")}
        platform_at = parse_iso(a.evidence.get("platform_at"))
        if platform_at is not None and bounded:
            filters["created_after"] = iso(platform_at - LOOKUP_MARGIN)
        if a.body.get("phone_number"):
            filters["to"] = a.body["phone_number"]
        else:
            filters["contact_id"] = a.body.get("contact_id")
        known = {x.call_id for x in await self.journal.attempts_for(a.person) if x.call_id}
        after = parse_iso(filters.get("created_after"))
        tries = 0
        while True:
            try:
                return await self._list_once(filters, known, a.body, after)
            except VantaxError as e:
                # GETs count against the rate limit too: a 429 or a proxy's 502 is asked
                # again (a few times, as Retry-After says) before the intent is left open.
                tries += 1
                if not e.retryable or tries >= self.cfg.api.max_attempts or self.state.stopping:
                    return await self._lookup_failed(a, row, e, filters, bounded)
                await anyio.sleep(e.retry_after if e.retry_after is not None
                                  else backoff(tries))

    async def _list_once(
        self, filters: dict[str, Any], known: set[str], body: dict[str, Any],
        after: datetime | None,
    ) -> Call | None:
        async for c in self.client.list_calls(**filters):
            if c.id not in known and may_be_this_call(c, body, after):
                return c
        return None

    async def _lookup_failed(
        self, a: Attempt, row: Row, e: VantaxError, filters: dict[str, Any], bounded: bool
    ) -> Call | None:
        """What a lookup that got no answer leaves: unknown (this run), for a person, or a
        second look without the time bound the platform refused."""
        if isinstance(e, AuthError):
            self.state.abort(ExitCode.NOPERM, f"the API refused the key ({e.status})")
            return _UNKNOWN
        if isinstance(e, ValidationFailed) and "created_after" in filters and bounded:
            # A platform that will not take our time bound: look without it (any unknown
            # call to this person then counts as this attempt's: never a second call).
            self.log.warning("lookup_without_time_bound", row=a.row, error=e.message)
            return await self._lookup(a, row, bounded=False)
        self.log.warning("lookup_failed", row=a.row, error=e.message)
        if isinstance(e, ValidationFailed):
            return _UNDECIDABLE
        return _UNKNOWN if e.retryable or e.status is None else _UNDECIDABLE
