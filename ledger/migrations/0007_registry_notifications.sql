-- A change to the key registry or to a risk profile is announced on the `floor_registry`
-- channel (delivered when its transaction commits), so the hot path reloads its in-memory copy
-- at once instead of at its next periodic reload: a tightened limit applies to the next order.

CREATE FUNCTION floor_registry_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('floor_registry', TG_TABLE_NAME);
    RETURN NULL;
END
$$;

CREATE TRIGGER agent_keys_announce AFTER INSERT OR UPDATE ON agent_keys
    FOR EACH STATEMENT EXECUTE FUNCTION floor_registry_changed();
CREATE TRIGGER risk_profiles_announce AFTER INSERT OR UPDATE ON risk_profiles
    FOR EACH STATEMENT EXECUTE FUNCTION floor_registry_changed();
