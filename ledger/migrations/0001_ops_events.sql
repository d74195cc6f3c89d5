-- Operational events (broker disconnects, failovers, services that failed) for ops to read
-- beside the ledger. Security events have their own table.
CREATE TABLE ops_events (
    id bigserial PRIMARY KEY,
    ts timestamptz NOT NULL DEFAULT now(),
    source text NOT NULL,
    kind text NOT NULL,
    severity text NOT NULL CHECK (severity IN ('info', 'warning', 'error', 'critical')),
    detail jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX ops_events_ts ON ops_events (ts);
