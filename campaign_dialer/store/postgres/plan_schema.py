"""The stored plan's tables (migration 4 of `schema`; the SQL that reads and writes them is
`store.postgres.plan`). Per plan: its fingerprint and the dictionaries its rows' codes point
into; its rows as chunks of columns (`store.plan_state.plan_chunks`, as on SQLite): a million
rows read back as a few dozen bytea values, no JSON and no text row per row."""

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
