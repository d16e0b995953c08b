"""The PostgreSQL journal's telemetry: HTTP exchanges and webhook deliveries
(`store.interface.Telemetry`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from campaign_dialer.store.model import now_iso
from campaign_dialer.store.postgres.db import Database


class PgTelemetry:
    db: Database
    campaign: str

    # -- telemetry --------------------------------------------------------------------
    def add_http_events(self, events: Sequence[tuple[Any, ...]]) -> None:
        if not events:
            return
        def add(conn: Any) -> None:  # telemetry: a rare duplicate after a lost COMMIT is moot
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO http_events(campaign, t, run_id, method, path, status, code, "
                    "latency, error) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    [(self.campaign, *e) for e in events],
                )

        self.db.transact(add)

    # -- webhook events ---------------------------------------------------------------
    def add_webhook_event(
        self, *, call_id: str, event: str, status: str, body_sha256: str, data: str
    ) -> bool:
        """Commit one delivered event; False when (call, event, status) was already here."""
        return self.db.execute(
            "INSERT INTO webhook_events(campaign, call_id, event, status, body_sha256, "
            "received_at, data) VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            (self.campaign, call_id, event, status, body_sha256, now_iso(), data),
        ) > 0

    def webhook_events(self, call_id: str) -> list[dict[str, Any]]:
        return self.db.dicts(
            "SELECT event, status, received_at, data FROM webhook_events "
            "WHERE campaign = %s AND call_id = %s ORDER BY id", (self.campaign, call_id),
        )
