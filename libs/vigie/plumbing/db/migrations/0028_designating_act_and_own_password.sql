-- Issue 34 (R8): an account with image rights is created, or widened, on a designating act the
-- register names; and the password an administrator typed for it is only good for the account's
-- first sign-in, which sets its own before anything else.
ALTER TABLE users ADD COLUMN designation_act text;
ALTER TABLE users ADD COLUMN password_set_by_owner boolean NOT NULL DEFAULT true;
