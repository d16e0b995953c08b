"""Two campaigns (or two agents of one) side by side."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.table import Table

from campaign_dialer import log
from campaign_dialer.files import write_text_atomic
from campaign_dialer.report.charts import hbar
from campaign_dialer.report.common import COLORS, HEADLINE_LABELS, CompareError
from campaign_dialer.report.html import template_env
from campaign_dialer.report.metrics import iso_utc, summary
from campaign_dialer.report.text import num, pct
from campaign_dialer.results import Redactor

if TYPE_CHECKING:
    from campaign_dialer.config import Campaign


COMPARE_METRICS = (
    *HEADLINE_LABELS.items(),
    ("connected_of_dialed", "Connected / dialed"),
    ("median_duration", "Median duration (s)"),
)


def _metric(side: dict[str, Any], key: str) -> float | int | None:
    if key in side["headline"]:
        return side["headline"][key]
    if key in side["rates"]:
        return side["rates"][key]
    if key == "median_duration":
        return side["durations"]["median"]
    return None


def compare_rows(sides: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for key, label in COMPARE_METRICS:
        a, b = (_metric(x, key) for x in sides)
        share = key == "connected_of_dialed"
        diff = None if a is None or b is None else b - a
        out.append({
            "key": key, "label": label,
            "a": pct(a) if share else num(a), "b": pct(b) if share else num(b),
            "diff": "-" if diff is None else (
                f"{100 * diff:+.1f} pt" if share else
                f"{diff:+,}" if isinstance(diff, int) else f"{diff:+.1f}"),
        })
    return out


def _side(title: str, s: dict[str, Any]) -> dict[str, Any]:
    return {
        "title": title, "s": s,
        "funnel": hbar([(f["label"], f["rows"]) for f in s["funnel"]], width=460, label_w=170),
        "outcomes": hbar(list(s["outcomes"].items()), width=460, label_w=170,
                         empty="no call dialed"),
        "statuses": hbar(list(s["statuses"].items()), width=460, label_w=170,
                         empty="no call dialed"),
    }


def compare(
    a: Campaign, b: Campaign | None
) -> tuple[list[str], list[dict[str, Any]], Path]:
    """Side by side: two campaigns, or the agents of one (b None) when rows were split."""
    sa = summary(a)
    if b is None:
        agents = sa["agents"]
        if len(agents) < 2:
            raise CompareError(f"{a.name}: its rows were not split between agents; "
                              "give two campaigns to compare")
        sides = [{**x, "campaign": a.name} for x in agents[:2]]
        titles = [f"agent {x['agent_id']}" for x in agents[:2]]
        return titles, sides, a.output_dir / f"compare-{a.name}-agents.html"
    titles = [a.name, b.name]
    if a.name == b.name:
        titles = [f"{a.name} ({a.path.parent.name})", f"{b.name} ({b.path.parent.name})"]
    sides = [sa, summary(b)]
    return titles, sides, a.output_dir / f"compare-{a.name}-vs-{b.name}.html"


def write_compare(
    path: Path, titles: Sequence[str], sides: Sequence[dict[str, Any]], redact: Redactor
) -> Path:
    html = template_env().get_template("compare.html.j2").render(
        title=f"{titles[0]} vs {titles[1]}", rows=compare_rows(sides),
        sides=[_side(t, x) for t, x in zip(titles, sides, strict=True)],
        generated_at=iso_utc(datetime.now(UTC)), colors=COLORS,
    )
    write_text_atomic(path, redact(html))
    return path


def print_compare(titles: Sequence[str], sides: Sequence[dict[str, Any]]) -> None:
    t = Table(title=f"{titles[0]} vs {titles[1]}")
    t.add_column("figure")
    t.add_column(titles[0], justify="right")
    t.add_column(titles[1], justify="right")
    t.add_column("difference", justify="right")
    for r in compare_rows(sides):
        t.add_row(r["label"], r["a"], r["b"], r["diff"])
    log.out().print(t)
