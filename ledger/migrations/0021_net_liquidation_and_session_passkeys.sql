-- The broker's net liquidation per account, as the hot path sizes with it, for the API's sizing
-- suggestion; and a signed-in, armed trader may add a passkey to its own account.
--
-- account_values: the hot path is the only process that talks to the broker, so it writes the
-- value it would size an order with (brokers' NetLiquidation, cached in the hot path) each time
-- it changes; the API only reads it. A wrong row could mislead only the suggestion a trader sees:
-- the hot path sizes every order with its own value, never this row's.
CREATE TABLE account_values (
    account text PRIMARY KEY CHECK (length(account) BETWEEN 1 AND 64),
    net_liquidation numeric NOT NULL CHECK (net_liquidation <> 'NaN'),
    reported_at timestamptz NOT NULL
);
REVOKE ALL ON account_values FROM PUBLIC;
GRANT SELECT ON account_values TO floor_reader;
-- The hot path's own group (it alone holds floor_order_writer): nobody else writes the row.
GRANT INSERT, UPDATE (net_liquidation, reported_at) ON account_values TO floor_order_writer;

-- A challenge for adding a passkey from a signed-in session ('passkey'): bound to the session,
-- like arming and step-up. The checks of 0016 are replaced to admit the new purpose.
DO $$
DECLARE
    v_name text;
BEGIN
    FOR v_name IN
        SELECT conname FROM pg_constraint
        WHERE conrelid = 'webauthn_challenges'::regclass AND contype = 'c'
            AND pg_get_constraintdef(oid) LIKE '%purpose%'
    LOOP
        EXECUTE format('ALTER TABLE webauthn_challenges DROP CONSTRAINT %I', v_name);
    END LOOP;
END
$$;
ALTER TABLE webauthn_challenges
    ADD CONSTRAINT webauthn_challenges_purpose_known
        CHECK (purpose IN ('registration', 'login', 'arming', 'step_up', 'passkey')),
    ADD CONSTRAINT webauthn_challenges_enrolment_bound
        CHECK ((purpose = 'registration') = (enrolment_id IS NOT NULL)),
    ADD CONSTRAINT webauthn_challenges_session_bound
        CHECK ((purpose IN ('arming', 'step_up', 'passkey')) = (session_id IS NOT NULL)),
    ADD CONSTRAINT webauthn_challenges_order_bound
        CHECK ((purpose = 'step_up') = (order_hash IS NOT NULL));

-- Stores a passkey for the trader of the session whose cookie hashes to p_token_hash, only while
-- that session is live and holds a live arming grant (a user-verified ceremony of the last
-- minutes), its passkeys unrevoked and its trader enabled, all by the database's clock, in one
-- statement. The cookie's hash, not the session id: floor_web can read session ids but never a
-- session's hash, so its password alone cannot add a passkey to anyone; only a request carrying
-- the trader's own cookie can. That the new passkey just passed a registration ceremony is the
-- API's to check; SQL cannot see it.
CREATE FUNCTION floor_add_session_passkey(
    p_token_hash bytea, p_credential_id bytea, p_public_key bytea, p_sign_count bigint,
    p_transports text[], p_backup_eligible boolean, p_backed_up boolean
) RETURNS SETOF webauthn_credentials
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    INSERT INTO webauthn_credentials (credential_id, trader, public_key, sign_count, transports,
        backup_eligible, backed_up, created_at)
    SELECT p_credential_id, s.trader, p_public_key, p_sign_count, p_transports, p_backup_eligible,
        p_backed_up, now()
    FROM web_sessions s
    JOIN traders t ON t.name = s.trader
    JOIN webauthn_credentials sc ON sc.credential_id = s.credential_id AND sc.trader = s.trader
    WHERE s.token_hash = p_token_hash AND s.revoked_at IS NULL AND s.expires_at > now()
        AND sc.revoked_at IS NULL AND t.disabled_at IS NULL
        AND EXISTS (
            SELECT FROM arming_grants g
            JOIN webauthn_credentials gc ON gc.credential_id = g.credential_id AND gc.trader = g.trader
            WHERE g.session_id = s.session_id AND g.trader = s.trader AND g.revoked_at IS NULL
                AND g.expires_at > now() AND gc.revoked_at IS NULL
        )
    RETURNING *
$$;

REVOKE ALL ON FUNCTION floor_add_session_passkey(bytea, bytea, bytea, bigint, text[], boolean, boolean)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION floor_add_session_passkey(bytea, bytea, bytea, bigint, text[], boolean, boolean)
    TO floor_web;
