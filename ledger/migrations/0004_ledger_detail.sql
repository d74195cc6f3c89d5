-- What the floor decided, beside the decision itself: the sized quantity, the entry price,
-- the bankroll, which limit bound, a refusal's particulars. Stored as RFC 8785 canonical JSON
-- text and covered by the chain.
--
-- Compatible extension of the hash (ledger/chain.py): when detail is NULL nothing is appended
-- to the preimage, so entries written before this migration keep their hashes; otherwise
-- F(detail) follows F(recorded_at_ms). Every earlier field is length-prefixed, so the two
-- forms cannot be confused.

ALTER TABLE ledger_entries
    ADD COLUMN detail text CHECK (detail IS NULL OR jsonb_typeof(detail::jsonb) = 'object');

CREATE FUNCTION ledger_entry_hash(
    prev_hash bytea, seq bigint, kind text, account text, agent_id text, command_id text, nonce text,
    issued_at timestamptz, payload bytea, signer text, scheme text, signature bytea, signature_hash text,
    authenticated boolean, decision text, reason text, received_at timestamptz, recorded_at timestamptz,
    detail text
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
        || CASE WHEN detail IS NULL THEN ''::bytea ELSE ledger_hash_text(detail) END
    )
$$;

DROP FUNCTION ledger_append(text, text, text, text, text, timestamptz, bytea, text, text, bytea, text, boolean, text, text, timestamptz);

CREATE FUNCTION ledger_append(
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
    SELECT h.seq, h.entry_hash INTO v_seq, v_prev FROM ledger_head h WHERE h.id FOR UPDATE;
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
    UPDATE ledger_head SET seq = v_seq, entry_hash = v_hash WHERE id;
    RETURN QUERY SELECT v_seq, v_hash, v_recorded;
END
$$;

REVOKE ALL ON FUNCTION ledger_append(text, text, text, text, text, timestamptz, bytea, text, text, bytea, text, boolean, text, text, timestamptz, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ledger_append(text, text, text, text, text, timestamptz, bytea, text, text, bytea, text, boolean, text, text, timestamptz, text) TO floor_writer;

CREATE OR REPLACE VIEW ledger_view AS
    SELECT seq, kind, account, agent_id, command_id, decision, reason, received_at, recorded_at,
           signer, signature_hash, convert_from(payload, 'UTF8')::jsonb AS payload_json,
           detail::jsonb AS detail
    FROM ledger_entries
    WHERE authenticated;
