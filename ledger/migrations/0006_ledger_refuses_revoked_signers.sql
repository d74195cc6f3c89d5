-- A revoked key's signature is refused by the ledger itself.
--
-- The hot path checks revocation against its in-memory key registry, which it reloads in the
-- background; between a revocation's commit and the next reload a command signed by the
-- revoked key would pass that check. ledger_append now refuses, under the head lock, an
-- authenticated entry whose signer's key is revoked (SQLSTATE FLK01), and since every order is
-- ledgered before the broker sees it (write-ahead), a revocation stops the key's orders the
-- moment it commits. It is the rule `floor ledger verify` already applies (an entry recorded
-- after its key's revocation is bad), now enforced on the way in; the refusal is kept as an
-- unauthenticated entry, evidence like any other the sentry could not accept.
--
-- Only the body changes (the same arguments, hash, head lock and constraints as 0005).

CREATE OR REPLACE FUNCTION ledger_append(
    p_kind text, p_account text, p_agent_id text, p_command_id text, p_nonce text,
    p_issued_at timestamptz, p_payload bytea, p_signer text, p_scheme text, p_signature bytea,
    p_signature_hash text, p_authenticated boolean, p_decision text, p_reason text,
    p_received_at timestamptz, p_detail text
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
    -- The row lock serialises appends: seq is gapless and committed in order.
    SELECT h.seq, h.entry_hash INTO v_seq, v_prev FROM ledger_head h WHERE h.id FOR UPDATE;
    -- Checked after the lock: a revocation committed before this append is seen, whatever the
    -- writer's cached registry says.
    IF p_authenticated AND EXISTS (
        SELECT 1 FROM agent_keys k WHERE k.key_id = p_signer AND k.revoked_at IS NOT NULL
    ) THEN
        RAISE EXCEPTION 'key % is revoked: the ledger takes no authenticated entry it signed', p_signer
            USING ERRCODE = 'FLK01';
    END IF;
    v_seq := v_seq + 1;
    -- Taken after the lock, so recorded_at never decreases along the chain.
    v_recorded := date_trunc('milliseconds', clock_timestamp());
    v_hash := ledger_entry_hash(
        v_prev, v_seq, p_kind, p_account, p_agent_id, p_command_id, p_nonce, v_issued, p_payload,
        p_signer, p_scheme, p_signature, p_signature_hash, p_authenticated, p_decision, p_reason,
        v_received, v_recorded, p_detail);
    INSERT INTO ledger_entries (
        seq, prev_hash, entry_hash, kind, account, agent_id, command_id, nonce, issued_at, payload,
        signer, scheme, signature, signature_hash, authenticated, decision, reason, received_at,
        recorded_at, detail)
    VALUES (
        v_seq, v_prev, v_hash, p_kind, p_account, p_agent_id, p_command_id, p_nonce, v_issued,
        p_payload, p_signer, p_scheme, p_signature, p_signature_hash, p_authenticated, p_decision,
        p_reason, v_received, v_recorded, p_detail);
    UPDATE ledger_head h SET seq = v_seq, entry_hash = v_hash WHERE h.id;
    seq := v_seq;
    entry_hash := v_hash;
    recorded_at := v_recorded;
    RETURN NEXT;
END
$$;
