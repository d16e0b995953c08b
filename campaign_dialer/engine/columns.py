"""The plan's rows as columns: what the engine does with every row at once, no row made.

A run of a million-row campaign dials a few thousand rows. What it needs of all the others
is answered from columns (numpy and arrow, a few bytes a row):

- which row dials for each person (`PersonIndex`, in `stored_plan`) and which row number
  sits where (`RowPositions`);
- the people the contacts file itself marks Do-Not-Call (`flagged_people`);
- the **fate base** (`fate_base`): every row's fate as the plan implies it for a row nobody
  dialed (what `fates.row_fate` says of a row with no attempt and no dial-time verdict),
  computed at once. The journal keeps it compactly (`JournalStore.set_fate_base`) and keeps
  a row of its own only for a row whose fate differs (dialed, held at dial time...).

`PlanColumns` comes from the plan (`planning.PlanRows.plan_columns`), or from a list of
rows (`columns_of`: tests, small plans built by hand).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from campaign_dialer import vocab
from campaign_dialer.store import Fate, fates_of, iso

from .rows import Row
from .stored_plan import NO_TIME, DialColumns, ns_of, time_of

TEXT = pa.large_string()


def text(arr: Any) -> pa.Array:
    """One plain large_string array of a (possibly dictionary-encoded or chunked) column."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if not isinstance(arr, pa.Array):
        arr = pa.array(arr, type=TEXT)
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    return arr if arr.type == TEXT else pc.cast(arr, TEXT)


@dataclass
class PlanColumns:
    """Every row of the plan, in plan order (`Row.order`), as columns:

    - `row`: the input row number (int64); `person`: the person key, null when none;
    - `contact_suppressed`: held back by the contacts stage;
    - `disposition`, `reason`, `detail`: the plan's verdict (strings, dictionary or not);
    - `next_open`: ns since the epoch, `NO_TIME` when none;
    - `evidence`: the evidence columns by key (null or "" when the row has none).
    """

    row: np.ndarray
    person: pa.Array
    contact_suppressed: np.ndarray
    disposition: pa.Array
    reason: pa.Array
    detail: pa.Array
    next_open: np.ndarray
    evidence: dict[str, pa.Array] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.row)

    def dial(self) -> DialColumns:
        """What a stored-plan source and the person index need."""
        d_codes, d_labels = codes_in(self.disposition)
        return DialColumns(
            person=text(self.person),
            contact_suppressed=np.asarray(self.contact_suppressed, dtype=bool),
            suppressed=labelled(d_codes, d_labels, vocab.SUPPRESSED),
            pending=labelled(d_codes, d_labels, vocab.PENDING),
            next_open=np.asarray(self.next_open, dtype=np.int64),
        )

    def flagged_people(self) -> set[str]:
        """People the contacts file itself marks Do-Not-Call (an open intent of theirs is
        never re-sent)."""
        r_codes, r_labels = codes_in(self.reason)
        hit = np.flatnonzero(labelled(r_codes, r_labels, "dnc_flag"))
        if not len(hit):
            return set()
        people = text(self.person).take(pa.array(hit))
        return {str(p) for p in people.to_pylist() if p is not None}


def columns_of(rows: Sequence[Row]) -> PlanColumns:
    """The columns of a list of rows (every row made already)."""
    keys = sorted({k for r in rows for k in r.evidence})
    return PlanColumns(
        row=np.array([r.row for r in rows], dtype=np.int64),
        person=pa.array([r.person for r in rows], type=TEXT),
        contact_suppressed=np.array([r.contact_suppressed for r in rows], dtype=bool),
        disposition=pa.array([r.disposition for r in rows], type=TEXT),
        reason=pa.array([r.reason for r in rows], type=TEXT),
        detail=pa.array([r.detail for r in rows], type=TEXT),
        next_open=np.array([NO_TIME if r.next_open is None else ns_of(r.next_open)
                            for r in rows], dtype=np.int64),
        evidence={k: pa.array([r.evidence.get(k) or None for r in rows], type=TEXT)
                  for k in keys},
    )


class RowPositions:
    """Where each input row number sits in plan order."""

    def __init__(self, row: np.ndarray) -> None:
        self._row = np.asarray(row, dtype=np.int64)
        ascending = len(self._row) < 2 or bool(np.all(np.diff(self._row) > 0))
        self._order = None if ascending else np.argsort(self._row, kind="stable")
        self._sorted = self._row if ascending else self._row[self._order]

    def position(self, row: int) -> int | None:
        k = int(np.searchsorted(self._sorted, row))
        if k >= len(self._sorted) or int(self._sorted[k]) != row:
            return None
        return k if self._order is None else int(self._order[k])


@dataclass(frozen=True)
class Untouched:
    """How the rows nobody dialed read at the end of a run, beyond the plan: the campaign's
    control, the budget that holds them (reason, detail, next_open), every number of the
    caller-ID pool capped or resting (detail, until)."""

    control: str = "active"
    held: tuple[str, str, str | None] | None = None
    exhausted: tuple[str, str | None] | None = None


def coded(codes: np.ndarray, labels: Sequence[str | None]) -> pa.Array:
    """A dictionary-encoded string column: row i is labels[codes[i]] (-1 or a None label:
    null). Repeated values cost an index, not a string."""
    distinct: dict[str, int] = {}
    for v in labels:
        if v is not None:
            distinct.setdefault(v, len(distinct))
    # one more entry, -1, which code -1 indexes: no temporary of every row but the result
    table = np.array([*(-1 if v is None else distinct[v] for v in labels), -1], dtype=np.int32)
    idx = table[np.asarray(codes)] if len(codes) else np.zeros(0, dtype=np.int32)
    return pa.DictionaryArray.from_arrays(
        pa.array(idx, mask=idx < 0), pa.array(list(distinct), type=TEXT))


def labelled(codes: np.ndarray, labels: Sequence[str | None], label: str) -> np.ndarray:
    """Which rows' code is `label`'s (code -1, null: no)."""
    hit = np.array([v == label for v in labels] + [False])
    return hit[np.asarray(codes)]


def codes_in(arr: Any) -> tuple[np.ndarray, list[str | None]]:
    """(code per row, -1 for null; labels) of a string column, dictionary-encoded or not."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    enc = arr if pa.types.is_dictionary(arr.type) else pc.dictionary_encode(arr)
    codes = np.asarray(pc.fill_null(enc.indices, -1), dtype=np.int32)
    return codes, enc.dictionary.to_pylist()


def fate_base(
    cols: PlanColumns, first_positions: np.ndarray, first_of: np.ndarray, mode: Untouched,
    exhausted_reason: str,
) -> pa.Table:
    """Every row's fate as `fates.row_fate` gives it for a row with no attempt and no
    dial-time verdict, vectorised (columns: row, person, disposition, reason, detail,
    next_open, then the evidence keys; see the module doc). The text columns are
    dictionary-encoded: a million rows hold a few distinct verdicts.

    `first_positions`: the plan position of each person's dialing row; `first_of[i]`: the
    row number of row i's person's dialing row (duplicates name it), -1 when none.
    """
    n = len(cols)
    person = text(cols.person)
    d_codes, d_labels = codes_in(cols.disposition)
    r_codes, r_labels = codes_in(cols.reason)
    t_codes, t_labels = codes_in(cols.detail)
    is_label = np.array([v == vocab.SUPPRESSED for v in d_labels] + [False])
    plan_supp = is_label[d_codes]  # code -1 (null): the last entry, False
    is_label = np.array([v == vocab.PENDING for v in d_labels] + [False])
    plan_pend = is_label[d_codes]
    held = np.asarray(cols.contact_suppressed, dtype=bool) | ~np.asarray(
        pc.is_valid(person), dtype=bool)
    first = np.zeros(n, dtype=bool)
    first[np.asarray(first_positions, dtype=np.int64)] = True
    dup = ~held & ~first
    rest = ~held & ~dup
    if mode.control == "canceled":
        cancel, own_supp, own_pend = rest, np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    else:
        cancel = np.zeros(n, dtype=bool)
        own_supp = rest & plan_supp
        own_pend = rest & ~plan_supp & plan_pend
    idle = rest & ~cancel & ~own_supp & ~own_pend
    own = held | own_supp | own_pend  # the plan's own reason and detail

    if mode.control == "paused":
        idle_fate: tuple[str, str, str | None] = ("paused", "", None)
    elif mode.held is not None:
        idle_fate = mode.held
    elif mode.exhausted is not None:
        idle_fate = (exhausted_reason, mode.exhausted[0], mode.exhausted[1])
    else:
        idle_fate = ("not_dialed_yet", "", None)

    disposition = coded(np.where(held | dup | cancel | own_supp, 0, 1),
                        [vocab.SUPPRESSED, vocab.PENDING])
    # reason: the plan's codes, then "duplicate", "campaign_canceled", the idle rows' reason
    k = len(r_labels)
    reason = coded(np.select([own, dup, cancel], [r_codes, k, k + 1], default=k + 2),
                   [*r_labels, "duplicate", "campaign_canceled", idle_fate[0]])
    # detail: the plan's ("" for none), "", the idle rows', then one per duplicate
    k = len(t_labels)
    dups = np.flatnonzero(dup)
    dup_codes = np.full(n, -1, dtype=np.int32)
    dup_codes[dups] = k + 2 + np.arange(len(dups))
    detail = coded(
        np.select([own, dup, cancel], [np.where(t_codes < 0, k, t_codes), dup_codes, k],
                  default=k + 1),
        [*(v if v is not None else "" for v in t_labels), "", idle_fate[1],
         *(f"duplicate_of={int(r)}" for r in np.asarray(first_of)[dups].tolist())])
    # next_open: the plan's for the rows pending of their own, the idle rows' moment
    waiting = np.flatnonzero(own_pend)
    uniq, inverse = np.unique(np.asarray(cols.next_open, dtype=np.int64)[waiting],
                              return_inverse=True)
    labels: list[str | None] = [None if u == NO_TIME else iso(time_of(int(u)))
                                for u in uniq.tolist()]
    n_codes = np.where(idle, len(labels), -1)
    n_codes[waiting] = inverse.reshape(-1)
    next_open = coded(n_codes, [*labels, idle_fate[2]])
    table: dict[str, pa.Array] = {
        "row": pa.array(np.asarray(cols.row, dtype=np.int64)),
        "person": person, "disposition": disposition, "reason": reason, "detail": detail,
        "next_open": next_open,
    }
    for key, arr in cols.evidence.items():
        table[key] = evidence_coded(arr)
    return pa.table(table)


def evidence_coded(arr: Any) -> pa.Array:
    """An evidence column as the fate base keeps it: `coded` of its codes and labels with ""
    as null (the same array, buffers and all), computed on its dictionary: a consent evidence
    column indexes every event's text of the ledger (millions at ten million rows), never
    turned into Python strings here. Equal entries are found by ranking the dictionary (a
    sort): a hash table of half a million strings cost ~110 MB at its peak, for a column of
    20 MB."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if not isinstance(arr, pa.Array):
        arr = pa.array(arr, type=TEXT)
    enc = arr if pa.types.is_dictionary(arr.type) else pc.dictionary_encode(arr)
    values = enc.dictionary
    d = len(values)
    # each entry's value as a number (equal values, equal numbers; nulls one of their own)
    group = np.asarray(pc.rank(values, tiebreaker="dense"), dtype=np.int64) - 1 if d else \
        np.zeros(0, dtype=np.int64)
    k = int(group.max(initial=-1)) + 1
    missing = np.asarray(pc.fill_null(pc.equal(values, pa.scalar("", values.type)), True),
                         dtype=bool) if d else np.zeros(0, dtype=bool)
    first = np.full(k, d, dtype=np.int64)  # each value's first entry
    np.minimum.at(first, group, np.arange(d, dtype=np.int64))
    shown = np.zeros(k, dtype=bool)  # the values a label is made of ("" and null are not)
    shown[group[~missing]] = True
    order = np.flatnonzero(shown)
    order = order[np.argsort(first[order], kind="stable")]  # by first appearance, as `coded`
    code = np.full(k, -1, dtype=np.int32)
    code[order] = np.arange(len(order), dtype=np.int32)
    # per entry; the last: code -1 (a null row) indexes it, and null stays null
    per_entry = np.append(code[group] if d else np.zeros(0, dtype=np.int32), -1).astype(np.int32)
    idx = per_entry[np.asarray(pc.fill_null(enc.indices, -1), dtype=np.int64)]
    # the values' first entries, ascending (the order of `order`): a filter, not a take,
    # so no validity buffer is added (the digest is of the buffers)
    pick = np.zeros(d, dtype=bool)
    pick[first[order]] = True
    labels = values.cast(TEXT).filter(pa.array(pick, type=pa.bool_()))
    if labels.buffers()[0] is not None:  # kept from a dictionary with a null entry: no null
        labels = pa.Array.from_buffers(TEXT, len(labels), [None, *labels.buffers()[1:]],
                                       offset=labels.offset)
    return pa.DictionaryArray.from_arrays(pa.array(idx, mask=idx < 0), labels)


def digest_of(table: pa.Table) -> str:
    """A digest of a fate base's content (tables made alike from equal plans, equal digests)."""
    h = hashlib.blake2b(digest_size=20)
    for name in table.column_names:
        h.update(name.encode())
        for chunk in table.column(name).chunks:
            h.update(len(chunk).to_bytes(8, "little"))
            parts = [chunk.indices, chunk.dictionary] if pa.types.is_dictionary(
                chunk.type) else [chunk]
            for part in parts:
                for buf in part.buffers():
                    if buf is not None:
                        h.update(buf)
    return h.hexdigest()


def fate_at(table: pa.Table, pos: int) -> Fate:
    """The fate of the base's row at plan position `pos` (as the journal reads it back)."""
    return next(fates_of(table.slice(pos, 1)))


def same_fate(a: Fate | None, b: Fate | None) -> bool:
    """Equal as the journal keeps them (no evidence and empty evidence alike)."""
    if a is None or b is None:
        return a is b
    return (a.row, a.person, a.disposition, a.reason, a.detail or "", a.next_open,
            a.evidence or None) == (b.row, b.person, b.disposition, b.reason, b.detail or "",
                                    b.next_open, b.evidence or None)


def counts_of(table: pa.Table) -> dict[str, int]:
    """Rows by disposition."""
    vc = pc.value_counts(table.column("disposition").combine_chunks())
    return {str(v["values"]): int(v["counts"]) for v in vc.to_pylist()}


def positions_in(rows: Iterable[int], where: RowPositions) -> dict[int, int]:
    """Row number -> plan position, for the rows the plan has."""
    out: dict[int, int] = {}
    for r in rows:
        pos = where.position(int(r))
        if pos is not None:
            out[int(r)] = pos
    return out


def by_disposition(table: pa.Table, positions: Mapping[int, int]) -> dict[int, str]:
    """The base's disposition at each of `positions` (row number -> position)."""
    col = table.column("disposition")
    return {row: str(col[pos].as_py()) for row, pos in positions.items()}
