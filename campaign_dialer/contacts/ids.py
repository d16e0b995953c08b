"""Contact id cells as spreadsheets leave them: one reading for contacts and consent.

A contact id keys a person (duplicates) and a consent event (grants, revocations), so two
files must read the same id alike and two people must never read as one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from campaign_dialer.contacts.csvfile import first_bad
from campaign_dialer.errors import InputError

# Excel's spelling of a long numeric id it took for a number: "1.23457E+11" (digits lost, so
# different people read alike) and "101.0" (a float; the same id as "101").
_SCIENTIFIC_ID = r"^\d+(?:[.,]\d+)?[eE]\+\d+$"
_FLOAT_ID = r"^(\d+)[.,]0+$"


def read_ids(
    path: Path, cells: pd.Series, column: str, error: type[InputError], first_row: int = 1
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
        row=i + first_row,
        column=column,
    ))
    ids = ids.str.replace(_FLOAT_ID, r"\1", regex=True)
    return salesforce_15(ids.mask(ids == ""))


_SUFFIX = np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345", dtype=np.uint8)


def salesforce_15(ids: pd.Series) -> pd.Series:
    """Salesforce's 18-character ids as their 15-character form, when the last three
    characters are the case checksum of the first 15 (so no other id is touched): a report
    exports `0035e00000AbCdE`, the API and Data Loader `0035e00000AbCdEQAX`, the same record,
    and a revocation keyed by one must hold back the contact keyed by the other."""
    cand = ids.str.fullmatch(r"[A-Za-z0-9]{18}").fillna(False).to_numpy(dtype=bool)
    if not cand.any():
        return ids
    raw = np.frombuffer(
        "".join(ids[cand].tolist()).encode("ascii"), dtype=np.uint8
    ).reshape(-1, 18)
    upper = (raw[:, :15] >= ord("A")) & (raw[:, :15] <= ord("Z"))
    weights = 1 << np.arange(5)
    codes = (upper.reshape(-1, 3, 5) * weights).sum(axis=2)
    ok = (_SUFFIX[codes] == raw[:, 15:]).all(axis=1)
    rows = np.flatnonzero(cand)[ok]
    if rows.size == 0:
        return ids
    out = ids.copy()
    out.iloc[rows] = out.iloc[rows].str.slice(0, 15)
    return out


__all__ = ["read_ids"]
