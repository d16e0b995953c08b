"""One call, from the row off the schedule to a placed call: gate, intent, POST.

- the gate is asked again at the moment of dialing, and again before any re-send of a POST
  that may not have reached the platform;
- the person is claimed in the contact history and the intent (person, attempt, key, body)
  committed, both before the POST is sent; the key is derived from campaign, person and
  attempt, so a retry, a rerun or a crash can only ever replay the same call;
- a live-call slot is held from before the intent until the call is final.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import anyio

from campaign_dialer import vocab
from campaign_dialer.client import (
    AuthError,
    Call,
    DncRejected,
    NotSent,
    RateLimited,
    TransientError,
    VantaxClient,
    VantaxError,
)
from campaign_dialer.compliance import Verdict, max_calls_per_24h, state_for_number
from campaign_dialer.config import CampaignFile
from campaign_dialer.contacts import phone_key
from campaign_dialer.exitcodes import ExitCode
from campaign_dialer.monitor import BUDGET_REACHED
from campaign_dialer.store import (
    INTENT,
    NOT_PLACED,
    Attempt,
    CallerPick,
    Claim,
    DuplicateAttempt,
    Fate,
    LeaseLost,
    LiveLimitReached,
    iso,
)

from .base import RunContext
from .breaker import CAMPAIGN_ERRORS, Breaker
from .fates import attempt_fate
from .follow import Follower
from .keys import idempotency_key, revised_key
from .pacing import backoff
from .rows import Row

# caller_id_reason of a call no pool chose for (the agent's number or the campaign's).
AGENT_DEFAULT = "agent_default"
# A shared campaign at its global live-call cap: the row waits this long, then its turn again.
LIVE_RETRY_S = 0.05
# A POST in flight when the run stops is waited for (see `_send`) at most its timeouts and this.
SEND_MARGIN_S = 5.0


def says_dnc(code: str | None) -> bool:
    """A 409 is Do-Not-Call [seed]; one with another code (not retried, the row is rejected)
    does not put the number on the shared ledger that every later campaign obeys."""
    return code is None or "dnc" in code.lower() or "do_not_call" in code.lower()


def request_body(cfg: CampaignFile, campaign: str, row: Row) -> dict[str, Any]:
    """The POST's body for `row` (the agent, the number the gate checked, the from-number)."""
    body: dict[str, Any] = {"agent_id": cfg.campaign.agent_for(
        campaign, row.person or f"row:{row.row}")}
    # Ring exactly the number the gate checked; a saved contact only when no number is known.
    if row.phone_e164:
        body["phone_number"] = row.phone_e164
    else:
        body["contact_id"] = row.contact_id
    if cfg.campaign.from_phone_number_id:
        body["from_phone_number_id"] = cfg.campaign.from_phone_number_id
    return body


async def _no_wait() -> None:
    return None


@dataclass
class Prepared:
    """What the lane found and did for one row at the moment of dialing."""

    control: str
    verdict: Verdict | None = None
    problem: str | None = None  # an input changed and cannot be read: the run stops (65)
    not_before: datetime | None = None  # a redial not due yet
    attempt_no: int = 0
    attempt: Attempt | None = None  # committed: the POST may go
    claim: Claim | None = None  # refused by the contact history
    restored: int = 0
    known: list[Attempt] = field(default_factory=list)
    duplicate: bool = False
    # Shared campaign (PostgreSQL): at the global live-call cap (wait, retry), or the row's
    # lease went to another process (it is theirs now).
    live_full: bool = False
    lease_lost: bool = False


class Dialer:
    """One row off the schedule to a placed call (then followed by the `Follower`): the gate
    again, the claim in the contact history and the intent, the POST and its retries, the
    breaker. `run_id` is the journal's run the intents belong to; `on_live_wait` is awaited
    now and then while a shared campaign is at its global live-call cap."""

    def __init__(
        self, ctx: RunContext, client: VantaxClient, follower: Follower, *,
        run_id: int | None = None, breaker: Breaker | None = None,
        on_live_wait: Callable[[], Awaitable[None]] = _no_wait,
    ) -> None:
        self.ctx = ctx
        self.client = client
        self.follower = follower
        self.run_id = run_id
        self.breaker = breaker or Breaker(ctx.cfg.api.breaker_threshold)
        self.on_live_wait = on_live_wait
        self.cfg = ctx.cfg
        self.campaign = ctx.campaign
        self.journal = ctx.journal
        self.lane = ctx.lane
        self.gate = ctx.gate
        self.clock = ctx.clock
        self.stats = ctx.stats
        self.state = ctx.state
        self.source = ctx.source
        self.caller_ids = ctx.caller_ids
        self.log = ctx.log

    async def dial(self, row: Row) -> None:
        assert row.person is not None
        state = self.state
        bound = self.log.bind(row=row.row)
        # A shared campaign: wait for room under every process's live calls, holding no
        # slot of this process's (a takeover's resume needs one to free that room).
        await self.source.until_live_room(self.on_live_wait)
        limits = self.ctx.limits
        async with limits.live_slots:
            if not state.may_start_new_call("active"):  # the pause flag: asked in the lane
                state.back_to_schedule(row)
                return
            await limits.calls.acquire()
            now = self.clock.now()
            step = await self.lane.run(self._prepare, row, now, self.client.platform_now())
            if step.problem is not None:
                state.abort(ExitCode.DATAERR, step.problem)
            if step.lease_lost:
                bound.warning("row_lease_lost")
                return
            if step.live_full:
                await anyio.sleep(LIVE_RETRY_S)
                state.back_to_schedule(row)
                return
            verdict = step.verdict
            if verdict is None or (step.attempt is None and not state.may_start_new_call(
                    step.control)):
                state.back_to_schedule(row)
                return
            if verdict.reason == "dnc_list_stale":
                # A national/state list went stale during the run: no call stands on it.
                state.stop_soon(ExitCode.CONFIG, f"{self.campaign.path}: {verdict.detail}")
                return
            if verdict.disposition != vocab.ELIGIBLE:
                await self.defer(row, verdict, bound)
                return
            if step.not_before is not None:
                state.schedule.push(row, step.not_before)
                return
            if step.claim is not None:
                await self._refused(row, step)
                return
            if step.duplicate:
                self.log.error("duplicate_attempt_refused", row=row.row, attempt=step.attempt_no)
            if step.attempt is None:
                return
            bound = bound.bind(attempt=step.attempt_no)
            call = await self.post(step.attempt, row, bound, counted=True)
            if call is not None:
                await self.follower.follow(step.attempt, call, row, bound)

    def _prepare(self, row: Row, now: datetime, platform_at: datetime | None) -> Prepared:
        """In the lane, one call for one row: the pause flag, the gate, the redial policy,
        then the claim in the contact history, the intent and its first POST counted, each
        committed before the POST can be sent (durable, never twice)."""
        assert row.person is not None
        person = row.person
        journal = self.journal.sync
        control = journal.control()
        if control != "active":
            return Prepared(control)
        verdict, problem = self.gate.check_in_lane(row, now)
        step = Prepared(control, verdict, problem)
        if verdict.disposition != vocab.ELIGIBLE or verdict.reason == "dnc_list_stale":
            return step
        attempts = journal.attempts_for(person)
        nxt = self.ctx.policy.next(row, attempts, now)
        if nxt is None:
            return step
        step.attempt_no, not_before = nxt
        if not_before is not None and not_before > now:
            step.not_before = not_before
            return step
        if problem is not None or not self.state.may_start_new_call(control):
            return step  # stopping (a signal, the deadline) since the row was handed out
        existing = next((a for a in attempts if a.attempt == step.attempt_no), None)
        if existing is not None and existing.state != NOT_PLACED:
            return step
        evidence = {**verdict.evidence, "dialed_at": iso(now)}
        if platform_at is not None:  # what crash recovery bounds its lookup by
            evidence["platform_at"] = iso(platform_at)
        base_body = request_body(self.cfg, self.campaign.name, row)

        def finish(pick: CallerPick | None) -> tuple[str, dict[str, Any], dict[str, Any]]:
            """The attempt's key, body and evidence once its caller ID is known."""
            body, ev = dict(base_body), dict(evidence)
            if pick is not None:
                body["from_phone_number_id"] = pick.id
                ev.update(from_phone_number_id=pick.id, from_number=pick.number,
                          caller_id_reason=pick.reason)
            else:
                ev.update(from_phone_number_id=body.get("from_phone_number_id"),
                          caller_id_reason=AGENT_DEFAULT)
            key = idempotency_key(self.campaign.name, person, step.attempt_no)
            if existing is not None:
                key = existing.idem_key
                if body != existing.body:
                    # Fixed since (agent, from-number): nothing was placed under the old key,
                    # and a platform may remember its answer to it, so the corrected body gets
                    # a key of its own, still stable for this person, attempt and request.
                    key = revised_key(key, body)
            return key, body, ev

        made: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
        key, body, evidence = finish(None)
        claim_args = self._claim_args(row, step.attempt_no, key, body, evidence)
        if self.caller_ids is not None:
            def amend(pick: CallerPick) -> tuple[str, dict[str, Any]]:
                made.append(finish(pick))
                k, b, ev = made[-1]
                return k, self._claim_record(row, step.attempt_no, k, b, ev)

            claim_args["caller"] = self.caller_ids.request(row, now, amend)
        history = self.ctx.history
        claim = history.claim(**claim_args)
        if not claim.ok:
            step.claim = claim
            if claim.reason == "already_called":
                step.restored = journal.import_attempts(history.records(self.campaign.name))
                step.known = journal.attempts_for(person)
            return step
        if made:
            key, body, evidence = made[-1]
            claim_args["record"] = self._claim_record(row, step.attempt_no, key, body, evidence)
        try:
            if existing is not None:
                changed = body != existing.body
                journal.reopen(existing.id, body=body if changed else None,
                               idem_key=key if changed else None, evidence=evidence)
                step.attempt = journal.attempt(existing.id)
            else:
                step.attempt = journal.record_intent(
                    person=person, row=row.row, attempt=step.attempt_no,
                    idem_key=key, body=body, evidence=evidence, run_id=self.run_id,
                )
        except DuplicateAttempt:
            step.duplicate = True
            return step
        except (LiveLimitReached, LeaseLost) as e:  # a shared campaign's database refused it
            if isinstance(e, LiveLimitReached):  # at the live-call cap
                step.live_full = True
            else:  # this process's lease on the row is gone
                step.lease_lost = True
            # Nothing was recorded: the history's claim goes back to not placed, so the
            # same attempt is claimed again when it is retried (here or by the row's holder).
            history.sync(self.campaign.name, [{**claim_args["record"], "state": NOT_PLACED}])
            return step
        journal.count_post(step.attempt.id)
        return step

    async def _refused(self, row: Row, step: Prepared) -> None:
        """The contact history refused the claim: say why, and wait (or keep the call)."""
        claim = step.claim
        assert claim is not None
        bound = self.log.bind(row=row.row, attempt=step.attempt_no)
        if claim.reason == "already_called":
            # The history holds this attempt and the journal had lost it: it is restored and
            # the row keeps its call.
            bound.warning("claim_refused_already_called", detail=claim.detail,
                          restored=step.restored)
            if step.known:
                await self.set_fate_from_attempt(row, step.known[-1].id)
            return
        verdict = Verdict(vocab.PENDING, claim.reason, claim.detail, claim.next_open, {})
        await self.defer(row, verdict, bound)

    async def defer(self, row: Row, verdict: Verdict, bound: Any) -> None:
        """Held back at dial time: the row's fate says why, and it waits for its opening."""
        state = self.state
        fate = Fate(row.row, row.person, verdict.disposition, verdict.reason, verdict.detail,
                    iso(verdict.next_open), verdict.evidence)
        state.dial_time_fates[row.row] = fate
        await self.journal.set_fates([fate])
        bound.info("held_back_at_dial_time", reason=verdict.reason, detail=verdict.detail)
        self.ctx.metrics.held(verdict.reason or "")
        if verdict.reason == BUDGET_REACHED:
            state.budget_reached(verdict)
            if state.stopping:
                return
        if verdict.disposition == vocab.PENDING and verdict.next_open is not None:
            state.schedule.push(row, verdict.next_open)

    async def set_fate_from_attempt(self, row: Row, attempt_id: int) -> Attempt:
        """The row's fate from its attempt as now journaled (one hop); the attempt."""
        journal = self.journal.sync

        def work() -> Attempt:
            a = journal.attempt(attempt_id)
            journal.set_fates([attempt_fate(row, a)])
            return a
        return await self.lane.run(work)

    def _claim_args(
        self, row: Row, attempt_no: int, key: str, body: dict[str, Any],
        evidence: dict[str, Any],
    ) -> dict[str, Any]:
        """The claim of the person in the contact history (one transaction), before the intent.

        Refused when another campaign called them within `min_hours_between_calls`, when the
        state's cap is used up by every campaign's calls, when the history already holds
        this attempt, or (with a caller-ID pool) when no number of the pool may call them now.
        """
        assert row.person is not None
        return dict(
            campaign=self.campaign.name, person=row.person, phone_e164=row.phone_e164,
            contact_id=row.contact_id, attempt=attempt_no, idem_key=key,
            record=self._claim_record(row, attempt_no, key, body, evidence),
            at=self.clock.now(), min_hours=self.cfg.history.min_hours_between_calls,
            state_limit=(
                max_calls_per_24h(row.phone_e164, self.gate.rules) if row.phone_e164 else None
            ),
            state=state_for_number(row.phone_e164) if row.phone_e164 else None,
            also=[phone_key(o) for o in row.other_phones if o],
        )

    def _claim_record(
        self, row: Row, attempt_no: int, key: str, body: dict[str, Any],
        evidence: dict[str, Any],
    ) -> dict[str, Any]:
        """The attempt as the history records it with the claim (the journal's shape)."""
        now = iso(self.clock.now())
        return {
            "person": row.person, "row": row.row, "attempt": attempt_no, "idem_key": key,
            "body": json.dumps(body, sort_keys=True), "state": INTENT, "intent_at": now,
            "evidence": json.dumps(evidence), "posts": 0, "updated_at": now,
        }

    async def post(
        self, a: Attempt, row: Row, bound: Any, *, counted: bool = False
    ) -> Call | None:
        """Send the attempt's POST until the platform gives a definite answer.

        `counted`: the first POST was counted with the intent (in the same lane call): a
        fresh or not-placed attempt, so no earlier POST of it can have placed a call. If then
        no try of this one can have either (no connection made, or 429: refused unplaced),
        giving up records it not placed, to be dialed again with the same key, instead of an
        open intent that crash recovery must look up (and that, without the platform's
        time, could take another campaign's old call to this person for it)."""
        tries = 0
        max_tries = self.cfg.api.max_attempts
        soft_tries = 0  # 429 / retryable 409: the platform said "not now", nothing was placed
        maybe_placed = not counted  # a replay: an earlier run's POST may have placed it
        while True:
            if tries or soft_tries:
                verdict, problem = await self.gate.check(row, self.clock.now())
                if problem is not None:
                    self.state.abort(ExitCode.DATAERR, problem)
                if verdict.disposition != vocab.ELIGIBLE:
                    # A re-send may place the call now: not outside the rules. The attempt
                    # stays open and the next run resolves it without ringing anyone again
                    # (or, if no try can have placed it, it is not placed: dialed afresh
                    # when the gate allows).
                    if maybe_placed:
                        await self.journal.note_error(
                            a.id, http_status=None, error_code="deferred",
                            error=f"re-send held back: {verdict.reason}",
                        )
                    else:
                        await self.journal.record_not_placed(
                            a.id, http_status=None, error_code=None,
                            error=f"not placed; re-send held back: {verdict.reason}",
                        )
                    self.stats.deferred += 1
                    return None
            if self.state.stopping and not (tries or soft_tries):
                # The run stopped (a refused key, a signal, a stop of any kind) between the
                # intent and its first POST: nothing was sent by this run.
                if counted:  # a fresh attempt: known not placed, dialed again with its key
                    await self.journal.record_not_placed(
                        a.id, http_status=None, error_code=None,
                        error="not placed: the run stopped before its POST was sent",
                    )
                    await self.set_fate_from_attempt(row, a.id)
                return None  # a replay stays open as it was, for the next run
            if counted:
                counted = False
            else:
                await self.journal.count_post(a.id)
            try:
                call = await self._send(a)
            except AuthError as e:
                await self.journal.record_not_placed(
                    a.id, http_status=e.status, error_code=e.code or "unauthorized",
                    error=e.message,
                )
                self.state.abort(ExitCode.NOPERM, f"the API refused the key ({e.status})")
                return None
            except DncRejected as e:
                self.breaker.reset()  # the request itself was understood
                await self.journal.record_rejected(
                    a.id, http_status=e.status, error_code=e.code, error=e.message
                )
                if row.phone_e164 and says_dnc(e.code):
                    await self.gate.add_dnc(
                        row.phone_e164, reason=e.code or "dnc_listed", campaign=self.campaign.name,
                        evidence=f"409 {e.code or ''} {a.idem_key}".strip(), at=self.clock.now(),
                    )
                self.stats.rejected += 1
                bound.info("rejected_dnc", code=e.code)
                await self.set_fate_from_attempt(row, a.id)
                return None
            except VantaxError as e:
                if not e.retryable:
                    if await self._campaign_error(a, row, e):
                        return None
                    await self.journal.record_error(
                        a.id, http_status=e.status, error_code=e.code, error=e.message
                    )
                    self.stats.errors += 1
                    bound.warning("call_error", status=e.status, code=e.code, error=e.message)
                    await self.set_fate_from_attempt(row, a.id)
                    await self._count_streak(e, a)
                    return None
                await self.journal.note_error(
                    a.id, http_status=e.status, error_code=e.code, error=e.message
                )
                if not isinstance(e, NotSent | RateLimited):
                    maybe_placed = True  # a timeout, a dropped answer, a 5xx, a 409 conflict
                soft = e.status in (409, 429)
                if soft:
                    soft_tries += 1
                else:
                    tries += 1
                if tries >= max_tries or soft_tries >= max_tries * 4 or self.state.stopping:
                    self.stats.unresolved += 1
                    if not maybe_placed:
                        await self.journal.record_not_placed(
                            a.id, http_status=e.status, error_code=None,
                            error=f"not placed: {e.message}",
                        )
                        bound.warning("post_not_placed", tries=tries + soft_tries,
                                      error=e.message)
                    else:
                        bound.warning("post_unresolved", tries=tries + soft_tries,
                                      error=e.message)
                    await self.set_fate_from_attempt(row, a.id)
                    return None
                delay = e.retry_after if e.retry_after is not None else backoff(
                    tries + soft_tries, base=1.0 if soft else 0.5
                )
                bound.info("post_retry", status=e.status, code=e.code, delay_s=round(delay, 3))
                await anyio.sleep(delay)
                continue
            self.journal.record_placed(
                a.id, call_id=call.id, http_status=201, status=call.status,
                placed_at=iso(self.clock.now()),
            )
            self.breaker.reset()
            self.stats.placed += 1
            self.ctx.metrics.placed(str(a.body.get("agent_id")), a.body.get("from_phone_number_id"))
            bound.info("call_placed", call_id=call.id, status=call.status)
            if self.caller_ids is not None:
                self.caller_ids.note_from(a.evidence.get("from_number"), call.from_number,
                                          call_id=call.id)
            return call

    async def _send(self, a: Attempt) -> Call:
        """One POST, shielded from the run's cancellation: a stop while it is in flight (a
        refused key seen by another worker, the end of the grace period, a second signal)
        waits for its answer, so what it did is recorded (a 401 is not placed; a 201 is
        followed by the next run) instead of leaving an intent open that only a lookup can
        settle. The client's own timeout bounds the wait; the deadline here is a backstop."""
        limit = 4 * self.cfg.api.request_timeout_s + SEND_MARGIN_S
        with anyio.CancelScope(shield=True, deadline=anyio.current_time() + limit) as scope:
            return await self.client.place_call(a.body, a.idem_key)
        assert scope.cancelled_caught
        raise TransientError(f"POST /v1/calls: no answer within {limit:g}s")

    async def _campaign_error(self, a: Attempt, row: Row, e: VantaxError) -> bool:
        """An error about the campaign, not the row: stop at once, leave the row pending."""
        key = CAMPAIGN_ERRORS.get(e.code or "")
        if key is None:
            return False
        value = self.cfg.campaign.from_phone_number_id
        if e.code == "phone_number_not_found" and self.caller_ids is not None:
            key, value = "caller_id.numbers", a.body.get("from_phone_number_id")
        elif e.code == "phone_number_not_found" and not value:
            key = "campaign.agent_id"  # the agent's own outbound number is gone
        if key == "campaign.agent_id":
            value = a.body.get("agent_id")
        await self.journal.record_not_placed(
            a.id, http_status=e.status, error_code=e.code, error=e.message
        )
        await self.set_fate_from_attempt(row, a.id)
        self.state.stop_soon(
            ExitCode.CONFIG,
            f"{self.campaign.path}: {key}: the platform does not know {value!r} "
            f"({e.status} {e.code}); fix {key}: rows not dialed stay pending and the fixed "
            "campaign dials them",
        )
        return True

    async def _count_streak(self, e: VantaxError, a: Attempt) -> None:
        """The same non-transient error on N calls in a row is the campaign's, not theirs."""
        ids = self.breaker.count(e, a.id)
        if ids is None:
            return
        for aid in ids:  # refused, so not placed: these rows wait for the fixed campaign
            await self.journal.record_not_placed(
                aid, http_status=e.status, error_code=e.code, error=f"breaker: {e.message}"
            )
            self.stats.errors -= 1
        exit_code = ExitCode.CONFIG if e.status in (400, 404, 422) else ExitCode.UNAVAILABLE
        self.state.stop_soon(
            exit_code,
            f"the platform refused {self.breaker.threshold} calls in a row with "
            f"{self.breaker.code} ({e.message}); check the campaign file {self.campaign.path} "
            "(agent, from-number, request) or the platform; rows not dialed stay pending",
        )
