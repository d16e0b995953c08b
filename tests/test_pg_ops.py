"""The operator's commands on a PostgreSQL store, against a real server: `status` lists the
registry of `run` processes, `pause`/`resume`/`cancel` reach every registered process at its
next heartbeat, `release` waits for no process to be alive, `results`/`report` read the
shared journal.

Processes are registered with the Coordinator directly (what each `run` process does), so
these tests judge the commands, not the engine.
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest_plugins = ["tests.pg_cluster"]
pytest.importorskip("psycopg")

from campaign_dialer import commands  # noqa: E402
from campaign_dialer.config_store import STORE_URL_ENV  # noqa: E402
from campaign_dialer.errors import CampaignLocked, NotApplicable, NotRunYet  # noqa: E402
from campaign_dialer.exitcodes import ExitCode  # noqa: E402
from campaign_dialer.store import UNRESOLVED, Fate  # noqa: E402
from campaign_dialer.store.postgres import Coordinator, Database, PgJournal  # noqa: E402

from .e2e_support import numbers, write_campaign  # noqa: E402

NAME = "ops"
# The keys `status --json` gave before the PostgreSQL store: a scheduler reads them.
STATUS_KEYS = {
    "campaign", "state", "control", "running", "rows", "by_disposition", "by_reason",
    "live_calls", "next_window_at", "last_exit_code", "runs", "clock_source", "pause_wait_s",
    "unresolved",
}
PROCESS_KEYS = {"id", "host", "pid", "started_at", "last_heartbeat", "alive", "live_calls",
                "rows_held"}


@pytest.fixture(autouse=True)
def no_store_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The campaign file's [store] url decides, not the environment of whoever runs this."""
    monkeypatch.delenv(STORE_URL_ENV, raising=False)


@pytest.fixture
def db(pg_database: str) -> Iterator[Database]:
    with Database(pg_database) as d:
        yield d


def _campaign(folder: Path, url: str, n: int = 4) -> Path:
    contacts = [{"phone": p, "contact_id": f"c{i}"} for i, p in enumerate(numbers(n))]
    return write_campaign(folder, contacts=contacts, name=NAME,
                          extra=f'[store]\nurl = "{url}"\n').path


def _journal(db: Database) -> PgJournal:
    return PgJournal(db, NAME)


def _process(db: Database, host: str, pid: int, *, lease: float = 300.0) -> Coordinator:
    co = Coordinator(db, NAME, lease_seconds=lease)
    co.ensure_campaign(max_live_calls=10)
    co.register(host=host, pid=pid)
    return co


def _status_json(path: Path, capsys: pytest.CaptureFixture[str]) -> dict:
    capsys.readouterr()
    assert commands.status(path, as_json=True) == ExitCode.OK
    return json.loads(capsys.readouterr().out)


def test_status_lists_the_processes_with_live_calls_rows_and_heartbeat(
    tmp_path: Path, pg_database: str, db: Database, capsys: pytest.CaptureFixture[str],
) -> None:
    path = _campaign(tmp_path / "c", pg_database)
    _journal(db)
    a = _process(db, "host-a", 4101)
    a.load_rows([(1, "p1"), (2, "p2"), (3, "p3")])
    assert [r.row for r in a.claim(2)] == [1, 2]
    a.record_intent(person="p1", row=1, attempt=1, idem_key="k1", body={}, evidence={},
                    run_id=a.process_id, ts="2026-06-09T17:00:00.000Z")
    # host-b stopped heartbeating (killed): once its lease is over it is listed, not alive.
    b = _process(db, "host-b", 4102, lease=0.05)
    time.sleep(0.3)

    data = _status_json(path, capsys)
    assert STATUS_KEYS <= set(data)
    assert data["running"] is True and data["state"] == "running"
    procs = {p["host"]: p for p in data["processes"]}
    assert set(procs) == {"host-a", "host-b"}
    assert all(set(p) == PROCESS_KEYS for p in procs.values())
    assert procs["host-a"] == {**procs["host-a"], "id": a.process_id, "pid": 4101,
                               "alive": True, "live_calls": 1, "rows_held": 2}
    assert procs["host-b"] == {**procs["host-b"], "id": b.process_id, "pid": 4102,
                               "alive": False, "live_calls": 0, "rows_held": 0}
    assert procs["host-a"]["last_heartbeat"] and procs["host-a"]["started_at"]

    assert commands.status(path) == ExitCode.OK
    text = capsys.readouterr().out
    assert "processes: 1 alive of 2" in text
    for word in ("host-a", "4101", "host-b", "4102"):
        assert word in text

    # A process that ends leaves the list; with none alive the campaign is not running.
    a.end(0, {})
    data = _status_json(path, capsys)
    assert [p["host"] for p in data["processes"]] == ["host-b"]
    assert data["running"] is False


def test_status_of_a_campaign_the_database_does_not_know_is_never_run(
    tmp_path: Path, pg_database: str, capsys: pytest.CaptureFixture[str],
) -> None:
    path = _campaign(tmp_path / "c", pg_database)
    data = _status_json(path, capsys)
    assert data == {"campaign": NAME, "state": "never_run", "control": "active",
                    "running": False, "runs": 0}
    with pytest.raises(NotRunYet):
        commands.results(path)
    with pytest.raises(NotRunYet):
        commands.report([path], as_json=True)


def test_status_on_sqlite_lists_no_processes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    contacts = [{"phone": p} for p in numbers(2)]
    path = write_campaign(tmp_path / "c", contacts=contacts, name=NAME).path
    assert commands.control(path, "pause") == ExitCode.OK  # creates the SQLite journal
    data = _status_json(path, capsys)
    assert set(data) == STATUS_KEYS
    assert data["control"] == "paused"


def test_pause_resume_cancel_reach_every_registered_process_at_its_next_heartbeat(
    tmp_path: Path, pg_database: str, db: Database, capsys: pytest.CaptureFixture[str],
) -> None:
    path = _campaign(tmp_path / "c", pg_database)
    procs = [_process(db, f"host-{i}", 4200 + i) for i in range(3)]
    assert {p.heartbeat().control for p in procs} == {"active"}

    assert commands.control(path, "pause") == ExitCode.OK
    assert [p.heartbeat().control for p in procs] == ["paused"] * 3
    assert _status_json(path, capsys)["control"] == "paused"

    assert commands.control(path, "resume") == ExitCode.OK
    assert [p.heartbeat().control for p in procs] == ["active"] * 3

    assert commands.control(path, "cancel") == ExitCode.OK
    assert [p.heartbeat().control for p in procs] == ["canceled"] * 3
    # Canceled stays canceled: resume and pause do not apply (64), cancel again is fine.
    for action in ("resume", "pause"):
        with pytest.raises(NotApplicable) as e:
            commands.control(path, action)
        assert e.value.exit_code == ExitCode.USAGE
    assert commands.control(path, "cancel") == ExitCode.OK
    assert [p.heartbeat().control for p in procs] == ["canceled"] * 3


def test_pause_before_the_first_run_is_kept_for_the_processes_that_start_later(
    tmp_path: Path, pg_database: str, db: Database,
) -> None:
    path = _campaign(tmp_path / "c", pg_database)
    assert commands.control(path, "pause") == ExitCode.OK
    late = _process(db, "host-late", 4300)
    assert late.heartbeat().control == "paused"


def _unresolved(j: PgJournal, row: int) -> int:
    a = j.record_intent(person=f"p{row}", row=row, attempt=1, idem_key=f"k{row}", body={},
                        evidence={}, run_id=None)
    j.record_unresolved(a.id, error="no answer to the lookup")
    return a.id


def test_release_waits_until_no_process_is_alive_then_settles_the_shared_journal(
    tmp_path: Path, pg_database: str, db: Database,
) -> None:
    path = _campaign(tmp_path / "c", pg_database)
    j = _journal(db)
    first, second = _unresolved(j, 1), _unresolved(j, 2)
    running = _process(db, "host-a", 4401)

    with pytest.raises(CampaignLocked) as e:
        commands.release(path, as_called=False)
    assert e.value.exit_code == ExitCode.TEMPFAIL and "host-a" in str(e.value)
    assert {a.id for a in j.attempts(states=[UNRESOLVED])} == {first, second}

    running.end(75, {})
    assert commands.release(path, as_called=True, rows=[2]) == ExitCode.OK
    assert j.attempt(second).state == "final" and j.attempt(first).state == UNRESOLVED
    assert commands.release(path, as_called=False) == ExitCode.OK
    assert j.attempt(first).state == "not_placed"
    assert j.attempts(states=[UNRESOLVED]) == []


def test_results_and_report_read_the_shared_journal(
    tmp_path: Path, pg_database: str, db: Database, capsys: pytest.CaptureFixture[str],
) -> None:
    path = _campaign(tmp_path / "c", pg_database, n=3)
    j = _journal(db)
    j.set_fates([
        Fate(1, "p1", "suppressed", "dnc_listed"),
        Fate(2, "p2", "pending", "outside_window", next_open="2026-06-10T13:00:00Z"),
        Fate(3, "p3", "suppressed", "no_consent"),
    ])
    assert commands.results(path) == ExitCode.OK
    with open(tmp_path / "c" / "out" / "results.csv", encoding="utf-8", newline="") as fh:
        got = [(r["row"], r["disposition"], r["reason"]) for r in csv.DictReader(fh)]
    assert got == [("1", "suppressed", "dnc_listed"), ("2", "pending", "outside_window"),
                   ("3", "suppressed", "no_consent")]

    capsys.readouterr()
    assert commands.report([path], as_json=True) == ExitCode.OK
    summary = json.loads(capsys.readouterr().out)
    assert NAME in json.dumps(summary)
    assert "dnc_listed" in json.dumps(summary)


def test_the_real_cli_shows_the_registry_and_its_pause_reaches_a_running_process(
    tmp_path: Path, pg_database: str, db: Database,
) -> None:
    from .e2e_support import run_cli

    path = _campaign(tmp_path / "c", pg_database)
    _journal(db)
    worker = _process(db, "host-cli", 4501)
    done = run_cli("status", str(path), "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert STATUS_KEYS <= set(data) and data["running"] is True
    assert [(p["host"], p["pid"], p["alive"]) for p in data["processes"]] == [
        ("host-cli", 4501, True)]

    assert run_cli("pause", str(path)).returncode == 0
    assert worker.heartbeat().control == "paused"
    assert run_cli("cancel", str(path)).returncode == 0
    assert worker.heartbeat().control == "canceled"
    assert run_cli("resume", str(path)).returncode == ExitCode.USAGE
    assert worker.heartbeat().control == "canceled"
    assert run_cli("release", str(path), "--as", "called").returncode == ExitCode.TEMPFAIL


@pytest.mark.e2e
def test_status_lists_two_running_processes_and_one_pause_stops_both(
    tmp_path: Path, pg_database: str,
) -> None:
    """Two real `run` processes on one campaign, judged by the sandbox's audit: `status`
    lists both (their pids), a `pause` from a third shell reaches both at their heartbeat,
    and both stop (75 once --pause-wait is over) with rows left undialed, nobody twice."""
    from campaign_dialer.sandbox import SandboxConfig, SandboxServer

    from .e2e_support import KEY, assert_nobody_called_twice, popen_cli, run_cli

    phones = numbers(60)
    path = write_campaign(
        tmp_path / "c", contacts=[{"phone": p} for p in phones], name=NAME,
        pacing="calls_per_second = 2", api="max_live_calls = 4\nrequests_per_second = 50",
        extra=f'[store]\nurl = "{pg_database}"\nlease_seconds = 3\n',
    ).path
    config = SandboxConfig(api_keys=(KEY,), seed=3, time_scale=0.004,
                           requests_per_second=200.0, max_live_calls=50)
    with SandboxServer(config) as sb:
        procs = [popen_cli("run", str(path), "--base-url", sb.url, "--pause-wait", "2s")
                 for _ in range(2)]
        try:
            deadline = time.monotonic() + 90
            while True:  # until both have registered and placed a call
                assert time.monotonic() < deadline, "the runs never both registered"
                assert all(p.poll() is None for p in procs), "a run ended before the pause"
                done = run_cli("status", str(path), "--json")
                data = json.loads(done.stdout) if done.returncode == 0 else {}
                alive = {p["pid"] for p in data.get("processes", []) if p["alive"]}
                if alive == {p.pid for p in procs} and len(sb.audit()["calls"]) >= 2:
                    break
                time.sleep(0.2)
            assert data["running"] is True and data["state"] == "running"

            assert run_cli("pause", str(path)).returncode == 0
            codes = [p.wait(timeout=60) for p in procs]
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                p.communicate()
        audit = sb.audit()
    assert codes == [ExitCode.TEMPFAIL, ExitCode.TEMPFAIL]
    assert_nobody_called_twice(audit)
    assert 2 <= len(audit["calls"]) < len(phones)  # the pause stopped both mid-campaign
    after = json.loads(run_cli("status", str(path), "--json").stdout)
    assert after["control"] == "paused" and after["running"] is False
    assert after["processes"] == []  # both ended and left the registry
    # The runs built their report from the shared journal (not from a SQLite file it lacks);
    # `results` afterwards has every call either process placed.
    summary = json.loads((tmp_path / "c" / "out" / "summary.json").read_text())
    assert run_cli("results", str(path)).returncode == 0
    with open(tmp_path / "c" / "out" / "results.csv", encoding="utf-8", newline="") as fh:
        call_ids = {r["call_id"] for r in csv.DictReader(fh) if r["call_id"]}
    assert call_ids == {c["id"] for c in audit["calls"]}
    assert NAME in json.dumps(summary)
