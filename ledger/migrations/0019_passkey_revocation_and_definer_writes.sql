-- Passkeys can be revoked and traders disabled; the API stores a passkey and moves its sign count
-- only through SECURITY DEFINER functions; ceremony challenges are pruned once expired.
--
-- Why the functions: with a plain INSERT on webauthn_credentials the API's role could add a
-- passkey to any trader without an enrolment, and with UPDATE (sign_count) it could set a count
-- back and hide a cloned authenticator. floor_register_passkey stores a passkey only by using up
-- an open enrolment of a trader who is not disabled, in the same statement;
-- floor_advance_sign_count only moves a live passkey's count forward from the value the caller
-- read (compare-and-swap), or keeps 0 at 0 (synced passkeys keep no count).

ALTER TABLE webauthn_credentials ADD COLUMN revoked_at timestamptz;
ALTER TABLE traders ADD COLUMN disabled_at timestamptz;

-- The open sign-in challenges (no session, nobody known yet), counted on every beginLogin.
CREATE INDEX webauthn_challenges_open_logins ON webauthn_challenges (expires_at)
    WHERE purpose = 'login' AND used_at IS NULL;
CREATE INDEX webauthn_challenges_expiry ON webauthn_challenges (expires_at);

CREATE FUNCTION floor_register_passkey(
    p_enrolment_id bigint, p_credential_id bytea, p_public_key bytea, p_sign_count bigint,
    p_transports text[], p_backup_eligible boolean, p_backed_up boolean, p_now timestamptz
) RETURNS SETOF webauthn_credentials
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    WITH used AS (
        UPDATE trader_enrolments e SET used_at = p_now
        FROM traders t
        WHERE e.enrolment_id = p_enrolment_id AND e.used_at IS NULL AND e.expires_at > p_now
            AND t.name = e.trader AND t.disabled_at IS NULL
        RETURNING e.trader
    )
    INSERT INTO webauthn_credentials (credential_id, trader, public_key, sign_count, transports,
        backup_eligible, backed_up, created_at)
    SELECT p_credential_id, used.trader, p_public_key, p_sign_count, p_transports, p_backup_eligible,
        p_backed_up, p_now
    FROM used
    RETURNING *
$$;

CREATE FUNCTION floor_advance_sign_count(
    p_credential_id bytea, p_old bigint, p_new bigint, p_backed_up boolean, p_now timestamptz
) RETURNS boolean
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    WITH moved AS (
        UPDATE webauthn_credentials SET sign_count = p_new, backed_up = p_backed_up, last_used_at = p_now
        WHERE credential_id = p_credential_id AND sign_count = p_old AND revoked_at IS NULL
            AND (p_new > p_old OR (p_new = 0 AND p_old = 0))
        RETURNING 1
    )
    SELECT EXISTS (SELECT FROM moved)
$$;

-- Deletes at most p_limit challenges that expired before p_now (bounded work per call: the API
-- calls it on every begin_*). A deleted challenge's answer finds no challenge: still refused.
CREATE FUNCTION floor_prune_challenges(p_now timestamptz, p_limit integer) RETURNS integer
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    WITH gone AS (
        DELETE FROM webauthn_challenges WHERE challenge_id IN (
            SELECT challenge_id FROM webauthn_challenges
            WHERE expires_at <= p_now ORDER BY expires_at LIMIT least(greatest(p_limit, 0), 10000)
        )
        RETURNING 1
    )
    SELECT count(*)::integer FROM gone
$$;

REVOKE ALL ON FUNCTION floor_register_passkey(bigint, bytea, bytea, bigint, text[], boolean, boolean,
    timestamptz) FROM PUBLIC;
REVOKE ALL ON FUNCTION floor_advance_sign_count(bytea, bigint, bigint, boolean, timestamptz) FROM PUBLIC;
REVOKE ALL ON FUNCTION floor_prune_challenges(timestamptz, integer) FROM PUBLIC;

REVOKE INSERT ON webauthn_credentials FROM floor_web;
REVOKE UPDATE (sign_count, last_used_at, backed_up) ON webauthn_credentials FROM floor_web;
REVOKE UPDATE (used_at) ON trader_enrolments FROM floor_web;
GRANT EXECUTE ON FUNCTION floor_register_passkey(bigint, bytea, bytea, bigint, text[], boolean, boolean,
    timestamptz), floor_advance_sign_count(bytea, bigint, bigint, boolean, timestamptz),
    floor_prune_challenges(timestamptz, integer) TO floor_web;

-- The CLI revokes passkeys, signs a trader out (its sessions and their grants) and disables it.
GRANT UPDATE (revoked_at) ON webauthn_credentials TO floor_registrar;
GRANT UPDATE (disabled_at) ON traders TO floor_registrar;
GRANT SELECT (credential_id) ON web_sessions TO floor_registrar;
GRANT SELECT (grant_id, trader, session_id, credential_id, expires_at, revoked_at),
    UPDATE (revoked_at) ON arming_grants TO floor_registrar;
