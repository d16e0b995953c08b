"""results.csv: one row per input data row, in input order, with its fate.

Rewritten atomically from the journal (never from memory) at the end of every run and on
demand. The column names are a public interface, documented in the README.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from campaign_dialer.contacts import Contacts
from campaign_dialer.store import Attempt, Journal

RESULT_COLUMNS = [
    "row", "contact_id", "phone_raw", "phone_e164", "disposition", "reason", "detail",
    "call_id", "status", "outcome", "ended_reason", "http_status", "error_code", "attempts",
    "placed_at", "ended_at", "duration_seconds", "next_open", "recording_url",
    "consent_event_at", "consent_source", "local_times", "zones", "dnc_lists_checked",
    "dialed_at", "phone_column", "phone_extension", "agent_id", "rnd_queried_at",
]
EVIDENCE_COLUMNS = ("consent_event_at", "consent_source", "local_times", "zones",
                    "dnc_lists_checked", "dialed_at", "rnd_queried_at")
_PLAIN_NUMBER = re.compile(r"^[+-]?\d+(\.\d+)?([eE][+-]?\d+)?$")


def neutralize(value: Any) -> Any:
    """Keep a spreadsheet from running a cell as a formula; an E.164 phone stays as it is."""
    if not isinstance(value, str) or not value:
        return value
    first = value[0]
    if first in "=@\t\r" or (first in "+-" and not _PLAIN_NUMBER.match(value)):
        return "'" + value
    return value


def results_frame(contacts: Contacts, journal: Journal) -> pd.DataFrame:
    """Join the input rows with their fates and latest attempts."""
    fates = journal.fates()
    by_person: dict[str, list[Attempt]] = journal.attempts_by_person()
    cf = contacts.frame
    records: list[dict[str, Any]] = []
    cids, raws, e164s = (cf[c].tolist() for c in ("contact_id", "phone_raw", "phone_e164"))
    n = len(cf)
    columns = (
        cf[c].tolist() if c in cf.columns else [None] * n
        for c in ("phone_column", "phone_extension")
    )
    phone_cols, exts = columns
    for i, row in enumerate(cf["row"].tolist()):
        f = fates.get(int(row))
        rec: dict[str, Any] = {
            "row": int(row),
            "contact_id": _s(cids[i]),
            "phone_raw": _s(raws[i]),
            "phone_e164": _s(e164s[i]),
            "phone_column": _s(phone_cols[i]),
            "phone_extension": _s(exts[i]),
            "disposition": f.disposition if f else "pending",
            "reason": f.reason if f else "not_planned",
            "detail": f.detail if f else "",
            "next_open": f.next_open if f else None,
        }
        ev = (f.evidence or {}) if f else {}
        for c in EVIDENCE_COLUMNS:
            rec[c] = ev.get(c)
        attempts = by_person.get(f.person or "", []) if f and f.person else []
        if f and f.disposition != "suppressed" and attempts:
            a = attempts[-1]
            rec.update(
                call_id=a.call_id, status=a.status, outcome=a.outcome,
                ended_reason=a.ended_reason, http_status=a.http_status,
                error_code=a.error_code, attempts=len(attempts), placed_at=a.placed_at,
                ended_at=a.ended_at, duration_seconds=a.duration_seconds,
                recording_url=a.recording_url, agent_id=(a.body or {}).get("agent_id"),
            )
            for c in EVIDENCE_COLUMNS:
                if a.evidence.get(c):
                    rec[c] = a.evidence[c]
        else:
            rec["attempts"] = 0
        records.append(rec)
    out = pd.DataFrame.from_records(records, columns=RESULT_COLUMNS)
    out["attempts"] = out["attempts"].astype("Int64")
    out["http_status"] = out["http_status"].astype("Int64")
    extra = [c for c in contacts.extra_columns if c in cf.columns]
    passthrough = cf[extra].copy()
    passthrough.columns = [c if c not in RESULT_COLUMNS else f"input.{c}" for c in extra]
    return pd.concat([out, passthrough.reset_index(drop=True)], axis=1)


def _s(v: Any) -> Any:
    return None if v is None or v is pd.NA or (isinstance(v, float) and v != v) else v


def safe_for_spreadsheets(df: pd.DataFrame) -> pd.DataFrame:
    """Cells and header names a spreadsheet would run as a formula get a leading `'`."""
    out = df.copy()
    for c in out.columns:
        if out[c].dtype == object or pd.api.types.is_string_dtype(out[c]):
            out[c] = out[c].map(neutralize)
    out.columns = [neutralize(str(c)) for c in out.columns]
    return out


def write_atomic_csv(df: pd.DataFrame, path: Path) -> None:
    """RFC 4180 CSV (CRLF between records), so a cell holding a bare CR or LF is quoted: with
    "\n" alone as the record end, a CR inside a name would split the row in a spreadsheet."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            df.to_csv(fh, index=False, lineterminator="\r\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_results(contacts: Contacts, journal: Journal, path: Path) -> pd.DataFrame:
    df = results_frame(contacts, journal)
    write_atomic_csv(safe_for_spreadsheets(df), path)
    return df


TRANSCRIPT_COLUMNS = ["call_id", "row", "contact", "text"]


def transcripts_frame(contacts: Contacts, journal: Journal) -> pd.DataFrame:
    """One row per recorded transcript: the call, the input row, who it was (contact id,
    else the number dialed) and the text, for analysis outside the dialer."""
    cf = contacts.frame
    who = {
        int(r): _s(cid) or _s(e164)
        for r, cid, e164 in zip(
            cf["row"].tolist(), cf["contact_id"].tolist(), cf["phone_e164"].tolist(),
            strict=True,
        )
    }
    records = [
        {"call_id": t["call_id"], "row": int(t["row"]), "contact": who.get(int(t["row"])),
         "text": t["text"]}
        for t in journal.transcripts()
    ]
    out = pd.DataFrame.from_records(records, columns=TRANSCRIPT_COLUMNS)
    out["row"] = out["row"].astype("Int64")
    return out


def write_transcripts(contacts: Contacts, journal: Journal, path: Path) -> pd.DataFrame:
    """transcripts.parquet, written whole then moved into place (raw values: not a sheet)."""
    df = transcripts_frame(contacts, journal)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        df.to_parquet(tmp, index=False, engine="pyarrow")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return df
