"""The PostgreSQL test fixtures themselves: a real server, a database per test."""

from __future__ import annotations

import pytest

pytest_plugins = ["tests.pg_cluster"]

psycopg = pytest.importorskip("psycopg")


def test_each_test_gets_a_fresh_database_that_is_dropped_after(pg_url: str) -> None:
    from tests.pg_cluster import create_database, drop_database

    url = create_database(pg_url)
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT current_database()").fetchone()[0] == name
        assert conn.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        ).fetchone()[0] == 0
    drop_database(pg_url, url)
    with psycopg.connect(pg_url) as conn:
        left = conn.execute("SELECT count(*) FROM pg_database WHERE datname = %s", (name,))
        assert left.fetchone()[0] == 0


def test_the_fixture_database_is_on_loopback(pg_database: str) -> None:
    with psycopg.connect(pg_database) as conn:
        addr = conn.execute("SELECT inet_server_addr()::text").fetchone()[0]
    assert addr is None or addr.startswith("127.") or addr == "::1/128"
