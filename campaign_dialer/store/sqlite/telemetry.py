"""The SQLite journal's telemetry: HTTP exchanges and webhook deliveries
(`store.interface.Telemetry`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from campaign_dialer.store.model import now_iso
from campaign_dialer.store.sqlite.base import OnDatabase


class JournalTelemetry(OnDatabase):
    # -- telemetry --------------------------------------------------------------------
    def add_http_events(self, events: Sequence[tuple[Any, ...]]) -> None:
        if not events:
            return
        with self._write() as db:
            db.executemany(
                "INSERT INTO http_events(t, run_id, method, path, status, code, latency, error) "
                "VALUES(?,?,?,?,?,?,?,?)",
                events,
            )

    # -- webhook events ---------------------------------------------------------------
    def add_webhook_event(
        self, *, call_id: str, event: str, status: str, body_sha256: str, data: str
    ) -> bool:
        """Commit one delivered event; False when it was already here (at-least-once).

        The contract gives events no id: (call, event, status) is the deduplication key.
        """
        with self._write() as db:
            cur = db.execute(
                "INSERT OR IGNORE INTO webhook_events(call_id, event, status, body_sha256, "
                "received_at, data) VALUES(?,?,?,?,?,?)",
                (call_id, event, status, body_sha256, now_iso(), data),
            )
            return cur.rowcount > 0

    def webhook_events(self, call_id: str) -> list[dict[str, Any]]:
        """The events committed for one call, in the order they arrived."""
        rows = self._read(
            "SELECT event, status, received_at, data FROM webhook_events WHERE call_id=? "
            "ORDER BY id", (call_id,),
        )
        return [dict(r) for r in rows]
