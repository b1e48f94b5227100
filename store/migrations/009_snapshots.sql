-- Snapshots of order state: a cache that lets any version load in bounded time.
-- `shape` names the state's structure; a snapshot of another shape is ignored.
CREATE TABLE snapshots (
    stream_id text        NOT NULL,
    version   integer     NOT NULL,
    shape     text        NOT NULL,
    state     jsonb       NOT NULL,
    taken_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (stream_id, version)
);
