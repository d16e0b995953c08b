"""A stored plan: the verdicts of one input version, kept so a run does not plan twice.

A plan is keyed by its inputs' fingerprint (`planning.plan_fingerprint`): a run whose
inputs have not changed reads the plan back instead of making it again; a changed input is
planned again (and the gate still checks every row at the moment of dialing).

What is kept is compact per-row state, as columns (`EncodedPlan`): the row number, the
numbers dialing needs, and small integer codes into per-plan dictionaries for what repeats
(a verdict: disposition, reason, detail; the evidence; the zone hint). No JSON or Python
object per row: a backend writes and reads the columns (`store.sqlite.plan`,
`store.postgres.plan`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.json as pajson

from campaign_dialer.store.chunks import CHUNK_ROWS, DamagedChunks, table_chunks, table_from_chunks

# next_open "none" in the ns column (as `compliance.holds.NAT`)
NO_TIME = np.iinfo(np.int64).min


@dataclass
class EncodedPlan:
    """One plan's rows as columns, in plan order (`ord` is the position).

    - `row`: the contacts file's row numbers (int64);
    - `phone`, `cid`, `others`: strings or nulls (arrow arrays, large_string);
    - `zone`, `verdict`: int32 codes into `zones`, `verdicts`;
    - `evidence`: per evidence key (`evidence_keys`), an int32 code column into that key's
      `evidence_values` (-1: none); a key's values repeat (a list's name, a zone) or are
      one per person (a consent event's time), never one JSON object per row;
    - `next_open`: ns since the epoch, `NO_TIME` when none (int64).
    """

    fingerprint: str
    row: np.ndarray
    phone: pa.Array
    cid: pa.Array
    others: pa.Array
    zone: np.ndarray
    zones: list[str | None]
    verdict: np.ndarray
    verdicts: list[tuple[str, str | None, str | None]]  # disposition, reason, detail
    evidence_keys: list[str]
    evidence: list[np.ndarray]
    # per key: its values, a list of str (as made) or an arrow string array (as read back)
    evidence_values: list[Any]
    next_open: np.ndarray

    def __len__(self) -> int:
        return len(self.row)


class PlanStore(Protocol):
    """Where a campaign's plan is kept (one plan per campaign: a new one replaces it)."""

    def planning(self) -> AbstractContextManager[None]:
        """Held while a plan is looked for and, if none is current, made and saved: on
        PostgreSQL only one process of the campaign is inside at a time."""
        ...

    def fingerprint(self) -> str | None:
        """The fingerprint of the plan kept, None when none is (or it is incomplete)."""
        ...

    def load(self) -> EncodedPlan | None:
        """The plan kept, None when none is."""
        ...

    def save(self, plan: EncodedPlan, reads: Mapping[str, bytes] | None = None) -> None:
        """Keep `plan` in place of the one kept (atomically: a reader sees one or the
        other, a crash leaves the old one or none), with the compliance inputs' reads its
        gate was built from (`compliance.kept`: key -> bytes), where the backend keeps them."""
        ...

    def reads(self) -> dict[str, bytes]:
        """The reads kept with the plan (key -> bytes), empty when none are."""
        ...

    def share_contacts(self, path: Path, fingerprint: str) -> None:
        """Where other machines run the campaign (PostgreSQL): keep the file of kept
        contacts at `path` (`store.kept_contacts`) for them. Elsewhere nothing to do."""
        ...

    def fetch_contacts(self, path: Path, fingerprint: str) -> bool:
        """The kept contacts `share_contacts` kept for the plan `fingerprint`, written to
        `path`; False when there are none (always, where nothing is shared)."""
        ...

    def close(self) -> None: ...


def text_array(values: Any) -> pa.Array:
    """Strings or nulls as one large_string arrow array."""
    arr = pa.array(values, type=pa.large_string()) if not isinstance(
        values, pa.Array | pa.ChunkedArray) else values
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if arr.type != pa.large_string():
        arr = arr.cast(pa.large_string())
    return arr


# -- the rows as chunks: what a backend keeps ----------------------------------------------



def plan_chunks(plan: EncodedPlan, chunk: int = CHUNK_ROWS) -> Iterator[tuple[int, bytes]]:
    """The plan's rows as (first row's position, bytes): each chunk one Arrow IPC record
    batch (zstd) of its columns (row, phone, cid, others, zone, verdict, next_open (null:
    none), e0.. (null: none)). A backend keeps the blobs; read back with `plan_from_chunks`
    (no Python object per row either way: a driver makes one per value it returns)."""
    nxt = np.asarray(plan.next_open, dtype=np.int64)
    table = pa.table({
        "row": pa.array(np.asarray(plan.row, dtype=np.int64)),
        "phone": text_array(plan.phone), "cid": text_array(plan.cid),
        "others": text_array(plan.others),
        "zone": pa.array(np.asarray(plan.zone, dtype=np.int32)),
        "verdict": pa.array(np.asarray(plan.verdict, dtype=np.int32)),
        "next_open": pa.array(nxt, mask=nxt == NO_TIME),
        **{f"e{j}": pa.array(np.asarray(c, dtype=np.int32), mask=np.asarray(c) < 0)
           for j, c in enumerate(plan.evidence)},
    })
    if len(plan):
        yield from table_chunks(table, chunk)


def plan_from_chunks(
    blobs: list[bytes], *, fingerprint: str, rows: int, zones: list[str | None],
    verdicts: list[Any], evidence_keys: list[str], evidence_values: list[Any],
) -> EncodedPlan | None:
    """`plan_chunks` read back (the dictionaries from the plan's own record); None when the
    blobs are damaged or hold another number of rows than `rows` (no plan: plan again).

    Chunk by chunk into columns made once for every row: `blobs` is consumed (emptied) as
    they are read, so neither the compressed chunks nor a decoded copy of the whole plan
    stays beside the columns (a resumed run's peak)."""
    k = len(evidence_keys)
    ints: dict[str, np.ndarray] = {
        "row": np.zeros(rows, dtype=np.int64), "zone": np.zeros(rows, dtype=np.int32),
        "verdict": np.zeros(rows, dtype=np.int32),
        "next_open": np.full(rows, NO_TIME, dtype=np.int64),
        **{f"e{j}": np.full(rows, -1, dtype=np.int32) for j in range(k)},
    }
    nulls = {"row": 0, "zone": 0, "verdict": 0, "next_open": NO_TIME,
             **{f"e{j}": -1 for j in range(k)}}
    texts: dict[str, list[pa.Array]] = {"phone": [], "cid": [], "others": []}
    at = 0
    blobs.reverse()
    while blobs:
        blob = blobs.pop()
        try:
            batches = table_from_chunks([blob]).to_batches()
        except DamagedChunks:
            return None
        del blob
        for batch in batches:
            m = batch.num_rows
            if at + m > rows:
                return None
            try:
                for name, out in ints.items():
                    col = batch.column(name)
                    if col.null_count:
                        col = col.fill_null(nulls[name])
                    out[at:at + m] = col.to_numpy(zero_copy_only=False)
                for name, parts in texts.items():
                    parts.append(text_array(batch.column(name)))
            except KeyError:  # a chunk without a column the plan's record names
                return None
            at += m
    if at != rows:
        return None
    text = pa.large_string()
    plan = EncodedPlan(
        fingerprint=fingerprint, row=ints["row"],
        **{name: pa.concat_arrays(parts) if parts else pa.nulls(0, text)
           for name, parts in texts.items()},
        zone=ints["zone"], zones=zones,
        verdict=ints["verdict"], verdicts=[tuple(v) for v in verdicts],
        evidence_keys=evidence_keys,
        evidence=[ints[f"e{j}"] for j in range(k)],
        evidence_values=evidence_values,
        next_open=ints["next_open"],
    )
    del texts, batches
    pa.default_memory_pool().release_unused()  # the chunks' decoded buffers, freed above
    return plan


def json_string_lists(text: str) -> list[pa.Array]:
    """A JSON list of lists of strings (a plan's evidence values) as arrow string arrays,
    parsed by arrow: a key's values are one per consent event a row quotes, a few hundred
    thousand strings that would otherwise each be a Python object."""
    data = b'{"v":' + text.encode() + b"}"
    table = pajson.read_json(
        pa.py_buffer(data), read_options=pajson.ReadOptions(block_size=len(data) + 1)
    )
    del data
    lists = table.column("v").combine_chunks()[0].values
    return [lists[i].values.cast(pa.large_string()) for i in range(len(lists))]
