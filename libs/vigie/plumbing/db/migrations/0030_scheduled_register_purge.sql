-- R15: the register's own retention runs on a schedule (issue 40), in the retention service, which
-- holds the register signing key but may not delete a row. This function, the owner's (SECURITY
-- DEFINER), deletes for it a prefix of the journal, and nothing else: only rows older than the
-- retention asked (a year at least, ten at most), only behind a 'purge' checkpoint naming the last
-- one (signed by the caller; `vigie audit verify` checks the signature), only as the table's owner
-- with vigie.register_purge set, which the append-only trigger requires.
CREATE OR REPLACE FUNCTION vigie_purge_register(through_id bigint, keep_months integer)
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    cutoff timestamptz;
    deleted bigint;
BEGIN
    IF keep_months IS NULL OR keep_months < 12 OR keep_months > 120 THEN
        RAISE EXCEPTION 'the register is kept 12 to 120 months (R15), not %', keep_months
            USING ERRCODE = 'check_violation';
    END IF;
    cutoff := date_trunc('month', now() - make_interval(months => keep_months));
    IF EXISTS (SELECT 1 FROM audit_log WHERE id <= through_id AND at >= cutoff) THEN
        RAISE EXCEPTION 'register rows up to % are not all older than %', through_id, cutoff
            USING ERRCODE = 'check_violation';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM audit_checkpoints WHERE kind = 'purge' AND last_id = through_id)
    THEN
        RAISE EXCEPTION 'no purge checkpoint names register row %', through_id
            USING ERRCODE = 'check_violation';
    END IF;
    PERFORM set_config('vigie.register_purge', 'on', true);
    DELETE FROM audit_log WHERE id <= through_id;
    GET DIAGNOSTICS deleted = ROW_COUNT;
    PERFORM set_config('vigie.register_purge', 'off', true);
    RETURN deleted;
END $$;
REVOKE ALL ON FUNCTION vigie_purge_register(bigint, integer) FROM PUBLIC;
