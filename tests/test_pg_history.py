"""The contact history and DNC ledger on PostgreSQL, shared by campaigns on several machines
(each "machine" here is a pool of its own on the same database)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

pytest_plugins = ["tests.pg_cluster"]
pytest.importorskip("psycopg")

from campaign_dialer.store.postgres import Database, PgHistory  # noqa: E402

T0 = datetime(2026, 6, 9, 17, 0, tzinfo=UTC)


@pytest.fixture
def two_hosts(pg_database: str) -> Iterator[tuple[PgHistory, PgHistory]]:
    with Database(pg_database) as a, Database(pg_database) as b:
        yield PgHistory(a), PgHistory(b)


def _claim(h: PgHistory, campaign: str, person: str, at: datetime, also: tuple[str, ...] = (),
           state_limit: int | None = None) -> object:
    return h.claim(
        campaign=campaign, person=person, phone_e164=None, contact_id=None, attempt=1,
        idem_key=f"{campaign}-{person}", record={"person": person, "row": 1, "body": "{}"},
        at=at, min_hours=24.0, state_limit=state_limit, also=also,
    )


def test_a_call_to_another_of_the_persons_numbers_holds_them_back(
    two_hosts: tuple[PgHistory, PgHistory],
) -> None:
    a, b = two_hosts
    assert _claim(a, "spring", "tel:+12125550100", T0).ok  # type: ignore[attr-defined]
    held = _claim(b, "autumn", "cid:42", T0 + timedelta(hours=2), also=("tel:+12125550100",))
    assert (held.ok, held.reason) == (False, "recently_called")  # type: ignore[attr-defined]
    assert "spring" in held.detail  # type: ignore[attr-defined]


def test_state_limits_count_every_campaigns_calls(two_hosts: tuple[PgHistory, PgHistory]) -> None:
    a, b = two_hosts
    for i, c in enumerate(("c1", "c2")):
        h = (a, b)[i]
        assert h.claim(
            campaign=c, person="tel:+13055550100", phone_e164=None, contact_id=None,
            attempt=1, idem_key=f"{c}-k", record={}, at=T0 + timedelta(minutes=i),
            min_hours=0, state_limit=3, state="FL",
        ).ok
    third = a.claim(campaign="c3", person="tel:+13055550100", phone_e164=None,
                    contact_id=None, attempt=1, idem_key="c3-k", record={},
                    at=T0 + timedelta(minutes=5), min_hours=0, state_limit=2, state="FL")
    assert (third.ok, third.reason) == (False, "recently_called")
    assert "state limit (FL)" in third.detail


def test_an_opt_out_recorded_on_one_host_holds_on_every_other(
    two_hosts: tuple[PgHistory, PgHistory], tmp_path: Path,
) -> None:
    a, b = two_hosts
    a.add_dnc("+12125550100", reason="opt_out", campaign="spring", evidence="call_1", at=T0)
    assert b.is_dnc("+12125550100") and b.dnc_numbers() == {"+12125550100"}
    ledger = tmp_path / "ledger.csv"
    ledger.write_text("+12125550101,dnc_listed,autumn,call_9,2026-06-09T17:00:00Z\n"
                      "not-a-number,x\n")
    assert b.import_ledger(ledger) == 1
    assert b.import_ledger(ledger) == 0  # unchanged file: not read again
    assert a.is_dnc("+12125550101")
    assert a.import_ledger(tmp_path / "missing.csv") == 0


def test_sync_and_records_rebuild_a_lost_journal(two_hosts: tuple[PgHistory, PgHistory]) -> None:
    a, b = two_hosts
    rec = {"person": "tel:+12125550100", "row": 3, "attempt": 1, "idem_key": "k1",
           "state": "final", "call_id": "call_1", "status": "completed",
           "intent_at": "2026-06-09T17:00:00.000Z", "placed_at": "2026-06-09T17:00:01.000Z",
           "ended_at": "2026-06-09T17:01:01.000Z", "body": '{"phone_number": "+12125550100"}'}
    a.sync("spring", [rec])
    [back] = b.records("spring")
    assert (back["idem_key"], back["state"], back["call_id"], back["row"]) == (
        "k1", "final", "call_1", 3)
    assert b.call_seconds() == [60.0]
    assert "tel:+12125550100" in b.recent_calls(T0 - timedelta(minutes=1))


def test_a_claim_that_took_a_caller_id_and_lost_its_commit_stands_as_it_was_taken(
    two_hosts: tuple[PgHistory, PgHistory],
) -> None:
    """The engine's `amend` revises a reopened not-placed attempt's key with the number it
    takes (the body carries it). A claim whose COMMIT was lost is done again and must find its
    own intent under that amended key, keep the number and the reason it was chosen for, and
    never read itself as 'already_called' (the row would be skipped and stuck for good)."""
    import hashlib
    import json

    from campaign_dialer.store import CallerIdRequest, CallerPick

    h, _ = two_hosts
    person, base = "tel:+12125550100", "cd1-base"

    def request(pick: CallerPick) -> CallerIdRequest:
        def amend(p: CallerPick) -> tuple[str, dict[str, object]]:
            body = json.dumps({"from_phone_number_id": p.id}, sort_keys=True)
            key = f"{base}.{hashlib.sha256(body.encode()).hexdigest()[:12]}"
            return key, {"person": person, "row": 1, "attempt": 1, "idem_key": key,
                         "body": body, "evidence": json.dumps({"caller_id_reason": p.reason})}
        return CallerIdRequest(("pn_a", "pn_b"), lambda facts: pick, amend)

    def claim(pick: CallerPick) -> object:
        return h.claim(
            campaign="c", person=person, phone_e164=person[4:], contact_id=None, attempt=1,
            idem_key=f"{base}.unamended", record={"person": person, "row": 1, "body": "{}"},
            at=T0, min_hours=0.0, state_limit=None, caller=request(pick),
        )

    first = claim(CallerPick("pn_a", "+12125550180", "local_area_code"))
    assert first.ok  # type: ignore[attr-defined]
    rec = h.records("c")[0]
    h.sync("c", [{**rec, "state": "not_placed"}])  # refused before it rang: reopened later

    done = h.db.transact

    def commit_lost(fn, **kw):  # type: ignore[no-untyped-def]
        done(fn, **kw)  # committed; the answer never came back
        return done(fn, **kw)  # done again

    h.db.transact = commit_lost  # type: ignore[method-assign]
    again = claim(CallerPick("pn_b", "+15185550181", "local_state"))
    assert again.ok, again  # type: ignore[attr-defined]
    assert again.caller == CallerPick("pn_b", "+15185550181", "local_state")  # type: ignore[attr-defined]
    [stored] = h.records("c")
    assert stored["state"] == "intent" and "pn_b" in stored["body"]
