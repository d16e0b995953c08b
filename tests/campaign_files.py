"""The one writer of campaign files for tests and scripts (benchmarks add the repo root to
sys.path to import it).

A campaign is given as sections of keys (`{"campaign": {"name": ...}, "api": {...}}`) and
written as TOML one `key = value` per line, strings double-quoted, sections in the order
given, so a test may still edit a line of it by text. It imports nothing of the dialer: the
files it writes are the user's input, read by the dialer like any other.
"""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Mapping
from datetime import date, time
from pathlib import Path
from typing import Any

Sections = Mapping[str, Mapping[str, Any]]


def toml_value(v: Any) -> str:
    """One TOML value: strings double-quoted (JSON's escapes are TOML's), lists and tables
    inline (an array of tables, `[[inputs.dnc_lists]]`, becomes a list of inline tables)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, date | time):  # a TOML local date or time (datetime is a date)
        return v.isoformat()
    if isinstance(v, list | tuple):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, Mapping):
        return "{ " + ", ".join(f"{k} = {toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"no TOML for {type(v).__name__}: {v!r}")


def campaign_toml(sections: Sections) -> str:
    """The TOML text of a campaign; a table inside a section becomes `[section.table]`."""
    out: list[str] = []
    for name, keys in sections.items():
        if out:
            out.append("")
        out.append(f"[{name}]")
        tables = {k: v for k, v in keys.items() if isinstance(v, Mapping)}
        out += [f"{k} = {toml_value(v)}" for k, v in keys.items() if k not in tables]
        for k, v in tables.items():
            out += ["", f"[{name}.{k}]", *(f"{kk} = {toml_value(vv)}" for kk, vv in v.items())]
    return "\n".join(out) + "\n"


def merged(sections: Sections, *overrides: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """`sections` with each override's keys replacing or adding to them (tables merge too)."""

    def merge(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(a)
        for k, v in b.items():
            out[k] = merge(out[k], v) if isinstance(v, Mapping) and isinstance(
                out.get(k), Mapping) else v
        return out

    result: dict[str, Any] = {k: dict(v) for k, v in sections.items()}
    for o in overrides:
        result = merge(result, o)
    return result


def parse_snippet(text: str, section: str | None = None) -> dict[str, Any]:
    """TOML lines a caller gives (e.g. "max_live_calls = 2"), as keys of `section` if named."""
    data = tomllib.loads(text)
    return {section: data} if section is not None else data


def write_campaign_toml(path: Path, sections: Sections) -> Path:
    """Write the campaign file at `path` (its folder is made); returns `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(campaign_toml(sections), encoding="utf-8")
    return path
