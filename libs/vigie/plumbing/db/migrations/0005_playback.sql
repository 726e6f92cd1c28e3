-- Playback views (REGULATION.md R13): opened with a reason; the period actually served is
-- widened as the viewer seeks, and written to the register when the view ends.
CREATE TABLE playback_views (
    id              uuid PRIMARY KEY,
    user_id         bigint NOT NULL REFERENCES users(id),
    username        text NOT NULL,
    camera_id       bigint NOT NULL REFERENCES cameras(id),
    category        text NOT NULL,
    reason          text NOT NULL CHECK (length(btrim(reason)) > 0),
    reference       text,
    post            text NOT NULL DEFAULT '',
    opened_at       timestamptz NOT NULL DEFAULT now(),
    last_seen_at    timestamptz NOT NULL DEFAULT now(),
    watched_start   timestamptz,
    watched_end     timestamptz,
    closed_at       timestamptz
);
CREATE INDEX playback_views_open ON playback_views (last_seen_at) WHERE closed_at IS NULL;
