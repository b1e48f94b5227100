-- Each customer's own key for their personal data, wrapped by the master key (store/personal).
-- The one table of the log's database whose rows are ever deleted: forgetting a customer
-- deletes theirs, and with it every personal field sealed with it.
CREATE TABLE customer_keys (
    customer_id    text        PRIMARY KEY,
    wrapped        bytea       NOT NULL,
    master_key_id  text        NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);

-- One row per customer, written in the same transaction as the customer's events
-- (store/customers.py) and rebuilt from them by `orders replay customers`. The personal
-- fields are sealed as in the events; a forgotten customer's are emptied.
CREATE TABLE customers (
    customer_id       text        PRIMARY KEY,
    name              text        NOT NULL,
    email             text        NOT NULL,
    address           text        NOT NULL,
    status            text        NOT NULL,
    version           integer     NOT NULL,
    registered_at     timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    forgotten_reason  text
);

CREATE INDEX customers_registered ON customers (registered_at DESC, customer_id DESC);
