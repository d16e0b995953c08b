"""The read-only routes: the call list (GET /v1/calls, filters and cursors) and the admin
routes under /_sandbox/ (no key, not limited, not audited)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from urllib.parse import parse_qs

from campaign_dialer.sandbox.call import Call
from campaign_dialer.sandbox.wire import (
    BROKEN_OFFSET,
    EPOCH,
    JSON_TYPE,
    Reply,
    Request,
    Scope,
    decode_cursor,
    dumps,
    encode_cursor,
    error_reply,
    invalid_reply,
)


class CallBook(Protocol):
    """What the routes read and ask of the app (SandboxApp is one): its calls, by id, by
    number and by contact, its views and its one write (a number on its DNC list)."""

    calls: list[Call]
    by_id: dict[str, Call]
    by_to: dict[str, list[Call]]
    by_contact: dict[str, list[Call]]

    def maybe_unknown_fields(
        self, req: Request, envelope: dict[str, Any], calls: list[dict[str, Any]]
    ) -> None: ...

    def stats(self) -> dict[str, Any]: ...

    def audit(self) -> dict[str, Any]: ...

    def add_dnc(self, number: str) -> None: ...


def list_calls(app: CallBook, req: Request, scope: Scope) -> Reply:
    """GET /v1/calls: filters, `created_after`, `limit` and the cursor, newest state of each."""
    query = parse_qs(req.query, keep_blank_values=True)
    params = {name: values[-1] for name, values in query.items()}
    fields: dict[str, str] = {}
    limit = 20
    if "limit" in params:
        try:
            limit = int(params["limit"])
        except ValueError:
            limit = 0
        if not 1 <= limit <= 100:
            fields["limit"] = "must be an integer from 1 to 100"
    after_us: int | None = None
    if "created_after" in params:
        try:
            # An unencoded "+00:00" arrives as " 00:00": take it as meant.
            text = BROKEN_OFFSET.sub(r"\1+\2", params["created_after"])
            after = datetime.fromisoformat(text)
            if after.tzinfo is None:
                after = after.replace(tzinfo=UTC)
            after_us = (after - EPOCH) // timedelta(microseconds=1)
        except ValueError:
            fields["created_after"] = "must be an ISO 8601 timestamp"
    start = 0
    if params.get("cursor"):
        decoded = decode_cursor(params["cursor"])
        if decoded is None:
            fields["cursor"] = "is not a cursor returned by this API"
        else:
            start = decoded
    if fields:
        return invalid_reply(fields)
    to = params.get("to") or None
    contact_id = params.get("contact_id") or None
    agent_id = params.get("agent_id") or None
    statuses = set(params["status"].split(",")) if params.get("status") else None
    if to is not None:
        candidates: list[Call] = app.by_to.get(to, [])
    elif contact_id is not None:
        candidates = app.by_contact.get(contact_id, [])
    else:
        candidates = app.calls[start:]
    now = req.t
    page: list[Call] = []
    more = False
    for call in candidates:
        if call.seq < start:
            continue
        if (
            (to is not None and call.to != to)
            or (contact_id is not None and call.contact_id != contact_id)
            or (agent_id is not None and call.agent_id != agent_id)
            or (after_us is not None and call.created_us <= after_us)
            or (statuses is not None and call.status_at(now) not in statuses)
        ):
            continue
        if len(page) == limit:
            more = True
            break
        page.append(call)
    items = [call.to_json(now) for call in page]
    envelope: dict[str, Any] = {
        "success": True,
        "data": items,
        "next_cursor": encode_cursor(page[-1].seq + 1) if more else None,
    }
    app.maybe_unknown_fields(req, envelope, items)
    return Reply(200, dumps(envelope), [JSON_TYPE])


def admin(app: CallBook, method: str, path: str, raw: bytes) -> Reply:
    """/_sandbox/health, audit, dnc and recordings: what tests and the demo ask of the sandbox."""
    if path == "/_sandbox/health" and method == "GET":
        return Reply(200, dumps({"ok": True, **app.stats()}), [JSON_TYPE])
    if path == "/_sandbox/audit" and method == "GET":
        return Reply(200, dumps(app.audit()), [JSON_TYPE])
    if path == "/_sandbox/dnc" and method == "POST":
        try:
            number = json.loads(raw)["phone_number"]
            app.add_dnc(number)
        except (ValueError, KeyError, TypeError):
            return invalid_reply({"phone_number": "must be E.164"})
        return Reply(200, dumps({"success": True, "data": {"phone_number": number}}), [JSON_TYPE])
    if path.startswith("/_sandbox/recordings/") and method == "GET":
        call_id = path.rsplit("/", 1)[-1].removesuffix(".mp3")
        call = app.by_id.get(call_id)
        if call is not None and call.recording_url is not None:
            return Reply(200, b"", [(b"content-type", b"audio/mpeg")])
    return error_reply(404, "not_found", f"No route for {method} {path}")
