-- Issue 21: requisition exports asked over the API and built in the background by the retention
-- service (which holds the export key; the internet-facing gateway does not). One row per commune.
CREATE TABLE exports (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    commune          text NOT NULL REFERENCES communes(slug),
    cameras          text[] NOT NULL CHECK (cardinality(cameras) BETWEEN 1 AND 200),
    period_start     timestamptz NOT NULL,
    period_end       timestamptz NOT NULL CHECK (period_end > period_start),
    reference        text NOT NULL CHECK (length(reference) BETWEEN 1 AND 200),
    officer          text NOT NULL CHECK (length(officer) BETWEEN 1 AND 200),
    recipient        text NOT NULL CHECK (length(recipient) BETWEEN 1 AND 200),
    medium           text NOT NULL CHECK (length(medium) BETWEEN 1 AND 200),
    reason           text NOT NULL CHECK (length(reason) BETWEEN 1 AND 2000),
    created_by       text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    state            text NOT NULL DEFAULT 'queued'
                     CHECK (state IN ('queued', 'building', 'ready', 'failed')),
    percent          integer NOT NULL DEFAULT 0 CHECK (percent BETWEEN 0 AND 100),
    started_at       timestamptz,
    finished_at      timestamptz,
    error            text,
    package          text UNIQUE,           -- the package's name (extraction-…)
    hold_id          bigint REFERENCES holds(id),
    object_key       text,                  -- the ZIP in the exports bucket
    size_bytes       bigint,
    manifest_sha256  text CHECK (manifest_sha256 ~ '^[0-9a-f]{64}$'),
    gaps             integer,
    delivered_to     text,
    delivered_medium text,
    delivered_at     timestamptz,
    delivered_by     text
);
CREATE INDEX exports_queued ON exports (created_at) WHERE state IN ('queued', 'building');
