"""Arrow tables kept as chunks: zstd-compressed Arrow IPC record batches of at most
`CHUNK_ROWS` rows each, the shape both backends keep the stored plan and the fate base in.

A million rows are a few dozen blobs: a backend writes and reads them as bytes (SQLite
BLOB, PostgreSQL bytea), never a Python object per row (a driver makes one per value).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pyarrow as pa
import pyarrow.ipc as ipc

CHUNK_ROWS = 65_536  # rows per kept chunk
IPC_OPTIONS = ipc.IpcWriteOptions(compression="zstd")


class DamagedChunks(ValueError):
    """Blobs that do not read back as Arrow record batches of one schema."""


def table_chunks(table: pa.Table, chunk: int = CHUNK_ROWS) -> Iterator[tuple[int, bytes]]:
    """(first row's position, bytes) per chunk of `table`: one Arrow IPC stream (zstd) of
    one record batch each. An empty table gives one empty chunk (its schema is kept)."""
    for first in range(0, max(table.num_rows, 1), chunk):
        yield first, ipc_bytes(table.slice(first, chunk))


def ipc_bytes(table: pa.Table) -> bytes:
    """`table` (a chunk's worth of rows) as one Arrow IPC stream of one zstd record batch."""
    part = table.combine_chunks()
    batches = part.to_batches()
    batch = batches[0] if batches else pa.RecordBatch.from_pylist([], schema=part.schema)
    sink = pa.BufferOutputStream()
    with ipc.new_stream(sink, batch.schema, options=IPC_OPTIONS) as w:
        w.write_batch(batch)
    return bytes(sink.getvalue().to_pybytes())


def table_from_chunks(blobs: Sequence[bytes]) -> pa.Table:
    """`table_chunks` read back, in order (DamagedChunks when they cannot be; an empty list
    is an error too: the schema is in the chunks)."""
    if not blobs:
        raise DamagedChunks("no chunks")
    try:
        return pa.concat_tables(
            [ipc.open_stream(pa.py_buffer(b)).read_all() for b in blobs])
    except (pa.ArrowInvalid, OSError) as e:
        raise DamagedChunks(str(e)) from None
