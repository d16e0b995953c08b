"""The stored plan's tables (migration 4 of `schema`; the SQL that reads and writes them is
`store.postgres.plan`). Per plan: its fingerprint and the dictionaries its rows' codes point
into; per row: the numbers dialing needs and small integer codes, no JSON per row."""

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
CREATE TABLE plan_rows (
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
