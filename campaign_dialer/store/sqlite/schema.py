"""The SQLite schemas of the journal and the contact history, with their versions.

A version goes up with every change of shape; `MIGRATIONS[n]` takes a file from n-1 to n and
runs on open (`base.Database.ensure_schema`). A file newer than the code is refused (exit 78).
"""

from __future__ import annotations

JOURNAL_VERSION = 3
# The fate base (`store.fate_base`): its digest and version (one row), its chunks.
FATE_BASE_TABLES = """
CREATE TABLE IF NOT EXISTS fate_base (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    digest TEXT NOT NULL,
    rows INTEGER NOT NULL,
    version TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS fate_base_chunks (first INTEGER PRIMARY KEY, data BLOB NOT NULL)
"""
# migrations[n]: from version n-1 to n (applied in order on open).
JOURNAL_MIGRATIONS = {
    # The report counts rows by disposition and reason: an index answers it alone.
    2: "CREATE INDEX IF NOT EXISTS fates_disposition ON fates(disposition, reason)",
    # Every row's fate as planned, as columns; `fates` keeps only the rows that differ.
    3: FATE_BASE_TABLES,
}

JOURNAL_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS fates (
    row INTEGER PRIMARY KEY,
    person TEXT,
    disposition TEXT NOT NULL,
    reason TEXT,
    detail TEXT,
    next_open TEXT,
    evidence TEXT,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS attempts (
    id INTEGER PRIMARY KEY,
    person TEXT NOT NULL,
    row INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    idem_key TEXT NOT NULL UNIQUE,
    body TEXT NOT NULL,
    state TEXT NOT NULL,
    call_id TEXT,
    http_status INTEGER,
    error_code TEXT,
    error TEXT,
    status TEXT,
    outcome TEXT,
    ended_reason TEXT,
    posts INTEGER NOT NULL DEFAULT 0,
    intent_at TEXT NOT NULL,
    placed_at TEXT,
    ended_at TEXT,
    duration_seconds REAL,
    recording_url TEXT,
    evidence TEXT,
    extra TEXT,
    run_id INTEGER,
    updated_at TEXT NOT NULL,
    UNIQUE (person, attempt)
);
CREATE INDEX IF NOT EXISTS attempts_state ON attempts(state);
CREATE INDEX IF NOT EXISTS attempts_person ON attempts(person, attempt);
CREATE INDEX IF NOT EXISTS fates_disposition ON fates(disposition, reason);
""" + FATE_BASE_TABLES + """;
CREATE TABLE IF NOT EXISTS http_events (
    t REAL NOT NULL,
    run_id INTEGER,
    method TEXT,
    path TEXT,
    status INTEGER,
    code TEXT,
    latency REAL,
    error TEXT
);
CREATE TABLE IF NOT EXISTS webhook_events (
    id INTEGER PRIMARY KEY,
    call_id TEXT NOT NULL,
    event TEXT NOT NULL,
    status TEXT NOT NULL,
    body_sha256 TEXT NOT NULL,
    received_at TEXT NOT NULL,
    data TEXT NOT NULL,
    UNIQUE (call_id, event, status)
);
CREATE TABLE IF NOT EXISTS transcripts (
    attempt_id INTEGER PRIMARY KEY,
    call_id TEXT,
    text TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    started_at TEXT NOT NULL,
    ended_at TEXT,
    exit_code INTEGER,
    pid INTEGER,
    summary TEXT
);
"""

HISTORY_VERSION = 3
# migrations[n]: from version n-1 to n (applied in order on open).
HISTORY_MIGRATIONS = {
    # `records(campaign)` rebuilds a lost journal: one campaign's calls out of a team's.
    2: "CREATE INDEX IF NOT EXISTS calls_campaign ON calls(campaign, claimed_ts)",
    # Caller IDs: the number each call went out from (caps, stickiness, health) and rests.
    3: """
ALTER TABLE calls ADD COLUMN from_id TEXT;
ALTER TABLE calls ADD COLUMN from_number TEXT;
ALTER TABLE calls ADD COLUMN duration_s REAL
""",
}

HISTORY_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS calls (
    id INTEGER PRIMARY KEY,
    person TEXT NOT NULL,
    phone_e164 TEXT,
    contact_id TEXT,
    campaign TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    idem_key TEXT NOT NULL UNIQUE,
    state TEXT NOT NULL,
    call_id TEXT,
    status TEXT,
    claimed_at TEXT NOT NULL,
    claimed_ts REAL NOT NULL,
    placed_at TEXT,
    ended_at TEXT,
    record TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    from_id TEXT,
    from_number TEXT,
    duration_s REAL,
    UNIQUE (campaign, person, attempt)
);
CREATE INDEX IF NOT EXISTS calls_person ON calls(person, claimed_ts);
CREATE INDEX IF NOT EXISTS calls_recent ON calls(claimed_ts);
CREATE INDEX IF NOT EXISTS calls_campaign ON calls(campaign, claimed_ts);
CREATE INDEX IF NOT EXISTS calls_from ON calls(from_id, claimed_ts);
CREATE TABLE IF NOT EXISTS caller_id_rests (
    id INTEGER PRIMARY KEY,
    number_id TEXT NOT NULL,
    since_ts REAL NOT NULL,
    until_ts REAL NOT NULL,
    reason TEXT NOT NULL,
    detail TEXT NOT NULL,
    by TEXT NOT NULL,
    called_off_ts REAL
);
CREATE INDEX IF NOT EXISTS caller_id_rests_number ON caller_id_rests(number_id, until_ts);
CREATE TABLE IF NOT EXISTS dnc (
    id INTEGER PRIMARY KEY,
    phone_e164 TEXT NOT NULL,
    reason TEXT NOT NULL,
    campaign TEXT,
    evidence TEXT,
    at TEXT,
    source TEXT NOT NULL,
    UNIQUE (phone_e164, reason, evidence)
);
CREATE INDEX IF NOT EXISTS dnc_phone ON dnc(phone_e164);
CREATE TABLE IF NOT EXISTS imports (path TEXT PRIMARY KEY, stamp TEXT NOT NULL);
"""
