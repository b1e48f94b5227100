-- The projections' own fold of each order is written on every batch and read
-- back only by the projection itself; nothing queries inside it. As jsonb,
-- every write paid for a parse and a re-encoding (most of the time of a
-- rebuild's COPY); as text it holds the same JSON, written as it comes.
ALTER TABLE customer_orders ALTER COLUMN state TYPE text USING state::text;
ALTER TABLE sales_orders ALTER COLUMN state TYPE text USING state::text;
