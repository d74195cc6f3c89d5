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

-- The API opens sessions and stores grants only through these functions (its INSERTs on
-- web_sessions and arming_grants are revoked): each stores the row only if the passkey named
-- as its evidence belongs to that trader, is not revoked, and the trader is not disabled (and,
-- for a grant, the session is that trader's and not revoked), in the same statement, so a
-- revocation that commits first is never outrun. That the passkey just passed a ceremony is
-- the API's to check; SQL cannot see it.
CREATE FUNCTION floor_open_session(
    p_session_id text, p_token_hash bytea, p_trader text, p_credential_id bytea,
    p_created_at timestamptz, p_expires_at timestamptz, p_sign_count bigint,
    p_authenticator_data_sha256 text, p_client_data_sha256 text, p_synced boolean
) RETURNS boolean
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    WITH opened AS (
        INSERT INTO web_sessions (session_id, token_hash, trader, credential_id, created_at, expires_at,
            sign_count, authenticator_data_sha256, client_data_sha256, synced)
        SELECT p_session_id, p_token_hash, c.trader, c.credential_id, p_created_at, p_expires_at,
            p_sign_count, p_authenticator_data_sha256, p_client_data_sha256, p_synced
        FROM webauthn_credentials c JOIN traders t ON t.name = c.trader
        WHERE c.credential_id = p_credential_id AND c.trader = p_trader AND c.revoked_at IS NULL
            AND t.disabled_at IS NULL
        RETURNING 1
    )
    SELECT EXISTS (SELECT FROM opened)
$$;

CREATE FUNCTION floor_add_grant(
    p_grant_id text, p_trader text, p_session_id text, p_symbols text[], p_max_quantity bigint,
    p_max_notional numeric, p_credential_id bytea, p_sign_count bigint,
    p_authenticator_data_sha256 text, p_client_data_sha256 text, p_synced boolean,
    p_created_at timestamptz, p_expires_at timestamptz
) RETURNS boolean
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    WITH added AS (
        INSERT INTO arming_grants (grant_id, trader, session_id, symbols, max_quantity, max_notional,
            credential_id, sign_count, authenticator_data_sha256, client_data_sha256, synced,
            created_at, expires_at)
        SELECT p_grant_id, c.trader, s.session_id, p_symbols, p_max_quantity, p_max_notional,
            c.credential_id, p_sign_count, p_authenticator_data_sha256, p_client_data_sha256, p_synced,
            p_created_at, p_expires_at
        FROM webauthn_credentials c JOIN traders t ON t.name = c.trader
            JOIN web_sessions s ON s.trader = c.trader
        WHERE c.credential_id = p_credential_id AND c.trader = p_trader AND c.revoked_at IS NULL
            AND t.disabled_at IS NULL AND s.session_id = p_session_id AND s.revoked_at IS NULL
        RETURNING 1
    )
    SELECT EXISTS (SELECT FROM added)
$$;

REVOKE ALL ON FUNCTION floor_open_session(text, bytea, text, bytea, timestamptz, timestamptz, bigint,
    text, text, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION floor_add_grant(text, text, text, text[], bigint, numeric, bytea, bigint, text,
    text, boolean, timestamptz, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION floor_open_session(text, bytea, text, bytea, timestamptz, timestamptz, bigint,
    text, text, boolean), floor_add_grant(text, text, text, text[], bigint, numeric, bytea, bigint, text,
    text, boolean, timestamptz, timestamptz) TO floor_web;
REVOKE INSERT ON web_sessions, arming_grants FROM floor_web;
