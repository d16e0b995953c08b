"""The SQLite journal's reads for the report and results (`store.interface.ReportReads`)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from campaign_dialer.store.model import CallFacts, HttpTally, json_object
from campaign_dialer.store.sqlite.base import OnDatabase


class JournalReads(OnDatabase):
    # -- the report's reads -----------------------------------------------------------
    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """One read transaction, so fates, attempts and events of a running campaign agree."""
        with self._d.snapshot():
            yield

    def call_facts(self) -> list[CallFacts]:
        """Every attempt as the report reads it; JSON picked apart in SQL where it can be."""
        base = ", ".join(CallFacts._fields[:13])
        try:
            rows = self._read(
                f"SELECT {base}, json_extract(body, '$.agent_id'), "
                "json_extract(evidence, '$.local_times'), "
                "json_extract(body, '$.from_phone_number_id') FROM attempts ORDER BY id"
            )
            return [CallFacts._make(r) for r in rows]
        except sqlite3.OperationalError:  # an SQLite without JSON functions
            out = []
            for r in self._read(f"SELECT {base}, body, evidence FROM attempts ORDER BY id"):
                body, ev = json_object(r[13]), json_object(r[14])
                out.append(CallFacts._make(
                    (*tuple(r)[:13], body.get("agent_id"), ev.get("local_times"),
                     body.get("from_phone_number_id"))
                ))
            return out

    def http_tally(self) -> list[HttpTally]:
        """Aggregated in SQL: the events table is the biggest one a long run leaves."""
        return [HttpTally._make(r) for r in self._read(
            "SELECT method, status, code, CASE WHEN status IS NULL THEN substr(error, 1, 80) "
            "END AS err, count(*), avg(latency) FROM http_events GROUP BY 1, 2, 3, 4"
        )]

    def overlay_counts(self) -> dict[tuple[str, str], int]:
        """The `fates` table's rows (the overlay) counted by the index `fates_disposition`;
        `FateMerge.fate_counts` adds the base's."""
        out: dict[tuple[str, str], int] = {}
        for d, reason, n in self._read(
            "SELECT disposition, coalesce(reason, ''), count(*) FROM fates GROUP BY 1, 2"
        ):
            out[(d, reason)] = out.get((d, reason), 0) + n
        return out

    def transcripts(self) -> list[dict[str, Any]]:
        """Every recorded transcript with its attempt's call id, row and person."""
        rows = self._read(
            "SELECT t.call_id AS call_id, a.row AS row, a.person AS person, t.text AS text "
            "FROM transcripts t JOIN attempts a ON a.id = t.attempt_id ORDER BY a.row, a.attempt"
        )
        return [dict(r) for r in rows]
