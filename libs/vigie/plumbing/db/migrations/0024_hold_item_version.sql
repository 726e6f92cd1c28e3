-- Issue 25: the version of each hold copy put under legal hold. Exports and access copies read
-- that version by its id, so a later version put over the same key (by a compromised identity
-- allowed to put copies) changes nothing of the evidence; NULL for copies made before it (read
-- as the current version, checked against the SHA-256 as ever).
ALTER TABLE hold_items ADD COLUMN version_id text CHECK (length(version_id) BETWEEN 1 AND 1024);
