-- Where each catch-up subscription has got to in the log: the (tx_id, position)
-- of the last event it applied. Written in the same transaction as its effects.
CREATE TABLE subscriptions (
    name           text        PRIMARY KEY,
    tx_id          xid8        NOT NULL DEFAULT '0',
    position       bigint      NOT NULL DEFAULT 0,
    events_applied bigint      NOT NULL DEFAULT 0,
    last_event_at  timestamptz,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    leader         text
);

-- Progress of read-model rebuilds, so every app instance can show them.
CREATE TABLE projection_rebuilds (
    name         text        PRIMARY KEY,
    state        text        NOT NULL,
    events_done  bigint      NOT NULL DEFAULT 0,
    events_total bigint      NOT NULL DEFAULT 0,
    started_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    error        text
);

-- Customer summaries: the projection's own fold of each order, and one row per customer.
CREATE TABLE customer_orders (
    order_id    text        PRIMARY KEY,
    customer_id text        NOT NULL,
    currency    text        NOT NULL,
    status      text        NOT NULL,
    total_cents bigint      NOT NULL,
    state       jsonb       NOT NULL,
    updated_at  timestamptz NOT NULL
);
CREATE INDEX customer_orders_customer ON customer_orders (customer_id);

CREATE TABLE customer_summaries (
    customer_id   text        PRIMARY KEY,
    draft         integer     NOT NULL,
    placed        integer     NOT NULL,
    cancelled     integer     NOT NULL,
    placed_value  jsonb       NOT NULL,
    last_activity timestamptz NOT NULL
);

-- Sales by day (UTC): orders placed and cancelled and their value, per currency.
CREATE TABLE sales_orders (
    order_id    text   PRIMARY KEY,
    currency    text   NOT NULL,
    state       jsonb  NOT NULL
);

CREATE TABLE sales_by_day (
    day             date    NOT NULL,
    currency        text    NOT NULL,
    placed          integer NOT NULL DEFAULT 0,
    placed_cents    bigint  NOT NULL DEFAULT 0,
    cancelled       integer NOT NULL DEFAULT 0,
    cancelled_cents bigint  NOT NULL DEFAULT 0,
    PRIMARY KEY (day, currency)
);
