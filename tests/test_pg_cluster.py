"""The PostgreSQL test fixtures themselves: a real server, a database per test."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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


@pytest.mark.parametrize("ci, rc, says", [("", 0, "1 skipped"), ("true", 1, "CI=true")])
def test_without_postgresql_tests_skip_locally_and_fail_under_ci(
    tmp_path: Path, ci: str, rc: int, says: str
) -> None:
    env = {k: v for k, v in os.environ.items()
           if k not in ("CAMPAIGN_DIALER_TEST_PG_URL", "CI", "PYTEST_XDIST_WORKER")}
    env.update(PG_BIN_DIR=str(tmp_path), CI=ci)  # a folder without pg_ctl: no server
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "0",
         "tests/test_pg_cluster.py::test_the_fixture_database_is_on_loopback"],
        cwd=Path(__file__).resolve().parents[1], env=env, capture_output=True, text=True,
        timeout=120,
    )
    assert done.returncode == rc, done.stdout + done.stderr
    assert says in done.stdout
