"""The Vantax API as the dialer sees it.

Every [assumed] point of the contract lives here and nowhere else: status codes, error codes,
the envelope, Retry-After, terminal statuses. Whatever the real service does differently is
tolerated and recorded (unknown fields, codes, statuses), never a crash. The client knows the
API and nothing of the journal; retry policy belongs to the engine.
"""

from __future__ import annotations

import email.utils
import json
import time
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx

from campaign_dialer.config import is_loopback_host
from campaign_dialer.errors import DialerError
from campaign_dialer.exitcodes import ExitCode
from campaign_dialer.vocab import KNOWN_STATUSES, TERMINAL_STATUSES
from campaign_dialer.wire import ConnectFailed, Reply, Wire, WireBroken, WireTimeout

# [seed] initiated -> ringing -> in_progress -> completed; [assumed] other terminal statuses
# (vocab.py holds them: results.csv writes a dialed row's final status as its reason).
MAX_RETRY_AFTER_S = 120.0
# A lookup lists one person's calls from one agent: this many pages is a platform that pages
# forever (fresh cursors, empty pages), not an answer.
MAX_LIST_PAGES = 200
RETRYABLE_409_CODES = frozenset({"call_in_progress", "idempotency_conflict"})
CALL_FIELDS = (
    "id", "sub_account_id", "agent_id", "contact_id", "direction", "status", "from", "to",
    "created_at", "started_at", "ended_at", "duration_seconds", "outcome", "ended_reason",
    "transcript", "recording_url",
)


class VantaxError(DialerError):
    """Base of the client's errors. Never carries the API key or request headers.

    The engine decides per call what an error means (retry, a row's fate, stop the run); the
    exit code here is what the run ends with should one ever escape it.
    """

    retryable = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        details: Mapping[str, Any] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.details = dict(details or {})
        self.retry_after = retry_after

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status!r}, code={self.code!r}, "
            f"message={self.message!r})"
        )


class AuthError(VantaxError):
    """401/403: the key is wrong or not allowed; the whole run must stop."""

    exit_code = ExitCode.NOPERM


class DncRejected(VantaxError):
    """409 dnc_listed: the platform's Do-Not-Call list holds this contact."""


class Conflict(VantaxError):
    """Another 409 (call_in_progress, idempotency_conflict): try the same request later."""

    retryable = True
    exit_code = ExitCode.UNAVAILABLE


class ValidationFailed(VantaxError):
    """422: the request is wrong; retrying it cannot help."""

    exit_code = ExitCode.CONFIG  # the campaign's agent/number/fields: fix the file


class NotFound(VantaxError):
    """404: unknown agent, contact, from-number or call."""

    exit_code = ExitCode.CONFIG


class RateLimited(VantaxError):
    """429: slow down and retry after Retry-After (or a backoff when it is absent)."""

    retryable = True
    exit_code = ExitCode.UNAVAILABLE


class TransientError(VantaxError):
    """5xx, timeouts, dropped connections: retry with the SAME idempotency key."""

    retryable = True
    exit_code = ExitCode.UNAVAILABLE


class NotSent(TransientError):
    """No connection could be made (refused, a failed TLS handshake, a connect timeout, no
    free connection in the pool): the request never left, so it placed nothing."""


class UnexpectedResponse(VantaxError):
    """A status the contract does not describe; recorded, treated as not retryable."""

    exit_code = ExitCode.UNAVAILABLE  # as the engine ends a run on a streak of them


@dataclass(frozen=True)
class Call:
    """A CALL object; fields the contract does not name are kept in `extra`."""

    id: str
    status: str
    to: str | None = None
    contact_id: str | None = None
    agent_id: str | None = None
    created_at: str | None = None
    started_at: str | None = None
    ended_at: str | None = None
    duration_seconds: float | None = None
    outcome: str | None = None
    ended_reason: str | None = None
    transcript: str | None = None
    recording_url: str | None = None
    from_number: str | None = None  # the CALL's `from`: the number the platform called from
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def status_known(self) -> bool:
        return self.status in KNOWN_STATUSES

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Call:
        if not isinstance(data, Mapping):
            raise UnexpectedResponse("CALL object is not an object")
        call_id = _call_id(data.get("id"))
        if call_id is None:
            raise UnexpectedResponse("CALL object without an id")
        dur = data.get("duration_seconds")
        try:
            duration = float(dur) if dur is not None else None
        except (TypeError, ValueError):
            duration = None
        return cls(
            id=call_id,
            status=str(data.get("status") or "unknown"),
            to=_str(data.get("to")),
            contact_id=_str(data.get("contact_id")),
            agent_id=_str(data.get("agent_id")),
            created_at=_str(data.get("created_at")),
            started_at=_str(data.get("started_at")),
            ended_at=_str(data.get("ended_at")),
            duration_seconds=duration,
            outcome=_str(data.get("outcome")),
            ended_reason=_str(data.get("ended_reason")),
            transcript=_str(data.get("transcript")),
            recording_url=_str(data.get("recording_url")),
            from_number=_str(data.get("from")),
            extra={k: v for k, v in data.items() if k not in CALL_FIELDS},
        )


def _call_id(v: Any) -> str | None:
    """The contract's ids are strings (`call_...`); a platform that sends a number still
    placed a call, and that call must be followed, so a whole number is read as its digits."""
    if isinstance(v, str) and v:
        return v
    if isinstance(v, int) and not isinstance(v, bool):
        return str(v)
    return None


def _str(v: Any) -> str | None:
    """A text field; a structured value (a transcript as a list of turns) is kept as JSON,
    never as a Python repr."""
    if v is None:
        return None
    if isinstance(v, (dict, list)):
        return json.dumps(v, ensure_ascii=False)
    return str(v)


def parse_retry_after(
    value: str | None, *, now: float | None = None, date: str | None = None
) -> float | None:
    """Delta-seconds (possibly fractional) or an HTTP-date, capped; None when absent or junk.

    An HTTP-date is read against the response's own `Date` header when it has one (RFC 9110):
    the platform's two times agree with each other even when our clock does not."""
    if value is None:
        return None
    value = value.strip()
    try:
        secs = float(value)
    except ValueError:
        try:
            dt = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        base = _http_date(date)
        if base is None:
            base = now if now is not None else time.time()
        secs = dt.timestamp() - base
    if secs != secs:  # NaN
        return None
    return min(max(secs, 0.0), MAX_RETRY_AFTER_S)


def _http_date(value: str | None) -> float | None:
    if not value:
        return None
    try:
        dt = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()


@dataclass(frozen=True)
class Exchange:
    """What one HTTP exchange looked like, for telemetry (never headers, never the key)."""

    method: str
    path: str
    status: int | None
    code: str | None
    latency_s: float
    error: str | None = None


Pacer = Callable[[str], Awaitable[None]]
Observer = Callable[[Exchange], None]


async def _no_pacing(_method: str) -> None:
    return None


class VantaxClient:
    """The three calls the dialer needs, over `wire.Wire` or one httpx.AsyncClient.

    Requests go over the wire (a tenth of httpx's CPU per request) unless httpx is needed:
    a test's injected `transport=httpx.MockTransport(...)`, or a proxy from the environment
    for a non-loopback base URL. Either way the same answers make the same errors.
    `pacer` is awaited before every request (POST and GET share the platform's limit);
    `observer` sees every exchange.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout_s: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        pacer: Pacer | None = None,
        observer: Observer | None = None,
        max_connections: int = 100,
    ) -> None:
        if not api_key:
            raise AuthError("no API key given")
        self._pacer = pacer or _no_pacing
        self._hide_key = _KeyHider(api_key)
        self._observer = observer
        headers = {
            "Authorization": f"Bearer {api_key}",
            "User-Agent": "campaign-dialer/0.1",
            "Accept": "application/json",
        }
        # A proxy from the environment must never see loopback sandbox traffic.
        trust_env = not is_loopback_url(base_url)
        self._http = httpx.AsyncClient(
            base_url=base_url,
            headers=headers,
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 5.0)),
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            transport=transport,
            follow_redirects=False,
            trust_env=trust_env,
        )
        self._wire: Wire | None = None
        if transport is None and not (trust_env and _env_proxies()):
            self._wire = Wire(
                base_url, headers, timeout_s=timeout_s, connect_timeout_s=min(timeout_s, 5.0),
                max_connections=max_connections,
                ssl_context=httpx.create_ssl_context(trust_env=trust_env)
                if base_url.startswith("https:") else None,
            )
        self._date_text: str | None = None  # the last `Date` header read, and its time
        self._date_at: datetime | None = None

        # The platform's clock as last told by a `Date` header: (its time, our monotonic
        # time on receipt). Crash recovery bounds its lookups by it, never by our own clock.
        self._platform: tuple[datetime, float] | None = None

    def __repr__(self) -> str:
        return f"VantaxClient(base_url={str(self._http.base_url)!r})"

    def platform_now(self) -> datetime | None:
        """The platform's current time, from its last `Date` header; None before one is seen."""
        if self._platform is None:
            return None
        at, mono = self._platform
        return at + timedelta(seconds=time.monotonic() - mono)

    async def probe(self) -> datetime | None:
        """One cheap request (the first page of one call) to learn the platform's clock."""
        # Not paced: one request before the first call must not delay the calls' schedule.
        await self._request("GET", "/v1/calls", params={"limit": 1}, paced=False)
        return self.platform_now()

    async def __aenter__(self) -> VantaxClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._wire is not None:
            await self._wire.aclose()
        await self._http.aclose()

    async def place_call(self, body: Mapping[str, Any], idempotency_key: str) -> Call:
        """POST /v1/calls. The same key and body always mean the same call."""
        data = await self._request(
            "POST", "/v1/calls", json=dict(body), headers={"Idempotency-Key": idempotency_key}
        )
        try:
            return Call.from_json(data.get("data") or {})
        except UnexpectedResponse:
            # Accepted, but no call id to follow: the call may exist, so the same key is sent
            # again (it answers the original), never taken as "not placed".
            raise TransientError("POST /v1/calls: 2xx without a call id") from None

    async def get_call(self, call_id: str) -> Call:
        data = await self._request("GET", f"/v1/calls/{call_id}")
        return Call.from_json(data.get("data") or {})

    async def list_calls(self, **filters: str | int | None) -> AsyncIterator[Call]:
        """GET /v1/calls, following the cursor to the end."""
        params = {k: v for k, v in filters.items() if v is not None}
        params.setdefault("limit", 100)
        seen: set[str] = set()
        while True:
            data = await self._request("GET", "/v1/calls", params=params)
            items = data.get("data")
            if not isinstance(items, list):
                # A list we cannot find is no answer: "no call" would let crash recovery
                # re-send a POST that may already have rung the person.
                raise UnexpectedResponse(
                    "GET /v1/calls: 200 without a list of calls in `data`", status=200
                )
            for item in items:
                try:
                    call = Call.from_json(item)
                except UnexpectedResponse:
                    # This one may be the call looked for: the answer cannot say "none".
                    raise UnexpectedResponse(
                        "GET /v1/calls: a listed call without an id", status=200
                    ) from None
                yield call
            cursor = data.get("next_cursor")
            if not cursor:
                return
            if str(cursor) in seen:  # a cursor that comes back would page forever
                raise UnexpectedResponse(
                    "GET /v1/calls: next_cursor repeats an earlier page", status=200
                )
            if len(seen) + 1 >= MAX_LIST_PAGES:  # so would one that never ends
                raise UnexpectedResponse(
                    f"GET /v1/calls: more than {MAX_LIST_PAGES} pages", status=200
                )
            seen.add(str(cursor))
            params = {**params, "cursor": cursor}

    async def _request(
        self, method: str, path: str, *, paced: bool = True, **kwargs: Any
    ) -> dict[str, Any]:
        if paced:
            await self._pacer(method)
        started = time.monotonic()
        label = "/v1/calls/{id}" if path.startswith("/v1/calls/") else path
        resp: httpx.Response | Reply
        if self._wire is not None:
            resp = await self._over_wire(method, path, label, started, **kwargs)
        else:
            resp = await self._over_httpx(method, path, label, started, **kwargs)
        self._note_date(resp.headers.get("Date"))
        body = _json_or_none(resp)
        code, message, details = error_envelope(body)
        # A platform or proxy may quote our Authorization header back: never carry it on.
        message, details = self._hide_key(message), self._hide_key(details)
        self._observe(method, label, resp.status_code, code, started, None)
        if resp.is_success:
            if not isinstance(body, dict):
                # A 2xx we cannot read: for a POST the call may exist, so it is retried
                # with the same key (which answers the original) rather than trusted.
                raise TransientError(f"{method} {label}: {resp.status_code} with unreadable body")
            return body
        raise error_for(resp, method, label, code, message, details)

    async def _over_wire(
        self, method: str, path: str, label: str, started: float, *,
        json: Any = None, params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        assert self._wire is not None
        target = f"{path}?{urlencode(params)}" if params else path
        content = None
        if json is not None:
            content = _json_body(json)
            headers = {**(headers or {}), "Content-Type": "application/json"}
        try:
            return await self._wire.request(method, target, body=content, headers=headers)
        except ConnectFailed as e:
            # Before a byte of the request was written: the engine may know a POST placed
            # nothing (NotSent), where a timeout or a dropped answer leaves it in doubt.
            self._observe(method, label, None, None, started, e.kind)
            raise NotSent(f"{method} {label}: could not connect ({e.kind})") from None
        except WireTimeout as e:
            self._observe(method, label, None, None, started, e.kind)
            raise TransientError(f"{method} {label}: timed out ({e.kind})") from None
        except WireBroken as e:
            self._observe(method, label, None, None, started, e.kind)
            raise TransientError(f"{method} {label}: connection failed ({e.kind})") from None

    async def _over_httpx(
        self, method: str, path: str, label: str, started: float, **kwargs: Any
    ) -> httpx.Response:
        try:
            return await self._http.request(method, path, **kwargs)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as e:
            # Before a byte of the request was written: the engine may know a POST placed
            # nothing (NotSent), where a timeout or a dropped answer leaves it in doubt.
            self._observe(method, label, None, None, started, type(e).__name__)
            raise NotSent(f"{method} {label}: could not connect ({type(e).__name__})") from None
        except httpx.TimeoutException as e:
            self._observe(method, label, None, None, started, type(e).__name__)
            raise TransientError(f"{method} {label}: timed out ({type(e).__name__})") from None
        except httpx.TransportError as e:
            self._observe(method, label, None, None, started, type(e).__name__)
            raise TransientError(
                f"{method} {label}: connection failed ({type(e).__name__})"
            ) from None

    def _note_date(self, value: str | None) -> None:
        if not value:
            return
        if value != self._date_text:  # whole seconds: most answers repeat the last one
            try:
                at = email.utils.parsedate_to_datetime(value)
            except (TypeError, ValueError, IndexError):
                return
            if at.tzinfo is None:
                at = at.replace(tzinfo=UTC)
            # The header has whole seconds: the platform's time on receipt is half a second on.
            self._date_text, self._date_at = value, at + timedelta(seconds=0.5)
        assert self._date_at is not None
        self._platform = (self._date_at, time.monotonic())

    def _observe(
        self, method: str, path: str, status: int | None, code: str | None, started: float,
        error: str | None,
    ) -> None:
        if self._observer is not None:
            self._observer(
                Exchange(method, path, status, code, time.monotonic() - started, error)
            )


class _KeyHider:
    """Replaces the API key wherever a server's answer quotes it (text, nested details)."""

    __slots__ = ("_key",)

    def __init__(self, key: str) -> None:
        self._key = key

    def __repr__(self) -> str:
        return "_KeyHider()"

    def __call__(self, v: Any) -> Any:
        if isinstance(v, str):
            return v.replace(self._key, "[REDACTED]") if self._key in v else v
        if isinstance(v, dict):
            return {k: self(x) for k, x in v.items()}
        if isinstance(v, list):
            return [self(x) for x in v]
        return v


def is_loopback_url(url: str) -> bool:
    """A loopback API address: the proxy settings of the environment are not used for it."""
    return is_loopback_host(httpx.URL(url).host)


def _env_proxies() -> bool:
    """Whether the environment names a proxy (HTTP_PROXY, HTTPS_PROXY, ALL_PROXY): httpx
    then carries the requests, as it reads those."""
    return any(k in ("http", "https", "all") for k in urllib.request.getproxies())


def _json_body(obj: Any) -> bytes:
    """A request body as httpx encodes `json=` (compact, UTF-8, no NaN)."""
    return json.dumps(
        obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False
    ).encode("utf-8")


def _json_or_none(resp: httpx.Response | Reply) -> Any:
    try:
        if isinstance(resp, Reply):
            return json.loads(resp.body) if resp.body else None
        return resp.json()
    except ValueError:
        return None


def error_envelope(body: Any) -> tuple[str | None, str, dict[str, Any]]:
    """(code, message, details) of an error body, in any of the envelopes the API has sent."""
    if not isinstance(body, dict):
        return None, "", {}
    err = body.get("error")
    if isinstance(err, dict):
        raw = err.get("details")
        details: dict[str, Any] = raw if isinstance(raw, dict) else {}
        code = err.get("code")
        return (str(code) if code is not None else None), str(body.get("message") or ""), details
    if isinstance(err, str):
        return err, str(body.get("message") or ""), {}
    code = body.get("code")  # a flat envelope: {"code": ..., "message": ...}
    if isinstance(code, str) and code:
        return code, str(body.get("message") or ""), {}
    return None, str(body.get("message") or ""), {}


def error_for(
    resp: httpx.Response | Reply, method: str, path: str, code: str | None, message: str,
    details: dict[str, Any],
) -> VantaxError:
    """The exception of the error hierarchy an error response stands for."""
    status = resp.status_code
    text = f"{method} {path}: {status}" + (f" {code}" if code else "") + (
        f": {message}" if message else ""
    )
    retry_after = parse_retry_after(
        resp.headers.get("Retry-After"), date=resp.headers.get("Date")
    )
    kw: dict[str, Any] = {
        "status": status, "code": code, "details": details, "retry_after": retry_after,
    }
    if status in (401, 403):
        return AuthError(text, **kw)
    if status == 409:
        # [seed] 409 means Do-Not-Call; only the two known transient codes are retried.
        if code in RETRYABLE_409_CODES:
            return Conflict(text, **kw)
        return DncRejected(text, **kw)
    if status == 422:
        return ValidationFailed(text, **kw)
    if status == 404:
        return NotFound(text, **kw)
    if status == 429:
        return RateLimited(text, **kw)
    if status >= 500 or status == 408:
        return TransientError(text, **kw)
    return UnexpectedResponse(text, **kw)

