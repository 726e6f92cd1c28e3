-- Issue 25: hold copies live in their own bucket under S3 object lock. When a released hold's
-- recorded copies are all erased, retention also sweeps its prefix for copies no row names (a
-- holder killed between the put and the insert), once: this column says it has been done.
ALTER TABLE holds ADD COLUMN copies_erased_at timestamptz;

-- Holds released before this migration: their copies lived in the evidence bucket, erased there.
UPDATE holds SET copies_erased_at = released_at
WHERE state = 'released'
  AND NOT EXISTS (SELECT 1 FROM hold_items i WHERE i.hold_id = holds.id AND i.erased_at IS NULL);
