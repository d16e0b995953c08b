"""The PostgreSQL journal's controls: the campaign's meta and control state (read by every
process at its heartbeat) and its runs, which are the process registry
(`store.interface.Controls`)."""

from __future__ import annotations

import json
import os
import socket
from typing import Any

from psycopg.types.json import Jsonb

from campaign_dialer.store.errors import JournalError
from campaign_dialer.store.model import CONTROL_STATES, iso
from campaign_dialer.store.postgres.coord import Coordinator
from campaign_dialer.store.postgres.db import Database
from campaign_dialer.store.transitions import Stamped


class PgControls(Stamped):
    db: Database
    campaign: str
    _co: Coordinator | None

    # -- meta and control -------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        row = self.db.fetchone(
            "SELECT meta ->> %s FROM campaigns WHERE name = %s", (key, self.campaign)
        )
        return None if row is None else row[0]

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute(
            "UPDATE campaigns SET meta = meta || jsonb_build_object(%s::text, %s::text) "
            "WHERE name = %s", (key, value, self.campaign),
        )

    def control(self) -> str:
        row = self.db.fetchone("SELECT control FROM campaigns WHERE name = %s", (self.campaign,))
        return str(row[0]) if row else "active"

    def set_control(self, state: str) -> None:
        if state not in CONTROL_STATES:
            raise ValueError(state)
        row = self.db.fetchone(
            "UPDATE campaigns SET control = %(s)s, control_at = now(), "
            "meta = meta || jsonb_build_object('control', %(s)s::text, 'control_at', %(t)s::text) "
            "WHERE name = %(c)s AND (control <> 'canceled' OR %(s)s = 'canceled') RETURNING 1",
            {"s": state, "c": self.campaign, "t": self._ts()},
        )
        if row is None:
            raise JournalError("the campaign was canceled; a canceled campaign stays canceled")

    # -- runs (the process registry) --------------------------------------------------
    def begin_run(self) -> int:
        row = self.db.fetchone(
            "INSERT INTO processes(campaign, host, pid, lease_seconds) VALUES (%s, %s, %s, %s) "
            "RETURNING id",
            (self.campaign, socket.gethostname(), os.getpid(),
             self._co.lease_seconds if self._co else 30.0),
        )
        run_id = int(row[0])
        if self._co is not None and self._co.process_id is None:
            self._co.process_id = run_id
        return run_id

    def end_run(self, run_id: int, exit_code: int, summary: dict[str, Any]) -> None:
        def end(conn: Any) -> None:  # updates to values: done again after a lost connection
            conn.execute(
                "UPDATE rows SET lease_owner = NULL, lease_until = NULL "
                "WHERE lease_owner = %s AND NOT done", (run_id,),
            )
            conn.execute(
                "UPDATE processes SET ended_at = now(), exit_code = %s, summary = %s "
                "WHERE id = %s AND campaign = %s",
                (exit_code, Jsonb(summary), run_id, self.campaign),
            )

        self.db.transact(end)

    def runs(self) -> list[dict[str, Any]]:
        out = []
        for r in self.db.fetchall(
            "SELECT id, started_at, ended_at, exit_code, pid, summary FROM processes "
            "WHERE campaign = %s ORDER BY id", (self.campaign,),
        ):
            out.append({
                "id": r[0], "started_at": iso(r[1]), "ended_at": iso(r[2]), "exit_code": r[3],
                "pid": r[4], "summary": None if r[5] is None else json.dumps(r[5]),
            })
        return out
