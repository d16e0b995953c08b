"""`encode_plan` (a plan's rows as the store keeps them) gives, field for field, what the
encoder of d9635e1 gave: same arrays, dtypes, code numbering and label lists in the same
order. That encoder is kept below as the oracle; the new one works a slice of rows at a time
with tables instead of sorts of every row (its temporaries, beside a first run's calls, were
~1.5 GB at ten million rows), and those paths are each forced here on small plans."""

from __future__ import annotations

from typing import Any
from unittest import mock

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from campaign_dialer import planning
from campaign_dialer.compliance import EVIDENCE_KEYS, codes_of
from campaign_dialer.planning import PlanRows, decode_plan, encode_plan
from campaign_dialer.store import EncodedPlan
from campaign_dialer.store.plan_state import text_array

# -- the oracle: encode_plan and its helpers as on main at d9635e1, unchanged ----------------


def old_codes(arr: Any) -> tuple[np.ndarray, list[Any]]:
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if not isinstance(arr, pa.Array):
        arr = pa.array(arr, from_pandas=True)
    return codes_of(arr)


def old_combined(columns: list[tuple[np.ndarray, list[Any]]]) -> tuple[np.ndarray, np.ndarray]:
    n = len(columns[0][0])
    key = np.zeros(n, dtype=np.int64)
    for codes, labels in columns:
        key = key * (len(labels) + 1) + (codes + 1)
        _, key = np.unique(key, return_inverse=True)
    first = np.unique(key, return_index=True)[1] if n else np.zeros(0, dtype=np.int64)
    combos = np.stack([c[first] for c, _ in columns], axis=1) if n else np.zeros(
        (0, len(columns)), dtype=np.int64)
    return key.astype(np.int32), combos


def old_used_values(arr: Any) -> tuple[np.ndarray, list[Any]]:
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if not isinstance(arr, pa.Array):
        arr = pa.array(arr, from_pandas=True)
    if not pa.types.is_dictionary(arr.type):
        return codes_of(arr)
    inner = pc.dictionary_encode(arr.dictionary)
    inner_codes = np.asarray(pc.fill_null(inner.indices, -1), dtype=np.int64)
    idx = np.asarray(pc.fill_null(arr.indices, -1), dtype=np.int64)
    value = np.full(len(idx), -1, dtype=np.int64)
    has = idx >= 0
    value[has] = inner_codes[idx[has]]
    has = value >= 0
    used = np.unique(value[has])
    codes = np.full(len(idx), -1, dtype=np.int64)
    codes[has] = np.searchsorted(used, value[has])
    return codes, inner.dictionary.take(pa.array(used, type=pa.int64())).to_pylist()


def old_label(labels: list[Any], code: int) -> Any:
    return None if code < 0 else labels[code]


def old_encode_plan(rows: PlanRows, fingerprint: str) -> EncodedPlan:
    c = rows.columns
    zone_codes, zone_labels = old_codes(c["hint"])
    zones: list[str | None] = [*zone_labels, None]
    zone = np.where(zone_codes < 0, len(zone_labels), zone_codes).astype(np.int32)
    vcols = [old_codes(c[k]) for k in ("disposition", "reason", "detail")]
    verdict, vcombos = old_combined(vcols)
    verdicts = [
        tuple(old_label(vcols[j][1], int(code)) for j, code in enumerate(combo))
        for combo in vcombos.tolist()
    ]
    keys = rows.evidence_keys
    ecols = [old_used_values(c[k]) for k in keys]
    return EncodedPlan(
        fingerprint=fingerprint, row=np.asarray(c["row"], dtype=np.int64),
        phone=text_array(c["phone"]), cid=text_array(c["cid"]),
        others=text_array(c["others"]), zone=zone, zones=zones,
        verdict=verdict, verdicts=verdicts,  # type: ignore[arg-type]
        evidence_keys=keys, evidence=[codes.astype(np.int32) for codes, _ in ecols],
        evidence_values=[labels for _, labels in ecols],
        next_open=np.asarray(c["next_open"], dtype=np.int64),
    )


# -- comparing two encoded plans, every field ---------------------------------------------


def same_array(got: np.ndarray, want: np.ndarray, what: str) -> None:
    assert isinstance(got, np.ndarray), what
    assert got.dtype == want.dtype, (what, got.dtype, want.dtype)
    assert got.shape == want.shape, (what, got.shape, want.shape)
    assert np.array_equal(got, want), (what, got.tolist(), want.tolist())


def same_list(got: list[Any], want: list[Any], what: str) -> None:
    assert got == want, (what, got, want)
    # "" is not None, and a str is a str (not an arrow scalar or bytes)
    assert [type(v) for v in got] == [type(v) for v in want], what


def assert_same_encoding(got: EncodedPlan, want: EncodedPlan) -> None:
    assert got.fingerprint == want.fingerprint
    for name in ("row", "zone", "verdict", "next_open"):
        same_array(getattr(got, name), getattr(want, name), name)
    for name in ("phone", "cid", "others"):
        g, w = getattr(got, name), getattr(want, name)
        assert g.type == w.type and g.equals(w), name
    same_list(got.zones, want.zones, "zones")
    assert got.verdicts == want.verdicts
    for g, w in zip(got.verdicts, want.verdicts, strict=True):
        same_list(list(g), list(w), "verdicts")
    assert got.evidence_keys == want.evidence_keys
    assert len(got.evidence) == len(want.evidence) == len(got.evidence_values)
    for k, key in enumerate(want.evidence_keys):
        same_array(got.evidence[k], want.evidence[k], f"evidence {key}")
        same_list(got.evidence_values[k], want.evidence_values[k], f"evidence_values {key}")


# -- generated plans ----------------------------------------------------------------------

# few distinct texts, so that values repeat; "" and nulls among them
WORDS = ["", "a", "b", "dnc_local", "no_consent", "2026-06-10T09:00:00-04:00", "é"]
word = st.sampled_from(WORDS)
maybe_word = st.one_of(st.none(), word)


@st.composite
def label_column(draw: st.DrawFn, n: int) -> Any:
    """A string column of n rows: plain (string or large_string) or dictionary-encoded (with
    unused, repeated, null and "" entries; int8/int32/int64 indices), an arrow array or a
    chunked one."""
    if draw(st.booleans()):
        values = draw(st.lists(maybe_word, min_size=n, max_size=n))
        arr: pa.Array = pa.array(values, draw(st.sampled_from([pa.string(), pa.large_string()])))
        parts = [arr]
    else:
        dictionary = draw(st.lists(maybe_word, min_size=1, max_size=8))
        kind = draw(st.sampled_from([pa.int8(), pa.int32(), pa.int64()]))
        value_type = draw(st.sampled_from([pa.string(), pa.large_string()]))

        def dict_part(m: int) -> pa.Array:
            # arrow joins chunks' own dictionaries (repeats merged) only when null-free
            d = draw(st.lists(word, min_size=1, max_size=8)) if parts_own else dictionary
            idx = draw(st.lists(st.one_of(st.none(), st.integers(0, len(d) - 1)),
                                min_size=m, max_size=m))
            return pa.DictionaryArray.from_arrays(pa.array(idx, kind), pa.array(d, value_type))

        parts_own = draw(st.booleans())  # chunks with dictionaries of their own
        cuts = sorted(draw(st.lists(st.integers(0, n), max_size=3)))
        bounds = [0, *cuts, n]
        parts = [dict_part(hi - lo) for lo, hi in zip(bounds, bounds[1:], strict=False)]
        arr = parts[0] if len(parts) == 1 else pa.chunked_array(parts).combine_chunks()
    if draw(st.booleans()):  # as a chunked array
        return pa.chunked_array(parts) if len(parts) > 1 else pa.chunked_array(
            [arr.slice(0, n // 2), arr.slice(n // 2)])
    return arr


@st.composite
def plan_rows(draw: st.DrawFn) -> PlanRows:
    n = draw(st.integers(0, 30))
    text = pa.large_string()
    keys = draw(st.lists(st.sampled_from(EVIDENCE_KEYS), unique=True))
    phones = draw(st.lists(st.one_of(st.none(), st.sampled_from(["+12125550100", "+1415"])),
                           min_size=n, max_size=n))
    cols: dict[str, Any] = {
        "row": np.array(draw(st.permutations(range(1, n + 1))), dtype=np.int64),
        "phone": pa.array(phones, text),
        "cid": pa.array([f"c{i}" if i % 3 else None for i in range(n)], text),
        "others": pa.array([None if i % 2 else "+1 +2" for i in range(n)], text),
        "hint": draw(label_column(n)),
        "disposition": draw(label_column(n)),
        "reason": draw(label_column(n)),
        "detail": draw(label_column(n)),
        "next_open": np.array(draw(st.lists(st.integers(-(2**63), 2**63 - 1), min_size=n,
                                            max_size=n)), dtype=np.int64),
        **{k: draw(label_column(n)) for k in EVIDENCE_KEYS},
    }
    return PlanRows(cols, keys, n)


# (rows read at once, table min, table max): as shipped; small slices with tables; small
# slices numbered by sorting (no table fits)
WAYS = [(planning.ENCODE_ROWS, planning.ENCODE_TABLE_MIN, planning.ENCODE_TABLE_MAX),
        (3, planning.ENCODE_TABLE_MIN, planning.ENCODE_TABLE_MAX), (2, 0, 0), (5, 0, 0)]


def encoded_as(way: tuple[int, int, int], rows: PlanRows) -> EncodedPlan:
    rows_at_once, table_min, table_max = way
    with mock.patch.object(planning, "ENCODE_ROWS", rows_at_once), \
            mock.patch.object(planning, "ENCODE_TABLE_MIN", table_min), \
            mock.patch.object(planning, "ENCODE_TABLE_MAX", table_max):
        return encode_plan(rows, "fp")


@settings(max_examples=400, deadline=None)
@given(plan_rows(), st.sampled_from(WAYS))
def test_every_field_is_the_old_encoders(rows: PlanRows, way: tuple[int, int, int]) -> None:
    assert_same_encoding(encoded_as(way, rows), old_encode_plan(rows, "fp"))


@settings(max_examples=50, deadline=None)
@given(plan_rows())
def test_decoded_back_the_same_either_way(rows: PlanRows) -> None:
    """What a resumed run reads back (decode_plan) is the same frame from both encoders."""
    got = decode_plan(encode_plan(rows, "fp")).frame()
    want = decode_plan(old_encode_plan(rows, "fp")).frame()
    assert got.equals(want)


def test_zero_rows() -> None:
    text = pa.large_string()
    empty = pa.array([], text)
    cols: dict[str, Any] = {
        "row": np.zeros(0, dtype=np.int64), "phone": empty, "cid": empty, "others": empty,
        "hint": empty, "next_open": np.zeros(0, dtype=np.int64),
        **{k: pa.DictionaryArray.from_arrays(pa.array([], pa.int32()), pa.array(["x"], text))
           for k in ("disposition", "reason", "detail", *EVIDENCE_KEYS)},
    }
    rows = PlanRows(cols, list(EVIDENCE_KEYS), 0)
    got = encode_plan(rows, "fp")
    assert_same_encoding(got, old_encode_plan(rows, "fp"))
    assert got.verdicts == [] and got.zones == [None]
    assert all(len(e) == 0 and e.dtype == np.int32 for e in got.evidence)


def repeated_ledger(n: int) -> pa.DictionaryArray:
    """Consent evidence as a plan holds it: the ledger's every event as the dictionary,
    repeats included (a later repeat used, its first place not), unused entries, nulls."""
    dictionary = pa.array(["t9", "t1", None, "t2", "t1", "", "t3", "t2", "t9"], pa.large_string())
    idx = [None if i % 4 == 0 else [4, 7, 5, 3, 8, 2][i % 6] for i in range(n)]
    return pa.DictionaryArray.from_arrays(pa.array(idx, pa.int64()), dictionary)


@pytest.mark.parametrize("way", WAYS)
def test_a_used_repeat_takes_the_place_of_its_first_entry(way: tuple[int, int, int]) -> None:
    """Labels follow the dictionary's first place of each value used (as a hash of the whole
    dictionary numbered them), not the entries the rows point at."""
    n = 25
    text = pa.large_string()
    cols: dict[str, Any] = {
        "row": np.arange(n, dtype=np.int64), "phone": pa.nulls(n, text),
        "cid": pa.nulls(n, text), "others": pa.nulls(n, text), "hint": pa.nulls(n, text),
        "disposition": pa.array(["eligible"] * n, text), "reason": pa.nulls(n, text),
        "detail": pa.array([""] * n, text), "next_open": np.zeros(n, dtype=np.int64),
        **{k: pa.nulls(n, text) for k in EVIDENCE_KEYS},
        "consent_event_at": repeated_ledger(n),
    }
    rows = PlanRows(cols, list(EVIDENCE_KEYS), n)
    got = encoded_as(way, rows)
    assert_same_encoding(got, old_encode_plan(rows, "fp"))
    at = list(EVIDENCE_KEYS).index("consent_event_at")
    # entries used: 4 "t1", 7 "t2", 5 "", 3 "t2", 8 "t9", 2 null; first places: t9 0, t1 1,
    # t2 3, "" 5
    assert got.evidence_values[at] == ["t9", "t1", "t2", ""]
    assert got.evidence[at][:7].tolist() == [-1, 2, 3, 2, -1, -1, 1]
