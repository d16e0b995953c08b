"""The contact history and DNC ledger in PostgreSQL: `store.interface.HistoryStore` for
every campaign of a team, on every machine, with the SQLite history's semantics
(`store.sqlite.history`).

`claim` is one transaction that first takes a transaction-scoped advisory lock on each of the
person's keys (sorted, so two claims never deadlock), then reads the past calls, applies
`store.policy.hold_back` (the same rule the plan applies) and inserts: two campaigns or
processes claiming the same person at once are serialised on that lock, under READ
COMMITTED, without SERIALIZABLE retries. Claims for different people never wait on each
other.
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
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
from campaign_dialer.store.postgres.db import Database

_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
# Advisory-lock namespace for persons (two-int form: (namespace, hashtext(key))).
PERSON_LOCK_NS = 15
# One advisory lock for every claim that takes a caller ID (and every rest written).
CALLER_ID_LOCK = 0x43414C4C  # "CALL"


class PgHistory:
    """The team's contact history and DNC ledger (see module doc)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._owns_db = False
        self.path = f"postgresql:{db.where}"

    @classmethod
    def open(cls, url: str) -> PgHistory:
        """A history with a pool of its own, closed with it."""
        h = cls(Database(url))
        h._owns_db = True
        return h

    def close(self) -> None:
        """Closes the pool if `open` made it; a shared Database is its opener's to close."""
        if self._owns_db:
            self.db.close()

    def __enter__(self) -> PgHistory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- calls ------------------------------------------------------------------------
    def claim(
        self, *, campaign: str, person: str, phone_e164: str | None, contact_id: str | None,
        attempt: int, idem_key: str, record: dict[str, Any], at: datetime, min_hours: float,
        state_limit: int | None, state: str | None = None, also: Sequence[str] = (),
        caller: CallerIdRequest | None = None,
    ) -> Claim:
        """Check the person's past calls (under every key) and record the claim, atomically.

        With `caller`, one more transaction-scoped advisory lock (the pool's, taken after the
        person's) serialises every claim that takes a caller ID, so the counts read here are
        the counts when the claim commits: no process or campaign can push a number past a
        cap."""
        keys = sorted({person, *also})
        tries = 0

        def claim(conn: Any) -> Claim:
            nonlocal tries
            tries += 1
            return self._claim(conn, keys, campaign=campaign, person=person,
                               phone_e164=phone_e164, contact_id=contact_id, attempt=attempt,
                               idem_key=idem_key, record=record, at=at, min_hours=min_hours,
                               state_limit=state_limit, state=state, caller=caller,
                               again=tries > 1)

        # Done again when the connection dies under it (a database restart): a claim whose
        # COMMIT was lost finds its own intent under the same key and stands (`again`).
        return self.db.transact(claim)

    def _claim(
        self, conn: Any, keys: list[str], *, campaign: str, person: str,
        phone_e164: str | None, contact_id: str | None, attempt: int, idem_key: str,
        record: dict[str, Any], at: datetime, min_hours: float, state_limit: int | None,
        state: str | None, caller: CallerIdRequest | None, again: bool,
    ) -> Claim:
        conn.execute(
            "SELECT pg_advisory_xact_lock(%s, hashtext(k)) "
            "FROM unnest(%s::text[]) AS k ORDER BY k",
            (PERSON_LOCK_NS, keys),
        )
        rows = conn.execute(
            "SELECT person, campaign, attempt, state, claimed_at, idem_key, from_id, "
            "from_number, record FROM contact_calls WHERE person = ANY(%s)", (keys,),
        ).fetchall()
        mine = [r for r in rows if r[1] == campaign and r[0] == person]
        if again:
            for r in mine:
                if r[2] != attempt or r[3] != "intent":
                    continue
                if caller is not None and r[6]:
                    # The number it took, and why: ours only when the key the request gives
                    # for that number is the stored one (`amend` may revise the key with it).
                    why = json_object(json_object(r[8]).get("evidence")).get("caller_id_reason")
                    taken = CallerPick(r[6], r[7] or "", why if isinstance(why, str) else "pool")
                    if caller.amend(taken)[0] == r[5]:
                        return Claim(True, caller=taken)
                elif r[5] == idem_key:  # our own claim, committed before its answer was lost
                    return Claim(True)
        done = [r for r in mine if r[2] >= attempt and r[3] != "not_placed"]
        if done:
            return Claim(False, "already_called",
                         f"attempt {max(r[2] for r in done)} is in the history")
        past = [PastCall(r[1], r[2], r[4], r[3]) for r in rows]
        held = hold_back(past, campaign=campaign, at=at, min_hours=min_hours,
                         state_limit=state_limit, state=state)
        if held is not None:
            return held
        pick: CallerPick | None = None
        if caller is not None:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (CALLER_ID_LOCK,))
            called = [r for r in rows if r[6] and r[3] not in NOT_CALLED]
            sticky = max(called, key=lambda r: r[4])[6] if called else None
            chosen = caller.choose(CallerIdFacts(
                sticky, _recent_by_number(conn, caller.numbers, at),
                _resting(conn, caller.numbers, at),
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
        if any(r[2] == attempt for r in mine):  # not placed before: reclaim it
            conn.execute(
                "UPDATE contact_calls SET state = 'intent', idem_key = %s, claimed_at = %s, "
                "record = %s, updated_at = now(), from_id = %s, from_number = %s "
                "WHERE campaign = %s AND person = %s AND attempt = %s",
                (idem_key, at, rec, from_id, from_number, campaign, person, attempt),
            )
        else:
            conn.execute(
                "INSERT INTO contact_calls(person, phone_e164, contact_id, campaign, "
                "attempt, idem_key, state, claimed_at, record, from_id, from_number) "
                "VALUES (%s, %s, %s, %s, %s, %s, 'intent', %s, %s, %s, %s)",
                (person, phone_e164, contact_id, campaign, attempt, idem_key, at, rec,
                 from_id, from_number),
            )
        return Claim(True, caller=pick)

    def sync(self, campaign: str, records: Iterable[dict[str, Any]]) -> None:
        """Upsert journal attempt records by key (what the journal knows wins)."""
        rows = []
        for r in records:
            body = r.get("body")
            body_d = json.loads(body) if isinstance(body, str) else (body or {})
            at = parse_iso(r.get("intent_at")) or datetime.now(UTC)
            rows.append((
                str(r["person"]), body_d.get("phone_number"), body_d.get("contact_id"),
                campaign, int(r["attempt"]), r["idem_key"], r["state"], r.get("call_id"),
                r.get("status"), at, r.get("placed_at"), r.get("ended_at"),
                json.dumps(r, sort_keys=True, default=str),
                body_d.get("from_phone_number_id"),
                json_object(r.get("evidence")).get("from_number"),
                r.get("duration_seconds"),
            ))
        if not rows:
            return
        def upsert(conn: Any) -> None:  # an upsert: done again after a lost connection
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO contact_calls(person, phone_e164, contact_id, campaign, "
                    "attempt, idem_key, state, call_id, status, claimed_at, placed_at, "
                    "ended_at, record, from_id, from_number, duration_s) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
                    "ON CONFLICT (idem_key) DO UPDATE SET state = excluded.state, "
                    "call_id = excluded.call_id, status = excluded.status, "
                    "placed_at = excluded.placed_at, ended_at = excluded.ended_at, "
                    "record = excluded.record, updated_at = now(), "
                    "from_id = coalesce(excluded.from_id, contact_calls.from_id), "
                    "from_number = coalesce(excluded.from_number, contact_calls.from_number), "
                    "duration_s = excluded.duration_s",
                    rows,
                )

        self.db.transact(upsert)

    def records(self, campaign: str) -> list[dict[str, Any]]:
        out = []
        for rec_text, st, call_id, status, placed_at, ended_at in self.db.fetchall(
            "SELECT record, state, call_id, status, placed_at, ended_at FROM contact_calls "
            "WHERE campaign = %s ORDER BY claimed_at, id", (campaign,),
        ):
            rec = json.loads(rec_text)
            rec.update(state=st, call_id=call_id, status=status, placed_at=placed_at,
                       ended_at=ended_at)
            out.append(rec)
        return out

    def call_seconds(self, limit: int = 2000) -> list[float]:
        out = []
        for placed, ended in self.db.fetchall(
            "SELECT placed_at, ended_at FROM contact_calls WHERE placed_at IS NOT NULL "
            "AND ended_at IS NOT NULL ORDER BY claimed_at DESC LIMIT %s", (limit,),
        ):
            a, b = parse_iso(placed), parse_iso(ended)
            if a is not None and b is not None and b >= a:
                out.append((b - a).total_seconds())
        return out

    def answer_facts(self, limit: int = 200_000) -> list[tuple[str, str | None, str | None]]:
        return [
            (person, status, record_local_times(rec))
            for person, status, rec in self.db.fetchall(
                "SELECT person, status, record FROM contact_calls WHERE state = 'final' AND "
                "placed_at IS NOT NULL ORDER BY claimed_at DESC LIMIT %s", (limit,),
            )
        ]

    def recent_calls(self, since: datetime) -> dict[str, list[PastCall]]:
        out: dict[str, list[PastCall]] = {}
        for person, campaign, attempt, state, at in self.db.fetchall(
            "SELECT person, campaign, attempt, state, claimed_at FROM contact_calls "
            "WHERE claimed_at > %s", (since,),
        ):
            out.setdefault(person, []).append(PastCall(campaign, attempt, at, state))
        return out

    # -- caller IDs ---------------------------------------------------------------------
    def caller_id_load(
        self, numbers: Sequence[str], at: datetime
    ) -> dict[str, list[datetime]]:
        """Each number's calls (any campaign) claimed after `at` - 24 h (a later one too:
        another process's clock may run ahead)."""
        return self.db.run(lambda conn: _recent_by_number(conn, numbers, at))

    def caller_id_rests(self, numbers: Sequence[str] | None = None) -> list[NumberRest]:
        sql = ("SELECT number_id, since, until, reason, detail, by, called_off "
               "FROM caller_id_rests")
        args: tuple[Any, ...] = ()
        if numbers is not None:
            sql += " WHERE number_id = ANY(%s)"
            args = (list(numbers),)
        return [NumberRest(*r) for r in self.db.fetchall(sql + " ORDER BY since, id", args)]

    def rest_number(
        self, number_id: str, *, since: datetime, until: datetime, reason: str, detail: str,
        by: str, only_if_active_before: datetime | None = None,
    ) -> bool:
        with self.db.transaction() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (CALLER_ID_LOCK,))
            if only_if_active_before is not None:
                found = conn.execute(
                    "SELECT max(coalesce(called_off, until)) FROM caller_id_rests "
                    "WHERE number_id = %s", (number_id,)
                ).fetchone()
                last = found[0] if found else None
                if last is not None and last > only_if_active_before:
                    return False
            if reason == "restored":
                conn.execute(
                    "UPDATE caller_id_rests SET called_off = %s WHERE number_id = %s "
                    "AND called_off IS NULL AND until > %s AND reason <> 'restored'",
                    (since, number_id, since),
                )
            conn.execute(
                "INSERT INTO caller_id_rests(number_id, since, until, reason, detail, by) "
                "VALUES (%s, %s, %s, %s, %s, %s)",
                (number_id, since, until, reason, detail, by),
            )
        return True

    def number_calls(
        self, number_id: str, *, after: datetime | None, limit: int
    ) -> list[NumberCall]:
        return [
            NumberCall(*r)
            for r in self.db.fetchall(
                "SELECT status, duration_s FROM contact_calls WHERE from_id = %s AND "
                "state = 'final' AND claimed_at > %s ORDER BY claimed_at DESC LIMIT %s",
                (number_id, after or datetime(1970, 1, 1, tzinfo=UTC), limit),
            )
        ]

    def sticky_numbers(self, persons: Sequence[str]) -> dict[str, str]:
        return {
            person: from_id
            for person, from_id in self.db.fetchall(
                "SELECT DISTINCT ON (person) person, from_id FROM contact_calls "
                "WHERE person = ANY(%s) AND from_id IS NOT NULL AND NOT (state = ANY(%s)) "
                "ORDER BY person, claimed_at DESC",
                (list(persons), list(NOT_CALLED)),
            )
        }

    # -- DNC ----------------------------------------------------------------------------
    def add_dnc(
        self, e164: str, *, reason: str, campaign: str, evidence: str, at: datetime,
        source: str = "dialer",
    ) -> None:
        self.db.execute(
            "INSERT INTO dnc_ledger(phone_e164, reason, campaign, evidence, at, source) "
            "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            (e164, reason, campaign, evidence or "", iso(at), source),
        )

    def is_dnc(self, e164: str) -> bool:
        return self.db.fetchone(
            "SELECT 1 FROM dnc_ledger WHERE phone_e164 = %s LIMIT 1", (e164,)
        ) is not None

    def dnc_numbers(self) -> set[str]:
        return {r[0] for r in self.db.fetchall("SELECT DISTINCT phone_e164 FROM dnc_ledger")}

    def import_ledger(self, path: Path) -> int:
        """Copy a ledger CSV's entries in (again only when the file changed)."""
        try:
            st = os.stat(path)
            text = Path(path).read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return 0
        except OSError as e:
            raise HistoryError(f"cannot read the DNC ledger {path}: {e.strerror}") from None
        key = str(Path(path).resolve())
        stamp = f"{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"
        if self.db.fetchone(
            "SELECT 1 FROM ledger_imports WHERE path = %s AND stamp = %s", (key, stamp)
        ):
            return 0
        rows = []
        for rec in csv.reader(text.splitlines()):
            if len(rec) >= 2 and _E164.fullmatch(rec[0]):
                rec = [*rec, "", "", ""]
                rows.append((rec[0], rec[1] or "ledger", rec[2], rec[3], rec[4], f"file:{key}"))
        added = 0
        with self.db.transaction() as conn, conn.cursor() as cur:
            for r in rows:
                cur.execute(
                    "INSERT INTO dnc_ledger(phone_e164, reason, campaign, evidence, at, "
                    "source) VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING", r,
                )
                added += max(cur.rowcount, 0)
            cur.execute(
                "INSERT INTO ledger_imports(path, stamp) VALUES (%s, %s) "
                "ON CONFLICT (path) DO UPDATE SET stamp = excluded.stamp", (key, stamp),
            )
        return added


def _recent_by_number(
    conn: Any, numbers: Sequence[str], at: datetime
) -> dict[str, list[datetime]]:
    out: dict[str, list[datetime]] = {n: [] for n in numbers}
    if not numbers:
        return out
    for from_id, claimed_at in conn.execute(
        "SELECT from_id, claimed_at FROM contact_calls WHERE from_id = ANY(%s) AND "
        "claimed_at > %s AND NOT (state = ANY(%s))",
        (list(numbers), at - timedelta(hours=24), list(NOT_CALLED)),
    ).fetchall():
        out[from_id].append(claimed_at)
    return out


def _resting(conn: Any, numbers: Sequence[str], at: datetime) -> dict[str, datetime]:
    if not numbers:
        return {}
    return dict(conn.execute(
        "SELECT number_id, max(until) FROM caller_id_rests WHERE number_id = ANY(%s) AND "
        "until > %s AND reason <> 'restored' AND called_off IS NULL GROUP BY number_id",
        (list(numbers), at),
    ).fetchall())
