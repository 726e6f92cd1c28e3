-- Issue 18: the operator's console. Bookmarks on recordings (journaled, searchable, the starting
-- point of a requisition export later) and the alarm list (raised by the gateway from the cameras'
-- health, acknowledged by a named agent, kept as history).

CREATE TABLE bookmarks (
    id          bigserial PRIMARY KEY,
    camera_id   bigint NOT NULL REFERENCES cameras(id) ON DELETE CASCADE,
    at          timestamptz NOT NULL,
    label       text NOT NULL CHECK (length(label) BETWEEN 1 AND 200),
    author      text NOT NULL,
    post        text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX bookmarks_camera_at ON bookmarks (camera_id, at);

CREATE TABLE alarms (
    id               bigserial PRIMARY KEY,
    commune          text NOT NULL REFERENCES communes(slug),
    camera_id        bigint NOT NULL REFERENCES cameras(id) ON DELETE CASCADE,
    kind             text NOT NULL CHECK (kind IN ('camera_lost', 'masking_failed',
                                                   'recorder_late', 'authorisation_expiring')),
    detail           text NOT NULL DEFAULT '',
    raised_at        timestamptz NOT NULL DEFAULT now(),
    cleared_at       timestamptz,
    acknowledged_by  text,
    acknowledged_at  timestamptz,
    CHECK ((acknowledged_by IS NULL) = (acknowledged_at IS NULL))
);
-- One open alarm per camera and cause, whatever the number of gateways raising it.
CREATE UNIQUE INDEX alarms_open ON alarms (camera_id, kind) WHERE cleared_at IS NULL;
CREATE INDEX alarms_commune_raised ON alarms (commune, raised_at DESC);
