"""The `[store]` section: where a team's journal, contact history and DNC ledger live.

`[store] url = "postgresql://user@host/db"` in the campaign file, or the environment's
`CAMPAIGN_DIALER_STORE_URL` (the environment wins). Unset: SQLite files, the default.

The password never comes from the campaign file (exit 78, like the API key): libpq reads it
from `PGPASSWORD`, `~/.pgpass` or a service file (`PGSERVICEFILE`), or from a URL given in
the environment. With a store URL, `[history] path` and `CAMPAIGN_DIALER_HOME` do not apply
(`store_warnings` says so).
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from campaign_dialer.errors import ConfigError
from campaign_dialer.log import register_secret

STORE_URL_ENV = "CAMPAIGN_DIALER_STORE_URL"
HOME_ENV = "CAMPAIGN_DIALER_HOME"
SCHEMES = ("postgresql", "postgres")


def url_problem(url: str, *, in_file: bool) -> str | None:
    """Why `url` cannot be the store's URL, never quoting it (it may hold a password)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        return "is not a valid postgresql:// URL"
    if parts.scheme not in SCHEMES:
        return "must be a postgresql://user@host/database URL"
    has_password = parts.password is not None or any(
        k.lower() == "password" for k in parse_qs(parts.query, keep_blank_values=True)
    )
    if in_file and has_password:
        return (
            "holds a password; a password must not be written in the campaign file: put it "
            "in PGPASSWORD, ~/.pgpass or a service file (or the whole URL in "
            f"{STORE_URL_ENV})"
        )
    return None


class StoreSection(BaseModel):
    """`[store]`: the database a team shares (several processes, one truth)."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True, strict=True)

    url: str | None = Field(default=None, description=(
        "A team's PostgreSQL database, `postgresql://user@host/db`, for the journal, the "
        "contact history and the DNC ledger; `CAMPAIGN_DIALER_STORE_URL` wins; never a "
        "password here (78). Default (none): SQLite files."
    ))
    # How long a process's claim on a row lasts without a heartbeat (renewed every third of
    # it): a process that dies hands its rows to the others after at most this long.
    lease_seconds: float = Field(default=30.0, ge=1.0, le=3600.0, description=(
        "(PostgreSQL) How long a process's claim on a row lasts without a heartbeat "
        "(renewed every third of it): a process that dies hands its rows to the others "
        "after at most this long."
    ))
    connect_timeout_s: float = Field(default=10.0, ge=1.0, le=300.0, description=(
        "(PostgreSQL) How long one connection attempt may take (libpq's connect_timeout, "
        "whole seconds, at least 2): a database that is down or unreachable when a command "
        "starts is exit 69 within it (a refused connection at once)."
    ))
    outage_s: float = Field(default=30.0, ge=0.0, le=3600.0, description=(
        "(PostgreSQL) A database that goes away during a run (a restart, an upgrade, a "
        "failover) is waited for this long, reconnecting, before the run stops with 69; 0 "
        "stops at the first failure."
    ))

    @field_validator("url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is None or not v.strip():
            return None
        problem = url_problem(v.strip(), in_file=True)
        if problem:
            raise ValueError(problem)
        return v.strip()


def store_url(source: Path, in_file: str | None) -> str | None:
    """The store's URL: `CAMPAIGN_DIALER_STORE_URL`, else `[store] url` (`in_file`, read from
    `source`); None for SQLite. A password the environment's URL holds is never logged."""
    env = os.environ.get(STORE_URL_ENV, "").strip()
    if env:
        problem = url_problem(env, in_file=False)
        if problem:
            raise ConfigError(source, STORE_URL_ENV, f"the environment's URL {problem}")
        password = urlsplit(env).password
        if password:
            register_secret(password)  # allowed in the environment, never in a log line
        return env
    return in_file
