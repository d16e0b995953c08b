"""The caller-ID rules table: may a call show a number local to the recipient, by state.

`data/caller_id_rules.csv` (dated, each row cited) or a team's `caller_id.rules_file`, which
replaces it whole and is validated the same way: a bad cell refuses the file naming its line and
column (`ComplianceError`, exit 65), since a misread "off" would show a local number where counsel
said never. Not legal advice: the table records what each source says and the day it was read.
"""

from __future__ import annotations

import csv
import functools
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from campaign_dialer.compliance.base import DATA, ComplianceError
from campaign_dialer.contacts import STATE_CODES

ALLOWED = "allowed"
OFF = "off"
LOCAL_PRESENCE_VALUES = (ALLOWED, OFF)
CALLER_ID_RULES_COLUMNS = (
    "state", "local_presence", "rule", "citation", "source", "effective", "read",
)  # fmt: skip
CALLER_ID_RULES_MAX_AGE_DAYS = 180  # like the state rules table: `check` may warn when older
_TABLE_DATE = re.compile(r"#\s*table_date:\s*(\S+)")
_URL = re.compile(r"https?://[^\s/]+\S*")


class CallerIdRulesError(ValueError):
    """A cell of a caller-ID rules table cannot be read; `line` and `column` say which."""

    def __init__(self, problem: str, line: int | None = None, column: str | None = None) -> None:
        self.problem = problem
        self.line = line
        self.column = column
        where = ""
        if line is not None:
            where = f"line {line}" + (f", column {column!r}" if column else "") + ": "
        super().__init__(where + problem)


@dataclass(frozen=True)
class CallerIdRule:
    """One state's row: what the source says about the number shown, cited and dated."""

    state: str
    local_presence: str  # "allowed" | "off"
    rule: str
    citation: str
    sources: tuple[str, ...]  # public pages read (URLs)
    effective: date
    read: date
    line: int  # the line of the file it came from, for messages

    @property
    def allowed(self) -> bool:
        return self.local_presence == ALLOWED


@dataclass(frozen=True, eq=False)
class CallerIdRules:
    """A caller-ID rules table and the day it was last reviewed (`# table_date:`)."""

    rules: Mapping[str, CallerIdRule]
    table_date: date
    origin: str  # "built-in" or the team's file

    def get(self, state: str | None) -> CallerIdRule | None:
        return self.rules.get(state) if state else None

    def local_presence_allowed(self, state: str | None) -> bool:
        """Whether a number local to a recipient in `state` may be preferred.

        Unknown state (None, blank): False, since we cannot tell which rule applies. A state
        the table does not list: True (no rule found beyond the federal one, which forbids
        misleading caller ID, not an owned number that originates the call)."""
        if not state or not state.strip():
            return False
        rule = self.rules.get(state.strip().upper())
        return rule is None or rule.allowed

    @property
    def off_states(self) -> tuple[str, ...]:
        """States where local presence is off, sorted (for `check` and the docs)."""
        return tuple(sorted(st for st, r in self.rules.items() if not r.allowed))

    def age_days(self, at: datetime) -> int:
        if at.tzinfo is None or at.utcoffset() is None:
            raise ValueError(f"at must be timezone-aware (got naive {at.isoformat()})")
        return (at.astimezone(UTC).date() - self.table_date).days


def _date_cell(text: str, line: int, column: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise CallerIdRulesError(f"{text!r} is not a date YYYY-MM-DD", line, column) from None


def parse_caller_id_rules(text: str) -> tuple[dict[str, CallerIdRule], date]:
    """Read and validate a table's text; `CallerIdRulesError` names the line and the column.

    Refused: no `# table_date:` line, a missing column, a state that is not a US state or
    Canadian province code, a state listed twice (which row would count?), local_presence other
    than allowed/off, an empty rule or citation, a source that is not a public http(s) address
    (never a local path), an effective or read date that is not YYYY-MM-DD, a read date after
    the table date. Extra columns are ignored (a team's own notes)."""
    text = text.removeprefix("\ufeff")
    lines = text.splitlines()
    found = [(i + 1, m.group(1)) for i, ln in enumerate(lines)
             if (m := _TABLE_DATE.match(ln.strip()))]
    if not found:
        raise CallerIdRulesError("no '# table_date: YYYY-MM-DD' line (the day it was reviewed)")
    try:
        table_date = date.fromisoformat(found[0][1])
    except ValueError:
        raise CallerIdRulesError(
            f"table_date {found[0][1]!r} is not a date YYYY-MM-DD", found[0][0]
        ) from None
    # Comment lines become blank lines, so the reader's line numbers are the file's.
    kept = "\n".join("" if ln.lstrip().startswith("#") else ln for ln in lines)
    reader = csv.reader(io.StringIO(kept))
    header: list[str] | None = None
    header_line = 0
    rules: dict[str, CallerIdRule] = {}
    for record in reader:
        line = reader.line_num
        if not record or all(not c.strip() for c in record):
            continue
        if header is None:
            header = [c.strip() for c in record]
            header_line = line
            missing = [c for c in CALLER_ID_RULES_COLUMNS if c not in header]
            if missing:
                raise CallerIdRulesError(f"missing column(s) {', '.join(missing)}", line)
            continue
        if len(record) > len(header):
            raise CallerIdRulesError(
                f"{len(record)} cells but the header (line {header_line}) has {len(header)}"
                " (an unquoted comma?)", line,
            )
        row = {h: (record[i].strip() if i < len(record) else "") for i, h in enumerate(header)}
        st = row["state"].upper()
        if st not in STATE_CODES:
            raise CallerIdRulesError(
                f"{row['state']!r} is not a two-letter US state or Canadian province code",
                line, "state",
            )
        if st in rules:
            raise CallerIdRulesError(
                f"{st} is listed twice (first on line {rules[st].line})", line, "state"
            )
        lp = row["local_presence"].lower()
        if lp not in LOCAL_PRESENCE_VALUES:
            raise CallerIdRulesError(
                f"{row['local_presence']!r} is not one of: allowed, off", line, "local_presence"
            )
        for col in ("rule", "citation"):
            if not row[col]:
                raise CallerIdRulesError("is empty: say what the source says", line, col)
        sources = tuple(row["source"].split())
        if not sources:
            raise CallerIdRulesError("is empty: name the public page(s) read", line, "source")
        for s in sources:
            if not _URL.fullmatch(s):
                raise CallerIdRulesError(
                    f"{s!r} is not a public http(s) address", line, "source"
                )
        effective = _date_cell(row["effective"], line, "effective")
        read = _date_cell(row["read"], line, "read")
        if read > table_date:
            raise CallerIdRulesError(
                f"read {read} is after the table_date {table_date}", line, "read"
            )
        rules[st] = CallerIdRule(st, lp, row["rule"], row["citation"], sources, effective,
                                 read, line)
    if header is None:
        raise CallerIdRulesError("no header row")
    return rules, table_date


@functools.lru_cache(maxsize=1)
def builtin_caller_id_rules() -> CallerIdRules:
    """The shipped table (a bad shipped row is a bug: the tests load it)."""
    rules, table_date = parse_caller_id_rules(
        (DATA / "caller_id_rules.csv").read_text(encoding="utf-8")
    )
    return CallerIdRules(rules, table_date, "built-in")


def load_caller_id_rules(path: Path | None = None) -> CallerIdRules:
    """`caller_id.rules_file`: a team's own table, which replaces the built-in one (None).

    Refused with `ComplianceError` (exit 65) naming the file, line and column."""
    if path is None:
        return builtin_caller_id_rules()
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ComplianceError(path, f"cannot read the caller-ID rules table: {e}") from None
    try:
        rules, table_date = parse_caller_id_rules(text)
    except CallerIdRulesError as e:
        err = ComplianceError(path, str(e))
        err.row, err.column = e.line, e.column
        raise err from None
    return CallerIdRules(rules, table_date, str(path))
