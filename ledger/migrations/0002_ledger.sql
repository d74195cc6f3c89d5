-- The ledger: an append-only, hash-chained record of every command the floor decided on and
-- every change to a risk profile. The chain and its byte layout are specified in
-- ledger/chain.py; ledger_entry_hash() below must stay byte-for-byte identical to it.
--
-- Roles: floor_writer may read and append (through ledger_append() only); floor_reader may
-- read. Nobody is granted UPDATE, DELETE or TRUNCATE, and triggers refuse them even for the
-- table owner, so only a superuser who disables the triggers can change history, and then
-- `floor ledger verify` names the entry.

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'floor_writer') THEN
        CREATE ROLE floor_writer NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'floor_reader') THEN
        CREATE ROLE floor_reader NOLOGIN;
    END IF;
END
$$;

CREATE TABLE ledger_entries (
    seq bigint PRIMARY KEY CHECK (seq > 0),
    prev_hash bytea NOT NULL CHECK (length(prev_hash) = 32),
    entry_hash bytea NOT NULL UNIQUE CHECK (length(entry_hash) = 32),
    kind text NOT NULL,
    account text,
    agent_id text,
    command_id text,
    nonce text,
    issued_at timestamptz,
    payload bytea NOT NULL,
    signer text NOT NULL,
    scheme text NOT NULL,
    signature bytea NOT NULL,
    signature_hash text NOT NULL CHECK (signature_hash = encode(sha256(signature), 'hex')),
    authenticated boolean NOT NULL,
    decision text NOT NULL CHECK (decision IN ('accepted', 'rejected', 'applied')),
    reason text CHECK (reason <> ''),
    received_at timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL,
    -- An entry whose signature the floor could not verify is evidence of a refusal, nothing more.
    CHECK (authenticated OR decision = 'rejected'),
    CHECK (decision <> 'rejected' OR reason IS NOT NULL)
);

-- Replay protection of last resort: an authenticated signature, nonce or command id is
-- appended at most once, whatever the hot path's memory says.
CREATE UNIQUE INDEX ledger_entries_signature_hash ON ledger_entries (signature_hash) WHERE authenticated;
CREATE UNIQUE INDEX ledger_entries_agent_nonce ON ledger_entries (agent_id, nonce) WHERE authenticated;
CREATE UNIQUE INDEX ledger_entries_command_id ON ledger_entries (command_id) WHERE authenticated;
CREATE INDEX ledger_entries_issued_at ON ledger_entries (issued_at);
CREATE INDEX ledger_entries_account ON ledger_entries (account, seq);

-- One row: the newest entry. Appends lock it, which serialises them, so seq is gapless and
-- committed in order (a reader never sees seq n+1 before seq n).
CREATE TABLE ledger_head (
    id boolean PRIMARY KEY DEFAULT true CHECK (id),
    seq bigint NOT NULL,
    entry_hash bytea NOT NULL CHECK (length(entry_hash) = 32)
);
INSERT INTO ledger_head (id, seq, entry_hash) VALUES (true, 0, '\x0000000000000000000000000000000000000000000000000000000000000000');

CREATE FUNCTION ledger_hash_field(value bytea) RETURNS bytea
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN value IS NULL THEN int4send(-1) ELSE int4send(length(value)) || value END
$$;

CREATE FUNCTION ledger_hash_text(value text) RETURNS bytea
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT ledger_hash_field(convert_to(value, 'UTF8'))
$$;

CREATE FUNCTION ledger_epoch_ms(ts timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT floor(extract(epoch FROM ts) * 1000)::bigint::text
$$;

CREATE FUNCTION ledger_entry_hash(
    prev_hash bytea, seq bigint, kind text, account text, agent_id text, command_id text, nonce text,
    issued_at timestamptz, payload bytea, signer text, scheme text, signature bytea, signature_hash text,
    authenticated boolean, decision text, reason text, received_at timestamptz, recorded_at timestamptz
) RETURNS bytea
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT sha256(
        prev_hash
        || ledger_hash_text(seq::text)
        || ledger_hash_text(kind)
        || ledger_hash_text(account)
        || ledger_hash_text(agent_id)
        || ledger_hash_text(command_id)
        || ledger_hash_text(nonce)
        || ledger_hash_text(ledger_epoch_ms(issued_at))
        || ledger_hash_field(payload)
        || ledger_hash_text(signer)
        || ledger_hash_text(scheme)
        || ledger_hash_field(signature)
        || ledger_hash_text(signature_hash)
        || ledger_hash_text(CASE WHEN authenticated THEN 't' ELSE 'f' END)
        || ledger_hash_text(decision)
        || ledger_hash_text(reason)
        || ledger_hash_text(ledger_epoch_ms(received_at))
        || ledger_hash_text(ledger_epoch_ms(recorded_at))
    )
$$;

-- Append one entry in one round trip. The database computes seq, recorded_at and the hash, so
-- a writer cannot choose where its entry goes or what it chains to.
CREATE FUNCTION ledger_append(
    p_kind text, p_account text, p_agent_id text, p_command_id text, p_nonce text,
    p_issued_at timestamptz, p_payload bytea, p_signer text, p_scheme text, p_signature bytea,
    p_signature_hash text, p_authenticated boolean, p_decision text, p_reason text,
    p_received_at timestamptz
) RETURNS TABLE (seq bigint, entry_hash bytea, recorded_at timestamptz)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
#variable_conflict use_column
DECLARE
    v_seq bigint;
    v_prev bytea;
    v_hash bytea;
    v_recorded timestamptz;
    v_received timestamptz := date_trunc('milliseconds', p_received_at);
    v_issued timestamptz := date_trunc('milliseconds', p_issued_at);
BEGIN
    SELECT h.seq, h.entry_hash INTO v_seq, v_prev FROM ledger_head h WHERE h.id FOR UPDATE;
    v_seq := v_seq + 1;
    -- Taken after the lock, so recorded_at never decreases along the chain.
    v_recorded := date_trunc('milliseconds', clock_timestamp());
    v_hash := ledger_entry_hash(
        v_prev, v_seq, p_kind, p_account, p_agent_id, p_command_id, p_nonce, v_issued, p_payload,
        p_signer, p_scheme, p_signature, p_signature_hash, p_authenticated, p_decision, p_reason,
        v_received, v_recorded);
    INSERT INTO ledger_entries (
        seq, prev_hash, entry_hash, kind, account, agent_id, command_id, nonce, issued_at, payload,
        signer, scheme, signature, signature_hash, authenticated, decision, reason, received_at,
        recorded_at)
    VALUES (
        v_seq, v_prev, v_hash, p_kind, p_account, p_agent_id, p_command_id, p_nonce, v_issued,
        p_payload, p_signer, p_scheme, p_signature, p_signature_hash, p_authenticated, p_decision,
        p_reason, v_received, v_recorded);
    UPDATE ledger_head SET seq = v_seq, entry_hash = v_hash WHERE id;
    RETURN QUERY SELECT v_seq, v_hash, v_recorded;
END
$$;

CREATE FUNCTION ledger_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER ledger_entries_no_update_delete BEFORE UPDATE OR DELETE ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER ledger_entries_no_truncate BEFORE TRUNCATE ON ledger_entries
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();

CREATE FUNCTION ledger_head_advance_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.seq <> OLD.seq + 1 THEN
        RAISE EXCEPTION 'ledger_head only advances by one entry (% -> %)', OLD.seq, NEW.seq
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER ledger_head_advance BEFORE UPDATE ON ledger_head
    FOR EACH ROW EXECUTE FUNCTION ledger_head_advance_only();
CREATE TRIGGER ledger_head_no_delete BEFORE DELETE ON ledger_head
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER ledger_head_no_truncate BEFORE TRUNCATE ON ledger_head
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();

REVOKE ALL ON ledger_entries, ledger_head FROM PUBLIC;
REVOKE ALL ON FUNCTION ledger_append(text, text, text, text, text, timestamptz, bytea, text, text, bytea, text, boolean, text, text, timestamptz) FROM PUBLIC;
GRANT SELECT ON ledger_entries, ledger_head TO floor_reader, floor_writer;
GRANT EXECUTE ON FUNCTION ledger_append(text, text, text, text, text, timestamptz, bytea, text, text, bytea, text, boolean, text, text, timestamptz) TO floor_writer;

-- Human-readable view: the payload as JSON.
CREATE VIEW ledger_view AS
    SELECT seq, kind, account, agent_id, command_id, decision, reason, received_at, recorded_at,
           signer, signature_hash, convert_from(payload, 'UTF8')::jsonb AS payload_json
    FROM ledger_entries
    WHERE authenticated;
GRANT SELECT ON ledger_view TO floor_reader, floor_writer;
