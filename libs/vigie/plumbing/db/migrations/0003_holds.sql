-- Holds (REGULATION.md R18, R21; DESIGN.md invariant 3): footage kept beyond retention only as a copy
-- in the evidence bucket, under a judicial requisition or a pending right-of-access request.

CREATE TABLE holds (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind            text NOT NULL CHECK (kind IN ('judicial_requisition', 'right_of_access')),
    -- The requisition's or the request's reference: a hold without one is refused (R18).
    reference       text NOT NULL CHECK (length(btrim(reference)) > 0),
    commune         text NOT NULL REFERENCES communes(slug),
    period_start    timestamptz NOT NULL,
    period_end      timestamptz NOT NULL,
    requested_by    text NOT NULL CHECK (length(btrim(requested_by)) > 0),
    reason          text NOT NULL CHECK (length(btrim(reason)) > 0),
    review_on       date NOT NULL,
    state           text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'released')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    released_at     timestamptz,
    released_by     text,
    release_reason  text,
    CHECK (period_end > period_start),
    CHECK ((state = 'released') = (released_at IS NOT NULL))
);
CREATE INDEX holds_active ON holds (commune) WHERE state = 'active';

CREATE TABLE hold_cameras (
    hold_id    bigint NOT NULL REFERENCES holds(id),
    camera_id  bigint NOT NULL REFERENCES cameras(id),
    PRIMARY KEY (hold_id, camera_id)
);
CREATE INDEX hold_cameras_camera ON hold_cameras (camera_id);

-- One row per segment copied into the evidence bucket; kept after the copy is erased (R16: the
-- register of what was held and when it was destroyed).
CREATE TABLE hold_items (
    hold_id        bigint NOT NULL REFERENCES holds(id),
    camera_id      bigint NOT NULL REFERENCES cameras(id),
    source_key     text NOT NULL,
    segment_start  timestamptz NOT NULL,
    segment_end    timestamptz NOT NULL,
    evidence_key   text NOT NULL UNIQUE,
    sha256         text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    size_bytes     bigint NOT NULL,
    copied_at      timestamptz NOT NULL DEFAULT now(),
    erased_at      timestamptz,
    PRIMARY KEY (hold_id, source_key)
);
CREATE INDEX hold_items_to_erase ON hold_items (hold_id) WHERE erased_at IS NULL;

-- Orphan objects (uploaded, row never committed) are looked for once per expired hour prefix: the
-- cursor says up to where a camera's prefixes have been visited.
CREATE TABLE retention_cursors (
    camera_id             bigint PRIMARY KEY REFERENCES cameras(id) ON DELETE CASCADE,
    orphans_swept_until   timestamptz NOT NULL
);

-- What the retention service found at start, for `vigie status`: does the store apply lifecycle rules?
CREATE TABLE retention_state (
    bucket              text PRIMARY KEY,
    lifecycle_backstop  boolean NOT NULL,
    rules               jsonb NOT NULL DEFAULT '{}'::jsonb,
    checked_at          timestamptz NOT NULL DEFAULT now()
);
