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

-- A caller's temporary tables cannot stand in for the ledger's. Postgres searches the session's
-- temporary schema first for table names unless pg_temp is listed, so with search_path =
-- pg_catalog, public a caller's CREATE TEMP TABLE ledger_head(...) was the head ledger_append
-- read and advanced (the real chain then broke on the next append). Every function that pins a
-- search_path (the SECURITY DEFINER ones and those they call) now puts pg_temp last, and no
-- runtime role may create temporary tables at all (below, and in ledger/roles.py for a
-- database the owner does not own).
DO $$
DECLARE r record;
BEGIN
    FOR r IN
        SELECT p.oid::regprocedure AS proc FROM pg_proc p
        WHERE p.pronamespace = 'public'::regnamespace
          AND (p.prosecdef OR EXISTS (SELECT 1 FROM unnest(p.proconfig) c WHERE c LIKE 'search_path=%'))
    LOOP
        EXECUTE format('ALTER FUNCTION %s SET search_path = pg_catalog, public, pg_temp', r.proc);
    END LOOP;
    -- Takes effect where the migrating role owns the database; a no-op (a warning) elsewhere.
    EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC', current_database());
END
$$;

-- Order-state rows are unsigned, yet recovery, slice accounting and reconciliation read them:
-- only the processes that write them (the hot path, and the worker's broker-session
-- reconciliation) may insert, through floor_order_writer; 0003 had granted every runtime role.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'floor_order_writer') THEN
        CREATE ROLE floor_order_writer NOLOGIN;
    END IF;
END
$$;

REVOKE INSERT ON order_events FROM PUBLIC, floor_writer, floor_reader;
REVOKE USAGE ON SEQUENCE order_events_id_seq FROM PUBLIC, floor_writer, floor_reader;
GRANT INSERT ON order_events TO floor_order_writer;
GRANT USAGE ON SEQUENCE order_events_id_seq TO floor_order_writer;
