"""The SQLite journal's controls: its meta, control state (pause, resume, cancel) and runs
(`store.interface.Controls`)."""

from __future__ import annotations

import json
import os
import sqlite3
from typing import Any

from campaign_dialer.store.errors import JournalError
from campaign_dialer.store.model import CONTROL_STATES
from campaign_dialer.store.sqlite.base import OnDatabase
from campaign_dialer.store.transitions import Stamped


class JournalControls(OnDatabase, Stamped):
    _db: sqlite3.Connection

    # -- meta -------------------------------------------------------------------------
    def _get_meta(self, key: str) -> str | None:
        rows = self._read("SELECT value FROM meta WHERE key=?", (key,))
        return None if not rows else rows[0][0]

    def _set_meta(self, key: str, value: str) -> None:
        self._db.execute(
            "INSERT INTO meta(key, value) VALUES(?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
            (key, value),
        )

    def get_meta(self, key: str) -> str | None:
        return self._get_meta(key)

    def set_meta(self, key: str, value: str) -> None:
        with self._write():
            self._set_meta(key, value)

    def control(self) -> str:
        return self._get_meta("control") or "active"

    def set_control(self, state: str) -> None:
        if state not in CONTROL_STATES:
            raise ValueError(state)
        with self._write():
            if self._get_meta("control") == "canceled" and state != "canceled":
                raise JournalError("the campaign was canceled; a canceled campaign stays canceled")
            self._set_meta("control", state)
            self._set_meta("control_at", self._ts())

    # -- runs -------------------------------------------------------------------------
    def begin_run(self) -> int:
        with self._write() as db:
            cur = db.execute(
                "INSERT INTO runs(started_at, pid) VALUES(?, ?)", (self._ts(), os.getpid())
            )
            return int(cur.lastrowid or 0)

    def end_run(self, run_id: int, exit_code: int, summary: dict[str, Any]) -> None:
        with self._write() as db:
            db.execute(
                "UPDATE runs SET ended_at=?, exit_code=?, summary=? WHERE id=?",
                (self._ts(), exit_code, json.dumps(summary), run_id),
            )

    def runs(self) -> list[dict[str, Any]]:
        rows = self._read("SELECT * FROM runs ORDER BY id")
        return [dict(r) for r in rows]
