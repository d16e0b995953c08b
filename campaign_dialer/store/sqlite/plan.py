"""The stored plan on SQLite: a file beside the campaign's journal (`<journal>.plan`).

A file of its own, replaced whole (written beside it, then renamed over it): a reader sees
the old plan or the new one, a crash while planning leaves the old one (or none), and the
journal's own schema is untouched. The rows are kept as columns, in chunks of `CHUNK` rows:
each chunk one Arrow IPC record batch (zstd), so a million rows are read back in a few
dozen blobs, not a million Python tuples (SQLite's driver makes an object per value). Per
row: the row number, the numbers, the int codes of the verdict, the zone and each evidence
key, next_open (ns, null when none); each evidence key's values are kept once (`values`).
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc

from campaign_dialer.store.errors import JournalWriteError
from campaign_dialer.store.plan_state import NO_TIME, EncodedPlan, text_array
from campaign_dialer.store.sqlite.base import write_problem

SCHEMA = """
CREATE TABLE plan_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE plan_chunks (first INTEGER PRIMARY KEY, data BLOB NOT NULL)
"""
CHUNK = 65_536
_OPTIONS = ipc.IpcWriteOptions(compression="zstd")


def plan_path(journal_path: Path) -> Path:
    """Where the plan of the campaign whose journal is `journal_path` is kept."""
    return journal_path.with_name(journal_path.name + ".plan")


def _blob(batch: pa.RecordBatch) -> bytes:
    sink = pa.BufferOutputStream()
    with ipc.new_stream(sink, batch.schema, options=_OPTIONS) as w:
        w.write_batch(batch)
    return bytes(sink.getvalue().to_pybytes())


def _unblob(data: bytes) -> pa.Table:
    return ipc.open_stream(pa.py_buffer(data)).read_all()


class SqlitePlanStore:
    """The plan of one campaign, in the file at `path` (see the module doc)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @contextmanager
    def planning(self) -> Iterator[None]:
        """SQLite: one run per campaign already (the run lock), nobody else plans."""
        yield

    def _open(self) -> sqlite3.Connection | None:
        if not self.path.exists():
            return None
        try:
            db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
            db.execute("SELECT 1 FROM plan_meta LIMIT 1")
        except sqlite3.Error:
            return None  # unreadable or half made: no plan, plan again
        return db

    def fingerprint(self) -> str | None:
        db = self._open()
        if db is None:
            return None
        try:
            r = db.execute("SELECT value FROM plan_meta WHERE key='fingerprint'").fetchone()
            return str(r[0]) if r else None
        finally:
            db.close()

    def save(self, plan: EncodedPlan) -> None:
        """Keep `plan` (see `PlanStore.save`); a disk that is full or read-only is the
        store's write error (74, 73), as the journal's would be."""
        tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
        try:
            self._save(plan, tmp)
        except BaseException as e:
            tmp.unlink(missing_ok=True)
            if isinstance(e, Exception) and write_problem(e):
                raise JournalWriteError(self.path, e) from None
            raise

    def _save(self, plan: EncodedPlan, tmp: Path) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp.unlink(missing_ok=True)
        os.close(os.open(tmp, os.O_RDWR | os.O_CREAT, 0o600))  # numbers: the owner's only
        db = sqlite3.connect(tmp, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=OFF")  # a new file: all of it or nothing (rename)
            db.execute("PRAGMA synchronous=OFF")
            db.execute("BEGIN")
            for stmt in SCHEMA.split(";"):
                db.execute(stmt)
            n = len(plan)
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
            db.executemany(
                "INSERT INTO plan_chunks VALUES (?, ?)",
                ((first, _blob(table.slice(first, CHUNK).combine_chunks().to_batches()[0]))
                 for first in range(0, n, CHUNK)),
            )
            meta = {
                "fingerprint": plan.fingerprint, "rows": str(n),
                "zones": json.dumps(plan.zones), "verdicts": json.dumps(plan.verdicts),
                "evidence_keys": json.dumps(plan.evidence_keys),
                "evidence_values": json.dumps(plan.evidence_values),
            }
            db.executemany("INSERT INTO plan_meta VALUES (?, ?)", meta.items())
            db.execute("COMMIT")
        except BaseException:
            db.close()
            tmp.unlink(missing_ok=True)
            raise
        db.close()
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    def load(self) -> EncodedPlan | None:
        db = self._open()
        if db is None:
            return None
        try:
            meta = dict(db.execute("SELECT key, value FROM plan_meta").fetchall())
            blobs = [b for (b,) in db.execute("SELECT data FROM plan_chunks ORDER BY first")]
        except sqlite3.Error:
            return None  # unreadable: no plan, plan again
        finally:
            db.close()
        keys: list[str] = json.loads(meta["evidence_keys"])
        n = int(meta["rows"])
        if blobs:
            try:
                t = pa.concat_tables([_unblob(b) for b in blobs])
            except (pa.ArrowInvalid, OSError):
                return None  # a damaged chunk: no plan, plan again
        else:
            t = pa.table({"row": pa.array([], pa.int64()), "phone": pa.nulls(0, pa.large_string()),
                          "cid": pa.nulls(0, pa.large_string()),
                          "others": pa.nulls(0, pa.large_string()),
                          "zone": pa.array([], pa.int32()), "verdict": pa.array([], pa.int32()),
                          "next_open": pa.array([], pa.int64()),
                          **{f"e{j}": pa.array([], pa.int32()) for j in range(len(keys))}})
        if t.num_rows != n:
            return None  # not the plan its meta describes: no plan, plan again

        def ints(name: str, none: int, dtype: type[np.integer]) -> np.ndarray:
            """One numpy copy of the column, its own type, nulls as `none`."""
            col = t[name]
            if col.null_count:
                col = col.fill_null(none)
            return np.asarray(col.to_numpy(), dtype=dtype)

        return EncodedPlan(
            fingerprint=meta["fingerprint"], row=ints("row", 0, np.int64),
            phone=text_array(t["phone"]), cid=text_array(t["cid"]),
            others=text_array(t["others"]),
            zone=ints("zone", 0, np.int32), zones=json.loads(meta["zones"]),
            verdict=ints("verdict", 0, np.int32),
            verdicts=[tuple(v) for v in json.loads(meta["verdicts"])],  # type: ignore[misc]
            evidence_keys=keys,
            evidence=[ints(f"e{j}", -1, np.int32) for j in range(len(keys))],
            evidence_values=json.loads(meta["evidence_values"]),
            next_open=ints("next_open", NO_TIME, np.int64),
        )

    def close(self) -> None:
        """Nothing held open between calls."""
