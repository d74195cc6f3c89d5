-- The sign-in assertion of each web session: the passkey's sign count and the SHA-256 of the
-- authenticator data and the client data it signed (the credential is web_sessions.credential_id
-- already). A trader's risk-reducing commands (a cancel, a cancel-all, the breaker's trip) carry
-- it as their authorization (ceremony "session") so the ledger records the ceremony that
-- actually let them through; they must not wait for arming.
--
-- Sessions opened before this migration have none (all four NULL): their trader signs in again.
-- The API sets the evidence only when it opens a session (its INSERT covers every column; its
-- UPDATE on web_sessions stays revoked_at alone), so a session's evidence is never rewritten.
ALTER TABLE web_sessions
    ADD COLUMN sign_count bigint CHECK (sign_count >= 0),
    ADD COLUMN authenticator_data_sha256 text CHECK (authenticator_data_sha256 ~ '^[0-9a-f]{64}$'),
    ADD COLUMN client_data_sha256 text CHECK (client_data_sha256 ~ '^[0-9a-f]{64}$'),
    ADD COLUMN synced boolean,
    ADD CONSTRAINT web_sessions_sign_in_whole CHECK (
        (sign_count IS NULL) = (authenticator_data_sha256 IS NULL)
        AND (sign_count IS NULL) = (client_data_sha256 IS NULL)
        AND (sign_count IS NULL) = (synced IS NULL)
    );

GRANT SELECT (sign_count, authenticator_data_sha256, client_data_sha256, synced) ON web_sessions
    TO floor_web;
