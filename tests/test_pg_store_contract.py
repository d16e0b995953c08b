"""The store contract (tests/test_store_contract.py) run against the PostgreSQL backend.

The test bodies are the contract's own, imported unchanged; only the `backend` fixture
differs. At merge, `_postgresql` can join `BACKENDS` in test_store_contract.py instead (it
needs the `pg_database` fixture: add `pytest_plugins = ["tests.pg_cluster"]` there) and
this module shrinks to the PostgreSQL-only tests at its end.

Skipped without a server, failing under CI=true (see tests/pg_cluster.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

pytest_plugins = ["tests.pg_cluster"]
pytest.importorskip("psycopg")

from tests.test_store_contract import (  # noqa: E402 - the contract's bodies, unchanged
    Backend,
    _intent,
    test_a_newer_schema_is_refused_with_78_and_left_alone,
    test_a_twin_shares_the_journal_and_closes_alone,
    test_an_older_schema_is_migrated_forward_keeping_its_data,
    test_claims_are_atomic_and_follow_the_cross_campaign_rule,
    test_claims_that_take_a_caller_id_never_push_a_number_past_its_cap,
    test_control_states_and_a_cancel_is_final,
    test_fates_are_upserted_by_row,
    test_history_dnc_is_durable_and_idempotent,
    test_import_attempts_skips_what_the_journal_has,
    test_intents_from_many_threads_record_each_attempt_once,
    test_one_intent_per_person_and_attempt_and_per_key,
    test_what_was_written_is_there_after_close_and_reopen,
)

__all__ = [
    "test_a_newer_schema_is_refused_with_78_and_left_alone",
    "test_a_twin_shares_the_journal_and_closes_alone",
    "test_an_older_schema_is_migrated_forward_keeping_its_data",
    "test_claims_are_atomic_and_follow_the_cross_campaign_rule",
    "test_claims_that_take_a_caller_id_never_push_a_number_past_its_cap",
    "test_control_states_and_a_cancel_is_final",
    "test_fates_are_upserted_by_row",
    "test_history_dnc_is_durable_and_idempotent",
    "test_import_attempts_skips_what_the_journal_has",
    "test_intents_from_many_threads_record_each_attempt_once",
    "test_one_intent_per_person_and_attempt_and_per_key",
    "test_what_was_written_is_there_after_close_and_reopen",
]

# Both stores live in one database with one schema version: `which` changes nothing.
# What the latest migration (6: the kept contacts) adds, undone to make the previous version.
_LATEST_UNDO = (
    "DROP TABLE IF EXISTS kept_contacts_parts",
    "DROP TABLE IF EXISTS kept_contacts",
)


def _postgresql(url: str) -> Backend:
    import psycopg

    from campaign_dialer.store.postgres.history import PgHistory
    from campaign_dialer.store.postgres.journal import PgJournal
    from campaign_dialer.store.postgres.schema import LATEST

    def sql(stmt: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        with psycopg.connect(url, autocommit=True) as conn:
            cur = conn.execute(stmt, params)  # type: ignore[arg-type]
            return cur.fetchall() if cur.description else []

    def force(_which: str, v: int) -> None:
        sql("INSERT INTO schema_version(version) VALUES (%s) ON CONFLICT DO NOTHING", (v,))
        sql("DELETE FROM schema_version WHERE version > %s", (v,))

    def previous(_which: str) -> None:
        for stmt in _LATEST_UNDO:
            sql(stmt)
        force(_which, LATEST - 1)

    return Backend(
        name="postgresql",
        journal=lambda campaign: PgJournal.open(url, campaign),
        history=lambda: PgHistory.open(url),
        schema_version=lambda _which: int(sql("SELECT max(version) FROM schema_version")[0][0]),
        force_schema_version=force,
        code_version=lambda _which: LATEST,
        make_previous_version=previous,
        has_current_shape=lambda _which: bool(
            sql("SELECT 1 FROM pg_indexes WHERE indexname = 'contact_calls_from'")
        ) and bool(sql("SELECT to_regclass('caller_id_rests')")[0][0])
        and bool(sql("SELECT to_regclass('plan_chunks')")[0][0])
        and bool(sql("SELECT to_regclass('fate_base_chunks')")[0][0])
        and bool(sql("SELECT to_regclass('kept_contacts_parts')")[0][0]),
    )


@pytest.fixture
def backend(pg_database: str, tmp_path: Path) -> Iterator[Backend]:
    yield _postgresql(pg_database)


# -- where PostgreSQL differs from one journal file per campaign --------------------------


def test_a_campaign_name_is_one_journal_shared_by_every_process(backend: Backend) -> None:
    """Instead of the SQLite "journal belongs to one campaign" refusal: in a team's database
    the campaign's name is its journal; another name is another journal in the same place."""
    first = backend.journal("c")
    second = backend.journal("c")  # another process, maybe another host
    other = backend.journal("other")
    try:
        a = _intent(first, "tel:+12125550100")
        assert [x.id for x in second.attempts()] == [a.id]
        assert other.attempts() == []
        _intent(other, "tel:+12125550100", key="other-key")  # its own attempt 1
        assert len(first.attempts()) == 1
    finally:
        for j in (first, second, other):
            j.close()


def test_opening_without_create_needs_the_campaign(backend: Backend, pg_database: str) -> None:
    from campaign_dialer.store.errors import JournalError
    from campaign_dialer.store.postgres.journal import PgJournal

    with pytest.raises(JournalError, match="no journal for campaign 'ghost'"):
        PgJournal.open(pg_database, "ghost", create=False)
    backend.journal("ghost").close()
    PgJournal.open(pg_database, "ghost", create=False).close()


def test_a_read_only_database_refuses_writes_with_73(backend: Backend, pg_database: str) -> None:
    import psycopg

    from campaign_dialer.exitcodes import ExitCode
    from campaign_dialer.store.errors import JournalError

    j = backend.journal("c")
    j.close()
    name = pg_database.rsplit("/", 1)[1]
    with psycopg.connect(pg_database, autocommit=True) as conn:
        conn.execute(  # type: ignore[call-overload]
            f'ALTER DATABASE "{name}" SET default_transaction_read_only = on'
        )
    from campaign_dialer.store.postgres.journal import PgJournal

    j = PgJournal.open(pg_database, "c", create=False)
    try:
        with pytest.raises(JournalError) as e:
            _intent(j, "tel:+12125550100")
        assert e.value.exit_code == ExitCode.CANTCREAT == 73
    finally:
        j.close()


def test_a_journal_with_a_coordinator_fences_intents_and_registers_runs(
    pg_database: str,
) -> None:
    from campaign_dialer.store.postgres import Coordinator, Database, LeaseLost, LiveLimitReached
    from campaign_dialer.store.postgres.journal import PgJournal

    with Database(pg_database) as db:
        j = PgJournal(db, "c")
        co = Coordinator(db, "c", lease_seconds=30)
        co.ensure_campaign(max_live_calls=1)
        j.attach(co)
        run = j.begin_run()  # the run IS this process's registry entry
        assert co.process_id == run
        co.load_rows([(1, "tel:+12125550100"), (2, "tel:+12125550101")])
        with pytest.raises(LeaseLost):
            _intent(j, "tel:+12125550100", row=1)
        co.claim(2)
        a = _intent(j, "tel:+12125550100", row=1)
        with pytest.raises(LiveLimitReached):
            _intent(j, "tel:+12125550101", row=2)
        j.record_final(a.id, status="completed", outcome=None, ended_reason=None,
                       ended_at=None, duration_seconds=1.0, recording_url=None)
        _intent(j, "tel:+12125550101", row=2)  # the final freed the slot
        [p] = co.processes()
        assert (p.id, p.live_calls) == (run, 1)
        j.end_run(run, 0, {"placed": 2})
        assert [(r["id"], r["exit_code"], r["summary"]) for r in j.runs()] == [
            (run, 0, '{"placed": 2}')]
        assert co.processes() == []
