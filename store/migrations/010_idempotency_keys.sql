-- Idempotency-Key of the JSON API: the request a key was first used for, and
-- the answer it got once there was one (status NULL: not answered yet).
CREATE TABLE idempotency_keys (
    key         text        PRIMARY KEY,
    fingerprint text        NOT NULL,
    status      smallint,
    body        bytea,
    etag        text,
    location    text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    answered_at timestamptz
);
