"""The PostgreSQL journal's reads for the report and results (`store.interface.ReportReads`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from campaign_dialer.store.model import CallFacts, HttpTally
from campaign_dialer.store.postgres.db import Database


class PgReads:
    db: Database
    campaign: str

    # -- the report's reads -----------------------------------------------------------
    @contextmanager
    def snapshot(self) -> Iterator[None]:
        with self.db.snapshot():
            yield

    def call_facts(self) -> list[CallFacts]:
        base = ", ".join(CallFacts._fields[:13])
        rows = self.db.fetchall(
            f"SELECT {base}, body::jsonb ->> 'agent_id', "
            "nullif(evidence, '')::jsonb ->> 'local_times', "
            "body::jsonb ->> 'from_phone_number_id' "
            "FROM attempts WHERE campaign = %s ORDER BY id", (self.campaign,),
        )
        return [CallFacts._make(r) for r in rows]

    def http_tally(self) -> list[HttpTally]:
        return [HttpTally._make(r) for r in self.db.fetchall(
            "SELECT method, status, code, CASE WHEN status IS NULL THEN substr(error, 1, 80) "
            "END AS err, count(*), avg(latency) FROM http_events WHERE campaign = %s "
            "GROUP BY 1, 2, 3, 4", (self.campaign,),
        )]

    def overlay_counts(self) -> dict[tuple[str, str], int]:
        """The `fates` table's rows (the overlay) counted by the index `fates_disposition`;
        `FateMerge.fate_counts` adds the base's."""
        return {
            (d, reason): int(n) for d, reason, n in self.db.fetchall(
                "SELECT disposition, coalesce(reason, ''), count(*) FROM fates "
                "WHERE campaign = %s GROUP BY 1, 2", (self.campaign,),
            )
        }

    def transcripts(self) -> list[dict[str, Any]]:
        return self.db.dicts(
            "SELECT t.call_id AS call_id, a.row AS row, a.person AS person, t.text AS text "
            "FROM transcripts t JOIN attempts a ON a.id = t.attempt_id "
            "WHERE a.campaign = %s ORDER BY a.row, a.attempt", (self.campaign,),
        )
