"""The stored plan on SQLite: a file beside the campaign's journal (`<journal>.plan`).

A file of its own, replaced whole (written beside it, then renamed over it): a reader sees
the old plan or the new one, a crash while planning leaves the old one (or none), and the
journal's own schema is untouched. Per row: the position (the rowid), the row number as its
distance from the position (a byte), the number as an integer (E.164 digits; anything else as
text), small integer codes for the zone, the verdict and each evidence key (its values once,
in `plan_values`), and `next_open` in whole seconds (a sub-second remainder in a column of
its own, NULL when none). Codes 0 and 1 and NULLs take no byte beyond the record's header.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from campaign_dialer.store.errors import PlanNotKept
from campaign_dialer.store.plan_state import NO_TIME, EncodedPlan, text_array

SCHEMA = """
CREATE TABLE plan_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE plan_values (kind INTEGER, code INTEGER, value TEXT NOT NULL,
                          PRIMARY KEY (kind, code)) WITHOUT ROWID;
CREATE TABLE plan_rows (
    ord INTEGER PRIMARY KEY,
    gap INTEGER NOT NULL,
    phone,
    verdict INTEGER NOT NULL,
    zone INTEGER,
    next_open INTEGER,
    next_open_ns INTEGER,
    cid TEXT,
    others TEXT{evidence}
)
"""
_FIXED = 9  # plan_rows' columns before the evidence codes (e0, e1, ...), ord included
_E164 = r"^\+[1-9][0-9]{1,17}$"
_NS = 1_000_000_000
_CHUNK = 50_000


def plan_path(journal_path: Path) -> Path:
    """Where the plan of the campaign whose journal is `journal_path` is kept."""
    return journal_path.with_name(journal_path.name + ".plan")


def _phones(phone: pa.Array) -> list[Any]:
    """E.164 numbers as integers (their digits: lossless, no E.164 number starts with 0),
    anything else as it is (text or None)."""
    is_e164 = pc.fill_null(pc.match_substring_regex(phone, _E164), False)
    digits = pc.utf8_slice_codeunits(phone, 1)
    as_int = pc.if_else(is_e164, pc.cast(pc.if_else(is_e164, digits, "0"), pa.int64()), None)
    ints, texts, flags = as_int.to_pylist(), phone.to_pylist(), is_e164.to_pylist()
    return [i if f else t for i, t, f in zip(ints, texts, flags, strict=True)]


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
        """Keep `plan` (replacing the one kept); PlanNotKept when the file cannot be written."""
        tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
        try:
            self._save(plan, tmp)
        except (sqlite3.Error, OSError) as e:
            try:
                tmp.unlink(missing_ok=True)
            except OSError:
                pass
            raise PlanNotKept(f"cannot keep the plan in {self.path}: {e}") from None

    def _save(self, plan: EncodedPlan, tmp: Path) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp.unlink(missing_ok=True)
        os.close(os.open(tmp, os.O_RDWR | os.O_CREAT, 0o600))  # numbers: the owner's only
        db = sqlite3.connect(tmp, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=OFF")  # a new file: all of it or nothing (rename)
            db.execute("PRAGMA synchronous=OFF")
            db.execute("BEGIN")
            k = len(plan.evidence_keys)
            schema = SCHEMA.format(evidence="".join(f",\n    e{j} INTEGER" for j in range(k)))
            for stmt in schema.split(";"):
                db.execute(stmt)
            n = len(plan)
            nxt = np.asarray(plan.next_open, dtype=np.int64)
            has = nxt != NO_TIME
            secs = np.where(has, nxt // _NS, 0)
            frac = np.where(has, nxt % _NS, 0)
            gap = np.asarray(plan.row, dtype=np.int64) - np.arange(n, dtype=np.int64)
            cols = (
                gap.tolist(), _phones(text_array(plan.phone)),
                np.asarray(plan.verdict).tolist(), np.asarray(plan.zone).tolist(),
                [int(s) if h else None for s, h in zip(secs.tolist(), has.tolist(), strict=True)],
                [int(f) if f else None for f in frac.tolist()],
                text_array(plan.cid).to_pylist(), text_array(plan.others).to_pylist(),
                *([c if c >= 0 else None for c in np.asarray(codes).tolist()]
                  for codes in plan.evidence),
            )
            db.executemany(
                f"INSERT INTO plan_rows VALUES ({','.join('?' * (_FIXED + k))})",
                zip(range(n), *cols, strict=True),
            )
            db.executemany(
                "INSERT INTO plan_values VALUES (?, ?, ?)",
                ((j, code, v) for j, values in enumerate(plan.evidence_values)
                 for code, v in enumerate(values)),
            )
            meta = {
                "fingerprint": plan.fingerprint, "rows": str(n),
                "zones": json.dumps(plan.zones), "verdicts": json.dumps(plan.verdicts),
                "evidence_keys": json.dumps(plan.evidence_keys),
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
            keys: list[str] = json.loads(meta["evidence_keys"])
            values: list[list[str]] = [[] for _ in keys]
            for kind, v in db.execute("SELECT kind, value FROM plan_values ORDER BY kind, code"):
                values[kind].append(v)
            cur = db.execute(
                "SELECT ord + gap, CASE typeof(phone) WHEN 'integer' THEN '+' || phone "
                "ELSE phone END, verdict, zone, next_open, next_open_ns, cid, others"
                + "".join(f", e{j}" for j in range(len(keys)))
                + " FROM plan_rows ORDER BY ord"
            )
            parts: list[list[list[Any]]] = [[] for _ in range(8 + len(keys))]
            while chunk := cur.fetchmany(_CHUNK):
                for k, column in enumerate(zip(*chunk, strict=True)):
                    parts[k].append(list(column))
        finally:
            db.close()

        def col(k: int) -> list[Any]:
            return [v for p in parts[k] for v in p]

        secs = np.array([NO_TIME if s is None else s for s in col(4)], dtype=np.int64)
        frac = np.array([f or 0 for f in col(5)], dtype=np.int64)
        next_open = np.where(secs == NO_TIME, NO_TIME, secs * _NS + frac)
        return EncodedPlan(
            fingerprint=meta["fingerprint"],
            row=np.array(col(0), dtype=np.int64),
            phone=text_array(col(1)), cid=text_array(col(6)), others=text_array(col(7)),
            zone=np.array(col(3), dtype=np.int32), zones=json.loads(meta["zones"]),
            verdict=np.array(col(2), dtype=np.int32),
            verdicts=[tuple(v) for v in json.loads(meta["verdicts"])],  # type: ignore[misc]
            evidence_keys=keys,
            evidence=[np.array([-1 if c is None else c for c in col(8 + j)], dtype=np.int32)
                      for j in range(len(keys))],
            evidence_values=values,
            next_open=next_open,
        )

    def close(self) -> None:
        """Nothing held open between calls."""
