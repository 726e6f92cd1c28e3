-- Issue 24 (R25): what the public register of a commune's cameras names besides the cameras —
-- the controller (the mayor, for the commune) and where a filmed person exercises their rights.
-- Set when the commune is created (`vigie commune create`, POST /api/communes); NULL for communes
-- created before, until an administrator fills them in.
ALTER TABLE communes
    ADD COLUMN controller     text CHECK (length(btrim(controller)) BETWEEN 1 AND 200),
    ADD COLUMN rights_contact text CHECK (length(btrim(rights_contact)) BETWEEN 1 AND 500),
    ADD COLUMN created_by     text;
