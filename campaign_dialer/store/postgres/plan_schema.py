"""The stored plan's tables (migration 4 of `schema`; the SQL that reads and writes them is
`store.postgres.plan`). Per plan: its fingerprint and the dictionaries its rows' codes point
into; per row: the numbers dialing needs and small integer codes, no JSON per row.
`IF NOT EXISTS`: a database put back to version 3 with the plan tables left in place (they
hold no journal data) migrates forward again."""

PLAN_MIGRATION = """
CREATE TABLE IF NOT EXISTS plans (
    campaign text PRIMARY KEY,
    fingerprint text NOT NULL,
    rows bigint NOT NULL,
    zones jsonb NOT NULL,
    verdicts jsonb NOT NULL,
    evidences jsonb NOT NULL,
    made_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS plan_rows (
    campaign text NOT NULL,
    ord integer NOT NULL,
    row integer NOT NULL,
    phone text,
    verdict integer NOT NULL,
    zone integer,
    evidence text,
    next_open bigint,
    cid text,
    others text,
    PRIMARY KEY (campaign, ord)
);
"""

# Migration 5: the rows as chunks (`store.plan_state.plan_chunks`, as on SQLite): a million
# rows read back as a few dozen bytea values, not a CSV of every row parsed again. The plans
# kept as rows are dropped (each campaign plans once more).
PLAN_CHUNKS_MIGRATION = """
DELETE FROM plans;
DROP TABLE IF EXISTS plan_rows;
CREATE TABLE IF NOT EXISTS plan_chunks (
    campaign text NOT NULL,
    first bigint NOT NULL,
    data bytea NOT NULL,
    PRIMARY KEY (campaign, first)
);
"""
