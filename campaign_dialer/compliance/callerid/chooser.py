"""Which pool number a call shows: `choose_caller_id`, pure, decided at the moment of dialing.

Decisions (each one tested; a demanding user would ask for these):

- Usable number at `now`: in the pool, not resting (a rest ends at its instant: resting while
  `now < rest_end`), its `states` (if any) contain the recipient's state (a restricted number is
  never used for a recipient whose state is unknown), under both caps: fewer than `per_day` of
  its calls in (now-24h, now] and fewer than `per_hour` in (now-60min, now], so counting this call
  it is at most at the cap. Calls stamped after `now` (another process's clock) count too: a
  call that happened is never forgotten.
- The recipient's states are their `recipient_state` and every state of their own area code
  (the union, as for calling hours: a Georgia resident's South Carolina mobile is still "a
  wireless telephone with a South Carolina area code"). Local presence is preferred only when
  the rules table allows it in every one of them; an unknown `recipient_state` allows nothing.
- A number is barred for this recipient when its area code is in one of their states whose rule
  is `off` (with an unknown `recipient_state`, every state of their area code counts as off):
  never shown, whatever `local_presence` says and even when it is the only free one: the person
  waits (`Exhausted`) for another number, or never gets one (`next_open` None, the detail names
  the rule) when the pool has none that could serve them. A rule that restricts showing a local
  number is about the number shown, not about our preference; the cost of waiting is a later
  call, the cost of the other reading is a call counsel said not to make. A team with an office
  in such a state sets it `allowed` in its own `caller_id.rules_file`.
- Sticky (`sticky` on, `sticky_id` given): the person's number is kept while it is in the pool,
  may serve them (its `states`, the local rule above: the table or the pool may have changed
  since, and those rules win over habit) and is not resting. If it is only at a cap, the person
  waits for it (`Exhausted`, `next_open` when it frees): a new number each time is what call
  screening learns to decline. Resting, gone, or no longer allowed: a new number is chosen as
  below (the caller stores it as the new sticky one).
- Local presence on and allowed: the least-loaded usable number with the recipient's area code
  (`local_area_code`), else one in the recipient's state (`local_state`), else any (`pool`).
- Otherwise the least-loaded usable number (`pool`): fewest calls in 24 h, then in the hour,
  then pool order.
- None usable: `Exhausted` with `next_open` the exact first instant at which choosing again,
  with no other call made meanwhile, gives a `Choice` (a rest ends at its end; an hour cap frees
  when enough of its calls are more than 60 min old, a day cap past 24 h); None when no number
  could ever serve this recipient.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from campaign_dialer.compliance.callerid.rules import CallerIdRules
from campaign_dialer.compliance.tables import states_for_number

DAY = timedelta(hours=24)
HOUR = timedelta(minutes=60)
STICKY = "sticky"
LOCAL_AREA_CODE = "local_area_code"
LOCAL_STATE = "local_state"
POOL = "pool"
CHOICE_REASONS = (STICKY, LOCAL_AREA_CODE, LOCAL_STATE, POOL)


@dataclass(frozen=True)
class PoolNumber:
    """An owned number: `id` is the API's `from_phone_number_id`; `states` None = anywhere."""

    id: str
    number: str  # E.164
    states: frozenset[str] | None = None

    def may_call(self, recipient_state: str | None) -> bool:
        if self.states is None:
            return True
        return recipient_state is not None and recipient_state in self.states


@dataclass(frozen=True)
class Caps:
    """Calls per number: rolling 24 h and rolling 60 min (defaults: practitioners' ceilings)."""

    per_day: int = 75
    per_hour: int = 20

    def __post_init__(self) -> None:
        for name in ("per_day", "per_hour"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"caps.{name} must be a whole number >= 1, got {v!r}")


@dataclass(frozen=True)
class Choice:
    id: str
    number: str
    reason: str  # one of CHOICE_REASONS


@dataclass(frozen=True)
class Exhausted:
    next_open: datetime | None
    detail: str


def _aware(at: datetime, name: str) -> None:
    if not isinstance(at, datetime) or at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {at!r}")


def _npa(e164: str | None) -> str | None:
    if e164 and len(e164) == 12 and e164.startswith("+1"):
        return e164[2:5]
    return None


@dataclass
class _Load:
    """One number's calls: counts at `now` and the instant each cap frees."""

    times: list[datetime] = field(default_factory=list)

    def count(self, now: datetime, window: timedelta) -> int:
        return sum(1 for t in self.times if t > now - window)

    def frees(self, cap: int, window: timedelta) -> datetime | None:
        """First instant at which fewer than `cap` calls are inside the window (None: now)."""
        if len(self.times) < cap:
            return None
        kth = sorted(self.times, reverse=True)[cap - 1]
        return kth + window


@dataclass(frozen=True)
class _Eval:
    n: PoolNumber
    index: int
    day: int
    hour: int
    free_at: datetime  # first instant it is usable (>= now)


def _free_at(load: _Load, rest_end: datetime | None, now: datetime, caps: Caps) -> datetime:
    at = now
    for t in (rest_end, load.frees(caps.per_day, DAY), load.frees(caps.per_hour, HOUR)):
        if t is not None and t > at:
            at = t
    return at


def recipient_states(recipient: str | None, recipient_state: str | None) -> frozenset[str]:
    """The states a recipient may be in: their own, and every state of their area code."""
    out = set(states_for_number(recipient)) if recipient else set()
    if recipient_state:
        out.add(recipient_state)
    return frozenset(out)


def local_presence_allowed_for(
    recipient: str | None, recipient_state: str | None, rules: CallerIdRules
) -> bool:
    """Allowed only when the recipient's state is known and every state they may be in allows it."""
    if not recipient_state:
        return False
    return all(rules.local_presence_allowed(st) for st in
               recipient_states(recipient, recipient_state))


def local_off_states(
    recipient: str | None, recipient_state: str | None, rules: CallerIdRules
) -> frozenset[str]:
    """The recipient's states whose rule bars a local number (all of them if their state is
    unknown): a pool number with an area code in one of these is never shown to them."""
    states = recipient_states(recipient, recipient_state)
    if not recipient_state:
        return states
    return frozenset(st for st in states if not rules.local_presence_allowed(st))


def shows_barred_local(number: str, off_states: frozenset[str]) -> bool:
    return bool(off_states.intersection(states_for_number(number)))


def choose_caller_id(
    *,
    pool: Sequence[PoolNumber],
    recipient: str | None,
    recipient_state: str | None,
    sticky_id: str | None,
    recent: Mapping[str, Sequence[datetime]],
    resting: Mapping[str, datetime],
    now: datetime,
    caps: Caps,
    sticky: bool,
    local_presence: bool,
    rules: CallerIdRules,
) -> Choice | Exhausted:
    """The number this call shows, or why none may now and when one may (module docstring)."""
    _aware(now, "now")
    ids = [n.id for n in pool]
    if len(set(ids)) != len(ids):
        dup = sorted(i for i in set(ids) if ids.count(i) > 1)
        raise ValueError(f"pool ids must be unique: {dup}")
    if not pool:
        return Exhausted(None, "the caller-ID pool is empty")
    allowed = local_presence_allowed_for(recipient, recipient_state, rules)
    barred = local_off_states(recipient, recipient_state, rules)
    evals: list[_Eval] = []
    excluded_states = excluded_local = 0
    for i, n in enumerate(pool):
        if not n.may_call(recipient_state):
            excluded_states += 1
            continue
        if shows_barred_local(n.number, barred):
            excluded_local += 1
            continue
        times = list(recent.get(n.id, ()))
        for t in times:
            _aware(t, f"recent[{n.id!r}]")
        load = _Load(times)
        rest_end = resting.get(n.id)
        if rest_end is not None:
            _aware(rest_end, f"resting[{n.id!r}]")
        evals.append(_Eval(n, i, load.count(now, DAY), load.count(now, HOUR),
                           _free_at(load, rest_end, now, caps)))
    by_id = {e.n.id: e for e in evals}

    # Sticky: the person's number, unless resting, gone from the pool or no longer allowed.
    s = by_id.get(sticky_id) if sticky and sticky_id is not None else None
    s_rest = resting.get(s.n.id) if s is not None else None
    if s is not None and (s_rest is None or s_rest <= now):
        if s.free_at <= now:
            return Choice(s.n.id, s.n.number, STICKY)
        return Exhausted(s.free_at, (
            f"the person's number {s.n.id} is at its cap ({s.day}/{caps.per_day} in 24 h,"
            f" {s.hour}/{caps.per_hour} in 60 min) until {s.free_at.isoformat()}:"
            " a person is called from the number that called them before"
        ))

    usable = [e for e in evals if e.free_at <= now]
    if usable:
        def load_key(e: _Eval) -> tuple[int, int, int]:
            return (e.day, e.hour, e.index)

        if local_presence and allowed:
            r_npa = _npa(recipient)
            same_ac = [e for e in usable if r_npa is not None and _npa(e.n.number) == r_npa]
            if same_ac:
                e = min(same_ac, key=load_key)
                return Choice(e.n.id, e.n.number, LOCAL_AREA_CODE)
            in_state = [e for e in usable
                        if recipient_state in states_for_number(e.n.number)]
            if in_state:
                e = min(in_state, key=load_key)
                return Choice(e.n.id, e.n.number, LOCAL_STATE)
        e = min(usable, key=load_key)
        return Choice(e.n.id, e.n.number, POOL)

    if not evals:
        return Exhausted(None, _never_detail(
            recipient_state, barred, rules, excluded_states, excluded_local))
    # The first instant a re-choice gives a Choice: a resting sticky number takes over again
    # when its rest ends, and then the person waits for it alone.
    first = min(e.free_at for e in evals)
    if s is not None and s_rest is not None and first >= s_rest:
        first = s.free_at
    return Exhausted(first, (
        f"every number that may call this recipient ({len(evals)}) is resting or at its cap"
        f" ({caps.per_day}/24 h, {caps.per_hour}/60 min) until {first.isoformat()}"
    ))


def _never_detail(recipient_state: str | None, barred: frozenset[str], rules: CallerIdRules,
                  excluded_states: int, excluded_local: int) -> str:
    parts = []
    if excluded_states:
        who = (f"a recipient in {recipient_state}" if recipient_state
               else "a recipient whose state is unknown")
        parts.append(f"{excluded_states} number(s) are restricted to states other than {who}")
    if excluded_local:
        off = sorted(barred) if recipient_state else []
        cites = "; ".join(f"{st}: {r.citation}" for st in off if (r := rules.get(st)))
        why = (f"local numbers are off in {', '.join(off)} ({rules.origin} caller-ID rules"
               + (f": {cites})" if cites else ")")) if off else (
            f"the recipient's state is unknown (their area code is in {', '.join(sorted(barred))})")
        parts.append(f"{excluded_local} number(s) are local to the recipient and {why}")
    return ("no pool number may ever call this recipient: " + "; ".join(parts)
            + " (add a number that may, or change caller_id.rules_file)")
