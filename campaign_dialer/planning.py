"""From a campaign file to a dial plan: load the inputs, build the gate, decide every row.

`check` stops here; `run` hands the plan to the engine. Nothing here touches the network;
the contact history is read once, in `build_gate` (its answer is data the gate holds).
"""

from __future__ import annotations

import functools
import hashlib
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar, overload

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from campaign_dialer import log
from campaign_dialer.compliance import (
    EVIDENCE_KEYS,
    NAT,
    CallingWindow,
    ConsentLedger,
    DncList,
    DncListMeta,
    Gate,
    Hold,
    ReassignedAnswers,
    StateRules,
    codes_of,
    decoded,
    from_ns,
    holds_again,
    load_state_rules,
    max_calls_per_24h,
    plan_columns,
    plan_columns_frame,
    row_columns,
    state_for_number,
)
from campaign_dialer.compliance.callerid import CallerIdRules, load_caller_id_rules
from campaign_dialer.compliance.kept import KeptReads, content_digest, sources_digest
from campaign_dialer.config import Campaign
from campaign_dialer.contacts import (
    STRING,
    Contacts,
    load_campaign_contacts,
    person_key,
    phone_key,
)
from campaign_dialer.memory import release_memory
from campaign_dialer.results import KeptContactFrames, keep_contacts, kept_contacts
from campaign_dialer.store import (
    EncodedPlan,
    HistoryStore,
    PastCall,
    PlanNotKept,
    PlanStore,
    StoreError,
    default_path,
    hold_back,
    open_history,
    open_team_history,
)
from campaign_dialer.store.ledger_file import DncLedger, SharedDncLedger
from campaign_dialer.store.plan_state import text_array
from campaign_dialer.vocab import CONTACT_REASONS, HISTORY_REASONS, PENDING, SUPPRESSED

__all__ = [
    "CONTACT_REASONS",
    "HISTORY_REASONS",
    "Plan",
    "PlanRows",
    "PlannedRow",
    "RecentCalls",
    "build_gate",
    "history_path",
    "load_campaign_contacts",
    "decode_plan",
    "encode_plan",
    "make_plan",
    "plan_fingerprint",
    "plan_once",
    "open_campaign_history",
    "release_memory",
    "person_key",
]


@dataclass(slots=True)
class PlannedRow:
    row: int
    order: int
    person: str | None
    phone_e164: str | None
    contact_id: str | None
    tz_hint: str | None
    disposition: str
    reason: str | None
    detail: str
    next_open: datetime | None
    evidence: dict[str, str] = field(default_factory=dict)  # read-only: rows may share one
    # the row's other valid numbers: a DNC entry or revocation on any of them holds it back
    other_phones: tuple[str, ...] = ()

    @property
    def contact_suppressed(self) -> bool:
        """Held back by the contacts stage: these rows never ring, whatever happens later."""
        return self.reason in CONTACT_REASONS


class PlanRows(Sequence[PlannedRow]):
    """The plan's rows, kept as columns; a `PlannedRow` is made only when asked for.

    Indexing makes (and keeps) that one row; iterating makes every row once, in one pass,
    reusing the rows already made, so the same row is always the same object (the engine
    relies on identity). `check` reads the columns (`frame`, `counts`) and makes no row.
    """

    def __init__(self, cols: dict[str, Any], evidence_cols: list[str], n: int) -> None:
        self._cols = cols  # arrow arrays (strings), numpy arrays (row, next_open ns)
        self._evidence_cols = evidence_cols
        self._n = n
        self._made: dict[int, PlannedRow] = {}
        self._all: list[PlannedRow] | None = None

    def __len__(self) -> int:
        return self._n

    @overload
    def __getitem__(self, i: int) -> PlannedRow: ...

    @overload
    def __getitem__(self, i: slice) -> list[PlannedRow]: ...

    def __getitem__(self, i: int | slice) -> PlannedRow | list[PlannedRow]:
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(self._n))]
        if i < 0:
            i += self._n
        if not 0 <= i < self._n:
            raise IndexError(i)
        if self._all is not None:
            return self._all[i]
        r = self._made.get(i)
        if r is None:
            r = self._made[i] = self._make_one(i)
        return r

    def __iter__(self) -> Iterator[PlannedRow]:
        return iter(self._everything())

    def made(self) -> int:
        """How many `PlannedRow`s exist so far (a run from a stored plan makes only the
        rows it takes)."""
        return self._n if self._all is not None else len(self._made)

    def _make_one(self, i: int) -> PlannedRow:
        c = self._cols
        phone, cid = c["phone"][i].as_py(), c["cid"][i].as_py()
        ev = {k: v for k in self._evidence_cols if (v := c[k][i].as_py())}
        o = c["others"][i].as_py()
        nxt = int(c["next_open"][i])
        return PlannedRow(
            row=int(c["row"][i]),
            order=i,
            person=person_key(phone, cid),
            phone_e164=phone,
            contact_id=cid,
            tz_hint=c["hint"][i].as_py(),
            disposition=str(c["disposition"][i].as_py()),
            reason=c["reason"][i].as_py(),
            detail=c["detail"][i].as_py() or "",
            next_open=None if nxt == NAT else from_ns(nxt),
            evidence=ev,
            other_phones=tuple(o.split(" ")) if o else (),
        )

    def _everything(self) -> list[PlannedRow]:
        """Every row, made in one pass (rows with equal evidence share one read-only dict)."""
        if self._all is not None:
            return self._all
        c = self._cols
        phones = c["phone"].to_pylist()
        cids = c["cid"].to_pylist()
        hints = _pylist(c["hint"])
        others = _pylist(c["others"])
        disp = _pylist(c["disposition"])
        reasons = _pylist(c["reason"])
        details = _pylist(c["detail"])
        nxt_ns = c["next_open"]
        opens = {int(k): from_ns(int(nxt_ns[k])) for k in np.flatnonzero(nxt_ns != NAT)}
        ev_lists = [_pylist(c[k]) for k in self._evidence_cols]
        evidence_cols = self._evidence_cols
        ev_cache: dict[tuple[Any, ...], dict[str, str]] = {}
        made = self._made
        rows: list[PlannedRow] = []
        append = rows.append
        for i, (row, ev_values) in enumerate(
            zip(c["row"].tolist(), zip(*ev_lists, strict=True), strict=True)
        ):
            r = made.get(i)
            if r is not None:
                append(r)
                continue
            ev = ev_cache.get(ev_values)
            if ev is None:
                ev = {k: v for k, v in zip(evidence_cols, ev_values, strict=True) if v}
                ev_cache[ev_values] = ev
            phone, cid, o = phones[i], cids[i], others[i]
            append(
                PlannedRow(
                    row=row,
                    order=i,
                    person=person_key(phone, cid),
                    phone_e164=phone,
                    contact_id=cid,
                    tz_hint=hints[i],
                    disposition=disp[i],
                    reason=reasons[i],
                    detail=details[i] or "",
                    next_open=opens.get(i),
                    evidence=ev,
                    other_phones=tuple(o.split(" ")) if o else (),
                )
            )
        self._all = rows
        self._made = {}
        return rows

    def frame(self) -> pd.DataFrame:
        """The rows as a frame (row, phone_e164, contact_id, disposition, reason, detail,
        next_open as UTC timestamps or NaT, and the evidence columns, "" when none)."""
        c = self._cols
        return pd.DataFrame(
            {
                "row": c["row"],
                "phone_e164": pd.array(c["phone"], dtype=STRING),
                "contact_id": pd.array(c["cid"], dtype=STRING),
                "disposition": pd.array(decoded(c["disposition"]), dtype=STRING),
                "reason": pd.array(decoded(c["reason"]), dtype=STRING),
                "detail": pd.array(pc.fill_null(decoded(c["detail"]), ""), dtype=STRING),
                "next_open": pd.Series(c["next_open"].view("datetime64[ns]")).dt.tz_localize(
                    "UTC"
                ),
                **{
                    k: pd.array(pc.fill_null(decoded(c[k]), ""), dtype=STRING)
                    for k in self._evidence_cols
                },
            }
        )

    @property
    def columns(self) -> dict[str, Any]:
        """The columns themselves (read-only): row, phone, cid, hint, others, disposition,
        reason, detail, next_open (ns, `NAT` if none) and the evidence columns."""
        return self._cols

    @property
    def evidence_keys(self) -> list[str]:
        return list(self._evidence_cols)

    def dial_columns(self) -> dict[str, Any]:
        """What a stored-plan source needs of every row (`engine.stored_plan.DialColumns`'s
        fields: person, contact_suppressed, suppressed, pending, next_open), as columns, no
        row made."""
        c = self._cols

        def text(v: str) -> pa.Scalar:
            return pa.scalar(v, pa.large_string())

        person = pc.coalesce(
            pc.binary_join_element_wise(text("tel:"), text_array(c["phone"]), text("")),
            pc.binary_join_element_wise(text("cid:"), text_array(c["cid"]), text("")),
        )
        # the flags from the verdicts' codes (a few labels), no string per row decoded
        r_codes, r_labels = codes_of(c["reason"])
        d_codes, d_labels = codes_of(c["disposition"])

        def where(codes: np.ndarray, labels: list[Any], pick: Callable[[Any], bool]) -> Any:
            hit = np.array([bool(pick(v)) for v in labels] + [False])
            return hit[codes]  # code -1 (null): the last entry, False

        return dict(
            person=person,
            contact_suppressed=where(r_codes, r_labels, lambda v: v in CONTACT_REASONS),
            suppressed=where(d_codes, d_labels, lambda v: v == SUPPRESSED),
            pending=where(d_codes, d_labels, lambda v: v == PENDING),
            next_open=np.asarray(c["next_open"], dtype=np.int64),
        )

    def plan_columns(self) -> dict[str, Any]:
        """What the engine needs of every row at once (`engine.PlanColumns`' fields: row,
        person, contact_suppressed, disposition, reason, detail, next_open, evidence), as
        columns, no row made: the dial columns and the rows' own verdicts and evidence."""
        c = self._cols
        dial = self.dial_columns()
        return dict(
            row=np.asarray(c["row"], dtype=np.int64), person=dial["person"],
            contact_suppressed=dial["contact_suppressed"],
            # as kept (dictionary-encoded: a few labels, an index a row)
            disposition=c["disposition"], reason=c["reason"], detail=c["detail"],
            next_open=dial["next_open"],
            evidence={k: c[k] for k in self._evidence_cols},
        )

    def counts(self) -> dict[tuple[str, str], int]:
        """Rows by (disposition, reason or ""): counted a slice of rows at a time on the
        columns' codes (`_slices`; ten million rows: no key or sort of every row)."""
        d_codes, d_dict = _codes(self._cols["disposition"])
        r_codes, r_dict = _codes(self._cols["reason"])
        d_labels, r_labels = d_dict.to_pylist(), r_dict.to_pylist()
        width = len(r_labels) + 1  # reason code + 1: 0 for none
        total = np.zeros((len(d_labels) + 1) * width, dtype=np.int64)
        for lo, hi in _slices(len(d_codes)):
            key = (_read(d_codes, lo, hi) + 1) * width + (_read(r_codes, lo, hi) + 1)
            total += np.bincount(key, minlength=len(total))
        out: dict[tuple[str, str], int] = {}
        for k in np.flatnonzero(total).tolist():
            d, r = divmod(k, width)
            # a missing disposition (code -1) reads as the last label, as it always has
            name = (str(d_labels[d - 1]), (r_labels[r - 1] if r else None) or "")
            out[name] = out.get(name, 0) + int(total[k])
        return out


@dataclass
class Plan:
    campaign: Campaign
    gate: Gate
    dnc_ledger: DncLedger
    rows: PlanRows
    at: datetime
    # `plan_columns`: the gate's verdicts on the numbers, before its later holds (contact_id
    # only, the contact history) that `rows` carry; None for a plan read back from the store
    decided: dict[str, Any] | None = None
    history: HistoryStore | None = None
    # `[caller_id]`: the state rules on the number shown (the team's file, or the shipped one)
    caller_id_rules: CallerIdRules | None = None
    # the contacts as loaded; a stored plan's are loaded when first asked for (`contacts`):
    # a run needs them only to write its results, after its calls
    loaded_contacts: Contacts | None = None
    # MADE (planned by this process) or STORED (read back: its inputs had not changed)
    source: str = "made"
    # A plan made and to be kept in a thread (`plan_once(keep_later=True)`): started by
    # `keep_now` (the run, once its own start work is done: both need memory), joined by
    # `kept`.
    keeping: threading.Thread | None = None
    # Where the contacts are kept beside the plan (SQLite; None: not kept), and the plan's
    # fingerprint they are kept for: a stored plan's results read them a slice at a time
    # (`results_contacts`), a new plan's are kept there with it.
    contacts_file: Path | None = None
    fingerprint: str | None = None

    def keep_now(self) -> None:
        """Start keeping the plan in its thread, if it is to be and has not started."""
        if self.keeping is not None and self.keeping.ident is None:
            self.keeping.start()

    def kept(self) -> None:
        """Wait until the plan is kept (started here if it had not been)."""
        if self.keeping is not None:
            self.keep_now()
            self.keeping.join()

    def results_contacts(self) -> Contacts | KeptContactFrames:
        """What the run's results are written from: the contacts as loaded (when they could
        not be kept), else those kept beside the plan (read a slice at a time), else the
        contacts file read again."""
        if self.loaded_contacts is None and self.contacts_kept is not None:
            return self.contacts_kept
        return self.contacts

    @cached_property
    def contacts_kept(self) -> KeptContactFrames | None:
        """The contacts kept beside this plan (`plan_once`), None when none are."""
        if self.contacts_file is None or self.fingerprint is None:
            return None
        return kept_contacts(self.contacts_file, self.fingerprint)

    @property
    def contacts(self) -> Contacts:
        if self.loaded_contacts is None:
            self.loaded_contacts = _released(load_campaign_contacts, self.campaign)
        return self.loaded_contacts

    @cached_property
    def frame(self) -> pd.DataFrame:
        """The gate's verdicts as `build_plan` gives them (made when first asked for)."""
        if self.decided is None:
            raise ValueError("a stored plan keeps the rows' verdicts, not `plan_columns`")
        return plan_columns_frame(self.decided)

    def counts(self) -> dict[tuple[str, str], int]:
        return self.rows.counts()


@dataclass(frozen=True)
class RecentCalls:
    """The contact history's answer, as data the gate holds (`compliance.HistoryRule`): every
    campaign's calls since shortly before the plan, read once (with the gate, in a worker
    thread), so neither the plan nor a dial-time check queries the history.

    A person another campaign called within `min_hours_between_calls`, or whose state's cap is
    used up by every campaign's calls, waits (`history.hold_back`). This campaign's own calls
    are its journal's (and its redial policy's) business.
    """

    recent: Mapping[str, list[PastCall]]
    campaign: str
    min_hours: float
    rules: StateRules | None = None

    @property
    def people(self) -> AbstractSet[str]:
        return self.recent.keys()

    def __call__(
        self, phone: str | None, contact_id: str | None, others: Sequence[str], at: datetime
    ) -> Hold | None:
        key = person_key(phone, contact_id)
        past: list[PastCall] = list(self.recent.get(key, [])) if key else []
        for num in others:  # a call to any of their numbers is to them
            past += self.recent.get(phone_key(num), [])
        if not any(p.campaign != self.campaign for p in past):
            return None
        held = hold_back(
            past, campaign=self.campaign, at=at, min_hours=self.min_hours,
            state_limit=max_calls_per_24h(phone, self.rules) if phone else None,
            state=state_for_number(phone) if phone else None,
        )
        if held is None or held.reason is None:
            return None
        return held  # type: ignore[return-value]  # reason is set when it holds


def recent_calls(
    campaign: Campaign, history: HistoryStore, at: datetime, rules: StateRules | None
) -> RecentCalls | None:
    """What the history knows of the last day (or `min_hours_between_calls`) before `at`."""
    min_hours = campaign.model.history.min_hours_between_calls
    recent = history.recent_calls(at - timedelta(hours=max(min_hours, 24.0)))
    if not recent:
        return None
    return RecentCalls(recent, campaign.name, min_hours, rules)


def history_path(campaign: Campaign) -> Path:
    """`[history] path` if given, else `$CAMPAIGN_DIALER_HOME`, else the user's data folder."""
    return campaign.history_path or default_path()


def open_campaign_history(campaign: Campaign) -> HistoryStore:
    """The contact history (and DNC ledger) this campaign's runs obey: the team database
    when it has a store URL, so `check` plans against what `run` will (opt-outs, recent
    calls by every campaign), else the SQLite history file."""
    if campaign.store_url is not None:
        return open_team_history(campaign.store_url)
    return open_history(history_path(campaign))


def build_gate(
    campaign: Campaign, history: HistoryStore | None = None, at: datetime | None = None,
    *, parallel: bool = False, reads: KeptReads | None = None,
    others_after: threading.Event | None = None,
) -> tuple[Gate, DncLedger]:
    """The campaign's gate and its DNC ledger file (blocking: reads every compliance input).

    With `at`, the gate also holds the contact history's answer for the calls before `at`
    (`RecentCalls`), the last of its rules. The gate consults only memory afterwards; the
    engine keeps it current with `Gate.reloaded` in a worker thread. `parallel`: the
    consent ledger and the reassigned answers are read in a worker thread while the DNC
    lists are read here (a run from a stored plan, which reads nothing else meanwhile).
    `reads`: the DNC lists and the consent ledger from reads of the same bytes kept with the
    plan where there are some (`compliance.kept`), each recorded there to be kept again.
    `others_after`: the consent ledger and the reassigned answers are read once it is set
    (the DNC lists before: a big plan reads them beside its contacts, the rest after).
    """
    m = campaign.model
    region = m.campaign.default_region
    encoding = m.inputs.encoding
    ledger: DncLedger = (
        SharedDncLedger(campaign.dnc_ledger_path, history) if history is not None
        else DncLedger(campaign.dnc_ledger_path)
    )

    def others() -> tuple[ConsentLedger | None, ReassignedAnswers | None]:
        if others_after is not None:
            others_after.wait()
        consent = (
            ConsentLedger.load(campaign.consent_path, default_region=region, encoding=encoding,
                               read=reads.consent(region, encoding) if reads else None)
            if campaign.consent_path is not None
            else None
        )
        reassigned = (
            ReassignedAnswers.load(campaign.reassigned_path, default_region=region,
                                   encoding=encoding)
            if campaign.reassigned_path is not None
            else None
        )
        return consent, reassigned

    with ThreadPoolExecutor(1) as pool:
        later = pool.submit(others) if parallel else None
        dnc = DncList.load(
            campaign.dnc_paths, default_region=region, ledger=ledger, encoding=encoding,
            meta=[
                None if d is None else DncListMeta(d[1].kind, d[1].state, d[1].as_of, key=d[0])
                for d in campaign.dnc_lists
            ],
            read=reads.dnc(region, encoding) if reads else None,
        )
        consent, reassigned = later.result() if later is not None else others()
    start, end = m.compliance.calling_window
    window = CallingWindow(
        start,
        end,
        state_rules=m.compliance.state_rules,
        allow_unknown_timezone=m.compliance.allow_unknown_timezone,
        rules=load_state_rules(campaign.rules_path) if campaign.rules_path else None,
    )
    gate = Gate(
        dnc=dnc, consent=consent, window=window, require_consent=m.compliance.require_consent,
        reassigned=reassigned, require_reassigned_check=m.compliance.require_reassigned_check,
        allow_contact_id_only=m.compliance.allow_contact_id_only,
        history=(
            recent_calls(campaign, history, at, window.rules)
            if history is not None and at is not None else None
        ),
    )
    return gate, ledger


def _pylist(values: pd.Series | pa.Array | pa.ChunkedArray) -> list[Any]:
    """Column values as Python objects, None for missing, without a per-value check; equal
    values are one Python object (dictionary-encoded in arrow): a million rows in a handful
    of zones hold a handful of strings, not a million copies."""
    arr = (
        values if isinstance(values, pa.Array | pa.ChunkedArray)
        else pa.array(values, from_pandas=True)
    )
    enc = pc.dictionary_encode(arr)
    if isinstance(enc, pa.ChunkedArray):
        enc = enc.combine_chunks()
    uniques = np.array([*enc.dictionary.to_pylist(), None], dtype=object)
    codes = np.asarray(pc.fill_null(enc.indices, len(uniques) - 1), dtype=np.int64)
    return uniques[codes].tolist()  # type: ignore[no-any-return]


_T = TypeVar("_T")


def _released(fn: Callable[..., _T], *args: Any) -> _T:
    """`fn(*args)`, then the memory its temporaries freed goes back (`release_memory`)."""
    try:
        return fn(*args)
    finally:
        release_memory()


# Inputs (contacts, DNC lists, consent) bigger than this in all are read one after the other.
ONE_AT_A_TIME_BYTES = 512 << 20


def _input_bytes(campaign: Campaign) -> int:
    """The bytes of the contacts file, the DNC lists and the consent ledger (0 for one that
    cannot be read: its loader says why)."""
    total = 0
    for p in (campaign.contacts_path, *campaign.dnc_paths, campaign.consent_path):
        try:
            total += p.stat().st_size if p is not None else 0
        except OSError:
            pass
    return total


def make_plan(
    campaign: Campaign, at: datetime, history: HistoryStore | None = None,
    reads: KeptReads | None = None, *, passthrough: bool = True,
) -> Plan:
    """The plan; `history` defaults to the campaign's contact history (opened here).

    The decisions stay columns (`PlanRows`): no Python object per row is made here.
    `passthrough=False`: its contacts without the input's own columns (`check`, which
    writes no results: they are never read, and ten million rows of them are ~0.7 GB)."""
    if history is None:
        history = open_campaign_history(campaign)
    load = functools.partial(load_campaign_contacts, passthrough=passthrough)
    if _input_bytes(campaign) > ONE_AT_A_TIME_BYTES:
        # Each load's peak is several times its file: beside each other, the contacts and
        # the consent ledger of millions of rows need both (10M contacts, 10M DNC numbers,
        # 5M consent events: ~5.8 GB at once). The DNC lists (numbers only, done well before
        # the contacts) are read beside the contacts; the consent ledger after them.
        contacts_read = threading.Event()
        with ThreadPoolExecutor(1) as pool:
            fg = pool.submit(_released, functools.partial(
                build_gate, reads=reads, others_after=contacts_read), campaign, history, at)
            try:
                contacts = _released(load, campaign)
            finally:
                contacts_read.set()
            gate, ledger = fg.result()
    else:
        # the contacts file and the compliance files are read at once: arrow releases the GIL
        with ThreadPoolExecutor(2) as pool:
            fc = pool.submit(_released, load, campaign)
            fg = pool.submit(_released, functools.partial(build_gate, reads=reads), campaign,
                             history, at)
            contacts = fc.result()
            gate, ledger = fg.result()
    release_memory()  # both loads' temporaries, freed in their threads' arenas
    decided = _released(plan_columns, contacts, gate, at)
    cols = row_columns(decided, contacts.frame)
    rows = PlanRows(cols, list(EVIDENCE_KEYS), len(contacts.frame))
    return Plan(campaign, gate, ledger, rows, at, decided, history, _caller_id_rules(campaign),
                contacts)


def _caller_id_rules(campaign: Campaign) -> CallerIdRules | None:
    return (
        load_caller_id_rules(campaign.caller_id_rules_path)
        if campaign.model.caller_id is not None else None
    )


# -- plan once: the plan of an input version, kept in the store ---------------------------

MADE = "made"
STORED = "stored"
# What a stored plan's verdicts depend on besides the campaign's own input files: the code
# that plans (a new version of it plans again)...
_PLANNING_CODE = ("compliance", "contacts", "planning.py", "results.py", "vocab.py")
# ...and the campaign file's settings that change a verdict.
_PLAN_SETTINGS = {"campaign": {"default_region"}, "inputs": True, "compliance": True,
                  "history": {"min_hours_between_calls"}, "caller_id": True}


@functools.cache
def _code_digest() -> str:
    """The planning code's own fingerprint (its source files' bytes)."""
    return sources_digest(_PLANNING_CODE)


def _file_digest(path: Path | None) -> str:
    if path is None:
        return "-"
    try:
        return content_digest(path)[:32]
    except OSError:
        return "missing"


def plan_fingerprint(campaign: Campaign, at: datetime) -> str:
    """The fingerprint of the inputs a plan is made of: the contacts file, the DNC lists,
    the consent ledger, the reassigned-numbers answers, the state rules, the settings that
    change a verdict, the planning code, and the UTC day
    (a plan is reused within the day it was made: what time changes, the gate checks again
    at the moment of dialing anyway)."""
    h = hashlib.blake2b(digest_size=20)
    settings = campaign.model.model_dump_json(include=_PLAN_SETTINGS)  # type: ignore[arg-type]
    # Not the campaign's DNC ledger: it grows with the runs' opt-outs, and a stored plan
    # asks the DNC rule again when it is read back (`compliance.holds_again`).
    files = [campaign.contacts_path, *campaign.dnc_paths, campaign.consent_path,
             campaign.reassigned_path, campaign.rules_path, campaign.caller_id_rules_path]
    parts = [_code_digest(), settings, at.astimezone(UTC).date().isoformat(),
             *(f"{p}={_file_digest(p)}" for p in files)]
    h.update("\0".join(parts).encode())
    return h.hexdigest()


# Rows one step of `encode_plan` reads at once: its temporaries (codes and keys as int64)
# are a slice's, not the plan's (ten million rows: ~1.5 GB of them when read whole).
ENCODE_ROWS = 1 << 18
# A step numbers its keys with a table (a flag and a code per possible key) when the keys
# fit in one this long (or in one as long as the rows), else by sorting each slice's keys.
ENCODE_TABLE_MIN = 1 << 22
ENCODE_TABLE_MAX = 50_000_000


def _array(arr: Any) -> pa.Array:
    """A column as one arrow array (a chunked one joined as the old encoder joined it)."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if not isinstance(arr, pa.Array):
        arr = pa.array(arr, from_pandas=True)
    return arr


def _codes(arr: Any) -> tuple[pa.Array, pa.Array]:
    """A column as (its codes, arrow integers, null for null; its labels: a dictionary
    column's own dictionary, as is, else its distinct values in order of appearance)."""
    arr = _array(arr)
    enc = arr if pa.types.is_dictionary(arr.type) else pc.dictionary_encode(arr)
    return enc.indices, enc.dictionary


def _slices(n: int) -> Iterator[tuple[int, int]]:
    for lo in range(0, n, ENCODE_ROWS):
        yield lo, min(n, lo + ENCODE_ROWS)


def _read(codes: pa.Array, lo: int, hi: int) -> np.ndarray:
    """Codes of rows lo..hi as int64, -1 for null."""
    return np.asarray(pc.fill_null(codes.slice(lo, hi - lo), -1), dtype=np.int64)


def _renumbered(keys: Callable[[int, int], np.ndarray], n: int, space: int,
                out: np.ndarray) -> np.ndarray:
    """Each row's key (`keys(lo, hi)`: rows lo..hi's, in 0..space-1) replaced in `out` by its
    rank among the keys used (as `np.unique(..., return_inverse=True)` numbers them); returns
    the keys used, sorted. A slice of rows at a time."""
    if space <= min(ENCODE_TABLE_MAX, max(ENCODE_TABLE_MIN, n)):
        seen = np.zeros(space, dtype=bool)
        for lo, hi in _slices(n):
            seen[keys(lo, hi)] = True
        used = np.flatnonzero(seen)
        del seen
        rank = np.zeros(space, dtype=np.int32)
        rank[used] = np.arange(len(used), dtype=np.int32)
        for lo, hi in _slices(n):
            out[lo:hi] = rank[keys(lo, hi)]
        return used
    parts = [np.unique(keys(lo, hi)) for lo, hi in _slices(n)]
    used = np.unique(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.int64)
    del parts
    for lo, hi in _slices(n):
        out[lo:hi] = np.searchsorted(used, keys(lo, hi))
    return used


def _combined(columns: list[tuple[pa.Array, int]], n: int) -> tuple[np.ndarray, np.ndarray]:
    """One code per distinct combination of the columns' codes (given as (codes, how many
    labels)), numbered in the combinations' sorted order (codes 0..k-1, int32), and for each
    code its combination as a row of the columns' codes (k x len(columns), -1 for null)."""
    key = np.zeros(n, dtype=np.int32)
    combos = np.zeros((1, 0), dtype=np.int64)  # before any column: one combination, ()
    for codes, labels in columns:
        width = labels + 1

        def keys(lo: int, hi: int, codes: pa.Array = codes, width: int = width) -> np.ndarray:
            return key[lo:hi].astype(np.int64) * width + (_read(codes, lo, hi) + 1)

        used = _renumbered(keys, n, len(combos) * width, key)
        combos = np.column_stack([combos[used // width], used % width - 1])
    return key, combos


def _used_values(arr: Any) -> tuple[np.ndarray, list[Any]]:
    """An evidence column as (code per row, -1 for null, int32; the distinct values its rows
    use, in the order they first appear in its dictionary).

    The plan's consent evidence indexes the whole ledger (a dictionary of every event's
    text, repeats included): kept as is, a stored plan would carry half a million strings
    per key, read back as Python objects at every resumed run. Equal entries are found by
    ranking the dictionary (a sort: a hash table of its strings cost ~8x the memory)."""
    arr = _array(arr)
    n = len(arr)
    out = np.empty(n, dtype=np.int32)
    if not pa.types.is_dictionary(arr.type):
        enc = pc.dictionary_encode(arr)  # distinct values, each used
        for lo, hi in _slices(n):
            out[lo:hi] = _read(enc.indices, lo, hi)
        return out, enc.dictionary.to_pylist()
    values = arr.dictionary
    seen = np.zeros(len(values) + 1, dtype=bool)  # per entry; the last: null rows (-1)
    for lo, hi in _slices(n):
        seen[_read(arr.indices, lo, hi)] = True
    seen[-1] = False
    upto = int(np.flatnonzero(seen)[-1]) + 1 if seen.any() else 0
    # each entry's value as a number (equal values, equal numbers; a null entry: `k`), up
    # to the last entry used: a value's first place may be an entry no row uses
    head = values.slice(0, upto)
    group = np.asarray(pc.rank(head, tiebreaker="dense"), dtype=np.int32)  # 1.., a copy
    group -= 1
    k = int(group.max(initial=-1)) + 1
    group[np.asarray(head.is_null(), dtype=bool)] = k
    first = np.full(k + 1, upto, dtype=np.int32)  # each value's first place
    for lo, hi in _slices(upto):
        np.minimum.at(first, group[lo:hi], np.arange(lo, hi, dtype=np.int32))
    used = np.zeros(k + 1, dtype=bool)
    used[group[seen[:upto]]] = True
    used[k] = False
    labels = np.flatnonzero(used)
    labels = labels[np.argsort(first[labels], kind="stable")]  # the values used, in order
    code = np.full(k + 1, -1, dtype=np.int32)  # per value; a null entry's: -1
    code[labels] = np.arange(len(labels), dtype=np.int32)
    code_of = np.full(len(values) + 1, -1, dtype=np.int32)  # per entry; the last: null rows
    code_of[:upto] = code[group]
    del group, seen, used, code
    for lo, hi in _slices(n):
        out[lo:hi] = code_of[_read(arr.indices, lo, hi)]
    return out, values.take(pa.array(first[labels], type=pa.int64())).to_pylist()


def _label(labels: list[Any], code: int) -> Any:
    return None if code < 0 else labels[code]


def encode_plan(rows: PlanRows, fingerprint: str) -> EncodedPlan:
    """The plan's rows as the store keeps them (`store.EncodedPlan`): vectorised, no row
    made; what repeats (verdicts, evidence, zones) as codes into per-plan dictionaries.

    Kept from a thread beside a first run's calls: every step works a slice of rows at a
    time into int32 codes and numbers what is used with tables, not sorts of every row."""
    c = rows.columns
    z_codes, z_labels = _codes(c["hint"])
    zones: list[str | None] = [*z_labels.to_pylist(), None]
    zone = np.empty(len(z_codes), dtype=np.int32)
    for lo, hi in _slices(len(zone)):
        part = _read(z_codes, lo, hi)
        zone[lo:hi] = np.where(part < 0, len(z_labels), part)
    del z_codes, z_labels
    vcols = [_codes(c[k]) for k in ("disposition", "reason", "detail")]
    verdict, vcombos = _combined([(codes, len(labels)) for codes, labels in vcols],
                                 len(vcols[0][0]))
    vlabels = [labels.to_pylist() for _, labels in vcols]
    del vcols
    verdicts = [
        tuple(_label(vlabels[j], code) for j, code in enumerate(combo))
        for combo in vcombos.tolist()
    ]
    keys = rows.evidence_keys
    ecols = [_used_values(c[k]) for k in keys]
    return EncodedPlan(
        fingerprint=fingerprint, row=np.asarray(c["row"], dtype=np.int64),
        phone=text_array(c["phone"]), cid=text_array(c["cid"]),
        others=text_array(c["others"]), zone=zone, zones=zones,
        verdict=verdict, verdicts=verdicts,  # type: ignore[arg-type]
        evidence_keys=keys, evidence=[codes for codes, _ in ecols],
        evidence_values=[labels for _, labels in ecols],
        next_open=np.asarray(c["next_open"], dtype=np.int64),
    )


def _dictionary(codes: np.ndarray, values: list[Any]) -> pa.Array:
    """A dictionary-encoded string column: row i is values[codes[i]] (None: null)."""
    distinct = sorted({v for v in values if v is not None})
    index = {v: k for k, v in enumerate(distinct)}
    per_value = np.array([index.get(v, -1) if v is not None else -1 for v in values] or [-1],
                         dtype=np.int32)
    idx = per_value[codes] if len(codes) else np.zeros(0, dtype=np.int32)
    return pa.DictionaryArray.from_arrays(
        _with_nulls(idx), pa.array(distinct, type=pa.large_string()),
    )


def _with_nulls(codes: np.ndarray) -> pa.Array:
    """int32 codes as an arrow array, null where negative (no mask when none is)."""
    codes = np.asarray(codes, dtype=np.int32)
    none = codes < 0
    return pa.array(codes, mask=none) if none.any() else pa.array(codes)


def decode_plan(plan: EncodedPlan) -> PlanRows:
    """The rows of a stored plan, as columns (`PlanRows`), no row made; each evidence key's
    values become one arrow array as its codes are read (the Python strings the store's
    record gave are let go of key by key)."""
    verdict = np.asarray(plan.verdict, dtype=np.int64)
    evidence = {}
    for j, k in enumerate(plan.evidence_keys):
        given = plan.evidence_values[j]
        values = (given.cast(pa.large_string()) if isinstance(given, pa.Array)
                  else pa.array(given, type=pa.large_string()))
        evidence[k] = pa.DictionaryArray.from_arrays(_with_nulls(plan.evidence[j]), values)
    n = len(plan)
    cols: dict[str, Any] = {
        "row": np.asarray(plan.row, dtype=np.int64),
        "phone": plan.phone, "cid": plan.cid, "others": plan.others,
        "hint": _dictionary(np.asarray(plan.zone, dtype=np.int64), list(plan.zones)),
        "disposition": _dictionary(verdict, [v[0] for v in plan.verdicts]),
        "reason": _dictionary(verdict, [v[1] for v in plan.verdicts]),
        "detail": _dictionary(verdict, [v[2] for v in plan.verdicts]),
        "next_open": np.asarray(plan.next_open, dtype=np.int64),
        **{k: evidence.get(k, pa.nulls(n, pa.large_string())) for k in EVIDENCE_KEYS},
    }
    return PlanRows(cols, list(EVIDENCE_KEYS), len(plan))


def stored_plan(
    campaign: Campaign, at: datetime, encoded: EncodedPlan, history: HistoryStore | None = None,
    built: tuple[Gate, DncLedger] | None = None,
) -> Plan:
    """A plan read back from the store: the gate is built again (fresh compliance inputs and
    contact history for the checks at the moment of dialing; `built`: already built so), the
    contacts are loaded only when asked for (`Plan.contacts`), the verdicts are the stored
    ones."""
    if history is None:
        history = open_campaign_history(campaign)
    gate, ledger = built if built is not None else _fresh_gate(campaign, history, at)
    kept = decode_plan(encoded)
    # the holds (the contact history) are asked again: calls made since the plan count
    rows = PlanRows(_released(holds_again, kept.columns, gate, at), list(EVIDENCE_KEYS),
                    len(kept))
    del kept
    release_memory()
    return Plan(campaign, gate, ledger, rows, at, None, history,
                _caller_id_rules(campaign), None, STORED)


def _fetch_contacts(plans: PlanStore, path: Path, fingerprint: str, logger: Any) -> None:
    """The contacts kept for the plan, from the store (PostgreSQL: the process that
    planned, on another machine, shared them), when this machine has none: the results
    then read them, not the contacts CSV. A failure only costs that read."""
    if kept_contacts(path, fingerprint) is not None:
        return
    try:
        if plans.fetch_contacts(path, fingerprint):
            logger.info("contacts_fetched", path=str(path))
    except (OSError, StoreError) as e:
        logger.warning("contacts_not_fetched", error=log.scrub(str(e))[:300])


def _fresh_gate(
    campaign: Campaign, history: HistoryStore, at: datetime, reads: KeptReads | None = None,
) -> tuple[Gate, DncLedger]:
    return _released(functools.partial(build_gate, parallel=True, reads=reads), campaign,
                     history, at)


def plan_once(
    campaign: Campaign, at: datetime, history: HistoryStore | None, plans: PlanStore,
    *, keep_later: bool = False, contacts_file: Path | None = None,
) -> Plan:
    """The plan of the campaign's current inputs: read back from `plans` when its
    fingerprint is theirs, else made (`make_plan`) and kept there. On PostgreSQL one process
    plans (`PlanStore.planning`); the others wait for its plan and read it.

    A plan read back: its gate is built (the compliance inputs read again, the DNC lists
    and the consent ledger at once), then its columns are read from the store: one after
    the other, as reading them beside the gate's inputs adds their peaks (a 1M-row plan:
    about 140 MB more at the peak) for a fraction of a second."""
    logger = log.get("plan", campaign=campaign.name)
    fingerprint = plan_fingerprint(campaign, at)
    with plans.planning():
        kept = plans.fingerprint()
        # The DNC lists and consent events as read for the kept plan, used where the files
        # still hold the same bytes (`compliance.kept`), else read from the files.
        reads = KeptReads(plans.reads() if kept is not None else None)
        if kept == fingerprint:
            if history is None:
                history = open_campaign_history(campaign)
            built = _fresh_gate(campaign, history, at, reads)
            encoded = plans.load()
            if encoded is not None and encoded.fingerprint == fingerprint:
                plan = stored_plan(campaign, at, encoded, history, built)
                plan.contacts_file, plan.fingerprint = contacts_file, fingerprint
                logger.info("plan_reused", rows=len(plan.rows), fingerprint=fingerprint[:12])
                if contacts_file is not None:
                    _fetch_contacts(plans, contacts_file, fingerprint, logger)
                return plan
        plan = make_plan(campaign, at, history, reads)
        plan.contacts_file, plan.fingerprint = contacts_file, fingerprint
        if contacts_file is not None:
            # Kept now (a million rows: ~0.3 s), so the frame of every contact goes before
            # the calls: this run's results read them from the file, as the next run's do.
            try:
                if _released(keep_contacts, plan.contacts, contacts_file, fingerprint):
                    plan.loaded_contacts = None
                    plans.share_contacts(contacts_file, fingerprint)
            except (OSError, ValueError, pa.ArrowException, StoreError) as e:
                logger.warning("contacts_not_kept", error=log.scrub(str(e))[:300])

        def keep() -> None:
            try:
                plans.save(_released(encode_plan, plan.rows, fingerprint), reads.kept())
            except PlanNotKept as e:  # this run dials from the plan it made; the next plans
                logger.warning("plan_not_kept", error=str(e))
                return
            logger.info("plan_made", rows=len(plan.rows), fingerprint=fingerprint[:12],
                        replaced=kept is not None)

        if not keep_later:
            keep()
            return plan
        # Kept beside the run's calls (only the next run reads it), from when the caller
        # says (`plan.keep_now`); the caller joins it (`plan.kept`) before it leaves. The
        # plan's columns are only read, by both.
        plan.keeping = threading.Thread(target=keep, name="plan-keeping")
        return plan
