-- Finished trace spans, the place to look without a tracing backend: `floor trace COMMAND_ID`
-- and the HUD's order timeline read them. Every runtime process exports its spans here in
-- batches, off its hot path; rows are pruned by age (FLOOR_SPAN_RETENTION_HOURS).
--
-- UNLOGGED: spans write no WAL. Written to the WAL, they would be flushed with the ledger's own
-- commits (a commit flushes every WAL record before it), and under a burst the hot path's
-- write-ahead appends measured several times slower with them. The price: after a crash of
-- Postgres (not a clean restart) the table comes back empty, and a standby has no copy. The
-- ledger, order states and events are what the floor keeps; spans are for looking.
CREATE UNLOGGED TABLE spans (
    trace_id        text NOT NULL CHECK (trace_id ~ '^[0-9a-f]{32}$'),
    span_id         text NOT NULL CHECK (span_id ~ '^[0-9a-f]{16}$'),
    parent_span_id  text CHECK (parent_span_id ~ '^[0-9a-f]{16}$'),
    name            text NOT NULL CHECK (length(name) <= 256),
    service         text NOT NULL CHECK (length(service) <= 128),
    command_id      text CHECK (length(command_id) <= 256),
    start_ns        bigint NOT NULL,
    end_ns          bigint NOT NULL CHECK (end_ns >= start_ns),
    status          text NOT NULL CHECK (status IN ('ok', 'error')),
    attributes      jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (octet_length(attributes::text) <= 16384),
    PRIMARY KEY (trace_id, span_id)
);
CREATE INDEX spans_command_id ON spans (command_id) WHERE command_id IS NOT NULL;
CREATE INDEX spans_start_ns ON spans (start_ns);

-- Pruning by age only: a role that may prune cannot delete a chosen trace.
CREATE FUNCTION spans_prune(older_than timestamptz) RETURNS bigint
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    WITH gone AS (
        DELETE FROM spans
        WHERE start_ns < (extract(epoch FROM older_than) * 1000000000)::bigint
        RETURNING 1
    )
    SELECT count(*) FROM gone
$$;
REVOKE ALL ON FUNCTION spans_prune(timestamptz) FROM PUBLIC;

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'floor_span_reader') THEN
        CREATE ROLE floor_span_reader NOLOGIN;
    END IF;
END
$$;

GRANT INSERT ON spans TO floor_writer;
GRANT SELECT ON spans TO floor_span_reader;
GRANT EXECUTE ON FUNCTION spans_prune(timestamptz) TO floor_span_reader;
