"""What every rule is: a class with its one-row check and its column check side by side, and
the two walks over the rule list (`walk_one` for `Gate.check`, `walk_columns` for the plan).

A rule answers "no" (a `No` for one row, a `Said` for many) or nothing. The first rule that
says no decides the row, in the list's order, on both paths. Two refinements, the same on both
paths:

- a rule with `stops` (the contacts file's own verdict) ends the walk where it says no: the
  row was not checked further, so it carries no evidence;
- a rule with `holds` (the contact history) is also asked about a row an earlier rule only
  delays (pending with a known `next_open`, i.e. outside the calling window): its hold takes
  over and the row waits for the later of the two instants.

A rule with `evidence` records what it looked at (`EVIDENCE_KEYS`) for every row it is
shown, even when an earlier rule already decided: the evidence is complete whoever said no.
"""

from __future__ import annotations

from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple, Protocol

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from campaign_dialer.compliance.base import EVIDENCE_KEYS, arrow_strings, e164_ints, to_ns
from campaign_dialer.contacts import STRING
from campaign_dialer.vocab import ELIGIBLE, PENDING, SUPPRESSED

if TYPE_CHECKING:  # types only: the gate's inputs, which import nothing of the rules
    from campaign_dialer.compliance.consent import ConsentDecision, ConsentLedger
    from campaign_dialer.compliance.dnc import DncList
    from campaign_dialer.compliance.reassigned import ReassignedAnswers
    from campaign_dialer.compliance.window import CallingWindow

NAT = np.iinfo(np.int64).min  # next_open "none" in an ns column
DISPOSITIONS = (ELIGIBLE, SUPPRESSED, PENDING)  # the plan's disposition codes 0, 1, 2
SUPPRESSED_CODE, PENDING_CODE = 1, 2


class Hold(Protocol):
    """The contact history's answer for one person: wait, why, and until when."""

    @property
    def reason(self) -> str: ...

    @property
    def detail(self) -> str: ...

    @property
    def next_open(self) -> datetime | None: ...


class HistoryRule(Protocol):
    """The contact history's answer as data: built from what it read beforehand (in a worker
    thread), so the gate never queries it. `people`: the person keys ("tel:<E.164>",
    "cid:<id>") it may hold back; it answers None for everyone else."""

    @property
    def people(self) -> AbstractSet[str]: ...

    def __call__(
        self, phone: str | None, contact_id: str | None, others: Sequence[str], at: datetime
    ) -> Hold | None: ...


class GateInputs(Protocol):
    """What the rules read: the gate's inputs (`Gate` is one)."""

    dnc: DncList
    consent: ConsentLedger | None
    window: CallingWindow
    require_consent: bool
    reassigned: ReassignedAnswers | None
    require_reassigned_check: bool
    allow_contact_id_only: bool
    history: HistoryRule | None


class No(NamedTuple):
    """One rule's "no" for one row."""

    disposition: str  # suppressed | pending
    reason: str
    detail: str
    next_open: datetime | None = None


@dataclass(slots=True)
class Call:
    """One row as `Gate.check` is asked about it, and what the rules found so far.

    `evidence` is filled by the rules with `evidence`; `consent` is the consent rule's decision
    (the reassigned-numbers rule reads it); `note` is the detail an eligible row carries."""

    phone: str | None
    cid: str | None
    hint: str | None
    at: datetime
    others: Sequence[str]
    contact_reason: str | None
    contact_detail: str
    evidence: dict[str, str]
    consent: ConsentDecision | None = None
    note: str = ""


@dataclass
class Said:
    """One rule's "no" for many rows: `where` (bool per row) it says no; per row a reason and
    a detail as codes into its own small label lists, pending or suppressed, and next_open
    (ns, NAT = none) when it gives one. Codes are read only where `where` holds."""

    where: np.ndarray
    pending: np.ndarray | bool
    reason: np.ndarray
    reasons: Sequence[str | None]
    detail: np.ndarray
    details: Sequence[str]
    next_open: np.ndarray | None = None

    def spread(self, at: np.ndarray, n: int) -> Said:
        """This answer about the rows at positions `at` of `n` rows, as an answer about all
        `n` (no elsewhere)."""
        def wide(values: np.ndarray, fill: int) -> np.ndarray:
            out = np.full(n, fill, dtype=values.dtype)
            out[at] = values
            return out

        return Said(
            where=wide(self.where, False),
            pending=self.pending if isinstance(self.pending, bool) else wide(self.pending, True),
            reason=wide(self.reason, 0), reasons=self.reasons,
            detail=wide(self.detail, 0), details=self.details,
            next_open=None if self.next_open is None else wide(self.next_open, NAT),
        )


class Rows:
    """Every row of a contacts file as columns, as the rules' column checks see them.

    `checked`: rows no stopping rule has said no to (the others carry no evidence, and their
    numbers read as null here). Shared columns (the numbers as ints, the other numbers) are
    made once, when a rule first asks. `consent`: the consent rule's findings (the reassigned-
    numbers rule reads them); `evidence`: the columns the rules record; `note`: the detail of
    rows nobody said no to (codes, labels)."""

    def __init__(self, frame: pd.DataFrame, at: datetime) -> None:
        self.frame = frame
        self.n = len(frame)
        self.at = at
        self.at_ns = to_ns(at)
        self.checked = np.ones(self.n, dtype=bool)
        self.null = pa.nulls(self.n, pa.large_string())
        self.evidence: dict[str, pa.Array] = dict.fromkeys(EVIDENCE_KEYS, self.null)
        self.consent: dict[str, Any] = {}
        self.note: tuple[np.ndarray, list[str]] = (np.zeros(self.n, dtype=np.int64), [""])

    @classmethod
    def of_numbers(
        cls, phone: pa.Array, cid: pa.Array, others: pa.Array, at: datetime
    ) -> Rows:
        """Rows known by their numbers only (a stored plan's columns, no contacts frame): what
        the holds ask of a row (`phone`, `cid`, `others_text`) is given, not read from a frame."""
        rows = cls(pd.DataFrame(index=pd.RangeIndex(len(phone))), at)
        # cached_property keeps its value in the instance's __dict__: set it, never computed
        rows.__dict__.update(phone=phone, cid=cid, others_text=others)
        return rows

    def _only_checked(self, column: str) -> pa.Array:
        values = arrow_strings(self.frame[column])
        if self.checked.all():
            return values
        return pc.if_else(pa.array(self.checked), values, self.null)

    @cached_property
    def phone(self) -> pa.Array:
        return self._only_checked("phone_e164")

    @cached_property
    def cid(self) -> pa.Array:
        return self._only_checked("contact_id")

    @cached_property
    def hint(self) -> pa.Array:
        return arrow_strings(self.frame["tz_hint"])

    @cached_property
    def ints(self) -> np.ndarray:
        """The dialed number as its int64 key (-1: none)."""
        return e164_ints(self.phone)

    @cached_property
    def has_phone(self) -> np.ndarray:
        return np.asarray(pc.is_valid(self.phone), dtype=bool)

    @cached_property
    def others(self) -> tuple[np.ndarray, np.ndarray]:
        """(row position, E.164 int) of every other number (`phone_others`) of checked rows."""
        empty = np.zeros(0, dtype=np.int64)
        f = self.frame
        if "phone_others" not in f.columns:
            return empty, empty
        col = f["phone_others"]
        idx = np.flatnonzero(col.notna().to_numpy(dtype=bool) & self.checked)
        if idx.size == 0:
            return empty, empty
        split = col.iloc[idx].str.split(" ")
        lengths = split.str.len().to_numpy(dtype=np.int64)
        rows = np.repeat(idx, lengths)
        flat = pa.array([x for parts in split.tolist() for x in parts], type=pa.large_string())
        return rows, e164_ints(flat)

    @cached_property
    def others_text(self) -> pa.Array:
        """`phone_others` as it is (space-separated), null where none."""
        if "phone_others" not in self.frame.columns:
            return self.null
        return arrow_strings(self.frame["phone_others"])


class Rule(Protocol):
    """A compliance rule: `check` decides one row, `columns` every row at once; they agree
    (tests/test_rules.py checks each rule's pair on random inputs)."""

    name: ClassVar[str]
    stops: ClassVar[bool]  # a no from it ends the walk: nothing after it is checked
    evidence: ClassVar[bool]  # asked on every checked row, even decided ones (its evidence)
    holds: ClassVar[bool]  # may take over a row an earlier rule only delays

    def check(self, gate: GateInputs, call: Call) -> No | None: ...

    def columns(self, gate: GateInputs, rows: Rows, ask: np.ndarray) -> Said | None:
        """`ask`: the rows whose answer can count (a rule with `evidence` records evidence
        for every checked row; `ask` may be a subset of them)."""
        ...


def waits(no: No) -> bool:
    """A "no" that only delays: pending with a known reopening (outside the window)."""
    return no.disposition == PENDING and no.next_open is not None


def walk_one(rules: Sequence[Rule], gate: GateInputs, call: Call) -> No | None:
    """`Gate.check`'s walk: the first rule that says no decides (see the module doc)."""
    so_far: No | None = None
    for rule in rules:
        if so_far is None:
            so_far = rule.check(gate, call)
            if so_far is not None and rule.stops:
                return so_far
        elif rule.holds and waits(so_far):
            said = rule.check(gate, call)
            if said is not None:
                later = said.next_open is not None and said.next_open > so_far.next_open  # type: ignore[operator]
                so_far = said._replace(next_open=said.next_open if later else so_far.next_open)
        elif rule.evidence:
            rule.check(gate, call)  # its evidence; its answer comes after the deciding one
    return so_far


@dataclass
class Decided:
    """`walk_columns`' answer: disposition, reason and detail as codes into label lists
    (-1 = null), next_open as int64 ns (NAT = none), and the evidence columns."""

    disposition: np.ndarray
    reason: np.ndarray
    reasons: list[str | None]
    detail: np.ndarray
    details: list[str]
    next_open: np.ndarray
    evidence: dict[str, pa.Array] = field(default_factory=dict)

    def take(self, rule: Rule, said: Said, take: np.ndarray, waiting: np.ndarray) -> None:
        """`rule`'s no for the rows `take`: its reason, detail, disposition and next_open; a
        hold keeps a waiting row waiting until the later of the two instants."""
        self.reason[take] = len(self.reasons) + said.reason[take]
        self.detail[take] = len(self.details) + said.detail[take]
        self.reasons += said.reasons
        self.details += said.details
        pending = said.pending if isinstance(said.pending, bool) else said.pending[take]
        self.disposition[take] = np.where(pending, PENDING_CODE, SUPPRESSED_CODE)
        nxt = self.next_open
        if said.next_open is None:
            nxt[take] = NAT
        elif rule.holds:
            nxt[take] = np.maximum(np.where(waiting[take], nxt[take], NAT), said.next_open[take])
        else:
            nxt[take] = said.next_open[take]


def walk_columns(rules: Sequence[Rule], gate: GateInputs, rows: Rows) -> Decided:
    """The plan's walk: `walk_one` for every row at once."""
    n = rows.n
    d = Decided(
        disposition=np.zeros(n, dtype=np.int64),  # eligible until a rule says no
        reason=np.full(n, -1, dtype=np.int64), reasons=[],
        detail=np.full(n, -1, dtype=np.int64), details=[],
        next_open=np.full(n, NAT, dtype=np.int64),
    )
    decided = np.zeros(n, dtype=bool)
    for rule in rules:
        waiting = decided & (d.disposition == PENDING_CODE) & (d.next_open != NAT)
        if rule.holds:
            ask = rows.checked & (~decided | waiting)
        else:
            ask = rows.checked & ~decided
        if not rule.evidence and not ask.any():
            continue
        said = rule.columns(gate, rows, ask)
        if said is None:
            continue
        take = said.where & ask
        if not take.any():
            continue
        d.take(rule, said, take, waiting)
        decided |= take
        if rule.stops:
            rows.checked &= ~take
    # rows nobody said no to carry the note (the window's word on them), the others their own
    note_codes, note_labels = rows.note
    open_ = ~decided
    d.detail[open_] = len(d.details) + note_codes[open_]
    d.details += note_labels
    d.evidence = rows.evidence
    return d


def coded(codes: np.ndarray, labels: Sequence[str | None]) -> pa.DictionaryArray:
    """Strings by code (-1 = null) as a dictionary array: an int32 per row and each label
    once, not a string per row (a million rows, a handful of labels)."""
    return pa.DictionaryArray.from_arrays(
        pa.array(codes.astype(np.int32), mask=codes < 0),
        pa.array([None if x is None else str(x) for x in labels], type=pa.large_string()),
    )


def factorized(values: pd.Series) -> tuple[np.ndarray, list[str]]:
    """(code per value, -1 for missing; the distinct values as strings)."""
    codes, uniques = pd.factorize(values)
    return np.asarray(codes, dtype=np.int64), [str(u) for u in uniques]


def strings(arr: pa.Array | pa.ChunkedArray) -> pd.api.extensions.ExtensionArray:
    return pd.array(arr, dtype=STRING)
