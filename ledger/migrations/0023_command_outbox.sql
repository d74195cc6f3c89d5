-- Commands the API's door published to agent.commands, kept until the ledger holds a decision on
-- them (a ledger entry with the command's signature hash, whatever the decision). The embedded
-- Kafka broker keeps its log in memory: restarted, it has lost every command the hot path had
-- not read yet. The door finds that out (the log ends before a command it kept) and publishes
-- its undecided commands again; a copy the hot path had decided after all is refused as a
-- duplicate delivery, so nothing is decided twice.
CREATE TABLE command_outbox (
    signature_hash  text PRIMARY KEY CHECK (signature_hash ~ '^[0-9a-f]{64}$'),
    command_id      text NOT NULL CHECK (length(command_id) <= 256),
    agent_id        text NOT NULL CHECK (length(agent_id) <= 256),
    envelope        bytea NOT NULL,
    partition_key   bytea NOT NULL,
    -- Where the broker last acknowledged it: the bootstrap address names the broker (a door
    -- checks and publishes again only what it published to its own). The row is kept before
    -- the command is produced, so partition and offset are NULL until the broker acknowledges
    -- it (and stay NULL if the door died first: then the whole log is searched for it).
    bootstrap       text NOT NULL,
    kafka_partition integer CHECK (kafka_partition >= 0),
    kafka_offset    bigint CHECK (kafka_offset >= 0),
    published_at    timestamptz NOT NULL DEFAULT now(),
    republished     integer NOT NULL DEFAULT 0
);
CREATE INDEX command_outbox_published_at ON command_outbox (bootstrap, published_at);

-- A decision the sentry refused is an unauthenticated entry under the same signature hash; the
-- authenticated ones have their unique index (0002). Refusals only: accepted appends pay nothing.
CREATE INDEX ledger_entries_unauthenticated_signature ON ledger_entries (signature_hash) WHERE NOT authenticated;

GRANT SELECT ON command_outbox TO floor_reader;
GRANT SELECT, INSERT, UPDATE, DELETE ON command_outbox TO floor_web;
