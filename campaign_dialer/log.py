"""Structured logging, configured once at the entry point.

JSON lines when stderr is not a terminal (cron, systemd, CI), a coloured console when it is.
On a terminal, log lines go through the same rich Console as the live progress display, so
the two never garble each other. Secrets registered here are scrubbed from every event.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO, cast

import structlog
from rich.console import Console
from rich.text import Text

_SECRETS: set[str] = set()
_console: Console | None = None
_out: Console | None = None


def register_secret(value: str) -> None:
    """Never let this string reach a log line, whatever field it hides in."""
    if value and len(value) >= 4:
        _SECRETS.add(value)


def scrub(text: str) -> str:
    for s in _SECRETS:
        if s in text:
            text = text.replace(s, "[REDACTED]")
    return text


def _scrub_value(v: Any) -> Any:
    if isinstance(v, str):
        return scrub(v)
    if isinstance(v, dict):
        return {k: _scrub_value(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return type(v)(_scrub_value(x) for x in v)
    if isinstance(v, BaseException):
        return scrub(repr(v))
    return v


def _scrub_processor(
    _logger: Any, _name: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    if not _SECRETS:
        return event
    return {k: _scrub_value(v) for k, v in event.items()}


def _scrub_rendered(_logger: Any, _name: str, rendered: Any) -> Any:
    return scrub(rendered) if isinstance(rendered, str) else rendered


class _RichLogger:
    """A structlog logger that prints through the shared rich Console."""

    def __init__(self, console: Console) -> None:
        self._console = console

    def msg(self, message: str) -> None:
        self._console.print(Text.from_ansi(message), soft_wrap=True, highlight=False)

    log = debug = info = warn = warning = error = critical = exception = fatal = msg


class _RichLoggerFactory:
    def __init__(self, console: Console) -> None:
        self._console = console

    def __call__(self, *args: Any) -> _RichLogger:
        return _RichLogger(self._console)


class _Stderr:
    """Whatever `sys.stderr` is when a line is written, not when logging was configured (as
    rich's stderr Console does): a stream swapped and closed since (a test's capture) is never
    written to."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


class _ToStructlog(logging.Handler):
    """Libraries' standard-library logging (the database driver's pool: "error connecting",
    "discarding closed connection") into the dialer's own log: the same renderer (JSON
    when logs are JSON), the same level filter, secrets scrubbed; never a stray plain line
    on stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record must not break a run
            message = str(record.msg)
        get(record.name).log(record.levelno, "library_log", message=message,
                             library=record.name)


_HANDLER = _ToStructlog()


def _route_stdlib_logging(level: int) -> None:
    """Once per configure: the root logger hands its records to structlog only (Python's
    last-resort handler would print them bare on stderr)."""
    root = logging.getLogger()
    for h in list(root.handlers):
        if isinstance(h, _ToStructlog):
            root.removeHandler(h)
    root.addHandler(_HANDLER)
    # Libraries' info is chatter (httpx logs every request at info): warnings and above,
    # unless the dialer's own level asks for debug.
    root.setLevel(logging.DEBUG if level <= logging.DEBUG else logging.WARNING)


def out() -> Console:
    """Human-readable results (plans, summaries, tables) go to stdout; logs stay on stderr."""
    global _out
    if _out is None:
        _out = Console()
    return _out


def console() -> Console:
    """The one Console for logs and the live progress display, on stderr."""
    global _console
    if _console is None:
        _console = Console(stderr=True)
    return _console


def configure(
    level: str = "info", *, json: bool | None = None, stream: TextIO | None = None
) -> None:
    """Configure structlog once; json=None picks by whether stderr is a terminal."""
    con = console()
    if json is None:
        json = not con.is_terminal
    lvl = logging.getLevelName(level.upper())
    if not isinstance(lvl, int):
        lvl = logging.INFO
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _scrub_processor,
    ]
    if json:
        processors = [
            *shared,
            # Tracebacks without local variables: a frame's locals hold phone numbers.
            structlog.processors.ExceptionRenderer(
                structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
            ),
            structlog.processors.JSONRenderer(),
            _scrub_rendered,
        ]
        factory: Any = structlog.PrintLoggerFactory(file=stream or cast(TextIO, _Stderr()))
    else:
        processors = [
            *shared,
            structlog.dev.ConsoleRenderer(
                colors=con.is_terminal and not con.no_color,
                exception_formatter=structlog.dev.RichTracebackFormatter(show_locals=False),
            ),
            _scrub_rendered,
        ]
        factory = _RichLoggerFactory(con)
    _route_stdlib_logging(lvl)
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(lvl),
        logger_factory=factory,
        cache_logger_on_first_use=False,
    )


def get(name: str | None = None, **ctx: Any) -> Any:
    log = structlog.get_logger(name) if name else structlog.get_logger()
    return log.bind(**ctx) if ctx else log
