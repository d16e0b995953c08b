"""PostgreSQL end to end: several `run` processes share a campaign, several campaigns share
the contact history, judged by the sandbox's audit; and the seam that picks the backend."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from campaign_dialer.config import load_campaign
from campaign_dialer.config_store import STORE_URL_ENV
from campaign_dialer.errors import ConfigError
from campaign_dialer.sandbox import SandboxConfig, SandboxServer
from campaign_dialer.sandbox.lifecycle import DNC_OUTCOMES, plan_call
from campaign_dialer.store import POSTGRESQL, SQLITE, open_stores
from campaign_dialer.store.postgres import Database

from .e2e_support import (
    KEY,
    CampaignFiles,
    assert_nobody_called_twice,
    max_in_window,
    numbers,
    popen_cli,
    run_cli,
    wait_for_calls,
    write_campaign,
)
from .pg_cluster import pg_database, pg_url  # noqa: F401 - fixtures

NOW = datetime(2026, 6, 9, 17, 0, tzinfo=UTC)


def _files(tmp_path: Path, store: str = "", name: str = "e2e") -> Path:
    extra = f"\n[store]\n{store}\n" if store else ""
    return write_campaign(tmp_path, contacts=[{"phone": p} for p in numbers(3)], name=name,
                          extra=extra).path


def test_without_a_store_url_the_stores_are_the_sqlite_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(STORE_URL_ENV, raising=False)
    campaign = load_campaign(_files(tmp_path))
    with open_stores(campaign, now=lambda: NOW) as stores:
        assert stores.kind == SQLITE and stores.coordinator is None and not stores.shared
        assert stores.journal.path == campaign.journal_path
        assert stores.journal.path.exists()
        stores.dnc.add("+12125550100", reason="opt_out", campaign="e2e", evidence="t", at=NOW)
        assert stores.history.is_dnc("+12125550100")


def test_a_store_url_puts_journal_history_and_ledger_in_the_database(
    tmp_path: Path, pg_database: str, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
) -> None:
    monkeypatch.delenv(STORE_URL_ENV, raising=False)
    campaign = load_campaign(_files(tmp_path, f'url = "{pg_database}"\nlease_seconds = 5'))
    with open_stores(campaign, now=lambda: NOW) as stores:
        assert stores.kind == POSTGRESQL and stores.shared
        assert stores.coordinator is not None and stores.coordinator.lease_seconds == 5.0
        assert not campaign.journal_path.exists()
        stores.dnc.add("+12125550100", reason="opt_out", campaign="e2e", evidence="t", at=NOW)
    other = load_campaign(_files(tmp_path / "b", f'url = "{pg_database}"', name="other"))
    with open_stores(other, now=lambda: NOW) as stores:  # another campaign, same database
        assert stores.history.is_dnc("+12125550100")
        assert "+12125550100" in stores.dnc


# -- several processes, one campaign ------------------------------------------------------
CPS = 4
LIVE = 3


def sandbox(**kw: object) -> SandboxServer:
    """The platform's own live-call limit is well above the campaign's: the cap under test
    is the dialer's, shared by its processes, not the sandbox refusing calls."""
    settings: dict[str, object] = {
        "api_keys": (KEY,), "seed": 5, "time_scale": 0.004, "requests_per_second": 200.0,
        "max_live_calls": 50,
    }
    settings.update(kw)
    return SandboxServer(SandboxConfig(**settings))  # type: ignore[arg-type]


def _shared_campaign(
    folder: Path, url: str, phones: list[str], *, name: str = "team", lease: float = 30.0,
    dnc: list[str] = (), extra: str = "", live: int = LIVE,  # type: ignore[assignment]
) -> CampaignFiles:
    return write_campaign(
        folder, contacts=[{"phone": p} for p in phones], name=name, dnc=dnc,
        api=f"max_live_calls = {live}\nrequests_per_second = 100",
        pacing=f"calls_per_second = {CPS}",
        extra=f'[store]\nurl = "{url}"\nlease_seconds = {lease}\n{extra}',
    )


def max_live(calls: list[dict[str, Any]]) -> int:
    """The most calls live at one instant on the platform (placed until ended)."""
    edges = sorted([(c["placed_mono"], 1) for c in calls] + [(c["ended_mono"], -1)
                                                               for c in calls])
    live = peak = 0
    for _, d in edges:
        live += d
        peak = max(peak, live)
    return peak


def _finish(procs: list[subprocess.Popen[str]], timeout: float = 120.0) -> list[str]:
    errs = []
    for p in procs:
        _, err = p.communicate(timeout=timeout)
        errs.append(err)
    return errs


@pytest.mark.e2e
def test_three_processes_share_one_campaign_within_its_limits_and_nobody_twice(
    tmp_path: Path, pg_database: str,  # noqa: F811
) -> None:
    phones = numbers(40)
    camp = _shared_campaign(tmp_path, pg_database, phones)
    with sandbox() as sb:
        procs = [popen_cli("run", str(camp.path), "--base-url", sb.url) for _ in range(3)]
        errs = _finish(procs)
        audit = sb.audit()
    for p, err in zip(procs, errs, strict=True):
        assert p.returncode == 0, err[-3000:]
    per_number = assert_nobody_called_twice(audit)
    assert set(per_number) == set(phones)  # every row rung once, by one of the three
    placed = sorted(c["placed_mono"] for c in audit["calls"])
    assert max_in_window(placed) <= CPS + 1
    assert max_live(audit["calls"]) <= LIVE
    owners = _db(pg_database, "SELECT owner, count(*) FROM attempts GROUP BY owner")
    assert len(owners) == 3, owners  # the work was shared: each process placed calls
    rows = camp.results()
    assert len(rows) == len(phones)
    assert {r["disposition"] for r in rows} == {"dialed"}
    # the planner kept the contacts in the (shared) output folder: results read from them
    assert all('"contacts": "kept"' in err for err in errs), [e[-2000:] for e in errs]


@pytest.mark.e2e
def test_a_process_on_another_machine_writes_its_results_from_the_planners_contacts(
    tmp_path: Path, pg_database: str,  # noqa: F811
) -> None:
    """Two machines, one campaign: the inputs at the same paths (a shared mount), each its
    own output folder. The second reads the plan and the contacts the first kept from the
    team database, and writes its results from them; both results say the same."""
    import tomllib

    from tests.campaign_files import write_campaign_toml

    phones = numbers(12)
    first = _shared_campaign(tmp_path / "a", pg_database, phones)
    sections = tomllib.loads(first.path.read_text(encoding="utf-8"))
    inputs = sections["inputs"]
    inputs["contacts"] = str(first.folder / inputs["contacts"])
    inputs["dnc"] = [str(first.folder / d) for d in inputs["dnc"]]
    inputs["consent"] = str(first.folder / inputs["consent"])
    second = CampaignFiles(tmp_path / "b", write_campaign_toml(
        tmp_path / "b" / "campaign.toml", sections))
    first_inputs = tomllib.loads(first.path.read_text(encoding="utf-8"))
    first_inputs["inputs"] = inputs  # the same absolute paths: the same plan
    write_campaign_toml(first.path, first_inputs)
    with sandbox() as sb:
        a = popen_cli("run", str(first.path), "--base-url", sb.url)
        _, err_a = a.communicate(timeout=120)
        b = popen_cli("run", str(second.path), "--base-url", sb.url)
        _, err_b = b.communicate(timeout=120)
        audit = sb.audit()
    assert a.returncode == 0 and b.returncode == 0, (err_a[-2000:], err_b[-2000:])
    assert '"event": "plan_made"' in err_a and '"contacts": "kept"' in err_a
    assert '"event": "plan_reused"' in err_b and '"event": "contacts_fetched"' in err_b, \
        err_b[-3000:]
    assert '"contacts": "kept"' in err_b
    assert set(assert_nobody_called_twice(audit)) == set(phones)
    assert (first.out / "results.csv").read_bytes() == (second.out / "results.csv").read_bytes()


def _db(url: str, sql: str) -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(sql).fetchall()  # type: ignore[arg-type]


LEASE = 3.0


@pytest.mark.e2e
@pytest.mark.parametrize(("n", "live", "time_scale"), [
    (40, LIVE, 0.004),
    # one live call for the whole campaign, and the dead process holds it: the others wait
    # at the cap until they take its call over (its open intent counts until resolved)
    (8, 1, 0.02),
])
def test_a_killed_process_rows_are_finished_by_the_others_within_the_lease(
    tmp_path: Path, pg_database: str, n: int, live: int, time_scale: float,  # noqa: F811
) -> None:
    phones = numbers(n)
    camp = _shared_campaign(tmp_path, pg_database, phones, lease=LEASE, live=live)
    Database(pg_database).close()  # the schema, for this test's own queries below
    with sandbox(time_scale=time_scale) as sb:
        procs = [popen_cli("run", str(camp.path), "--base-url", sb.url) for _ in range(3)]
        victim = procs[0]
        deadline = time.monotonic() + 60
        while not _db(pg_database, _LIVE_OF % victim.pid):  # kill it mid-call
            assert time.monotonic() < deadline, "the victim never placed a call"
            time.sleep(0.02)
        victim.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        victim.wait(timeout=10)
        orphans = [r for (r,) in _db(pg_database, _HELD_BY % victim.pid)]
        while _db(pg_database, _UNDONE % ",".join(map(str, orphans or [0]))):
            # its rows: taken over once its lease expires (LEASE), then resolved/dialed
            assert time.monotonic() - killed_at < LEASE + 20, "the dead process's rows wait"
            time.sleep(0.1)
        finished_in = time.monotonic() - killed_at
        errs = _finish(procs[1:])
        audit = sb.audit()
    for p, err in zip(procs[1:], errs, strict=True):
        assert p.returncode == 0, err[-3000:]
    assert victim.returncode == -signal.SIGKILL
    per_number = assert_nobody_called_twice(audit)
    assert set(per_number) == set(phones)
    assert max_in_window(sorted(c["placed_mono"] for c in audit["calls"])) <= CPS + 1
    assert max_live(audit["calls"]) <= live
    assert _db(pg_database, "SELECT count(*) FROM rows WHERE NOT done") == [(0,)]
    taken = _db(pg_database, "SELECT count(*) FROM rows WHERE takeovers > 0")[0][0]
    assert taken >= len(orphans) > 0
    assert finished_in < LEASE + 20
    rows = camp.results()
    assert {r["disposition"] for r in rows} == {"dialed"}


_HELD_BY = ("SELECT r.row FROM rows r JOIN processes p ON p.id = r.lease_owner "
            "WHERE p.pid = %d AND NOT r.done")
_LIVE_OF = ("SELECT a.id FROM attempts a JOIN processes p ON p.id = a.owner "
            "WHERE p.pid = %d AND a.state IN ('intent', 'placed')")
_UNDONE = "SELECT row FROM rows WHERE NOT done AND row IN (%s)"


def _opting_out(n: int, start: int) -> list[str]:
    out = [p for p in numbers(300, start=start)
           if plan_call(SEED, p).outcome in DNC_OUTCOMES]
    assert len(out) >= n
    return out[:n]


SEED = 5


@pytest.mark.e2e
def test_two_campaigns_from_two_folders_respect_each_others_history_and_opt_outs(
    tmp_path: Path, pg_database: str,  # noqa: F811
) -> None:
    opting_out = _opting_out(3, start=100)
    people = numbers(12) + opting_out
    spring = _shared_campaign(tmp_path / "a", pg_database, people, name="spring")
    # 10 minutes later: within `min_hours_between_calls` (24 h) of spring's calls
    summer = _shared_campaign(tmp_path / "b", pg_database, people, name="summer")
    # a campaign that allows a second call the same day still never rings an opt-out
    autumn = _shared_campaign(tmp_path / "c", pg_database, people, name="autumn",
                              extra="[history]\nmin_hours_between_calls = 0\n")
    later = "2026-06-09T17:10:00Z"
    with sandbox(seed=SEED) as sb:
        ra = run_cli("run", str(spring.path), "--base-url", sb.url)
        first = Counter(c["to"] for c in sb.audit()["calls"])
        rb = run_cli("run", str(summer.path), "--base-url", sb.url, clock=later)
        after_summer = Counter(c["to"] for c in sb.audit()["calls"])
        # `check` plans against the same database `run` obeys: spring's opt-outs and calls
        checked = run_cli("check", str(summer.path), "--json", clock=later)
        spring_checked = run_cli("check", str(spring.path), "--json", clock=later)
        rc = run_cli("run", str(autumn.path), "--base-url", sb.url, clock=later)
        audit = sb.audit()
    assert ra.returncode == 0, ra.stderr[-2000:]
    assert first == {p: 1 for p in people}
    assert rb.returncode == 75, rb.stderr[-2000:]  # every row waits for the 24 hours
    assert after_summer == first  # summer rang nobody spring had just called
    for r in summer.results():  # spring's opt-outs reached summer's gate: its own ledger
        # file is empty, they came from the database
        want = ("suppressed", "dnc_local") if r["phone_e164"] in opting_out else (
            "pending", "recently_called")
        assert (r["disposition"], r["reason"]) == want, r
    assert not (tmp_path / "b" / "dnc-ledger.csv").exists()
    assert checked.returncode == 0, checked.stderr[-2000:]
    plan = json.loads(checked.stdout)
    assert {(r["disposition"], r["reason"]): r["rows"] for r in plan["by_reason"]} == {
        ("suppressed", "dnc_local"): len(opting_out),
        ("pending", "recently_called"): len(people) - len(opting_out),
    }
    assert spring_checked.returncode == 0, spring_checked.stderr[-2000:]
    # every row of spring is settled in its journal (the database's): nothing left to place
    assert json.loads(spring_checked.stdout)["forecast"]["rows_to_place"] == 0
    assert rc.returncode == 0, rc.stderr[-2000:]
    per_number = Counter(c["to"] for c in audit["calls"])
    assert per_number == {p: 1 if p in opting_out else 2 for p in people}
    fates = {r["phone_e164"]: r for r in autumn.results()}
    for p in opting_out:
        assert fates[p]["disposition"] == "suppressed", fates[p]
    # nothing of it went to the SQLite files: the history and ledger are the database's
    home = Path(os.environ["CAMPAIGN_DIALER_HOME"])
    assert not (home / "history.sqlite").exists()
    assert not list((tmp_path / "a" / "out").glob("*.journal.sqlite"))


def test_a_lease_too_short_to_renew_is_refused_naming_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(STORE_URL_ENV, raising=False)
    path = _files(tmp_path, 'url = "postgresql://dialer@db/team"\nlease_seconds = 0.2')
    with pytest.raises(ConfigError) as e:
        load_campaign(path)
    assert e.value.exit_code == 78 and "store.lease_seconds" in str(e.value)


@pytest.mark.e2e
def test_on_sqlite_a_second_run_of_the_campaign_still_gets_75(tmp_path: Path) -> None:
    """The registry of processes replaces the run lock on PostgreSQL only."""
    phones = numbers(12)
    camp = write_campaign(tmp_path, contacts=[{"phone": p} for p in phones],
                          pacing="calls_per_second = 2")
    with sandbox() as sb:
        first = popen_cli("run", str(camp.path), "--base-url", sb.url)
        wait_for_calls(sb, 1)
        second = run_cli("run", str(camp.path), "--base-url", sb.url)
        _finish([first])
        audit = sb.audit()
    assert second.returncode == 75, second.stderr[-2000:]
    assert first.returncode == 0
    assert set(assert_nobody_called_twice(audit)) == set(phones)


def test_a_shared_run_makes_no_database_call_on_the_event_loop(
    tmp_path: Path, pg_database: str, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
) -> None:
    """Every round trip of a shared run (claims, intents, heartbeats, rate slots, the live
    cap, the history's DNC ledger) goes through the lane or a worker thread."""
    import threading
    import types

    import anyio
    import httpx

    from campaign_dialer import log
    from campaign_dialer.client import VantaxClient
    from campaign_dialer.commands.assemble import engine_for_plan
    from campaign_dialer.compliance import Gate
    from campaign_dialer.engine import Engine, RunOptions
    from campaign_dialer.exitcodes import ExitCode
    from campaign_dialer.planning import make_plan
    from campaign_dialer.store.ledger_file import DncLedger, SharedDncLedger
    from campaign_dialer.store.postgres import (
        Coordinator,
        PgHistory,
        PgJournal,
        SharedRateLimiter,
    )

    from .test_engine import FakeClock, FakePlatform

    monkeypatch.delenv(STORE_URL_ENV, raising=False)
    log.configure("warning", json=True)
    loop_thread = threading.get_ident()
    running = [False]
    on_loop: list[str] = []

    def spy(cls: type, name: str) -> None:
        orig = getattr(cls, name)

        def wrapped(*a: Any, **kw: Any) -> Any:
            if running[0] and threading.get_ident() == loop_thread:
                on_loop.append(f"{cls.__name__}.{name}")
            return orig(*a, **kw)

        monkeypatch.setattr(cls, name, wrapped)

    for cls in (Database, PgJournal, PgHistory, Coordinator, Gate, DncLedger, SharedDncLedger):
        for name, value in list(vars(cls).items()):
            if (isinstance(value, types.FunctionType) and not name.startswith("__")
                    and not (cls is Coordinator and name == "keep_alive")):  # async itself
                spy(cls, name)
    spy(SharedRateLimiter, "take")
    run = Engine.run

    async def watched(self: Engine) -> Any:
        running[0] = True
        try:
            return await run(self)
        finally:
            running[0] = False

    monkeypatch.setattr(Engine, "run", watched)
    phones = numbers(6)
    camp = _shared_campaign(tmp_path, pg_database, phones, lease=3)
    campaign = load_campaign(camp.path)
    clock = FakeClock(NOW)
    p = FakePlatform(script=[None, "409dnc"])  # a placed call, and a DNC rejection (the ledger)

    def factory(**kw: Any) -> VantaxClient:
        return VantaxClient("http://127.0.0.1:9", KEY,
                            transport=httpx.MockTransport(p.handler), **kw)

    with open_stores(campaign, now=clock.now) as stores:
        plan = make_plan(campaign, clock.now(), stores.history)
        engine = engine_for_plan(
            plan, journal=stores.journal, client_factory=factory, clock=clock,
            options=RunOptions(install_signal_handlers=False), coordinator=stores.coordinator,
        )
        outcome = anyio.run(engine.run, backend="asyncio")
        states = {a.state for a in stores.journal.attempts()}
    assert outcome.exit_code == ExitCode.OK, outcome.message
    assert states >= {"final", "rejected"}
    assert sorted(p.placed_to()) == sorted(set(p.placed_to()))
    assert sorted(set(on_loop)) == []
