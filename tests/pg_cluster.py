"""A real PostgreSQL server for the tests: the environment's, else a throwaway cluster.

- `CAMPAIGN_DIALER_TEST_PG_URL` set (CI sets it, see `.ci/run`): that server is used; its
  role must be allowed to CREATE DATABASE.
- else, when Debian's binaries are installed (`/usr/lib/postgresql/<major>/bin`), each
  pytest(-xdist) worker starts its own cluster in a temp folder, listening on 127.0.0.1 and
  a unix socket inside that folder, trust auth (nothing but this machine's loopback reaches
  it), fsync off, and stops it at the end of the session. initdb and pg_ctl refuse root, so
  as root they run through `runuser -u postgres`.
- else the tests that need it skip; under `CI=true` they FAIL instead: a CI run that
  silently skipped the PostgreSQL backend would prove nothing about it.

Fixtures (import them into a test module: `from tests.pg_cluster import pg_url, pg_database`):
`pg_url` (session) is the server's URL; `pg_database` (per test) is the URL of a fresh
database created on that server and dropped after the test.

Also a script, so CI starts the cluster with the same code:
`python tests/pg_cluster.py start DIR` prints the URL; `python tests/pg_cluster.py stop DIR`.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ENV_URL = "CAMPAIGN_DIALER_TEST_PG_URL"


def bin_dir() -> Path | None:
    """The newest installed server's binaries, or None."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
        key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0,
    )
    override = os.environ.get("PG_BIN_DIR")
    if override:  # the binaries to use, or (no pg_ctl there) none at all
        return Path(override) if Path(override, "pg_ctl").exists() else None
    if found:
        return Path(found[-1]).parent
    pg_ctl = shutil.which("pg_ctl")
    return Path(pg_ctl).parent if pg_ctl else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_server_user(cmd: list[str]) -> list[str]:
    """initdb and pg_ctl refuse to run as root: as root, run them as `postgres`."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


@dataclass
class Cluster:
    base: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        stop(self.base)


def start(base: Path | None = None) -> Cluster:
    """initdb + pg_ctl start into `base` (a new temp folder if None); returns when it accepts
    connections. Raises RuntimeError with the server's log when it cannot start."""
    bins = bin_dir()
    if bins is None:
        raise RuntimeError("no PostgreSQL server binaries (initdb, pg_ctl) installed")
    base = Path(base) if base else Path(tempfile.mkdtemp(prefix="dialer-pg-"))
    base.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
    os.chmod(base, 0o700)
    data = base / "data"
    log = base / "server.log"
    subprocess.run(
        _as_server_user([str(bins / "initdb"), "-D", str(data), "-U", "postgres",
                         "-A", "trust", "-E", "UTF8", "--no-sync", "--no-instructions"]),
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=base,
    )
    last: subprocess.CalledProcessError | None = None
    for _ in range(5):  # a port picked free can be taken before the server binds it
        port = _free_port()
        opts = (f"-c listen_addresses=127.0.0.1 -p {port} -k {base} -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200 "
                "-c shared_buffers=32MB")
        try:
            subprocess.run(
                _as_server_user([str(bins / "pg_ctl"), "-D", str(data), "-l", str(log),
                                 "-o", opts, "-w", "-t", "60", "start"]),
                check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=base,
            )
        except subprocess.CalledProcessError as e:
            last = e
            continue
        (base / "port").write_text(str(port))
        (base / "opts").write_text(opts)
        return Cluster(base, port)
    tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
    raise RuntimeError(f"PostgreSQL did not start: {last}\n{tail}")


def halt(base: Path, mode: str = "fast") -> None:
    """Stop the server and keep its data (`resume` starts it again on the same port): a
    database that goes away, as in an upgrade or a failover. `fast` ends every session."""
    bins = bin_dir()
    assert bins is not None
    subprocess.run(
        _as_server_user([str(bins / "pg_ctl"), "-D", str(Path(base) / "data"), "-m", mode,
                         "-w", "stop"]),
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=base,
    )


def resume(base: Path) -> None:
    """Start a server `halt` stopped, with the options and port it had."""
    bins = bin_dir()
    assert bins is not None
    base = Path(base)
    subprocess.run(
        _as_server_user([str(bins / "pg_ctl"), "-D", str(base / "data"), "-l",
                         str(base / "server.log"), "-o", (base / "opts").read_text(), "-w",
                         "-t", "60", "start"]),
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=base,
    )


def stop(base: Path) -> None:
    bins = bin_dir()
    data = Path(base) / "data"
    if bins is not None and (data / "postmaster.pid").exists():
        subprocess.run(
            _as_server_user([str(bins / "pg_ctl"), "-D", str(data), "-m", "immediate",
                             "-w", "stop"]),
            check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=base,
        )
    shutil.rmtree(base, ignore_errors=True)


def _with_dbname(url: str, dbname: str) -> str:
    """The same server URL naming another database (URLs only: `postgresql://...`)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + dbname))


def create_database(server_url: str) -> str:
    """A fresh, uniquely named database on the server; returns its URL."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
    return _with_dbname(server_url, name)


def drop_database(server_url: str, url: str) -> None:
    from urllib.parse import urlsplit

    import psycopg

    name = urlsplit(url).path.lstrip("/")
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[arg-type]


# -- pytest fixtures ----------------------------------------------------------------------
try:
    import pytest
except ImportError:  # run as a script from a bare environment
    pytest = None  # type: ignore[assignment]

if pytest is not None:

    def _unavailable(why: str) -> None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and PostgreSQL is not available: {why}", pytrace=False)
        pytest.skip(f"PostgreSQL not available: {why}")

    @pytest.fixture(scope="session")
    def pg_url() -> Iterator[str]:
        """The server every PostgreSQL test of this worker uses (see the module doc)."""
        url = os.environ.get(ENV_URL, "").strip()
        if url:
            yield url
            return
        try:
            import psycopg  # noqa: F401
        except ImportError:
            _unavailable("psycopg is not installed")
        if bin_dir() is None:
            _unavailable(f"set {ENV_URL} or install Debian's postgresql")
        try:
            cluster = start()
        except (RuntimeError, OSError, subprocess.CalledProcessError) as e:
            _unavailable(f"a throwaway cluster did not start: {e}")
            raise
        try:
            yield cluster.url
        finally:
            cluster.stop()

    @pytest.fixture
    def pg_database(pg_url: str) -> Iterator[str]:
        """A database of this test's own, dropped after it."""
        url = create_database(pg_url)
        try:
            yield url
        finally:
            drop_database(pg_url, url)


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[1] == "start":
        print(start(Path(argv[2])).url)
        return 0
    if len(argv) == 3 and argv[1] == "stop":
        stop(Path(argv[2]))
        return 0
    print("usage: pg_cluster.py start|stop DIR", file=sys.stderr)
    return 64


if __name__ == "__main__":
    sys.exit(main(sys.argv))
