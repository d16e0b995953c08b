"""Post-campaign reporting, read from the journal and the results (never from memory).

One `summary` dict feeds the HTML page, summary.json and the terminal, so the three cannot
disagree. Row figures come from the results (results.csv when it agrees with the journal,
else rebuilt from the journal: `results.current`); call figures (timeline, local hours,
retries, HTTP) come from the journal through the store's typed reads. The page is one
offline file: charts are inline SVG drawn here, the only script is inline and pinned by hash
in its Content-Security-Policy.

- `data`: what is read (journal facts, rows); `metrics` and `business`: the figures;
- `charts`: SVG; `html`: the page and exports; `text`: the terminal; `comparison`: two
  side by side; `cli`: the `report` command.
"""

from campaign_dialer.report.business import ab_test, business, display_zone, two_proportion, wilson
from campaign_dialer.report.charts import charts, columns, hbar, line
from campaign_dialer.report.cli import command
from campaign_dialer.report.common import (
    COLORS,
    DEFINITIONS,
    FILES,
    HEADLINE_LABELS,
    SCHEMA_VERSION,
    TERMINAL_LABELS,
    CompareError,
    ReportError,
    connected_mask,
    held_mask,
    label,
)
from campaign_dialer.report.comparison import compare, compare_rows, print_compare, write_compare
from campaign_dialer.report.data import JournalFacts, Loaded, load, read_journal
from campaign_dialer.report.html import (
    TABLE_ROW_CAP,
    build,
    build_files,
    render_html,
    script_json,
    table_data,
    write_parquet,
)
from campaign_dialer.report.metrics import (
    figures,
    parse_local_times,
    state_label,
    summarize,
    summary,
    timeline,
)
from campaign_dialer.report.text import print_run_summary, print_summary, print_text
from campaign_dialer.results import Redactor, read_results_csv

__all__ = [
    "COLORS", "DEFINITIONS", "FILES", "HEADLINE_LABELS", "SCHEMA_VERSION", "TABLE_ROW_CAP",
    "TERMINAL_LABELS", "CompareError", "JournalFacts", "Loaded", "Redactor", "ReportError",
    "build_files", "print_run_summary",
    "parse_local_times", "timeline", "ab_test", "build", "business", "charts", "columns",
    "command", "compare", "compare_rows", "connected_mask", "display_zone", "figures", "hbar",
    "held_mask", "label", "line", "load", "print_compare", "print_summary", "print_text",
    "read_journal", "read_results_csv", "render_html", "script_json", "state_label",
    "summarize", "summary", "table_data", "two_proportion", "wilson", "write_compare",
    "write_parquet",
]
