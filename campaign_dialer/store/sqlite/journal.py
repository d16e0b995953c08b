"""The journal in SQLite: every fact about a campaign, on disk before it matters.

One WAL file under the output dir. The intent of a call (person, attempt, idempotency key,
body) is committed before its POST is sent and the response when it arrives, so a crash at
any instant leaves either nothing or a record the next run can resolve. The UNIQUE (person,
attempt) constraint makes a second call for the same attempt impossible to record, and so
impossible to send. Implements `store.interface.JournalStore`: the attempt log here, its
controls, telemetry and report reads in `controls`, `telemetry` and `reads`.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from campaign_dialer.log import scrub
from campaign_dialer.store.errors import DuplicateAttempt, JournalError, JournalWriteError
from campaign_dialer.store.fate_base import FateMerge, base_chunks, check_base
from campaign_dialer.store.model import (
    ATTEMPT_COLUMNS,
    FINAL,
    INTENT,
    Attempt,
    Fate,
)
from campaign_dialer.store.sqlite.base import Database, write_problem
from campaign_dialer.store.sqlite.controls import JournalControls
from campaign_dialer.store.sqlite.reads import JournalReads
from campaign_dialer.store.sqlite.schema import JOURNAL_MIGRATIONS as MIGRATIONS
from campaign_dialer.store.sqlite.schema import JOURNAL_SCHEMA as SCHEMA
from campaign_dialer.store.sqlite.schema import JOURNAL_VERSION as SCHEMA_VERSION
from campaign_dialer.store.sqlite.telemetry import JournalTelemetry
from campaign_dialer.store.transitions import AttemptTransitions


class Journal(AttemptTransitions, JournalControls, JournalTelemetry, JournalReads, FateMerge):
    """One campaign's journal. Safe to open from several processes (status, pause)."""

    def __init__(
        self, path: Path, campaign: str, *, create: bool = True,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self.path = Path(path)
        self._now = now
        if not create and not self.path.exists():
            raise JournalError(f"no journal for campaign {campaign!r} at {self.path}")
        try:
            self._d = Database(
                self.path, timeout=10.0, translate=lambda e: JournalWriteError(self.path, e)
            )
        except (OSError, sqlite3.Error) as e:
            raise self._open_error(e) from None
        self._db = self._d.db
        try:
            self._d.ensure_schema(
                what="journal", schema=SCHEMA, version=SCHEMA_VERSION, migrations=MIGRATIONS
            )
            with self._write():
                owner = self._get_meta("campaign")
                if owner is None:
                    self._set_meta("campaign", campaign)
                    self._set_meta("control", "active")
                    self._set_meta("created_at", self._ts())
                elif owner != campaign:
                    raise JournalError(
                        f"{self.path} belongs to campaign {owner!r}, not {campaign!r}"
                    )
        except (OSError, sqlite3.Error) as e:
            self._d.close()
            raise self._open_error(e) from None
        except BaseException:
            self._d.close()
            raise
        self.campaign = campaign
        # Called with an attempt's record after every change: the contact history follows.
        self.on_change: Callable[[dict[str, Any]], None] | None = None

    def twin(self) -> Journal:
        """The same journal for another thread of work (the webhook sink's): a connection
        of its own, on the wall clock."""
        return Journal(self.path, self.campaign)

    def _open_error(self, e: BaseException) -> JournalError:
        if write_problem(e) or isinstance(e, OSError):
            return JournalWriteError(self.path, e)
        return JournalError(
            f"{self.path}: cannot be read as a journal ({e}); it holds who was called: "
            "restore it from a backup, or move it aside and run again (the contact "
            "history rebuilds what it knows)"
        )


    # -- attempts ---------------------------------------------------------------------
    def record_intent(
        self,
        *,
        person: str,
        row: int,
        attempt: int,
        idem_key: str,
        body: dict[str, Any],
        evidence: dict[str, Any],
        run_id: int | None,
    ) -> Attempt:
        """Commit what we are about to send, before it is sent."""
        ts = self._ts()
        try:
            with self._write() as db:
                cur = db.execute(
                    "INSERT INTO attempts(person, row, attempt, idem_key, body, state, "
                    "intent_at, evidence, run_id, updated_at) VALUES(?,?,?,?,?,?,?,?,?,?)",
                    (person, row, attempt, idem_key, json.dumps(body, sort_keys=True), INTENT,
                     ts, json.dumps(evidence), run_id, ts),
                )
                aid = int(cur.lastrowid or 0)
        except sqlite3.IntegrityError as e:
            raise DuplicateAttempt(
                f"attempt {attempt} for row {row} is already in the journal"
            ) from e
        return self.attempt(aid)

    def attempt(self, attempt_id: int) -> Attempt:
        rows = self._read("SELECT * FROM attempts WHERE id=?", (attempt_id,))
        if not rows:
            raise JournalError(f"no attempt {attempt_id}")
        return Attempt.from_row(rows[0])

    def attempts(self, *, states: Sequence[str] | None = None) -> list[Attempt]:
        if states:
            marks = ",".join("?" * len(states))
            q = f"SELECT * FROM attempts WHERE state IN ({marks}) ORDER BY id"
            rows = self._read(q, tuple(states))
        else:
            rows = self._read("SELECT * FROM attempts ORDER BY id")
        return [Attempt.from_row(r) for r in rows]

    def attempts_for(self, person: str) -> list[Attempt]:
        rows = self._read("SELECT * FROM attempts WHERE person=? ORDER BY attempt", (person,))
        return [Attempt.from_row(r) for r in rows]

    def _update(self, attempt_id: int, **fields: Any) -> None:
        fields["updated_at"] = self._ts()
        if isinstance(fields.get("error"), str):
            fields["error"] = scrub(fields["error"])  # an API message may echo a secret
        cols = ", ".join(f"{k}=?" for k in fields)
        with self._write() as db:
            # The row as written comes back with the write (one statement, not a re-read).
            changed = db.execute(
                f"UPDATE attempts SET {cols} WHERE id=? RETURNING *",
                (*fields.values(), attempt_id),
            ).fetchall()
        if self.on_change is not None:
            if not changed:
                raise JournalError(f"no attempt {attempt_id}")
            self.on_change({k: changed[0][k] for k in changed[0].keys() if k != "id"})

    def attempt_record(self, attempt_id: int) -> dict[str, Any]:
        """An attempt as a plain record (every column but the id), for the contact history."""
        rows = self._read("SELECT * FROM attempts WHERE id=?", (attempt_id,))
        if not rows:
            raise JournalError(f"no attempt {attempt_id}")
        return {k: rows[0][k] for k in rows[0].keys() if k != "id"}

    def attempt_records(self) -> list[dict[str, Any]]:
        rows = self._read("SELECT * FROM attempts ORDER BY id")
        return [{k: r[k] for k in r.keys() if k != "id"} for r in rows]

    def import_attempts(self, records: Iterable[dict[str, Any]]) -> int:
        """Put back attempts the contact history knows and this journal lost; returns how many.

        A record whose key the journal already has is left alone.
        """
        cols = [c for c in ATTEMPT_COLUMNS if c != "id"]
        rows = []
        for rec in records:
            vals = {c: rec.get(c) for c in cols}
            for c in ("body", "evidence", "extra"):
                if vals[c] is not None and not isinstance(vals[c], str):
                    vals[c] = json.dumps(vals[c], sort_keys=True)
            vals["body"] = vals["body"] or "{}"
            vals["posts"] = vals["posts"] or 0
            vals["intent_at"] = vals["intent_at"] or self._ts()
            vals["updated_at"] = vals["updated_at"] or self._ts()
            vals["run_id"] = None
            rows.append(tuple(vals[c] for c in cols))
        if not rows:
            return 0
        marks = ",".join("?" * len(cols))
        with self._write() as db:
            before = db.total_changes
            db.executemany(
                f"INSERT OR IGNORE INTO attempts({','.join(cols)}) VALUES({marks})", rows
            )
            return db.total_changes - before

    def count_post(self, attempt_id: int) -> None:
        with self._write() as db:
            db.execute(
                "UPDATE attempts SET posts=posts+1, updated_at=? WHERE id=?",
                (self._ts(), attempt_id),
            )

    def record_final(
        self, attempt_id: int, *, status: str, outcome: str | None, ended_reason: str | None,
        ended_at: str | None, duration_seconds: float | None, recording_url: str | None,
        extra: dict[str, Any] | None = None, error: str | None = None,
        transcript: str | None = None, call_id: str | None = None,
    ) -> None:
        if transcript:
            # Before the final state: a crash in between leaves the call open, and the next
            # run writes the transcript again.
            with self._write() as db:
                db.execute(
                    "INSERT INTO transcripts(attempt_id, call_id, text) VALUES(?,?,?) "
                    "ON CONFLICT(attempt_id) DO UPDATE SET call_id=excluded.call_id, "
                    "text=excluded.text",
                    (attempt_id, call_id, transcript),
                )
        self._update(
            attempt_id, state=FINAL, status=status, outcome=outcome, ended_reason=ended_reason,
            ended_at=ended_at or self._ts(), duration_seconds=duration_seconds,
            recording_url=recording_url, extra=json.dumps(extra or {}), error=error,
        )

    # -- fates ------------------------------------------------------------------------
    def set_fates(self, fates: Iterable[Fate]) -> None:
        ts = self._ts()
        with self._write() as db:
            db.executemany(
                "INSERT INTO fates(row, person, disposition, reason, detail, next_open, "
                "evidence, updated_at) VALUES(?,?,?,?,?,?,?,?) ON CONFLICT(row) DO UPDATE SET "
                "person=excluded.person, disposition=excluded.disposition, "
                "reason=excluded.reason, detail=excluded.detail, "
                "next_open=excluded.next_open, evidence=excluded.evidence, "
                "updated_at=excluded.updated_at",
                [
                    (f.row, f.person, f.disposition, f.reason, f.detail, f.next_open,
                     json.dumps(f.evidence) if f.evidence else None, ts)
                    for f in fates
                ],
            )

    def overlay_fates(self) -> dict[int, Fate]:
        out: dict[int, Fate] = {}
        for r in self._read("SELECT * FROM fates ORDER BY row"):
            out[r["row"]] = Fate(
                row=r["row"], person=r["person"], disposition=r["disposition"],
                reason=r["reason"], detail=r["detail"], next_open=r["next_open"],
                evidence=json.loads(r["evidence"]) if r["evidence"] else None,
            )
        return out

    def overlay_rows(self) -> pa.Array:
        return pa.array([r for (r,) in self._read("SELECT row FROM fates")], pa.int64())

    def drop_fates(self, rows: Iterable[int]) -> None:
        with self._write() as db:
            db.executemany("DELETE FROM fates WHERE row=?", [(int(r),) for r in rows])

    # -- the fate base ----------------------------------------------------------------
    def set_fate_base(self, table: pa.Table, digest: str) -> None:
        chunks = list(base_chunks(check_base(table)))  # the CPU before the write lock
        version = uuid.uuid4().hex
        with self._write() as db:
            db.execute("DELETE FROM fate_base_chunks")
            db.execute("DELETE FROM fate_base")
            db.executemany("INSERT INTO fate_base_chunks(first, data) VALUES(?,?)", chunks)
            db.execute("INSERT INTO fate_base(id, digest, rows, version) VALUES(1,?,?,?)",
                       (digest, table.num_rows, version))

    def fate_base_digest(self) -> str | None:
        r = self._read("SELECT digest FROM fate_base WHERE id=1")
        return str(r[0][0]) if r else None

    def base_head(self) -> tuple[str, int, Callable[[], list[bytes]], object] | None:
        head = self._read("SELECT rows, version FROM fate_base WHERE id=1")
        if not head:
            return None
        rows, version = int(head[0][0]), str(head[0][1])
        return version, rows, lambda: [bytes(b) for (b,) in self._read(
            "SELECT data FROM fate_base_chunks ORDER BY first")], self.path
