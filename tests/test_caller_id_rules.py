"""The caller-ID rules table (local presence by state): shipped dated and cited, a team's own
file replaces it and is refused naming its line and column when a cell cannot be read."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from campaign_dialer.compliance import ComplianceError
from campaign_dialer.compliance.callerid import (
    CALLER_ID_RULES_COLUMNS,
    builtin_caller_id_rules,
    load_caller_id_rules,
)
from campaign_dialer.errors import InputError
from campaign_dialer.exitcodes import ExitCode

SHIPPED = Path(__file__).resolve().parents[1] / "campaign_dialer/data/caller_id_rules.csv"
HEADER = ",".join(CALLER_ID_RULES_COLUMNS) + "\n"
GOOD_ROW = "SC,off,no SC area code without an office,S.C. Code 37-21-50,https://example.org/sc,2018-05-18,2026-01-01\n"  # noqa: E501
DATED = "# table_date: 2026-01-02\n"


def test_the_builtin_table_date_is_read_from_the_file() -> None:
    line = next(ln for ln in SHIPPED.read_text().splitlines() if ln.startswith("# table_date:"))
    assert builtin_caller_id_rules().table_date == date.fromisoformat(line.split()[2])
    assert load_caller_id_rules(None) is builtin_caller_id_rules()


def test_every_shipped_row_is_cited_and_dated() -> None:
    table = builtin_caller_id_rules()
    assert {"FL", "OK", "MD", "SC", "VA"} <= set(table.rules)
    for st, rule in table.rules.items():
        assert rule.rule and rule.citation, st
        assert rule.sources and all(re.match(r"https?://", s) for s in rule.sources), st
        assert rule.effective <= rule.read <= table.table_date, st
    # never a path of this machine, anywhere in the file
    assert "file:" not in SHIPPED.read_text()  # tests/test_docs.py: no machine path either


def test_the_shipped_table_is_conservative_where_the_sources_are() -> None:
    table = builtin_caller_id_rules()
    assert table.off_states == ("FL", "MD", "OK", "SC", "VA")
    assert not table.local_presence_allowed("SC")
    assert not table.local_presence_allowed("fl")  # a lower-case hint is the same state
    assert table.local_presence_allowed("TX")  # no rule found: the federal one only
    assert table.local_presence_allowed("MS")  # listed, allowed (preempted, owned numbers)
    assert not table.local_presence_allowed(None)  # unknown state: never local
    assert not table.local_presence_allowed("")


def test_a_teams_file_replaces_the_builtin_table(tmp_path: Path) -> None:
    p = tmp_path / "cid.csv"
    p.write_text(DATED + HEADER + GOOD_ROW.replace("SC,off", "SC,allowed"))
    table = load_caller_id_rules(p)
    assert table.origin == str(p) and table.table_date == date(2026, 1, 2)
    assert table.local_presence_allowed("SC")
    assert table.local_presence_allowed("FL")  # replaced, not merged: FL is not in it
    assert table.off_states == ()
    assert table.get("SC") is not None and table.get("SC").line == 3  # type: ignore[union-attr]
    assert table.age_days(datetime(2026, 1, 12, tzinfo=UTC)) == 10


def test_excel_bom_crlf_and_quoted_commas_are_read(tmp_path: Path) -> None:
    p = tmp_path / "cid.csv"
    body = DATED + HEADER + 'VA,off,"must transmit a number, may substitute",59.1-513,' \
        "https://example.org/va,2019-07-01,2026-01-01\n"
    p.write_bytes(b"\xef\xbb\xbf" + body.replace("\n", "\r\n").encode())
    table = load_caller_id_rules(p)
    assert table.get("VA").rule == "must transmit a number, may substitute"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("body", "line", "column", "needle"),
    [
        (HEADER + GOOD_ROW, None, None, "table_date"),
        ("# table_date: 2026-13-01\n" + HEADER + GOOD_ROW, 1, None, "table_date"),
        (DATED + "state,local_presence\nSC,off\n", 2, None, "missing column"),
        (DATED + HEADER + GOOD_ROW.replace("SC,off", "South Carolina,off"), 3, "state", "code"),
        (DATED + HEADER + GOOD_ROW.replace("SC,off", "ZZ,off"), 3, "state", "code"),
        (DATED + HEADER + GOOD_ROW.replace("SC,off", "SC,no"), 3, "local_presence", "allowed"),
        (DATED + HEADER + GOOD_ROW.replace("SC,off", "SC,"), 3, "local_presence", "allowed"),
        (DATED + HEADER + GOOD_ROW.replace("no SC area code without an office", ""), 3, "rule",
         "empty"),
        (DATED + HEADER + GOOD_ROW.replace("S.C. Code 37-21-50", ""), 3, "citation", "empty"),
        (DATED + HEADER + GOOD_ROW.replace("https://example.org/sc", ""), 3, "source", "empty"),
        (DATED + HEADER + GOOD_ROW.replace("https://example.org/sc", "/srv/notes/x.md"), 3,
         "source", "http"),
        (DATED + HEADER + GOOD_ROW.replace("2018-05-18", "18/05/2018"), 3, "effective", "date"),
        (DATED + HEADER + GOOD_ROW.replace("2026-01-01", "2026-02-01"), 3, "read",
         "after the table_date"),
        (DATED + HEADER + GOOD_ROW + "# a comment\n" + GOOD_ROW, 5, "state", "twice"),
        (DATED + HEADER + GOOD_ROW.replace("without an office", "without, an office"), 3, None,
         "cells"),
    ],
)
def test_a_bad_team_file_is_refused_naming_line_and_column(
    tmp_path: Path, body: str, line: int | None, column: str | None, needle: str
) -> None:
    p = tmp_path / "cid.csv"
    p.write_text(body)
    with pytest.raises(ComplianceError) as e:
        load_caller_id_rules(p)
    msg = str(e.value)
    assert str(p) in msg and needle in msg, msg
    assert e.value.row == line and e.value.column == column
    if line is not None:
        assert f"line {line}" in msg
    if column is not None:
        assert f"column {column!r}" in msg
    assert isinstance(e.value, InputError) and e.value.exit_code == ExitCode.DATAERR == 65


def test_an_unreadable_team_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ComplianceError, match="cannot read"):
        load_caller_id_rules(tmp_path / "absent.csv")
    p = tmp_path / "latin1.csv"
    p.write_bytes((DATED + HEADER + GOOD_ROW.replace("office", "offic\xe9")).encode("latin-1"))
    with pytest.raises(ComplianceError, match="cannot read"):
        load_caller_id_rules(p)


def test_a_pool_number_limited_to_a_region_no_area_code_has_is_refused() -> None:
    """A typo in `states` would keep that number from ever being used: refused (78 from the
    CLI), every region the area-code table knows accepted."""
    from pydantic import ValidationError

    from campaign_dialer.compliance import tables
    from campaign_dialer.config_callerid import NANP_REGIONS, CallerIdSection

    known = set()
    for code in tables.area_codes().values():
        known.update(code.states)
    assert known and known <= NANP_REGIONS
    ok = CallerIdSection.model_validate(
        {"numbers": [{"id": "pn_a", "number": "+12125550100", "states": sorted(known)}]})
    assert ok.numbers[0].states == sorted(known)
    with pytest.raises(ValidationError, match="NX"):
        CallerIdSection.model_validate(
            {"numbers": [{"id": "pn_a", "number": "+12125550100", "states": ["NY", "NX"]}]})
