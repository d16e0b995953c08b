"""The adaptive schedule (issue 27): the pure scoring, and the strategy against the real gate.

The property: whatever the rows, the instants, the history and the holdout, a row the strategy
chooses by score is one the gate allows at that instant, every row pushed comes out exactly
once, and the holdout comes out in input order.
"""

from __future__ import annotations

import random
import tempfile
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import anyio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from campaign_dialer.answering import (
    MIN_ANSWERED,
    AnswerModel,
    Bucket,
    cell_of,
    choose,
    in_holdout,
    slacks,
)
from campaign_dialer.compliance import CallingWindow, DncList, Gate
from campaign_dialer.engine.adaptive import AdaptiveSchedule, window_intervals
from campaign_dialer.engine.rows import RecoveredRow
from campaign_dialer.vocab import ELIGIBLE

POOL = ("+12125550100", "+13125550101", "+13035550102", "+14155550103", "+16025550104",
        "+18085550105", "+19075550106", "+12065550107", "+17135550108", "+13055550109")
ON_DNC = POOL[3]
BASE = datetime(2026, 3, 9, 11, 0, tzinfo=UTC)  # a Monday, 07:00 in New York


def _gate() -> Gate:
    folder = Path(tempfile.mkdtemp(prefix="adaptive-"))
    (folder / "dnc.csv").write_text(f"phone\n{ON_DNC}\n")
    return Gate(dnc=DncList.load([folder / "dnc.csv"], default_region="US"), consent=None,
                window=CallingWindow(time(9), time(20)), require_consent=False)


GATE = _gate()


def _schedule(model: AnswerModel, holdout: float, deadline: datetime | None,
              seed: int) -> AdaptiveSchedule:
    def is_open(row: RecoveredRow, now: datetime) -> tuple[bool, tuple[str, ...]]:
        v = GATE.check(phone_e164=row.phone_e164, contact_id=None, tz_hint=None, at=now)
        return v.disposition == ELIGIBLE, tuple(v.evidence.get("local_times", "").split())

    def candidates(row: RecoveredRow) -> tuple[tuple[str, ...], tuple[str, ...]]:
        zones, states, _ = GATE.window.candidates(row.phone_e164, None)
        return zones, states

    def intervals(row: RecoveredRow, now: datetime, end: datetime
                  ) -> list[tuple[datetime, datetime]]:
        return window_intervals(GATE.window, *candidates(row), now, end)

    return AdaptiveSchedule(campaign="c", holdout_share=holdout, split=True, is_open=is_open,
                            candidates=candidates, intervals=intervals, rate=0.01,
                            deadline=deadline, model=model, seed=seed)


def _model(rng: random.Random, n: int) -> AnswerModel:
    facts = []
    for _ in range(n):
        day = BASE + timedelta(days=rng.randrange(7), hours=rng.randrange(24))
        status = "completed" if rng.random() < 0.4 else "no_answer"
        facts.append((f"tel:{rng.choice(POOL)}", status, day.strftime("%Y-%m-%dT%H:%M-05:00")))
    return AnswerModel.from_facts(facts, split=True)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    phones=st.lists(st.sampled_from(POOL), min_size=1, max_size=25),
    due_h=st.lists(st.integers(0, 30), min_size=25, max_size=25),
    steps=st.lists(st.integers(0, 5 * 3600), min_size=1, max_size=60),
    history=st.integers(0, 400),
    holdout=st.sampled_from((0.0, 0.1, 0.5)),
    deadline_h=st.one_of(st.none(), st.integers(1, 72)),
    seed=st.integers(0, 2**16),
)
def test_a_scored_pick_is_always_a_row_the_gate_allows(
    phones: list[str], due_h: list[int], steps: list[int], history: int, holdout: float,
    deadline_h: int | None, seed: int,
) -> None:
    async def main() -> None:
        rng = random.Random(seed)
        deadline = None if deadline_h is None else BASE + timedelta(hours=deadline_h)
        s = _schedule(_model(rng, history), holdout, deadline, seed)
        rows = [RecoveredRow(row=i + 2, order=i, person=f"tel:{p}", phone_e164=p,
                             contact_id=None) for i, p in enumerate(phones)]
        due = {r.row: BASE + timedelta(hours=h) for r, h in zip(rows, due_h, strict=False)}
        for r in rows:
            s.push(r, due[r.row])
        out: list[RecoveredRow] = []
        now = BASE
        for dt in [*steps, *([3600] * 200)]:
            now += timedelta(seconds=dt)
            while (row := s.pop_due(now)) is not None:
                assert isinstance(row, RecoveredRow)
                if s.last_scored:
                    v = GATE.check(phone_e164=row.phone_e164, contact_id=None, tz_hint=None,
                                   at=now)
                    assert v.disposition == ELIGIBLE, (row, now, v.reason)
                if s.holdout(row):  # input order: no holdout row before it is due and waiting
                    done = {r.row for r in out}
                    assert not [r for r in rows if s.holdout(r) and r.order < row.order
                                and due[r.row] <= now and r.row not in done]
                out.append(row)
            if len(out) == len(rows):
                break
        # every row once (handed to the gate or chosen), nothing lost or doubled
        assert sorted(r.row for r in out) == sorted(r.row for r in rows)
    anyio.run(main)


def test_cells_holdout_and_the_curve() -> None:
    assert cell_of("2026-03-09T13:05-04:00 2026-03-09T12:05-05:00") == (0, 13)
    assert cell_of("") is None and cell_of("garbage") is None
    people = [f"tel:+1212555{i:04d}" for i in range(4000)]
    held = [p for p in people if in_holdout("c", p, 0.1)]
    assert 300 < len(held) < 500  # about a tenth
    assert held == [p for p in people if in_holdout("c", p, 0.1)]  # stable
    assert not any(in_holdout("c", p, 0.0) for p in people)
    facts = [("tel:+12125550100", "completed" if i % 4 == 0 else "no_answer",
              "2026-03-09T10:00-04:00") for i in range(200)]
    m = AnswerModel.from_facts(facts)
    assert m.total_calls == 200 and m.total_answered == 50 and m.ready
    assert abs(m.mean(None, (0, 10)) - 51 / 202) < 1e-9
    assert m.curve()[1][10] == 0.5  # no evidence: the flat prior


def test_choose_takes_urgent_rows_first_then_the_best_hour() -> None:
    good = [("tel:+12125550100", "completed", "2026-03-09T10:00-04:00")] * 60
    bad = [("tel:+12125550100", "no_answer", "2026-03-09T14:00-04:00")] * 60
    m = AnswerModel.from_facts(good + bad)
    rng = random.Random(1)
    b = [Bucket("late", (0, 14), None, 0), Bucket("early", (0, 10), None, 5)]
    assert all(choose(b, m, rng) == 1 for _ in range(50))
    b = [Bucket("late", (0, 14), None, 0, slack_s=100.0), Bucket("early", (0, 10), None, 5, 9e9)]
    assert choose(b, m, rng) == 0  # urgent wins over a better hour
    cold = AnswerModel.from_facts(good[: MIN_ANSWERED - 1])
    assert choose([Bucket("x", (0, 10), None, 9), Bucket("y", (0, 14), None, 3)], cold, rng) == 1


def test_slacks_count_every_group_that_closes_first() -> None:
    # a closes first and needs 50 s; b closes later and shares a's capacity
    assert slacks([50.0, 30.0], [100.0, 200.0], [1.0, 2.0]) == [50.0, 120.0]
    assert slacks([10.0, 10.0], [15.0, 15.0], [1.0, 1.0]) == [-5.0, -5.0]


def test_the_sandbox_curve_reads_csv_and_json_and_answers_by_local_hour(tmp_path: Path) -> None:
    from campaign_dialer.sandbox.answer_curve import AnswerCurve
    from campaign_dialer.sandbox.lifecycle import plan_call

    rows = [",".join("1" if h == 10 else "0" for h in range(24)) for _ in range(7)]
    (tmp_path / "c.csv").write_text("h0,h1\n" + "\n".join(rows) + "\n")
    curve = AnswerCurve.load(tmp_path / "c.csv")
    (tmp_path / "bad.json").write_text('{"curve": [[0.5]]}')
    try:
        AnswerCurve.load(tmp_path / "bad.json")
        raise AssertionError("a 1x1 curve was accepted")
    except ValueError as e:
        assert "7 rows" in str(e)
    at_ten_ny = datetime(2026, 3, 10, 14, 30, tzinfo=UTC)  # 10:30 EDT; 07:30 in Los Angeles
    for i in range(20):
        for to, answered in ((f"+1212555{i:04d}", True), (f"+1415555{i:04d}", False)):
            plan, info = curve.apply(plan_call(1, to), seed=1, to=to, attempt=0, at=at_ten_ny,
                                     unknown=None, span=None)
            assert (plan.final_status == "completed") is answered, (to, info)
