-- The broker's net liquidation per account, as the hot path sizes with it, for the API's sizing
-- suggestion; and a signed-in trader may add a passkey to its own account, confirmed by one it has.
--
-- account_values: the hot path is the only process that talks to the broker, so it writes the
-- value it would size an order with (brokers' NetLiquidation, cached in the hot path) every
-- second while its broker session is up, changed or not, so reported_at says when the broker last
-- confirmed it (the API refuses to suggest on an old one); the API only reads it. A wrong row
-- misleads the suggestion a trader sees, which the trader may then execute: the hot path sizes
-- an agent's order with its own value, never this row's, and holds a trader's order to the risk
-- profile's limits whatever the suggestion said.
CREATE TABLE account_values (
    account text PRIMARY KEY CHECK (length(account) BETWEEN 1 AND 64),
    net_liquidation numeric NOT NULL CHECK (net_liquidation <> 'NaN'),
    reported_at timestamptz NOT NULL
);
REVOKE ALL ON account_values FROM PUBLIC;
GRANT SELECT ON account_values TO floor_reader;
-- The hot path's own group (it alone holds floor_order_writer): nobody else writes the row.
GRANT INSERT, UPDATE (net_liquidation, reported_at) ON account_values TO floor_order_writer;

-- Adding a passkey from a signed-in session is two ceremonies, each with a challenge bound to the
-- session: 'passkey_confirm', an assertion by one of the trader's own passkeys (user-verified),
-- whose challenge the API derives from the session and the registration that follows; then
-- 'passkey', the new authenticator's registration. A live arming grant is not enough: a grant
-- lasts minutes and is not tied to this addition, so a stolen cookie of an armed session would
-- otherwise add a passkey that outlives the session. The checks of 0016 are replaced to admit the
-- new purposes.
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
        CHECK (purpose IN ('registration', 'login', 'arming', 'step_up', 'passkey_confirm', 'passkey')),
    ADD CONSTRAINT webauthn_challenges_enrolment_bound
        CHECK ((purpose = 'registration') = (enrolment_id IS NOT NULL)),
    ADD CONSTRAINT webauthn_challenges_session_bound
        CHECK ((purpose IN ('arming', 'step_up', 'passkey_confirm', 'passkey')) = (session_id IS NOT NULL)),
    ADD CONSTRAINT webauthn_challenges_order_bound
        CHECK ((purpose = 'step_up') = (order_hash IS NOT NULL));

-- One confirmed addition: the registration challenge it opens, the session and trader, which
-- passkey confirmed it, and (once used) the passkey it added. Written only by the functions below,
-- so floor_web's password alone can neither confirm an addition nor use one twice.
CREATE TABLE passkey_additions (
    challenge_id text PRIMARY KEY,  -- kept after the challenge is pruned: the record of who confirmed
    session_id text NOT NULL REFERENCES web_sessions (session_id),
    trader text NOT NULL REFERENCES traders (name),
    confirmed_by bytea NOT NULL REFERENCES webauthn_credentials (credential_id),
    confirmed_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    added_credential bytea UNIQUE,
    added_at timestamptz
);
REVOKE ALL ON passkey_additions FROM PUBLIC;
GRANT SELECT ON passkey_additions TO floor_web, floor_reader, floor_registrar;

-- Records that the passkey p_confirmed_by (the trader's own, unrevoked) just confirmed, with a
-- user-verified assertion the API checked, the addition whose registration challenge is
-- p_challenge_id, for the session whose cookie hashes to p_token_hash. The confirmation lasts
-- p_ttl_s (at most ten minutes) by the database's clock. The cookie's hash, not the session id:
-- floor_web can read session ids but never a session's hash.
CREATE FUNCTION floor_confirm_passkey_addition(
    p_token_hash bytea, p_challenge_id text, p_confirmed_by bytea, p_ttl_s integer
) RETURNS boolean
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    WITH confirmed AS (
        INSERT INTO passkey_additions (challenge_id, session_id, trader, confirmed_by, confirmed_at,
            expires_at)
        SELECT ch.challenge_id, s.session_id, s.trader, c.credential_id, now(),
            now() + make_interval(secs => least(greatest(p_ttl_s, 1), 600))
        FROM web_sessions s
        JOIN traders t ON t.name = s.trader
        JOIN webauthn_credentials c ON c.credential_id = p_confirmed_by AND c.trader = s.trader
        JOIN webauthn_challenges ch ON ch.challenge_id = p_challenge_id AND ch.purpose = 'passkey'
            AND ch.session_id = s.session_id AND ch.used_at IS NULL
        WHERE s.token_hash = p_token_hash AND s.revoked_at IS NULL AND s.expires_at > now()
            AND c.revoked_at IS NULL AND t.disabled_at IS NULL
        RETURNING 1
    )
    SELECT EXISTS (SELECT FROM confirmed)
$$;

-- Stores a passkey for the trader of the session whose cookie hashes to p_token_hash, only for
-- the confirmed addition p_challenge_id of that session, unexpired and not used before, its
-- confirming passkey and the session's sign-in passkey unrevoked and its trader enabled, all by
-- the database's clock, in one statement; the addition is used up by it. That the new passkey
-- just passed a registration ceremony, and the confirmation an assertion, is the API's to check;
-- SQL cannot see them.
CREATE FUNCTION floor_add_session_passkey(
    p_token_hash bytea, p_challenge_id text, p_credential_id bytea, p_public_key bytea,
    p_sign_count bigint, p_transports text[], p_backup_eligible boolean, p_backed_up boolean
) RETURNS SETOF webauthn_credentials
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    WITH used AS (
        UPDATE passkey_additions a SET added_credential = p_credential_id, added_at = now()
        FROM web_sessions s, traders t, webauthn_credentials sc, webauthn_credentials cc
        WHERE a.challenge_id = p_challenge_id AND a.added_credential IS NULL
            AND a.expires_at > now() AND a.session_id = s.session_id AND a.trader = s.trader
            AND s.token_hash = p_token_hash AND s.revoked_at IS NULL AND s.expires_at > now()
            AND t.name = s.trader AND t.disabled_at IS NULL
            AND sc.credential_id = s.credential_id AND sc.trader = s.trader AND sc.revoked_at IS NULL
            AND cc.credential_id = a.confirmed_by AND cc.trader = s.trader AND cc.revoked_at IS NULL
        RETURNING a.trader
    )
    INSERT INTO webauthn_credentials (credential_id, trader, public_key, sign_count, transports,
        backup_eligible, backed_up, created_at)
    SELECT p_credential_id, used.trader, p_public_key, p_sign_count, p_transports,
        p_backup_eligible, p_backed_up, now()
    FROM used
    RETURNING *
$$;

REVOKE ALL ON FUNCTION floor_confirm_passkey_addition(bytea, text, bytea, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION floor_add_session_passkey(bytea, text, bytea, bytea, bigint, text[], boolean,
    boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION floor_confirm_passkey_addition(bytea, text, bytea, integer),
    floor_add_session_passkey(bytea, text, bytea, bytea, bigint, text[], boolean, boolean) TO floor_web;

-- A staged order lives FLOOR_STAGED_TTL_S (an API setting, from created_at by the database's
-- clock) and may be discarded by the session that staged it; a discarded or expired one can no
-- longer be claimed for Execute. A reload must not bring back an order staged hours ago at a
-- price far from the market.
ALTER TABLE staged_orders ADD COLUMN discarded_at timestamptz,
    ADD CONSTRAINT staged_orders_discarded_or_executed CHECK (discarded_at IS NULL OR command_id IS NULL);

-- The API discards only through this function, so its role can never un-discard one (it has no
-- UPDATE on discarded_at): a discarded staged order stays discarded.
CREATE FUNCTION floor_discard_staged(p_id text, p_trader text, p_session_id text) RETURNS boolean
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    WITH discarded AS (
        UPDATE staged_orders SET discarded_at = coalesce(discarded_at, now())
        WHERE id = p_id AND trader = p_trader AND session_id = p_session_id AND command_id IS NULL
        RETURNING 1
    )
    SELECT EXISTS (SELECT FROM discarded)
$$;
REVOKE ALL ON FUNCTION floor_discard_staged(text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION floor_discard_staged(text, text, text) TO floor_web;
