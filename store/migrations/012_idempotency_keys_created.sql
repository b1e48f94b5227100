-- Keys are forgotten a day after they were claimed (store/idempotency.KEEP_KEYS),
-- oldest first.
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
