-- A hash chain per stream: each event's hash covers its content and the hash of
-- the event before it in the same stream, so a row changed behind the app's back
-- no longer matches its hash, and one rewritten with a fresh hash breaks the next.
-- The append computes it in its own statement; store/integrity.py recomputes it
-- in Python, from the same fields, to verify.
ALTER TABLE events ADD COLUMN hash bytea CHECK (octet_length(hash) = 32);

-- sha256(previous hash || fields), each field written as "<length>:<text>" so that
-- no two different events give the same input. recorded_at is written in UTC with
-- microseconds; data and metadata as PostgreSQL prints jsonb (a canonical form).
CREATE FUNCTION event_hash(
    previous bytea, stream_id text, version integer, event_id uuid, type text,
    schema_version smallint, data jsonb, metadata jsonb, recorded_at timestamptz
) RETURNS bytea LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT sha256(coalesce(previous, ''::bytea) || convert_to(string_agg(length(f) || ':' || f, '' ORDER BY i), 'UTF8'))
    FROM unnest(ARRAY[
        stream_id, version::text, event_id::text, type, schema_version::text, data::text, metadata::text,
        to_char(recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US')
    ]) WITH ORDINALITY AS u(f, i)
$$;

-- Events written before this migration are chained now, in version order. The
-- immutability trigger is lifted inside the migration's transaction only.
ALTER TABLE events DISABLE TRIGGER events_refuse_change;

DO $$
DECLARE
    e record;
    previous bytea;
    stream text;
BEGIN
    FOR e IN SELECT * FROM events ORDER BY stream_id, version LOOP
        IF stream IS DISTINCT FROM e.stream_id THEN
            previous := NULL;
            stream := e.stream_id;
        END IF;
        previous := event_hash(previous, e.stream_id, e.version, e.event_id, e.type, e.schema_version,
                               e.data, e.metadata, e.recorded_at);
        UPDATE events SET hash = previous WHERE position = e.position;
    END LOOP;
END
$$;

ALTER TABLE events ENABLE TRIGGER events_refuse_change;
