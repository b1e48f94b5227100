-- What each `orders verify` run checked and found, for the admin page.
CREATE TABLE verify_runs (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    started_at  timestamptz NOT NULL,
    finished_at timestamptz NOT NULL,
    streams     integer     NOT NULL,
    events      bigint      NOT NULL,
    problems    integer     NOT NULL,
    findings    jsonb       NOT NULL,  -- the first hundred
    digest      text        NOT NULL
);

-- The head of every stream the last run found sound. The next run checks that
-- each is still there, so a stream rewritten whole, every hash recomputed, is
-- caught even though its chain is consistent again.
CREATE TABLE verified_heads (
    stream_id   text        PRIMARY KEY,
    version     integer     NOT NULL,
    hash        bytea       NOT NULL,
    verified_at timestamptz NOT NULL
);
