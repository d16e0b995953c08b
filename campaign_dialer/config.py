"""A campaign, loaded: its file validated (`config_model`), paths resolved against the file's
folder, secrets and the store URL read from the environment, inputs that must exist checked.

`campaign_dialer.config` is where the rest of the dialer and its users import the campaign
file's names from (`load_campaign`, `Campaign`, the sections, `ConfigError`).
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from pydantic import ValidationError

from campaign_dialer.config_callerid import CallerIdSection
from campaign_dialer.config_checks import (
    KEY_PATTERN,
    explain,
    find_secrets,
    is_loopback_host,
    key_problem,
    looks_secret,
)
from campaign_dialer.config_model import (  # re-exported: the campaign file's model
    ENV_NAME,
    FEDERAL_END,
    FEDERAL_START,
    HHMM,
    NAME_PATTERN,
    AgentWeight,
    ApiSection,
    CampaignFile,
    CampaignSection,
    ColumnsSection,
    ComplianceSection,
    DncListSection,
    HistorySection,
    InputsSection,
    LaxPath,
    Money,
    OutputSection,
    PacingSection,
    PositiveFloat,
    Rate,
    RedialSection,
    ReportSection,
    Seconds,
    ShortSeconds,
    WebhookSection,
)
from campaign_dialer.config_ops import BudgetSection, MonitorSection, budget_problem
from campaign_dialer.config_schedule import ScheduleSection
from campaign_dialer.config_store import HOME_ENV, STORE_URL_ENV, StoreSection, store_url
from campaign_dialer.errors import ConfigError, DialerError

__all__ = [
    # the loaded campaign
    "Campaign", "ConfigError", "DialerError", "load_campaign", "missing_input", "require_inputs",
    "same_file", "store_warnings", "writable_path_problems",
    # checks on a file's values
    "KEY_PATTERN", "is_loopback_host", "looks_secret",
    # the campaign file's model (config_model and the sections of their own modules)
    "ENV_NAME", "FEDERAL_END", "FEDERAL_START", "HHMM", "NAME_PATTERN", "AgentWeight",
    "ApiSection", "BudgetSection", "CallerIdSection", "CampaignFile", "CampaignSection",
    "ColumnsSection", "ComplianceSection", "DncListSection", "HistorySection", "InputsSection",
    "LaxPath", "Money", "MonitorSection", "OutputSection", "PacingSection", "PositiveFloat",
    "Rate", "RedialSection", "ReportSection", "ScheduleSection", "Seconds", "ShortSeconds",
    "StoreSection", "WebhookSection",
]  # fmt: skip


class Campaign:
    """A validated campaign with its paths resolved against the campaign file's folder."""

    def __init__(self, path: Path, model: CampaignFile) -> None:
        self.path = path
        self.model = model
        base = path.parent
        self.contacts_path = _resolve(base, model.inputs.contacts)
        lists = model.inputs.dnc_lists
        self.dnc_paths = [_resolve(base, p) for p in model.inputs.dnc]
        self.dnc_paths += [_resolve(base, d.path) for d in lists]
        # parallel to dnc_paths: None for a plain `inputs.dnc` file (an internal list)
        self.dnc_lists: list[tuple[str, DncListSection] | None] = [None] * len(model.inputs.dnc)
        self.dnc_lists += [(f"inputs.dnc_lists[{i}]", d) for i, d in enumerate(lists)]
        self.consent_path = _resolve(base, model.inputs.consent) if model.inputs.consent else None
        self.rules_path = (
            _resolve(base, model.compliance.rules_file) if model.compliance.rules_file else None
        )
        self.reassigned_path = (
            _resolve(base, model.inputs.reassigned) if model.inputs.reassigned else None
        )
        self.dnc_ledger_path = _resolve(base, model.compliance.dnc_ledger)
        self.output_dir = _resolve(base, model.output.dir)
        self.history_path = _resolve(base, model.history.path) if model.history.path else None
        cid = model.caller_id
        self.caller_id_rules_path = (
            _resolve(base, cid.rules_file) if cid is not None and cid.rules_file else None
        )

    @property
    def name(self) -> str:
        return self.model.campaign.name

    @property
    def journal_path(self) -> Path:
        return self.output_dir / f"{self.name}.journal.sqlite"

    @property
    def results_path(self) -> Path:
        return self.output_dir / "results.csv"

    @property
    def transcripts_path(self) -> Path:
        return self.output_dir / "transcripts.parquet"

    @property
    def store_url(self) -> str | None:
        """The team's database (env CAMPAIGN_DIALER_STORE_URL wins); None: SQLite files."""
        return store_url(self.path, self.model.store.url)

    def api_key(self) -> str:
        """Read the key from the environment at the last moment; it is never stored."""
        env = self.model.api.api_key_env
        raw = os.environ.get(env)
        key = (raw or "").strip()
        if not key:
            what = "is not set" if raw is None else "is empty"
            raise ConfigError(self.path, "api.api_key_env", f"environment variable {env} {what}")
        problem = key_problem(key)
        if problem:  # a header the client cannot send: 78 now, never an outage or a bug later
            raise ConfigError(
                self.path, "api.api_key_env",
                f"the key in environment variable {env} {problem}; set it to the key alone "
                "(the key itself is not shown)",
            )
        return key

    def webhook_secrets(self) -> list[str]:
        """The webhook signing secrets, read from the environment at the last moment.

        Each named variable may be unset (a rotation half done); at least one must be set.
        """
        hook = self.model.webhook
        if hook is None:
            return []
        found = [os.environ.get(name, "").strip() for name in hook.secret_env]
        secrets = [s for s in found if s]
        if not secrets:
            raise ConfigError(
                self.path, "webhook.secret_env",
                f"none of the environment variables {', '.join(hook.secret_env)} is set: "
                "set the agent webhook's signing secret there",
            )
        return secrets


def _resolve(base: Path, p: Path) -> Path:
    p = Path(os.path.expanduser(p))
    return p if p.is_absolute() else (base / p)


def load_campaign(path: Path | str, *, check_inputs: bool = True) -> Campaign:
    """Parse and validate a campaign file; raise ConfigError naming file and key."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(path, "", "campaign file not found") from None
    except OSError as e:
        raise ConfigError(path, "", f"cannot read: {e.strerror}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise ConfigError(path, "", "not UTF-8 text") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(path, "", f"not valid TOML: {e}") from None

    secret = find_secrets(data)
    if secret and secret.startswith("webhook"):
        raise ConfigError(
            path, secret,
            "a webhook signing secret must not be written in the campaign file; put it in "
            "the environment and name the variable with webhook.secret_env",
        )
    if secret:
        raise ConfigError(
            path,
            secret,
            "an API key must not be written in the campaign file; put it in the environment "
            "and name the variable with api.api_key_env",
        )
    try:
        model = CampaignFile.model_validate(data)
    except ValidationError as e:
        raise ConfigError.of(path, explain(e, CampaignFile)) from None

    unpriced = budget_problem(model.budget, model.report)
    if unpriced:
        raise ConfigError(path, "budget.max_cost", unpriced)
    campaign = Campaign(path.resolve(), model)
    if check_inputs:
        require_inputs(campaign)
    return campaign


def require_inputs(c: Campaign) -> None:
    """Every input named is a file, the contacts are not a DNC list or a consent ledger, and
    outputs have the right kind of place to go: all problems at once, before anything runs."""
    checks: list[tuple[str, Path]] = [("inputs.contacts", c.contacts_path)]
    plain = len(c.model.inputs.dnc)
    checks += [(f"inputs.dnc[{i}]", p) for i, p in enumerate(c.dnc_paths[:plain])]
    checks += [
        (f"inputs.dnc_lists[{i}].path", p) for i, p in enumerate(c.dnc_paths[plain:])
    ]
    if c.consent_path is not None:
        checks.append(("inputs.consent", c.consent_path))
    if c.reassigned_path is not None:
        checks.append(("inputs.reassigned", c.reassigned_path))
    if c.rules_path is not None:
        checks.append(("compliance.rules_file", c.rules_path))
    if c.caller_id_rules_path is not None:
        checks.append(("caller_id.rules_file", c.caller_id_rules_path))
    problems = [
        (key, f"{p} is not a file" if p.exists() else missing_input(c, p))
        for key, p in checks if not p.is_file()
    ]
    # The people to call read from the Do-Not-Call list or the consent ledger: a slip of the
    # pen that would make the list of people who said no into the list of people to ring.
    others = [(k, p) for k, p in checks[1:]] + [("compliance.dnc_ledger", c.dnc_ledger_path)]
    for key, p in others:
        if same_file(c.contacts_path, p):
            problems.append(
                ("inputs.contacts", f"{c.contacts_path} is also {key}: contacts must be the "
                 "people to call, not a Do-Not-Call list or a consent ledger")
            )
    if c.model.compliance.require_consent and c.consent_path is None:
        problems.append(
            ("inputs.consent", "compliance.require_consent is true but no consent ledger is given")
        )
    problems += writable_path_problems(c)
    if problems:
        raise ConfigError.of(c.path, problems)


def missing_input(c: Campaign, p: Path) -> str:
    """"Does not exist", with the rule a person misses most: a relative path is read from
    the campaign file's folder, not from where the command was typed."""
    base = c.path.parent
    try:
        rel = p.relative_to(base)
    except ValueError:
        return f"input file {p} does not exist"
    text = (f"input file {p} does not exist (a relative path is read from the campaign "
            f"file's folder {base})")
    here = Path.cwd() / rel
    if here.resolve() != p.resolve() and here.is_file():
        text += (f"; {os.path.relpath(here)} exists from the current folder: write the path "
                 f"relative to the campaign file, or absolute")
    return text


def same_file(a: Path, b: Path) -> bool:
    try:
        return a == b or (a.exists() and b.exists() and a.samefile(b))
    except OSError:
        return False


def writable_path_problems(c: Campaign) -> list[tuple[str, str]]:
    """Outputs must be of the right kind before anything runs (a file, a folder)."""
    problems: list[tuple[str, str]] = []
    ledger = c.dnc_ledger_path
    if ledger.exists() and not ledger.is_file():
        problems.append(("compliance.dnc_ledger", f"{ledger} is not a file"))
    elif ledger.parent.exists() and not ledger.parent.is_dir():
        problems.append(("compliance.dnc_ledger", f"{ledger.parent} is not a folder"))
    out = c.output_dir
    if out.exists() and not out.is_dir():
        problems.append(("output.dir", f"{out} is not a folder"))
    else:
        for parent in out.parents:
            if parent.exists():
                if not parent.is_dir():
                    problems.append(("output.dir", f"{parent} is not a folder"))
                break
    return problems


def store_warnings(campaign: Campaign) -> list[str]:
    """What the operator set that a store URL makes moot."""
    if campaign.store_url is None:
        return []
    moot = []
    if campaign.model.history.path is not None:
        moot.append("[history] path")
    if os.environ.get(HOME_ENV, "").strip():
        moot.append(HOME_ENV)
    if not moot:
        return []
    return [
        f"{' and '.join(moot)} {'do' if len(moot) > 1 else 'does'} not apply: the journal, "
        "contact history and DNC ledger live in the store database ([store] url / "
        f"{STORE_URL_ENV})"
    ]
