-- R35 (issue 40): a camera below the technical norms (arrêté of 3 August 2007) was told once per
-- masking process and reached no screen. Masking checks every window of frames and keeps here what
-- it found (NULL: within the norms); the console's alarms, `vigie status` and the record of
-- processing read it.
ALTER TABLE camera_health ADD COLUMN below_norms text CHECK (length(below_norms) <= 200);
ALTER TABLE alarms DROP CONSTRAINT alarms_kind_check;
ALTER TABLE alarms ADD CONSTRAINT alarms_kind_check CHECK (kind IN (
    'camera_lost', 'masking_failed', 'recorder_late', 'authorisation_expiring', 'unauthorised',
    'below_norms'));
