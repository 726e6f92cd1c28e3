-- Issue 24 (R39; GDPR art. 33): a personal-data breach, declared when found; the CNIL is notified
-- within 72 hours of its discovery unless it is unlikely to result in a risk for people (then the
-- reason is recorded). One row per incident, every step journaled.
CREATE TABLE incidents (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    commune            text NOT NULL REFERENCES communes(slug),
    summary            text NOT NULL CHECK (length(btrim(summary)) BETWEEN 1 AND 2000),
    discovered_at      timestamptz NOT NULL,
    declared_at        timestamptz NOT NULL DEFAULT now(),
    data_concerned     text NOT NULL CHECK (length(btrim(data_concerned)) BETWEEN 1 AND 2000),
    people_concerned   text NOT NULL CHECK (length(btrim(people_concerned)) BETWEEN 1 AND 2000),
    consequences       text NOT NULL DEFAULT '' CHECK (length(consequences) <= 2000),
    measures           text NOT NULL CHECK (length(btrim(measures)) BETWEEN 1 AND 4000),
    risk               text NOT NULL CHECK (risk IN ('unlikely', 'risk', 'high_risk')),
    no_notice_reason   text,                -- why the CNIL is not notified (risk unlikely)
    due_at             timestamptz NOT NULL,  -- discovered_at + 72 h
    notified_at        timestamptz,
    notification_ref   text,
    due_notice         text CHECK (due_notice IN ('due_soon', 'overdue')),
    created_by         text NOT NULL,
    CHECK (discovered_at <= declared_at),
    CHECK (risk <> 'unlikely' OR length(btrim(no_notice_reason)) > 0),
    CHECK ((notified_at IS NULL) = (notification_ref IS NULL))
);
CREATE INDEX incidents_open ON incidents (due_at) WHERE notified_at IS NULL;
