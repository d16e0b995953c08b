"""The stored plan on PostgreSQL: `plans` (one per campaign) and `plan_chunks` (its rows,
as on SQLite: chunks of columns, `store.plan_state.plan_chunks`; migrations 4 and 5).

One process plans: `planning()` holds a session advisory lock on the campaign's plan while
the caller looks for a current plan and, finding none, makes and saves it; every other
process starting at the same moment waits on that lock, then finds the plan saved and reads
it instead of planning. `save` replaces a plan in one transaction, so a reader sees the old
plan or the new one, never half of one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from campaign_dialer.store.plan_state import EncodedPlan, plan_chunks, plan_from_chunks

from .db import Database
from .plan_schema import PLAN_MIGRATION

__all__ = ["CONTACTS_PART_BYTES", "PLAN_LOCK", "PLAN_MIGRATION", "PgPlanStore"]

# The kept contacts' file travels in parts of this many bytes (a part at a time in memory).
CONTACTS_PART_BYTES = 8 << 20

# An arbitrary constant: the advisory lock class under which a campaign's plan is made
# (the second key is the campaign's name, hashed by the database).
PLAN_LOCK = 7_415_002


class PgPlanStore:
    """The plan of one campaign in the team's database."""

    def __init__(self, db: Database, campaign: str) -> None:
        self.db = db
        self.campaign = campaign

    @contextmanager
    def planning(self) -> Iterator[None]:
        """Only one process of the campaign inside at a time (a session advisory lock on a
        connection held for the block): the first plans, the others then read its plan."""
        with self.db.connection() as conn:
            conn.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", (PLAN_LOCK, self.campaign))
            try:
                yield
            finally:
                conn.execute(
                    "SELECT pg_advisory_unlock(%s, hashtext(%s))", (PLAN_LOCK, self.campaign))

    def fingerprint(self) -> str | None:
        r = self.db.fetchone("SELECT fingerprint FROM plans WHERE campaign = %s",
                             (self.campaign,))
        return str(r[0]) if r else None

    def reads(self) -> dict[str, bytes]:
        """None kept on PostgreSQL yet: each process reads the compliance inputs itself."""
        return {}

    def save(self, plan: EncodedPlan, reads: Mapping[str, bytes] | None = None) -> None:
        """Keep `plan` (`reads` are not kept on PostgreSQL yet: see `reads`)."""
        chunks = list(plan_chunks(plan))

        def write(conn: Any) -> None:
            conn.execute("DELETE FROM plan_chunks WHERE campaign = %s", (self.campaign,))
            conn.execute("DELETE FROM plans WHERE campaign = %s", (self.campaign,))
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO plan_chunks (campaign, first, data) VALUES (%s, %s, %s)",
                    [(self.campaign, first, data) for first, data in chunks])
            conn.execute(
                "INSERT INTO plans(campaign, fingerprint, rows, zones, verdicts, evidences) "
                "VALUES (%s, %s, %s, %s, %s, %s)",
                (self.campaign, plan.fingerprint, len(plan), json.dumps(plan.zones),
                 json.dumps(plan.verdicts),
                 json.dumps({"keys": plan.evidence_keys, "values": plan.evidence_values})),
            )

        self.db.transact(write)

    def load(self) -> EncodedPlan | None:
        def read(conn: Any) -> tuple[Any, list[bytes]] | None:
            head = conn.execute(
                "SELECT fingerprint, rows, zones, verdicts, evidences FROM plans "
                "WHERE campaign = %s", (self.campaign,),
            ).fetchone()
            if head is None:
                return None
            blobs = [bytes(b) for (b,) in conn.execute(
                "SELECT data FROM plan_chunks WHERE campaign = %s ORDER BY first",
                (self.campaign,))]
            return head, blobs

        with self.db.snapshot():  # the plans row and its chunks from one state
            found = self.db.attempt(read)
        if found is None:
            return None
        (fingerprint, rows, zones, verdicts, evidences), blobs = found
        ev = _json(evidences)
        return plan_from_chunks(
            blobs, fingerprint=str(fingerprint), rows=int(rows), zones=_json(zones),
            verdicts=_json(verdicts), evidence_keys=list(ev["keys"]),
            evidence_values=ev["values"],
        )

    def share_contacts(self, path: Path, fingerprint: str) -> None:
        """Keep the file of kept contacts at `path` (`store.kept_contacts`, for the plan
        `fingerprint`) in the database, in place of any kept before: in one transaction, a
        part at a time (`CONTACTS_PART_BYTES`)."""
        def write(conn: Any) -> None:
            conn.execute("DELETE FROM kept_contacts_parts WHERE campaign = %s",
                         (self.campaign,))
            conn.execute("DELETE FROM kept_contacts WHERE campaign = %s", (self.campaign,))
            size = 0
            with open(path, "rb") as fh:
                seq = 0
                while part := fh.read(CONTACTS_PART_BYTES):
                    conn.execute(
                        "INSERT INTO kept_contacts_parts (campaign, seq, data) "
                        "VALUES (%s, %s, %s)", (self.campaign, seq, part))
                    size += len(part)
                    seq += 1
            conn.execute(
                "INSERT INTO kept_contacts (campaign, fingerprint, bytes) VALUES (%s, %s, %s)",
                (self.campaign, fingerprint, size))

        self.db.transact(write)

    def fetch_contacts(self, path: Path, fingerprint: str) -> bool:
        """Write the contacts kept for the plan `fingerprint` to `path` (beside, then renamed
        over; mode 0600), a part at a time; False when none are kept for it."""
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")

        def read(conn: Any) -> bool:
            head = conn.execute(
                "SELECT bytes FROM kept_contacts WHERE campaign = %s AND fingerprint = %s",
                (self.campaign, fingerprint)).fetchone()
            if head is None:
                return False
            path.parent.mkdir(parents=True, exist_ok=True)  # a machine's first run
            tmp.unlink(missing_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            size = 0
            with os.fdopen(fd, "wb") as out:
                seq = 0
                while (part := conn.execute(
                        "SELECT data FROM kept_contacts_parts WHERE campaign = %s AND seq = %s",
                        (self.campaign, seq)).fetchone()) is not None:
                    out.write(part[0])
                    size += len(part[0])
                    seq += 1
                    del part
            return size == int(head[0])

        try:
            with self.db.snapshot():  # the head and its parts from one state
                whole = self.db.attempt(read)
            if whole:
                os.replace(tmp, path)
            return whole
        finally:
            tmp.unlink(missing_ok=True)

    def close(self) -> None:
        """The database is the caller's (`Stores`): nothing of its own to close."""


def _json(v: Any) -> Any:
    return json.loads(v) if isinstance(v, str) else v
