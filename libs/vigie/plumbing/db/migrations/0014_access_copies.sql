-- Issue 23 (R22): the redacted copies made for a right-of-access request. The operator marks the
-- requester's region (the keep track: boxes at chosen times, seconds from period_start); the
-- retention service builds the copy in the background from the request's hold (progress in
-- percent) and seals it as a package; the operator watches the preview and approves it (or
-- rejects it) before anything can be downloaded. Copies are kept 30 days (expires_at), then the
-- retention service erases them (erased_at); a rejected or failed one at once, a preview never
-- approved when its request is closed.
CREATE TABLE access_copies (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    request_id       bigint NOT NULL REFERENCES access_requests(id),
    commune          text NOT NULL REFERENCES communes(slug),
    camera           text NOT NULL,
    period_start     timestamptz NOT NULL,
    period_end       timestamptz NOT NULL CHECK (period_end > period_start
                                                 AND period_end - period_start <= interval '30 minutes'),
    keep             jsonb NOT NULL CHECK (jsonb_typeof(keep) = 'array' AND jsonb_array_length(keep) > 0),
    assist           boolean NOT NULL DEFAULT true,
    created_by       text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    state            text NOT NULL DEFAULT 'queued' CHECK (state IN
                     ('queued', 'building', 'preview', 'approved', 'rejected', 'failed')),
    percent          integer NOT NULL DEFAULT 0 CHECK (percent BETWEEN 0 AND 100),
    started_at       timestamptz,
    beat_at          timestamptz,           -- the builder's heartbeat: a silent build is taken again
    finished_at      timestamptz,
    error            text,
    package          text,                  -- the package's name (its ZIP's root folder)
    object_key       text,                  -- the ZIP in the exports bucket
    video_key        text,                  -- the redacted MP4 alone, for the preview
    size_bytes       bigint,
    manifest_sha256  text,
    frames           integer,
    block_px         integer,
    proposed         integer,               -- detector boxes blurred inside the kept region
    approved_by      text,
    approved_at      timestamptz,
    rejected_by      text,
    rejected_reason  text,
    expires_at       timestamptz,
    erased_at        timestamptz,
    CHECK (state <> 'approved' OR (approved_by IS NOT NULL AND approved_at IS NOT NULL)),
    CHECK (state <> 'rejected' OR length(btrim(rejected_reason)) > 0)
);
CREATE INDEX access_copies_of_request ON access_copies (request_id);
CREATE INDEX access_copies_queued ON access_copies (created_at) WHERE state IN ('queued', 'building');
