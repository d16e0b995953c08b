"""The PostgreSQL schema as numbered migrations, applied forward when a store opens.

`migrate` runs in one transaction under a transaction-scoped advisory lock, so two processes
starting at the same moment apply each migration once (the second waits, then finds the
version current). A database whose `schema_version` is newer than `LATEST` was written by a
newer campaign-dialer: refused (exit 78), never downgraded or written to.

Design notes (SQL patterns borrowed, not the libraries: procrastinate and pgqueuer are job
frameworks with their own workers, the dialer keeps its engine):
- `rows` are claimed like procrastinate's `procrastinate_fetch_job`: a CTE selecting
  `FOR UPDATE SKIP LOCKED` feeding an `UPDATE ... RETURNING`, one round trip; a lease
  (`lease_owner`, `lease_until`) instead of a status, renewed by the owner's heartbeat (as
  procrastinate's worker heartbeats / pgqueuer's job heartbeat), taken over when expired.
- `rate_limits` is a zero-burst GCRA cell (one row per campaign and limit): each slot is
  `greatest(next_at, clock_timestamp())`, and `next_at` moves one interval on.
- `campaigns.live_calls` is kept by a trigger on `attempts` in the same transaction as every
  intent and every final, and an intent past `max_live_calls` is refused by that trigger.
"""

from __future__ import annotations

from typing import Any

from campaign_dialer.store.errors import SchemaTooNew
from campaign_dialer.store.postgres.plan_schema import CONTACTS_MIGRATION, PLAN_MIGRATION

# An arbitrary constant: the advisory lock key under which migrations run.
MIGRATION_LOCK = 7_415_001_015
# Attempt states that are live calls (or may be: an intent may have rung).
OPEN_STATES = ("intent", "placed")

MIGRATIONS: dict[int, str] = {
    1: """
CREATE TABLE campaigns (
    name text PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now(),
    control text NOT NULL DEFAULT 'active' CHECK (control IN ('active', 'paused', 'canceled')),
    control_at timestamptz,
    max_live_calls integer CHECK (max_live_calls IS NULL OR max_live_calls > 0),
    live_calls integer NOT NULL DEFAULT 0 CHECK (live_calls >= 0),
    meta jsonb NOT NULL DEFAULT '{}'::jsonb
);

CREATE TABLE processes (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    campaign text NOT NULL REFERENCES campaigns(name) ON DELETE CASCADE,
    host text NOT NULL,
    pid integer NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT now(),
    lease_seconds double precision NOT NULL,
    ended_at timestamptz,
    exit_code integer,
    summary jsonb
);
CREATE INDEX processes_campaign ON processes(campaign, ended_at);

CREATE TABLE rate_limits (
    campaign text NOT NULL REFERENCES campaigns(name) ON DELETE CASCADE,
    name text NOT NULL,
    interval_s double precision NOT NULL CHECK (interval_s >= 0),
    next_at timestamptz NOT NULL DEFAULT '-infinity',
    PRIMARY KEY (campaign, name)
);

CREATE TABLE rows (
    campaign text NOT NULL REFERENCES campaigns(name) ON DELETE CASCADE,
    row integer NOT NULL,
    person text NOT NULL,
    done boolean NOT NULL DEFAULT false,
    not_before timestamptz,
    lease_owner bigint REFERENCES processes(id) ON DELETE SET NULL,
    lease_until timestamptz,
    takeovers integer NOT NULL DEFAULT 0,
    PRIMARY KEY (campaign, row)
);
CREATE INDEX rows_todo ON rows(campaign, row) WHERE NOT done;
CREATE INDEX rows_owner ON rows(lease_owner) WHERE lease_owner IS NOT NULL;

CREATE TABLE attempts (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    campaign text NOT NULL REFERENCES campaigns(name) ON DELETE CASCADE,
    person text NOT NULL,
    row integer NOT NULL,
    attempt integer NOT NULL,
    idem_key text NOT NULL UNIQUE,
    body text NOT NULL,
    state text NOT NULL,
    call_id text,
    http_status integer,
    error_code text,
    error text,
    status text,
    outcome text,
    ended_reason text,
    posts integer NOT NULL DEFAULT 0,
    intent_at text NOT NULL,
    placed_at text,
    ended_at text,
    duration_seconds double precision,
    recording_url text,
    evidence text,
    extra text,
    run_id bigint,
    owner bigint REFERENCES processes(id) ON DELETE SET NULL,
    updated_at text NOT NULL,
    UNIQUE (campaign, person, attempt)
);
CREATE INDEX attempts_open ON attempts(campaign, row) WHERE state IN ('intent', 'placed');
CREATE INDEX attempts_state ON attempts(campaign, state);

-- The live-call count, in the same transaction as every intent and every final.
CREATE FUNCTION attempts_live_calls() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    d integer := 0;
    c text;
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.state IN ('intent', 'placed') THEN
        d := d - 1;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.state IN ('intent', 'placed') THEN
        d := d + 1;
    END IF;
    IF d = 0 THEN
        RETURN NULL;
    END IF;
    c := CASE WHEN TG_OP = 'DELETE' THEN OLD.campaign ELSE NEW.campaign END;
    IF d > 0 THEN
        UPDATE campaigns SET live_calls = live_calls + d
        WHERE name = c AND (max_live_calls IS NULL OR live_calls + d <= max_live_calls);
        IF NOT FOUND THEN
            RAISE EXCEPTION 'max_live_calls reached for campaign %', c
                USING ERRCODE = 'CDL01';
        END IF;
    ELSE
        UPDATE campaigns SET live_calls = greatest(live_calls + d, 0) WHERE name = c;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER attempts_live_calls AFTER INSERT OR UPDATE OF state OR DELETE ON attempts
    FOR EACH ROW EXECUTE FUNCTION attempts_live_calls();

CREATE TABLE transcripts (
    attempt_id bigint PRIMARY KEY REFERENCES attempts(id) ON DELETE CASCADE,
    call_id text,
    text text NOT NULL
);

CREATE TABLE webhook_events (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    campaign text NOT NULL REFERENCES campaigns(name) ON DELETE CASCADE,
    call_id text NOT NULL,
    event text NOT NULL,
    status text NOT NULL,
    body_sha256 text NOT NULL,
    received_at text NOT NULL,
    data text NOT NULL,
    UNIQUE (campaign, call_id, event, status)
);

CREATE TABLE fates (
    campaign text NOT NULL REFERENCES campaigns(name) ON DELETE CASCADE,
    row integer NOT NULL,
    person text,
    disposition text NOT NULL,
    reason text,
    detail text,
    next_open text,
    evidence text,
    updated_at text NOT NULL,
    PRIMARY KEY (campaign, row)
);

CREATE TABLE http_events (
    campaign text NOT NULL,
    t double precision NOT NULL,
    run_id bigint,
    method text,
    path text,
    status integer,
    code text,
    latency double precision,
    error text
);
CREATE INDEX http_events_campaign ON http_events(campaign, t);

-- The contact history: every call of every campaign (one truth for the cross-campaign rules).
CREATE TABLE contact_calls (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    person text NOT NULL,
    phone_e164 text,
    contact_id text,
    campaign text NOT NULL,
    attempt integer NOT NULL,
    idem_key text NOT NULL UNIQUE,
    state text NOT NULL,
    call_id text,
    status text,
    claimed_at timestamptz NOT NULL,
    placed_at text,
    ended_at text,
    record text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (campaign, person, attempt)
);
CREATE INDEX contact_calls_person ON contact_calls(person, claimed_at);
CREATE INDEX contact_calls_recent ON contact_calls(claimed_at);

-- The DNC ledger: opt-outs and 409s of every campaign.
CREATE TABLE dnc_ledger (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    phone_e164 text NOT NULL,
    reason text NOT NULL,
    campaign text,
    evidence text NOT NULL DEFAULT '',
    at text,
    source text NOT NULL,
    UNIQUE (phone_e164, reason, evidence)
);
CREATE INDEX dnc_ledger_phone ON dnc_ledger(phone_e164);

-- Ledger CSV files already copied in (path -> inode:size:mtime), like the SQLite history.
CREATE TABLE ledger_imports (path text PRIMARY KEY, stamp text NOT NULL);
""",
    # The report counts rows by disposition and reason; `records(campaign)` rebuilds a lost
    # journal from a team's history: an index for each (as the SQLite backend's version 2).
    2: """
CREATE INDEX fates_disposition ON fates(campaign, disposition, reason);
CREATE INDEX contact_calls_campaign ON contact_calls(campaign, claimed_at);
""",
    # Caller IDs: the number each call went out from (caps, stickiness, health) and rests.
    3: """
ALTER TABLE contact_calls ADD COLUMN from_id text;
ALTER TABLE contact_calls ADD COLUMN from_number text;
ALTER TABLE contact_calls ADD COLUMN duration_s double precision;
CREATE INDEX contact_calls_from ON contact_calls(from_id, claimed_at);
CREATE TABLE caller_id_rests (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    number_id text NOT NULL,
    since timestamptz NOT NULL,
    until timestamptz NOT NULL,
    reason text NOT NULL,
    detail text NOT NULL,
    by text NOT NULL,
    called_off timestamptz
);
CREATE INDEX caller_id_rests_number ON caller_id_rests(number_id, until);
""",
    # The stored plan of each campaign's current inputs (`store.postgres.plan`).
    4: PLAN_MIGRATION,
    # The fate base of each campaign's journal (`store.fate_base`): every row's fate as
    # planned, as chunks of columns (already zstd: kept out of line, not compressed again);
    # `fates` then keeps only the rows that differ from it.
    5: """
CREATE TABLE fate_bases (
    campaign text PRIMARY KEY REFERENCES campaigns(name) ON DELETE CASCADE,
    digest text NOT NULL,
    rows bigint NOT NULL,
    version text NOT NULL,
    made_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE fate_base_chunks (
    campaign text NOT NULL REFERENCES campaigns(name) ON DELETE CASCADE,
    first bigint NOT NULL,
    data bytea NOT NULL,
    PRIMARY KEY (campaign, first)
);
ALTER TABLE fate_base_chunks ALTER COLUMN data SET STORAGE EXTERNAL;
""",
    # The contacts the results read, kept by the process that planned (`store.postgres.plan`).
    6: CONTACTS_MIGRATION,
}
LATEST = max(MIGRATIONS)


def migrate(conn: Any, *, where: str = "the store database") -> int:
    """Bring the schema to `LATEST` in one transaction; returns the version found before.

    `conn` is a psycopg connection. Raises SchemaTooNew when the database is ahead.
    """
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        # Read first: a current database (or a read-only one) gets no write at all.
        if conn.execute("SELECT to_regclass('schema_version')").fetchone()[0] is None:
            conn.execute(
                "CREATE TABLE schema_version ("
                " version integer PRIMARY KEY,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
        row = conn.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()
        found = int(row[0])
        if found > LATEST:
            raise SchemaTooNew("store database", where, found, LATEST)
        for version in range(found + 1, LATEST + 1):
            conn.execute(MIGRATIONS[version])
            conn.execute("INSERT INTO schema_version(version) VALUES (%s)", (version,))
    return found
