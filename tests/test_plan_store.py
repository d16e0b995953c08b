"""Plan once (#25): the plan of an input version is kept in the store as compact columns and
read back, on SQLite and on PostgreSQL; a changed input is planned again."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
import textwrap
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from campaign_dialer.config import load_campaign
from campaign_dialer.planning import (
    MADE,
    STORED,
    Plan,
    decode_plan,
    encode_plan,
    make_plan,
    plan_fingerprint,
    plan_once,
)
from campaign_dialer.store import open_plan_store
from campaign_dialer.store.ledger_file import DncLedger

from .campaign_files import write_campaign_toml

pytest_plugins = ["tests.pg_cluster"]

EX = Path(__file__).parent / "data" / "exports"
AT = datetime(2026, 6, 10, 17, 0, tzinfo=UTC)  # Wed 13:00 New York
NIGHT = datetime(2026, 6, 10, 6, 0, tzinfo=UTC)  # every US row waits for its window
CONTACTS = ["hubspot_contacts.csv", "salesforce_contacts.csv", "google_contacts.csv",
            "excel_cp1252.csv"]


def campaign_in(tmp: Path, contacts: str, name: str = "stored") -> Path:
    """A campaign over copies of the messy exports (so a test may change one)."""
    for f in (contacts, "dnc_spellings.csv", "consent.csv"):
        shutil.copy(EX / f, tmp / f)
    return write_campaign_toml(tmp / "campaign.toml", {
        "campaign": {"name": name, "agent_id": "agt_3d9b21"},
        "inputs": {"contacts": str(tmp / contacts), "dnc": [str(tmp / "dnc_spellings.csv")],
                   "consent": str(tmp / "consent.csv")},
        "compliance": {"dnc_ledger": str(tmp / "ledger.csv")},
        "output": {"dir": str(tmp / "out")},
    })


def every_row(plan_rows: object) -> list[dict[str, object]]:
    return [asdict(r) for r in plan_rows]  # type: ignore[attr-defined]


def same_rows(a: Plan, b: Plan) -> None:
    assert every_row(a.rows) == every_row(b.rows)
    assert a.rows.counts() == b.rows.counts()


@pytest.mark.parametrize("contacts", CONTACTS)
@pytest.mark.parametrize("at", [AT, NIGHT])
def test_encoded_plan_decodes_to_the_same_rows(tmp_path: Path, contacts: str,
                                               at: datetime) -> None:
    plan = make_plan(load_campaign(campaign_in(tmp_path, contacts)), at)
    back = decode_plan(encode_plan(plan.rows, "fp"))
    assert every_row(back) == every_row(plan.rows)
    assert back.counts() == plan.rows.counts()
    assert back.frame().equals(plan.rows.frame())


@pytest.mark.parametrize("contacts", CONTACTS)
def test_sqlite_store_round_trip(tmp_path: Path, contacts: str) -> None:
    campaign = load_campaign(campaign_in(tmp_path, contacts))
    plan = make_plan(campaign, NIGHT)
    store = open_plan_store(campaign.journal_path)
    assert store.fingerprint() is None and store.load() is None
    store.save(encode_plan(plan.rows, "one"))
    assert store.fingerprint() == "one"
    loaded = store.load()
    assert loaded is not None
    assert every_row(decode_plan(loaded)) == every_row(plan.rows)
    store.save(encode_plan(plan.rows, "two"))  # replaced whole
    assert store.fingerprint() == "two"
    # columns in chunks, not a record (or JSON) per row
    path = campaign.journal_path.with_name(campaign.journal_path.name + ".plan")
    db = sqlite3.connect(path)
    assert db.execute("SELECT count(*) FROM plan_chunks").fetchone()[0] == 1
    db.close()
    assert not list(path.parent.glob("*.tmp"))


def test_plan_once_reuses_then_replans_a_changed_dnc_list(tmp_path: Path) -> None:
    path = campaign_in(tmp_path, "hubspot_contacts.csv")
    campaign = load_campaign(path)
    store = open_plan_store(campaign.journal_path)
    first = plan_once(campaign, AT, None, store)
    assert first.source == MADE
    again = plan_once(load_campaign(path), AT + timedelta(minutes=15), None, store)
    assert again.source == STORED  # nothing changed: not planned again
    same_rows(first, again)
    assert len(again.contacts.frame) == len(first.rows)  # loaded when asked for
    eligible = [r for r in again.rows if r.disposition == "eligible" and r.phone_e164]
    assert eligible
    newly = eligible[0]
    with open(tmp_path / "dnc_spellings.csv", "a", encoding="utf-8") as f:
        f.write(f"{newly.phone_e164}\n")
    third = plan_once(load_campaign(path), AT + timedelta(minutes=30), None, store)
    assert third.source == MADE  # the DNC list changed: planned again
    row = next(r for r in third.rows if r.row == newly.row)
    assert row.disposition == "suppressed" and row.reason.startswith("dnc")
    assert plan_once(load_campaign(path), AT + timedelta(hours=1), None, store).source == STORED


def test_an_opt_out_in_the_dnc_ledger_reuses_the_plan_and_holds_the_row(tmp_path: Path) -> None:
    """The campaign's DNC ledger grows with every opt-out a run records: the plan is not made
    again for it (every run would plan again), the DNC rule is asked again of the stored plan,
    which says of every row what a plan made afresh says."""
    path = campaign_in(tmp_path, "hubspot_contacts.csv")
    campaign = load_campaign(path)
    store = open_plan_store(campaign.journal_path)
    first = plan_once(campaign, AT, None, store)
    newly = next(r for r in first.rows if r.disposition == "eligible" and r.phone_e164)
    assert newly.phone_e164 is not None
    DncLedger(tmp_path / "ledger.csv").add(newly.phone_e164, reason="opt_out",
                                           campaign="stored", evidence="call_1", at=AT)
    again = plan_once(load_campaign(path), AT + timedelta(minutes=15), None, store)
    assert again.source == STORED
    row = next(r for r in again.rows if r.row == newly.row)
    assert row.disposition == "suppressed" and row.reason == "dnc_local"
    fresh = make_plan(load_campaign(path), AT + timedelta(minutes=15))
    assert [(r.row, r.disposition, r.reason, r.detail, r.next_open) for r in again.rows] == [
        (r.row, r.disposition, r.reason, r.detail, r.next_open) for r in fresh.rows]


def test_fingerprint_follows_inputs_and_settings(tmp_path: Path) -> None:
    path = campaign_in(tmp_path, "hubspot_contacts.csv")
    fp = plan_fingerprint(load_campaign(path), AT)
    assert plan_fingerprint(load_campaign(path), AT + timedelta(hours=2)) == fp
    (tmp_path / "consent.csv").write_text((tmp_path / "consent.csv").read_text() + "\n")
    fp2 = plan_fingerprint(load_campaign(path), AT)
    assert fp2 != fp
    text = path.read_text()
    path.write_text(text.replace('[compliance]', '[compliance]\nrequire_consent = false'))
    assert plan_fingerprint(load_campaign(path), AT) != fp2


# -- PostgreSQL ---------------------------------------------------------------------------

def test_pg_store_round_trip(tmp_path: Path, pg_database: str) -> None:
    pytest.importorskip("psycopg")
    from campaign_dialer.store.postgres import Database

    campaign = load_campaign(campaign_in(tmp_path, "salesforce_contacts.csv"))
    plan = make_plan(campaign, NIGHT)
    with Database(pg_database) as db:
        store = open_plan_store(campaign.journal_path, db=db, campaign=campaign.name)
        other = open_plan_store(campaign.journal_path, db=db, campaign="another")
        assert store.fingerprint() is None and store.load() is None
        store.save(encode_plan(plan.rows, "one"))
        store.save(encode_plan(plan.rows, "two"))
        assert store.fingerprint() == "two" and other.fingerprint() is None
        loaded = store.load()
        assert loaded is not None
        back = decode_plan(loaded)
        assert every_row(back) == every_row(plan.rows)
        assert back.counts() == plan.rows.counts()
        # chunks of columns, not a row (or JSON) per row
        n = db.fetchone("SELECT count(*) FROM plan_chunks WHERE campaign = %s",
                        (campaign.name,))[0]
        assert n == 1 < len(plan.rows)


def test_pg_store_shares_kept_contacts_in_parts(
    tmp_path: Path, pg_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The kept contacts' file goes to the database in parts and comes back byte for byte,
    into a folder not made yet, for its plan only; a new one replaces it."""
    pytest.importorskip("psycopg")
    from campaign_dialer.store.postgres import Database
    from campaign_dialer.store.postgres import plan as pg_plan

    monkeypatch.setattr(pg_plan, "CONTACTS_PART_BYTES", 1000)
    kept = tmp_path / "kept.contacts"
    data = bytes(range(256)) * 17  # 4,352 bytes: five parts
    kept.write_bytes(data)
    with Database(pg_database) as db:
        store = open_plan_store(tmp_path / "j.sqlite", db=db, campaign="shared")
        other = open_plan_store(tmp_path / "j.sqlite", db=db, campaign="another")
        there = tmp_path / "machine-b" / "out" / "kept.contacts"
        assert not store.fetch_contacts(there, "fp-1")  # nothing shared yet
        store.share_contacts(kept, "fp-1")
        assert db.fetchone("SELECT count(*) FROM kept_contacts_parts")[0] == 5
        assert not store.fetch_contacts(there, "fp-2") and not there.exists()  # another plan
        assert not other.fetch_contacts(there, "fp-1")  # another campaign
        assert store.fetch_contacts(there, "fp-1") and there.read_bytes() == data
        assert there.stat().st_mode & 0o777 == 0o600
        assert [p.name for p in there.parent.iterdir()] == ["kept.contacts"]  # no .tmp left
        kept.write_bytes(b"new")
        store.share_contacts(kept, "fp-2")
        assert db.fetchone("SELECT count(*) FROM kept_contacts_parts")[0] == 1
        assert not store.fetch_contacts(there, "fp-1") and there.read_bytes() == data
        assert store.fetch_contacts(there, "fp-2") and there.read_bytes() == b"new"


PLANNER = textwrap.dedent("""
    import sys
    from datetime import UTC, datetime
    from campaign_dialer.config import load_campaign
    from campaign_dialer.planning import plan_once
    from campaign_dialer.store import open_plan_store
    from campaign_dialer.store.postgres import Database, PgHistory

    url, path = sys.argv[1], sys.argv[2]
    campaign = load_campaign(path)
    with Database(url) as db:
        store = open_plan_store(campaign.journal_path, db=db, campaign=campaign.name)
        print("ready", flush=True)
        sys.stdin.readline()  # both start planning at once
        plan = plan_once(campaign, datetime(2026, 6, 10, 17, 0, tzinfo=UTC), PgHistory(db),
                         store)
        print("plan:", plan.source, len(plan.rows), flush=True)
""")


def test_pg_two_processes_start_together_and_one_plans(tmp_path: Path, pg_database: str) -> None:
    pytest.importorskip("psycopg")
    path = campaign_in(tmp_path, "hubspot_contacts.csv", name="together")
    procs = [
        subprocess.Popen([sys.executable, "-c", PLANNER, pg_database, str(path)],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    try:
        for p in procs:
            assert p.stdout is not None
            while p.stdout.readline().strip() != "ready":
                pass
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        outs = [
            next(line.split()[1:] for line in p.communicate(timeout=120)[0].splitlines()
                 if line.startswith("plan: "))
            for p in procs
        ]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert all(p.returncode == 0 for p in procs)
    assert sorted(o[0] for o in outs) == [MADE, STORED]  # one planned, the other read it
    assert outs[0][1] == outs[1][1]


def test_sqlite_store_keeps_rows_in_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from campaign_dialer.store.sqlite import plan as sqlite_plan

    monkeypatch.setattr(sqlite_plan, "CHUNK", 4)
    campaign = load_campaign(campaign_in(tmp_path, "salesforce_contacts.csv"))
    plan = make_plan(campaign, NIGHT)
    store = open_plan_store(campaign.journal_path)
    store.save(encode_plan(plan.rows, "chunks"))
    db = sqlite3.connect(campaign.journal_path.with_name(campaign.journal_path.name + ".plan"))
    chunks = db.execute("SELECT count(*) FROM plan_chunks").fetchone()[0]
    db.close()
    assert chunks == -(-len(plan.rows) // 4) > 1
    loaded = store.load()
    assert loaded is not None and every_row(decode_plan(loaded)) == every_row(plan.rows)


def test_sqlite_damaged_plan_is_planned_again(tmp_path: Path) -> None:
    """A kept plan whose chunks cannot be read is no plan: the run plans again."""
    path = campaign_in(tmp_path, "hubspot_contacts.csv")
    campaign = load_campaign(path)
    store = open_plan_store(campaign.journal_path)
    first = plan_once(campaign, AT, None, store)
    assert first.source == MADE
    db = sqlite3.connect(campaign.journal_path.with_name(campaign.journal_path.name + ".plan"))
    db.execute("UPDATE plan_chunks SET data = x'00ff00ff'")
    db.commit()
    db.close()
    assert store.load() is None
    again = plan_once(load_campaign(path), AT, None, store)
    assert again.source == MADE
    same_rows(first, again)


@pytest.mark.parametrize("contacts", ["hubspot_contacts.csv", "excel_cp1252.csv"])
def test_gate_read_in_parallel_is_the_same_gate(tmp_path: Path, contacts: str) -> None:
    """A stored plan's gate reads consent while the DNC lists are read: the same gate (its
    answer for every row of the plan) as read one after the other."""
    from campaign_dialer.planning import build_gate

    campaign = load_campaign(campaign_in(tmp_path, contacts))
    plan = make_plan(campaign, AT)
    one, _ = build_gate(campaign, None, AT)
    two, _ = build_gate(campaign, None, AT, parallel=True)
    assert one.consent is not None and two.consent is not None
    assert one.consent.events.equals(two.consent.events)
    for r in plan.rows:
        a = one.check(phone_e164=r.phone_e164, contact_id=r.contact_id, tz_hint=r.tz_hint,
                      at=AT)
        b = two.check(phone_e164=r.phone_e164, contact_id=r.contact_id, tz_hint=r.tz_hint,
                      at=AT)
        assert (a.disposition, a.reason) == (b.disposition, b.reason)


def test_resumed_plan_makes_only_the_rows_it_takes(tmp_path: Path) -> None:
    """A run reading its plan back takes rows from the stored columns: a `PlannedRow` is
    made for each row taken and for no other (the rest stay columns)."""
    from campaign_dialer.engine.stored_plan import DialColumns, StoredPlanSource

    path = campaign_in(tmp_path, "salesforce_contacts.csv")
    store = open_plan_store(load_campaign(path).journal_path)
    assert plan_once(load_campaign(path), AT, None, store).source == MADE
    plan = plan_once(load_campaign(path), AT, None, store)
    assert plan.source == STORED
    source = StoredPlanSource(plan.rows, DialColumns(**plan.rows.dial_columns()))
    assert plan.rows.made() == 0
    assert 2 <= len(source) < len(plan.rows)
    taken = source.take(AT, 1)
    assert len(taken) == 1 and plan.rows.made() == 1
    person = taken[0].person
    assert person is not None and source.people[person] is taken[0]  # the same object
    assert plan.rows.made() == 1


@pytest.mark.parametrize("contacts", ["hubspot_contacts.csv", "excel_cp1252.csv"])
def test_inputs_read_one_after_the_other_make_the_same_plan(
    tmp_path: Path, contacts: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Big inputs are read one after the other (memory), small ones at once: one plan."""
    import campaign_dialer.planning as planning

    campaign = load_campaign(campaign_in(tmp_path, contacts))
    at_once = make_plan(campaign, AT)
    monkeypatch.setattr(planning, "ONE_AT_A_TIME_BYTES", 0)
    in_turn = make_plan(load_campaign(campaign_in(tmp_path, contacts)), AT)
    same_rows(at_once, in_turn)
    assert in_turn.contacts.frame.equals(at_once.contacts.frame)


def test_inputs_read_in_turn_refuse_a_bad_contacts_file_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import campaign_dialer.planning as planning
    from campaign_dialer.errors import DialerError

    path = campaign_in(tmp_path, "hubspot_contacts.csv")
    (tmp_path / "hubspot_contacts.csv").write_bytes(b"")
    (tmp_path / "dnc_spellings.csv").write_text("Phone Number\n4.15555E+09\n")
    errors = []
    for limit in (planning.ONE_AT_A_TIME_BYTES, 0):
        monkeypatch.setattr(planning, "ONE_AT_A_TIME_BYTES", limit)
        with pytest.raises(DialerError) as e:
            make_plan(load_campaign(path, check_inputs=False), AT)
        errors.append(str(e.value))
    assert errors[0] == errors[1] and "hubspot_contacts.csv" in errors[0]
