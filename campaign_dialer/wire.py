"""HTTP/1.1 over asyncio streams: the dialer's few requests without a general client's
per-request machinery.

At 50 calls/s every call costs a POST and a poll or two. Through `httpx.AsyncClient` one
request took about 1 ms of CPU (URL merging, cookies, auth and redirect hooks, the
connection pool's liveness probe of every idle connection, two socket writes for a POST);
written and read here it takes a tenth of that. The client (`client.VantaxClient`) uses
this wire when it speaks to the platform directly, and httpx where httpx's breadth is
needed (a proxy from the environment, a test's injected transport).

What it does: keep-alive connections (LIFO, closed after `KEEPALIVE_EXPIRY_S` idle, as
httpx does), at most `max_connections` at once, TLS for https, one write per request,
Content-Length, chunked and read-to-close bodies, gzip/deflate if a server sends them
unasked. What it tells apart, because the engine's never-twice rules depend on it:
`ConnectFailed` means no byte of the request left (nothing can have been placed);
`WireTimeout` and `WireBroken` mean it may have arrived.
"""

from __future__ import annotations

import asyncio
import ssl
import time
import zlib
from collections.abc import Mapping
from urllib.parse import urlsplit

KEEPALIVE_EXPIRY_S = 5.0
MAX_HEAD_BYTES = 256 * 1024  # status line and headers
MAX_BODY_BYTES = 64 * 1024 * 1024


class WireError(Exception):
    """Base of the wire's errors; never carries a header. `kind` names the failure as httpx
    would (ConnectError, ReadTimeout, RemoteProtocolError, ...): telemetry and messages keep
    their words whichever way a request went."""

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind


class ConnectFailed(WireError):
    """No connection (refused, DNS, TLS handshake, connect timeout, no free connection in
    time): the request was never written."""


class WireTimeout(WireError):
    """Written (or partly written), and no answer in time: it may have arrived."""


class WireBroken(WireError):
    """The connection dropped or the answer was not HTTP after the request was written."""


class Headers(dict[str, str]):
    """Response headers by lower-case name (a repeated header: its values joined by ", ")."""

    def get(self, key: str, default: str | None = None) -> str | None:  # type: ignore[override]
        return super().get(key.lower(), default)


class Reply:
    """One response: status, headers, the whole body."""

    __slots__ = ("status_code", "headers", "body")

    def __init__(self, status_code: int, headers: Headers, body: bytes) -> None:
        self.status_code = status_code
        self.headers = headers
        self.body = body

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300


class _Conn:
    __slots__ = ("reader", "writer", "idle_since")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.idle_since = 0.0

    def usable(self, now: float) -> bool:
        """Open, not told EOF by the server, not idle too long."""
        return (not self.writer.is_closing() and not self.reader.at_eof()
                and now - self.idle_since < KEEPALIVE_EXPIRY_S)

    def close(self) -> None:
        try:
            self.writer.close()
        except (OSError, RuntimeError):  # a loop already closed: the socket goes with it
            pass


class Wire:
    """Requests to one origin (`base_url`'s scheme, host and port, its path a prefix)."""

    def __init__(
        self, base_url: str, headers: Mapping[str, str], *, timeout_s: float,
        connect_timeout_s: float, max_connections: int,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.prefix = parts.path.rstrip("/")
        self.ssl = (ssl_context or ssl.create_default_context()) if parts.scheme == "https" \
            else None
        default_port = self.port == (443 if self.ssl else 80)
        host = f"[{self.host}]" if ":" in self.host else self.host
        authority = host if default_port else f"{host}:{self.port}"
        fixed = {"Host": authority, **headers}
        self._head = "".join(f"{k}: {v}\r\n" for k, v in fixed.items())
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s
        self._slots = asyncio.Semaphore(max_connections)
        self._idle: list[_Conn] = []
        self._closed = False

    async def request(
        self, method: str, target: str, *, body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        """`method` `target` (a path with its query, under the base URL's path)."""
        if self._closed:
            raise ConnectFailed("ConnectError", "the client is closed")
        head = f"{method} {self.prefix}{target} HTTP/1.1\r\n{self._head}"
        if headers:
            head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        if body is not None:
            head += f"Content-Length: {len(body)}\r\n"
        data = (head + "\r\n").encode("latin-1")
        if body:
            data += body
        try:
            async with asyncio.timeout(self.timeout_s):
                await self._slots.acquire()
        except TimeoutError:
            raise ConnectFailed("PoolTimeout") from None
        try:
            conn = await self._connection()
            try:
                reply, keep = await self._exchange(conn, method, data)
            except BaseException:
                conn.close()
                raise
            if keep and not self._closed:
                conn.idle_since = time.monotonic()
                self._idle.append(conn)
            else:
                conn.close()
            return reply
        finally:
            self._slots.release()

    async def _connection(self) -> _Conn:
        now = time.monotonic()
        while self._idle:
            conn = self._idle.pop()  # the most recently used: the least likely to be stale
            if conn.usable(now):
                return conn
            conn.close()
        try:
            async with asyncio.timeout(self.connect_timeout_s):
                reader, writer = await asyncio.open_connection(
                    self.host, self.port, ssl=self.ssl, limit=MAX_HEAD_BYTES,
                    server_hostname=self.host if self.ssl else None,
                )
        except TimeoutError:
            raise ConnectFailed("ConnectTimeout") from None
        except (OSError, ssl.SSLError) as e:
            raise ConnectFailed("ConnectError", type(e).__name__) from None
        return _Conn(reader, writer)

    async def _exchange(self, conn: _Conn, method: str, data: bytes) -> tuple[Reply, bool]:
        """Write the request, read the answer; (reply, whether the connection may be kept)."""
        reader = conn.reader
        try:
            async with asyncio.timeout(self.timeout_s):
                conn.writer.write(data)
                await conn.writer.drain()
                while True:
                    head = await reader.readuntil(b"\r\n\r\n")
                    status, version, headers = _parse_head(head)
                    if status >= 200 or status == 101:
                        break  # 1xx: an interim answer, the real one follows
                if method == "HEAD" or status in (204, 304) or status < 200:
                    body, framed = b"", True
                elif "chunked" in (headers.get("transfer-encoding") or "").lower():
                    body, framed = await _read_chunked(reader), True
                elif (length := headers.get("content-length")) is not None:
                    n = _content_length(length)
                    body, framed = await reader.readexactly(n), True
                else:
                    body, framed = await _read_to_eof(reader), False
        except TimeoutError:
            raise WireTimeout("ReadTimeout") from None
        except asyncio.IncompleteReadError:
            raise WireBroken("RemoteProtocolError",
                             "the server closed the connection mid-answer") from None
        except asyncio.LimitOverrunError:
            raise WireBroken("RemoteProtocolError", "answer headers too long") from None
        except (OSError, ssl.SSLError) as e:
            raise WireBroken("ReadError", type(e).__name__) from None
        encoding = (headers.get("content-encoding") or "").strip().lower()
        if body and encoding in ("gzip", "x-gzip", "deflate"):
            try:
                body = zlib.decompress(body, 47 if "gzip" in encoding else 15)
            except zlib.error:
                try:
                    body = zlib.decompress(body, -15)  # a raw deflate stream
                except zlib.error:
                    raise WireBroken("DecodingError") from None
        conn_header = (headers.get("connection") or "").lower()
        keep = framed and "close" not in conn_header and (
            version == "HTTP/1.1" or "keep-alive" in conn_header)
        return Reply(status, headers, body), keep

    async def aclose(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


def _parse_head(head: bytes) -> tuple[int, str, Headers]:
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise WireBroken("RemoteProtocolError", "not an HTTP answer")
    headers = Headers()
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise WireBroken("RemoteProtocolError", "a malformed answer header")
        key, value = name.lower(), value.strip()
        old = dict.get(headers, key)
        headers[key] = value if old is None else f"{old}, {value}"
    return int(parts[1]), parts[0], headers


def _content_length(value: str) -> int:
    values = {v.strip() for v in value.split(",")}
    if len(values) != 1 or not (n := values.pop()).isdigit() or int(n) > MAX_BODY_BYTES:
        raise WireBroken("RemoteProtocolError", "a bad Content-Length")
    return int(n)


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    out = bytearray()
    while True:
        line = await reader.readuntil(b"\r\n")
        size_text = line.split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise WireBroken("RemoteProtocolError", "a bad chunk size") from None
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":
                pass  # trailers: nothing the dialer reads
            return bytes(out)
        if len(out) + size > MAX_BODY_BYTES:
            raise WireBroken("RemoteProtocolError", "an answer body too large")
        out += await reader.readexactly(size)
        if await reader.readexactly(2) != b"\r\n":
            raise WireBroken("RemoteProtocolError", "a bad chunk end")


async def _read_to_eof(reader: asyncio.StreamReader) -> bytes:
    out = bytearray()
    while chunk := await reader.read(65536):
        out += chunk
        if len(out) > MAX_BODY_BYTES:
            raise WireBroken("RemoteProtocolError", "an answer body too large")
    return bytes(out)
