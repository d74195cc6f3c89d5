-- Only the processes that write the ledger and the order-state rows may.
--
-- 0002/0004 granted ledger_append() to floor_writer, every runtime role: the API, the worker
-- and the CLI could append an authenticated, accepted entry of their choosing (the database
-- cannot check its signature) that a restarted hot path would act on. Only the hot path
-- appends (the CLI's key and risk changes go through floor_key_change and
-- floor_risk_profile_set, which append as their owner), so only floor_appender, the hot path's
-- group, may call it now.

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'floor_appender') THEN
        CREATE ROLE floor_appender NOLOGIN;
    END IF;
END
$$;

REVOKE ALL ON FUNCTION ledger_append(text, text, text, text, text, timestamptz, bytea, text, text, bytea, text, boolean, text, text, timestamptz, text)
    FROM PUBLIC, floor_writer, floor_reader;
GRANT EXECUTE ON FUNCTION ledger_append(text, text, text, text, text, timestamptz, bytea, text, text, bytea, text, boolean, text, text, timestamptz, text)
    TO floor_appender;

-- A caller's temporary tables cannot stand in for the ledger's. Postgres searches the session's
-- temporary schema first for table names unless pg_temp is listed, so with search_path =
-- pg_catalog, public a caller's CREATE TEMP TABLE ledger_head(...) was the head ledger_append
-- read and advanced (the real chain then broke on the next append). Every function that pins a
-- search_path (the SECURITY DEFINER ones and those they call) now puts pg_temp last, and no
-- runtime role may create temporary tables at all (below, and in ledger/roles.py for a
-- database the owner does not own).
DO $$
DECLARE r record;
BEGIN
    FOR r IN
        SELECT p.oid::regprocedure AS proc FROM pg_proc p
        WHERE p.pronamespace = 'public'::regnamespace
          AND (p.prosecdef OR EXISTS (SELECT 1 FROM unnest(p.proconfig) c WHERE c LIKE 'search_path=%'))
    LOOP
        EXECUTE format('ALTER FUNCTION %s SET search_path = pg_catalog, public, pg_temp', r.proc);
    END LOOP;
    -- Takes effect where the migrating role owns the database; a no-op (a warning) elsewhere.
    EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC', current_database());
END
$$;

-- Order-state rows are unsigned, yet recovery, slice accounting and reconciliation read them:
-- only the processes that write them (the hot path, and the worker's broker-session
-- reconciliation) may insert, through floor_order_writer; 0003 had granted every runtime role.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'floor_order_writer') THEN
        CREATE ROLE floor_order_writer NOLOGIN;
    END IF;
END
$$;

REVOKE INSERT ON order_events FROM PUBLIC, floor_writer, floor_reader;
REVOKE USAGE ON SEQUENCE order_events_id_seq FROM PUBLIC, floor_writer, floor_reader;
GRANT INSERT ON order_events TO floor_order_writer;
GRANT USAGE ON SEQUENCE order_events_id_seq TO floor_order_writer;

-- An operator key registers itself only on a floor that never had one (its first run). 0008
-- allowed it whenever no operator key was active, so after an operator revoked its own key
-- (to rotate it) anyone holding floor_cli's password could register an operator key of their
-- own. To rotate, register the new operator key with the old one, then revoke the old one.
-- The body is 0008's but for that condition.
CREATE OR REPLACE FUNCTION floor_key_change(
    p_payload bytea, p_signer text, p_signature bytea, p_received_at timestamptz
) RETURNS TABLE (seq bigint, entry_hash bytea, recorded_at timestamptz)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
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
           AND NOT EXISTS (SELECT 1 FROM agent_keys k WHERE k.role = 'operator') THEN
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
