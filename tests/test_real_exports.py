"""Files shaped exactly like what sales-ops users export (bytes as the tools write them):
each is read exactly, or refused naming file, row (or line) and column; nothing is guessed."""

from __future__ import annotations

import codecs
from datetime import UTC, datetime
from pathlib import Path

import pytest

from campaign_dialer.compliance import ComplianceError, ConsentLedger
from campaign_dialer.compliance.dnc import DncList
from campaign_dialer.contacts import ContactsError, load_contacts

AT = datetime(2026, 6, 10, 17, 0, tzinfo=UTC)


def _write(path: Path, text: str, encoding: str = "utf-8", bom: bool = False) -> Path:
    data = text.replace("\n", "\r\n").encode(encoding)
    path.write_bytes((codecs.BOM_UTF8 if bom else b"") + data)
    return path


# name -> (file text, encoding, BOM, expected (phone_e164 or None, reason or None) per row)
SHAPES: dict[str, tuple[str, str, bool, list[tuple[str | None, str | None]]]] = {
    "hubspot_bom_quoted_newlines": (
        "Record ID,First Name,Last Name,Phone Number,Mobile Phone Number,Email,Contact owner,"
        "Lead Status,Time Zone,Notes\n"
        '101,Ana,Lee,+1 (212) 555-0123,,a@x.com,Bob,NEW,America/New_York,"line1\nline2, comma"\n'
        "102,José,Núñez,,(415) 555-0188,j@x.com,Bob,OPEN,US/Pacific,\n"
        '103,Li,Wu,212.555.0124 ext. 4,,l@x.com,,,,"said ""call me"""\n',
        "utf-8", True,
        [("+12125550123", None), ("+14155550188", None), ("+12125550124", None)],
    ),
    "salesforce_cp1252_do_not_call": (
        '"Contact ID","First Name","Phone","Mobile","MailingState","Do Not Call","Email Opt Out"\n'
        '"0035e00000AbCdE","Renée","(212) 555-0123","","NY","0","1"\n'
        '"0035e00000AbCdF","François","","+1 415 555 0188","CA","1","0"\n'
        '"0035e00000AbCdG","Zoë","212-555-0125","","ny","true","0"\n'
        '"0035e00000AbCdH","Ça","212-555-0126","","NY","false","0"\n',
        "cp1252", False,
        [("+12125550123", None), ("+14155550188", "dnc_flag"), ("+12125550125", "dnc_flag"),
         ("+12125550126", None)],
    ),
    "excel_spellings_cp1252": (
        "Name,Phone\nA,2.12555E+10\nB,12125550123.0\nC,'+1 212 555 0126\n"
        "D,tel:+1-212-555-0127\nE,(212)\u00a0555\u00a00128\nF,#N/A\nG,#ERROR!\n,\n",
        "cp1252", False,
        [(None, "invalid_phone"), ("+12125550123", None), ("+12125550126", None),
         ("+12125550127", None), ("+12125550128", None), (None, "invalid_phone"),
         (None, "invalid_phone"), (None, "blank_phone")],
    ),
    "excel_unicode_text_utf16_tabs": (
        "Name\tPhone\tState\nÅsa\t+1 212 555 0123\tNY\nBo\t415-555-0188\tCA\n",
        "utf-16", False,
        [("+12125550123", None), ("+14155550188", None)],
    ),
    "european_semicolons_decimal_commas": (
        "Name;Umsatz;Phone\nMüller;1.234,56;(212) 555-0123\nSchmidt;12,5;212 555 0124\n",
        "utf-8", True,
        [("+12125550123", None), ("+12125550124", None)],
    ),
    "google_sheets_lf": (
        "Name,Phone,State\nA,+1 212-555-0123,NY\nB,2125550124,NY\n",
        "utf-8", False,
        [("+12125550123", None), ("+12125550124", None)],
    ),
    "duplicated_headers_trailing_empty": (
        "Name,Phone,Phone,Email,,\nA,212 555 0123,415 555 0188,a@x,,\nB,,212 555 0124,b@x,,\n"
        ",,,,,\n",
        "utf-8", False,
        [("+12125550123", None), ("+12125550124", None), (None, "blank_phone")],
    ),
}


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_each_real_contacts_export_is_read_exactly_with_every_row_and_its_fate(
    tmp_path: Path, name: str
) -> None:
    text, encoding, bom, expected = SHAPES[name]
    p = tmp_path / f"{name}.csv"
    if encoding == "utf-16":
        p.write_bytes(text.replace("\n", "\r\n").encode("utf-16"))  # BOM + LE, as Excel
    else:
        _write(p, text, encoding, bom)
    c = load_contacts(p, default_region="US")
    got = [
        (None if e is None or e != e else e, None if r is None or r != r else r)
        for e, r in zip(
            c.frame["phone_e164"].astype(object).where(c.frame["phone_e164"].notna(), None),
            c.frame["reason"].astype(object).where(c.frame["reason"].notna(), None),
            strict=True,
        )
    ]
    assert got == expected


def test_a_dnc_list_under_a_title_line_is_refused_naming_the_header_line(tmp_path: Path) -> None:
    """Read as a header, the padded title made "Phone" the numbers' column and left Mobile
    unread: a listed mobile number would have been called."""
    p = _write(tmp_path / "dnc.csv", "Do Not Call list,\nPhone,Mobile\n2125550123,4155550188\n")
    with pytest.raises(ComplianceError) as e:
        DncList.load([p], default_region="US")
    assert "line 2" in str(e.value) and "dnc.csv" in str(e.value)
    assert e.value.column == "Phone"


def test_title_lines_above_a_contacts_or_consent_header_name_the_header_line(
    tmp_path: Path,
) -> None:
    p = _write(tmp_path / "c.csv", "Contacts report,,,\nExported 30/11/2026,,,\n,,,\n"
               "Name,Phone,State,\nA,212 555 0123,NY,\n")
    with pytest.raises(ContactsError) as e:
        load_contacts(p, default_region="US")
    assert "line 4" in str(e.value) and e.value.column == "Phone"
    q = _write(tmp_path / "consent.csv",
               "Consent log,,\nphone,event,event_at\n+12125550123,grant,2026-06-09T13:00:00Z\n")
    with pytest.raises(ComplianceError) as e2:
        ConsentLedger.load(q, default_region="US")
    assert "line 2" in str(e2.value)


def test_a_contact_id_in_scientific_notation_is_refused_in_contacts_and_consent(
    tmp_path: Path,
) -> None:
    """Excel writes HubSpot's 12-digit Record IDs as 1.23457E+11: two people read alike (one
    skipped as a duplicate, one's consent taken for the other's)."""
    p = _write(tmp_path / "c.csv",
               "Record ID,Phone Number\n123456789012,+1 212 555 0123\n"
               "1.23457E+11,+1 415 555 0188\n")
    with pytest.raises(ContactsError) as e:
        load_contacts(p, default_region="US")
    assert (e.value.row, e.value.column) == (2, "Record ID")
    q = _write(tmp_path / "consent.csv",
               "contact_id,event,event_at\n1.23457E+11,grant,2026-06-09T13:00:00Z\n")
    with pytest.raises(ComplianceError) as e2:
        ConsentLedger.load(q, default_region="US")
    assert (e2.value.row, e2.value.column) == (1, "contact_id")


def test_a_revocation_keyed_by_an_excel_float_id_holds_back_that_contact(tmp_path: Path) -> None:
    """The ledger's `101.0` (Excel) is the contacts file's `101`: the revocation applies."""
    c = load_contacts(_write(tmp_path / "c.csv", "Record ID,Phone Number\n101.0,212 555 0123\n"),
                      default_region="US")
    assert c.frame["contact_id"].tolist() == ["101"]
    led = ConsentLedger.load(_write(
        tmp_path / "consent.csv",
        "phone,contact_id,event,event_at\n+12125550123,,grant,2026-06-01T13:00:00Z\n"
        ",101.0,revoke,2026-06-09T13:00:00Z\n"), default_region="US")
    d = led.decide(phone_e164="+12125550123", contact_id="101", at=AT)
    assert d.reason == "consent_revoked"


@pytest.mark.parametrize(
    "stamp", ["46182.54167", "6/9/2026 1:00 PM", "2026-06-09 13:00:00", "2026-06-09T13:00",
              "09.06.2026 13:00", "#N/A"],
)
def test_consent_timestamps_excel_writes_are_refused_naming_row_and_column(
    tmp_path: Path, stamp: str
) -> None:
    p = _write(tmp_path / "consent.csv",
               f"phone,event,event_at\n+12125550123,grant,2026-06-01T13:00:00Z\n"
               f"+14155550188,grant,{stamp}\n")
    with pytest.raises(ComplianceError) as e:
        ConsentLedger.load(p, default_region="US")
    assert (e.value.row, e.value.column) == (2, "event_at")


@pytest.mark.parametrize(
    ("name", "text", "encoding"),
    [
        ("excel_cp1252", "Phone Number,Date Added\n12125550123.0,6/9/2026\n"
         "'+1 415 555 0188,6/9/2026\n(212)\u00a0555-0125 x12,\ntel:+12125550126,\n", "cp1252"),
        ("utf16_tabs", "Phone\tAdded\n+1 212 555 0123\t6/9/2026\n+1 415 555 0188\t\n"
         "212.555.0125\t\n212 555 0126\t\n", "utf-16"),
        ("semicolons", "Telefon;Phone;Datum\nx;+1 212 555 0123;09.06.2026\n"
         "y;4155550188;09.06.2026\nz;212-555-0125;\nw;(212) 555 0126;\n", "utf-8"),
    ],
)
def test_real_dnc_exports_hold_every_number(
    tmp_path: Path, name: str, text: str, encoding: str
) -> None:
    p = tmp_path / f"{name}.csv"
    p.write_bytes(text.replace("\n", "\r\n").encode(encoding))
    dnc = DncList.load([p], default_region="US")
    for number in ("+12125550123", "+14155550188", "+12125550125", "+12125550126"):
        assert number in dnc, number


def test_a_revocation_in_any_phone_column_of_a_consent_export_holds_that_number(
    tmp_path: Path,
) -> None:
    """HubSpot's "Mobile Phone Number" and Salesforce's "Mobile" were not read: a revocation
    of the mobile number, keyed also by a Record ID the contacts file lacks, was missed."""
    hub = ConsentLedger.load(_write(
        tmp_path / "hubspot.csv",
        "Record ID,Mobile Phone Number,Status,Created at\n"
        "101,+1 212 555 0123,opted in,2026-06-01T13:00:00Z\n"
        "101,+1 212 555 0123,opted out,2026-06-09T13:00:00Z\n"), default_region="US")
    assert hub.decide(phone_e164="+12125550123", contact_id=None, at=AT).reason == (
        "consent_revoked"
    )
    sf = ConsentLedger.load(_write(
        tmp_path / "sf.csv",
        "Contact ID,Phone,Mobile,Status,Created at\n"
        "003A,(212) 555-0123,(415) 555-0188,granted,2026-06-01T13:00:00Z\n"
        "003A,,415-555-0188,revoked,2026-06-09T13:00:00Z\n"
        "003B,(212) 555-0125,12125550126.0,granted,2026-06-01T13:00:00Z\n"), default_region="US")
    assert sf.decide(phone_e164="+14155550188", contact_id=None, at=AT).reason == (
        "consent_revoked"
    )
    assert sf.decide(phone_e164="+12125550123", contact_id=None, at=AT).allowed
    # a grant is the main column's number only: the other number has no consent of its own
    assert sf.decide(phone_e164="+12125550126", contact_id=None, at=AT).reason == "no_consent"
    with pytest.raises(ComplianceError) as e:
        ConsentLedger.load(_write(
            tmp_path / "bad.csv", "phone,mobile,event,event_at\n"
            "+12125550123,2.12555E+10,revoke,2026-06-09T13:00:00Z\n"), default_region="US")
    assert (e.value.row, e.value.column) == (1, "mobile")


def test_a_european_excel_float_phone_has_no_extension(tmp_path: Path) -> None:
    """A ';' export in a decimal-comma locale writes 12125550123,0: the number, not an
    extension "0" (only the `.0` spelling was undone)."""
    p = _write(tmp_path / "c.csv", "Name;Phone\nA;12125550123,0\nB;2125550124,00\n", bom=True)
    c = load_contacts(p, default_region="US")
    assert c.frame["phone_e164"].tolist() == ["+12125550123", "+12125550124"]
    assert c.frame["phone_extension"].isna().all()


@pytest.mark.parametrize(
    "header",
    ['Name;Phone;"Betrag (EUR, netto)"', '"Name, First";Phone;Umsatz'],
)
def test_a_semicolon_export_whose_header_holds_a_comma_is_read_as_semicolons(
    tmp_path: Path, header: str
) -> None:
    """The first line's comma made the whole file comma-separated: refused with a message
    naming a column 'netto)"' that does not exist, or no row at all."""
    p = _write(tmp_path / "c.csv", f"{header}\nA;212 555 0123;1,5\nB;4155550188;2\n", bom=True)
    c = load_contacts(p, default_region="US")
    assert c.frame["phone_e164"].tolist() == ["+12125550123", "+14155550188"]
    d = _write(tmp_path / "dnc.csv", f"{header}\nA;212 555 0123;1,5\nB;4155550188;2\n")
    dnc = DncList.load([d], default_region="US")
    assert "+12125550123" in dnc and "+14155550188" in dnc


@pytest.mark.parametrize("first", ["sep=;", "sep=,", '"sep=;"'])
def test_excels_sep_directive_line_is_refused_by_name(tmp_path: Path, first: str) -> None:
    d = first[-1] if first[-1] != '"' else ";"
    p = _write(tmp_path / "dnc.csv", f"{first}\nPhone{d}Added\n2125550123{d}2026-06-09\n")
    with pytest.raises(ComplianceError) as e:
        DncList.load([p], default_region="US")
    assert "delimiter directive" in str(e.value)
    with pytest.raises(ContactsError) as e2:
        load_contacts(p, default_region="US")
    assert "delimiter directive" in str(e2.value)


def test_a_number_whose_country_column_says_another_country_is_not_dialed(
    tmp_path: Path,
) -> None:
    """HubSpot's Country/Region = Mexico with `55 1234 5678`: read with region US it is the
    valid New Jersey number +1 551-234-5678, a stranger. Canada shares +1; a `+52` number of
    a Mexican row is read as written; an unknown country value is named in a warning."""
    p = _write(tmp_path / "c.csv",
               "Record ID,Phone Number,Country/Region\n"
               "201,55 1234 5678,Mexico\n202,33 1234 5678,MX\n203,212 555 0123,United States\n"
               "204,416 555 0123,Canada\n205,+52 55 1234 5678,México\n206,212 555 0125,\n"
               "207,212 555 0126,Atlantis\n208,+1 212 555 0127,U.S.A.\n")
    c = load_contacts(p, default_region="US")
    f = c.frame
    assert f["reason"].fillna("").tolist() == [
        "invalid_phone", "invalid_phone", "", "", "", "", "", ""
    ]
    assert f["phone_e164"].iloc[:2].isna().all()
    assert "Mexico" in f["detail"].iloc[0] and "+52" in f["detail"].iloc[0]
    assert f["phone_e164"].iloc[4] == "+525512345678"
    assert any("'Atlantis'" in w for w in c.warnings)


def test_a_salesforce_18_character_id_is_the_same_contact_as_its_15_character_form(
    tmp_path: Path,
) -> None:
    """A report exports 001A0000006Vm9r, the API and Data Loader 001A0000006Vm9rIAC: a
    revocation keyed by one holds back the contact keyed by the other. An 18-character id
    whose last three characters are not the checksum is left as it is."""
    c = load_contacts(_write(
        tmp_path / "c.csv",
        "Contact ID,Phone\n001A0000006Vm9r,212 555 0123\n001A0000006Vm9rAAA,212 555 0124\n"),
        default_region="US")
    assert c.frame["contact_id"].tolist() == ["001A0000006Vm9r", "001A0000006Vm9rAAA"]
    led = ConsentLedger.load(_write(
        tmp_path / "consent.csv",
        "phone,contact_id,event,event_at\n+12125550123,,grant,2026-06-01T13:00:00Z\n"
        ",001A0000006Vm9rIAC,revoke,2026-06-09T13:00:00Z\n"), default_region="US")
    d = led.decide(phone_e164="+12125550123", contact_id="001A0000006Vm9r", at=AT)
    assert d.reason == "consent_revoked"


def test_a_dnc_export_with_a_country_column_reads_each_number_in_its_country(
    tmp_path: Path,
) -> None:
    """A CRM's Do-Not-Call export lists a Mexican customer as `55 1234 5678` beside
    Country/Region = Mexico: the listed number is +52 55 1234 5678 (read with the default
    region it was the New Jersey +1 551-234-5678, and the listed person was callable)."""
    p = _write(
        tmp_path / "hubspot-dnc.csv",
        "Record ID,Phone Number,Country/Region\n"
        "1,55 1234 5678,Mexico\n"
        "2,(212) 555-0123,United States\n"
        "3,+44 20 7946 0958,Mexico\n"  # its own + code wins over the country cell
        "4,(415) 555-0188,\n"  # blank: the default region
        "5,(646) 555-0100,Atlantis\n")  # unknown: the default region, and a warning
    dnc = DncList.load([p], default_region="US")
    for number in ("+525512345678", "+12125550123", "+442079460958", "+14155550188",
                   "+16465550100"):
        assert number in dnc, number
    assert "+15512345678" not in dnc
    assert any("Atlantis" in w for w in dnc.warnings)
