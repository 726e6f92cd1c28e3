-- Issue 24 (R26): the signs that inform people on site — where, since when, what they say (the
-- camera pictogram, the controller, the purposes, the rights and how to exercise them, the CNIL
-- complaint; the specific vidéo-verbalisation mention) — and which cameras each one covers. A camera
-- no sign covers is flagged; a traffic camera needs a sign with the vidéo-verbalisation mention.
CREATE TABLE signs (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    commune        text NOT NULL REFERENCES communes(slug),
    place          text NOT NULL CHECK (length(btrim(place)) BETWEEN 1 AND 200),
    latitude       double precision CHECK (latitude BETWEEN -90 AND 90),
    longitude      double precision CHECK (longitude BETWEEN -180 AND 180),
    installed_on   date NOT NULL,
    pictogram      boolean NOT NULL,
    controller     boolean NOT NULL,
    purposes       boolean NOT NULL,
    rights         boolean NOT NULL,
    cnil_complaint boolean NOT NULL,
    verbalisation  boolean NOT NULL DEFAULT false,  -- « vidéo-verbalisation » mention
    created_by     text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    CHECK ((latitude IS NULL) = (longitude IS NULL))
);
CREATE TABLE sign_cameras (
    sign_id    bigint NOT NULL REFERENCES signs(id) ON DELETE CASCADE,
    camera_id  bigint NOT NULL REFERENCES cameras(id) ON DELETE CASCADE,
    PRIMARY KEY (sign_id, camera_id)
);
