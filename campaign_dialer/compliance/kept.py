"""Compliance inputs read once per content: a DNC list's numbers and a consent ledger's
events, as their readers made them, kept as bytes keyed by what they were made from.

A resumed run of a million-row campaign read 1M DNC numbers and 500k consent events again
at every start (2-3 s before its first call) although the files had not changed since the
plan was kept. A read kept here is used only for the same bytes: its key is a digest of the
file's content (read now, not a size or a time), the reader's settings (region, encoding)
and this package's own code (`contacts` and `compliance`, whose reading it is), so a file
changed by a byte, another setting or another version of the dialer reads the file again.
The gate still takes the file's stamp before asking (a change after that is read again by
`reloaded`, as before), and a file its reader refuses is never kept: it is refused again.

Pure, like the rest of the package: `KeptReads` turns files into reads and reads into
bytes; the store keeps the bytes (with the plan), the planner hands them over.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.ipc as ipc

from campaign_dialer.compliance.consent import ConsentEvents, read_consent_events
from campaign_dialer.compliance.dnc import read_dnc_ints

FORMAT = "kept-read/1"
_IPC = ipc.IpcWriteOptions(compression="zstd")


class DncRead(NamedTuple):
    """One DNC file as `DncList` reads it: its numbers (`e164_ints` keys, file order), the
    cells it could not read, and its warnings."""

    numbers: np.ndarray
    unreadable: pd.DataFrame
    warnings: list[str]


class ConsentRead(NamedTuple):
    """One consent ledger as `ConsentLedger` reads it: the events by rank, the phone cells
    it could not read, and its warnings."""

    events: ConsentEvents
    unreadable: pd.DataFrame
    warnings: list[str]


def read_dnc(path: Path, region: str, encoding: str | None) -> DncRead:
    """A DNC file read from the file itself."""
    warnings: list[str] = []
    numbers, unreadable = read_dnc_ints(path, region, encoding, warnings)
    return DncRead(numbers, unreadable, warnings)


def read_consent(path: Path, region: str, encoding: str | None) -> ConsentRead:
    """A consent ledger read from the file itself."""
    events, unreadable, warnings = read_consent_events(path, region, encoding)
    return ConsentRead(events, unreadable, warnings)


# -- bytes ---------------------------------------------------------------------------------


def _table_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with ipc.new_stream(sink, table.schema, options=_IPC) as w:
        w.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def _table_of(data: bytes) -> pa.Table:
    return ipc.open_stream(pa.py_buffer(data)).read_all()


def _frame_bytes(df: pd.DataFrame) -> bytes:
    """A frame with its dtypes (arrow's pandas metadata), read back equal (`_frame_of`)."""
    return _table_bytes(pa.Table.from_pandas(df, preserve_index=False))


def _frame_of(data: bytes) -> pd.DataFrame:
    return _table_of(data).to_pandas()


def _array_bytes(arr: pa.Array) -> bytes:
    return _table_bytes(pa.table({"a": arr}))


def _array_of(data: bytes) -> pa.Array:
    col = _table_of(data).column("a")
    return col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)


def pack(kind: str, parts: Mapping[str, bytes], warnings: list[str]) -> bytes:
    """Parts (name -> bytes) and warnings in one blob: a JSON header line, then the parts."""
    head = {"format": FORMAT, "kind": kind, "warnings": warnings,
            "parts": [[name, len(b)] for name, b in parts.items()]}
    return json.dumps(head).encode() + b"\n" + b"".join(parts.values())


def unpack(data: bytes, kind: str) -> tuple[dict[str, bytes], list[str]]:
    """`pack` read back; ValueError when the blob is not one of `kind`."""
    end = data.index(b"\n")
    head = json.loads(data[:end])
    if head.get("format") != FORMAT or head.get("kind") != kind:
        raise ValueError(f"not a kept {kind} read")
    parts: dict[str, bytes] = {}
    at = end + 1
    for name, size in head["parts"]:
        parts[name] = data[at: at + size]
        at += size
    if at != len(data):
        raise ValueError("a kept read of the wrong length")
    return parts, list(head["warnings"])


def dnc_bytes(read: DncRead) -> bytes:
    return pack("dnc", {
        "numbers": _array_bytes(pa.array(read.numbers, type=pa.int64())),
        "unreadable": _frame_bytes(read.unreadable),
    }, read.warnings)


def dnc_of(data: bytes) -> DncRead:
    parts, warnings = unpack(data, "dnc")
    numbers = np.asarray(_array_of(parts["numbers"]).to_numpy(zero_copy_only=False),
                         dtype=np.int64)
    return DncRead(numbers.copy(), _frame_of(parts["unreadable"]), warnings)


_EVENT_ARRAYS = ("row", "revoke", "event_ns", "expires_ns", "phone_key")


def consent_bytes(read: ConsentRead) -> bytes:
    ev = read.events
    parts = {f"np:{name}": _array_bytes(pa.array(getattr(ev, name)))
             for name in _EVENT_ARRAYS}
    parts.update({f"text:{name}": _array_bytes(arr) for name, arr in ev.texts.items()})
    parts["cid_key"] = _array_bytes(ev.cid_key)
    parts["unreadable"] = _frame_bytes(read.unreadable)
    return pack("consent", parts, read.warnings)


def consent_of(data: bytes) -> ConsentRead:
    parts, warnings = unpack(data, "consent")
    arrays = {
        name: np.asarray(_array_of(parts[f"np:{name}"]).to_numpy(zero_copy_only=False)).copy()
        for name in _EVENT_ARRAYS
    }
    texts = {name.removeprefix("text:"): _array_of(b)
             for name, b in parts.items() if name.startswith("text:")}
    events = ConsentEvents(**arrays, texts=texts, cid_key=_array_of(parts["cid_key"]))
    return ConsentRead(events, _frame_of(parts["unreadable"]), warnings)


# -- keys ----------------------------------------------------------------------------------


def sources_digest(names: tuple[str, ...]) -> str:
    """A fingerprint of some of the dialer's own code: the bytes of the named modules and
    packages of `campaign_dialer` (a package: every .py file under it)."""
    h = hashlib.blake2b(digest_size=16)
    root = Path(__file__).parents[1]
    for name in names:
        path = root / name
        for f in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            h.update(str(f.relative_to(root)).encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


@functools.cache
def code_digest() -> str:
    """The reading code's fingerprint: the bytes of `contacts` and `compliance`."""
    return sources_digest(("contacts", "compliance"))


def content_digest(path: Path) -> str:
    """The file's bytes, digested now (OSError when it cannot be read)."""
    with Path(path).open("rb") as f:
        return hashlib.file_digest(f, "blake2b").hexdigest()[:40]


def read_key(kind: str, path: Path, region: str, encoding: str | None) -> str:
    """What a read of `path` is made of: its content, the reader and its settings."""
    parts = [FORMAT, kind, code_digest(), region, encoding or "", content_digest(path)]
    return hashlib.blake2b("\0".join(parts).encode(), digest_size=20).hexdigest()


class KeptReads:
    """The reads a gate asks for, from `found` (kept earlier, by key) when the file's content
    is the same, else from the file; every read asked for is in `kept()` afterwards (key ->
    bytes), for the store to keep beside the plan (a read from a file is made bytes only
    then: off the path to the first call). The gate's two readers (DNC lists, consent) use
    one each from their own threads: each key is written by the thread reading that file."""

    def __init__(self, found: Mapping[str, bytes] | None = None) -> None:
        self.found: Mapping[str, bytes] = found or {}
        self.used: dict[str, Callable[[], bytes]] = {}
        self.hits = 0

    def kept(self) -> dict[str, bytes]:
        """Every read asked for, as bytes (key -> bytes)."""
        return {key: make() for key, make in list(self.used.items())}

    def _read(self, kind: str, path: Path, region: str, encoding: str | None,
              from_file: Callable[[Path, str, str | None], Any],
              to_bytes: Callable[[Any], bytes], of_bytes: Callable[[bytes], Any]) -> Any:
        try:
            key = read_key(kind, path, region, encoding)
        except OSError:
            return from_file(path, region, encoding)  # the reader says what is wrong
        data = self.found.get(key)
        if data is not None:
            try:
                out = of_bytes(data)
            except (ValueError, KeyError, TypeError, pa.ArrowException):
                out = None  # damaged: read the file instead
            if out is not None:
                self.used[key] = functools.partial(bytes, data)
                self.hits += 1
                return out
        out = from_file(path, region, encoding)
        self.used[key] = functools.partial(to_bytes, out)
        return out

    def dnc(self, region: str, encoding: str | None) -> Callable[[Path], DncRead]:
        """How `DncList.load` reads each list (`read`)."""
        def read(path: Path) -> DncRead:
            out: DncRead = self._read("dnc", path, region, encoding, read_dnc, dnc_bytes,
                                      dnc_of)
            return out
        return read

    def consent(self, region: str, encoding: str | None) -> Callable[[Path], ConsentRead]:
        """How `ConsentLedger.load` reads the ledger (`read`)."""
        def read(path: Path) -> ConsentRead:
            out: ConsentRead = self._read("consent", path, region, encoding, read_consent,
                                          consent_bytes, consent_of)
            return out
        return read
