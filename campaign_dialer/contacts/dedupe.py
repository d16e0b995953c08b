"""One person, one call: rows that share a number or a contact id are one person."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from campaign_dialer.contacts.tables import STRING


def _text_codes(values: pd.Series, rows: np.ndarray) -> np.ndarray:
    """Dense codes of `values` at `rows` (-1 for missing)."""
    # encoded over the whole column, then picked: no copy of a million strings
    sub = pa.array(values.astype(STRING), type=pa.large_string())
    encoded = pc.dictionary_encode(sub)
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.combine_chunks()
    return np.asarray(pc.fill_null(encoded.indices, -1), dtype=np.int64)[rows]


def e164_keys(values: pd.Series) -> np.ndarray:
    """E.164 strings as int64 (the digits after "+"; -1 for missing): hashing ints is fast,
    and no country code starts with 0, so the key is one-to-one. Eight bytes a number: what a
    batched reader keeps of each row's numbers for dedupe."""
    sub = pa.array(values.astype(STRING), type=pa.large_string())
    digits = pc.utf8_slice_codeunits(sub, 1)
    return np.asarray(pc.fill_null(pc.cast(digits, pa.int64()), -1), dtype=np.int64)


def _e164_int_values(values: pd.Series | np.ndarray, rows: np.ndarray) -> np.ndarray:
    """E.164 numbers at `rows` as `e164_keys` (given as such, or as strings)."""
    return (values if isinstance(values, np.ndarray) else e164_keys(values))[rows]


def _shared(
    pos: np.ndarray, codes: np.ndarray
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(positions, dense codes) of the values (codes, -1 missing) held at two places or more."""
    m = codes >= 0
    pos, codes = pos[m], codes[m]
    if codes.size == 0:
        return []
    many = np.bincount(codes)[codes] > 1
    if not many.any():
        return []
    dense, _ = pd.factorize(codes[many])
    return [(pos[many], np.asarray(dense, dtype=np.int64))]


def person_groups(
    keys: Sequence[pd.Series | np.ndarray | tuple[pd.Series, bool]], usable: np.ndarray
) -> np.ndarray:
    """For each row, the index of the first row of its person group (itself if first).

    Groups are connected components of "shares a key" among usable rows (any E.164 number of
    the row, or its contact_id), found by propagating the smallest row index through every key
    until nothing changes. `keys`: (values, is_e164) per key column; a bare Series is E.164,
    a bare array E.164 numbers as `e164_keys`.
    """
    n = len(usable)
    label = np.arange(n)
    idx = np.flatnonzero(usable)
    if idx.size == 0:
        return label
    # (positions among usable rows, codes) of the values two places share: a value only one
    # row holds joins nothing, so only shared values are coded and propagated through
    shared: list[tuple[np.ndarray, np.ndarray]] = []
    e164_ints = []
    for k in keys:
        values, is_e164 = k if isinstance(k, tuple) else (k, True)
        if is_e164:
            e164_ints.append(_e164_int_values(values, idx))
        else:
            assert isinstance(values, pd.Series)
            shared.extend(_shared(np.arange(idx.size), _text_codes(values, idx)))
    if e164_ints:
        # every E.164 column shares one code space, so a number in Phone meets the same number
        # in another row's Mobile; the numbers held twice are found by sorting (no hash table
        # of a million numbers), then coded by their place among them
        allints = np.concatenate(e164_ints)
        held = np.sort(allints[allints >= 0])
        twice = np.unique(held[1:][held[1:] == held[:-1]])
        del held
        if twice.size:
            codes = pd.Index(twice).get_indexer(allints)
            at = np.flatnonzero(codes >= 0)
            shared.append((at % idx.size, codes[at].astype(np.int64)))
    lab = idx.copy()
    while shared:
        before = lab.copy()
        for pos, codes in shared:
            best = np.full(int(codes.max()) + 1, n, dtype=np.int64)
            np.minimum.at(best, codes, lab[pos])
            np.minimum.at(lab, pos, best[codes])
        if np.array_equal(lab, before):
            break
    label[idx] = lab
    return label
