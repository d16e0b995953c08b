"""`[store] url` / CAMPAIGN_DIALER_STORE_URL: where a team's database is, never its password."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from campaign_dialer.config import load_campaign, store_warnings
from campaign_dialer.config_store import STORE_URL_ENV
from campaign_dialer.errors import ConfigError
from campaign_dialer.exitcodes import ExitCode

from .e2e_support import numbers, write_campaign


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real CLI in a child process (its logging set up there, not in this one)."""
    return subprocess.run(
        [sys.executable, "-m", "campaign_dialer.cli", *args], capture_output=True, text=True,
        env={**os.environ, **(env or {})}, timeout=120,
    )


def _campaign(tmp_path: Path, store: str = "", history: str = "") -> Path:
    extra = ""
    if store:
        extra += f"\n[store]\n{store}\n"
    if history:
        extra += f"\n[history]\n{history}\n"
    files = write_campaign(tmp_path / "c", contacts=[{"phone": p} for p in numbers(2)],
                           extra=extra)
    return Path(files.path)


def test_no_store_means_sqlite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(STORE_URL_ENV, raising=False)
    c = load_campaign(_campaign(tmp_path))
    assert c.store_url is None
    assert store_warnings(c) == []


def test_the_file_url_and_the_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(STORE_URL_ENV, raising=False)
    path = _campaign(tmp_path, 'url = "postgresql://dialer@db.internal:5432/team"')
    assert load_campaign(path).store_url == "postgresql://dialer@db.internal:5432/team"
    monkeypatch.setenv(STORE_URL_ENV, "postgres://ops@127.0.0.1/other")
    assert load_campaign(path).store_url == "postgres://ops@127.0.0.1/other"


@pytest.mark.parametrize("url", [
    "postgresql://dialer:s3cret-pw@db.internal/team",
    "postgresql://dialer@db.internal/team?password=s3cret-pw",
    "postgresql://dialer@db.internal/team?sslmode=require&PASSWORD=s3cret-pw",
])
def test_a_password_in_the_campaign_file_is_refused_with_78_and_never_echoed(
    tmp_path: Path, url: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(STORE_URL_ENV, raising=False)
    path = _campaign(tmp_path, f'url = "{url}"')
    with pytest.raises(ConfigError) as e:
        load_campaign(path)
    assert e.value.exit_code == ExitCode.CONFIG == 78
    assert "store.url" in str(e.value) and "password" in str(e.value)
    assert "s3cret-pw" not in str(e.value)
    done = cli("check", str(path))
    assert done.returncode == 78
    assert "s3cret-pw" not in done.stdout + done.stderr
    assert "PGPASSWORD" in done.stderr


@pytest.mark.parametrize("url", ["mysql://u@h/db", "db.internal", "postgresql://u@h:99999x/db"])
def test_a_url_that_is_not_postgresql_is_refused(
    tmp_path: Path, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(STORE_URL_ENV, raising=False)
    with pytest.raises(ConfigError, match="store.url") as e:
        load_campaign(_campaign(tmp_path, f'url = "{url}"'))
    assert e.value.exit_code == 78


def test_a_password_in_the_environment_url_is_allowed_and_scrubbed_from_logs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from campaign_dialer.log import scrub

    monkeypatch.setenv(STORE_URL_ENV, "postgresql://ops:env-pw-1234@127.0.0.1/team")
    c = load_campaign(_campaign(tmp_path))
    assert c.store_url == "postgresql://ops:env-pw-1234@127.0.0.1/team"
    assert "env-pw-1234" not in scrub(f"connecting to {c.store_url}")


def test_a_bad_environment_url_names_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(STORE_URL_ENV, "sqlite:///x")
    c = load_campaign(_campaign(tmp_path))
    with pytest.raises(ConfigError, match=STORE_URL_ENV) as e:
        c.store_url  # noqa: B018
    assert e.value.exit_code == 78


def test_history_settings_that_a_store_makes_moot_are_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(STORE_URL_ENV, raising=False)
    monkeypatch.delenv("CAMPAIGN_DIALER_HOME", raising=False)
    path = _campaign(tmp_path, 'url = "postgresql://dialer@db/team"', 'path = "h.sqlite"')
    [warning] = store_warnings(load_campaign(path))
    assert warning.startswith("[history] path does not apply")
    monkeypatch.setenv("CAMPAIGN_DIALER_HOME", str(tmp_path / "home"))
    [warning] = store_warnings(load_campaign(path))
    assert warning.startswith("[history] path and CAMPAIGN_DIALER_HOME do not apply")
    alone = _campaign(tmp_path / "2", 'url = "postgresql://dialer@db/team"')
    [warning] = store_warnings(load_campaign(alone))
    assert warning.startswith("CAMPAIGN_DIALER_HOME does not apply")
