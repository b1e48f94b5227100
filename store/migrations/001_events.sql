-- The event log: append-only, one row per event.
CREATE TABLE events (
    position       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    stream_id      text        NOT NULL,
    version        integer     NOT NULL CHECK (version > 0),
    event_id       uuid        NOT NULL UNIQUE,
    type           text        NOT NULL,
    schema_version smallint    NOT NULL CHECK (schema_version > 0),
    data           jsonb       NOT NULL,
    metadata       jsonb       NOT NULL DEFAULT '{}',
    recorded_at    timestamptz NOT NULL DEFAULT now(),
    tx_id          xid8        NOT NULL DEFAULT pg_current_xact_id(),
    -- The optimistic concurrency check: two writers cannot both take version n.
    CONSTRAINT events_stream_version UNIQUE (stream_id, version)
);

-- Catch-up readers walk the log in commit-safe order (see store/subscriptions).
CREATE INDEX events_tx_position ON events (tx_id, position);
CREATE INDEX events_recorded_at ON events (recorded_at);
CREATE INDEX events_type_position ON events (type, position);

CREATE FUNCTION events_are_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'events are immutable: % refused on the events table', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER events_refuse_change BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_are_immutable();
CREATE TRIGGER events_refuse_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_are_immutable();

-- Every command handled, so a retry with the same command id writes nothing new.
CREATE TABLE commands (
    command_id    uuid        PRIMARY KEY,
    stream_id     text        NOT NULL,
    first_version integer     NOT NULL,
    last_version  integer     NOT NULL,
    recorded_at   timestamptz NOT NULL DEFAULT now()
);
