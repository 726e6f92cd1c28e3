-- The viewer gateway: sessions, login throttling, hand-over, and the register's checkpoints
-- (REGULATION.md R8–R16, R27–R28, R38; DESIGN.md invariants 4 and 5).

-- Sessions are stored by the SHA-256 of their token: a database read gives no usable cookie.
CREATE TABLE sessions (
    token_sha256  text PRIMARY KEY,
    user_id       bigint NOT NULL REFERENCES users(id),
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    last_seen_at  timestamptz NOT NULL DEFAULT now(),
    address       text NOT NULL,
    post          text NOT NULL DEFAULT '',
    revoked_at    timestamptz
);
CREATE INDEX sessions_user ON sessions (user_id) WHERE revoked_at IS NULL;

CREATE TABLE login_failures (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username  text NOT NULL,
    address   text NOT NULL,
    at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX login_failures_username ON login_failures (username, at);
CREATE INDEX login_failures_address ON login_failures (address, at);

-- Hand-over (R27, R28): weekly hours are communes.police_hours; dated exceptions and manual
-- switches below. The state last announced is kept so that one switch is one event, whatever the
-- number of gateway replicas.
ALTER TABLE communes ADD COLUMN handover_refs text NOT NULL DEFAULT '';

CREATE TABLE handover_exceptions (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    commune     text NOT NULL REFERENCES communes(slug),
    starts_at   timestamptz NOT NULL,
    ends_at     timestamptz NOT NULL CHECK (ends_at > starts_at),
    holder      text NOT NULL CHECK (holder IN ('municipal_police', 'national_police')),
    reason      text NOT NULL CHECK (length(btrim(reason)) > 0),
    created_by  text NOT NULL
);

CREATE TABLE handover_switches (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    commune     text NOT NULL REFERENCES communes(slug),
    holder      text NOT NULL CHECK (holder IN ('municipal_police', 'national_police')),
    reason      text NOT NULL CHECK (length(btrim(reason)) > 0),
    switched_by text NOT NULL,
    started_at  timestamptz NOT NULL DEFAULT now(),
    until       timestamptz,            -- NULL: until the next scheduled switch
    ended_at    timestamptz,
    ended_by    text
);
CREATE INDEX handover_switches_open ON handover_switches (commune) WHERE ended_at IS NULL;

CREATE TABLE handover_state (
    commune     text PRIMARY KEY REFERENCES communes(slug),
    holder      text NOT NULL,
    since       timestamptz NOT NULL DEFAULT now()
);

-- Signed heads of the register's chain; 'purge' checkpoints anchor the chain after a purge (R15).
CREATE TABLE audit_checkpoints (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now(),
    kind       text NOT NULL CHECK (kind IN ('periodic', 'purge')),
    last_id    bigint NOT NULL,
    last_hash  text NOT NULL,
    signature  text NOT NULL
);
CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION vigie_audit_log_append_only();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION vigie_audit_log_append_only();
CREATE INDEX audit_log_actor ON audit_log (actor, at);
CREATE INDEX audit_log_action ON audit_log (action, at);

-- The register's own retention (R15) purges whole months: only the table's owner (the migrations'
-- role, never the application's), inside `vigie audit purge`, which sets vigie.register_purge.
CREATE OR REPLACE FUNCTION vigie_audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND TG_TABLE_NAME = 'audit_log'
       AND current_setting('vigie.register_purge', true) = 'on'
       AND current_user = (SELECT tableowner FROM pg_tables
                           WHERE schemaname = TG_TABLE_SCHEMA AND tablename = TG_TABLE_NAME) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'the register is append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;
