-- Issue 34 (R12): a register row's id and time are the database's. Any service's role could
-- insert a row `OVERRIDING SYSTEM VALUE` with a chosen id (one at 10^12 broke the verification of
-- every later row, reported as a deletion), a chosen time or a link to any row. To every role but
-- the table's owner (the migrations' role, which can disable triggers anyway), the row must carry
-- the id this session just drew from the sequence, a time inside this transaction, and the hash of
-- the row before it; vigie.records.audit_register draws both from the database before hashing.
CREATE FUNCTION vigie_audit_log_database_assigns() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    drawn bigint;
    last_hash text;
BEGIN
    IF current_user = (SELECT tableowner FROM pg_tables
                       WHERE schemaname = TG_TABLE_SCHEMA AND tablename = TG_TABLE_NAME) THEN
        RETURN NEW;
    END IF;
    -- The same lock as vigie.records.audit_register: the row before this one cannot change under it.
    PERFORM pg_advisory_xact_lock(1447642929, hashtext(current_schema()));
    BEGIN
        drawn := currval(pg_get_serial_sequence(
            quote_ident(TG_TABLE_SCHEMA) || '.' || quote_ident(TG_TABLE_NAME), 'id'));
    EXCEPTION WHEN object_not_in_prerequisite_state THEN
        drawn := NULL;
    END;
    IF drawn IS NULL OR NEW.id IS DISTINCT FROM drawn THEN
        RAISE EXCEPTION 'register row id % is not the one the database drew (%)', NEW.id, drawn
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NEW.at IS NULL OR NEW.at < now() OR NEW.at > clock_timestamp() THEN
        RAISE EXCEPTION 'register row time % is not the database''s (this transaction: % to %)',
            NEW.at, now(), clock_timestamp() USING ERRCODE = 'insufficient_privilege';
    END IF;
    EXECUTE format('SELECT hash FROM %I.%I ORDER BY id DESC LIMIT 1',
                   TG_TABLE_SCHEMA, TG_TABLE_NAME) INTO last_hash;
    IF NEW.prev_hash IS DISTINCT FROM coalesce(last_hash, repeat('0', 64)) THEN
        RAISE EXCEPTION 'register row % is not chained to the last row', NEW.id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER audit_log_database_assigns BEFORE INSERT ON audit_log
    FOR EACH ROW EXECUTE FUNCTION vigie_audit_log_database_assigns();
