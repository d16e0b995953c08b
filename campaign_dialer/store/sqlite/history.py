"""The contact history: every call and opt-out of every campaign of a user or team.

One SQLite file, by default in the
user's data folder, shared by every campaign that points at it, so that:

- a campaign whose journal was lost is rebuilt from it instead of starting afresh;
- a person another campaign called recently is held back (`recently_called`), and the state
  frequency limits (e.g. 3 calls per 24 h in FL, OK, MD) count every campaign's calls;
- the DNC ledger (409s, opt-outs) is shared by every campaign, wherever its folder is.

Claiming a person for a call is one `BEGIN IMMEDIATE` transaction (check, then insert): two
campaigns or two processes at the same moment cannot both pass.
`store.interface.HistoryStore` is the interface a PostgreSQL backend implements for
teams (there: one transaction with a row lock on the person, or SERIALIZABLE).
"""

from __future__ import annotations

import csv
import json
import os
import re
import sqlite3
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from campaign_dialer.store.errors import HistoryError
from campaign_dialer.store.model import Claim, PastCall, iso, parse_iso
from campaign_dialer.store.policy import hold_back
from campaign_dialer.store.sqlite.base import Database, OnDatabase
from campaign_dialer.store.sqlite.schema import HISTORY_MIGRATIONS as MIGRATIONS
from campaign_dialer.store.sqlite.schema import HISTORY_SCHEMA as SCHEMA
from campaign_dialer.store.sqlite.schema import HISTORY_VERSION as SCHEMA_VERSION

HOME_ENV = "CAMPAIGN_DIALER_HOME"
FILE_NAME = "history.sqlite"
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")

def default_path() -> Path:
    """`$CAMPAIGN_DIALER_HOME/history.sqlite`, else the XDG data folder."""
    home = os.environ.get(HOME_ENV, "").strip()
    if home:
        return Path(home).expanduser() / FILE_NAME
    xdg = os.environ.get("XDG_DATA_HOME", "").strip()
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".local" / "share"
    return base / "campaign-dialer" / FILE_NAME


def _iso(dt: datetime) -> str:
    return iso(dt)  # type: ignore[return-value]


def _from_ts(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


class SqliteHistory(OnDatabase):
    """The history in one SQLite file (WAL), created 0600; safe across threads and processes."""

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        p = Path(path)
        try:
            self._d = Database(p, timeout=30.0, dir_mode=0o700)
        except (OSError, sqlite3.Error) as e:
            raise HistoryError(f"cannot open the contact history {p}: {e}") from None
        self._lock = self._d.lock
        try:
            self._d.ensure_schema(
                what="contact history", schema=SCHEMA, version=SCHEMA_VERSION,
                migrations=MIGRATIONS,
            )
        except sqlite3.Error as e:
            self._d.close()
            raise HistoryError(f"cannot open the contact history {p}: {e}") from None
        except BaseException:
            self._d.close()
            raise


    # -- calls ------------------------------------------------------------------------
    def claim(
        self, *, campaign: str, person: str, phone_e164: str | None, contact_id: str | None,
        attempt: int, idem_key: str, record: dict[str, Any], at: datetime, min_hours: float,
        state_limit: int | None, state: str | None = None, also: Sequence[str] = (),
    ) -> Claim:
        """Check the person's past calls and insert the claim, in one transaction.

        `also`: the person's other keys (the row's other numbers): a call another campaign
        placed to any of them counts as a call to this person."""
        ts = at.timestamp()
        now = _iso(at)
        keys = [person, *(k for k in also if k != person)]
        with self._write() as db:
            rows = db.execute(
                "SELECT person, campaign, attempt, state, claimed_ts FROM calls WHERE person IN "
                f"({','.join('?' * len(keys))})",
                keys,
            ).fetchall()
            mine = [r for r in rows if r["campaign"] == campaign and r["person"] == person]
            done = [r for r in mine if r["attempt"] >= attempt and r["state"] != "not_placed"]
            if done:
                return Claim(False, "already_called",
                             f"attempt {max(r['attempt'] for r in done)} is in the history")
            past = [PastCall(r["campaign"], r["attempt"], _from_ts(r["claimed_ts"]), r["state"])
                    for r in rows]
            held = hold_back(past, campaign=campaign, at=at, min_hours=min_hours,
                             state_limit=state_limit, state=state)
            if held is not None:
                return held
            rec = json.dumps(
                {**record, "person": person, "attempt": attempt, "idem_key": idem_key,
                 "state": "intent"}, sort_keys=True,
            )
            if any(r["attempt"] == attempt for r in mine):  # not placed before: reclaim it
                db.execute(
                    "UPDATE calls SET state='intent', idem_key=?, claimed_at=?, claimed_ts=?, "
                    "record=?, updated_at=? WHERE campaign=? AND person=? AND attempt=?",
                    (idem_key, now, ts, rec, now, campaign, person, attempt),
                )
            else:
                db.execute(
                    "INSERT INTO calls(person, phone_e164, contact_id, campaign, attempt, "
                    "idem_key, state, claimed_at, claimed_ts, record, updated_at) "
                    "VALUES(?,?,?,?,?,?,'intent',?,?,?,?)",
                    (person, phone_e164, contact_id, campaign, attempt, idem_key, now, ts,
                     rec, now),
                )
        return Claim(True)

    def sync(self, campaign: str, records: Iterable[dict[str, Any]]) -> None:
        """Upsert journal attempt records (what the journal knows wins for its own keys)."""
        rows = []
        for r in records:
            person = str(r["person"])
            body = r.get("body")
            body_d = json.loads(body) if isinstance(body, str) else (body or {})
            at = parse_iso(r.get("intent_at")) or datetime.now(UTC)
            rows.append((
                person, body_d.get("phone_number"), body_d.get("contact_id"), campaign,
                int(r["attempt"]), r["idem_key"], r["state"], r.get("call_id"), r.get("status"),
                _iso(at), at.timestamp(), r.get("placed_at"), r.get("ended_at"),
                json.dumps(r, sort_keys=True, default=str), r.get("updated_at") or _iso(at),
            ))
        if not rows:
            return
        with self._write() as db:
            db.executemany(
                "INSERT INTO calls(person, phone_e164, contact_id, campaign, attempt, idem_key, "
                "state, call_id, status, claimed_at, claimed_ts, placed_at, ended_at, record, "
                "updated_at) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) "
                "ON CONFLICT(idem_key) DO UPDATE SET state=excluded.state, "
                "call_id=excluded.call_id, status=excluded.status, "
                "placed_at=excluded.placed_at, ended_at=excluded.ended_at, "
                "record=excluded.record, updated_at=excluded.updated_at",
                rows,
            )

    def records(self, campaign: str) -> list[dict[str, Any]]:
        """The campaign's attempts as journal records, to rebuild a lost journal."""
        out = []
        for r in self._read(
            "SELECT record, state, call_id, status, placed_at, ended_at FROM calls "
            "WHERE campaign=? ORDER BY claimed_ts, id", (campaign,),
        ):
            rec = json.loads(r["record"])
            rec.update(state=r["state"], call_id=r["call_id"], status=r["status"],
                       placed_at=r["placed_at"], ended_at=r["ended_at"])
            out.append(rec)
        return out

    def call_seconds(self, limit: int = 2000) -> list[float]:
        """How long recent calls of every campaign held a line (placed to ended): the team's
        own figure for `check`'s forecast."""
        out = []
        for r in self._read(
            "SELECT placed_at, ended_at FROM calls WHERE placed_at IS NOT NULL AND ended_at "
            "IS NOT NULL ORDER BY claimed_ts DESC LIMIT ?", (limit,),
        ):
            a, b = parse_iso(r["placed_at"]), parse_iso(r["ended_at"])
            if a is not None and b is not None and b >= a:
                out.append((b - a).total_seconds())
        return out

    def recent_calls(self, since: datetime) -> dict[str, list[PastCall]]:
        """Every campaign's calls claimed after `since`, by person."""
        out: dict[str, list[PastCall]] = {}
        for r in self._read(
            "SELECT person, campaign, attempt, state, claimed_ts FROM calls WHERE claimed_ts > ?",
            (since.timestamp(),),
        ):
            out.setdefault(r["person"], []).append(
                PastCall(r["campaign"], r["attempt"], _from_ts(r["claimed_ts"]), r["state"])
            )
        return out

    # -- DNC --------------------------------------------------------------------------
    def add_dnc(
        self, e164: str, *, reason: str, campaign: str, evidence: str, at: datetime,
        source: str = "dialer",
    ) -> None:
        with self._write() as db:
            db.execute(
                "INSERT OR IGNORE INTO dnc(phone_e164, reason, campaign, evidence, at, source) "
                "VALUES(?,?,?,?,?,?)",
                (e164, reason, campaign, evidence, _iso(at), source),
            )

    def is_dnc(self, e164: str) -> bool:
        return bool(self._read("SELECT 1 FROM dnc WHERE phone_e164=? LIMIT 1", (e164,)))

    def dnc_numbers(self) -> set[str]:
        return {r[0] for r in self._read("SELECT DISTINCT phone_e164 FROM dnc")}

    def import_ledger(self, path: Path) -> int:
        """Copy a ledger CSV's entries into the shared store (again only when it changed)."""
        try:
            st = os.stat(path)
            text = Path(path).read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return 0
        except OSError as e:
            raise HistoryError(f"cannot read the DNC ledger {path}: {e.strerror}") from None
        key = str(Path(path).resolve())
        stamp = f"{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"
        if self._read("SELECT 1 FROM imports WHERE path=? AND stamp=?", (key, stamp)):
            return 0
        rows = []
        for rec in csv.reader(text.splitlines()):
            if len(rec) >= 2 and _E164.fullmatch(rec[0]):
                rec = [*rec, "", "", ""]
                rows.append((rec[0], rec[1] or "ledger", rec[2], rec[3], rec[4], f"file:{key}"))
        with self._write() as db:
            before = db.total_changes
            db.executemany(
                "INSERT OR IGNORE INTO dnc(phone_e164, reason, campaign, evidence, at, source) "
                "VALUES(?,?,?,?,?,?)",
                rows,
            )
            added = db.total_changes - before
            db.execute(
                "INSERT INTO imports(path, stamp) VALUES(?, ?) "
                "ON CONFLICT(path) DO UPDATE SET stamp=excluded.stamp",
                (key, stamp),
            )
        return added


def open_history(path: Path | None = None) -> SqliteHistory:
    return SqliteHistory(path or default_path())
