"""The sandbox's wire: request and reply records, the JSON envelope, bodies in and out, cursors
and request validation (what every route shares)."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from campaign_dialer.sandbox.data import E164

Scope = MutableMapping[str, Any]

Message = MutableMapping[str, Any]

Receive = Callable[[], Awaitable[Message]]

Send = Callable[[Message], Awaitable[None]]

JSON_TYPE = (b"content-type", b"application/json")

HTML_TYPE = (b"content-type", b"text/html; charset=utf-8")

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)



HTML_5XX = {
    500: "500 Internal Server Error",
    502: "502 Bad Gateway",
    503: "503 Service Temporarily Unavailable",
}



_MAX_BODY = 64 * 1024

BROKEN_OFFSET = re.compile(r"(T[\d:.]+) (\d\d:?\d\d)$")



def fingerprint(key: str) -> str:
    """What the audit keeps of a key: enough to tell keys apart, useless to an attacker."""
    return hashlib.sha256(key.encode()).hexdigest()[:12]



def iso_ms(ts: float) -> str:
    ms_total = int(ts * 1000)
    secs, ms = divmod(ms_total, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{ms:03d}Z"



def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()



@dataclass
class Reply:
    """A decided response, kept whole so an idempotent replay can send it again byte for byte."""

    status: int
    body: bytes
    headers: list[tuple[bytes, bytes]]
    error_code: str | None = None
    call_id: str | None = None
    drop: bool = False
    hold: float = 0.0



@dataclass
class IdemRecord:
    body_hash: str
    created: float
    in_flight: bool = True
    reply: Reply | None = None



@dataclass
class Request:
    """One API request as the audit sees it."""

    t: float
    wall: float
    method: str
    path: str
    query: str
    key_fp: str | None
    idem_key: str | None
    body: Any = None
    admitted: bool = False
    faults: list[str] = field(default_factory=list)
    replayed: bool = False
    #: Where a configured key showed up outside the Authorization header (a client bug).
    key_leaks: list[str] = field(default_factory=list)



async def read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size <= _MAX_BODY:
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)



async def send_reply(send: Send, reply: Reply) -> None:
    body = reply.body
    headers = [*reply.headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    if reply.drop:
        # Promise the whole body, send part of it, and return: the server closes the
        # connection mid-body, so the client sees a transport error, not a response.
        await send({"type": "http.response.body", "body": body[: len(body) // 3],
                    "more_body": True})
        return
    await send({"type": "http.response.body", "body": body})



def request_headers(scope: Scope) -> dict[str, str]:
    return {name.decode("latin-1").lower(): value.decode("latin-1")
            for name, value in scope["headers"]}



def error_reply(
    status: int, code: str, message: str, details: dict[str, Any] | None = None
) -> Reply:
    envelope = {
        "success": False,
        "message": message,
        "error": {"code": code, "details": details or {}},
    }
    return Reply(status, dumps(envelope), [JSON_TYPE], error_code=code)



def invalid_reply(fields: dict[str, str]) -> Reply:
    return error_reply(422, "validation_error", "The request is invalid", {"fields": fields})



def validate_call(body: dict[str, Any]) -> dict[str, str]:
    fields: dict[str, str] = {}
    agent_id = body.get("agent_id")
    if agent_id is None or agent_id == "":
        fields["agent_id"] = "is required"
    elif not isinstance(agent_id, str):
        fields["agent_id"] = "must be a string"
    contact_id = body.get("contact_id")
    phone = body.get("phone_number")
    has_contact = contact_id not in (None, "")
    has_phone = phone not in (None, "")
    if has_contact == has_phone:
        problem = "provide contact_id or phone_number, not both" if has_contact else (
            "one of contact_id or phone_number is required"
        )
        fields["contact_id"] = fields["phone_number"] = problem
    elif has_contact and not isinstance(contact_id, str):
        fields["contact_id"] = "must be a string"
    elif has_phone and not (isinstance(phone, str) and E164.match(phone)):
        fields["phone_number"] = "must be E.164: '+' then 8 to 15 digits"
    from_id = body.get("from_phone_number_id")
    if from_id is not None and not (isinstance(from_id, str) and from_id):
        fields["from_phone_number_id"] = "must be a phone number id"
    return fields



def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"seq:{seq}".encode()).decode().rstrip("=")



def decode_cursor(cursor: str) -> int | None:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, _, number = text.partition(":")
        if prefix != "seq":
            return None
        seq = int(number)
    except (ValueError, UnicodeDecodeError):
        return None
    return seq if seq >= 0 else None
