-- Issue 34: one way for the background jobs (vigie.custody.jobs): exports, access copies and, new, the
-- evidence copies of a hold beat while they are built, are taken again when their builder falls
-- silent, at most three times, and end `failed` with a reason otherwise.
ALTER TABLE exports ADD COLUMN beat_at timestamptz;
ALTER TABLE exports ADD COLUMN attempts integer NOT NULL DEFAULT 0;
ALTER TABLE access_copies ADD COLUMN attempts integer NOT NULL DEFAULT 0;

-- A hold over SECOND_APPROVAL_CAMERA_HOURS (vigie.custody.holds) waits for a second person's approval
-- (`pending`): meanwhile it keeps nothing past retention and copies nothing.
ALTER TABLE holds DROP CONSTRAINT holds_state_check;
ALTER TABLE holds ADD CONSTRAINT holds_state_check
    CHECK (state IN ('pending', 'active', 'released'));
ALTER TABLE holds ADD COLUMN camera_hours numeric NOT NULL DEFAULT 0 CHECK (camera_hours >= 0);
ALTER TABLE holds ADD COLUMN approved_by text;
ALTER TABLE holds ADD COLUMN approved_at timestamptz;
ALTER TABLE holds ADD CONSTRAINT holds_four_eyes
    CHECK (approved_by IS NULL OR approved_by <> requested_by);

-- The copies of a hold placed over the API are made by the retention service, not inside the
-- gateway's request (which has no write right on the holds bucket any more).
CREATE TABLE hold_copies (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    hold_id      bigint NOT NULL REFERENCES holds(id),
    state        text NOT NULL DEFAULT 'queued'
                 CHECK (state IN ('queued', 'building', 'done', 'failed')),
    percent      integer NOT NULL DEFAULT 0 CHECK (percent BETWEEN 0 AND 100),
    created_at   timestamptz NOT NULL DEFAULT now(),
    started_at   timestamptz,
    beat_at      timestamptz,
    attempts     integer NOT NULL DEFAULT 0,
    finished_at  timestamptz,
    error        text,
    coverage     jsonb           -- what was copied and what was missing, per camera
);
CREATE INDEX hold_copies_of_hold ON hold_copies (hold_id);
CREATE INDEX hold_copies_queued ON hold_copies (created_at) WHERE state IN ('queued', 'building');

-- An export whose cameras × hours pass the same limit waits for a second supervisor too.
ALTER TABLE exports DROP CONSTRAINT exports_state_check;
ALTER TABLE exports ADD CONSTRAINT exports_state_check
    CHECK (state IN ('pending', 'queued', 'building', 'ready', 'failed'));
ALTER TABLE exports ADD COLUMN approved_by text;
ALTER TABLE exports ADD COLUMN approved_at timestamptz;
ALTER TABLE exports ADD CONSTRAINT exports_four_eyes
    CHECK (approved_by IS NULL OR approved_by <> created_by);

-- A redacted copy is released by someone other than the person who asked for it (four eyes), and
-- one whose kept box passes a share of the picture waits, before it is even built, for a second
-- person's approval of that box.
ALTER TABLE access_copies DROP CONSTRAINT access_copies_state_check;
ALTER TABLE access_copies ADD CONSTRAINT access_copies_state_check CHECK (state IN
    ('pending', 'queued', 'building', 'preview', 'approved', 'rejected', 'failed'));
ALTER TABLE access_copies ADD COLUMN keep_share real;
ALTER TABLE access_copies ADD COLUMN wide_approved_by text;
ALTER TABLE access_copies ADD COLUMN wide_approved_at timestamptz;
ALTER TABLE access_copies ADD CONSTRAINT access_copies_four_eyes CHECK (
    (approved_by IS NULL OR approved_by <> created_by)
    AND (wide_approved_by IS NULL OR wide_approved_by <> created_by));
