-- Accounts of people, API tokens of programs, server-side sessions, and the access log.

CREATE TABLE accounts (
    account_id    uuid        PRIMARY KEY,
    name          text        NOT NULL UNIQUE,
    role          text        NOT NULL CHECK (role IN ('viewer', 'clerk', 'admin', 'customer')),
    customer_id   text        CHECK ((role = 'customer') = (customer_id IS NOT NULL)),
    password_hash text        NOT NULL,  -- Argon2id, with its parameters and salt
    disabled_at   timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- A session's id lives only in the person's cookie; the table keeps its SHA-256.
CREATE TABLE sessions (
    id_hash      bytea       PRIMARY KEY,
    account_id   uuid        NOT NULL REFERENCES accounts ON DELETE CASCADE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL
);
CREATE INDEX sessions_of_account ON sessions (account_id);

-- An API token is shown once when made; the table keeps its SHA-256.
CREATE TABLE api_tokens (
    token_id    uuid        PRIMARY KEY,
    name        text        NOT NULL UNIQUE,
    token_hash  bytea       NOT NULL UNIQUE,
    role        text        NOT NULL CHECK (role IN ('viewer', 'clerk', 'admin', 'customer')),
    customer_id text        CHECK ((role = 'customer') = (customer_id IS NOT NULL)),
    created_by  text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);

-- Failed sign-ins, by the name tried and by the client, for the throttle; old ones are purged.
CREATE TABLE sign_in_failures (
    at       timestamptz NOT NULL DEFAULT now(),
    username text        NOT NULL,
    client   text        NOT NULL
);
CREATE INDEX sign_in_failures_by_name ON sign_in_failures (username, at);
CREATE INDEX sign_in_failures_by_client ON sign_in_failures (client, at);

-- The one-time link that creates the first admin (its SHA-256); gone once an admin exists.
CREATE TABLE setup_tokens (
    token_hash bytea       PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Who signed in, failed, signed out, changed an account or a token: append-only, like the log.
CREATE TABLE access_log (
    entry_id   bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now(),
    kind       text        NOT NULL,
    actor_id   text,
    actor_name text,
    subject    text,
    detail     text        NOT NULL DEFAULT '',
    client     text
);

-- One statement-level trigger refuses every change: no row of the access log is ever touched.
CREATE FUNCTION access_log_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'the access log is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege'; END
$$;
CREATE TRIGGER access_log_refuse_change BEFORE UPDATE OR DELETE OR TRUNCATE ON access_log
    FOR EACH STATEMENT EXECUTE FUNCTION access_log_is_append_only();
