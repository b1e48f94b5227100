-- One timer per draft order, armed by its latest event: the order expires when
-- it has been untouched for the configured time since `touched_at`. `version`
-- is the version the timer judges; the expiry holds the cancel to it.
CREATE TABLE draft_expiry_timers (
    order_id       text        PRIMARY KEY,
    version        integer     NOT NULL,
    timer_id       uuid        NOT NULL UNIQUE,
    touched_at     timestamptz NOT NULL,
    correlation_id text        NOT NULL
);

CREATE INDEX draft_expiry_timers_touched ON draft_expiry_timers (touched_at);
