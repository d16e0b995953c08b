"""`[monitor]` and `[budget]`: watching a running campaign and capping what it may spend.

`[monitor] listen = "127.0.0.1:9108"` makes `run` serve `/metrics` (Prometheus), `/healthz`
and a live page; `run --serve HOST:PORT` does the same for one run. Beyond loopback only
when the campaign file says so (as `[webhook] host`): metrics and the page name the
campaign's figures, not people, but they are nobody else's business by default.

`[budget]` caps a campaign: `max_cost` (in the currency of `report.cost_per_minute` /
`cost_per_call`, so one of them must price it), `max_talk_minutes`, `max_calls_per_day`
(per local calendar day of `report.display_timezone`).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from campaign_dialer.config_checks import is_loopback_host

DEFAULT_MONITOR_PORT = 9108


def parse_listen(text: str) -> tuple[str, int]:
    """`HOST:PORT`, `[v6]:PORT`, `:PORT` or `PORT` -> (host, port); host 127.0.0.1 when
    left out. ValueError says what is wrong."""
    raw = text.strip()
    host, port_text = "127.0.0.1", raw
    if raw.startswith("["):
        end = raw.find("]")
        if end < 0 or raw[end + 1:end + 2] != ":":
            raise ValueError(f"{text!r} is not HOST:PORT (e.g. 127.0.0.1:9108)")
        host, port_text = raw[1:end], raw[end + 2:]
    elif ":" in raw:
        h, _, port_text = raw.rpartition(":")
        host = h or host
        if ":" in host:
            raise ValueError(f"{text!r}: write an IPv6 address in brackets, e.g. [::1]:9108")
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65_535:
        raise ValueError(f"{text!r} is not HOST:PORT with a port 0-65535 (e.g. 127.0.0.1:9108)")
    if not host or any(c in host for c in "/ ?#@"):
        raise ValueError(f"{text!r}: {host!r} is not a host name or address")
    return host, int(port_text)


def serve_problem(serve: tuple[str, int], listen: tuple[str, int] | None) -> str | None:
    """Why `run --serve` may not listen there: beyond loopback only on the host the campaign
    file's `[monitor] listen` names (the file is reviewed; a command line is typed)."""
    host = serve[0]
    if is_loopback_host(host) or (listen is not None and listen[0] == host):
        return None
    return (f"--serve {host}:{serve[1]} is not on loopback; a campaign's metrics and live page "
            "are served beyond this machine only when its file says so: write "
            f'[monitor] listen = "{host}:{serve[1]}"')


class MonitorSection(BaseModel):
    """`[monitor]`: where `run` serves /metrics, /healthz and the live page."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True, strict=True)

    listen: str = Field(default=f"127.0.0.1:{DEFAULT_MONITOR_PORT}", description=(
        "Where `run` serves /metrics (Prometheus), /healthz and the live page, HOST:PORT; "
        "beyond loopback only when written here (`run --serve` is loopback otherwise)."
    ))

    @field_validator("listen")
    @classmethod
    def _listen(cls, v: str) -> str:
        parse_listen(v)
        return v

    @property
    def address(self) -> tuple[str, int]:
        return parse_listen(self.listen)


Amount = Annotated[float, Field(gt=0, le=1_000_000_000, allow_inf_nan=False, strict=False)]


class BudgetSection(BaseModel):
    """`[budget]`: no new call once one of these would be passed (checked at each dial)."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True, strict=True)

    max_cost: Amount | None = Field(default=None, description=(
        "No new call once what is spent plus what the live calls are expected to cost would "
        "pass it, in the currency of report.cost_per_minute / cost_per_call (one must be set)."
    ))
    max_talk_minutes: Amount | None = Field(default=None, description=(
        "No new call once the talk minutes spent plus the live calls' expected would pass it."
    ))
    max_calls_per_day: Annotated[int, Field(ge=1, le=10_000_000)] | None = Field(
        default=None, description=(
            "Calls placed per local calendar day of report.display_timezone; rows wait "
            "(budget_reached) with next_open at the next local midnight."
        ))

    @property
    def any(self) -> bool:
        return any(v is not None for v in (self.max_cost, self.max_talk_minutes,
                                             self.max_calls_per_day))


def budget_problem(budget: BudgetSection | None, report: Any) -> str | None:
    """A cost cap nothing prices is refused (78), never read as "no limit"."""
    if budget is None or budget.max_cost is None:
        return None
    if report.cost_per_minute is None and report.cost_per_call is None:
        return ("a cost limit needs a price: set report.cost_per_minute and/or "
                "report.cost_per_call (max_cost is in their currency)")
    return None
