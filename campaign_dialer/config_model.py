"""The campaign file's keys: the TOML's sections as a strict, typed pydantic model.

What a file says, checked value by value; `config` turns a validated file into a `Campaign`
(paths resolved against its folder, secrets from the environment, inputs that must exist).
Its keys are a public interface (users' scheduled jobs depend on them), so unknown keys are
errors rather than silently ignored typos, and every error names the file and the key.
"""

from __future__ import annotations

import codecs
import hashlib
import re
from datetime import date, time
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import phonenumbers
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    field_validator,
    model_validator,
)

from campaign_dialer.config_callerid import CallerIdSection
from campaign_dialer.config_checks import (
    KEY_PATTERN,
    is_loopback_host,
    looks_secret,
)
from campaign_dialer.config_ops import BudgetSection, MonitorSection
from campaign_dialer.config_schedule import ScheduleSection
from campaign_dialer.config_store import StoreSection
from campaign_dialer.errors import ConfigError, DialerError  # noqa: F401 - ConfigError is re-exported
from campaign_dialer.vocab import OPT_OUT_OUTCOMES

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")
HHMM = re.compile(r"^([01]\d|2[0-4]):([0-5]\d)$")
FEDERAL_START, FEDERAL_END = time(8), time(21)  # 47 CFR 64.1200(c)(1)


class _Model(BaseModel):
    # Strict: a quoted number ("5") or a 1 for true is a typo the README promises to reject.
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True, strict=True)


# TOML has no path type: paths are strings, read leniently into Path.
LaxPath = Annotated[Path, Strict(False)]
PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]


# Finite numbers in (0, hi]: inf, NaN or an absurd value is named, never obeyed
# (`max_live_calls = 1e12` would allocate a worker per slot; `requests_per_second = inf`
# divides by zero; `poll_interval_s = inf` never polls).
Rate = Annotated[float, Field(gt=0, le=10_000, allow_inf_nan=False)]
Seconds = Annotated[float, Field(gt=0, le=86_400, allow_inf_nan=False)]
ShortSeconds = Annotated[float, Field(gt=0, le=600, allow_inf_nan=False)]


class AgentWeight(_Model):
    """One arm of an A/B split: an agent and its share of the people called."""

    id: Annotated[str, Field(min_length=1)] = Field(description="The agent's id.")
    weight: Annotated[
        float, Field(gt=0, le=1_000_000, allow_inf_nan=False, strict=False)
    ] = Field(default=1.0, description=(
        "Its share of the people called (relative to the others' weights)."
    ))


class CampaignSection(_Model):
    """The campaign's name (its journal), the agent(s) that call, the region of numbers."""

    name: str = Field(description=(
        "Stable id of the campaign: the journal is keyed by it (1-80 letters, digits, "
        "`.`, `_`, `-`); keep it once the campaign has run."
    ))
    # One agent, or a weighted list (A/B): each person gets one agent by a stable hash.
    agent_id: Annotated[str, Field(min_length=1)] | Annotated[
        list[AgentWeight], Field(min_length=1)] = Field(description=(
        "The Vantax agent that places the calls, or a weighted list for an A/B test: `[{ "
        "id = \"agt_a\", weight = 1 }, { id = \"agt_b\", weight = 1 }]`. Each person gets one"
        " agent by a stable hash of campaign name and person, so reruns and redials keep "
        "it (while the list stays the same); the agent is the results column `agent_id`."
    ))
    from_phone_number_id: str | None = Field(default=None, description=(
        "Owned number to call from; default (none): the agent's own number."
    ))
    default_region: str = Field(default="US", description=(
        "Region (ISO 3166) for numbers written without `+country`."
    ))

    @field_validator("name")
    @classmethod
    def _slug(cls, v: str) -> str:
        if not NAME_PATTERN.match(v):
            raise ValueError(
                "must be 1-80 letters, digits, '.', '_' or '-' (it names the journal)"
            )
        return v

    @field_validator("agent_id")
    @classmethod
    def _distinct_agents(cls, v: str | list[AgentWeight]) -> str | list[AgentWeight]:
        if isinstance(v, list):
            ids = [a.id for a in v]
            if len(set(ids)) != len(ids):
                raise ValueError(f"an agent is listed twice: {ids}")
        return v

    @property
    def agents(self) -> list[tuple[str, float]]:
        """(agent, weight) pairs; a plain string is one agent with all the weight."""
        if isinstance(self.agent_id, str):
            return [(self.agent_id, 1.0)]
        return [(a.id, a.weight) for a in self.agent_id]

    def agent_for(self, campaign: str, person: str) -> str:
        """The agent this person gets: a hash of campaign and person, so every rerun (and
        every redial) sends the same person to the same agent while the weights stay."""
        pairs = self.agents
        if len(pairs) == 1:
            return pairs[0][0]
        digest = hashlib.sha256(f"{campaign}\x00{person}".encode()).digest()
        u = int.from_bytes(digest[:8], "big") / 2**64  # uniform in [0, 1)
        total = sum(w for _, w in pairs)
        acc = 0.0
        for agent, w in pairs:
            acc += w / total
            if u < acc:
                return agent
        return pairs[-1][0]

    @property
    def agent_label(self) -> str:
        """The agent(s) as people read them: "agt_a" or "agt_a 50% / agt_b 50%"."""
        pairs = self.agents
        if len(pairs) == 1:
            return pairs[0][0]
        total = sum(w for _, w in pairs)
        return " / ".join(f"{a} {100 * w / total:.0f}%" for a, w in pairs)

    @field_validator("default_region")
    @classmethod
    def _region(cls, v: str) -> str:
        v = v.upper()
        if v not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"{v!r} is not an ISO 3166 region phonenumbers knows")
        return v


class ApiSection(_Model):
    """The Vantax API: where it is, which variable holds the key, and its limits."""

    base_url: str = Field(default="https://api.vantaxai.com", description=(
        "The Vantax API; plain `http` only on loopback (the key would travel in clear)."
    ))
    api_key_env: str = Field(default="VANTAX_API_KEY", description=(
        "The NAME of the environment variable holding the API key; the key itself is "
        "never written in the file."
    ))
    requests_per_second: Rate = Field(default=10.0, description=(
        "The platform's limit, shared by POST and GET (the dialer uses 90% of it)."
    ))
    max_live_calls: Annotated[int, Field(ge=1, le=10_000)] = Field(default=20, description=(
        "Calls ringing or in progress at once."
    ))
    request_timeout_s: ShortSeconds = Field(default=10.0, description="Seconds per request.")
    poll_interval_s: ShortSeconds = Field(default=2.0, description=(
        "Minimum gap, in seconds, between polls of one call."
    ))
    max_attempts: Annotated[int, Field(ge=1, le=50)] = Field(default=8, description=(
        "Sends of one POST on transient errors before it is left for the next run."
    ))
    call_time_limit_s: Seconds = Field(default=3600.0, description=(
        "A call not final after this many seconds is recorded with its last status."
    ))
    # No answer (refused, timeouts, 5xx) for this long: stop new calls, exit 69.
    outage_s: Seconds = Field(default=120.0, description=(
        "No answer from the API (refused, timeouts, 5xx) for this many seconds: stop new "
        "calls, exit 69."
    ))
    # The same non-transient error on this many calls in a row stops the run (78 or 69).
    breaker_threshold: Annotated[int, Field(ge=1, le=10_000)] = Field(default=5, description=(
        "The same non-transient error on this many calls in a row stops the run (78, or "
        "69 for a platform fault); rows stay pending."
    ))

    @field_validator("api_key_env")
    @classmethod
    def _env_name(cls, v: str) -> str:
        if KEY_PATTERN.search(v):
            raise ValueError("holds an API key; write the NAME of an environment variable")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", v):
            raise ValueError(f"{v!r} is not an environment variable name")
        return v

    @field_validator("base_url")
    @classmethod
    def _url(cls, v: str) -> str:
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{v!r} is not an http(s) URL")
        if parts.scheme == "http" and not is_loopback_host(parts.hostname):
            raise ValueError(
                "plain http is allowed only on loopback (the key would travel in clear)"
            )
        return v.rstrip("/")


class PacingSection(_Model):
    """How fast new calls are placed."""

    calls_per_second: Rate = Field(default=2.0, description=(
        "New calls placed per second, evenly spaced (no bursts); at most "
        "`api.requests_per_second`."
    ))


class ColumnsSection(_Model):
    """Explicit CSV headers per role; each wins over detection. A name not in the header is
    refused (65, naming it), and so is a named phone column none of whose cells is a number;
    an empty name (`""`, `[]`) is refused (78): leave the key out to detect."""

    # one header, or several in priority order: a row is dialed on its first valid number
    phone: str | list[str] | None = Field(default=None, description=(
        "Header of the phone column, or a list in priority order (`[\"Phone\", \"Mobile\"]`):"
        " a row is dialed on its first valid number. Default: detected (every phone-like "
        "column, main phone first, then mobile, then the others)."
    ))
    contact_id: str | None = Field(default=None, description=(
        "Header of the contact id column. Default: detected."
    ))
    timezone: str | None = Field(default=None, description=(
        "Header of the time zone column. Default: detected by header, else by values."
    ))
    state: str | None = Field(default=None, description=(
        "Header of the state / province column. Default: detected by header, else by "
        "values."
    ))

    @field_validator("phone", "contact_id", "timezone", "state")
    @classmethod
    def _named(cls, v: str | list[str] | None) -> str | list[str] | None:
        """A key that is given names a column: "" or [] is a slip, not "detect it"."""
        names = [v] if isinstance(v, str) else v
        if names is not None and (not names or any(not n.strip() for n in names)):
            raise ValueError("must name a header column (leave the key out to detect it)")
        return v


class DncListSection(_Model):
    """One `[[inputs.dnc_lists]]`: a Do-Not-Call file with its kind and date.

    National and state lists must say when they were obtained (`as_of`): a run refuses to
    dial against one more than 31 days old (16 CFR 310.4(b)(3)(iv)).
    """

    path: LaxPath = Field(description="The list's CSV file (read like `inputs.dnc`).")
    kind: Literal["national", "state", "internal", "vendor"] = Field(description=(
        "What the list is: `national`, `state`, `internal` or `vendor`."
    ))
    state: str | None = Field(default=None, description=(
        "Two letters (`\"TX\"`), for and only for `state` lists."
    ))
    as_of: date | None = Field(default=None, description=(
        "The day the copy was downloaded (`\"YYYY-MM-DD\"`); required for `national` and "
        "`state` lists, which may be at most 31 days old when a call is placed."
    ))

    @field_validator("as_of", mode="before")
    @classmethod
    def _iso_date(cls, v: Any) -> Any:
        if isinstance(v, str):
            try:
                return date.fromisoformat(v)
            except ValueError:
                raise ValueError(f"{v!r} is not a date written YYYY-MM-DD") from None
        if hasattr(v, "date") and callable(v.date):  # a TOML date-time: its date is meant
            raise ValueError("must be a date (YYYY-MM-DD), not a date and time")
        return v

    @field_validator("state")
    @classmethod
    def _state_code(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"[A-Z]{2}", v):
            raise ValueError(f"{v!r} is not a two-letter US state code (e.g. \"TX\")")
        return v

    @model_validator(mode="after")
    def _kind_needs(self) -> DncListSection:
        if self.kind == "state" and self.state is None:
            raise ValueError('a state list needs state = "XX" (e.g. "TX")')
        if self.kind != "state" and self.state is not None:
            raise ValueError(f"state is for kind = \"state\" lists, not {self.kind!r}")
        if self.kind in ("national", "state") and self.as_of is None:
            raise ValueError(
                f"a {self.kind} list needs as_of = \"YYYY-MM-DD\", the day it was downloaded "
                "(it may be at most 31 days old when a call is placed)"
            )
        return self


class InputsSection(_Model):
    """The files a campaign reads: contacts, Do-Not-Call lists, consent, RND answers."""

    contacts: LaxPath = Field(description=(
        "The contacts CSV (a CRM or spreadsheet export); the same file as a DNC list, the"
        " consent ledger or the DNC ledger is refused (78)."
    ))
    dnc: list[LaxPath] = Field(default_factory=list, description=(
        "Local Do-Not-Call lists (CSV, numbers in any format), internal and undated: "
        "every phone-named column is read (`Phone` and `Mobile` both); under a header we "
        "do not know, the one phone-named column holding numbers (`DNC Number`) (beside "
        "e.g. an `Added` date); a headerless single column."
    ))
    # lists with a kind and a date; `dnc` above are internal lists
    dnc_lists: list[DncListSection] = Field(default_factory=list, description=(
        "Do-Not-Call lists with a kind and a date, one `[[inputs.dnc_lists]]` table each "
        "(keys below); read like `inputs.dnc`. A `national` or `state` list over 31 days "
        "old stops `run` (78)."
    ))
    consent: LaxPath | None = Field(default=None, description=(
        "Consent ledger CSV: `phone` or `contact_id` (a revocation is read on every "
        "phone-named column, e.g. `Phone` and `Mobile Phone Number`; a grant on the first"
        " only), `event` (or `action`, `consent status`, `status`: grant/revoke; also "
        "read: granted, opt-in, opted in, consented, subscribed / revoked, opt-out, opted"
        " out, unsubscribed, withdrawn, in any case; any other word refuses the file), "
        "`event_at` (or `timestamp`, `created at`, `date`; ISO 8601 with a UTC offset), "
        "optional `expires_at`, `source`."
    ))
    # Reassigned Numbers Database answers: phone, date_queried, result, queried_at
    reassigned: LaxPath | None = Field(default=None, description=(
        "Reassigned Numbers Database answers CSV: `phone` (read with the DNC lists' "
        "spelling rules), `date_queried` (`YYYY-MM-DD`), `result` (`yes`, `no`, "
        "`no_data`/`no data`), `queried_at`; an unreadable cell refuses the file (65, row"
        " and column named)."
    ))
    columns: ColumnsSection = Field(default_factory=ColumnsSection, description=(
        "Explicit CSV headers per role (keys below); they win over detection."
    ))
    # the encoding of every input file; by default UTF-8 (BOM or not), UTF-16 with a BOM, or
    # Windows-1252 when a file is not valid UTF-8 (with a warning)
    encoding: str | None = Field(default=None, description=(
        "Encoding of every input file (e.g. `\"cp1252\"`); default (none): UTF-8 with or "
        "without BOM, UTF-16 with a BOM, else Windows-1252 with a warning naming the "
        "file."
    ))

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, v: str | None) -> str | None:
        if v is None:
            return v
        try:
            codecs.lookup(v)
        except LookupError:
            raise ValueError(f"{v!r} is not an encoding Python knows") from None
        return v

    @field_validator("dnc", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v


def _parse_hhmm(v: Any) -> time:
    if isinstance(v, time):
        return v
    if not isinstance(v, str) or not HHMM.match(v):
        raise ValueError(f"{v!r} is not a time of day written HH:MM")
    h, m = int(v[:2]), int(v[3:])
    if h == 24:
        if m:
            raise ValueError(f"{v!r} is not a time of day")
        return time(23, 59, 59)
    return time(h, m)


class ComplianceSection(_Model):
    """Who may be called, and when: consent, calling hours, state rules, the DNC ledger."""

    calling_window: tuple[time, time] = Field(default=(time(9), time(20)), description=(
        "Recipient's local time, inside the federal 08:00-21:00; stricter state rules "
        "apply on top."
    ))
    require_consent: bool = Field(default=True, description="No consent, no call.")
    allow_unknown_timezone: bool = Field(default=False, description=(
        "Call numbers whose zone is unknown."
    ))
    allow_contact_id_only: bool = Field(default=False, description=(
        "Call rows that have a `contact_id` but no phone (the platform rings the saved "
        "number, which local DNC lists cannot be checked against)."
    ))
    state_rules: bool = Field(default=True, description=(
        "Apply the stricter US state rules shipped with the tool."
    ))
    # hold back a row whose consent grant no RND `no` answer vouches for
    require_reassigned_check: bool = Field(default=False, description=(
        "Hold back (`reassigned_unchecked`) a row whose consent grant no RND `no` answer "
        "vouches for (`no_data` and no answer included)."
    ))
    # a team's own state rules table (same format as the shipped one, `# table_date:` line)
    rules_file: LaxPath | None = Field(default=None, description=(
        "A team's own state rules table (the shipped "
        "`campaign_dialer/data/state_rules.csv` format, with its `# table_date: YYYY-MM-"
        "DD` line), validated like the built-in one (65, naming line and column); it "
        "replaces the built-in table. `check` warns when the table in use is more than "
        "180 days old."
    ))
    dnc_ledger: LaxPath = Field(default=Path("dnc-ledger.csv"), description=(
        "An extra ledger file of numbers the platform rejected (409) or that opted out, "
        "read and appended to; the shared ledger is in the contact history (an existing "
        "file is imported into it on first use)."
    ))
    opt_out_outcomes: list[str] = Field(default_factory=lambda: list(OPT_OUT_OUTCOMES),
                                        description=(
        "Outcomes / ended reasons that put the number on the ledger."
    ))

    @field_validator("calling_window", mode="before")
    @classmethod
    def _window(cls, v: Any) -> Any:
        if not isinstance(v, list | tuple) or len(v) != 2:
            raise ValueError('must be two times, e.g. ["09:00", "20:00"]')
        start, end = _parse_hhmm(v[0]), _parse_hhmm(v[1])
        if not start < end:
            raise ValueError("the window must start before it ends (same local day)")
        if start < FEDERAL_START or end > FEDERAL_END:
            raise ValueError(
                f"{v[0]}-{v[1]} reaches outside 08:00-21:00, the federal calling hours "
                "(recipient's local time); choose a window inside them"
            )
        return (start, end)


class RedialSection(_Model):
    """Opt-in redials; the default is one call per person, ever."""

    statuses: list[str] = Field(default_factory=list, description=(
        "Final statuses that may be redialed: `no_answer`, `busy`, `voicemail`, `failed`,"
        " `canceled`."
    ))
    max_attempts: Annotated[int, Field(ge=1, le=10)] = Field(default=1, description=(
        "Attempts per person, ever."
    ))
    min_gap_minutes: Annotated[
        float, Field(ge=0, le=525_600, allow_inf_nan=False)
    ] = Field(default=240.0, description=(
        "Minutes between attempts."
    ))
    max_per_24h: Annotated[int, Field(ge=1, le=3)] = Field(default=2, description=(
        "Attempts per person in a rolling 24 h (never above 3, and state limits apply)."
    ))

    @field_validator("statuses")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        allowed = {"no_answer", "busy", "voicemail", "failed", "canceled"}
        bad = sorted(set(v) - allowed)
        if bad:
            raise ValueError(f"{bad} cannot be redialed; allowed: {sorted(allowed)}")
        return v


class OutputSection(_Model):
    """Where results, the plan, the journal and the report are written."""

    dir: LaxPath = Field(default=Path("out"), description=(
        "Folder of the results, the plan, the journal and the report."
    ))


class HistorySection(_Model):
    """The contact history shared by every campaign of a user or team."""

    path: LaxPath | None = Field(default=None, description=(
        "The contact history file shared by campaigns; default (none): "
        "`$CAMPAIGN_DIALER_HOME/history.sqlite`, else `$XDG_DATA_HOME/campaign-"
        "dialer/history.sqlite` (`~/.local/share/...`)."
    ))
    min_hours_between_calls: Annotated[
        float, Field(ge=0, le=24 * 365, allow_inf_nan=False)
    ] = Field(default=24.0, description=(
        "A person any *other* campaign called within this many hours is held back "
        "(`recently_called`); 0 turns this off (state caps still count every campaign's "
        "calls)."
    ))


Money = Annotated[float, Field(ge=0, le=1_000_000, allow_inf_nan=False, strict=False)]


class ReportSection(_Model):
    """How the report reads a campaign: what counts as a success, what a call costs."""

    success_outcomes: list[str] = Field(default=["appointment_booked", "qualified"], description=(
        "Outcomes that count as a conversion in the report."
    ))
    cost_per_minute: Money | None = Field(default=None, description=(
        "What a minute of talk costs; with it (or `cost_per_call`), the report shows the "
        "cost and the cost per conversion."
    ))
    cost_per_call: Money | None = Field(default=None, description=(
        "What a placed call costs; with it (or `cost_per_minute`), the report shows the "
        "cost and the cost per conversion."
    ))
    segment_by: list[str] = Field(default=[], description=(
        "Input columns (list, source, owner...) the report breaks answer and conversion "
        "rates down by, and filters rows by."
    ))
    display_timezone: str | None = Field(default=None, description=(
        "IANA zone of the times the report shows (`\"America/New_York\"`); default (none): "
        "the machine's zone."
    ))
    expected_call_seconds: Annotated[
        float, Field(gt=0, le=86_400, allow_inf_nan=False, strict=False)
    ] = Field(default=120.0, description=(
        "How long a call holds a line, for `check`'s forecast when the contact history "
        "has fewer than 20 finished calls."
    ))

    @field_validator("display_timezone")
    @classmethod
    def _zone(cls, v: str | None) -> str | None:
        if v is None:
            return v
        try:
            ZoneInfo(v)
        except (ValueError, OSError, KeyError):
            raise ValueError(f"{v!r} is not an IANA time zone (e.g. America/New_York)") from None
        return v


ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
class WebhookSection(_Model):
    """The agent webhook receiver, served by `run` while it runs (optional).

    The platform is told the URL on the agent, not by the dialer: `public_url` only documents
    which URL (behind a reverse proxy or tunnel) forwards to `host`:`port``path`.
    """

    host: str = Field(default="127.0.0.1", description=(
        "Address `run` listens on for the agent webhook."
    ))
    port: Annotated[int, Field(ge=0, le=65_535)] = Field(default=8787, description=(
        "Port `run` listens on (a port in use is exit 78)."
    ))
    path: str = Field(default="/webhooks/vantax", description="URL path of the webhook.")
    public_url: str | None = Field(default=None, description=(
        "Documentation only: the URL configured on the agent in the platform, which your "
        "reverse proxy or tunnel forwards to `host:port` `path`."
    ))
    # NAMES of environment variables, each holding one signing secret; several at once let
    # a secret be rotated without losing an event. Unset ones are skipped (one must be set).
    secret_env: list[str] = Field(default_factory=lambda: ["VANTAX_WEBHOOK_SECRET"], description=(
        "The NAMES of environment variables holding the signing secret(s); several at "
        "once for a rotation; unset ones are skipped, one must be set."
    ))
    # A live call with no event for this long is polled once (then again after as long):
    # the safety net for a late or lost final event. Longer than most calls, so that with
    # webhooks working the request budget goes to new calls.
    reconcile_after_s: Seconds = Field(default=600.0, description=(
        "A live call with no event for this many seconds is polled once, then again after"
        " as long (a late or lost final event)."
    ))

    @field_validator("secret_env", mode="before")
    @classmethod
    def _names(cls, v: Any) -> Any:
        v = [v] if isinstance(v, str) else v
        if isinstance(v, list):
            if not v:
                raise ValueError("name at least one environment variable")
            for name in v:
                if not isinstance(name, str):
                    continue
                if KEY_PATTERN.search(name) or looks_secret(name):
                    raise ValueError(
                        "holds what looks like a secret; write the NAME of an environment "
                        "variable (e.g. VANTAX_WEBHOOK_SECRET)"
                    )
                if not ENV_NAME.fullmatch(name):
                    raise ValueError(f"{name!r} is not an environment variable name")
        return v

    @field_validator("path")
    @classmethod
    def _path(cls, v: str) -> str:
        if not v.startswith("/") or any(c in v for c in "?# "):
            raise ValueError("must be a URL path starting with '/', e.g. /webhooks/vantax")
        return v

    @field_validator("public_url")
    @classmethod
    def _public(cls, v: str | None) -> str | None:
        if v is None:
            return v
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{v!r} is not an http(s) URL")
        return v


class CampaignFile(_Model):
    campaign: CampaignSection
    api: ApiSection = Field(default_factory=ApiSection)
    pacing: PacingSection = Field(default_factory=PacingSection)
    inputs: InputsSection
    compliance: ComplianceSection = Field(default_factory=ComplianceSection)
    redial: RedialSection = Field(default_factory=RedialSection)
    output: OutputSection = Field(default_factory=OutputSection)
    history: HistorySection = Field(default_factory=HistorySection)
    report: ReportSection = Field(default_factory=ReportSection)
    webhook: WebhookSection | None = None
    store: StoreSection = Field(default_factory=StoreSection)
    monitor: MonitorSection | None = None
    budget: BudgetSection | None = None
    caller_id: CallerIdSection | None = None
    schedule: ScheduleSection = Field(default_factory=ScheduleSection)

    @model_validator(mode="after")
    def _one_caller_id_source(self) -> CampaignFile:
        if self.caller_id is not None and self.campaign.from_phone_number_id:
            raise ValueError(
                "campaign.from_phone_number_id and a [caller_id] pool are both set: the pool "
                "chooses the number of each call; remove one of them"
            )
        return self

    @model_validator(mode="after")
    def _pacing_fits(self) -> CampaignFile:
        if self.pacing.calls_per_second > self.api.requests_per_second:
            raise ValueError(
                "pacing.calls_per_second exceeds api.requests_per_second: every call needs "
                "at least one request"
            )
        return self
