-- Issue 24 (R11): the date of the account's data-protection training. Without it, no habilitation
-- to view (live, playback), export or verbalise: the policy refuses, and the refusal is journaled.
ALTER TABLE users ADD COLUMN trained_on date;
