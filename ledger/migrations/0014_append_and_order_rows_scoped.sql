-- Only the processes that write the ledger and the order-state rows may.
--
-- 0002/0004 granted ledger_append() to floor_writer, every runtime role: the API, the worker
-- and the CLI could append an authenticated, accepted entry of their choosing (the database
-- cannot check its signature) that a restarted hot path would act on. Only the hot path
-- appends (the CLI's key and risk changes go through floor_key_change and
-- floor_risk_profile_set, which append as their owner), so only floor_appender, the hot path's
-- group, may call it now.

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'floor_appender') THEN
        CREATE ROLE floor_appender NOLOGIN;
    END IF;
END
$$;

REVOKE ALL ON FUNCTION ledger_append(text, text, text, text, text, timestamptz, bytea, text, text, bytea, text, boolean, text, text, timestamptz, text)
    FROM PUBLIC, floor_writer, floor_reader;
GRANT EXECUTE ON FUNCTION ledger_append(text, text, text, text, text, timestamptz, bytea, text, text, bytea, text, boolean, text, text, timestamptz, text)
    TO floor_appender;
