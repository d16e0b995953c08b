"""The caller-ID chooser, judged by properties against an oracle written from the issue's text:
the chosen number is always usable, sticky is honoured, local preference goes area code ->
state -> pool, never local where the state's rule is off, and Exhausted.next_open is exactly the
first instant a re-choice succeeds. Plus capacity and rest advice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from campaign_dialer.compliance.callerid import (
    CHOICE_REASONS,
    LOW_ANSWER_SHARE,
    SHORT_CALLS,
    Caps,
    Choice,
    Exhausted,
    FinishedCall,
    HealthThresholds,
    PoolNumber,
    builtin_caller_id_rules,
    choose_caller_id,
    pool_capacity,
    rest_advice,
)
from campaign_dialer.compliance.tables import states_for_number

NOW = datetime(2026, 6, 9, 15, 0, tzinfo=UTC)
US = timedelta(microseconds=1)
RULES = builtin_caller_id_rules()  # SC and FL off; GA, TX, NY not listed: allowed
AREAS = {"803": "SC", "843": "SC", "404": "GA", "678": "GA", "512": "TX", "212": "NY",
         "305": "FL"}
STATES = sorted(set(AREAS.values()))


def num(npa: str, line: int) -> str:
    return f"+1{npa}555{line:04d}"


def r_states(recipient: str | None, state: str | None) -> set[str]:
    out = set(states_for_number(recipient)) if recipient else set()
    return out | ({state} if state else set())


def allowed(recipient: str | None, state: str | None) -> bool:
    return bool(state) and all(RULES.local_presence_allowed(s) for s in r_states(recipient, state))


def barred(n: PoolNumber, recipient: str | None, state: str | None) -> bool:
    """A number local to one of the recipient's states whose rule is off (all, if unknown)."""
    off = {s for s in r_states(recipient, state)
           if state is None or not RULES.local_presence_allowed(s)}
    return bool(off & set(states_for_number(n.number)))


def eligible(n: PoolNumber, recipient: str | None, state: str | None) -> bool:
    if n.states is not None and (state is None or state not in n.states):
        return False
    return not barred(n, recipient, state)


def counts(times: list[datetime], t: datetime) -> tuple[int, int]:
    return (sum(x > t - timedelta(hours=24) for x in times),
            sum(x > t - timedelta(minutes=60) for x in times))


def usable(n: PoolNumber, k: dict, t: datetime) -> bool:
    rest = k["resting"].get(n.id)
    day, hour = counts(list(k["recent"].get(n.id, ())), t)
    return ((rest is None or rest <= t) and day < k["caps"].per_day
            and hour < k["caps"].per_hour and eligible(n, k["recipient"], k["recipient_state"]))


@st.composite
def cases(draw: st.DrawFn) -> dict:
    size = draw(st.integers(1, 5))
    npas = draw(st.lists(st.sampled_from(sorted(AREAS)), min_size=size, max_size=size))
    pool = [PoolNumber(f"n{i}", num(a, i),
                       draw(st.none() | st.frozensets(st.sampled_from(STATES), max_size=2)))
            for i, a in enumerate(npas)]
    minutes = st.integers(0, 24 * 60 * 60 - 1).map(lambda s: NOW - timedelta(seconds=s))
    recent = {n.id: draw(st.lists(minutes | st.sampled_from([NOW - timedelta(minutes=59),
                                                              NOW]), max_size=6))
              for n in pool}
    resting = {n.id: NOW + timedelta(minutes=draw(st.integers(-30, 180)))
               for n in pool if draw(st.booleans())}
    rnpa = draw(st.none() | st.sampled_from(sorted(AREAS)))
    recipient = num(rnpa, 9999) if rnpa else None
    state = draw(st.sampled_from([None, *STATES, AREAS.get(rnpa or "", "TX")]))
    return {
        "pool": pool, "recipient": recipient, "recipient_state": state,
        "sticky_id": draw(st.none() | st.sampled_from([n.id for n in pool] + ["gone"])),
        "recent": recent, "resting": resting, "now": NOW,
        "caps": Caps(per_day=draw(st.integers(1, 4)), per_hour=draw(st.integers(1, 3))),
        "sticky": draw(st.booleans()), "local_presence": draw(st.booleans()), "rules": RULES,
    }


def sticky_applies(k: dict, t: datetime) -> PoolNumber | None:
    s = next((n for n in k["pool"] if n.id == k["sticky_id"]), None)
    if not k["sticky"] or s is None or not eligible(s, k["recipient"], k["recipient_state"]):
        return None
    rest = k["resting"].get(s.id)
    return s if rest is None or rest <= t else None


@settings(max_examples=400, deadline=None)
@given(cases())
def test_the_choice_follows_the_rules(k: dict) -> None:
    got = choose_caller_id(**k)
    by_id = {n.id: n for n in k["pool"]}
    s = sticky_applies(k, NOW)
    free = [n for n in k["pool"] if usable(n, k, NOW)]
    if isinstance(got, Choice):
        n = by_id[got.id]
        assert got.number == n.number and got.reason in CHOICE_REASONS
        # always usable: not resting, under both caps counting this call, inside its states,
        # never local where the rule is off
        assert usable(n, k, NOW), (got, k)
        if s is not None:
            assert got == Choice(s.id, s.number, "sticky")
            return
        assert got.reason != "sticky"
        def load(x: PoolNumber) -> tuple[int, int, int]:
            return (*counts(list(k["recent"].get(x.id, ())), NOW), k["pool"].index(x))
        if k["local_presence"] and allowed(k["recipient"], k["recipient_state"]):
            same_ac = [x for x in free
                       if k["recipient"] and x.number[2:5] == k["recipient"][2:5]]
            in_state = [x for x in free if k["recipient_state"] in states_for_number(x.number)]
            if same_ac:
                assert got.reason == "local_area_code" and n == min(same_ac, key=load)
            elif in_state:
                assert got.reason == "local_state" and n == min(in_state, key=load)
            else:
                assert got.reason == "pool" and n == min(free, key=load)
        else:
            assert got.reason == "pool" and n == min(free, key=load)
    else:
        assert isinstance(got, Exhausted) and got.detail
        if s is not None:
            assert not usable(s, k, NOW)  # the person waits for their number
        else:
            assert not free  # Exhausted only when no number is usable
        if got.next_open is None:
            # no number could ever serve: still none once every rest and cap is long over
            later = NOW + timedelta(days=3)
            assert isinstance(choose_caller_id(**{**k, "now": later}), Exhausted)
            assert not any(eligible(n, k["recipient"], k["recipient_state"]) for n in k["pool"])
        else:
            assert got.next_open > NOW
            assert isinstance(choose_caller_id(**{**k, "now": got.next_open}), Choice)
            assert isinstance(choose_caller_id(**{**k, "now": got.next_open - US}), Exhausted)
            # and by the oracle: a number is usable at next_open, none a microsecond before
            assert oracle_can_choose(k, got.next_open)
            assert not oracle_can_choose(k, got.next_open - US)


def oracle_can_choose(k: dict, t: datetime) -> bool:
    s = sticky_applies(k, t)
    if s is not None:
        return usable(s, k, t)
    return any(usable(n, k, t) for n in k["pool"])


def _k(**over: object) -> dict:
    base: dict = {
        "pool": [PoolNumber("sc", "+18035550100"), PoolNumber("ny", "+12125550100")],
        "recipient": "+18035550199", "recipient_state": "SC", "sticky_id": None, "recent": {},
        "resting": {}, "now": NOW, "caps": Caps(), "sticky": True, "local_presence": True,
        "rules": RULES,
    }
    return {**base, **over}


def test_never_a_local_number_in_an_off_state_even_the_only_one_or_the_sticky_one() -> None:
    assert choose_caller_id(**_k()) == Choice("ny", "+12125550100", "pool")
    assert choose_caller_id(**_k(sticky_id="sc")) == Choice("ny", "+12125550100", "pool")
    # the non-local number is capped: wait for it, never fall back to the local one
    busy = {"ny": [NOW - timedelta(minutes=m) for m in range(20)]}
    got = choose_caller_id(**_k(recent=busy))
    assert isinstance(got, Exhausted) and got.next_open == NOW - timedelta(minutes=19) + \
        timedelta(minutes=60)
    got = choose_caller_id(**_k(pool=[PoolNumber("sc", "+18435550100")]))
    assert isinstance(got, Exhausted) and got.next_open is None
    assert "37-21-50" in got.detail and "SC" in got.detail


def test_a_mobile_with_an_off_state_area_code_counts_as_that_state() -> None:
    # a Georgia resident on a South Carolina mobile: SC's rule applies too
    got = choose_caller_id(**_k(recipient_state="GA",
                                pool=[PoolNumber("sc", "+18435550100"),
                                      PoolNumber("ga", "+14045550100")]))
    assert got == Choice("ga", "+14045550100", "pool")


def test_local_presence_prefers_area_code_then_state_then_pool() -> None:
    pool = [PoolNumber("ny", "+12125550100"), PoolNumber("ga2", "+16785550100"),
            PoolNumber("ga1", "+14045550100")]
    k = _k(pool=pool, recipient="+14045550199", recipient_state="GA")
    assert choose_caller_id(**k).reason == "local_area_code"  # type: ignore[union-attr]
    assert choose_caller_id(**{**k, "resting": {"ga1": NOW + timedelta(hours=1)}}) == \
        Choice("ga2", "+16785550100", "local_state")
    assert choose_caller_id(**{**k, "local_presence": False}) == \
        Choice("ny", "+12125550100", "pool")


def test_a_capped_sticky_number_makes_the_person_wait_a_resting_one_is_replaced() -> None:
    pool = [PoolNumber("a", "+12125550100"), PoolNumber("b", "+15125550100")]
    k = _k(pool=pool, recipient="+13125550199", recipient_state="IL", sticky_id="a",
           caps=Caps(per_day=75, per_hour=1), recent={"a": [NOW - timedelta(minutes=10)]})
    got = choose_caller_id(**k)
    assert got == Exhausted(NOW + timedelta(minutes=50), got.detail)  # type: ignore[union-attr]
    assert choose_caller_id(**{**k, "resting": {"a": NOW + timedelta(days=30)}}) == \
        Choice("b", "+15125550100", "pool")
    assert choose_caller_id(**{**k, "sticky": False}) == Choice("b", "+15125550100", "pool")


def test_a_restricted_number_never_calls_an_unknown_state() -> None:
    k = _k(pool=[PoolNumber("tx", "+15125550100", frozenset({"TX"}))], recipient=None,
           recipient_state=None)
    got = choose_caller_id(**k)
    assert isinstance(got, Exhausted) and got.next_open is None and "unknown" in got.detail


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError):
        Caps(per_day=0)
    with pytest.raises(ValueError):
        choose_caller_id(**_k(now=NOW.replace(tzinfo=None)))
    with pytest.raises(ValueError):
        choose_caller_id(**_k(pool=[PoolNumber("a", "+12125550100")] * 2))
    assert isinstance(choose_caller_id(**_k(pool=[])), Exhausted)


def test_pool_capacity_counts_numbers_not_resting() -> None:
    pool = [PoolNumber("a", "+12125550100"), PoolNumber("b", "+15125550100", frozenset({"TX"})),
            PoolNumber("c", "+14045550100")]
    cap = pool_capacity(pool, {"c": NOW + timedelta(days=2), "a": NOW}, NOW, Caps())
    assert (cap.available, cap.daily_capacity, cap.hourly_capacity) == (2, 150, 40)
    assert cap.resting_now == ("c",) and cap.anywhere == 1 and dict(cap.by_state) == {"TX": 1}
    assert cap.warning(150) is None
    assert "151 calls planned" in (cap.warning(151) or "")


def _calls(answered: int, short: int, total: int = 50, voicemail: int = 0) -> list[FinishedCall]:
    out = [FinishedCall("completed", 5.0 if i < short else 60.0) for i in range(answered)]
    out += [FinishedCall("voicemail", 3.0) for _ in range(voicemail)]
    return out + [FinishedCall("no_answer") for _ in range(total - len(out))]


def test_rest_advice() -> None:
    pool = [0.4, 0.5, 0.3]  # median 0.4: the floor is 0.2
    ok = rest_advice(_calls(answered=20, short=2), pool)
    assert not ok.rest and ok.answer_share == 0.4
    low = rest_advice(_calls(answered=9, short=0), pool)
    assert low.rest and low.reasons == (LOW_ANSWER_SHARE,) and "9/50" in low.detail
    shorts = rest_advice(_calls(answered=20, short=11), pool)
    assert shorts.reasons == (SHORT_CALLS,) and "11/20" in shorts.detail
    assert not rest_advice(_calls(answered=20, short=10), pool).rest  # half is not more than
    # voicemail is not a connected call: 30 short voicemails do not make short calls
    assert not rest_advice(_calls(answered=20, short=0, voicemail=30), pool).rest
    assert not rest_advice(_calls(answered=0, short=0, total=49), pool).rest  # window not full
    assert not rest_advice(_calls(answered=1, short=0), []).rest  # no pool figure, no floor
    explicit = HealthThresholds(min_answer_share=0.1)
    assert rest_advice(_calls(answered=4, short=0), [], explicit).reasons == (LOW_ANSWER_SHARE,)
