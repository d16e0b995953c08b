"""Tables and cells several commands print alike."""

from __future__ import annotations

from typing import Any

from rich.table import Table


def fate_table(title: str, by_reason: list[dict[str, Any]], total: int | None = None) -> Any:
    t = Table(title=title)
    t.add_column("fate")
    t.add_column("reason")
    t.add_column("rows", justify="right")
    for item in by_reason:
        t.add_row(item["disposition"], item["reason"] or "-", str(item["rows"]))
    if total is not None:
        t.add_row("[bold]total", "", f"[bold]{total}")
    return t


def dash(v: Any) -> str:
    return "-" if v is None else str(v)
