-- Messages to customers that workflows decided to send, written in the same
-- transaction as the workflow's checkpoint; a relay delivers them afterwards.
CREATE TABLE outbox (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- Exactly one notification per causing event, even if a workflow re-ran.
    cause_event_id  uuid        NOT NULL UNIQUE,
    cause_position  bigint      NOT NULL,
    order_id        text        NOT NULL,
    cause_version   integer     NOT NULL,
    customer_id     text        NOT NULL,
    kind            text        NOT NULL,
    subject         text        NOT NULL,
    body            text        NOT NULL,
    correlation_id  text        NOT NULL,
    causation_id    text        NOT NULL,
    state           text        NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'failed')),
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz
);

CREATE INDEX outbox_due ON outbox (next_attempt_at, id) WHERE state = 'pending';
CREATE INDEX outbox_order ON outbox (order_id, id);
CREATE INDEX outbox_state ON outbox (state, id);

-- Customers hear about orders placed or cancelled from now on, not about the
-- whole history: the notification workflow starts at the committed head.
INSERT INTO subscriptions (name, tx_id, position)
SELECT 'customer_notifications', tx_id, position FROM events
WHERE tx_id < pg_snapshot_xmin(pg_current_snapshot())
ORDER BY tx_id DESC, position DESC
LIMIT 1
ON CONFLICT (name) DO NOTHING;
