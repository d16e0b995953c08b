"""The stored plan's tables (migration 4 of `schema`; the SQL that reads and writes them is
`store.postgres.plan`). Per plan: its fingerprint and the dictionaries its rows' codes point
into; its rows as chunks of columns (`store.plan_state.plan_chunks`, as on SQLite): a million
rows read back as a few dozen bytea values, no JSON and no text row per row.
Migration 6 adds the contacts the results read, as the planning process kept them
(`store.kept_contacts`: an Arrow IPC file, zstd): the file's bytes in parts, so a process on
another machine writes its results from them instead of reading the contacts CSV again."""

PLAN_MIGRATION = """
CREATE TABLE plans (
    campaign text PRIMARY KEY,
    fingerprint text NOT NULL,
    rows bigint NOT NULL,
    zones jsonb NOT NULL,
    verdicts jsonb NOT NULL,
    evidences jsonb NOT NULL,
    made_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE plan_chunks (
    campaign text NOT NULL,
    first bigint NOT NULL,
    data bytea NOT NULL,
    PRIMARY KEY (campaign, first)
);
"""

CONTACTS_MIGRATION = """
CREATE TABLE kept_contacts (
    campaign text PRIMARY KEY,
    fingerprint text NOT NULL,
    bytes bigint NOT NULL,
    made_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE kept_contacts_parts (
    campaign text NOT NULL,
    seq integer NOT NULL,
    data bytea NOT NULL,
    PRIMARY KEY (campaign, seq)
);
ALTER TABLE kept_contacts_parts ALTER COLUMN data SET STORAGE EXTERNAL;
"""
