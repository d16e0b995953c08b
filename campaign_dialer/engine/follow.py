"""Following a placed call to its end: polls, or webhook events with a reconcile poll.

The live-call slot is held by the caller until the call is final; the final record is
journaled with the row's fate, the opt-out goes on the shared DNC ledger, and a redial, if
the policy allows one, goes back on the schedule.
"""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any

import anyio

from campaign_dialer.client import (
    TERMINAL_STATUSES,
    AuthError,
    Call,
    NotFound,
    VantaxClient,
    VantaxError,
)
from campaign_dialer.exitcodes import ExitCode
from campaign_dialer.store import FINAL, Attempt, iso
from campaign_dialer.webhook import Receiver

from .base import RunContext
from .fates import attempt_fate
from .pacing import backoff
from .rows import Row

# A call finished by a final `call.status_changed` waits this long (at most) for its
# `call.completed`, which may carry more (transcript, recording).
COMPLETED_WAIT_S = 5.0
_STATUS_RANK = {"resuming": -1, "initiated": 1, "ringing": 2, "in_progress": 3}


def rank(status: str) -> int:
    """How far along a call is; an undocumented status ranks below every documented one."""
    if status in TERMINAL_STATUSES:
        return 4
    return _STATUS_RANK.get(status, 0)


def furthest(events: list[dict[str, Any]], call: Call, *, final_only: bool) -> Call | None:
    """The furthest state webhook `events` give `call`, if further than it.

    State only moves forward: an event older than what is known (out of order, a
    duplicate) changes nothing. A final call merges its final events, the
    `call.completed` one last, so the fullest record (transcript, recording) wins.
    `final_only`: the merged final record, even if `call` is final already.
    """
    if not events:
        return None
    finals: list[dict[str, Any]] = []
    best: dict[str, Any] | None = None
    for e in events:
        try:
            data = json.loads(e["data"])
        except ValueError:
            continue
        if not isinstance(data, dict):
            continue
        if str(data.get("status")) in TERMINAL_STATUSES:
            finals.append({"event": e["event"], "data": data})
        elif best is None or rank(str(data.get("status"))) > rank(str(best.get("status"))):
            best = data
    if finals:
        finals.sort(key=lambda f: f["event"] == "call.completed")
        merged: dict[str, Any] = {}
        for f in finals:
            merged.update({k: v for k, v in f["data"].items() if v is not None})
        merged["status"] = finals[-1]["data"]["status"]
        merged["_completed_event"] = finals[-1]["event"] == "call.completed"
        best = merged
    elif final_only:
        return None
    if best is None or (not final_only and rank(str(best.get("status"))) <= rank(call.status)):
        return None
    try:
        return Call.from_json(best)
    except VantaxError:
        return None


class Follower:
    """Follows placed calls to their end: polls, or the webhook's events with a reconcile
    poll; journals each final record with its row's fate, puts a redial on the schedule."""

    def __init__(self, ctx: RunContext, client: VantaxClient,
                 webhooks: Receiver | None = None) -> None:
        self.ctx = ctx
        self.client = client
        self.webhooks = webhooks
        self.cfg = ctx.cfg
        self.journal = ctx.journal
        self.stats = ctx.stats
        self.state = ctx.state

    async def follow(self, a: Attempt, call: Call, row: Row, bound: Any) -> None:
        """Follow the call until it is final; the live slot is held by the caller until then.

        With `[webhook]`, the call's events (committed to the journal by the receiver) move
        it on, and the platform is asked only when a call has been quiet for
        `reconcile_after_s` (a late or lost final event); without, it is polled.
        """
        bound = bound.bind(call_id=call.id)
        self.stats.live += 1
        hook = self.webhooks
        try:
            if hook is not None:
                await hook.watch(call.id)
            # Measured on the monotonic clock from when we start following: platform and
            # local wall clocks may disagree, a time limit must not.
            deadline = time.monotonic() + self.cfg.api.call_time_limit_s
            last_status = call.status
            problems = 0
            told_wait = 0.0  # the last refusal's Retry-After: polls share the POSTs' limit
            why = "no final status within the time limit"
            quiet = self.cfg.webhook.reconcile_after_s if self.cfg.webhook else 0.0
            # A call found open after a restart is asked about at once: its final event may
            # have been sent while nobody listened.
            next_poll = time.monotonic() + (0.0 if call.status == "resuming" else quiet)
            while not call.is_terminal:
                if time.monotonic() > deadline:
                    bound.warning("call_not_final_in_time", status=call.status)
                    break
                if hook is None:
                    await anyio.sleep(
                        self.ctx.limits.poll_interval(self.stats.live) if not problems
                        else max(backoff(problems), told_wait)
                    )
                else:
                    until = (time.monotonic() + max(backoff(problems), told_wait)
                             if problems else next_poll)
                    pushed = await self._next_event(hook, call, min(until, deadline))
                    if pushed is not None and pushed.is_terminal:
                        pushed = await self._completed_event(hook, pushed, quiet)
                    if pushed is not None:
                        call = pushed
                        next_poll = time.monotonic() + quiet
                        if call.status != last_status and not call.is_terminal:
                            last_status = call.status
                            self.journal.record_status(a.id, call.status)
                        continue
                    if time.monotonic() < until:
                        continue  # the time limit: said at the top of the loop
                    next_poll = time.monotonic() + quiet
                    if not problems:
                        bound.info("reconcile_poll", status=call.status)
                try:
                    polled = await self.client.get_call(call.id)
                    problems, told_wait = 0, 0.0
                except AuthError as e:
                    self.state.abort(ExitCode.NOPERM, f"the API refused the key ({e.status})")
                    return
                except NotFound:
                    problems += 1
                    if problems >= 8:
                        bound.warning("call_not_found")
                        why = "the platform does not know this call (404)"
                        break
                    continue
                except VantaxError as e:
                    problems += 1
                    told_wait = e.retry_after or 0.0
                    bound.debug("poll_failed", error=e.message)
                    continue
                if hook is None or rank(polled.status) >= rank(call.status):
                    call = polled  # never back: events may already have told us more
                if call.status != last_status:
                    last_status = call.status
                    if not call.status_known:
                        bound.info("unknown_status", status=call.status)
                    if not call.is_terminal:  # a final status is journaled with the record
                        self.journal.record_status(a.id, call.status)
            if hook is not None and not call.is_terminal:
                # The last word before giving up may have come as an event.
                last = await self._from_events(call)
                if last is not None:
                    call = await self._completed_event(hook, last, 0.0)
            await self._finish(a, call, row, bound, why)
        finally:
            self.stats.live -= 1
            if hook is not None:
                hook.unwatch(call.id)

    async def _finish(self, a: Attempt, call: Call, row: Row, bound: Any, why: str) -> None:
        """Journal the final record, the row's fate and an opt-out (one lane job); redial.

        When no attempt can follow (the policy does not redial this status, the attempts are
        used up) and the call is no opt-out, nothing on the loop waits for the job: it is
        deferred (`Lane.defer`) and still runs before any later lane call, so the next gate
        check, claim or fate sees it. An opt-out is awaited: on the ledger before we go on.
        """
        extra = dict(call.extra)
        extra.update(platform_created_at=call.created_at, platform_ended_at=call.ended_at,
                     platform_from=call.from_number)
        status = call.status if call.status != "resuming" else (a.status or "unknown")
        ctx = self.ctx
        now = ctx.clock.now()
        journal = self.journal.sync
        ledger = ctx.gate.ledger
        policy = ctx.policy
        campaign = ctx.campaign.name

        error = None if call.is_terminal else why
        # What the job journals, as far as the fate and the policy ask (the same fields,
        # verbatim; the evidence is the intent's, which no later write changes): no re-read.
        ending = dataclasses.replace(a, state=FINAL, status=status, outcome=call.outcome,
                                     ended_reason=call.ended_reason, error=error)
        fate = attempt_fate(row, ending)
        opted_out = policy.opted_out(ending)

        def record() -> None:
            journal.record_final(
                a.id, status=status, outcome=call.outcome, ended_reason=call.ended_reason,
                ended_at=iso(now), duration_seconds=call.duration_seconds,
                recording_url=call.recording_url, extra=extra, error=error,
                transcript=call.transcript, call_id=call.id,
            )
            journal.set_fates([fate])
            if opted_out and row.phone_e164:
                ledger.add(row.phone_e164, reason="opt_out", campaign=campaign,
                           evidence=call.id, at=now)
                bound.info("opt_out_recorded")

        def work() -> list[Attempt]:
            record()
            return journal.attempts_for(row.person or "")

        self.stats.completed += 1
        ctx.metrics.final(status)
        bound.info("call_final", status=call.status, outcome=call.outcome)
        if not policy.may_redial(ending) and not opted_out:
            ctx.lane.defer(record)
            return
        attempts = await ctx.lane.run(work)
        nxt = policy.next(row, attempts, ctx.clock.now())
        if nxt is not None and not self.state.ending:
            self.state.schedule.push(row, nxt[1])

    async def _from_events(self, call: Call, *, final_only: bool = False) -> Call | None:
        return furthest(await self.journal.webhook_events(call.id), call, final_only=final_only)

    async def _completed_event(self, hook: Receiver, call: Call, quiet: float) -> Call:
        """A final `call.status_changed` may come before its `call.completed` (transcript,
        recording): wait a moment for that one, then finish with what is known."""
        until = time.monotonic() + min(COMPLETED_WAIT_S, quiet)
        while not call.extra.get("_completed_event"):
            waiter = hook.arm(call.id)
            call = await self._from_events(call, final_only=True) or call
            left = until - time.monotonic()
            if call.extra.get("_completed_event") or left <= 0:
                break
            with anyio.move_on_after(left):
                await waiter.wait()
        extra = {k: v for k, v in call.extra.items() if k != "_completed_event"}
        return dataclasses.replace(call, extra=extra)

    async def _next_event(self, hook: Receiver, call: Call, until: float) -> Call | None:
        """Wait until `until` (monotonic) for an event that moves `call` forward."""
        while True:
            waiter = hook.arm(call.id)  # before the read: a later commit still wakes us
            pushed = await self._from_events(call)
            if pushed is not None:
                return pushed
            left = until - time.monotonic()
            if left <= 0:
                return None
            with anyio.move_on_after(left):
                await waiter.wait()
