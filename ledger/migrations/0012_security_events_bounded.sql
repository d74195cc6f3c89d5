-- Security events are append-only and live on the ledger's disk, so their size is bounded
-- where no writer can skip it (the worst a bounded event can be is under 48 KiB of JSON text, with
-- every character escaped). The floor bounds every field before the insert
-- (observability.security.bounded: ids at 128 characters, detail values at 256, at most 16
-- detail entries); these limits sit above those and refuse only a writer that did not.
-- NOT VALID: rows written before this migration are kept as they are (they cannot be
-- rewritten anyway); every new row is checked.

ALTER TABLE security_events ADD CONSTRAINT security_events_bounded CHECK (
    length(reason) <= 256
    AND length(source) <= 256
    AND coalesce(length(agent_id), 0) <= 256
    AND coalesce(length(key_id), 0) <= 256
    AND coalesce(length(command_id), 0) <= 256
    AND coalesce(length(signature_hash), 0) <= 256
    AND coalesce(length(remote_addr), 0) <= 256
    AND octet_length(detail::text) <= 65536
) NOT VALID;
