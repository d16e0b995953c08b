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
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from campaign_dialer.store.errors import HistoryError
from campaign_dialer.store.model import (
    NOT_CALLED,
    CallerIdFacts,
    CallerIdRequest,
    CallerPick,
    Claim,
    NumberCall,
    NumberRest,
    PastCall,
    iso,
    json_object,
    parse_iso,
    record_local_times,
)
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
        caller: CallerIdRequest | None = None,
    ) -> Claim:
        """Check the person's past calls and insert the claim, in one transaction.

        `also`: the person's other keys (the row's other numbers): a call another campaign
        placed to any of them counts as a call to this person. `caller`: take a number of
        the pool too, counted in this same transaction (BEGIN IMMEDIATE: one writer at a
        time across processes), so no two claims can push a number past a cap."""
        ts = at.timestamp()
        now = _iso(at)
        keys = [person, *(k for k in also if k != person)]
        pick: CallerPick | None = None
        with self._write() as db:
            rows = db.execute(
                "SELECT person, campaign, attempt, state, claimed_ts, from_id FROM calls "
                f"WHERE person IN ({','.join('?' * len(keys))})",
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
            if caller is not None:
                called = [r for r in rows if r["from_id"] and r["state"] not in NOT_CALLED]
                sticky = max(called, key=lambda r: r["claimed_ts"])["from_id"] if called else None
                def q(sql: str, args: tuple[Any, ...]) -> list[Any]:
                    return db.execute(sql, args).fetchall()

                chosen = caller.choose(CallerIdFacts(
                    sticky, _recent_by_number(q, caller.numbers, ts),
                    _resting(q, caller.numbers, ts),
                ))
                if isinstance(chosen, Claim):
                    return chosen
                pick = chosen
                idem_key, record = caller.amend(pick)
            rec = json.dumps(
                {**record, "person": person, "attempt": attempt, "idem_key": idem_key,
                 "state": "intent"}, sort_keys=True,
            )
            body = json_object(record.get("body"))
            from_id = pick.id if pick else body.get("from_phone_number_id")
            from_number = pick.number if pick else None
            if any(r["attempt"] == attempt for r in mine):  # not placed before: reclaim it
                db.execute(
                    "UPDATE calls SET state='intent', idem_key=?, claimed_at=?, claimed_ts=?, "
                    "record=?, updated_at=?, from_id=?, from_number=? "
                    "WHERE campaign=? AND person=? AND attempt=?",
                    (idem_key, now, ts, rec, now, from_id, from_number, campaign, person,
                     attempt),
                )
            else:
                db.execute(
                    "INSERT INTO calls(person, phone_e164, contact_id, campaign, attempt, "
                    "idem_key, state, claimed_at, claimed_ts, record, updated_at, from_id, "
                    "from_number) VALUES(?,?,?,?,?,?,'intent',?,?,?,?,?,?)",
                    (person, phone_e164, contact_id, campaign, attempt, idem_key, now, ts,
                     rec, now, from_id, from_number),
                )
        return Claim(True, caller=pick)

    def sync(self, campaign: str, records: Iterable[dict[str, Any]]) -> None:
        """Upsert journal attempt records (what the journal knows wins for its own keys)."""
        rows = []
        for r in records:
            person = str(r["person"])
            body = r.get("body")
            body_d = json.loads(body) if isinstance(body, str) else (body or {})
            at = parse_iso(r.get("intent_at")) or datetime.now(UTC)
            ev = json_object(r.get("evidence"))
            rows.append((
                person, body_d.get("phone_number"), body_d.get("contact_id"), campaign,
                int(r["attempt"]), r["idem_key"], r["state"], r.get("call_id"), r.get("status"),
                _iso(at), at.timestamp(), r.get("placed_at"), r.get("ended_at"),
                json.dumps(r, sort_keys=True, default=str), r.get("updated_at") or _iso(at),
                body_d.get("from_phone_number_id"), ev.get("from_number"),
                r.get("duration_seconds"),
            ))
        if not rows:
            return
        with self._write() as db:
            db.executemany(
                "INSERT INTO calls(person, phone_e164, contact_id, campaign, attempt, idem_key, "
                "state, call_id, status, claimed_at, claimed_ts, placed_at, ended_at, record, "
                "updated_at, from_id, from_number, duration_s) "
                "VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) "
                "ON CONFLICT(idem_key) DO UPDATE SET state=excluded.state, "
                "call_id=excluded.call_id, status=excluded.status, "
                "placed_at=excluded.placed_at, ended_at=excluded.ended_at, "
                "record=excluded.record, updated_at=excluded.updated_at, "
                "from_id=coalesce(excluded.from_id, calls.from_id), "
                "from_number=coalesce(excluded.from_number, calls.from_number), "
                "duration_s=excluded.duration_s",
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

    def answer_facts(self, limit: int = 200_000) -> list[tuple[str, str | None, str | None]]:
        """(person, final status, local_times) of recent placed calls that ended."""
        return [
            (r["person"], r["status"], record_local_times(r["record"]))
            for r in self._read(
                "SELECT person, status, record FROM calls WHERE state='final' AND placed_at "
                "IS NOT NULL ORDER BY claimed_ts DESC LIMIT ?", (limit,),
            )
        ]

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

    # -- caller IDs -------------------------------------------------------------------
    def caller_id_load(
        self, numbers: Sequence[str], at: datetime
    ) -> dict[str, list[datetime]]:
        """Each number's calls (any campaign) claimed after `at` - 24 h (a later one too:
        another process's clock may run ahead)."""
        return _recent_by_number(self._read, numbers, at.timestamp())

    def caller_id_rests(self, numbers: Sequence[str] | None = None) -> list[NumberRest]:
        """Every rest (and restore) of the numbers (or all), oldest first."""
        sql = "SELECT * FROM caller_id_rests"
        args: tuple[Any, ...] = ()
        if numbers is not None:
            sql += f" WHERE number_id IN ({','.join('?' * len(numbers))})"
            args = tuple(numbers)
        return [
            NumberRest(r["number_id"], _from_ts(r["since_ts"]), _from_ts(r["until_ts"]),
                       r["reason"], r["detail"], r["by"],
                       None if r["called_off_ts"] is None else _from_ts(r["called_off_ts"]))
            for r in self._read(sql + " ORDER BY since_ts, id", args)
        ]

    def rest_number(
        self, number_id: str, *, since: datetime, until: datetime, reason: str, detail: str,
        by: str, only_if_active_before: datetime | None = None,
    ) -> bool:
        """Rest a number until `until` (a restore: `until` = `since`, ending any rest).

        `only_if_active_before`: the health rule's guard against two processes resting the
        same number for the same calls: nothing is written when a rest or restore of it
        ended after that moment. True when written."""
        s, u = since.timestamp(), until.timestamp()
        with self._write() as db:
            if only_if_active_before is not None:
                last = db.execute(
                    "SELECT max(coalesce(called_off_ts, until_ts)) FROM caller_id_rests "
                    "WHERE number_id=?", (number_id,)
                ).fetchone()[0]
                if last is not None and last > only_if_active_before.timestamp():
                    return False
            if reason == "restored":
                db.execute(
                    # every rest not over yet (one begun on a clock ahead of ours too)
                    "UPDATE caller_id_rests SET called_off_ts=? WHERE number_id=? "
                    "AND until_ts>? AND reason<>'restored' AND called_off_ts IS NULL",
                    (s, number_id, s),
                )
            db.execute(
                "INSERT INTO caller_id_rests(number_id, since_ts, until_ts, reason, detail, by) "
                "VALUES(?,?,?,?,?,?)",
                (number_id, s, u, reason, detail, by),
            )
        return True

    def number_calls(
        self, number_id: str, *, after: datetime | None, limit: int
    ) -> list[NumberCall]:
        """The number's last `limit` finished calls claimed after `after`, newest first."""
        return [
            NumberCall(r["status"], r["duration_s"])
            for r in self._read(
                "SELECT status, duration_s FROM calls WHERE from_id=? AND state='final' "
                "AND claimed_ts>? ORDER BY claimed_ts DESC LIMIT ?",
                (number_id, after.timestamp() if after else 0.0, limit),
            )
        ]

    def sticky_numbers(self, persons: Sequence[str]) -> dict[str, str]:
        """person -> the number that last called them (any campaign)."""
        out: dict[str, tuple[float, str]] = {}
        for i in range(0, len(persons), 500):
            chunk = persons[i:i + 500]
            for r in self._read(
                "SELECT person, from_id, claimed_ts FROM calls WHERE from_id IS NOT NULL AND "
                f"state NOT IN ({','.join('?' * len(NOT_CALLED))}) AND person IN "
                f"({','.join('?' * len(chunk))})", (*NOT_CALLED, *chunk),
            ):
                if r["person"] not in out or out[r["person"]][0] < r["claimed_ts"]:
                    out[r["person"]] = (r["claimed_ts"], r["from_id"])
        return {p: v[1] for p, v in out.items()}

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


Query = Callable[[str, tuple[Any, ...]], list[Any]]


def _recent_by_number(q: Query, numbers: Sequence[str], ts: float) -> dict[str, list[datetime]]:
    if not numbers:
        return {}
    out: dict[str, list[datetime]] = {n: [] for n in numbers}
    for r in q(
        "SELECT from_id, claimed_ts FROM calls WHERE from_id IN "
        f"({','.join('?' * len(numbers))}) AND claimed_ts > ? AND state "
        f"NOT IN ({','.join('?' * len(NOT_CALLED))})",
        (*numbers, ts - 86_400.0, *NOT_CALLED),
    ):
        out[r[0]].append(_from_ts(r[1]))
    return out


def _resting(q: Query, numbers: Sequence[str], ts: float) -> dict[str, datetime]:
    if not numbers:
        return {}
    return {
        r[0]: _from_ts(r[1])
        for r in q(
            "SELECT number_id, max(until_ts) FROM caller_id_rests WHERE number_id IN "
            f"({','.join('?' * len(numbers))}) AND until_ts > ? AND reason <> 'restored' "
            "AND called_off_ts IS NULL GROUP BY number_id",
            (*numbers, ts),
        )
    }


def open_history(path: Path | None = None) -> SqliteHistory:
    return SqliteHistory(path or default_path())
