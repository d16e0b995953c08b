"""The contact history: claims under concurrency, the shared rules, the ledger, its place."""

from __future__ import annotations

import os
import random
import stat
import threading
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from campaign_dialer.config import load_campaign
from campaign_dialer.planning import build_gate, history_path, make_plan, plan_once
from campaign_dialer.store import SqliteHistory, default_path, open_plan_store

from .e2e_support import numbers, write_campaign

T0 = datetime(2026, 6, 9, 17, 0, tzinfo=UTC)


def claim(h: SqliteHistory, campaign: str, phone: str, at: datetime, *, attempt: int = 1,
          min_hours: float = 24.0, state_limit: int | None = None) -> bool:
    return h.claim(
        campaign=campaign, person=f"tel:{phone}", phone_e164=phone, contact_id=None,
        attempt=attempt, idem_key=f"{campaign}-{phone}-{attempt}",
        record={"person": f"tel:{phone}", "row": 1, "attempt": attempt, "body": "{}"},
        at=at, min_hours=min_hours, state_limit=state_limit,
    ).ok


def _claim_all(args: tuple[str, str, list[str], int]) -> list[str]:
    """One process (or thread): its own connection, claiming everyone in its own order."""
    path, campaign, people, seed = args
    random.Random(seed).shuffle(people)
    won = []
    with SqliteHistory(path) as h:
        for p in people:
            if claim(h, campaign, p, T0):
                won.append(p)
    return won


def test_claims_from_many_threads_give_each_person_to_one_campaign(tmp_path: Path) -> None:
    path = str(tmp_path / "h.sqlite")
    people = numbers(200)
    results: dict[str, list[str]] = {}
    failed: list[BaseException] = []
    barrier = threading.Barrier(6)

    def worker(i: int) -> None:
        barrier.wait()  # every campaign opens the (new) history at the same moment
        try:
            results[f"c{i}"] = _claim_all((path, f"c{i}", list(people), i))
        except BaseException as e:  # noqa: BLE001 - the test fails on it below
            failed.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failed == [] and len(results) == 6
    won = [p for lst in results.values() for p in lst]
    assert sorted(won) == sorted(people)  # each person exactly once, by someone


def test_claims_from_many_processes_give_each_person_to_one_campaign(tmp_path: Path) -> None:
    path = str(tmp_path / "h.sqlite")
    SqliteHistory(path).close()
    people = numbers(150)
    with ProcessPoolExecutor(4) as pool:
        results = list(pool.map(_claim_all, [(path, f"p{i}", list(people), i) for i in range(4)]))
    won = [p for lst in results for p in lst]
    assert sorted(won) == sorted(people)


def test_the_same_campaign_cannot_claim_an_attempt_twice_even_from_two_processes(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "h.sqlite")
    SqliteHistory(path).close()
    people = numbers(100)
    with ProcessPoolExecutor(3) as pool:
        results = list(pool.map(_claim_all, [(path, "same", list(people), i) for i in range(3)]))
    assert sorted(p for lst in results for p in lst) == sorted(people)


claims = st.lists(
    st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(0, 96 * 60)), min_size=1,
    max_size=40,
)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(claims=claims, min_hours=st.sampled_from([0.0, 1.0, 24.0]),
       limit=st.sampled_from([None, 3]))
def test_accepted_claims_keep_the_gap_and_the_state_cap(
    tmp_path_factory: pytest.TempPathFactory, claims: list[tuple[str, int]], min_hours: float,
    limit: int | None,
) -> None:
    """Whatever order claims arrive in: accepted ones of different campaigns are at least
    `min_hours` apart, and no 24 h holds more than the state's cap."""
    phone = "+13055550100"
    attempts: dict[str, int] = {}
    accepted: list[tuple[str, datetime]] = []
    with SqliteHistory(tmp_path_factory.mktemp("h") / "h.sqlite") as h:
        for camp, minutes in claims:
            at = T0 + timedelta(minutes=minutes)
            n = attempts.get(camp, 0) + 1
            if claim(h, camp, phone, at, attempt=n, min_hours=min_hours, state_limit=limit):
                attempts[camp] = n
                accepted.append((camp, at))
    for i, (ca, ta) in enumerate(accepted):
        for cb, tb in accepted[i + 1:]:
            if ca != cb:
                assert abs(tb - ta) >= timedelta(hours=min_hours)
    if limit is not None:
        times = sorted(t for _, t in accepted)
        for i, t in enumerate(times):
            assert sum(1 for u in times[i:] if u - t < timedelta(hours=24)) <= limit


def test_a_not_placed_attempt_can_be_claimed_again(tmp_path: Path) -> None:
    with SqliteHistory(tmp_path / "h.sqlite") as h:
        assert claim(h, "a", "+12125550100", T0)
        assert not claim(h, "a", "+12125550100", T0)  # the same attempt: already called
        rec = h.records("a")[0]
        h.sync("a", [{**rec, "state": "not_placed"}])
        assert claim(h, "a", "+12125550100", T0 + timedelta(minutes=1))
        assert [r["state"] for r in h.records("a")] == ["intent"]


def test_the_history_lives_where_the_user_or_the_campaign_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CAMPAIGN_DIALER_HOME", str(tmp_path / "team"))
    assert default_path() == tmp_path / "team" / "history.sqlite"
    monkeypatch.delenv("CAMPAIGN_DIALER_HOME")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_path() == tmp_path / "xdg" / "campaign-dialer" / "history.sqlite"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_path() == tmp_path / "home" / ".local" / "share" / "campaign-dialer" / (
        "history.sqlite")
    camp = write_campaign(tmp_path / "c", contacts=[{"phone": numbers(1)[0]}],
                          extra='\n[history]\npath = "../shared/team.sqlite"\n')
    campaign = load_campaign(camp.path)
    assert history_path(campaign).resolve() == (tmp_path / "shared" / "team.sqlite").resolve()
    SqliteHistory(history_path(campaign)).close()
    mode = stat.S_IMODE(os.stat(tmp_path / "shared" / "team.sqlite").st_mode)
    assert mode == 0o600


def test_tests_never_use_the_users_history() -> None:
    home = Path(os.environ["CAMPAIGN_DIALER_HOME"])
    assert default_path().parent == home
    assert not str(default_path()).startswith(str(Path.home() / ".local"))


def test_a_legacy_ledger_csv_is_imported_and_still_honoured(tmp_path: Path) -> None:
    opted, listed, other = numbers(3, areas=("917",))
    # a ledger written by an earlier version, in the first campaign's folder
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "dnc-ledger.csv").write_text(
        "phone,reason,campaign,evidence,at\n"
        f"{opted},opt_out,old,call_1,2026-05-01T10:00:00+00:00\n"
        f"{listed},dnc_listed,old,409 dnc_listed,2026-05-02T10:00:00+00:00\n"
    )
    contacts = [{"phone": p} for p in (opted, listed, other)]
    a = load_campaign(write_campaign(tmp_path / "a", contacts=contacts, name="a").path)
    plan = make_plan(a, T0)
    reasons = {r.phone_e164: r.reason for r in plan.rows}
    assert reasons[opted] == reasons[listed] == "dnc_local"
    assert reasons[other] is None
    # a campaign in another folder, with no ledger file of its own, holds them back too
    b = load_campaign(write_campaign(tmp_path / "b", contacts=contacts, name="b").path)
    plan_b = make_plan(b, T0)
    assert {r.phone_e164: r.reason for r in plan_b.rows}[opted] == "dnc_local"
    assert not (tmp_path / "b" / "dnc-ledger.csv").exists()
    # a new opt-out goes to the shared store and to the extra ledger file as before
    plan_b.dnc_ledger.add(other, reason="opt_out", campaign="b", evidence="call_9", at=T0)
    assert other in (tmp_path / "b" / "dnc-ledger.csv").read_text()
    gate, _ = build_gate(a, plan.history)
    verdict = gate.check(phone_e164=other, contact_id=None, tz_hint=None, at=T0)
    assert (verdict.disposition, verdict.reason) == ("suppressed", "dnc_local")
    # and the legacy file was not rewritten: every line it held is still there
    assert (tmp_path / "a" / "dnc-ledger.csv").read_text().count("\n") == 3


@pytest.mark.parametrize("value", ["-1", "nan", "inf", '"soon"'])
def test_min_hours_between_calls_must_be_a_sane_number(tmp_path: Path, value: str) -> None:
    from campaign_dialer.config import ConfigError

    camp = write_campaign(tmp_path, contacts=[{"phone": numbers(1)[0]}],
                          extra=f"\n[history]\nmin_hours_between_calls = {value}\n")
    with pytest.raises(ConfigError) as e:
        load_campaign(camp.path)
    assert "history.min_hours_between_calls" in str(e.value)


def test_a_history_that_cannot_be_opened_is_a_clear_error_78(tmp_path: Path) -> None:
    from .e2e_support import run_cli

    (tmp_path / "not-a-file").mkdir()
    camp = write_campaign(tmp_path, contacts=[{"phone": numbers(1)[0]}],
                          extra='\n[history]\npath = "not-a-file"\n')
    done = run_cli("check", str(camp.path))
    assert done.returncode == 78
    assert "contact history" in done.stderr and "not-a-file" in done.stderr
    assert "Traceback" not in done.stderr


def test_plan_holds_a_person_another_campaign_just_called(tmp_path: Path) -> None:
    # the plan's rows are columns; the hold touches only the rows the history has seen, and
    # the rows the engine iterates, indexes and counts agree with one another
    called, fresh = numbers(2, areas=("917",))
    contacts = [{"phone": called}, {"phone": fresh}]
    camp = load_campaign(write_campaign(tmp_path / "b", contacts=contacts, name="b").path)
    h = SqliteHistory(history_path(camp))
    assert claim(h, "a", called, T0 - timedelta(hours=1))
    plan = make_plan(camp, T0, h)
    first = plan.rows[0]
    assert (first.disposition, first.reason) == ("pending", "recently_called")
    assert first.next_open is not None and first.next_open > T0
    assert (plan.rows[1].disposition, plan.rows[1].reason) == ("eligible", None)
    assert list(plan.rows)[0] is first  # one object per row, whichever way it was reached
    assert plan.counts() == {("pending", "recently_called"): 1, ("eligible", ""): 1}
    # the contact history is one of the gate's rules (compliance/rules/history.py): the gate's
    # verdicts and the rows agree
    assert plan.frame["disposition"].tolist() == ["pending", "eligible"]
    h.close()


def test_a_reused_plan_asks_the_history_again(tmp_path: Path) -> None:
    # the plan is kept by its inputs' fingerprint, but another campaign's call since is no
    # input of it: the plan read back holds the person all the same, and lets go of nobody
    called, fresh = numbers(2, areas=("917",))
    camp = load_campaign(write_campaign(tmp_path / "b", contacts=[{"phone": called},
                                        {"phone": fresh}], name="b").path)
    h = SqliteHistory(history_path(camp))
    plans = open_plan_store(camp.journal_path)
    first = plan_once(camp, T0, h, plans)
    assert [r.disposition for r in first.rows] == ["eligible", "eligible"]
    assert claim(h, "a", called, T0 + timedelta(minutes=5))
    again = plan_once(camp, T0 + timedelta(minutes=10), h, plans)
    assert again.decided is None  # read back, not made
    held = again.rows[0]
    assert (held.disposition, held.reason) == ("pending", "recently_called")
    assert held.next_open is not None and held.next_open >= T0 + timedelta(hours=24)
    assert (again.rows[1].disposition, again.rows[1].reason) == ("eligible", None)
    h.close()


def test_many_campaigns_opening_a_new_history_at_once_all_open(tmp_path: Path) -> None:
    """A new history file switched to WAL by twelve openers at once: none is refused with
    "database is locked" (seen under load when scheduled campaigns start together)."""
    failed: list[str] = []
    for k in range(25):
        path = tmp_path / f"h{k}.sqlite"
        barrier = threading.Barrier(12)

        def opener(p: Path = path, b: threading.Barrier = barrier) -> None:
            b.wait()
            try:
                SqliteHistory(p).close()
            except Exception as e:  # noqa: BLE001 - collected, asserted below
                failed.append(str(e))

        threads = [threading.Thread(target=opener) for _ in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert failed == []


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_a_reused_plan_says_what_a_fresh_plan_says(tmp_path_factory: pytest.TempPathFactory,
                                                   data: st.DataObject) -> None:
    """A stored plan asks the holds and the DNC rule again of the rows still to dial only
    (`holds_again`): whatever calls and opt-outs happened since, every such row's verdict is
    the one a plan made afresh gives. A row the plan suppressed stays suppressed, for the
    reason it had (a fresh plan may name an earlier rule: an opt-out since, of a row without
    consent, reads "dnc_local" there; it is called in neither)."""
    from campaign_dialer.store.ledger_file import DncLedger

    tmp = tmp_path_factory.mktemp("again")
    phones = numbers(10, areas=("917",))
    listed = data.draw(st.sets(st.sampled_from(phones), max_size=3))
    no_consent = data.draw(st.sets(st.sampled_from(phones), max_size=2))
    files = write_campaign(
        tmp, contacts=[{"phone": p} for p in phones], dnc=sorted(listed), name="b",
        consent=[p for p in phones if p not in no_consent])
    camp = load_campaign(files.path)
    h = SqliteHistory(history_path(camp))
    plans = open_plan_store(camp.journal_path)
    first = plan_once(camp, T0, h, plans)
    called = data.draw(st.sets(st.sampled_from(phones), max_size=4))
    for p in sorted(called):
        claim(h, "a", p, T0 + timedelta(minutes=5))
    opted = data.draw(st.sets(st.sampled_from(phones), max_size=4))
    for p in sorted(opted):
        DncLedger(camp.dnc_ledger_path).add(p, reason="opt_out", campaign="a",
                                            evidence="call_1", at=T0)
    at = T0 + timedelta(minutes=data.draw(st.integers(10, 60 * 6)))  # the same UTC day
    again = plan_once(load_campaign(files.path), at, h, plans)
    assert again.decided is None  # read back, not made
    fresh = make_plan(load_campaign(files.path), at, h)
    before = {r.row: r.disposition for r in first.rows}
    for a, f in zip(again.rows, fresh.rows, strict=True):
        if before[a.row] == "suppressed":
            assert a.disposition == f.disposition == "suppressed"
        else:
            assert (a.row, a.disposition, a.reason, a.detail, a.next_open) == (
                f.row, f.disposition, f.reason, f.detail, f.next_open)
    h.close()
