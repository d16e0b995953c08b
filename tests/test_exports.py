"""Real CRM and spreadsheet exports (issue #12): every safety decision survives them.

The files in tests/data/exports/ carry each CRM's real header set; every row's fate and the
number chosen for it is asserted. Spellings are property-tested to read the same in contacts,
DNC lists and the consent ledger; the sandbox's audit shows a DNC entry in any spelling is
never called.
"""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, time
from pathlib import Path

import pandas as pd
import phonenumbers
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from campaign_dialer.compliance import (
    CallingWindow,
    ComplianceError,
    ConsentLedger,
    DncList,
    Gate,
    build_plan,
)
from campaign_dialer.config import load_campaign
from campaign_dialer.contacts import (
    Contacts,
    ContactsError,
    load_contacts,
    normalize_hint,
    normalize_phone,
    normalize_phones,
)
from campaign_dialer.planning import Plan, make_plan
from campaign_dialer.results import safe_for_spreadsheets, write_atomic_csv

from .campaign_files import write_campaign_toml
from .e2e_support import KEY, assert_nobody_called_twice, run_cli, write_campaign

EX = Path(__file__).parent / "data" / "exports"
AT = datetime(2026, 6, 10, 17, 0, tzinfo=UTC)  # Wed 13:00 New York, 10:00 Los Angeles
EARLY = datetime(2026, 6, 10, 14, 30, tzinfo=UTC)  # 10:30 New York, 07:30 Los Angeles


def campaign_file(tmp: Path, contacts: str, *, dnc: str = "dnc_spellings.csv",
                  consent: str = "consent.csv", encoding: str | None = None) -> Path:
    inputs: dict[str, object] = {
        "contacts": str(EX / contacts), "dnc": [str(EX / dnc)], "consent": str(EX / consent),
    }
    if encoding is not None:
        inputs["encoding"] = encoding
    return write_campaign_toml(tmp / "campaign.toml", {
        "campaign": {"name": "exports", "agent_id": "agt_3d9b21"},
        "inputs": inputs,
        "compliance": {"dnc_ledger": str(tmp / "ledger.csv")},
        "output": {"dir": str(tmp / "out")},
    })


def plan_for(tmp: Path, contacts: str, at: datetime = AT, **kw: str) -> Plan:
    return make_plan(load_campaign(campaign_file(tmp, contacts, **kw)), at)


def fates(plan: Plan) -> list[tuple[str | None, str | None, str, str | None]]:
    """(number chosen, its column, disposition, reason) per row, in input order."""
    f = plan.contacts.frame
    cols = [None if pd.isna(x) else x for x in f["phone_column"]]
    return [(r.phone_e164, cols[r.order], r.disposition, r.reason) for r in plan.rows]


DNC = ("suppressed", "dnc_local")
OK = ("eligible", None)

EXPECTED: dict[str, tuple[dict[str, str], list[tuple[str | None, str | None, str, str | None]]]] = {
    "hubspot_contacts.csv": (
        {"contact_id": "Record ID", "state": "State/Region", "postal_code": "Postal Code",
         "country": "Country/Region", "timezone": "Time Zone"},
        [
            ("+14155550110", "Mobile Phone Number", *OK),  # Phone Number blank: mobile wins
            ("+12125550111", "Phone Number", *OK),
            ("+14155550193", "Phone Number", *DNC),  # 4155550193.0 both sides
            ("+12125550112", "Phone Number", *OK),  # "ext. 45" -> phone_extension
            ("+12125550113", "Phone Number", *DNC),  # the mobile is on the DNC list
            ("+14155550110", "Phone Number", "suppressed", "duplicate"),  # row 1's mobile
        ],
    ),
    "salesforce_contacts.csv": (
        {"contact_id": "Contact ID", "state": "Mailing State/Province",
         "postal_code": "Mailing Zip/Postal Code", "country": "Mailing Country"},
        [
            ("+13125550150", "Phone", "suppressed", "consent_revoked"),  # mobile revoked
            ("+16025550152", "Home Phone", *OK),
            ("+12125550114", "Phone", *OK),  # leading apostrophe
            ("+12125550190", "Phone", *DNC),  # tel: URI vs "212-555-0190 ext. 7"
            (None, None, "suppressed", "invalid_phone"),  # 555-0115: no area code
            (None, None, "suppressed", "no_consent"),  # only a contact id
        ],
    ),
    "salesforce_leads.csv": (
        {"contact_id": "Id", "state": "State", "postal_code": "PostalCode", "country": "Country"},
        [
            ("+16175550116", "Phone", *OK),
            ("+12125550192", "Phone", *DNC),  # full-width digits both sides
            ("+14155550117", "Phone", *OK),
            (None, None, "suppressed", "invalid_phone"),  # 4.15555E+09
        ],
    ),
    "zoho_contacts.csv": (
        {"contact_id": "Record Id", "state": "Mailing State", "postal_code": "Mailing Zip",
         "country": "Mailing Country"},
        [
            ("+13125550118", "Phone", *OK),
            ("+13125550119", "Mobile", *OK),
            ("+14155550197", "Phone", *DNC),  # "4155550197 home"
            (None, None, "suppressed", "invalid_phone"),  # call me later
        ],
    ),
    "google_contacts.csv": (
        {"state": "Address 1 - Region", "postal_code": "Address 1 - Postal Code",
         "country": "Address 1 - Country"},
        [
            ("+12125550120", "Phone 1 - Value", *OK),
            ("+12125550122", "Phone 1 - Value", *OK),
            ("+12125550191", "Phone 1 - Value", *DNC),  # non-breaking spaces both sides
            ("+12125550121", "Phone 1 - Value", "suppressed", "duplicate"),  # row 1's Phone 2
            ("+12125550130", "Phone 1 - Value", *DNC),  # "A ::: B": B is on the DNC list
        ],
    ),
    "outlook_contacts.csv": (
        {"state": "Business State", "postal_code": "Business Postal Code",
         "country": "Business Country/Region"},
        [
            ("+16175550123", "Business Phone", *OK),
            ("+16175550124", "Home Phone", *OK),
            ("+14155550199", "Business Phone", *DNC),  # "415-555-0199 x12" both sides
        ],
    ),
    "excel_cp1252.csv": (
        {"contact_id": "ID", "state": "ST", "postal_code": "ZIP"},
        [
            ("+14155550125", "Phone", *OK),
            ("+12125550126", "Phone", *OK),
            ("+14155550198", "Phone", *DNC),  # "(415) 555-0198 mobile"
        ],
    ),
    "semicolon_export.csv": (
        {"contact_id": "ID", "state": "State", "timezone": "Time Zone"},
        [
            ("+14155550127", "Phone", *OK),
            ("+13125550128", "Mobile", *OK),
            ("+14155550194", "Phone", *DNC),  # "'4155550194" in the DNC list
        ],
    ),
    "utf16_export.txt": (
        {"contact_id": "ID", "timezone": "Time Zone"},
        [
            ("+12125550129", "Phone", *OK),  # UTC-05:00: New York and Chicago both open
            ("+14155550195", "Phone", *DNC),  # tel:+1-415-555-0195
        ],
    ),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_row_of_each_real_export_gets_its_fate_and_number(
    name: str, tmp_path: Path
) -> None:
    roles, expected = EXPECTED[name]
    plan = plan_for(tmp_path, name)
    assert {k: v for k, v in plan.contacts.roles.items() if k != "phone"} == roles
    assert fates(plan) == expected


def test_phone_columns_in_priority_order_and_extension(tmp_path: Path) -> None:
    hub = plan_for(tmp_path, "hubspot_contacts.csv")
    assert hub.contacts.phone_columns == ["Phone Number", "Mobile Phone Number"]
    f = hub.contacts.frame
    assert f.loc[3, "phone_extension"] == "45" and pd.isna(f.loc[0, "phone_extension"])
    assert any("2 phone columns" in w for w in hub.contacts.warnings)
    sf = plan_for(tmp_path, "salesforce_contacts.csv")
    assert sf.contacts.phone_columns == ["Phone", "Mobile", "Home Phone", "Other Phone"]
    assert sf.rows[0].other_phones == ("+13125550151",)
    google = plan_for(tmp_path, "google_contacts.csv")
    assert google.contacts.phone_columns == [
        "Phone 1 - Value", "Phone 2 - Value", "Phone 1 - Value #2"]
    assert google.rows[4].other_phones == ("+14155550196",)
    outlook = plan_for(tmp_path, "outlook_contacts.csv")
    assert outlook.contacts.phone_columns[:2] == ["Primary Phone", "Business Phone"]
    assert outlook.contacts.frame.loc[2, "phone_extension"] == "12"


def test_a_california_resident_with_a_new_york_number_waits_for_pacific_hours(
    tmp_path: Path,
) -> None:
    plan = plan_for(tmp_path, "hubspot_contacts.csv", at=EARLY)  # 07:30 in Los Angeles
    by_row = {r.row: r for r in plan.rows}
    assert (by_row[2].disposition, by_row[2].reason) == ("pending", "outside_window")
    assert "America/Los_Angeles" in by_row[2].evidence["zones"]
    assert by_row[4].disposition == "eligible"  # New York resident, New York number


def test_encodings_cp1252_with_a_warning_and_an_explicit_override(tmp_path: Path) -> None:
    c = load_contacts(EX / "excel_cp1252.csv", default_region="US")
    assert c.encoding == "cp1252" and c.frame["Name"].tolist()[:2] == ["José Núñez", "Zoë Brontë"]
    assert any("excel_cp1252.csv" in w and "Windows-1252" in w for w in c.warnings)
    forced = load_contacts(EX / "excel_cp1252.csv", default_region="US", encoding="latin-1")
    assert all("Windows-1252" not in w for w in forced.warnings)  # asked for: no guess
    assert forced.frame["Name"][0] == "José Núñez"
    u = load_contacts(EX / "utf16_export.txt", default_region="US")
    assert u.encoding == "utf-16" and u.frame["phone_e164"].notna().all()
    with pytest.raises(ContactsError, match="not an encoding"):
        load_contacts(EX / "excel_cp1252.csv", default_region="US", encoding="klingon")
    ascii_dnc = tmp_path / "dnc.csv"
    ascii_dnc.write_text("phone\n(415) 555-0198 mobile\n")
    p = campaign_file(tmp_path, "excel_cp1252.csv", dnc=str(ascii_dnc),
                      encoding="cp1252")
    plan = make_plan(load_campaign(p), AT)
    assert plan.contacts.encoding == "cp1252"
    assert all("Windows-1252" not in w for w in plan.contacts.warnings)
    # the override applies to every input: a UTF-8 DNC list that is not cp1252 is refused
    bad = campaign_file(tmp_path, "excel_cp1252.csv", encoding="cp1252")
    with pytest.raises(ComplianceError, match="not valid cp1252"):
        make_plan(load_campaign(bad), AT)


def test_headers_found_by_values_when_no_alias_matches(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text(
        "Tel,Where,Zone thing,Country\n"
        "2125550111,California,Pacific Time (US & Canada),CA\n"
        "2125550112,new york,Eastern Standard Time,CA\n"
        "2125550113,TX,UTC-06:00,US\n"
    )
    c = load_contacts(path, default_region="US")
    assert c.roles["state"] == "Where" and c.roles["timezone"] == "Zone thing"
    assert c.roles["country"] == "Country"  # never taken as the state column ("CA" = Canada)
    assert any("from its values" in w for w in c.warnings)
    assert c.frame["tz_hint"].tolist()[:2] == ["America/Los_Angeles;CA", "America/New_York;NY"]


@pytest.mark.parametrize(
    ("value", "kind", "zones"),
    [
        ("Pacific Time (US & Canada)", "timezone", {"America/Los_Angeles"}),
        ("(GMT-08:00) Pacific Time (US & Canada)", "timezone", {"America/Los_Angeles"}),
        ("Pacific Standard Time", "timezone", {"America/Los_Angeles"}),
        ("US Mountain Standard Time", "timezone", {"America/Phoenix"}),
        ("Eastern Time (US & Canada)", "timezone", {"America/New_York"}),
        ("Newfoundland Standard Time", "timezone", {"America/St_Johns"}),
        ("Hawaii", "timezone", {"Pacific/Honolulu"}),
    ],
)
def test_windows_and_rails_zone_names(value: str, kind: str, zones: set[str]) -> None:
    assert set((normalize_hint(value, kind) or "").split(";")) == zones


def test_utc_offsets_are_every_zone_at_that_offset_and_the_window_holds_in_each() -> None:
    hint = normalize_hint("UTC-05:00")
    assert hint is not None
    parts = set(hint.split(";"))
    # Eastern in winter, Central in summer, and the fixed offset itself
    assert {"America/New_York", "America/Chicago", "Etc/GMT+5"} <= parts
    w = CallingWindow(time(9), time(20))
    # 13:30 UTC in June: 09:30 New York, 08:30 Chicago, 08:30 at UTC-5 -> not yet
    d = w.check("+12125550100", hint, datetime(2026, 6, 10, 13, 30, tzinfo=UTC))
    assert d.reason == "outside_window"
    assert normalize_hint("GMT+1") == "Etc/GMT-1"
    assert normalize_hint("UTC+99:00") == "UTC+99:00"  # unreadable: kept, zone unknown


def test_provinces_territories_and_postal_codes() -> None:
    w = CallingWindow(time(9), time(20))
    at = datetime(2026, 6, 10, 14, 30, tzinfo=UTC)  # 10:30 Toronto, 07:30 Vancouver
    assert normalize_hint("British Columbia", "state") == "BC"
    assert normalize_hint("Puerto Rico", "state") == "PR"
    assert normalize_hint("V6B 1A1", "postal_code") == "zip:CA:V"
    assert w.check("+14165550100", "zip:CA:V", at).reason == "outside_window"
    assert w.check("+14165550100", None, at).ok
    # Excel dropped the ZIP's leading zero: 2134 is 02134 (Boston)
    assert normalize_hint("2134", "postal_code") == "zip:021"
    assert normalize_hint("94105-1234", "postal_code") == "zip:941"
    assert normalize_hint("SW1A 1AA", "postal_code") == "SW1A 1AA"  # unknown: not callable
    assert w.check("+12125550100", "SW1A 1AA", at).reason == "unknown_timezone"
    # a ZIP in Los Angeles holds a New York number to Pacific hours too
    assert w.check("+12125550100", "zip:900", at).reason == "outside_window"


# --------------------------------------------------------------------------------------------
# Spellings: property tests
# --------------------------------------------------------------------------------------------

AREAS = ("212", "415", "312", "617", "602", "713", "305", "206")


@st.composite
def spelled_numbers(draw: st.DrawFn) -> tuple[str, str]:
    """(E.164, one of the ways a spreadsheet or CRM writes it)."""
    area = draw(st.sampled_from(AREAS))
    line = draw(st.integers(100, 199))
    e164 = f"+1{area}5550{line}"
    d = f"{area}5550{line}"
    base = draw(st.sampled_from([
        d, f"{d}.0", f"1{d}", f"+1{d}", f"({area}) 555-0{line}", f"{area}-555-0{line}",
        f"{area}.555.0{line}", f"+1 {area} 555 0{line}",
    ]))
    wrap = draw(st.sampled_from([
        "{}", "'{}", "tel:+1-" + f"{area}-555-0{line}", "{} (cell)", "{} home", "{} mobile",
        "{} x12", "{} ext. 12", "{} (work)", "Mobile: {}", " {} ",
    ]))
    text = wrap.format(base) if "{}" in wrap else wrap
    if draw(st.booleans()):
        text = text.replace(" ", "\u00a0")
    if draw(st.booleans()):  # full-width digits, as some Asian-locale exports write them
        text = "".join(chr(ord(c) + 0xFEE0) if c.isdigit() else c for c in text)
    return e164, text


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spelled_numbers())
def test_every_spelling_reads_as_the_same_number_in_contacts(case: tuple[str, str]) -> None:
    e164, text = case
    assert phonenumbers.is_valid_number(phonenumbers.parse(e164))
    assert normalize_phone(text, "US") == e164
    assert normalize_phones(pd.Series([text, text.strip()], dtype="string"), "US")[
        "e164"].tolist() == [e164, e164]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(st.lists(spelled_numbers(), min_size=1, max_size=12))
def test_spellings_read_alike_in_contacts_dnc_and_consent(
    tmp_path_factory: pytest.TempPathFactory, cases: list[tuple[str, str]]
) -> None:
    tmp = tmp_path_factory.mktemp("spell")
    rows = [[text] for _, text in cases]
    for name, header in (("dnc.csv", ["Phone Number"]), ("contacts.csv", ["Phone"])):
        with open(tmp / name, "w", encoding="utf-8", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(header)
            w.writerows(rows)
    with open(tmp / "consent.csv", "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["phone", "event", "event_at"])
        w.writerows([[text, "revoke", "2026-01-01T00:00:00Z"] for _, text in cases])
    want = [e for e, _ in cases]
    contacts = load_contacts(tmp / "contacts.csv", default_region="US")
    assert contacts.frame["phone_e164"].tolist() == want
    dnc = DncList.load([tmp / "dnc.csv"], default_region="US")
    assert all(e in dnc for e in want) and len(dnc) == len(set(want))
    assert dnc.ignored == {"dnc.csv": 0}
    consent = ConsentLedger.load(tmp / "consent.csv", default_region="US")
    for e in want:
        assert consent.decide(phone_e164=e, contact_id=None, at=AT).reason == "consent_revoked"


# --------------------------------------------------------------------------------------------
# Cells that cannot be read: refused (DNC, revocations) or listed
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cell", ["4.15555E+09", "555-0199", "415-555-019", "415-555-0188 / 415-555-0199",
             "415-555-O188", "41555501888"],
)
def test_a_plausible_number_that_cannot_be_read_refuses_the_dnc_list(
    cell: str, tmp_path: Path
) -> None:
    path = tmp_path / "dnc.csv"
    path.write_text(f"Phone\n+12125550100\n\n{cell}\n", encoding="utf-8")
    with pytest.raises(ComplianceError) as e:
        DncList.load([path], default_region="US")
    # data rows, 1-based, header and blank lines not counted (as for contacts)
    assert (e.value.path, e.value.row, e.value.column) == (path, 2, "Phone")
    assert repr(cell) in str(e.value)


def test_junk_in_a_dnc_list_is_listed_and_a_list_of_only_junk_is_refused(tmp_path: Path) -> None:
    dnc = DncList.load([EX / "dnc_spellings.csv"], default_region="US")
    assert len(dnc) == 10 and dnc.ignored == {"dnc_spellings.csv": 1}
    bad = dnc.unreadable["dnc_spellings.csv"]
    assert bad[["row", "column", "value"]].values.tolist() == [
        [11, "Phone Number", "call me later"]]
    # one complete number that is not assigned reads unambiguously: listed, never dialed
    unassigned = tmp_path / "unassigned.csv"
    unassigned.write_text("phone\n+12125550100\n(999) 555-1234\n")
    u = DncList.load([unassigned], default_region="US")
    assert u.unreadable["unassigned.csv"]["problem"].tolist() == ["not a valid number for US"]
    only = tmp_path / "dnc.csv"
    only.write_text("phone\nn/a\nask\n")
    with pytest.raises(ComplianceError, match="wrong column or file") as e:
        DncList.load([only], default_region="US")
    assert (e.value.row, e.value.column) == (1, "phone")


def test_revocations_refuse_grants_are_listed(tmp_path: Path) -> None:
    with pytest.raises(ComplianceError) as e:
        ConsentLedger.load(EX / "consent_revoke_unreadable.csv", default_region="US")
    assert (e.value.row, e.value.column) == (2, "phone") and "415-555-019" in str(e.value)
    grant = tmp_path / "consent.csv"
    grant.write_text(
        "phone,event,event_at\n+12125550100,grant,2026-01-01T00:00:00Z\n"
        "415-555-019,grant,2026-01-01T00:00:00Z\n"
    )
    ledger = ConsentLedger.load(grant, default_region="US")
    assert ledger.unreadable["row"].tolist() == [2] and len(ledger) == 1


def test_an_unreadable_dnc_cell_exits_65_naming_file_row_and_column(tmp_path: Path) -> None:
    camp = campaign_file(tmp_path, "hubspot_contacts.csv", dnc="dnc_scientific.csv")
    proc = run_cli("check", str(camp))
    assert proc.returncode == 65, proc.stderr
    assert "dnc_scientific.csv: row 2, column 'Phone'" in proc.stderr
    assert "4.15555E+09" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_cli("run", str(camp), "--base-url", "http://127.0.0.1:9")
    assert proc.returncode == 65 and "dnc_scientific.csv: row 2" in proc.stderr


# --------------------------------------------------------------------------------------------
# check: what it understood, and plan.csv
# --------------------------------------------------------------------------------------------


def test_check_prints_the_mapping_warnings_unreadable_cells_and_writes_plan_csv(
    tmp_path: Path,
) -> None:
    camp = campaign_file(tmp_path, "salesforce_contacts.csv")
    proc = run_cli("check", str(camp))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "Mailing State/Province" in out and "Phone, Mobile, Home Phone, Other Phone" in out
    assert "ignored" in out and "Account Name" in out
    assert "row 5, column 'Phone': '555-0115'" in out  # the contacts cell it could not read
    assert "row 11, column 'Phone Number': 'call me later'" in out  # the DNC list's
    assert "4 phone columns" in out
    plan_csv = tmp_path / "out" / "plan.csv"
    with open(plan_csv, encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0])[:6] == [
        "row", "contact_id", "phone_raw", "phone_e164", "phone_column", "phone_extension"]
    assert [(r["row"], r["phone_e164"], r["disposition"], r["reason"]) for r in rows] == [
        ("1", "+13125550150", "suppressed", "consent_revoked"),
        ("2", "+16025550152", "eligible", ""),
        ("3", "+12125550114", "eligible", ""),
        ("4", "+12125550190", "suppressed", "dnc_local"),
        ("5", "", "suppressed", "invalid_phone"),
        ("6", "", "suppressed", "no_consent"),
    ]
    assert "America/Phoenix" in rows[1]["zones"].split() and rows[1]["phone_column"] == "Home Phone"
    js = run_cli("check", str(camp), "--json")
    data = json.loads(js.stdout)
    assert data["columns"]["phone"] == ["Phone", "Mobile", "Home Phone", "Other Phone"]
    assert data["unreadable"]["dnc_spellings.csv"]["count"] == 1
    assert data["plan_csv"] == str(plan_csv)


def test_check_warns_when_zones_come_from_area_codes_only(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text("phone\n+12125550100\n")
    c = load_contacts(path, default_region="US")
    assert any("area codes only" in w for w in c.warnings)


# --------------------------------------------------------------------------------------------
# Gate at dial time agrees with the plan on other numbers
# --------------------------------------------------------------------------------------------


def test_gate_holds_back_a_row_whose_other_number_is_listed_or_revoked(tmp_path: Path) -> None:
    c: Contacts = load_contacts(EX / "salesforce_contacts.csv", default_region="US")
    dnc = DncList.load([EX / "dnc_spellings.csv"], default_region="US")
    consent = ConsentLedger.load(EX / "consent.csv", default_region="US")
    gate = Gate(dnc=dnc, consent=consent, window=CallingWindow(time(9), time(20)),
                require_consent=True)
    plan = build_plan(c, gate, AT)
    for i in range(len(c.frame)):
        r = c.frame.iloc[i]
        if pd.notna(r["reason"]) or pd.isna(r["phone_e164"]):
            continue
        others = tuple(r["phone_others"].split()) if pd.notna(r["phone_others"]) else ()
        v = gate.check(phone_e164=r["phone_e164"], contact_id=r["contact_id"],
                       tz_hint=r["tz_hint"], at=AT, other_phones=others)
        assert (v.disposition, v.reason) == (plan.iloc[i]["disposition"],
                                             None if pd.isna(plan.iloc[i]["reason"])
                                             else plan.iloc[i]["reason"])
    v = gate.check(phone_e164="+12125550100", contact_id=None, tz_hint=None, at=AT,
                   other_phones=("+14155550196",))
    assert (v.disposition, v.reason) == ("suppressed", "dnc_local")


# --------------------------------------------------------------------------------------------
# Exports stay safe
# --------------------------------------------------------------------------------------------


def test_cr_and_lf_in_cells_are_quoted_and_header_names_neutralised(tmp_path: Path) -> None:
    df = pd.DataFrame({"row": [1, 2], "=HYPERLINK(\"x\")": ["Ann\r=1+1", "Bo\nb"],
                       "phone_e164": ["+14155550188", "+12125550100"]})
    path = tmp_path / "out.csv"
    write_atomic_csv(safe_for_spreadsheets(df), path)
    raw = path.read_bytes()
    assert b'"Ann\r=1+1"' in raw and b'"Bo\nb"' in raw
    with open(path, encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["row", "'=HYPERLINK(\"x\")", "phone_e164"]
    assert rows[1] == ["1", "Ann\r=1+1", "+14155550188"] and len(rows) == 3


def test_the_guard_leaves_the_frame_it_is_given_as_it_was() -> None:
    """The guarded frame shares the columns it does not change: the caller's frame (the
    results the report and the summary read) keeps its raw text."""
    df = pd.DataFrame({"name": pd.array(["=cmd()", "Ann"], dtype="string"),
                       "city": pd.array(["Paris", "Rome"], dtype="string"),
                       "note": ["@x", "ok"]})
    before = df.copy()
    out = safe_for_spreadsheets(df)
    pd.testing.assert_frame_equal(df, before)
    assert out["name"].tolist() == ["'=cmd()", "Ann"] and out["note"].tolist() == ["'@x", "ok"]
    assert out["city"].tolist() == ["Paris", "Rome"]


# --------------------------------------------------------------------------------------------
# End to end: a DNC entry in any spelling is never called (judged by the sandbox's audit)
# --------------------------------------------------------------------------------------------


@pytest.mark.e2e
def test_a_person_whose_dnc_entry_is_in_any_spelling_is_never_called(tmp_path: Path) -> None:
    from campaign_dialer.sandbox import SandboxConfig, SandboxServer

    spellings = {
        "+12125550140": "2125550140.0", "+12125550141": "'2125550141",
        "+12125550142": "tel:+1-212-555-0142", "+12125550143": "212-555-0143 (cell)",
        "+12125550144": "2125550144 home", "+12125550145": "(212) 555-0145 mobile",
        "+12125550146": "212-555-0146 x12", "+12125550147": "212-555-0147 ext. 12",
        "+12125550148": "212\u00a0555\u00a00148",
        "+12125550149": "\uff12\uff11\uff12\uff15\uff15\uff15\uff10\uff11\uff14\uff19",
    }
    listed = list(spellings)
    callable_ = [f"+1212555016{i}" for i in range(4)]
    # the listed numbers appear as contacts in plain E.164, or as a row's second number
    contacts = [{"phone": p, "mobile": ""} for p in listed[:6]]
    contacts += [{"phone": callable_[i], "mobile": p} for i, p in enumerate(listed[6:])]
    contacts += [{"phone": "", "mobile": "+12125550170"}]
    camp = write_campaign(
        tmp_path, contacts=contacts, dnc=list(spellings.values()),
        consent=listed + callable_ + ["+12125550170"],
    )
    with SandboxServer(SandboxConfig(api_keys=(KEY,), seed=5, time_scale=0.004,
                                     requests_per_second=40.0, max_live_calls=10)) as sb:
        proc = run_cli("run", str(camp.path), "--base-url", sb.url)
        audit = sb.audit()
    assert proc.returncode == 0, proc.stderr[-3000:]
    called = set(assert_nobody_called_twice(audit))
    assert not called & set(listed)
    assert not called & set(callable_)  # their other number is listed: held back
    assert called == {"+12125550170"}  # the mobile-only contact is rung on the mobile
    rows = camp.results()
    assert [(r["reason"]) for r in rows[:10]] == ["dnc_local"] * 10
    assert rows[10]["phone_column"] == "mobile" and rows[10]["disposition"] == "dialed"
    header = list(rows[0])
    assert header.index("phone_extension") == header.index("phone_column") + 1
    assert header.index("phone_column") > header.index("dialed_at")
    assert header.index("phone_extension") < header.index("phone")


@pytest.mark.parametrize(
    ("header", "phones", "roles"),
    [
        (  # Pipedrive people export
            ["Person - ID", "Person - Name", "Person - Phone - Work", "Person - Phone - Mobile",
             "Person - Phone - Home", "Person - Email - Work", "Person - Organization"],
            ["Person - Phone - Mobile", "Person - Phone - Work", "Person - Phone - Home"],
            {"contact_id": "Person - ID"},
        ),
        (  # Salesloft people export
            ["First Name", "Last Name", "Email", "Phone", "Mobile Phone", "Home Phone", "City",
             "State", "Country", "Time Zone", "Account"],
            ["Phone", "Mobile Phone", "Home Phone"],
            {"state": "State", "country": "Country", "timezone": "Time Zone"},
        ),
        (  # Outreach prospects export
            ["First Name", "Last Name", "Emails", "Work Phones", "Mobile Phones", "Home Phones",
             "Other Phones", "Voip Phones", "Address State", "Address Zip", "Address Country",
             "Timezone"],
            ["Work Phones", "Mobile Phones", "Home Phones", "Other Phones", "Voip Phones"],
            {"state": "Address State", "postal_code": "Address Zip",
             "country": "Address Country", "timezone": "Timezone"},
        ),
        (  # Salesforce Accounts report
            ["Account ID", "Account Name", "Phone", "Billing State/Province",
             "Billing Zip/Postal Code", "Billing Country", "Shipping State/Province"],
            ["Phone"],
            {"contact_id": "Account ID", "state": "Billing State/Province",
             "postal_code": "Billing Zip/Postal Code", "country": "Billing Country"},
        ),
        (  # Close leads export
            ["id", "display_name", "status_label", "primary_contact_name",
             "primary_contact_phone", "addresses"],
            ["primary_contact_phone"],
            {"contact_id": "id"},
        ),
    ],
)
def test_header_sets_of_other_crms(
    header: list[str], phones: list[str], roles: dict[str, str], tmp_path: Path
) -> None:
    path = tmp_path / "export.csv"
    with open(path, "w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerow(header)
        csv.writer(fh).writerow(["" for _ in header])
    c = load_contacts(path, default_region="US")
    assert c.phone_columns == phones
    assert {k: v for k, v in c.roles.items() if k != "phone"} == roles
