"""The contacts a plan was made from, kept beside it for the results (`<journal>.contacts`).

A resumed run of a million-row campaign writes results.csv for every input row, but dials a
few hundred: reading the contacts CSV again for it (parsing, normalising every number) cost
its peak ~400 MB beside the engine and seconds after the last call. The columns the results
need are kept instead, once, when the plan is kept: an Arrow IPC file (zstd), record batches
of `KEPT_BATCH_ROWS` rows, tagged with the plan's fingerprint. It is read back a range of
rows at a time (only the batches a range touches are read and decoded), so the results
are written with a slice of the contacts in memory, never the whole file.

A file whose fingerprint is not the plan's, or that cannot be read, is not used: the caller
reads the contacts CSV as before. Written beside, then renamed over: a reader sees a whole
file or none. The numbers in it are the owner's only (0600), as the journal's.
"""

from __future__ import annotations

import bisect
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.ipc as ipc

from campaign_dialer.store.chunks import IPC_OPTIONS

KEPT_BATCH_ROWS = 100_000  # rows per record batch of the file
_FINGERPRINT = b"campaign_dialer.fingerprint"
_META = b"campaign_dialer.meta"


def contacts_path(journal_path: Path) -> Path:
    """Where the kept contacts of the campaign whose journal is `journal_path` are."""
    return journal_path.with_name(journal_path.name + ".contacts")


def save_contacts(path: Path, fingerprint: str, schema: pa.Schema, rows: int,
                  batch_of: Callable[[int, int], pa.RecordBatch], meta: dict[str, Any]) -> None:
    """Keep `rows` rows at `path` for the plan `fingerprint`: `batch_of(lo, hi)` gives rows
    lo..hi (a record batch of `schema`), asked for `KEPT_BATCH_ROWS` rows at a time; `meta`
    (JSON) is kept beside them. OSError or an ArrowException when the file cannot be
    written (nothing is left behind)."""
    tagged = schema.with_metadata({
        **(schema.metadata or {}), _FINGERPRINT: fingerprint.encode(),
        _META: json.dumps({**meta, "rows": rows, "batch_rows": KEPT_BATCH_ROWS}).encode()})
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.unlink(missing_ok=True)
        os.close(os.open(tmp, os.O_RDWR | os.O_CREAT, 0o600))
        with pa.OSFile(str(tmp), "wb") as sink, ipc.new_file(sink, tagged,
                                                             options=IPC_OPTIONS) as w:
            for lo in range(0, rows, KEPT_BATCH_ROWS):
                hi = min(rows, lo + KEPT_BATCH_ROWS)
                batch = batch_of(lo, hi)
                if batch.num_rows != hi - lo:
                    raise ValueError(f"a batch of {batch.num_rows} rows for rows {lo}..{hi}")
                w.write_batch(batch.replace_schema_metadata(tagged.metadata))
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


class KeptContacts:
    """Kept contacts read back a range of rows at a time (see the module doc)."""

    def __init__(self, reader: ipc.RecordBatchFileReader, meta: dict[str, Any]) -> None:
        self._reader = reader
        self.meta = meta
        self.schema: pa.Schema = reader.schema
        rows, self.batch_rows = int(meta["rows"]), int(meta["batch_rows"])
        self._starts = [*range(0, rows, self.batch_rows), rows]
        self._cached: tuple[int, pa.RecordBatch] | None = None

    @classmethod
    def open(cls, path: Path, fingerprint: str) -> KeptContacts | None:
        """The contacts kept at `path` for the plan `fingerprint`; None when there are none,
        they are another plan's, or they cannot be read."""
        try:
            # read, not memory-mapped: mapped pages stay resident (and in the peak RSS) as
            # the batches are read, the whole file by the end
            source = pa.OSFile(str(path), "rb")
            reader = ipc.open_file(source)
            md = reader.schema.metadata or {}
            if md.get(_FINGERPRINT) != fingerprint.encode():
                return None
            meta = json.loads(md.get(_META, b"{}"))
            rows, size = int(meta["rows"]), int(meta["batch_rows"])
            if size < 1 or rows < 0 or reader.num_record_batches != -(-rows // size):
                return None
            return cls(reader, meta)
        except (OSError, pa.ArrowException, ValueError, KeyError, TypeError):
            return None

    @property
    def num_rows(self) -> int:
        return self._starts[-1]

    def _batch(self, i: int) -> pa.RecordBatch:
        if self._cached is None or self._cached[0] != i:
            self._cached = (i, self._reader.get_batch(i))
        return self._cached[1]

    def read(self, lo: int, hi: int, columns: list[str] | None = None) -> pa.Table:
        """Rows lo..hi (positions) as a table, only `columns` when given."""
        hi = min(hi, self.num_rows)
        parts: list[pa.RecordBatch] = []
        i = max(0, bisect.bisect_right(self._starts, lo) - 1)
        while i < len(self._starts) - 1 and self._starts[i] < hi:
            start = self._starts[i]
            batch = self._batch(i)
            a, b = max(lo - start, 0), min(hi - start, batch.num_rows)
            part = batch.slice(a, b - a)
            if columns is not None:
                part = part.select(columns)
            parts.append(part)
            i += 1
        schema = self.schema if columns is None else pa.schema(
            [self.schema.field(c) for c in columns], metadata=self.schema.metadata)
        if not parts:
            return schema.empty_table()
        return pa.Table.from_batches(parts).replace_schema_metadata(schema.metadata)
