"""The PostgreSQL store's schema: migrated forward on open, once, and never backwards."""

from __future__ import annotations

import threading

import pytest

pytest_plugins = ["tests.pg_cluster"]
psycopg = pytest.importorskip("psycopg")


def test_open_migrates_an_empty_database_to_the_latest_version(pg_database: str) -> None:
    from campaign_dialer.store.postgres import Database
    from campaign_dialer.store.postgres.schema import LATEST

    with Database(pg_database) as db:
        versions = [r[0] for r in db.fetchall("SELECT version FROM schema_version")]
        assert versions == list(range(1, LATEST + 1))
        tables = {r[0] for r in db.fetchall(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert {"campaigns", "processes", "rows", "attempts", "rate_limits", "webhook_events",
            "transcripts", "fates", "contact_calls", "dnc_ledger"} <= tables
    with Database(pg_database) as db:  # a second open finds it current: nothing re-applied
        assert db.fetchone("SELECT count(*) FROM schema_version")[0] == LATEST


def test_processes_opening_at_once_migrate_once(pg_database: str) -> None:
    from campaign_dialer.store.postgres import Database
    from campaign_dialer.store.postgres.schema import LATEST

    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def open_one() -> None:
        try:
            start.wait()
            Database(pg_database, min_size=1, max_size=1).close()
        except BaseException as e:  # noqa: BLE001 - collected and asserted below
            errors.append(e)

    threads = [threading.Thread(target=open_one) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with psycopg.connect(pg_database) as conn:
        assert conn.execute("SELECT count(*) FROM schema_version").fetchone()[0] == LATEST


def test_a_newer_schema_is_refused_with_exit_78(pg_database: str) -> None:
    from campaign_dialer.exitcodes import ExitCode
    from campaign_dialer.store.postgres import Database, SchemaTooNew
    from campaign_dialer.store.postgres.schema import LATEST

    Database(pg_database).close()
    with psycopg.connect(pg_database, autocommit=True) as conn:
        conn.execute("INSERT INTO schema_version(version) VALUES (%s)", (LATEST + 1,))
    with pytest.raises(SchemaTooNew) as e:
        Database(pg_database)
    assert e.value.exit_code == ExitCode.CONFIG == 78
    assert f"schema version {LATEST + 1}" in str(e.value)
    assert "upgrade campaign-dialer" in str(e.value)
    with psycopg.connect(pg_database) as conn:  # left alone
        assert conn.execute("SELECT max(version) FROM schema_version").fetchone()[0] == LATEST + 1


def test_an_unreachable_database_is_unavailable_and_its_password_never_shown(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from campaign_dialer.exitcodes import ExitCode
    from campaign_dialer.store.postgres import Database, StoreUnavailable

    monkeypatch.setenv("PGPASSWORD", "hunter2-sekrit")
    # A port nothing listens on.
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"postgresql://someone:pa55word-in-url@127.0.0.1:{port}/nowhere?connect_timeout=2"
    with pytest.raises(StoreUnavailable) as e:
        Database(url, timeout=3)
    assert e.value.exit_code == ExitCode.UNAVAILABLE
    text = str(e.value) + repr(e.value)
    assert "pa55word-in-url" not in text and "hunter2-sekrit" not in text
    assert f"127.0.0.1:{port}/nowhere" in text


def test_redact_hides_passwords_in_urls_conninfo_and_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from campaign_dialer.store.postgres import redact

    monkeypatch.setenv("PGPASSWORD", "env-secret-42")
    text = redact(
        "failed: postgresql://bob:url-secret@db:5432/x; host=db password='kv secret' "
        "password=plain-secret; PGPASSWORD was env-secret-42"
    )
    for secret in ("url-secret", "kv secret", "plain-secret", "env-secret-42"):
        assert secret not in text
    assert "postgresql://bob:[REDACTED]@db:5432/x" in text
