"""The simulated Vantax API as a raw ASGI app.

Raw ASGI rather than a framework because two faults need control a framework hides: a
response that promises more bytes than it sends (the dropped connection), and a response held
while its Idempotency-Key stays "in flight". All state lives on the server's event-loop thread;
one lock makes `audit()` and `add_dnc()` safe to call from any other thread.
"""

from __future__ import annotations

import asyncio
import hashlib
import heapq
import json
import math
import os
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from campaign_dialer.sandbox.answer_curve import AnswerClock
from campaign_dialer.sandbox.call import Call
from campaign_dialer.sandbox.config import FAULTS, SandboxConfig
from campaign_dialer.sandbox.data import E164, PhoneNumber, SubAccountData
from campaign_dialer.sandbox.lifecycle import DNC_OUTCOMES, UNKNOWN_STATUSES
from campaign_dialer.sandbox.reputation import Reputation
from campaign_dialer.sandbox.routes import admin, list_calls
from campaign_dialer.sandbox.webhooks import WebhookSender
from campaign_dialer.sandbox.wire import (
    HTML_5XX,
    HTML_TYPE,
    JSON_TYPE,
    IdemRecord,
    Receive,
    Reply,
    Request,
    Scope,
    Send,
    dumps,
    error_reply,
    fingerprint,
    invalid_reply,
    iso_ms,
    read_body,
    request_headers,
    send_reply,
    validate_call,
)


class SandboxApp:
    """ASGI callable holding one simulated sub-account."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        if config.data is not None:
            data = config.data
        elif config.data_file is not None:
            data = SubAccountData.load(config.data_file)
        else:
            data = SubAccountData.generate(config.seed)
        self.data = data
        self.base_url = ""
        self._lock = threading.Lock()
        self._keys = frozenset(config.api_keys)
        self._revoked = False  # `revoke_keys`: every key refused from then on
        self._dnc: set[str] = set(data.dnc)
        self._pending_dnc: list[tuple[float, str]] = []
        self.calls: list[Call] = []
        self.by_id: dict[str, Call] = {}
        self.by_to: dict[str, list[Call]] = {}
        self.by_contact: dict[str, list[Call]] = {}
        self._live: list[tuple[float, int]] = []
        self.peak_live = 0
        rps = config.requests_per_second
        if rps is None or math.isinf(rps):
            self._capacity: int | None = None
            self._period = 1.0
        else:
            self._capacity = max(1, int(rps))
            self._period = max(1.0, self._capacity / rps)
        self._window: deque[float] = deque()
        self._idem: dict[str, IdemRecord] = {}
        self._requests: list[dict[str, Any]] = []
        fault_seed = config.seed if config.fault_seed is None else config.fault_seed
        self._fault_rng = {name: random.Random(f"fault:{fault_seed}:{name}") for name in FAULTS}
        self._rng = random.Random(f"misc:{config.seed}")
        self._started = time.monotonic()
        self.reputation = Reputation(config, self._started, time.time())
        self.answers = AnswerClock.of(config, self._started)
        self._stopping: asyncio.Event | None = None
        self.webhooks: Any = None  # WebhookSender, set by startup()

    # ---- lifecycle of the app itself -------------------------------------------------------

    async def startup(self) -> None:
        self._stopping = asyncio.Event()
        if self.config.webhook_url:
            self.webhooks = WebhookSender(self.config, self._fault_rng, self._lock)
            self.webhooks.start()

    def begin_stop(self) -> None:
        """Wake held responses so shutdown does not wait out a `slow` fault."""
        if self._stopping is not None:
            self._stopping.set()

    async def shutdown(self) -> None:
        self.begin_stop()
        if self.webhooks is not None:
            await self.webhooks.stop()

    # ---- thread-safe views -----------------------------------------------------------------

    def audit(self) -> dict[str, Any]:
        with self._lock:
            now = time.monotonic()
            self._advance(now)
            return {
                "requests": [dict(r) for r in self._requests],
                "calls": [c.audit(now) for c in self.calls],
                "webhooks": [] if self.webhooks is None else self.webhooks.audit(),
                "stats": self._stats(now),
                "flags": [dict(f, detail=dict(f["detail"])) for f in self.reputation.flags],
            }

    def set_webhook_secret(self, secret: str) -> None:
        """Rotate the webhook signing secret mid-run (thread-safe)."""
        if self.webhooks is None:
            raise ValueError("this sandbox sends no webhooks (no webhook_url)")
        self.webhooks.set_secret(secret)

    def revoke_keys(self) -> None:
        """Refuse every key from now on (401), as a key revoked or rotated away mid-run is;
        POSTs already in flight are still decided (thread-safe)."""
        with self._lock:
            self._revoked = True

    def add_dnc(self, number: str) -> None:
        if not E164.match(number):
            raise ValueError("DNC numbers must be E.164")
        with self._lock:
            self._dnc.add(number)

    def stats(self) -> dict[str, Any]:
        with self._lock:
            now = time.monotonic()
            self._advance(now)
            return self._stats(now)

    def _stats(self, now: float) -> dict[str, Any]:
        cfg = self.config
        return {
            "requests": len(self._requests),
            "calls": len(self.calls),
            "live_calls": len(self._live),
            "peak_live_calls": self.peak_live,
            "max_live_calls": cfg.max_live_calls,
            "requests_per_second": cfg.requests_per_second,
            "seed": cfg.seed,
            "time_scale": cfg.time_scale,
            "faults": dict(cfg.faults),
            "dnc_size": len(self._dnc),
            "idempotency_keys": len(self._idem),
            "idempotency_in_flight": sum(r.in_flight for r in self._idem.values()),
            "uptime_seconds": round(now - self._started, 3),
            "reputation": self.reputation.settings(),
            "flagged_numbers": self.reputation.flagged_now(now),
        }

    def _advance(self, now: float) -> None:
        """Retire calls that have ended by `now`; honour opt-outs made in them."""
        self.reputation.advance(now)
        live = self._live
        while live and live[0][0] <= now:
            heapq.heappop(live)
        pending = self._pending_dnc
        while pending and pending[0][0] <= now:
            self._dnc.add(heapq.heappop(pending)[1])

    # ---- ASGI ------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        method: str = scope["method"]
        body = await read_body(receive)
        if path.startswith("/_sandbox/"):
            reply = self._admin(method, path, body)
        elif path == "/v1/calls" and method == "POST":
            reply = await self._post_call(scope, body)
        elif path == "/v1/calls" and method == "GET":
            reply = self._simple(scope, self._list_calls)
        elif path.startswith("/v1/calls/") and method == "GET":
            reply = self._simple(scope, self._get_call)
        else:
            allowed = path == "/v1/calls" or path.startswith("/v1/calls/")
            reply = self._simple(scope, self._method_not_allowed if allowed else self._not_found)
        await send_reply(send, reply)

    # ---- shared steps ----------------------------------------------------------------------

    def _new_request(self, scope: Scope, t: float) -> tuple[Request, dict[str, str], str]:
        headers = request_headers(scope)
        auth = headers.get("authorization", "")
        key = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
        req = Request(
            t=t,
            wall=time.time(),
            method=scope["method"],
            path=scope["path"],
            query=scope.get("query_string", b"").decode("latin-1"),
            key_fp=(fingerprint(key) if key else None),
            idem_key=headers.get("idempotency-key"),
        )
        places = {name: value for name, value in headers.items() if name != "authorization"}
        places["path"], places["query"] = req.path, req.query
        req.key_leaks = [where for where, text in places.items() if self._has_key(text)]
        return req, headers, key

    def _has_key(self, text: str) -> bool:
        return any(k in text for k in self._keys)

    def _scrub(self, text: str) -> str:
        for k in self._keys:
            text = text.replace(k, "[REDACTED]")
        return text

    def _gate(self, req: Request, key: str) -> Reply | None:
        """Authentication, then the request-rate limit. Caller holds the lock."""
        if self._revoked or key not in self._keys:
            return error_reply(401, "unauthorized", "Missing or invalid API key")
        wait = self._admit(req.t)
        if wait is not None:
            return self._too_many("rate_limited", "Request rate limit exceeded", wait)
        if self._fires("spurious_429"):
            if self._capacity is not None:
                self._window.pop()  # un-admit: a spurious 429 takes no slot
            req.faults.append("spurious_429")
            wait = 0.05 + 0.45 * self._rng.random()
            return self._too_many("rate_limited", "Request rate limit exceeded", wait)
        req.admitted = True
        return None

    def _admit(self, t: float) -> float | None:
        """Sliding window: admit unless `capacity` requests were admitted in the last period."""
        if self._capacity is None:
            return None
        window = self._window
        cutoff = t - self._period
        while window and window[0] <= cutoff:
            window.popleft()
        if len(window) < self._capacity:
            window.append(t)
            return None
        return window[0] + self._period - t

    def _fires(self, fault: str) -> bool:
        rate = self.config.faults.get(fault, 0.0)
        return rate > 0.0 and self._fault_rng[fault].random() < rate

    def _too_many(self, code: str, message: str, wait: float) -> Reply:
        reply = error_reply(429, code, message)
        header = self._retry_after(wait)
        if header is not None:
            reply.headers.append((b"retry-after", header))
        return reply

    def _retry_after(self, wait: float) -> bytes | None:
        mode = self.config.retry_after
        if mode == "mixed":
            mode = self._rng.choice(("fractional", "integer", "absent"))
        if mode == "absent":
            return None
        wait = max(wait, 0.001)
        if mode == "integer":
            return str(max(1, math.ceil(wait))).encode()
        return f"{wait:.3f}".encode()

    def _record(self, req: Request, reply: Reply) -> None:
        """Append to the audit. Caller holds the lock."""
        path, query, idem_key, body = req.path, req.query, req.idem_key, req.body
        if req.key_leaks:  # the audit must never hold a key, even one a client misplaced
            path, query = self._scrub(path), self._scrub(query)
            idem_key = None if idem_key is None else self._scrub(idem_key)
            if "body" in req.key_leaks:
                body = json.loads(self._scrub(json.dumps(body)))
        self._requests.append({
            "seq": len(self._requests),
            "mono": req.t,
            "wall": iso_ms(req.wall),
            "method": req.method,
            "path": path,
            "query": query,
            "key_fingerprint": req.key_fp,
            "idempotency_key": idem_key,
            "body": body,
            "status": reply.status,
            "error_code": reply.error_code,
            "faults": req.faults,
            "admitted": req.admitted,
            "replayed": req.replayed,
            "call_id": reply.call_id,
            "key_leaks": req.key_leaks,
        })

    def _server_error(self, req: Request, fault: str, html: bool) -> Reply:
        status = self._fault_rng[fault].choice((500, 502, 503))
        req.faults.append(fault)
        if html:
            title = HTML_5XX[status]
            body = f"<html><head><title>{title}</title></head><body><center><h1>{title}</h1>" \
                   f"</center><hr><center>nginx</center></body></html>\n".encode()
            reply = Reply(status, body, [HTML_TYPE], error_code=None)
        else:
            codes = {500: "internal_error", 502: "bad_gateway", 503: "service_unavailable"}
            reply = error_reply(status, codes[status], "Transient server error, please retry")
        if status == 503 and self._rng.random() < 0.5:
            header = self._retry_after(0.2 + self._rng.random())
            if header is not None:
                reply.headers.append((b"retry-after", header))
        return reply

    def _simple(self, scope: Scope, handler: Callable[[Request, Scope], Reply]) -> Reply:
        """Requests decided in one step under the lock (everything but POST /v1/calls)."""
        with self._lock:
            req, _, key = self._new_request(scope, time.monotonic())
            reply = self._gate(req, key)
            if reply is None:
                reply = handler(req, scope)
            self._record(req, reply)
            return reply

    # ---- POST /v1/calls --------------------------------------------------------------------

    async def _post_call(self, scope: Scope, raw: bytes) -> Reply:
        with self._lock:
            req, headers, key = self._new_request(scope, time.monotonic())
            reply, body, body_hash = self._post_precheck(req, headers, key, raw)
            if reply is not None:
                self._record(req, reply)
                return reply
            latency = self.config.post_latency
            if latency > 0 and req.idem_key is not None:
                self._idem[req.idem_key] = IdemRecord(body_hash, created=req.t)
        if latency > 0:
            try:
                await self._sleep(latency)
            except BaseException:
                with self._lock:
                    if req.idem_key is not None:
                        self._idem.pop(req.idem_key, None)
                raise
        with self._lock:
            reply = self._post_decide(req, body, body_hash)
            self._record(req, reply)
        if reply.hold:
            # The `slow` fault: the call is placed, the answer comes late, and until it
            # does the Idempotency-Key is in flight (a retry gets idempotency_conflict).
            try:
                await self._sleep(reply.hold)
            finally:
                with self._lock:
                    record = self._idem.get(req.idem_key or "")
                    if record is not None and record.reply is reply:
                        record.in_flight = False
        return reply

    def _post_precheck(
        self, req: Request, headers: dict[str, str], key: str, raw: bytes
    ) -> tuple[Reply | None, dict[str, Any], str]:
        """Everything decided before the request is "in flight": auth, limits, body, replay."""
        reply = self._gate(req, key)
        if reply is not None:
            return reply, {}, ""
        if self._fires("server_error"):
            return self._server_error(req, "server_error", html=True), {}, ""
        ctype = headers.get("content-type", "")
        if ctype.split(";")[0].strip().lower() != "application/json":
            return invalid_reply({"content-type": "must be application/json"}), {}, ""
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return invalid_reply({"body": "must be a JSON object"}), {}, ""
        if not isinstance(body, dict):
            return invalid_reply({"body": "must be a JSON object"}), {}, ""
        req.body = body
        if self._has_key(raw.decode("utf-8", "replace")):
            req.key_leaks.append("body")
        body_hash = hashlib.sha256(
            json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
        ).hexdigest()
        idem_key = req.idem_key
        if idem_key is None:
            return None, body, body_hash
        if not 1 <= len(idem_key) <= 255:
            return invalid_reply({"Idempotency-Key": "must be 1 to 255 characters"}), {}, ""
        record = self._idem.get(idem_key)
        if record is not None and req.t - record.created > self.config.idempotency_ttl:
            del self._idem[idem_key]
            record = None
        if record is None:
            return None, body, body_hash
        if record.body_hash != body_hash:
            return error_reply(
                422, "idempotency_mismatch",
                "Idempotency-Key was already used with a different request body",
            ), {}, ""
        if record.in_flight or record.reply is None:
            return error_reply(
                409, "idempotency_conflict",
                "A request with this Idempotency-Key is still being processed",
            ), {}, ""
        req.replayed = True
        original = record.reply
        return Reply(
            original.status, original.body,
            [*original.headers, (b"idempotent-replayed", b"true")],
            error_code=original.error_code, call_id=original.call_id,
        ), {}, ""

    def _post_decide(self, req: Request, body: dict[str, Any], body_hash: str) -> Reply:
        """Validate, look up, check consent and limits, place. Caller holds the lock."""
        reply = self._post_place(req, body)
        idem_key = req.idem_key
        if idem_key is not None:
            if reply.status == 201:
                self._idem[idem_key] = IdemRecord(
                    body_hash, created=req.t, in_flight=reply.hold > 0, reply=reply
                )
            else:
                # Only a placed call is remembered: a refused request may be retried as is.
                self._idem.pop(idem_key, None)
        return reply

    def _post_place(self, req: Request, body: dict[str, Any]) -> Reply:
        fields = validate_call(body)
        if fields:
            return invalid_reply(fields)
        data = self.data
        agent = data.agents.get(body["agent_id"])
        if agent is None:
            return error_reply(404, "agent_not_found", f"Agent {body['agent_id']} not found")
        contact_id = body.get("contact_id") or None
        if contact_id is not None:
            contact = data.contacts.get(contact_id)
            if contact is None:
                return error_reply(404, "contact_not_found", f"Contact {contact_id} not found")
            to = contact.phone_number
        else:
            to = body["phone_number"]
        from_id = body.get("from_phone_number_id") or agent.outbound_phone_number_id
        asked = data.phone_numbers.get(from_id)
        if asked is None:
            return error_reply(404, "phone_number_not_found", f"Phone number {from_id} not found")
        now = time.monotonic()
        self._advance(now)
        if to in self._dnc:
            return error_reply(
                409, "dnc_listed", "The number is on the sub-account's Do-Not-Call list",
                {"contact_id": contact_id} if contact_id else {},
            )
        for other in self.by_to.get(to, ()):
            if other.end > now:
                return error_reply(
                    409, "call_in_progress", "This contact is already on a live call",
                    {"call_id": other.id},
                )
        limit = self.config.max_live_calls
        if limit is not None and len(self._live) >= limit:
            return self._too_many(
                "concurrency_limited", "Too many live calls", self._live[0][0] - now
            )
        return self._place(req, agent.id, contact_id, asked, to, now)

    def _place(
        self, req: Request, agent_id: str, contact_id: str | None, asked: PhoneNumber, to: str,
        now: float,
    ) -> Reply:
        cfg = self.config
        call_faults: list[str] = []
        unknown = None
        if self._fires("unknown_status"):
            unknown = self._fault_rng["unknown_status"].choice(UNKNOWN_STATUSES)
            call_faults.append("unknown_status")
        used = asked
        others = sorted(n for n in self.data.phone_numbers if n != asked.id)
        if others and self._fires("from_substitute"):
            used = self.data.phone_numbers[self._fault_rng["from_substitute"].choice(others)]
            req.faults.append("from_substitute")
            call_faults.append("from_substitute")
        seq = len(self.calls)
        plan, caller = self.reputation.plan(
            now, seq, used.id, used.number, to, len(self.by_to.get(to, ())), unknown)
        if self.answers is not None and not caller["declined"]:
            plan, caller["answer_curve"] = self.answers.apply(
                plan, cfg, to, len(self.by_to.get(to, ())), now, unknown)
        caller.update(from_phone_number_id=asked.id, from_phone_number_id_used=used.id,
                      from_substituted=used is not asked)
        call = Call(
            seq=seq, call_id="call_" + os.urandom(8).hex(),
            sub_account_id=self.data.sub_account_id, agent_id=agent_id, contact_id=contact_id,
            from_number=used.number, to=to, placed=now, wall=time.time(), plan=plan,
            time_scale=cfg.time_scale, faults=call_faults,
            idem_key=None if req.idem_key is None else self._scrub(req.idem_key),
            base_url=self.base_url, caller=caller,
        )
        self.calls.append(call)
        self.by_id[call.id] = call
        self.by_to.setdefault(to, []).append(call)
        if contact_id is not None:
            self.by_contact.setdefault(contact_id, []).append(call)
        heapq.heappush(self._live, (call.end, call.seq))
        self.peak_live = max(self.peak_live, len(self._live))
        if cfg.dnc_on_opt_out and plan.outcome in DNC_OUTCOMES:
            heapq.heappush(self._pending_dnc, (call.end, to))
        if self.webhooks is not None:
            self._schedule_webhooks(call)
        data = call.to_json(now)
        envelope = {"success": True, "message": "Outbound call initiated", "data": data}
        self.maybe_unknown_fields(req, envelope, [data])
        reply = Reply(201, dumps(envelope), [JSON_TYPE], call_id=call.id)
        if self._fires("drop_after_place"):
            req.faults.append("drop_after_place")
            call_faults.append("drop_after_place")
            reply.drop = True
        elif self._fires("slow"):
            req.faults.append("slow")
            call_faults.append("slow")
            reply.hold = cfg.slow_seconds
        return reply

    async def _sleep(self, seconds: float) -> None:
        """Sleep, but wake at shutdown."""
        stopping = self._stopping
        if stopping is None:
            await asyncio.sleep(seconds)
            return
        try:
            await asyncio.wait_for(stopping.wait(), timeout=seconds)
        except TimeoutError:
            pass


    def maybe_unknown_fields(
        self, req: Request, envelope: dict[str, Any], calls: list[dict[str, Any]]
    ) -> None:
        if not self._fires("unknown_fields"):
            return
        req.faults.append("unknown_fields")
        envelope["request_id"] = "req_" + os.urandom(6).hex()
        envelope["meta"] = {"api_version": "2026-06-01", "region": "us-west-2"}
        for call in calls:
            call["cost"] = {"amount_cents": 7, "currency": "usd"}
            call["labels"] = ["sandbox"]
            call["answered_by"] = "human" if call.get("started_at") else None

    # ---- GET /v1/calls/{id} and GET /v1/calls ----------------------------------------------

    def _get_call(self, req: Request, scope: Scope) -> Reply:
        if self._fires("get_error"):
            return self._server_error(req, "get_error", html=self._rng.random() < 0.5)
        call_id = req.path[len("/v1/calls/"):]
        call = self.by_id.get(call_id)
        if call is None:
            return error_reply(404, "call_not_found", f"Call {call_id} not found")
        data = call.to_json(req.t)
        envelope = {"success": True, "data": data}
        self.maybe_unknown_fields(req, envelope, [data])
        return Reply(200, dumps(envelope), [JSON_TYPE], call_id=call.id)

    def _list_calls(self, req: Request, scope: Scope) -> Reply:
        return list_calls(self, req, scope)

    def _not_found(self, req: Request, scope: Scope) -> Reply:
        return error_reply(404, "not_found", f"No route for {req.method} {req.path}")

    def _method_not_allowed(self, req: Request, scope: Scope) -> Reply:
        return error_reply(405, "method_not_allowed", f"{req.method} is not allowed on {req.path}")

    # ---- webhooks --------------------------------------------------------------------------

    def _schedule_webhooks(self, call: Call) -> None:
        loop = asyncio.get_running_loop()  # asyncio's loop clock is time.monotonic()
        last = len(call.phases) - 1
        for index, (_status, begins) in enumerate(call.phases):
            loop.call_at(begins, self._emit, call, begins, index == last)

    def _emit(self, call: Call, at: float, final: bool) -> None:
        data = call.to_json(at)
        self.webhooks.enqueue("call.status_changed", data)
        if final:
            self.webhooks.enqueue("call.completed", data)

    # ---- admin routes (no key, not limited, not audited) -----------------------------------

    def _admin(self, method: str, path: str, raw: bytes) -> Reply:
        return admin(self, method, path, raw)
