-- Issue 22: vidéo-verbalisation (R31–R34). Agents are listed on their account with their
-- designation and powers (R32); offences and their stills belong to the verbalisation service.
ALTER TABLE users
    ADD COLUMN verbalisation_power text
        CHECK (verbalisation_power IN ('police_municipale', 'asvp')),
    ADD COLUMN verbalisation_designation text
        CHECK (length(btrim(verbalisation_designation)) BETWEEN 1 AND 200),
    ADD CONSTRAINT users_verbalisation_designated
        CHECK ((verbalisation_power IS NULL) = (verbalisation_designation IS NULL));

CREATE TABLE offences (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    commune           text NOT NULL REFERENCES communes(slug),
    camera_id         bigint NOT NULL REFERENCES cameras(id),
    place             text NOT NULL,            -- the camera's location when noted
    agent             text NOT NULL,            -- username
    agent_number      text NOT NULL CHECK (length(btrim(agent_number)) > 0),
    agent_power       text NOT NULL CHECK (agent_power IN ('police_municipale', 'asvp')),
    state             text NOT NULL DEFAULT 'draft'
                      CHECK (state IN ('draft', 'ready', 'handed_over', 'closed', 'cancelled')),
    offence_code      text,
    offence_label     text,
    offence_article   text,
    natinf            text,
    plate             text CHECK (length(plate) BETWEEN 2 AND 20),
    plate_country     text CHECK (plate_country ~ '^[A-Z]{2}$'),
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    ready_at          timestamptz,
    handed_over_at    timestamptz,
    handed_over_by    text,
    closed_at         timestamptz,
    cancelled_at      timestamptz,
    cancel_reason     text,
    package_key       text,                     -- the hand-over file in the evidence bucket
    package_sha256    text CHECK (package_sha256 ~ '^[0-9a-f]{64}$'),
    -- R34: never more than a month (arrêté of 14 April 2009); sooner after hand-over.
    stills_erase_at   timestamptz NOT NULL,
    stills_erased_at  timestamptz,
    CHECK (state <> 'cancelled' OR length(btrim(cancel_reason)) > 0),
    -- Complete once ready; the plate goes with the stills (R34: the PVe tool has it by then).
    CHECK (state NOT IN ('ready', 'handed_over', 'closed')
           OR (offence_code IS NOT NULL AND plate_country IS NOT NULL
               AND (plate IS NOT NULL OR stills_erased_at IS NOT NULL)))
);
CREATE INDEX offences_commune_created ON offences (commune, created_at DESC);
CREATE INDEX offences_to_erase ON offences (stills_erase_at) WHERE stills_erased_at IS NULL;

CREATE TABLE offence_stills (
    offence_id    bigint NOT NULL REFERENCES offences(id),
    n             smallint NOT NULL CHECK (n BETWEEN 1 AND 3),
    capture_time  timestamptz NOT NULL,
    object_key    text NOT NULL UNIQUE,
    sha256        text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    width         integer NOT NULL CHECK (width > 0),
    height        integer NOT NULL CHECK (height > 0),
    size_bytes    integer NOT NULL CHECK (size_bytes > 0),
    mask_version  integer NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    erased_at     timestamptz,
    PRIMARY KEY (offence_id, n)
);
