"""The journal in PostgreSQL: `store.interface.JournalStore` for one campaign of a team's
database, with the same semantics as the SQLite journal (`store.sqlite.journal`): the
attempt log here, its controls, telemetry and report reads in `controls`, `telemetry` and
`reads`.

Differences that follow from sharing one database:
- a campaign's NAME is its identity: every process (on any host, from any output folder)
  that opens campaign "spring" opens the same journal; that is how several processes share
  one campaign. (The SQLite "journal belongs to another campaign" refusal has no meaning.)
- runs are the process registry (`processes`): `begin_run` registers this process, with
  its host, pid and heartbeat; `coordinator()` gives the multi-process primitives for it.
- with a coordinator attached (`attach`), `record_intent` is fenced by the row's lease and
  refused past `max_live_calls` (see `coord`); without one it is the plain guarded INSERT.

Every method is one transaction (autocommit statement or `db.transaction()`), committed
before it returns; errors are the store's (`DuplicateAttempt`, `JournalError`, write errors
exit 73/74), their text redacted.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
from psycopg.types.json import Jsonb

from campaign_dialer.log import scrub
from campaign_dialer.store.errors import JournalError
from campaign_dialer.store.fate_base import FateMerge, base_chunks, check_base
from campaign_dialer.store.model import (
    ATTEMPT_COLUMNS,
    FINAL,
    INTENT,
    Attempt,
    Fate,
)
from campaign_dialer.store.postgres.controls import PgControls
from campaign_dialer.store.postgres.coord import Coordinator
from campaign_dialer.store.postgres.db import Database
from campaign_dialer.store.postgres.reads import PgReads
from campaign_dialer.store.postgres.telemetry import PgTelemetry
from campaign_dialer.store.transitions import AttemptTransitions

_COLS = ", ".join(ATTEMPT_COLUMNS)
_RECORD_COLS = [c for c in ATTEMPT_COLUMNS if c != "id"]


class PgJournal(AttemptTransitions, PgControls, PgTelemetry, PgReads, FateMerge):
    """One campaign's journal in a shared PostgreSQL database (see module doc)."""

    def __init__(
        self, db: Database, campaign: str, *, create: bool = True,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self.db = db
        self._owns_db = False
        self.campaign = campaign
        self.path = Path(f"postgresql:{db.where}#{campaign}")
        self._now = now
        self._co: Coordinator | None = None
        self.on_change: Callable[[dict[str, Any]], None] | None = None
        if create:
            self.db.execute(
                "INSERT INTO campaigns(name, meta) VALUES (%s, %s) ON CONFLICT (name) DO NOTHING",
                (campaign, Jsonb({"campaign": campaign, "created_at": self._ts()})),
            )
        elif self.db.fetchone("SELECT 1 FROM campaigns WHERE name = %s", (campaign,)) is None:
            raise JournalError(f"no journal for campaign {campaign!r} in {db.where}")

    @classmethod
    def open(
        cls, url: str, campaign: str, *, create: bool = True,
        now: Callable[[], datetime] | None = None,
    ) -> PgJournal:
        """A journal with a pool of its own, closed with it (the SQLite journal's shape)."""
        db = Database(url)
        try:
            j = cls(db, campaign, create=create, now=now)
        except BaseException:
            db.close()
            raise
        j._owns_db = True
        return j

    def twin(self) -> PgJournal:
        """The same journal for another thread of work (the webhook sink's): on the same
        pool, not attached to the coordinator, on the wall clock."""
        return PgJournal(self.db, self.campaign)

    def close(self) -> None:
        """Closes the pool if `open` made it; a shared Database is its opener's to close."""
        if self._owns_db:
            self.db.close()

    def __enter__(self) -> PgJournal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- several processes ------------------------------------------------------------
    def attach(self, coordinator: Coordinator) -> None:
        """From now on intents are fenced by this process's leases and the live-call cap."""
        self._co = coordinator

    # -- attempts ---------------------------------------------------------------------
    def record_intent(
        self, *, person: str, row: int, attempt: int, idem_key: str, body: dict[str, Any],
        evidence: dict[str, Any], run_id: int | None,
    ) -> Attempt:
        """Commit what we are about to send, before it is sent (DuplicateAttempt if there)."""
        ts = self._ts()
        if self._co is not None:
            aid = self._co.record_intent(
                person=person, row=row, attempt=attempt, idem_key=idem_key, body=body,
                evidence=evidence, run_id=run_id, ts=ts,
            )
            return self.attempt(aid)
        found = self.db.dicts(
            f"INSERT INTO attempts(campaign, person, row, attempt, idem_key, body, state, "
            f"intent_at, evidence, run_id, updated_at) "
            f"VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING {_COLS}",
            (self.campaign, person, row, attempt, idem_key, json.dumps(body, sort_keys=True),
             INTENT, ts, json.dumps(evidence), run_id, ts),
        )
        return Attempt.from_row(found[0])

    def _attempt_rows(self, where: str = "", params: tuple[Any, ...] = (),
                      order: str = "id") -> list[dict[str, Any]]:
        return self.db.dicts(
            f"SELECT {_COLS} FROM attempts WHERE campaign = %s {where} ORDER BY {order}",
            (self.campaign, *params),
        )

    def attempt(self, attempt_id: int) -> Attempt:
        rows = self._attempt_rows("AND id = %s", (attempt_id,))
        if not rows:
            raise JournalError(f"no attempt {attempt_id}")
        return Attempt.from_row(rows[0])

    def attempts(self, *, states: Sequence[str] | None = None) -> list[Attempt]:
        if states:
            rows = self._attempt_rows("AND state = ANY(%s)", (list(states),))
        else:
            rows = self._attempt_rows()
        return [Attempt.from_row(r) for r in rows]

    def attempts_for(self, person: str) -> list[Attempt]:
        return [Attempt.from_row(r)
                for r in self._attempt_rows("AND person = %s", (person,), order="attempt")]

    def attempt_record(self, attempt_id: int) -> dict[str, Any]:
        rows = self._attempt_rows("AND id = %s", (attempt_id,))
        if not rows:
            raise JournalError(f"no attempt {attempt_id}")
        return {k: rows[0][k] for k in _RECORD_COLS}

    def attempt_records(self) -> list[dict[str, Any]]:
        return [{k: r[k] for k in _RECORD_COLS} for r in self._attempt_rows()]

    def import_attempts(self, records: Iterable[dict[str, Any]]) -> int:
        """Put back attempts the contact history knows and this journal lost; returns how
        many. A record whose key or (person, attempt) is already here is left alone."""
        rows = []
        for rec in records:
            vals = {c: rec.get(c) for c in _RECORD_COLS}
            for c in ("body", "evidence", "extra"):
                if vals[c] is not None and not isinstance(vals[c], str):
                    vals[c] = json.dumps(vals[c], sort_keys=True)
            vals["body"] = vals["body"] or "{}"
            vals["posts"] = vals["posts"] or 0
            vals["intent_at"] = vals["intent_at"] or self._ts()
            vals["updated_at"] = vals["updated_at"] or self._ts()
            vals["run_id"] = None
            rows.append((self.campaign, *(vals[c] for c in _RECORD_COLS)))
        if not rows:
            return 0
        marks = ", ".join(["%s"] * (len(_RECORD_COLS) + 1))
        added = 0
        with self.db.transaction() as conn, conn.cursor() as cur:
            for r in rows:
                cur.execute(
                    f"INSERT INTO attempts(campaign, {', '.join(_RECORD_COLS)}) "
                    f"VALUES ({marks}) ON CONFLICT DO NOTHING", r,
                )
                added += max(cur.rowcount, 0)
        return added

    def _update(self, attempt_id: int, **fields: Any) -> None:
        fields["updated_at"] = self._ts()
        if isinstance(fields.get("error"), str):
            fields["error"] = scrub(fields["error"])  # an API message may echo a secret
        cols = ", ".join(f"{k} = %s" for k in fields)
        # The row as written comes back with the write: one round trip, not a re-read.
        changed = self.db.dicts(
            f"UPDATE attempts SET {cols} WHERE id = %s AND campaign = %s RETURNING {_COLS}",
            (*fields.values(), attempt_id, self.campaign),
        )
        if self.on_change is not None:
            if not changed:
                raise JournalError(f"no attempt {attempt_id}")
            self.on_change({k: changed[0][k] for k in _RECORD_COLS})

    def count_post(self, attempt_id: int) -> None:
        self.db.execute(
            "UPDATE attempts SET posts = posts + 1, updated_at = %s "
            "WHERE id = %s AND campaign = %s", (self._ts(), attempt_id, self.campaign),
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
            self.db.execute(
                "INSERT INTO transcripts(attempt_id, call_id, text) VALUES (%s, %s, %s) "
                "ON CONFLICT (attempt_id) DO UPDATE SET call_id = excluded.call_id, "
                "text = excluded.text",
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
        rows = [
            (self.campaign, f.row, f.person, f.disposition, f.reason, f.detail, f.next_open,
             json.dumps(f.evidence) if f.evidence else None, ts)
            for f in fates
        ]
        if not rows:
            return
        def upsert(conn: Any) -> None:  # an upsert: done again after a lost connection
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO fates(campaign, row, person, disposition, reason, detail, "
                    "next_open, evidence, updated_at) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
                    "ON CONFLICT (campaign, row) DO UPDATE SET person = excluded.person, "
                    "disposition = excluded.disposition, reason = excluded.reason, "
                    "detail = excluded.detail, next_open = excluded.next_open, "
                    "evidence = excluded.evidence, updated_at = excluded.updated_at",
                    rows,
                )

        self.db.transact(upsert)

    def overlay_fates(self) -> dict[int, Fate]:
        out: dict[int, Fate] = {}
        for r in self.db.dicts(
            "SELECT * FROM fates WHERE campaign = %s ORDER BY row", (self.campaign,)
        ):
            out[r["row"]] = Fate(
                row=r["row"], person=r["person"], disposition=r["disposition"],
                reason=r["reason"], detail=r["detail"], next_open=r["next_open"],
                evidence=json.loads(r["evidence"]) if r["evidence"] else None,
            )
        return out

    def overlay_rows(self) -> pa.Array:
        return pa.array([r for (r,) in self.db.fetchall(
            "SELECT row FROM fates WHERE campaign = %s", (self.campaign,))], pa.int64())

    def drop_fates(self, rows: Iterable[int]) -> None:
        gone = [int(r) for r in rows]
        if gone:  # a delete: done again after a lost connection, the same
            self.db.execute("DELETE FROM fates WHERE campaign = %s AND row = ANY(%s)",
                            (self.campaign, gone))

    # -- the fate base ----------------------------------------------------------------
    def set_fate_base(self, table: pa.Table, digest: str) -> None:
        chunks = [(self.campaign, first, data)
                  for first, data in base_chunks(check_base(table))]
        version = uuid.uuid4().hex

        def write(conn: Any) -> None:  # all of it again after a lost connection
            conn.execute("DELETE FROM fate_base_chunks WHERE campaign = %s", (self.campaign,))
            conn.execute("DELETE FROM fate_bases WHERE campaign = %s", (self.campaign,))
            with conn.cursor() as cur:
                cur.executemany("INSERT INTO fate_base_chunks(campaign, first, data) "
                                "VALUES (%s, %s, %s)", chunks)
            conn.execute("INSERT INTO fate_bases(campaign, digest, rows, version) "
                         "VALUES (%s, %s, %s, %s)",
                         (self.campaign, digest, table.num_rows, version))

        self.db.transact(write)

    def fate_base_digest(self) -> str | None:
        r = self.db.fetchone("SELECT digest FROM fate_bases WHERE campaign = %s",
                             (self.campaign,))
        return str(r[0]) if r else None

    def base_head(self) -> tuple[str, int, Callable[[], list[bytes]], object] | None:
        head = self.db.fetchone("SELECT rows, version FROM fate_bases WHERE campaign = %s",
                                (self.campaign,))
        if head is None:
            return None
        return str(head[1]), int(head[0]), lambda: [
            bytes(b) for (b,) in self.db.fetchall(
                "SELECT data FROM fate_base_chunks WHERE campaign = %s ORDER BY first",
                (self.campaign,))], self.path
