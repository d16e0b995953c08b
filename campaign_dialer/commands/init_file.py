"""`init`: from a CRM export to a campaign file a person can read, then `check` on it.

The columns are detected exactly as `check` and `run` detect them (`load_contacts`), then
written out as `[inputs.columns]`, so the mapping is on the page where a person sees and
changes it, and the file reads the export the same way whether the keys stay or go. Values
come from the config model's defaults (one source of truth); the comments say what they do.
The file is never overwritten and never holds a key: the key lives in the environment.
"""

from __future__ import annotations

import os
import re
import tempfile
from datetime import time
from pathlib import Path
from typing import Any

from campaign_dialer import log
from campaign_dialer.clock import Clock
from campaign_dialer.commands.check_plan import check
from campaign_dialer.config import (
    ApiSection,
    CampaignSection,
    ComplianceSection,
    OutputSection,
    PacingSection,
    RedialSection,
)
from campaign_dialer.config_checks import AGENT_PLACEHOLDER, KEY_PATTERN
from campaign_dialer.contacts import ContactsError, load_contacts
from campaign_dialer.errors import DialerError, NotApplicable
from campaign_dialer.exitcodes import ExitCode

# roles `load_contacts` detects that `[inputs.columns]` has no key for: always detected
_HEADER_ONLY_ROLES = {"postal_code": "postal code", "country": "country",
                      "do_not_call": "Do-Not-Call checkbox"}


def toml_str(text: str) -> str:
    """A TOML basic string: quotes, backslashes and control characters escaped (a header is
    the export's text, untrusted)."""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return f"{v:g}" if isinstance(v, float) else str(v)
    if isinstance(v, time):
        return toml_str(v.strftime("%H:%M"))
    if isinstance(v, Path):
        return toml_str(v.as_posix())
    if isinstance(v, str):
        return toml_str(v)
    if isinstance(v, list | tuple):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    raise TypeError(f"no TOML for {type(v).__name__}")


def campaign_name(contacts: Path) -> str:
    """A journal name from the export's file name: letters, digits, '.', '_' and '-'."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", contacts.stem).strip("-._")[:80]
    return slug or "campaign"


def relative_to_file(path: Path, folder: Path) -> str:
    """`path` as the campaign file at `folder` resolves it: relative when it can be."""
    full = path.resolve()
    try:
        return Path(os.path.relpath(full, folder.resolve())).as_posix()
    except ValueError:  # another drive (Windows): only an absolute path reaches it
        return full.as_posix()


def _require_file(path: Path, option: str) -> None:
    if not path.is_file():
        raise NotApplicable(f"{option} {path}: no such file")


def detect_columns(contacts: Path, region: str) -> tuple[dict[str, Any], Any, list[str]]:
    """([inputs.columns] as detection found it, the loaded contacts, notes for the file).

    A phone column with no readable number would be refused when named explicitly (the
    wrong column?): it is left out and said, as detection reads nothing from it either."""
    found = load_contacts(contacts, default_region=region)
    phones = [p for p in found.phone_columns if not re.search(r" #\d+$", p)]
    columns: dict[str, Any] = {}
    if phones:
        columns["phone"] = phones
    for role in ("contact_id", "timezone", "state"):
        if role in found.roles:
            columns[role] = found.roles[role]
    notes: list[str] = []
    while True:
        try:
            load_contacts(contacts, default_region=region, columns=_as_keys(columns))
            return columns, found, notes
        except ContactsError as e:
            phones = columns.get("phone", [])
            if e.column is None or e.column not in phones or len(phones) < 2:
                raise
            columns["phone"] = [p for p in columns["phone"] if p != e.column]
            notes.append(f"{toml_str(e.column)} is not listed: none of its cells is a phone "
                         "number")


def _as_keys(columns: dict[str, Any]) -> dict[str, Any]:
    phone = columns.get("phone")
    if isinstance(phone, list) and len(phone) == 1:
        return {**columns, "phone": phone[0]}
    return columns


def campaign_text(
    *, contacts: Path, out: Path, name: str, agent: str | None, dnc: list[Path],
    consent: Path | None, columns: dict[str, Any], found: Any, notes: list[str],
) -> str:
    """The commented campaign file (see the module docstring)."""
    folder = out.parent
    api, pacing, comp, redial, output = (ApiSection(), PacingSection(), ComplianceSection(),
                                         RedialSection(), OutputSection())
    region = CampaignSection.model_fields["default_region"].default
    rel = relative_to_file(contacts, folder)
    agent_line = (
        f"agent_id = {toml_str(agent)}   # the Vantax agent that places the calls"
        if agent else
        f"agent_id = {toml_str(AGENT_PLACEHOLDER)}   # REQUIRED: your Vantax agent's id "
        "(`check` names this placeholder; `run` refuses it)"
    )
    lines = [
        f"# Campaign written by `campaign-dialer init` from {rel}.",
        "# Read it, change what you need, then: campaign-dialer check "
        f"{out.name}   (validates and shows the plan; no call).",
        "# Relative paths resolve from this file's folder. The API key is never written here:",
        f"# export {api.api_key_env}=... in the environment that runs the campaign.",
        "",
        "[campaign]",
        f"name = {toml_str(name)}   # names the campaign's journal: keep it once it has run",
        agent_line,
        '# agent_id = [{ id = "agt_a", weight = 1 }, { id = "agt_b", weight = 1 }]   '
        "# an A/B test",
        '# from_phone_number_id = "pn_..."   # default: the agent\'s own number',
        f"default_region = {toml_str(region)}   # region of numbers written without +country",
        "",
        "[api]",
        f"api_key_env = {toml_str(api.api_key_env)}   # the NAME of the variable holding the key",
        f"requests_per_second = {toml_value(api.requests_per_second)}   # the platform's limit "
        "(POST and GET share it)",
        f"max_live_calls = {toml_value(api.max_live_calls)}   # calls ringing or in progress "
        "at once",
        "",
        "[pacing]",
        f"calls_per_second = {toml_value(pacing.calls_per_second)}   # new calls per second, "
        "evenly spaced",
        "",
        "[inputs]",
        f"contacts = {toml_str(rel)}",
    ]
    if dnc:
        lines.append(
            f"dnc = {toml_value([relative_to_file(p, folder) for p in dnc])}   "
            "# Do-Not-Call lists (internal, undated)")
    else:
        lines.append("dnc = []   # no Do-Not-Call list given: add your internal opt-out list")
    if consent is not None:
        lines.append(f"consent = {toml_str(relative_to_file(consent, folder))}   "
                     "# the consent ledger: no consent, no call")
    else:
        lines.append('# consent = "consent.csv"   # no consent ledger given: every row is held '
                     "back (no_consent) until one is named here")
    enc = found.encoding.lower().replace("_", "-")
    if enc not in ("utf-8", "utf-8-sig", "utf-16", "utf8"):
        lines.append(f"# encoding = {toml_str(found.encoding)}   # detected for {rel}; "
                     "this key applies to every input file")
    lines += [
        "",
        "# Detected from the header, as `check` and `run` detect it; change a name to use "
        "another column.",
        "[inputs.columns]",
    ]
    phones = columns.get("phone", [])
    if phones:
        lines.append(f"phone = {toml_value(phones if len(phones) > 1 else phones[0])}"
                     + ("   # a row is dialed on its first valid number, in this order"
                        if len(phones) > 1 else ""))
    for role in ("contact_id", "timezone", "state"):
        if role in columns:
            lines.append(f"{role} = {toml_str(columns[role])}")
        else:
            lines.append(f"# {role} = \"...\"   # no such column detected")
    for note in notes:
        lines.append(f"# {note}")
    also = [f"{what} {toml_str(found.roles[role])}"
            for role, what in _HEADER_ONLY_ROLES.items() if role in found.roles]
    if also:
        lines.append("# also read from the header (no key: always detected): " + ", ".join(also))
    if found.ignored_columns:
        shown = ", ".join(toml_str(c) for c in found.ignored_columns[:12])
        more = "" if len(found.ignored_columns) <= 12 else ", ..."
        lines.append(f"# not used (kept in results.csv): {shown}{more}")
    lines += [
        "",
        "# National and state Do-Not-Call lists need a kind and the day they were downloaded",
        "# (a list over 31 days old stops `run`):",
        "# [[inputs.dnc_lists]]",
        '# path = "national-dnc.csv"',
        '# kind = "national"',
        '# as_of = "YYYY-MM-DD"',
        "",
        "[compliance]",
        f"calling_window = {toml_value(list(comp.calling_window))}   # recipient's local "
        "time; state rules apply on top",
        f"require_consent = {toml_value(comp.require_consent)}   # no consent, no call",
        f"allow_unknown_timezone = {toml_value(comp.allow_unknown_timezone)}   "
        "# unknown zone, no call",
        f"state_rules = {toml_value(comp.state_rules)}   # stricter US state hours, holidays "
        "and caps",
        "",
        "[redial]",
        f"max_attempts = {toml_value(redial.max_attempts)}   # attempts per person, ever "
        "(redial.statuses opts in to more)",
        "",
        "[output]",
        f"dir = {toml_value(output.dir)}   # results.csv, plan.csv, the journal and the report",
    ]
    return "\n".join(lines) + "\n"


def write_new(path: Path, text: str) -> None:
    """Write `path` whole, only if it does not exist: a link of a complete temporary file,
    so a person never finds half a file and an existing one is never replaced."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.link(tmp, path)
    except FileExistsError:
        raise NotApplicable(_exists(path)) from None
    finally:
        Path(tmp).unlink(missing_ok=True)


def _exists(path: Path) -> str:
    return (f"{path} already exists; init never overwrites a campaign file (choose another "
            "--out, or remove it)")


def init(
    contacts: Path, *, dnc: list[Path] | None = None, consent: Path | None = None,
    agent: str | None = None, out: Path = Path("campaign.toml"), name: str | None = None,
    clock: Clock | None = None,
) -> ExitCode:
    """Write a campaign file for `contacts`, then `check` it; 64 if `out` exists."""
    dnc = list(dnc or [])
    if out.exists() or out.is_symlink():
        raise NotApplicable(_exists(out))
    _require_file(contacts, "CONTACTS")
    for p in dnc:
        _require_file(p, "--dnc")
    if consent is not None:
        _require_file(consent, "--consent")
    if agent is not None and (not agent.strip() or KEY_PATTERN.search(agent)):
        raise NotApplicable("--agent must be an agent id (agt_...), never a key")
    name = name or campaign_name(contacts)
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,79}", name):
        raise NotApplicable(f"--name {name!r}: 1-80 letters, digits, '.', '_' or '-'")
    region = CampaignSection.model_fields["default_region"].default
    columns, found, notes = detect_columns(contacts, region)
    text = campaign_text(contacts=contacts, out=out, name=name, agent=agent, dnc=dnc,
                         consent=consent, columns=columns, found=found, notes=notes)
    write_new(out, text)
    con = log.out()
    con.print(f"wrote {out}", markup=False, highlight=False, soft_wrap=True)
    try:
        code = check(out, clock=clock)
    except DialerError:
        con.print(f"{out} is written; fix what follows in it, then `campaign-dialer check "
                  f"{out}`", markup=False, highlight=False, soft_wrap=True)
        raise
    if agent is None:
        con.print(f"next: set campaign.agent_id in {out} to your agent's id, then "
                  f"`campaign-dialer run {out}`", markup=False, highlight=False, soft_wrap=True)
    return code
