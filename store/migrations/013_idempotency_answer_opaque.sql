-- An Idempotency-Key's answer becomes opaque bytes to the store: what an answer
-- holds (an HTTP status, body and headers) is the web's business (web/api/idempotency.py).
-- Answers already kept are carried over in the web's encoding, a JSON object.
ALTER TABLE idempotency_keys ADD COLUMN answer bytea;
UPDATE idempotency_keys SET answer = convert_to(
    json_build_object(
        'status', status,
        'body', translate(encode(body, 'base64'), E'\n', ''),
        'etag', etag,
        'location', location
    )::text,
    'UTF8'
)
WHERE status IS NOT NULL;
ALTER TABLE idempotency_keys DROP COLUMN status, DROP COLUMN body, DROP COLUMN etag, DROP COLUMN location;
