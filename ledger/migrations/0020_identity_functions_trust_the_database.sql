-- The API's SECURITY DEFINER functions no longer take the API's word for the time or for which
-- enrolment is being used, and a revoked passkey no longer keeps a session alive.
--
-- floor_register_passkey took an enrolment by id (which floor_web can read) and a caller's
-- p_now, so the API's role could attach any passkey to any trader through any unused
-- enrolment, expired ones included. It now takes the SHA-256 of the enrolment token the
-- enrolment link carried (only its holder has it) and judges expiry by the database's clock.
-- floor_prune_challenges with a future p_now deleted live challenges; it now deletes only
-- what has expired by the database's clock.
-- floor_web_session now also requires the session's passkey unrevoked and its trader enabled:
-- revoking a passkey mid-ceremony must not leave a live session behind.

DROP FUNCTION floor_register_passkey(bigint, bytea, bytea, bigint, text[], boolean, boolean, timestamptz);
DROP FUNCTION floor_prune_challenges(timestamptz, integer);

CREATE FUNCTION floor_register_passkey(
    p_token_hash bytea, p_credential_id bytea, p_public_key bytea, p_sign_count bigint,
    p_transports text[], p_backup_eligible boolean, p_backed_up boolean
) RETURNS SETOF webauthn_credentials
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    WITH used AS (
        UPDATE trader_enrolments e SET used_at = now()
        FROM traders t
        WHERE e.token_hash = p_token_hash AND e.used_at IS NULL AND e.expires_at > now()
            AND t.name = e.trader AND t.disabled_at IS NULL
        RETURNING e.trader
    )
    INSERT INTO webauthn_credentials (credential_id, trader, public_key, sign_count, transports,
        backup_eligible, backed_up, created_at)
    SELECT p_credential_id, used.trader, p_public_key, p_sign_count, p_transports, p_backup_eligible,
        p_backed_up, now()
    FROM used
    RETURNING *
$$;

-- Deletes at most p_limit challenges already expired (bounded work per call: the API calls it
-- on every begin_*). A deleted challenge's answer finds no challenge: still refused.
CREATE FUNCTION floor_prune_challenges(p_limit integer) RETURNS integer
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    WITH gone AS (
        DELETE FROM webauthn_challenges WHERE challenge_id IN (
            SELECT challenge_id FROM webauthn_challenges
            WHERE expires_at <= now() ORDER BY expires_at LIMIT least(greatest(p_limit, 0), 10000)
        )
        RETURNING 1
    )
    SELECT count(*)::integer FROM gone
$$;

-- The session with this cookie's hash, unless revoked or expired at p_now, its passkey revoked
-- or its trader disabled.
CREATE OR REPLACE FUNCTION floor_web_session(p_hash bytea, p_now timestamptz)
RETURNS TABLE (session_id text, trader text, expires_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    SELECT s.session_id, s.trader, s.expires_at FROM web_sessions s
    JOIN webauthn_credentials c ON c.credential_id = s.credential_id AND c.trader = s.trader
    JOIN traders t ON t.name = s.trader
    WHERE s.token_hash = p_hash AND s.revoked_at IS NULL AND s.expires_at > p_now
        AND c.revoked_at IS NULL AND t.disabled_at IS NULL
$$;

REVOKE ALL ON FUNCTION floor_register_passkey(bytea, bytea, bytea, bigint, text[], boolean, boolean)
    FROM PUBLIC;
REVOKE ALL ON FUNCTION floor_prune_challenges(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION floor_register_passkey(bytea, bytea, bytea, bigint, text[], boolean, boolean),
    floor_prune_challenges(integer) TO floor_web;
