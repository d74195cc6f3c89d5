-- Human traders: their passkeys (WebAuthn credentials), enrolments, web sessions, single-use
-- ceremony challenges and arming grants; and the API tokens programs present.
--
-- Secrets (enrolment tokens, session cookies, API tokens) are random and stored only as their
-- SHA-256. The API (floor_web) never reads a session's or a token's hash: it looks up what a
-- caller presented through the SECURITY DEFINER functions below, by the hash of it. The CLI
-- (floor_registrar) adds traders, issues enrolments and tokens and revokes them.

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'floor_web') THEN
        CREATE ROLE floor_web NOLOGIN;
    END IF;
END
$$;

-- A trader's own signing key (agent trader.<name>): the API signs the trader's commands with it
-- once the trader's WebAuthn ceremony passed.
ALTER TABLE agent_keys DROP CONSTRAINT agent_keys_role_check;
ALTER TABLE agent_keys ADD CONSTRAINT agent_keys_role_check
    CHECK (role IN ('agent', 'operator', 'service', 'trader'));

CREATE TABLE traders (
    name text PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9_-]{0,63}$'),
    -- WebAuthn user.id: random, never the name (authenticators may show or sync it).
    user_handle bytea NOT NULL UNIQUE CHECK (length(user_handle) = 32),
    role text NOT NULL CHECK (role IN ('trader', 'ops')),
    accounts text[] NOT NULL CHECK (cardinality(accounts) > 0),
    step_up_every_order boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE trader_enrolments (
    enrolment_id bigserial PRIMARY KEY,
    trader text NOT NULL REFERENCES traders (name),
    token_hash bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at timestamptz
);

CREATE TABLE webauthn_credentials (
    credential_id bytea PRIMARY KEY CHECK (length(credential_id) BETWEEN 1 AND 1023),
    trader text NOT NULL REFERENCES traders (name),
    public_key bytea NOT NULL,
    sign_count bigint NOT NULL CHECK (sign_count >= 0),
    transports text[] NOT NULL DEFAULT '{}',
    backup_eligible boolean NOT NULL,
    backed_up boolean NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz
);
CREATE INDEX webauthn_credentials_trader ON webauthn_credentials (trader);

CREATE TABLE web_sessions (
    session_id text PRIMARY KEY,
    token_hash bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    trader text NOT NULL REFERENCES traders (name),
    credential_id bytea NOT NULL REFERENCES webauthn_credentials (credential_id),
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz
);

CREATE TABLE webauthn_challenges (
    challenge_id text PRIMARY KEY,
    purpose text NOT NULL CHECK (purpose IN ('registration', 'login', 'arming', 'step_up')),
    challenge bytea NOT NULL CHECK (length(challenge) BETWEEN 16 AND 64),
    enrolment_id bigint REFERENCES trader_enrolments (enrolment_id),
    session_id text REFERENCES web_sessions (session_id),
    order_hash text CHECK (order_hash ~ '^[0-9a-f]{64}$'),
    limits jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at timestamptz,
    CHECK ((purpose = 'registration') = (enrolment_id IS NOT NULL)),
    CHECK ((purpose IN ('arming', 'step_up')) = (session_id IS NOT NULL)),
    CHECK ((purpose = 'step_up') = (order_hash IS NOT NULL))
);

CREATE TABLE arming_grants (
    grant_id text PRIMARY KEY,
    trader text NOT NULL REFERENCES traders (name),
    session_id text NOT NULL REFERENCES web_sessions (session_id),
    symbols text[],
    max_quantity bigint CHECK (max_quantity > 0),
    max_notional numeric CHECK (max_notional > 0),
    -- The arming assertion, recorded in every command the grant authorises.
    credential_id bytea NOT NULL REFERENCES webauthn_credentials (credential_id),
    sign_count bigint NOT NULL,
    authenticator_data_sha256 text NOT NULL CHECK (authenticator_data_sha256 ~ '^[0-9a-f]{64}$'),
    client_data_sha256 text NOT NULL CHECK (client_data_sha256 ~ '^[0-9a-f]{64}$'),
    synced boolean NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz
);
CREATE INDEX arming_grants_session ON arming_grants (session_id, created_at DESC);

CREATE TABLE api_tokens (
    token_id bigserial PRIMARY KEY,
    name text NOT NULL CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'),
    token_hash bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    role text NOT NULL CHECK (role IN ('read', 'ops')),
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);
CREATE UNIQUE INDEX api_tokens_one_active ON api_tokens (name) WHERE revoked_at IS NULL;

-- The active token with this hash: its name and role.
CREATE FUNCTION floor_api_token(p_hash bytea) RETURNS TABLE (name text, role text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    SELECT t.name, t.role FROM api_tokens t WHERE t.token_hash = p_hash AND t.revoked_at IS NULL
$$;

-- The session with this cookie's hash, unless revoked or expired at p_now.
CREATE FUNCTION floor_web_session(p_hash bytea, p_now timestamptz)
RETURNS TABLE (session_id text, trader text, expires_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    SELECT s.session_id, s.trader, s.expires_at FROM web_sessions s
    WHERE s.token_hash = p_hash AND s.revoked_at IS NULL AND s.expires_at > p_now
$$;

-- The enrolment with this token's hash, whatever its state (the caller names why it is refused).
CREATE FUNCTION floor_enrolment(p_hash bytea)
RETURNS TABLE (enrolment_id bigint, trader text, expires_at timestamptz, used_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    SELECT e.enrolment_id, e.trader, e.expires_at, e.used_at FROM trader_enrolments e
    WHERE e.token_hash = p_hash
$$;

REVOKE ALL ON traders, trader_enrolments, webauthn_credentials, web_sessions, webauthn_challenges,
    arming_grants, api_tokens FROM PUBLIC;
REVOKE ALL ON FUNCTION floor_api_token(bytea) FROM PUBLIC;
REVOKE ALL ON FUNCTION floor_web_session(bytea, timestamptz) FROM PUBLIC;
REVOKE ALL ON FUNCTION floor_enrolment(bytea) FROM PUBLIC;

-- The API: ceremonies, sessions, grants. Never a hash it was not handed, never a public key
-- rewritten, never a trader's accounts changed.
GRANT EXECUTE ON FUNCTION floor_api_token(bytea), floor_web_session(bytea, timestamptz),
    floor_enrolment(bytea) TO floor_web;
GRANT SELECT ON traders, webauthn_credentials, webauthn_challenges, arming_grants TO floor_web;
GRANT SELECT (enrolment_id, trader, created_at, expires_at, used_at), UPDATE (used_at)
    ON trader_enrolments TO floor_web;
GRANT INSERT ON webauthn_credentials TO floor_web;
GRANT UPDATE (sign_count, last_used_at, backed_up) ON webauthn_credentials TO floor_web;
GRANT SELECT (session_id, trader, credential_id, created_at, expires_at, revoked_at), INSERT,
    UPDATE (revoked_at) ON web_sessions TO floor_web;
GRANT INSERT, UPDATE (used_at) ON webauthn_challenges TO floor_web;
GRANT INSERT, UPDATE (revoked_at) ON arming_grants TO floor_web;

-- The CLI: traders, enrolments and tokens.
GRANT EXECUTE ON FUNCTION floor_api_token(bytea) TO floor_registrar;
GRANT SELECT, INSERT ON traders TO floor_registrar;
GRANT SELECT (enrolment_id, trader, created_at, expires_at, used_at), INSERT ON trader_enrolments
    TO floor_registrar;
GRANT USAGE ON SEQUENCE trader_enrolments_enrolment_id_seq TO floor_registrar;
GRANT SELECT ON webauthn_credentials TO floor_registrar;
GRANT SELECT (session_id, trader, expires_at, revoked_at), UPDATE (revoked_at) ON web_sessions
    TO floor_registrar;
GRANT SELECT (token_id, name, role, created_at, revoked_at), INSERT, UPDATE (revoked_at)
    ON api_tokens TO floor_registrar;
GRANT USAGE ON SEQUENCE api_tokens_token_id_seq TO floor_registrar;
