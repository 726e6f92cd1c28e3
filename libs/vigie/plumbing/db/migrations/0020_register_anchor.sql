-- Issue 25 (R12): the register's checkpoints are signed with an Ed25519 key that the
-- internet-facing gateway does not hold (the retention service signs), numbered without gaps
-- (`seq`), each naming the key that signed it; they are also published on EVENTS and stored in the
-- evidence bucket, so a witness keeps a copy the database cannot take back. Checkpoints made
-- before (HMAC, `seq` NULL) stay as they are.
ALTER TABLE audit_checkpoints
    ADD COLUMN seq         bigint UNIQUE CHECK (seq >= 1),
    ADD COLUMN fingerprint text,
    ADD CONSTRAINT audit_checkpoints_signed_by CHECK ((seq IS NULL) = (fingerprint IS NULL));

ALTER TABLE signing_keys DROP CONSTRAINT signing_keys_purpose_check;
ALTER TABLE signing_keys ADD CONSTRAINT signing_keys_purpose_check
    CHECK (purpose IN ('export', 'recording', 'register'));
