-- Holes found by attacking the running system (issue 17).

-- A TOTP code is accepted once (R38): the last time step used, per account.
ALTER TABLE users ADD COLUMN totp_last_step bigint;

-- One municipal-police account may not also be a national-police one (R9, R27): whoever holds a
-- commune, that account would watch it. NOT VALID: rows written before are left for an
-- administrator to mend; every new write is checked.
ALTER TABLE users ADD CONSTRAINT users_national_police_alone
    CHECK (NOT ('national_police' = ANY (roles)) OR cardinality(roles) = 1) NOT VALID;

-- Throttled logins are journaled once per address and window, not once per attempt: anyone can
-- send attempts, and the register is append-only.
CREATE TABLE login_throttle_notes (
    address    text NOT NULL,
    username   text NOT NULL,           -- '' when the address itself is throttled
    noted_at   timestamptz NOT NULL,
    PRIMARY KEY (address, username)
);

-- Expired sessions and old login failures are purged by the gateway (nothing kept without use).
CREATE INDEX sessions_expiry ON sessions (expires_at);
CREATE INDEX login_failures_at ON login_failures (at);

-- What a camera films changed (its source): it is back in commissioning until a mask version
-- drawn after the change is approved (DESIGN.md "Camera life cycle").
ALTER TABLE cameras ADD COLUMN source_changed_at timestamptz;
-- The picture size a version was approved on: masking stops a camera whose picture changes.
ALTER TABLE masks ADD COLUMN picture_width integer, ADD COLUMN picture_height integer;
