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
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from campaign_dialer.store.errors import PlanNotKept
from campaign_dialer.store.plan_state import (
    CHUNK_ROWS,
    EncodedPlan,
    json_string_lists,
    plan_chunks,
    plan_from_chunks,
)

SCHEMA = """
CREATE TABLE plan_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE plan_chunks (first INTEGER PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE kept_reads (key TEXT PRIMARY KEY, data BLOB NOT NULL)
"""
CHUNK = CHUNK_ROWS


def plan_path(journal_path: Path) -> Path:
    """Where the plan of the campaign whose journal is `journal_path` is kept."""
    return journal_path.with_name(journal_path.name + ".plan")


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

    def reads(self) -> dict[str, bytes]:
        """The compliance inputs' reads kept with the plan (key -> bytes); none from a plan
        file made before they were kept, or one that cannot be read."""
        db = self._open()
        if db is None:
            return {}
        try:
            return {str(k): bytes(v) for k, v in db.execute("SELECT key, data FROM kept_reads")}
        except sqlite3.Error:
            return {}
        finally:
            db.close()

    def save(self, plan: EncodedPlan, reads: Mapping[str, bytes] | None = None) -> None:
        """Keep `plan` (replacing the one kept) and the reads its gate was built from;
        PlanNotKept when the file cannot be written."""
        tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
        try:
            self._save(plan, tmp, reads or {})
        except (sqlite3.Error, OSError) as e:
            try:
                tmp.unlink(missing_ok=True)
            except OSError:
                pass
            raise PlanNotKept(f"cannot keep the plan in {self.path}: {e}") from None

    def _save(self, plan: EncodedPlan, tmp: Path, reads: Mapping[str, bytes]) -> None:
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
            db.executemany("INSERT INTO plan_chunks VALUES (?, ?)", plan_chunks(plan, CHUNK))
            meta = {
                "fingerprint": plan.fingerprint, "rows": str(n),
                "zones": json.dumps(plan.zones), "verdicts": json.dumps(plan.verdicts),
                "evidence_keys": json.dumps(plan.evidence_keys),
                "evidence_values": json.dumps(plan.evidence_values),
            }
            db.executemany("INSERT INTO plan_meta VALUES (?, ?)", meta.items())
            db.executemany("INSERT INTO kept_reads VALUES (?, ?)", reads.items())
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
        return plan_from_chunks(
            blobs, fingerprint=meta["fingerprint"], rows=int(meta["rows"]),
            zones=json.loads(meta["zones"]), verdicts=json.loads(meta["verdicts"]),
            evidence_keys=json.loads(meta["evidence_keys"]),
            evidence_values=json_string_lists(meta.pop("evidence_values")),
        )

    def share_contacts(self, path: Path, fingerprint: str) -> None:
        """The kept contacts are a file beside the plan already: nothing to share."""

    def fetch_contacts(self, path: Path, fingerprint: str) -> bool:
        return False

    def close(self) -> None:
        """Nothing held open between calls."""
