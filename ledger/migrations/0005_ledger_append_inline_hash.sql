-- Faster appends, same chain, same rules.
--
-- ledger_entry_hash (the 19-argument form of 0004) was built from helpers declared IMMUTABLE
-- around convert_to() and extract(epoch FROM timestamptz), which Postgres marks STABLE, so the
-- planner never inlined them: every append made 19 nested SQL-function calls, about a fifth of
-- the server's time for an append. The body below computes the same bytes (ledger/chain.py,
-- checked against Python by tests/ledger/test_chain.py) with built-ins only and is declared
-- STABLE, which is what its body is, so it inlines into ledger_append's expression.
--
-- ledger_append keeps its signature, its serialisation on the head row, recorded_at taken after
-- the lock, and every constraint, index and trigger; it now returns through its OUT parameters
-- instead of a RETURN QUERY tuplestore.

CREATE OR REPLACE FUNCTION ledger_entry_hash(
    prev_hash bytea, seq bigint, kind text, account text, agent_id text, command_id text, nonce text,
    issued_at timestamptz, payload bytea, signer text, scheme text, signature bytea, signature_hash text,
    authenticated boolean, decision text, reason text, received_at timestamptz, recorded_at timestamptz,
    detail text
) RETURNS bytea
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT sha256(
        prev_hash
        || CASE WHEN seq IS NULL THEN '\xffffffff'::bytea
                ELSE int4send(octet_length(seq::text)) || convert_to(seq::text, 'UTF8') END
        || CASE WHEN kind IS NULL THEN '\xffffffff'::bytea
                ELSE int4send(octet_length(convert_to(kind, 'UTF8'))) || convert_to(kind, 'UTF8') END
        || CASE WHEN account IS NULL THEN '\xffffffff'::bytea
                ELSE int4send(octet_length(convert_to(account, 'UTF8'))) || convert_to(account, 'UTF8') END
        || CASE WHEN agent_id IS NULL THEN '\xffffffff'::bytea
                ELSE int4send(octet_length(convert_to(agent_id, 'UTF8'))) || convert_to(agent_id, 'UTF8') END
        || CASE WHEN command_id IS NULL THEN '\xffffffff'::bytea
                ELSE int4send(octet_length(convert_to(command_id, 'UTF8'))) || convert_to(command_id, 'UTF8') END
        || CASE WHEN nonce IS NULL THEN '\xffffffff'::bytea
                ELSE int4send(octet_length(convert_to(nonce, 'UTF8'))) || convert_to(nonce, 'UTF8') END
        || CASE WHEN issued_at IS NULL THEN '\xffffffff'::bytea
                ELSE int4send(octet_length(floor(extract(epoch FROM issued_at) * 1000)::bigint::text))
                     || convert_to(floor(extract(epoch FROM issued_at) * 1000)::bigint::text, 'UTF8') END
        || CASE WHEN payload IS NULL THEN '\xffffffff'::bytea
                ELSE int4send(octet_length(payload)) || payload END
        || CASE WHEN signer IS NULL THEN '\xffffffff'::bytea
                ELSE int4send(octet_length(convert_to(signer, 'UTF8'))) || convert_to(signer, 'UTF8') END
        || CASE WHEN scheme IS NULL THEN '\xffffffff'::bytea
                ELSE int4send(octet_length(convert_to(scheme, 'UTF8'))) || convert_to(scheme, 'UTF8') END
        || CASE WHEN signature IS NULL THEN '\xffffffff'::bytea
                ELSE int4send(octet_length(signature)) || signature END
        || CASE WHEN signature_hash IS NULL THEN '\xffffffff'::bytea
                ELSE int4send(octet_length(convert_to(signature_hash, 'UTF8')))
                     || convert_to(signature_hash, 'UTF8') END
        -- As in 0002: F('t') when authenticated, otherwise F('f').
        || CASE WHEN authenticated THEN '\x0000000174'::bytea ELSE '\x0000000166'::bytea END
        || CASE WHEN decision IS NULL THEN '\xffffffff'::bytea
                ELSE int4send(octet_length(convert_to(decision, 'UTF8'))) || convert_to(decision, 'UTF8') END
        || CASE WHEN reason IS NULL THEN '\xffffffff'::bytea
                ELSE int4send(octet_length(convert_to(reason, 'UTF8'))) || convert_to(reason, 'UTF8') END
        || CASE WHEN received_at IS NULL THEN '\xffffffff'::bytea
                ELSE int4send(octet_length(floor(extract(epoch FROM received_at) * 1000)::bigint::text))
                     || convert_to(floor(extract(epoch FROM received_at) * 1000)::bigint::text, 'UTF8') END
        || CASE WHEN recorded_at IS NULL THEN '\xffffffff'::bytea
                ELSE int4send(octet_length(floor(extract(epoch FROM recorded_at) * 1000)::bigint::text))
                     || convert_to(floor(extract(epoch FROM recorded_at) * 1000)::bigint::text, 'UTF8') END
        || CASE WHEN detail IS NULL THEN ''::bytea
                ELSE int4send(octet_length(convert_to(detail, 'UTF8'))) || convert_to(detail, 'UTF8') END
    )
$$;

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
