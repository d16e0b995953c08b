"""Property-based: any interleaving of claims, heartbeats, deaths (leases expiring), intents,
finals, finishes and releases by several processes keeps the invariants, against a real
PostgreSQL server.

Invariants after every step: no row is leased (unexpired) by two processes; a row finished
is never claimed again; a row with an open intent is only ever handed over WITH that intent
(never claimed as if fresh); only the lease holder can record an intent; the live-call count
equals the open attempts and never exceeds max_live_calls.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

pytest_plugins = ["tests.pg_cluster"]
pytest.importorskip("psycopg")

from campaign_dialer.store.postgres import (  # noqa: E402
    Coordinator,
    Database,
    LeaseLost,
    LiveLimitReached,
)

ROWS, PROCS, MAX_LIVE = 8, 3, 2


@pytest.fixture
def shared_db(pg_database: str) -> Iterator[Database]:
    with Database(pg_database, max_size=2) as db:
        yield db


def test_any_interleaving_keeps_the_invariants(shared_db: Database) -> None:
    db = shared_db

    class Campaign(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            db.execute("TRUNCATE campaigns, processes, rows, attempts CASCADE")
            first = Coordinator(db, "p", lease_seconds=60)
            first.ensure_campaign(max_live_calls=MAX_LIVE)
            first.load_rows((r, f"person-{r}") for r in range(1, ROWS + 1))
            self.procs = []
            for _ in range(PROCS):
                co = Coordinator(db, "p", lease_seconds=60)
                co.register()
                self.procs.append(co)
            self.held: dict[int, set[int]] = {i: set() for i in range(PROCS)}
            self.expired: set[int] = set()  # held rows whose lease ran out (holder "died")
            self.finished: set[int] = set()
            self.open: dict[int, int] = {}  # row -> attempt id (intent/placed)
            self.attempt_no: dict[int, int] = {}

        @rule(p=st.integers(0, PROCS - 1), k=st.integers(1, 3))
        def claim(self, p: int, k: int) -> None:
            for c in self.procs[p].claim(k):
                assert c.row not in self.finished, "a finished row was claimed again"
                if c.row in self.open:
                    assert [i.attempt_id for i in c.open_intents] == [self.open[c.row]], \
                        "a row with an open intent was handed over without it"
                else:
                    assert c.open_intents == ()
                for q in self.held:
                    if c.row in self.held[q]:
                        assert c.row in self.expired, \
                            "a row was claimed while a lease on it was live"
                        assert c.taken_from == (None if q == p else self.procs[q].process_id)
                        self.held[q].discard(c.row)
                self.held[p].add(c.row)
                self.expired.discard(c.row)

        @rule(p=st.integers(0, PROCS - 1))
        def dies(self, p: int) -> None:
            """Its leases expire (as if it stopped heartbeating): others may take them."""
            db.execute(
                "UPDATE rows SET lease_until = now() - interval '1 second' WHERE lease_owner = %s",
                (self.procs[p].process_id,),
            )
            self.expired |= self.held[p]

        @rule(p=st.integers(0, PROCS - 1))
        def heartbeat(self, p: int) -> None:
            assert self.procs[p].heartbeat().held == len(self.held[p])
            self.expired -= self.held[p]

        @rule(p=st.integers(0, PROCS - 1), row=st.integers(1, ROWS))
        def intent(self, p: int, row: int) -> None:
            if row in self.open:
                return  # the engine resolves an open intent; it never opens a second one
            n = self.attempt_no.get(row, 0) + 1
            holds = db.fetchone(
                "SELECT 1 FROM rows WHERE campaign = 'p' AND row = %s AND lease_owner = %s "
                "AND lease_until > now() AND NOT done", (row, self.procs[p].process_id),
            ) is not None
            try:
                aid = self.procs[p].record_intent(
                    person=f"person-{row}", row=row, attempt=n, idem_key=f"k-{row}-{n}",
                    body={}, evidence={}, run_id=None, ts="t",
                )
            except LeaseLost:
                assert not holds, "the lease holder was refused"
                return
            except LiveLimitReached:
                assert holds and len(self.open) >= MAX_LIVE
                return
            assert holds, "an intent was recorded without the lease"
            self.open[row] = aid
            self.attempt_no[row] = n

        @precondition(lambda self: bool(self.open))
        @rule(data=st.data())
        def final(self, data: st.DataObject) -> None:
            row = data.draw(st.sampled_from(sorted(self.open)))
            db.execute("UPDATE attempts SET state = 'final' WHERE id = %s", (self.open.pop(row),))

        @rule(p=st.integers(0, PROCS - 1), row=st.integers(1, ROWS))
        def finish(self, p: int, row: int) -> None:
            if row in self.open:
                return  # the engine finishes a row only once its call is final
            ok = self.procs[p].finish([row])
            assert ok == (row in self.held[p])
            if ok:
                self.finished.add(row)
                self.held[p].discard(row)
                self.expired.discard(row)

        @rule(p=st.integers(0, PROCS - 1), row=st.integers(1, ROWS))
        def release(self, p: int, row: int) -> None:
            self.procs[p].release(row)
            if row in self.held[p]:
                self.held[p].discard(row)
                self.expired.discard(row)

        @invariant()
        def live_count_exact_and_done_rows_as_finished(self) -> None:
            live, open_, cap = db.fetchone(
                "SELECT c.live_calls, (SELECT count(*) FROM attempts a WHERE a.campaign = 'p' "
                "AND a.state IN ('intent', 'placed')), c.max_live_calls "
                "FROM campaigns c WHERE c.name = 'p'"
            )
            assert live == open_ == len(self.open) <= cap
            done = {r for (r,) in db.fetchall("SELECT row FROM rows WHERE done")}
            assert done == self.finished

    Campaign.TestCase.settings = settings(
        max_examples=30, stateful_step_count=25, deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    Campaign.TestCase().runTest()
