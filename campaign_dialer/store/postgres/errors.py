"""The PostgreSQL store's errors, and the redaction that keeps a password out of their text.

A psycopg error can quote the connection string (host, user, sometimes a password given on
the URL or in `PGPASSWORD`'s place): every message that leaves this package goes through
`redact`, and `register_secret` also hides the password from every log line.
"""

from __future__ import annotations

import os
import re

from psycopg.conninfo import conninfo_to_dict

from campaign_dialer.exitcodes import ExitCode
from campaign_dialer.log import register_secret, scrub
from campaign_dialer.store.errors import DuplicateAttempt, StoreError
from campaign_dialer.store.errors import SchemaTooNew as SchemaTooNew  # exit 78, re-exported

# postgresql://user:secret@host -> postgresql://user:[REDACTED]@host
_URL_PASSWORD = re.compile(r"(?i)(postgres(?:ql)?://[^:/@\s]*:)([^@\s]*)(@)")
# password=secret / password='sec ret' in a key=value conninfo
_KV_PASSWORD = re.compile(r"(?i)(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)")


def redact(text: str) -> str:
    """The text without any password a connection string or the environment put in it."""
    text = _URL_PASSWORD.sub(r"\1[REDACTED]\3", text)
    text = _KV_PASSWORD.sub(r"\1[REDACTED]", text)
    pw = os.environ.get("PGPASSWORD", "")
    if len(pw) >= 4:
        text = text.replace(pw, "[REDACTED]")
    return scrub(text)


def protect(url: str) -> None:
    """Register the URL's and PGPASSWORD's password with the log scrubber."""
    try:
        pw = conninfo_to_dict(url).get("password")
    except Exception:  # a malformed URL: the connect attempt reports it (redacted)
        pw = None
    for secret in (pw, os.environ.get("PGPASSWORD")):
        if secret:
            register_secret(str(secret))


# The database refused or failed an operation (`store.errors.StoreError`, redacted text):
# the store-level errors a caller outside the store catches live in `store.errors`.
PgStoreError = StoreError


class StoreUnavailable(PgStoreError):
    """The database cannot be reached (network, auth, it is down): like an API outage."""

    exit_code = ExitCode.UNAVAILABLE


class OutcomeUnknown(StoreUnavailable):
    """The connection died before a write's answer: it may or may not have been committed.
    Its caller resolves it (by the write's key) once the database answers again."""


class StoreWriteError(PgStoreError):
    """The database refuses writes: read-only (73) or out of disk (74), like the journal file."""

    def __init__(self, message: str, exit_code: ExitCode) -> None:
        self.exit_code = exit_code
        super().__init__(message)


# The database refused a second intent for the same campaign, person and attempt (or key).
DuplicateIntent = DuplicateAttempt
