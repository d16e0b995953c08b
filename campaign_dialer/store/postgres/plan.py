"""The stored plan on PostgreSQL: `plans` (one per campaign) and `plan_rows` (migration 4).

One process plans: `planning()` holds a session advisory lock on the campaign's plan while
the caller looks for a current plan and, finding none, makes and saves it; every other
process starting at the same moment waits on that lock, then finds the plan saved and reads
it instead of planning. `save` replaces a plan in one transaction (COPY of the rows), so a
reader sees the old plan or the new one, never half of one.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from campaign_dialer.store.plan_state import NO_TIME, EncodedPlan, text_array

from .db import Database
from .plan_schema import PLAN_MIGRATION

__all__ = ["PLAN_LOCK", "PLAN_MIGRATION", "PgPlanStore"]

# An arbitrary constant: the advisory lock class under which a campaign's plan is made
# (the second key is the campaign's name, hashed by the database).
PLAN_LOCK = 7_415_002

_COLUMNS = "ord, row, phone, verdict, zone, evidence, next_open, cid, others"
_TYPES = {
    "ord": pa.int64(), "row": pa.int64(), "phone": pa.large_string(), "verdict": pa.int32(),
    "zone": pa.int32(), "evidence": pa.large_string(), "next_open": pa.int64(),
    "cid": pa.large_string(), "others": pa.large_string(),
}


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

    def save(self, plan: EncodedPlan) -> None:
        n = len(plan)
        nxt = np.asarray(plan.next_open, dtype=np.int64)
        table = pa.table({
            "campaign": pa.array([self.campaign] * n, type=pa.large_string()),
            "ord": pa.array(np.arange(n, dtype=np.int64)),
            "row": pa.array(np.asarray(plan.row, dtype=np.int64)),
            "phone": text_array(plan.phone),
            "verdict": pa.array(np.asarray(plan.verdict, dtype=np.int32)),
            "zone": pa.array(np.asarray(plan.zone, dtype=np.int32)),
            "evidence": _joined_codes(plan.evidence, n),
            "next_open": pa.array(nxt, mask=nxt == NO_TIME),
            "cid": text_array(plan.cid),
            "others": text_array(plan.others),
        })
        buf = io.BytesIO()
        # CSV: a null is an empty unquoted field, which COPY reads as NULL.
        pacsv.write_csv(table, buf, pacsv.WriteOptions(include_header=False))
        data = buf.getvalue()

        def write(conn: Any) -> None:
            conn.execute("DELETE FROM plan_rows WHERE campaign = %s", (self.campaign,))
            conn.execute("DELETE FROM plans WHERE campaign = %s", (self.campaign,))
            with conn.cursor() as cur, cur.copy(
                f"COPY plan_rows (campaign, {_COLUMNS}) FROM STDIN (FORMAT csv)"
            ) as copy:
                copy.write(data)
            conn.execute(
                "INSERT INTO plans(campaign, fingerprint, rows, zones, verdicts, evidences) "
                "VALUES (%s, %s, %s, %s, %s, %s)",
                (self.campaign, plan.fingerprint, n, json.dumps(plan.zones),
                 json.dumps(plan.verdicts),
                 json.dumps({"keys": plan.evidence_keys, "values": plan.evidence_values})),
            )

        self.db.transact(write)

    def load(self) -> EncodedPlan | None:
        def read(conn: Any) -> tuple[Any, bytes] | None:
            head = conn.execute(
                "SELECT fingerprint, zones, verdicts, evidences FROM plans WHERE campaign = %s",
                (self.campaign,),
            ).fetchone()
            if head is None:
                return None
            buf = io.BytesIO()
            with conn.cursor() as cur, cur.copy(
                f"COPY (SELECT {_COLUMNS} FROM plan_rows WHERE campaign = "
                f"{_sql_text(self.campaign)} ORDER BY ord) TO STDOUT (FORMAT csv)"
            ) as copy:
                for chunk in copy:
                    buf.write(chunk)
            return head, buf.getvalue()

        with self.db.snapshot():  # the plans row and its rows from one state
            found = self.db.attempt(read)
        if found is None:
            return None
        (fingerprint, zones, verdicts, evidences), data = found
        names = list(_TYPES)
        if data:
            t = pacsv.read_csv(
                io.BytesIO(data),
                read_options=pacsv.ReadOptions(column_names=names),
                convert_options=pacsv.ConvertOptions(
                    column_types=_TYPES, strings_can_be_null=True, quoted_strings_can_be_null=False,
                ),
            )
        else:
            t = pa.table({k: pa.array([], type=v) for k, v in _TYPES.items()})
        nxt = t["next_open"].combine_chunks()
        ev = _json(evidences)
        return EncodedPlan(
            fingerprint=str(fingerprint),
            row=t["row"].to_numpy(),
            phone=text_array(t["phone"]), cid=text_array(t["cid"]),
            others=text_array(t["others"]),
            zone=t["zone"].to_numpy().astype(np.int32), zones=_json(zones),
            verdict=t["verdict"].to_numpy().astype(np.int32),
            verdicts=[tuple(v) for v in _json(verdicts)],
            evidence_keys=list(ev["keys"]), evidence=_split_codes(t["evidence"], len(ev["keys"])),
            evidence_values=ev["values"],
            next_open=nxt.fill_null(NO_TIME).to_numpy(),
        )

    def close(self) -> None:
        """The database is the caller's (`Stores`): nothing of its own to close."""


def _joined_codes(columns: list[np.ndarray], n: int) -> pa.Array:
    """Per row, its evidence codes joined by commas, empty for none ("3,,0,12"): a few bytes,
    no JSON per row."""
    if not columns:
        return pa.array([""] * n, pa.large_string())
    none = pa.scalar("", pa.large_string())
    parts = [
        pc.if_else(pa.array(np.asarray(c) >= 0),
                   pc.cast(pa.array(np.asarray(c)), pa.large_string()), none)
        for c in columns
    ]
    return pc.binary_join_element_wise(*parts, pa.scalar(",", pa.large_string()))


def _split_codes(joined: Any, k: int) -> list[np.ndarray]:
    """`_joined_codes` read back: k code columns (-1 for none)."""
    if k == 0:
        return []
    arr = joined.combine_chunks() if isinstance(joined, pa.ChunkedArray) else joined
    lists = pc.split_pattern(pc.fill_null(arr, ""), ",")
    flat = pc.list_flatten(lists)
    codes = pc.fill_null(pc.cast(pc.if_else(pc.equal(flat, ""), None, flat), pa.int32()), -1)
    table = np.asarray(codes, dtype=np.int32).reshape(-1, k)
    return [table[:, j].copy() for j in range(k)]


def _json(v: Any) -> Any:
    return json.loads(v) if isinstance(v, str) else v


def _sql_text(s: str) -> str:
    """A string literal for COPY's query (which takes no parameters)."""
    return "'" + s.replace("'", "''") + "'"
