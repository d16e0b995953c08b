"""One person, one call: rows that share a number or a contact id are one person."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from campaign_dialer.contacts.tables import STRING

# Bytes hashed at once by `text_hashes` (its temporaries: three 8-byte words a byte).
_HASH_BYTES = 1 << 20
_P = np.uint64(0x100000001B3)  # odd: invertible modulo 2**64
_P_INV = np.uint64(pow(0x100000001B3, -1, 1 << 64))


def _mixed(z: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: every bit of the sum reaches every bit of the hash."""
    z = z ^ (z >> np.uint64(30))
    z = z * np.uint64(0xBF58476D1CE4E5B9)
    z = z ^ (z >> np.uint64(27))
    z = z * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _powers(base: np.uint64, n: int) -> np.ndarray:
    """base**0 .. base**(n-1) modulo 2**64."""
    out = np.full(max(n, 1), base, dtype=np.uint64)
    out[0] = 1
    return np.cumprod(out, dtype=np.uint64)


def text_hashes(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(a 64-bit hash of each cell's UTF-8 bytes, which cells hold text): equal texts, equal
    hashes, computed a megabyte of text at a time with no string or hash table per row. Two
    different texts may share a hash: a hash only says which texts may be equal."""
    with np.errstate(over="ignore"):
        return _text_hashes(values)


def _large_text(values: pd.Series) -> pa.ChunkedArray:
    """A text column as arrow large strings (the frame's own buffers, offsets widened)."""
    return pa.chunked_array(pa.array(values.astype(STRING))).cast(pa.large_string())


def _text_hashes(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    arr = _large_text(values)
    out = np.zeros(len(arr), dtype=np.uint64)
    valid = np.zeros(len(arr), dtype=bool)
    pw = _powers(_P, _HASH_BYTES)
    ipw = _powers(_P_INV, _HASH_BYTES)
    at = 0
    for chunk in arr.chunks:
        n = len(chunk)
        if n == 0:
            continue
        valid[at: at + n] = np.asarray(chunk.is_valid(), dtype=bool)
        _, off_buf, data_buf = chunk.buffers()
        offsets = np.frombuffer(off_buf, dtype=np.int64, count=n + 1, offset=chunk.offset * 8)
        data = (np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None
                else np.zeros(0, dtype=np.uint8))
        lo = 0
        while lo < n:
            # rows lo..hi whose bytes fit `_HASH_BYTES` (at least one row, however long)
            hi = int(np.searchsorted(offsets, offsets[lo] + _HASH_BYTES, side="right")) - 1
            hi = min(max(hi, lo + 1), n)
            start, end = int(offsets[lo]), int(offsets[hi])
            if end - start > len(pw):
                pw, ipw = _powers(_P, end - start), _powers(_P_INV, end - start)
            b = data[start:end].astype(np.uint64)
            prefix = np.zeros(end - start + 1, dtype=np.uint64)
            np.cumsum(b * pw[: end - start], out=prefix[1:])
            rel = offsets[lo: hi + 1] - start
            # sum of b[j] * P**(j - row's first byte): the prefix difference, shifted back
            poly = (prefix[rel[1:]] - prefix[rel[:-1]]) * ipw[rel[:-1]]
            out[at + lo: at + hi] = _mixed(poly ^ (np.diff(rel).astype(np.uint64) * _P))
            lo = hi
        at += n
    return out, valid


def _text_shared(values: pd.Series, rows: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """`_shared` of the texts of `values` at `rows` (positions among `rows`): the rows whose
    hash another row has too are the only candidates; their texts, few, are then coded
    exactly (a hash two different texts share joins nobody)."""
    hashes, valid = text_hashes(values)
    h = hashes[rows]
    ok = valid[rows]
    del hashes, valid
    held = np.sort(h[ok])
    twice = np.unique(held[1:][held[1:] == held[:-1]])
    del held
    if twice.size == 0:
        return []
    k = np.searchsorted(twice, h)
    candidate = ok & (twice[np.minimum(k, twice.size - 1)] == h)
    del h, k
    pos = np.flatnonzero(candidate)
    texts = _large_text(values).take(pa.array(rows[pos], type=pa.int64()))
    encoded = pc.dictionary_encode(texts.combine_chunks())
    codes = np.asarray(pc.fill_null(encoded.indices, -1), dtype=np.int64)
    return _shared(pos, codes)


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
            shared.extend(_text_shared(values, idx))
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
