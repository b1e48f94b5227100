-- One row per order, updated in the same statement as the append.
CREATE TABLE order_read_model (
    order_id     text        PRIMARY KEY,
    customer_id  text        NOT NULL,
    currency     char(3)     NOT NULL,
    status       text        NOT NULL,
    line_count   integer     NOT NULL,
    item_count   integer     NOT NULL,
    total_cents  bigint      NOT NULL,
    version      integer     NOT NULL,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL
);

-- ListOrders pages newest first, by (created_at, order_id), optionally per customer.
CREATE INDEX order_read_model_created ON order_read_model (created_at DESC, order_id DESC);
CREATE INDEX order_read_model_customer ON order_read_model (customer_id, created_at DESC, order_id DESC);
