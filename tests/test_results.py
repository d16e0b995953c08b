"""Exports people open: no cell may run as a spreadsheet formula; an E.164 phone stays as is."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from campaign_dialer.results import neutralize

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
