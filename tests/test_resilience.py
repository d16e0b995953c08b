"""Units of #13 items 2-6: platform-clock lookups, the breaker, unresolved intents, hardening."""

from __future__ import annotations

import io
import json
import os
import sqlite3
import stat
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from campaign_dialer import log
from campaign_dialer.client import VantaxClient
from campaign_dialer.exitcodes import ExitCode
from campaign_dialer.store import Journal, JournalWriteError

from .e2e_support import KEY, numbers, run_cli, write_campaign
from .test_engine import FakeClock, FakePlatform, _env, run_engine

MIDDAY = datetime(2026, 6, 9, 17, 0, tzinfo=UTC)


# -- the platform's clock ---------------------------------------------------------------------
@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_the_client_reads_the_platform_clock_from_the_date_header() -> None:
    platform_time = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)

    def handler(req: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"success": True, "data": [], "next_cursor": None},
                              headers={"Date": format_datetime(platform_time, usegmt=True)})

    async with VantaxClient("http://127.0.0.1:9", KEY,
                            transport=httpx.MockTransport(handler)) as c:
        assert c.platform_now() is None
        at = await c.probe()
    assert at is not None and abs((at - platform_time).total_seconds()) < 2


class DatedPlatform(FakePlatform):
    """A platform whose clock runs 10 min behind the dialer's; it honours created_after."""

    clock: Any = None
    lookups: list[dict[str, str]]

    def now(self) -> datetime:
        return self.clock.now() - timedelta(minutes=10)

    def handler(self, req: httpx.Request) -> httpx.Response:
        if req.method == "GET" and req.url.path == "/v1/calls":
            q = dict(req.url.params)
            if q.get("to"):
                self.lookups.append(q)
            after = _ts(q["created_after"]) if q.get("created_after") else None
            data = [self._public(c) for c in self.calls.values()
                    if q.get("to") in (None, c["to"])
                    and (after is None or _ts(c["created_at"]) > after)]
            resp = httpx.Response(200, json={"success": True, "data": data,
                                             "next_cursor": None})
        else:
            resp = super().handler(req)
        resp.headers["Date"] = format_datetime(self.now().replace(microsecond=0), usegmt=True)
        return resp


def _ts(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


def test_crash_recovery_bounds_its_lookup_by_the_platform_clock_not_ours(
    tmp_path: Path,
) -> None:
    """Dialer 10 min ahead of the platform, the key forgotten by the platform: the lookup,
    bounded by the platform time recorded with the intent, finds the call; no replay."""
    phone = numbers(1)
    clock = FakeClock(MIDDAY)
    p = DatedPlatform()
    p.clock, p.lookups = clock, []
    platform_at = p.now()

    def before(j: Journal) -> None:
        from campaign_dialer.engine import idempotency_key

        key = idempotency_key("e2e", f"tel:{phone[0]}", 1)
        body = {"agent_id": "agt_3d9b21", "phone_number": phone[0]}
        j.record_intent(person=f"tel:{phone[0]}", row=1, attempt=1, idem_key=key, body=body,
                        evidence={"platform_at": platform_at.isoformat()}, run_id=None)
        call = p._place("forgotten-" + key, body)  # placed; the platform forgot its key
        call["created_at"] = (platform_at + timedelta(seconds=1)).isoformat()

    clock.advance(minutes=2)  # the rerun, two minutes later
    r = run_engine(tmp_path, p, phones=phone, clock=clock, before=before)
    assert p.posts == []  # the lookup decided; no replay went out
    assert len(p.calls) == 1
    (a,) = r.journal.attempts()
    assert a.state == "final" and a.call_id == "call_0001"
    (q,) = p.lookups
    assert _ts(q["created_after"]) < platform_at  # the platform's time, less a margin


def test_an_intent_the_platform_cannot_be_asked_about_waits_for_a_person(
    tmp_path: Path,
) -> None:
    phone = numbers(1)

    class NoLookup(FakePlatform):
        def handler(self, req: httpx.Request) -> httpx.Response:
            if req.method == "GET" and req.url.path == "/v1/calls" and "to" in req.url.params:
                return httpx.Response(400, json=_env("unsupported_filter"))
            return super().handler(req)

    def before(j: Journal) -> None:
        j.record_intent(person=f"tel:{phone[0]}", row=1, attempt=1, idem_key="k1",
                        body={"agent_id": "agt_3d9b21", "phone_number": phone[0]},
                        evidence={}, run_id=None)

    p = NoLookup()
    r = run_engine(tmp_path, p, phones=phone, before=before)
    assert p.posts == []  # never re-sent on a guess
    (a,) = r.journal.attempts()
    assert a.state == "unresolved"
    assert r.outcome.exit_code == ExitCode.TEMPFAIL
    assert "release" in r.outcome.message
    fate = r.journal.fates()[1]
    assert (fate.disposition, fate.reason) == ("pending", "unresolved")
    # a second run leaves it alone too
    r2 = run_engine(tmp_path, p, phones=phone)
    assert p.posts == [] and r2.journal.attempts()[0].state == "unresolved"
    # a person releases it as not called: the next run dials it, once
    r2.journal.release(rows=None, as_called=False)
    r3 = run_engine(tmp_path, FakePlatform(), phones=phone)
    assert r3.journal.attempts()[0].state == "final"


def test_release_command_lists_and_releases(tmp_path: Path) -> None:
    camp = write_campaign(tmp_path, contacts=[{"phone": p} for p in numbers(2)])
    j = Journal(camp.out / "e2e.journal.sqlite", "e2e")
    a = j.record_intent(person="tel:x", row=2, attempt=1, idem_key="k", body={}, evidence={},
                        run_id=None)
    j.record_unresolved(a.id, error="cannot ask")
    j.close()
    st = run_cli("status", str(camp.path), "--json")
    assert json.loads(st.stdout)["unresolved"][0]["row"] == 2
    txt = run_cli("status", str(camp.path))
    assert "release" in txt.stdout
    rel = run_cli("release", str(camp.path), "--as", "called")
    assert rel.returncode == 0, rel.stderr
    with Journal(camp.out / "e2e.journal.sqlite", "e2e") as j2:
        assert j2.attempts()[0].state == "final"
    assert run_cli("release", str(camp.path)).returncode == 64  # --as is required


# -- the breaker ------------------------------------------------------------------------------
def test_the_same_error_on_five_calls_in_a_row_stops_the_run_rows_stay_pending(
    tmp_path: Path,
) -> None:
    p = FakePlatform(script=["422"] * 100)
    r = run_engine(tmp_path, p, phones=numbers(30),
                   api="poll_interval_s = 0.01\nmax_live_calls = 1")
    assert r.outcome.exit_code == ExitCode.CONFIG
    assert "5 calls in a row" in r.outcome.message
    assert len(p.posts) == 5
    fates = r.journal.fates()
    assert {f.disposition for f in fates.values()} == {"pending"}


def test_the_breaker_threshold_is_configurable(tmp_path: Path) -> None:
    p = FakePlatform(script=["422"] * 100)
    r = run_engine(tmp_path, p, phones=numbers(30),
                   api="poll_interval_s = 0.01\nmax_live_calls = 1\nbreaker_threshold = 2")
    assert r.outcome.exit_code == ExitCode.CONFIG and len(p.posts) == 2


def test_an_unknown_agent_stops_at_the_first_answer(tmp_path: Path) -> None:
    class NoAgent(FakePlatform):
        def handler(self, req: httpx.Request) -> httpx.Response:
            if req.method == "POST":
                self.posts.append((0.0, req.headers["Idempotency-Key"], {}, ""))
                return httpx.Response(404, json=_env("agent_not_found"))
            return super().handler(req)

    p = NoAgent()
    r = run_engine(tmp_path, p, phones=numbers(20),
                   api="poll_interval_s = 0.01\nmax_live_calls = 3")
    assert r.outcome.exit_code == ExitCode.CONFIG
    assert "campaign.agent_id" in r.outcome.message
    assert 1 <= len(p.posts) <= 3
    assert {f.disposition for f in r.journal.fates().values()} == {"pending"}


# -- hardening --------------------------------------------------------------------------------
@pytest.mark.parametrize(("line", "key"), [
    ("max_live_calls = 1e12", "api.max_live_calls"),
    ("requests_per_second = inf", "api.requests_per_second"),
    ("poll_interval_s = inf", "api.poll_interval_s"),
    ("request_timeout_s = nan", "api.request_timeout_s"),
    ("outage_s = -1", "api.outage_s"),
])
def test_inf_nan_and_absurd_numbers_are_named_with_78(
    tmp_path: Path, line: str, key: str
) -> None:
    camp = write_campaign(tmp_path, contacts=[{"phone": p} for p in numbers(2)], api=line)
    proc = run_cli("check", str(camp.path))
    assert proc.returncode == 78, proc.stderr
    assert key in proc.stderr and "Traceback" not in proc.stderr


def test_inf_calls_per_second_is_named_with_78(tmp_path: Path) -> None:
    camp = write_campaign(tmp_path, contacts=[{"phone": p} for p in numbers(2)],
                          pacing="calls_per_second = inf")
    proc = run_cli("check", str(camp.path))
    assert proc.returncode == 78 and "pacing.calls_per_second" in proc.stderr


@pytest.mark.parametrize("window", ['["07:00", "20:00"]', '["09:00", "22:00"]'])
def test_a_calling_window_outside_8_to_21_is_a_clear_78(tmp_path: Path, window: str) -> None:
    camp = write_campaign(tmp_path, contacts=[{"phone": p} for p in numbers(2)],
                          compliance=f"calling_window = {window}")
    proc = run_cli("check", str(camp.path))
    assert proc.returncode == 78, proc.stderr
    assert "compliance.calling_window" in proc.stderr and "08:00-21:00" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_dnc_ledger_pointing_at_a_folder_is_78(tmp_path: Path) -> None:
    camp = write_campaign(tmp_path, contacts=[{"phone": p} for p in numbers(2)])
    (tmp_path / "dnc-ledger.csv").mkdir()
    proc = run_cli("check", str(camp.path))
    assert proc.returncode == 78, proc.stderr
    assert "compliance.dnc_ledger" in proc.stderr and "not a file" in proc.stderr


def test_output_dir_pointing_at_a_file_is_78(tmp_path: Path) -> None:
    camp = write_campaign(tmp_path, contacts=[{"phone": p} for p in numbers(2)])
    (tmp_path / "out").write_text("not a folder")
    proc = run_cli("run", str(camp.path))
    assert proc.returncode == 78, proc.stderr
    assert "output.dir" in proc.stderr and "not a folder" in proc.stderr


@pytest.mark.parametrize("when", ["9999-12-31T00:00:00Z", "0001-01-01T00:00:00Z"])
def test_consent_dates_outside_pandas_range_are_65_naming_file_row_column(
    tmp_path: Path, when: str
) -> None:
    phones = numbers(3)
    camp = write_campaign(tmp_path, contacts=[{"phone": p} for p in phones])
    lines = ["phone,event,event_at,source"] + [
        f"{p},grant,{when if i == 1 else '2026-01-01T00:00:00Z'},test"
        for i, p in enumerate(phones)
    ]
    (tmp_path / "consent.csv").write_text("\n".join(lines) + "\n")
    proc = run_cli("check", str(camp.path))
    assert proc.returncode == 65, proc.stderr
    assert "consent.csv" in proc.stderr and "event_at" in proc.stderr
    assert "row 2" in proc.stderr and "Traceback" not in proc.stderr


def test_a_full_disk_is_a_journal_write_error_with_74(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.sqlite", "c")
    pages = j._db.execute("PRAGMA page_count").fetchone()[0]
    j._db.execute(f"PRAGMA max_page_count = {pages}")  # SQLite answers SQLITE_FULL
    with pytest.raises(JournalWriteError) as e:
        for i in range(200):
            j.record_intent(person=f"p{i}", row=i, attempt=1, idem_key=f"k{i}",
                            body={"x": "y" * 500}, evidence={}, run_id=None)
    assert e.value.exit_code == ExitCode.IOERR
    assert "disk is full" in str(e.value)


def test_a_journal_that_cannot_be_opened_for_writing_is_73(tmp_path: Path) -> None:
    with pytest.raises(JournalWriteError) as e:  # its folder is a file
        Journal(_file(tmp_path) / "j.sqlite", "c")
    assert e.value.exit_code == ExitCode.CANTCREAT


def _file(tmp_path: Path) -> Path:
    f = tmp_path / "a-file"
    f.write_text("x")
    return f


def _can_mount() -> bool:
    return os.geteuid() == 0 and os.path.exists("/proc/mounts")


def test_a_read_only_journal_is_73_from_the_cli(tmp_path: Path) -> None:
    import subprocess

    camp = write_campaign(tmp_path, contacts=[{"phone": p} for p in numbers(2)])
    assert run_cli("pause", str(camp.path)).returncode == 0  # creates the journal
    journal = camp.out / "e2e.journal.sqlite"
    if os.geteuid() != 0:
        for p in camp.out.iterdir():
            p.chmod(0o400)
        camp.out.chmod(0o500)
    else:
        mounted = subprocess.run(["mount", "--bind", "-o", "ro", str(camp.out), str(camp.out)],
                                 capture_output=True)
        if mounted.returncode != 0:
            pytest.skip("no way to make a read-only folder here (root without mount)")
        subprocess.run(["mount", "-o", "remount,bind,ro", str(camp.out)], capture_output=True)
    try:
        proc = run_cli("resume", str(camp.path))
    finally:
        if os.geteuid() == 0:
            subprocess.run(["umount", str(camp.out)], capture_output=True)
        else:
            camp.out.chmod(0o700)
    assert proc.returncode == 73, proc.stderr
    assert str(journal) in proc.stderr and "Traceback" not in proc.stderr


def test_a_full_disk_is_74_from_the_cli_before_any_call(tmp_path: Path) -> None:
    import subprocess

    if os.geteuid() != 0:
        pytest.skip("filling a disk needs a small mount (root)")
    camp = write_campaign(tmp_path, contacts=[{"phone": p} for p in numbers(2)])
    camp.out.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(camp.out)],
                      capture_output=True).returncode != 0:
        pytest.skip("no way to mount a small disk here")
    try:
        # the journal and the lock exist; then the disk fills up
        assert run_cli("resume", str(camp.path)).returncode == 0
        (camp.out / ".e2e.lock").write_text("x" * 100)
        fd = os.open(camp.out / "filler", os.O_WRONLY | os.O_CREAT)
        try:
            while True:
                os.write(fd, b"x" * 512)
        except OSError:
            pass
        finally:
            os.close(fd)
        proc = run_cli("run", str(camp.path), "--base-url", "http://127.0.0.1:9")
    finally:
        subprocess.run(["umount", str(camp.out)], capture_output=True)
    assert proc.returncode == 74, proc.stderr
    assert "disk is full" in proc.stderr and "Traceback" not in proc.stderr
    assert "e2e.journal.sqlite" in proc.stderr


def test_journal_files_are_created_0600(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.sqlite", "c")
    j.set_meta("x", "y")
    for name in ("j.sqlite", "j.sqlite-wal"):
        mode = stat.S_IMODE((tmp_path / name).stat().st_mode)
        assert mode == 0o600, (name, oct(mode))
    j.close()


def test_error_texts_stored_in_the_journal_are_scrubbed(tmp_path: Path) -> None:
    secret = "vx_test_scrubme1234567890"
    log.register_secret(secret)
    j = Journal(tmp_path / "j.sqlite", "c")
    a = j.record_intent(person="p", row=1, attempt=1, idem_key="k", body={}, evidence={},
                        run_id=None)
    j.record_error(a.id, http_status=422, error_code="x", error=f"bad key {secret}")
    assert secret not in (j.attempt(a.id).error or "")
    raw = sqlite3.connect(tmp_path / "j.sqlite").execute("SELECT error FROM attempts").fetchone()
    assert secret not in raw[0]
    j.close()


def test_check_registers_the_key_for_scrubbing(tmp_path: Path) -> None:
    camp = write_campaign(tmp_path, contacts=[{"phone": p} for p in numbers(2)])
    (tmp_path / ".env").write_text(f"VANTAX_API_KEY={KEY}\n")
    text = camp.path.read_text().replace('contacts = "contacts.csv"', 'contacts = ".env"')
    camp.path.write_text(text)
    proc = run_cli("check", str(camp.path))
    assert proc.returncode != 0
    assert KEY not in proc.stdout + proc.stderr


def test_logged_tracebacks_carry_no_local_variables() -> None:
    buf = io.StringIO()
    log.configure("info", json=True, stream=buf)

    def boom() -> None:
        phone_number = "+12125550199"  # noqa: F841 - a local the traceback must not show
        raise RuntimeError("boom")

    try:
        boom()
    except RuntimeError:
        log.get("t").exception("failed")
    out = buf.getvalue()
    assert "boom" in out and "+12125550199" not in out
    event: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    assert "exception" in event


def test_the_sandbox_takes_its_idempotency_memory_lifetime_on_the_command_line() -> None:
    from campaign_dialer.sandbox.cli import build_parser

    args = build_parser().parse_args(["--idempotency-ttl", "0.5"])
    assert args.idempotency_ttl == 0.5


def test_a_paused_campaign_replays_nothing_on_resume_of_an_open_intent(tmp_path: Path) -> None:
    phone = numbers(1)

    def before(j: Journal) -> None:
        j.record_intent(person=f"tel:{phone[0]}", row=1, attempt=1, idem_key="k1",
                        body={"agent_id": "agt_3d9b21", "phone_number": phone[0]},
                        evidence={}, run_id=None)
        j.set_control("paused")

    p = FakePlatform()
    r = run_engine(tmp_path, p, phones=phone, before=before)
    assert p.posts == []  # looked up (nothing there), not re-sent while paused
    assert r.journal.attempts()[0].state == "intent"
    assert r.outcome.exit_code == ExitCode.TEMPFAIL
