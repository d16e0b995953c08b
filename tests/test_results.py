"""Exports people open: no cell may run as a spreadsheet formula; an E.164 phone stays as is."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from campaign_dialer.contacts import load_contacts
from campaign_dialer.results import RESULT_COLUMNS, neutralize, results_frame
from campaign_dialer.store import Journal

DANGEROUS_FIRST = "=@\t\r"


@given(st.text())
def test_no_neutralized_cell_can_start_a_formula(cell: str) -> None:
    out = neutralize(cell)
    if out and out[0] in "=@\t\r":
        raise AssertionError(out)
    if out and out[0] in "+-":
        body = out[1:]
        assert body.replace(".", "", 1).replace("e", "", 1).replace("E", "", 1).lstrip(
            "+-").isdigit()


@given(st.text())
def test_neutralizing_only_prefixes(cell: str) -> None:
    out = neutralize(cell)
    assert out == cell or out == "'" + cell


def test_examples() -> None:
    assert neutralize("+14155550188") == "+14155550188"
    assert neutralize("-12.5") == "-12.5"
    assert neutralize("=HYPERLINK(\"http://x\")") == "'=HYPERLINK(\"http://x\")"
    assert neutralize("@SUM(A1:A2)") == "'@SUM(A1:A2)"
    assert neutralize("-2+3") == "'-2+3"
    assert neutralize("+1 (415) 555-0188") == "'+1 (415) 555-0188"
    assert neutralize("Acme, Inc.") == "Acme, Inc."
    assert neutralize("") == ""


def test_input_columns_that_clash_are_renamed_input_dot_name(tmp_path: Path) -> None:
    """The README's rule, for every kind of clash: `row` (the contacts' own row number),
    `reason` (a contacts column too) and `status` (a results column) all become
    `input.<name>`; a name that clashes with nothing passes through as it is."""
    path = tmp_path / "contacts.csv"
    path.write_text("phone,row,reason,status,tz_hint,name\n"
                    "+12125550100,7,renewal,vip,x,Ann\n", encoding="utf-8")
    contacts = load_contacts(path, default_region="US")
    with Journal(tmp_path / "j.sqlite", "c") as journal:
        df = results_frame(contacts, journal)
    assert list(df.columns[len(RESULT_COLUMNS):]) == [
        "phone", "input.row", "input.reason", "input.status", "tz_hint", "name"]
    row = df.iloc[0]
    assert (row["row"], row["input.row"], row["input.reason"], row["input.status"]) == (
        1, "7", "renewal", "vip")
    assert (row["disposition"], row["reason"]) == ("pending", "not_planned")
