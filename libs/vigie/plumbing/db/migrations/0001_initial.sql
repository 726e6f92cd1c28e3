-- Vigie's first schema (DESIGN.md "Storage"). Applied inside the migration runner's transaction,
-- with search_path set to the target schema: no schema name is written here.

CREATE TABLE communes (
    slug            text PRIMARY KEY CHECK (slug ~ '^[a-z0-9][a-z0-9_-]*$'),
    name            text NOT NULL CHECK (length(name) > 0),
    -- Invariant 3 and R4: 1 to 30 days, the legal maximum.
    retention_days  integer NOT NULL CHECK (retention_days BETWEEN 1 AND 30),
    time_zone       text NOT NULL DEFAULT 'Europe/Paris',
    -- Weekly municipal-police hours in time_zone: {"mon": [["08:00","20:00"]], ...}
    police_hours    jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE cameras (
    id                     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    commune                text NOT NULL REFERENCES communes(slug),
    slug                   text NOT NULL CHECK (slug ~ '^[a-z0-9][a-z0-9_-]*$'),
    name                   text NOT NULL,
    location               text NOT NULL DEFAULT '',
    state                  text NOT NULL DEFAULT 'commissioning'
                           CHECK (state IN ('commissioning', 'active', 'disabled')),
    -- The camera's own (prefectoral) retention; NULL means the commune's. Never above it: trigger below.
    retention_days         integer CHECK (retention_days BETWEEN 1 AND 30),
    -- R3: the prefectoral authorisation the camera records under.
    authorisation_ref      text,
    authorisation_expires  date,
    purposes               text[] NOT NULL DEFAULT '{}',
    -- Multi-sensor devices: one camera per sensor, sharing a device id.
    device_id              text,
    sensor_index           integer CHECK (sensor_index >= 0),
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    UNIQUE (commune, slug),
    UNIQUE (device_id, sensor_index)
);

-- Stored apart from the camera row so that no query serving the API can return it by accident.
CREATE TABLE camera_sources (
    camera_id  bigint PRIMARY KEY REFERENCES cameras(id) ON DELETE CASCADE,
    rtsp_url   text NOT NULL CHECK (rtsp_url ~ '^rtsps?://'),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Live health written by ingest and masking, read by `vigie status` and the UI.
CREATE TABLE camera_health (
    camera_id        bigint PRIMARY KEY REFERENCES cameras(id) ON DELETE CASCADE,
    online           boolean NOT NULL DEFAULT false,
    ingest_status    text NOT NULL DEFAULT 'unknown',
    ingest_detail    text NOT NULL DEFAULT '',
    last_frame_at    timestamptz,
    codec            text,
    width            integer,
    height           integer,
    fps              real,
    masking_ok       boolean,
    masking_detail   text NOT NULL DEFAULT '',
    mask_version     integer,
    updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION vigie_check_camera_retention() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    commune_days integer;
BEGIN
    IF NEW.retention_days IS NOT NULL THEN
        SELECT retention_days INTO commune_days FROM communes WHERE slug = NEW.commune;
        IF NEW.retention_days > commune_days THEN
            RAISE EXCEPTION 'camera retention % days exceeds its commune''s % days',
                NEW.retention_days, commune_days
                USING ERRCODE = 'check_violation';
        END IF;
    END IF;
    NEW.updated_at := now();
    RETURN NEW;
END $$;

CREATE TRIGGER cameras_retention BEFORE INSERT OR UPDATE ON cameras
    FOR EACH ROW EXECUTE FUNCTION vigie_check_camera_retention();

-- Versioned mask documents (DESIGN.md "Masks"); a version is never edited, only superseded.
CREATE TABLE masks (
    camera_id    bigint NOT NULL REFERENCES cameras(id) ON DELETE CASCADE,
    version      integer NOT NULL CHECK (version >= 1),
    document     jsonb NOT NULL,
    author       text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    approved_by  text,
    approved_at  timestamptz,
    PRIMARY KEY (camera_id, version)
);

CREATE TABLE segments (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    camera_id     bigint NOT NULL REFERENCES cameras(id),
    start_time    timestamptz NOT NULL,
    end_time      timestamptz NOT NULL CHECK (end_time >= start_time),
    object_key    text NOT NULL UNIQUE,
    frames        integer NOT NULL CHECK (frames > 0),
    size_bytes    bigint NOT NULL CHECK (size_bytes > 0),
    sha256        text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    mask_version  integer NOT NULL,
    codec         text NOT NULL,
    width         integer NOT NULL,
    height        integer NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    -- Idempotent on camera + start: a redelivered segment is the same row (invariant 2).
    UNIQUE (camera_id, start_time)
);
-- Retention selects by end time: its cost follows what expires, not what is stored.
CREATE INDEX segments_end_time ON segments (end_time);

CREATE TABLE users (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username            text NOT NULL UNIQUE CHECK (username ~ '^[a-z0-9][a-z0-9._-]*$'),
    full_name           text NOT NULL,
    password_hash       text NOT NULL,
    roles               text[] NOT NULL DEFAULT '{}',
    communes            text[] NOT NULL DEFAULT '{}',
    -- R8: who designated the agent, when, until when; R11: data-protection training.
    designated_by       text,
    designated_on       date,
    designation_expires date,
    agent_number        text,
    training_date       date,
    totp_secret         text,
    disabled            boolean NOT NULL DEFAULT false,
    created_at          timestamptz NOT NULL DEFAULT now()
);

-- The register of accesses (invariant 4, R12): append-only, hash-chained.
CREATE TABLE audit_log (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at            timestamptz NOT NULL DEFAULT now(),
    actor         text NOT NULL,
    action        text NOT NULL,
    commune       text,
    cameras       text[] NOT NULL DEFAULT '{}',
    period_start  timestamptz,
    period_end    timestamptz,
    reason        text,
    recipients    text,
    outcome       text NOT NULL DEFAULT 'ok',
    details       jsonb NOT NULL DEFAULT '{}'::jsonb,
    prev_hash     text,
    hash          text
);
CREATE INDEX audit_log_at ON audit_log (at);

CREATE FUNCTION vigie_audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the register is append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION vigie_audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION vigie_audit_log_append_only();
