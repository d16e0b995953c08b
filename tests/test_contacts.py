"""Contacts: reading real CRM exports, E.164 normalisation, one row per person."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pandas as pd
import phonenumbers
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from campaign_dialer.contacts import (
    STRING,
    Contacts,
    ContactsError,
    load_contacts,
    nanp_fast_path,
    normalize_hint,
    normalize_phone,
    normalize_phones,
    parse_phone,
    person_groups,
    person_key,
    person_keys,
    split_affixes,
)

DATA = Path(__file__).parent / "data" / "contacts"


def frame_of(name: str, **kw: object) -> pd.DataFrame:
    return load_contacts(DATA / name, default_region="US", **kw).frame  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# The CRM export fixture
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def crm() -> Contacts:
    return load_contacts(DATA / "crm_export.csv", default_region="US")


def test_standard_columns_first_then_input_columns_untouched(crm: Contacts) -> None:
    f = crm.frame
    assert list(f.columns[:7]) == [
        "row", "contact_id", "phone_raw", "phone_e164", "tz_hint", "reason", "detail",
    ]  # fmt: skip
    # BOM stripped from the first header; every input column passed through in input order
    assert crm.extra_columns == [
        "Customer ID",
        "First Name",
        "Mobile Phone",
        "Time Zone",
        "Zip",
        "Notes",
    ]
    assert list(f.columns[7:10]) == ["phone_column", "phone_extension", "phone_others"]
    assert list(f.columns[10:]) == crm.extra_columns
    assert crm.roles == {
        "phone": "Mobile Phone",
        "contact_id": "Customer ID",
        "timezone": "Time Zone",
        "postal_code": "Zip",
    }
    assert f["row"].tolist() == list(range(1, 18))
    assert list(f.index) == list(range(17))
    # quoted commas and quotes survive; leading zeros are not eaten by a numeric dtype
    assert f.loc[0, "Notes"] == "likes calls, mornings"
    assert f.loc[5, "Notes"] == 'said "call me"'
    assert f.loc[0, "Zip"] == "02134"
    assert f.loc[3, "Mobile Phone"] == ""  # blank cells are "", not NaN
    assert all(str(t) == "string" for t in f.dtypes[1:])


def test_normalised_phones_and_reasons(crm: Contacts) -> None:
    f = crm.frame.set_index("row")
    expect = {
        1: ("+14155550188", None, ""),
        2: ("+12125550100", None, ""),
        3: (None, "invalid_phone", "too short"),
        4: (None, "blank_phone", "no phone and no contact_id"),
        5: (None, None, ""),  # blank phone but a contact_id: callable by id
        6: ("+14155550188", "duplicate", "duplicate_of=1"),  # same E.164, other spelling
        7: ("+13055550142", "duplicate", "duplicate_of=1"),  # same contact_id
        13: ("+442079460958", None, ""),
        17: ("+15125550100", None, ""),
    }
    for row, (e164, reason, detail) in expect.items():
        got = f.loc[row]
        assert (None if pd.isna(got["phone_e164"]) else got["phone_e164"]) == e164, row
        assert (None if pd.isna(got["reason"]) else got["reason"]) == reason, row
        assert got["detail"] == detail, row
    assert f.loc[4, "phone_raw"] == ""
    assert f.loc[1, "phone_raw"] == "(415) 555-0188"
    assert pd.isna(f.loc[4, "contact_id"])
    assert f.loc[2, "tz_hint"] == "America/New_York;zip:100"  # the ZIP column counts too
    assert f.loc[12, "tz_hint"] == "Mars/Olympus"  # kept as written: compliance says unknown
    assert f.loc[1, "tz_hint"] == "zip:021"  # ZIP 02134: Boston
    assert pd.isna(f.loc[3, "tz_hint"])
    assert f["reason"].value_counts().to_dict() == {
        "duplicate": 2, "invalid_phone": 1, "blank_phone": 1,
    }  # fmt: skip
    assert f["reason"].isna().sum() == 13


def test_explicit_mapping_wins_over_detection() -> None:
    c = load_contacts(
        DATA / "mapped.csv",
        default_region="US",
        columns={"phone": "Cell #", "contact_id": "Ref", "state": "Region", "timezone": None},
    )
    f = c.frame
    # the CSV also has a "phone" column (holding "home"/"work"): the mapping wins
    assert f["phone_e164"].tolist() == ["+14155550188", "+12125550100"]
    assert f["contact_id"].tolist() == ["R1", "R2"]
    assert f["tz_hint"].tolist() == ["CA", "NY"]  # state names become codes
    assert f["phone"].tolist() == ["home", "work"]  # passed through untouched
    # without the mapping, detection takes "phone" first, then "Cell #" (a mobile column):
    # "home"/"work" are no numbers, so every row is dialed on its cell number; "Region" is
    # taken as the state column from its values
    g = frame_of("mapped.csv")
    assert g["reason"].isna().all()
    assert g["phone_column"].tolist() == ["Cell #", "Cell #"]
    assert g["tz_hint"].tolist() == ["CA", "NY"]


def test_mapping_to_a_missing_header_is_an_error() -> None:
    with pytest.raises(ContactsError) as e:
        load_contacts(DATA / "mapped.csv", default_region="US", columns={"phone": "Mobile"})
    assert e.value.column == "Mobile" and "Mobile" in str(e.value)
    with pytest.raises(ContactsError, match="unknown role"):
        load_contacts(DATA / "mapped.csv", default_region="US", columns={"fax": "Ref"})


def test_contact_id_only_file_dedupes_by_id() -> None:
    f = frame_of("id_only.csv")
    assert [None if pd.isna(r) else r for r in f["reason"]] == [
        None, None, "blank_phone", "duplicate",
    ]  # fmt: skip
    assert f.loc[3, "detail"] == "duplicate_of=1"
    assert f["phone_raw"].tolist() == ["", "", "", ""]


def test_semicolon_export_is_sniffed() -> None:
    f = frame_of("semicolon.csv")
    assert f["phone_e164"].tolist() == ["+4930901820", "+14155550188"]
    assert f["Name"].tolist() == ["Berlin", "SF"]


def test_duplicates_are_transitive_and_the_first_row_wins(tmp_path: Path) -> None:
    p = tmp_path / "c.csv"
    p.write_text(
        "id,phone\n"
        "A,415-555-0188\n"  # 1
        "B,212-555-0100\n"  # 2
        "A,212 555 0100\n"  # 3: id of 1, phone of 2 -> links 1 and 2
        "C,+1 212 555 0100\n"  # 4
        "D,abc\n"  # 5: invalid, keeps its own reason
        "A,\n"  # 6: same id, blank phone
    )
    f = load_contacts(p, default_region="US").frame
    reasons = [None if pd.isna(r) else r for r in f["reason"]]
    assert reasons == [None, "duplicate", "duplicate", "duplicate", "invalid_phone", "duplicate"]
    assert f["detail"].tolist()[1:4] == ["duplicate_of=1"] * 3
    assert f.loc[5, "detail"] == "duplicate_of=1"


def test_header_named_like_a_standard_column_is_not_overwritten(tmp_path: Path) -> None:
    p = tmp_path / "c.csv"
    p.write_text("phone,reason,row\n4155550188,renewal,7\n")
    c = load_contacts(p, default_region="US")
    assert c.extra_columns == ["phone", "reason (input)", "row (input)"]
    assert c.frame.loc[0, "reason (input)"] == "renewal"
    assert c.frame.loc[0, "row"] == 1 and pd.isna(c.frame.loc[0, "reason"])


# --------------------------------------------------------------------------------------------
# Files that must be rejected before any call (exit 65)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "row", "column", "words"),
    [
        ("no_phone_column.csv", None, None, "no phone or contact_id column"),
        ("not_csv.xlsx", None, None, "not a CSV file"),
        ("empty.csv", None, None, "empty file"),
        ("bad_row_extra.csv", 2, "#3 (beyond the header)", "has 3 fields"),
        ("bad_row_short.csv", 2, "name", "has 1 fields"),
    ],
)
def test_unusable_files_name_file_row_and_column(
    name: str, row: int | None, column: str | None, words: str
) -> None:
    with pytest.raises(ContactsError) as e:
        load_contacts(DATA / name, default_region="US")
    err = e.value
    assert err.path == DATA / name and name in str(err)
    assert err.row == row and err.column == column
    assert words in str(err)
    if row is not None:
        assert f"row {row}" in str(err) and repr(column) in str(err)


def test_missing_file_is_a_contacts_error(tmp_path: Path) -> None:
    with pytest.raises(ContactsError, match="cannot read"):
        load_contacts(tmp_path / "nope.csv", default_region="US")


def test_unknown_default_region_is_rejected() -> None:
    with pytest.raises(ValueError):
        normalize_phone("4155550188", "XX")


# --------------------------------------------------------------------------------------------
# Normalisation
# --------------------------------------------------------------------------------------------

SPELLINGS = (
    "{a}{b}{c}",
    "({a}) {b}-{c}",
    "{a}-{b}-{c}",
    "{a}.{b}.{c}",
    "+1 {a} {b} {c}",
    "+1{a}{b}{c}",
    "1-{a}-{b}-{c}",
    "+1 ({a}) {b}-{c}",
    "1 ({a}) {b} {c}",
    "  {a} {b} {c}  ",
    "{a}/{b}-{c}",
    "tel: +1-{a}-{b}-{c}",
)
US_AREA_CODES = [
    line.split(",")[0]
    for line in (Path(__file__).parent.parent / "campaign_dialer" / "data" / "area_codes.csv")
    .read_text()
    .splitlines()
    if line[:1].isdigit() and ",US," in line
]


@st.composite
def us_numbers(draw: st.DrawFn) -> str:
    npa = draw(st.sampled_from(US_AREA_CODES))
    exchange = draw(st.integers(200, 999))
    line = draw(st.integers(0, 9999))
    return f"{npa}{exchange}{line:04d}"


@settings(max_examples=300, deadline=None)
@given(us_numbers())
def test_one_number_in_every_spelling_gives_one_e164(national: str) -> None:
    a, b, c = national[:3], national[3:6], national[6:]
    spellings = [s.format(a=a, b=b, c=c) for s in SPELLINGS]
    single = {normalize_phone(s, "US") for s in spellings}
    batch = set(
        normalize_phones(spellings, "US")["e164"].astype(object).where(lambda x: x.notna(), None)
    )
    assert len(single) == 1 and single == batch
    (e164,) = single
    reference = phonenumbers.parse("+1" + national)
    if phonenumbers.is_valid_number(reference):
        assert e164 == "+1" + national
    else:
        assert e164 is None


@settings(max_examples=200, deadline=None)
@given(st.one_of(us_numbers(), st.text(min_size=0, max_size=20)))
def test_normalisation_is_idempotent(raw: str) -> None:
    once = normalize_phone(raw, "US")
    if once is not None:
        assert normalize_phone(once, "US") == once
        assert normalize_phone(once, "GB") == once  # E.164 does not depend on the region
        assert once.startswith("+") and once[1:].isdigit()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.one_of(
            st.text(alphabet="0123456789 ()-./+x", max_size=18),
            us_numbers().map(lambda d: f"({d[:3]}) {d[3:6]}-{d[6:]}"),
            us_numbers().map(lambda d: "1" + d),
            st.text(max_size=12),
        ),
        max_size=40,
    ),
    st.sampled_from(["US", "CA", "GB"]),
)
def test_batch_normalisation_equals_phonenumbers(raws: list[str], region: str) -> None:
    got = normalize_phones(raws, region)
    for raw, e164, problem in zip(raws, got["e164"], got["problem"], strict=True):
        want = normalize_phone(raw, region)
        assert (None if pd.isna(e164) else e164) == want, raw
        assert (want is None) == (not pd.isna(problem)), raw


def test_fast_path_agrees_with_phonenumbers_across_every_area_code() -> None:
    # every NANP area code (not only US), random exchanges: the vectorised validity check must
    # equal phonenumbers.is_valid_number, including numbers it rejects
    rng = random.Random(1234)
    raws = []
    for npa in range(200, 1000):
        for _ in range(12):
            raws.append(f"+1 {npa} {rng.randint(0, 999):03d} {rng.randint(0, 9999):04d}")
    got = normalize_phones(raws, "US")["e164"]
    for raw, e164 in zip(raws, got, strict=True):
        num = phonenumbers.parse(raw)
        want = "+" + raw[1:].replace(" ", "") if phonenumbers.is_valid_number(num) else None
        assert (None if pd.isna(e164) else e164) == want, raw


@st.composite
def affixed_spellings(draw: st.DrawFn) -> str:
    """A number (clean, Excel float, or random text of the fast path's alphabet) with a
    `tel:` prefix and/or an extension, in the spellings the vectorised split takes and in
    near misses it must leave to `phonenumbers`."""
    core = draw(
        st.one_of(
            us_numbers().map(lambda d: f"({d[:3]}) {d[3:6]}-{d[6:]}"),
            us_numbers().map(lambda d: f"+1 {d[:3]} {d[3:6]} {d[6:]}"),
            us_numbers().map(lambda d: f"{d}.0"),
            us_numbers().map(lambda d: f"1{d[:3]}/{d[3:6]}.{d[6:]}"),
            st.text(alphabet="0123456789 ()-./+", min_size=1, max_size=16),
        )
    )
    prefix = draw(st.sampled_from(["", "tel:", "TEL: ", "tel:  ", "Tel :", "tel;", " tel:"]))
    ext = draw(
        st.sampled_from(["", " x", "x", " X ", " ext. ", "ext.", " EXT", " ext ", " x.", " #"])
    )
    digits = draw(st.text(alphabet="0123456789", min_size=0, max_size=9)) if ext else ""
    return prefix + core + ext + digits + draw(st.sampled_from(["", " ", "\t"]))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(affixed_spellings(), min_size=1, max_size=30), st.sampled_from(["US", "CA", "GB"]))
def test_affixed_fast_path_equals_phonenumbers(raws: list[str], region: str) -> None:
    # `tel:` prefixes and extensions are split off in arrow before the fast path; every cell
    # must read exactly as `parse_phone` (the phonenumbers path) reads it, extension included
    got = normalize_phones(raws, region)
    for raw, e164, problem, ext in zip(
        raws, got["e164"], got["problem"], got["extension"], strict=True
    ):
        want = parse_phone(raw.strip(), region)
        na = lambda v: None if pd.isna(v) else v  # noqa: E731
        assert (na(e164), na(problem), na(ext)) == want[:3], raw


def test_affixed_spellings_are_taken_by_the_fast_path() -> None:
    # they must not reach phonenumbers (the slow path) at all

    arr = pa.array(["tel: 415 555 0123", "415-555-0123 x12", "415/555-0123 ext. 7"])
    core, ext = split_affixes(arr.cast(pa.large_string()))
    assert nanp_fast_path(core, "US").to_pylist() == ["+14155550123"] * 3
    assert ext.to_pylist() == [None, "12", "7"]


def test_invalid_reasons_are_specific() -> None:
    got = normalize_phones(["", "  ", "abc", "555-01", "+1 999 555 0188", "+999 1234"], "US")
    assert got["problem"].tolist() == [
        "blank", "blank", "not a phone number", "too short",
        "not a valid number for US", "unknown country code",
    ]  # fmt: skip
    assert got["e164"].isna().all()


def test_hints() -> None:
    assert normalize_hint("america/chicago", "timezone") == "America/Chicago"
    assert normalize_hint(" EST ", "timezone") == "America/New_York"
    assert normalize_hint("Mountain", "timezone") == "America/Denver;America/Phoenix"
    assert normalize_hint("tx", "state") == "TX"
    assert normalize_hint("Texas", "state") == "TX"
    assert normalize_hint("Ontario", "state") == "ON"
    assert normalize_hint("", "state") is None
    assert normalize_hint("Somewhere", "state") == "Somewhere"


def test_timezone_and_state_columns_both_count(tmp_path: Path) -> None:
    p = tmp_path / "c.csv"
    p.write_text("phone,tz,state\n4155550188,America/Los_Angeles,NV\n4155550188,,\n")
    f = load_contacts(p, default_region="US").frame
    assert f.loc[0, "tz_hint"] == "America/Los_Angeles;NV"


def test_utf16_excel_export(tmp_path: Path) -> None:
    p = tmp_path / "c.csv"
    p.write_bytes("phone\tname\r\n(415) 555-0188\tZoë\r\n".encode("utf-16"))
    f = load_contacts(p, default_region="US").frame
    assert f["phone_e164"].tolist() == ["+14155550188"] and f["name"].tolist() == ["Zoë"]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([None, "+14155550101", "+14155550102", "+14155550103"]),
            st.sampled_from([None, "+14155550101", "+14155550104", "+14155550105"]),
            st.sampled_from([None, "A", "B", "C", "D"]),
            st.booleans(),
        ),
        max_size=25,
    )
)
def test_dedupe_equals_a_plain_union_find(rows: list[tuple[str | None, str | None, str | None,
                                                           bool]]) -> None:
    # two usable rows sharing any number or contact_id are one person; each row points at
    # the first row of its person (rows not usable point at themselves)

    n = len(rows)
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    usable = [r[3] for r in rows]
    for i in range(n):
        for j in range(i):
            if usable[i] and usable[j] and (
                ({rows[i][0], rows[i][1]} - {None}) & ({rows[j][0], rows[j][1]} - {None})
                or (rows[i][2] is not None and rows[i][2] == rows[j][2])
            ):
                a, b = find(i), find(j)
                parent[max(a, b)] = min(a, b)
    want = [min(k for k in range(n) if find(k) == find(i)) if usable[i] else i for i in range(n)]
    cols = [pd.Series([r[k] for r in rows], dtype=STRING) for k in range(3)]
    usable_np = pd.Series(usable, dtype=bool).to_numpy()
    got = person_groups([cols[0], cols[1], (cols[2], False)], usable_np)
    assert got.tolist() == want


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.one_of(st.none(), st.text(max_size=4),
                      st.sampled_from(["C1", "C01", "c1", "C1 ", "00Q5e000001", "é", "日本"])),
            st.booleans(),
        ),
        max_size=30,
    ),
    st.sampled_from([None, 1, 3]),
)
def test_contact_ids_join_rows_exactly_even_when_their_hashes_collide(
    rows: list[tuple[str | None, bool]], weak: int | None
) -> None:
    # usable rows with the same contact id (exactly the same text) are one person, however
    # the ids hash: a hash that sends every id to one of `weak` values joins nobody more
    from campaign_dialer.contacts import dedupe

    ids = pd.Series([r[0] for r in rows], dtype=STRING)
    usable = [r[1] for r in rows]
    want = [
        min(j for j in range(len(rows)) if usable[j] and rows[j][0] == r[0])
        if r[1] and r[0] is not None else i
        for i, r in enumerate(rows)
    ]
    real = dedupe.text_hashes
    with pytest.MonkeyPatch.context() as mp:
        if weak is not None:
            def collide(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
                h, valid = real(values)
                return h % np.uint64(weak), valid
            mp.setattr(dedupe, "text_hashes", collide)
        got = person_groups([(ids, False)], np.array(usable, dtype=bool))
    assert got.tolist() == want


def test_equal_texts_hash_alike_wherever_their_chunks_start() -> None:
    # the hash of a text is its bytes' alone: the same id in another chunk, at another
    # offset, after a long one, or in a sliced array hashes the same
    from campaign_dialer.contacts import dedupe

    texts = ["C1", "", "x" * 3_000_000, "C1", "é", None, "C1"]
    whole = pd.Series(texts, dtype=STRING)
    h, valid = dedupe.text_hashes(whole)
    assert valid.tolist() == [t is not None for t in texts]
    assert h[0] == h[3] == h[6] and len({int(h[0]), int(h[1]), int(h[2]), int(h[4])}) == 4
    chunked = pd.Series(pd.arrays.ArrowStringArray(pa.chunked_array(
        [pa.array(texts[:3]), pa.array(texts[3:]).slice(0)])))
    h2, _ = dedupe.text_hashes(chunked.iloc[1:])
    assert h2.tolist() == h[1:].tolist()


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.one_of(st.none(), st.just(""), st.from_regex(r"\+1[2-9]\d{9}", fullmatch=True)),
            st.one_of(st.none(), st.just(""), st.text(min_size=1, max_size=6)),
        ),
        max_size=20,
    )
)
def test_person_keys_agree_with_person_key(rows: list[tuple[str | None, str | None]]) -> None:
    # one person key: the vectorised spelling (plan, report, caller IDs, history holds) is
    # the scalar one (gate, engine) on every row, blanks and missing values included
    phones = pd.Series([p for p, _ in rows], dtype=STRING)
    cids = pd.Series([c for _, c in rows], dtype=STRING)
    want = [person_key(p, c) for p, c in rows]
    got = person_keys(phones, cids)
    assert [None if pd.isna(v) else v for v in got] == want
    arrow = person_keys(pa.array([p for p, _ in rows], pa.string()),
                        pa.array([c for _, c in rows], pa.string()))
    assert arrow.to_pylist() == want


@pytest.mark.parametrize("name", [
    "exports/hubspot_contacts.csv", "exports/salesforce_contacts.csv",
    "exports/google_contacts.csv", "exports/outlook_contacts.csv", "exports/zoho_contacts.csv",
    "exports/excel_cp1252.csv", "exports/semicolon_export.csv", "contacts/crm_export.csv",
])
def test_contacts_read_without_their_own_columns_read_the_same(name: str) -> None:
    # `check` reads the contacts without the input's own columns (it writes no results):
    # every row, number, verdict, warning and role is the same; only the passthrough goes
    path = Path(__file__).parent / "data" / name
    whole = load_contacts(path, default_region="US")
    lean = load_contacts(path, default_region="US", passthrough=False)
    assert whole.extra_columns and lean.extra_columns == []
    standard = [c for c in whole.frame.columns if c not in whole.extra_columns]
    assert list(lean.frame.columns) == standard
    pd.testing.assert_frame_equal(lean.frame, whole.frame[standard])
    assert (lean.roles, lean.phone_columns, lean.ignored_columns, lean.warnings,
            lean.encoding) == (whole.roles, whole.phone_columns, whole.ignored_columns,
                               whole.warnings, whole.encoding)
    pd.testing.assert_frame_equal(lean.unreadable, whole.unreadable)
