-- Parked streams: an event a subscription could not apply after its retries, per
-- subscription and order. Every later event of that order waits behind it (the
-- subscription's checkpoint moves on for other orders); a person retries or skips it.
CREATE TABLE parked_streams (
    subscription  text        NOT NULL,
    stream_id     text        NOT NULL,
    -- The failing event. Held events are the stream's later versions, read again from the log.
    version       integer     NOT NULL,
    position      bigint      NOT NULL,
    tx_id         xid8        NOT NULL,
    event_id      uuid        NOT NULL,
    event_type    text        NOT NULL,
    error         text        NOT NULL,
    attempts      integer     NOT NULL,
    parked_at     timestamptz NOT NULL DEFAULT now(),
    last_tried_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (subscription, stream_id)
);

-- Outbox messages the relay gave up on are parked, not failed for good; a person
-- retries or drops them.
ALTER TABLE outbox DROP CONSTRAINT outbox_state_check;
UPDATE outbox SET state = 'parked' WHERE state = 'failed';
ALTER TABLE outbox ADD CONSTRAINT outbox_state_check
    CHECK (state IN ('pending', 'sent', 'parked', 'dropped'));
ALTER TABLE outbox ADD COLUMN parked_at timestamptz;

-- What happened to parked events and messages: parked (by the service), retried,
-- skipped or dropped (by an admin, with a reason). Append-only, like the log.
CREATE TABLE parking_log (
    entry_id        bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at              timestamptz NOT NULL DEFAULT now(),
    kind            text        NOT NULL CHECK (kind IN ('parked', 'retried', 'skipped', 'dropped')),
    subscription    text        NOT NULL,  -- a subscription's name, or 'outbox' for the relay
    stream_id       text        NOT NULL,  -- the order
    event_id        uuid,                  -- the failing event; for the outbox, the message's cause
    version         integer,
    event_type      text,
    notification_id bigint,                -- the outbox message
    error           text        NOT NULL DEFAULT '',
    reason          text        NOT NULL DEFAULT '',
    actor_id        text,
    actor_name      text
);
CREATE INDEX parking_log_kind ON parking_log (kind, entry_id);

CREATE FUNCTION parking_log_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'the parking log is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege'; END
$$;
CREATE TRIGGER parking_log_refuse_change BEFORE UPDATE OR DELETE OR TRUNCATE ON parking_log
    FOR EACH STATEMENT EXECUTE FUNCTION parking_log_is_append_only();
