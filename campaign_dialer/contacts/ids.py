"""Contact id cells as spreadsheets leave them: one reading for contacts and consent.

A contact id keys a person (duplicates) and a consent event (grants, revocations), so two
files must read the same id alike and two people must never read as one.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from campaign_dialer.contacts.csvfile import first_bad
from campaign_dialer.errors import InputError

# Excel's spelling of a long numeric id it took for a number: "1.23457E+11" (digits lost, so
# different people read alike) and "101.0" (a float; the same id as "101").
_SCIENTIFIC_ID = r"^\d+(?:[.,]\d+)?[eE]\+\d+$"
_FLOAT_ID = r"^(\d+)[.,]0+$"


def read_ids(
    path: Path, cells: pd.Series, column: str, error: type[InputError]
) -> pd.Series:
    """Stripped ids, <NA> for blank; Excel's float `101.0` read as `101`. An id in scientific
    notation refuses the file naming row and column: its digits are lost, and reading it would
    make different people one (a duplicate skipped, or one person's consent taken for another's).
    """
    ids = cells.str.strip()
    sci = ids.str.match(_SCIENTIFIC_ID).fillna(False).to_numpy(dtype=bool)
    first_bad(sci, lambda i: error(
        path,
        f"contact id {ids.iloc[i]!r} is in scientific notation: Excel dropped its digits, so "
        "different people would read as one. Export the ids as text (format the column as "
        "Text, or open the file with Data > From Text/CSV)",
        row=i + 1,
        column=column,
    ))
    ids = ids.str.replace(_FLOAT_ID, r"\1", regex=True)
    return ids.mask(ids == "")


__all__ = ["read_ids"]
