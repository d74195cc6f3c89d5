-- Key registry, risk profiles, security events and broker order events.

-- Registered Ed25519 public keys. key_id is the fingerprint trading.signing.key_id() computes.
-- A key is never deleted or edited: the only change allowed is revoking it, once, so old
-- ledger entries always find the key that signed them.
CREATE TABLE agent_keys (
    key_id text PRIMARY KEY CHECK (key_id = left(encode(sha256(public_key), 'hex'), 32)),
    agent_id text NOT NULL CHECK (agent_id ~ '^[A-Za-z0-9][A-Za-z0-9._:@/-]{0,127}$'),
    public_key bytea NOT NULL UNIQUE CHECK (length(public_key) = 32),
    role text NOT NULL CHECK (role IN ('agent', 'operator', 'service')),
    accounts text[] NOT NULL CHECK (cardinality(accounts) > 0),
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);
-- One active key per agent: rotating means revoking first.
CREATE UNIQUE INDEX agent_keys_one_active ON agent_keys (agent_id) WHERE revoked_at IS NULL;

CREATE FUNCTION agent_keys_revoke_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.revoked_at IS NOT NULL OR NEW.revoked_at IS NULL
       OR (NEW.key_id, NEW.agent_id, NEW.public_key, NEW.role, NEW.accounts, NEW.created_at)
          IS DISTINCT FROM (OLD.key_id, OLD.agent_id, OLD.public_key, OLD.role, OLD.accounts, OLD.created_at)
    THEN
        RAISE EXCEPTION 'agent_keys: the only change allowed is revoking an active key'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER agent_keys_revoke_only BEFORE UPDATE ON agent_keys
    FOR EACH ROW EXECUTE FUNCTION agent_keys_revoke_only();
CREATE TRIGGER agent_keys_no_delete BEFORE DELETE ON agent_keys
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER agent_keys_no_truncate BEFORE TRUNCATE ON agent_keys
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();

-- Current risk profile per account: a projection of the newest risk_profile_set ledger entry
-- for the account (ledger_seq); `floor ledger verify` checks the two agree.
CREATE TABLE risk_profiles (
    account text PRIMARY KEY,
    profile jsonb NOT NULL,
    ledger_seq bigint NOT NULL REFERENCES ledger_entries (seq),
    updated_at timestamptz NOT NULL
);

-- Refused or suspicious input at the floor's doors (API and hot path).
CREATE TABLE security_events (
    id bigserial PRIMARY KEY,
    ts timestamptz NOT NULL DEFAULT now(),
    severity text NOT NULL CHECK (severity IN ('info', 'warning', 'error', 'critical')),
    reason text NOT NULL CHECK (reason <> ''),
    source text NOT NULL,
    agent_id text,
    key_id text,
    command_id text,
    signature_hash text,
    remote_addr text,
    detail jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX security_events_ts ON security_events (ts);
CREATE INDEX security_events_severity_ts ON security_events (severity, ts);

CREATE TRIGGER security_events_no_update_delete BEFORE UPDATE OR DELETE ON security_events
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER security_events_no_truncate BEFORE TRUNCATE ON security_events
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();

-- Broker callbacks as orders.events records (trading.order_events.OrderEvent), append-only.
-- event_id dedupes redelivery; exec_id dedupes an execution reported twice (for example by
-- reconciliation after a reconnect).
CREATE TABLE order_events (
    id bigserial PRIMARY KEY,
    event_id text NOT NULL UNIQUE,
    command_id text NOT NULL,
    parent_id text,
    kind text NOT NULL CHECK (kind IN ('accepted', 'rejected', 'submitted', 'partially_filled', 'filled',
                                       'cancelled', 'expired')),
    account text NOT NULL,
    symbol text NOT NULL,
    agent_id text NOT NULL,
    side text NOT NULL CHECK (side IN ('BUY', 'SELL')),
    quantity integer NOT NULL CHECK (quantity > 0),
    filled_qty integer NOT NULL CHECK (filled_qty >= 0 AND filled_qty <= quantity),
    avg_fill_price numeric,
    exec_id text,
    fill_qty integer,
    fill_price numeric,
    reason text,
    ts timestamptz NOT NULL,
    limit_price numeric,
    tif text,
    broker_order_id bigint,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX order_events_exec_id ON order_events (exec_id) WHERE exec_id IS NOT NULL;
CREATE INDEX order_events_command ON order_events (command_id, id);
CREATE INDEX order_events_account ON order_events (account, id);

CREATE TRIGGER order_events_no_update_delete BEFORE UPDATE OR DELETE ON order_events
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER order_events_no_truncate BEFORE TRUNCATE ON order_events
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();

-- Latest known state per order: the most advanced event (fills only grow, terminal beats
-- working), ties broken by arrival, so a late-delivered older event never wins.
CREATE VIEW order_states AS
    SELECT DISTINCT ON (command_id) *
    FROM order_events
    ORDER BY command_id,
             filled_qty DESC,
             (kind IN ('rejected', 'filled', 'cancelled', 'expired')) DESC,
             (kind <> 'accepted') DESC,
             id DESC;

REVOKE ALL ON agent_keys, risk_profiles, security_events, order_events FROM PUBLIC;
GRANT SELECT ON agent_keys, risk_profiles, security_events, order_events, order_states
    TO floor_reader, floor_writer;
GRANT INSERT ON security_events, order_events TO floor_writer;
GRANT USAGE ON SEQUENCE security_events_id_seq, order_events_id_seq TO floor_writer;
