-- Masking: per-camera encoder settings and the field of view that sets the R35 floors.
ALTER TABLE cameras
    ADD COLUMN encoder jsonb NOT NULL DEFAULT '{}'::jsonb,
    -- Narrow-field cameras (identification) have higher floors: 704x576 and 12 fps (R35).
    ADD COLUMN narrow_field boolean NOT NULL DEFAULT false;
