"""What `load_campaign` says of a campaign file's values it refuses: secrets written into it, a
key the client could not send, a placeholder agent, a host beyond loopback, and pydantic's
errors as "key: problem" with a did-you-mean.

Knows neither the model (`config_model`) nor the loaded campaign (`config`, which checks the
input files a campaign names): both use these, so the schema reads on its own.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from typing import Any

from pydantic import BaseModel, ValidationError

KEY_PATTERN = re.compile(r"vx_(live|test)_[A-Za-z0-9]{4,}")
# What `init` writes as campaign.agent_id when no --agent is given: `check` names it and
# `run` refuses it (78), so no call goes out under an agent nobody chose.
AGENT_PLACEHOLDER = "REPLACE_WITH_YOUR_AGENT_ID"
SECRET_KEY_NAMES = {"api_key", "apikey", "key", "token", "secret", "bearer", "password"}
# What a webhook signing secret looks like when pasted where its variable's NAME belongs.
SECRET_PREFIX = re.compile(r"^(whsec_|vx_(live|test)_)", re.IGNORECASE)


def placeholder_agent(agents: list[tuple[str, float]]) -> bool:
    """Whether an agent of the campaign is still `init`'s placeholder."""
    return any(a == AGENT_PLACEHOLDER for a, _ in agents)


def looks_secret(name: str) -> bool:
    """A long mixed-case string of letters and digits is a pasted secret, not a NAME."""
    if SECRET_PREFIX.search(name):
        return True
    return (len(name) >= 20 and not name.isupper() and any(c.isdigit() for c in name)
            and any(c.islower() for c in name))


def find_secrets(data: Any, prefix: str = "") -> str | None:
    """Key path of the first value that is, or is named like, an API key."""
    if isinstance(data, dict):
        for k, v in data.items():
            path = f"{prefix}.{k}" if prefix else str(k)
            if str(k).lower() in SECRET_KEY_NAMES:
                return path
            found = find_secrets(v, path)
            if found:
                return found
    elif isinstance(data, list):
        for i, v in enumerate(data):
            found = find_secrets(v, f"{prefix}[{i}]")
            if found:
                return found
    elif isinstance(data, str) and KEY_PATTERN.search(data):
        return prefix
    return None


def key_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def model_at(root: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The section model a key path points into (for "did you mean")."""
    model = root
    for part in loc:
        field = model.model_fields.get(str(part))
        ann = field.annotation if field else None
        if not (isinstance(ann, type) and issubclass(ann, BaseModel)):
            return None
        model = ann
    return model


def suggest(root: type[BaseModel], loc: tuple[Any, ...]) -> str | None:
    """The known key an unknown one is most likely a typo of, as the user would write it."""
    model = model_at(root, loc[:-1])
    if model is None:
        return None
    close = difflib.get_close_matches(str(loc[-1]), list(model.model_fields), n=1, cutoff=0.6)
    if not close:
        return None
    full = (*loc[:-1], close[0])
    ann = model.model_fields[close[0]].annotation
    is_table = isinstance(ann, type) and issubclass(ann, BaseModel)
    return f"[{key_path(full)}]" if is_table else key_path(full)


def explain(e: ValidationError, root: type[BaseModel]) -> list[tuple[str, str]]:
    """All of pydantic's errors as (key, problem), typos explained once, not twice."""
    errors = e.errors()
    suggested: set[tuple[Any, ...]] = set()
    hints: dict[int, str] = {}
    for i, err in enumerate(errors):
        if err["type"] == "extra_forbidden":
            hint = suggest(root, tuple(err["loc"]))
            if hint:
                hints[i] = hint
                suggested.add((*err["loc"][:-1], hint.strip("[]").split(".")[-1]))
    out: list[tuple[str, str]] = []
    for i, err in enumerate(errors):
        loc = tuple(err["loc"])
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key" + (f"; did you mean {hints[i]}?" if i in hints else "")
        elif err["type"] == "missing":
            if loc in suggested:
                continue  # said with the typo: "unknown key; did you mean ..."
            msg = "required key is missing"
        elif err["type"] in TYPE_WORDS:
            msg = f"must be {TYPE_WORDS[err['type']]}"
            got = err.get("input")
            if isinstance(got, str | int | float | bool) and len(repr(got)) <= 60:
                msg += f", not {kind(got)} ({toml_literal(got)})"
                if isinstance(got, str):
                    msg += "; write it without quotes"
        out.append((key_path(loc), msg))
    return out


TYPE_WORDS = {
    "float_type": "a number", "int_type": "a whole number", "bool_type": "true or false",
    "string_type": "a string in quotes", "list_type": "a list, e.g. [...]",
}


def kind(v: Any) -> str:
    if isinstance(v, bool):
        return "true/false"
    return {str: "a string", int: "a whole number", float: "a decimal number"}[type(v)]


def toml_literal(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return f'"{v}"' if isinstance(v, str) else repr(v)


def is_loopback_host(host: str | None) -> bool:
    """Does this host name or address never leave the machine? The one answer for plain-http
    URLs, the simulated clock and the client's proxy bypass: `127.0.0.1.example.com` is a
    name that may resolve anywhere, `0:0:0:0:0:0:0:1` and `[::1]` are loopback."""
    host = (host or "").strip("[]").lower()
    if host == "localhost":
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)  # ::ffff:127.0.0.1
    return ip.is_loopback or (mapped is not None and mapped.is_loopback)


def key_problem(key: str) -> str | None:
    """What makes a key unsendable as `Authorization: Bearer KEY` (None: nothing).

    A key pasted with a line break inside, a space or typographic quotes would make every
    request fail before it is sent; that is a wrong key, said once, never a retried outage.
    """
    if any(c in "\r\n" for c in key):
        return "holds a line break"
    if any(c.isspace() for c in key):
        return "holds a space or tab"
    if not key.isascii():
        return "holds a character that is not plain ASCII (a typographic quote?)"
    if not key.isprintable():
        return "holds a control character"
    return None
