-- Issue 23: a filmed person's right of access (R20, R21, R23; GDPR art. 15). One row per request:
-- who asked (never a copy of their identity document: only how it was checked and by whom), the
-- place and times they give, how to answer them, the deadline (a month, extended by at most two
-- more with a reason), the hold placed at once on what they asked for, the answer and its grounds.
CREATE TABLE access_requests (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    commune            text NOT NULL REFERENCES communes(slug),
    requester          text NOT NULL CHECK (length(btrim(requester)) BETWEEN 1 AND 200),
    contact            text NOT NULL CHECK (length(btrim(contact)) BETWEEN 1 AND 500),
    identity_document  text NOT NULL CHECK (identity_document IN
                       ('carte_identite', 'passeport', 'titre_sejour', 'permis_conduire', 'autre')),
    identity_checked_by text NOT NULL CHECK (length(btrim(identity_checked_by)) BETWEEN 1 AND 200),
    cameras            text[] NOT NULL CHECK (cardinality(cameras) BETWEEN 1 AND 50),
    period_start       timestamptz NOT NULL,
    period_end         timestamptz NOT NULL CHECK (period_end > period_start),
    description        text NOT NULL DEFAULT '' CHECK (length(description) <= 2000),
    received_at        timestamptz NOT NULL DEFAULT now(),
    due_at             timestamptz NOT NULL,
    extension_reason   text,
    state              text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'answered', 'closed')),
    hold_id            bigint REFERENCES holds(id),
    answer             text CHECK (answer IN ('copy', 'viewing', 'refusal', 'restriction')),
    answer_grounds     text,
    answered_at        timestamptz,
    answered_by        text,
    viewing_at         timestamptz,               -- an on-site viewing, booked
    viewing_done_at    timestamptz,               -- and recorded as done
    viewing_report     text,                      -- who watched what
    created_by         text NOT NULL,
    due_notice         text CHECK (due_notice IN ('due_soon', 'overdue')),  -- last event sent
    closed_at          timestamptz,
    closed_by          text,
    -- At most three months in all from receipt (a month, and two more with a reason).
    CHECK (due_at <= received_at + interval '3 months'),
    CHECK (answer NOT IN ('refusal', 'restriction') OR length(btrim(answer_grounds)) > 0)
);
CREATE INDEX access_requests_open ON access_requests (due_at) WHERE state <> 'closed';
