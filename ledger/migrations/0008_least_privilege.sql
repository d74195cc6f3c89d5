-- Least privilege: keys and risk profiles change only through functions that ledger the change.
--
-- The runtime processes connect as their own login roles (ledger/roles.py), members of
-- floor_writer and floor_reader; none owns anything, so none can disable a trigger, and none
-- is a superuser, so none can set session_replication_role. They may append to the ledger only
-- through ledger_append() and never write agent_keys or risk_profiles: a key is registered or
-- revoked, and a profile set, only by the two SECURITY DEFINER functions below, which append
-- the operator's signed change to the ledger in the same transaction. Only floor_registrar
-- (the `floor` commands' role) may call them.
--
-- The database cannot check an Ed25519 signature; the functions check that the signer is an
-- active operator key of the operator the document names, and `floor ledger verify` checks the
-- signature of every entry, these included.

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'floor_registrar') THEN
        CREATE ROLE floor_registrar NOLOGIN;
    END IF;
END
$$;

-- Written by the hot path (broker disconnects, breaker trips); 0001 granted nothing.
REVOKE ALL ON ops_events FROM PUBLIC;
GRANT SELECT ON ops_events TO floor_reader, floor_writer;
GRANT INSERT ON ops_events TO floor_writer;
GRANT USAGE ON SEQUENCE ops_events_id_seq TO floor_writer;

-- Nobody at run time writes these two tables directly (nothing was granted; said explicitly).
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON agent_keys, risk_profiles FROM floor_writer, floor_reader, PUBLIC;
REVOKE UPDATE, DELETE, TRUNCATE ON ledger_entries, ledger_head, order_events, security_events
    FROM floor_writer, floor_reader, PUBLIC;

-- Whether p_signer is an active operator key of the operator p_agent (who the change names).
CREATE FUNCTION floor_is_operator_key(p_signer text, p_agent text) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, public AS $$
    SELECT EXISTS (
        SELECT 1 FROM agent_keys k
        WHERE k.key_id = p_signer AND k.revoked_at IS NULL AND k.role = 'operator' AND k.agent_id = p_agent)
$$;

-- Set an account's risk profile from an operator's signed risk_profile_set document
-- (ledger/risk_profiles.py): ledger it as 'applied' and make it current, atomically.
CREATE FUNCTION floor_risk_profile_set(
    p_payload bytea, p_signer text, p_signature bytea, p_received_at timestamptz
) RETURNS TABLE (seq bigint, entry_hash bytea, recorded_at timestamptz)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
#variable_conflict use_column
DECLARE
    v_doc jsonb := convert_from(p_payload, 'UTF8')::jsonb;
    v_entry record;
BEGIN
    IF jsonb_typeof(v_doc) <> 'object' OR v_doc->>'kind' IS DISTINCT FROM 'risk_profile_set'
       OR jsonb_typeof(v_doc->'profile') IS DISTINCT FROM 'object' THEN
        RAISE EXCEPTION 'not a risk_profile_set document' USING ERRCODE = 'FLK03';
    END IF;
    IF NOT floor_is_operator_key(p_signer, v_doc->>'agent_id') THEN
        RAISE EXCEPTION 'key % is not an active operator key of %', p_signer, v_doc->>'agent_id'
            USING ERRCODE = 'FLK02';
    END IF;
    SELECT * INTO v_entry FROM ledger_append(
        'risk_profile_set', v_doc->>'account', v_doc->>'agent_id', v_doc->>'command_id',
        v_doc->>'nonce', (v_doc->>'issued_at')::timestamptz, p_payload, p_signer, 'ed25519',
        p_signature, encode(sha256(p_signature), 'hex'), true, 'applied', NULL, p_received_at, NULL);
    INSERT INTO risk_profiles (account, profile, ledger_seq, updated_at)
    VALUES (v_doc->>'account', v_doc->'profile', v_entry.seq, v_entry.recorded_at)
    ON CONFLICT (account) DO UPDATE SET profile = EXCLUDED.profile,
        ledger_seq = EXCLUDED.ledger_seq, updated_at = EXCLUDED.updated_at;
    seq := v_entry.seq;
    entry_hash := v_entry.entry_hash;
    recorded_at := v_entry.recorded_at;
    RETURN NEXT;
END
$$;

-- Register or revoke a key from an operator's signed key_register / key_revoke document
-- (ledger/key_changes.py), ledgered as 'applied' in the same transaction. A new key's
-- created_at is its registration entry's recorded_at: nobody chooses it, so nobody back-dates
-- a key. The one exception to "signed by an active operator key": on a floor with no active
-- operator key, an operator key may register itself (first run; nobody else could sign).
CREATE FUNCTION floor_key_change(
    p_payload bytea, p_signer text, p_signature bytea, p_received_at timestamptz
) RETURNS TABLE (seq bigint, entry_hash bytea, recorded_at timestamptz)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
#variable_conflict use_column
DECLARE
    v_doc jsonb := convert_from(p_payload, 'UTF8')::jsonb;
    v_kind text;
    v_new jsonb;
    v_public bytea;
    v_key_id text;
    v_entry record;
    v_authorised boolean;
BEGIN
    v_kind := CASE WHEN jsonb_typeof(v_doc) = 'object' THEN v_doc->>'kind' END;
    IF v_kind IS NULL OR v_kind NOT IN ('key_register', 'key_revoke') THEN
        RAISE EXCEPTION 'not a key_register or key_revoke document' USING ERRCODE = 'FLK03';
    END IF;
    -- Under the ledger's head lock, like every append: the checks below still hold at commit.
    PERFORM 1 FROM ledger_head h WHERE h.id FOR UPDATE;
    v_authorised := floor_is_operator_key(p_signer, v_doc->>'agent_id');
    IF v_kind = 'key_register' THEN
        v_new := v_doc->'key';
        IF jsonb_typeof(v_new) IS DISTINCT FROM 'object'
           OR jsonb_typeof(v_new->'accounts') IS DISTINCT FROM 'array' THEN
            RAISE EXCEPTION 'key_register needs a key object with an accounts array' USING ERRCODE = 'FLK03';
        END IF;
        v_public := decode(v_new->>'public_key', 'hex');
        v_key_id := left(encode(sha256(v_public), 'hex'), 32);
        IF NOT v_authorised AND v_key_id = p_signer
           AND v_new->>'role' = 'operator' AND v_new->>'agent_id' IS NOT DISTINCT FROM v_doc->>'agent_id'
           AND NOT EXISTS (SELECT 1 FROM agent_keys k WHERE k.role = 'operator' AND k.revoked_at IS NULL) THEN
            v_authorised := true;
        END IF;
    ELSE
        v_key_id := v_doc->>'key_id';
    END IF;
    IF NOT v_authorised THEN
        RAISE EXCEPTION 'key % is not an active operator key of %', p_signer, v_doc->>'agent_id'
            USING ERRCODE = 'FLK02';
    END IF;
    SELECT * INTO v_entry FROM ledger_append(
        v_kind, NULL, v_doc->>'agent_id', v_doc->>'command_id', v_doc->>'nonce',
        (v_doc->>'issued_at')::timestamptz, p_payload, p_signer, 'ed25519', p_signature,
        encode(sha256(p_signature), 'hex'), true, 'applied', NULL, p_received_at, NULL);
    IF v_kind = 'key_register' THEN
        INSERT INTO agent_keys (key_id, agent_id, public_key, role, accounts, created_at)
        VALUES (v_key_id, v_new->>'agent_id', v_public, v_new->>'role',
                ARRAY(SELECT jsonb_array_elements_text(v_new->'accounts') ORDER BY 1),
                v_entry.recorded_at);
    ELSE
        -- Stamped after the append: later than the entry that revokes it, and than every entry
        -- the key signed (the head lock is held).
        UPDATE agent_keys k SET revoked_at = clock_timestamp()
        WHERE k.key_id = v_key_id AND k.revoked_at IS NULL;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'no active key %', v_key_id USING ERRCODE = 'FLK04';
        END IF;
    END IF;
    seq := v_entry.seq;
    entry_hash := v_entry.entry_hash;
    recorded_at := v_entry.recorded_at;
    RETURN NEXT;
END
$$;

REVOKE ALL ON FUNCTION floor_is_operator_key(text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION floor_risk_profile_set(bytea, text, bytea, timestamptz) FROM PUBLIC;
REVOKE ALL ON FUNCTION floor_key_change(bytea, text, bytea, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION floor_risk_profile_set(bytea, text, bytea, timestamptz) TO floor_registrar;
GRANT EXECUTE ON FUNCTION floor_key_change(bytea, text, bytea, timestamptz) TO floor_registrar;
