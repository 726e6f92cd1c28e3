-- Issue 21: provenance from the moment of recording. The recorder signs each camera's chain of
-- segments as it stores them: every link names the segment (camera, times, file and picture-data
-- SHA-256, frames, mask version) and the previous link, and is signed with the recording key
-- (Ed25519). Kept apart from `segments`, which retention empties: a package made from a hold's
-- evidence copies still finds the links of segments erased since. Append-only: metadata, no image.
CREATE TABLE segment_chain (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    camera_id       bigint NOT NULL REFERENCES cameras(id),
    seq             bigint NOT NULL CHECK (seq >= 1),
    start_time      timestamptz NOT NULL,
    end_time        timestamptz NOT NULL,
    object_key      text NOT NULL UNIQUE,
    sha256          text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    payload_sha256  text NOT NULL CHECK (payload_sha256 ~ '^[0-9a-f]{64}$'),
    frames          integer NOT NULL CHECK (frames > 0),
    mask_version    integer NOT NULL,
    prev_link       text NOT NULL CHECK (prev_link ~ '^[0-9a-f]{64}$'),
    link            text NOT NULL CHECK (link ~ '^[0-9a-f]{64}$'),
    signature       text,               -- base64 Ed25519; NULL when the recorder had no key
    key_fingerprint text,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (camera_id, seq)
);

-- The public halves of the deployment's signing keys, as the services that hold the private
-- halves announce them at start: the gateway publishes them, the register journals each new one.
CREATE TABLE signing_keys (
    fingerprint  text PRIMARY KEY,
    purpose      text NOT NULL CHECK (purpose IN ('export', 'recording')),
    public_pem   text NOT NULL,
    first_seen   timestamptz NOT NULL DEFAULT now(),
    retired_at   timestamptz               -- another key of the same purpose took over
);

-- Where the camera is, for the ONVIF export's location box (and the public register to come).
ALTER TABLE cameras
    ADD COLUMN latitude  double precision CHECK (latitude BETWEEN -90 AND 90),
    ADD COLUMN longitude double precision CHECK (longitude BETWEEN -180 AND 180),
    ADD CONSTRAINT cameras_coordinates_both CHECK ((latitude IS NULL) = (longitude IS NULL));
