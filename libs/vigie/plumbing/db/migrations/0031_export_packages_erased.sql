-- R6, R7 (issue 40): a requisition's package in the exports bucket is a copy handed over, kept a
-- month (docs/exports.md). The retention service erases it itself and journals it — the store's
-- lifecycle rule stays a backstop, which erased it unseen and not at all on a store refusing rules.
ALTER TABLE exports ADD COLUMN erased_at timestamptz;
CREATE INDEX exports_to_erase ON exports (finished_at) WHERE state = 'ready' AND erased_at IS NULL;
