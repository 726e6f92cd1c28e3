-- Issue 24 (R3, R4, R5, R27, R28): the prefectoral authorisation is a record of its own — the
-- order's reference and date, its end (five years at most), the purposes it names (CSI L251-2),
-- its recipients and the retention bounds it sets — and each camera is attached to one. A camera
-- without a valid authorisation is neither recorded nor shown: masking, the fail-closed point,
-- reads camera_authorisation below and publishes nothing of it.
CREATE TABLE authorisations (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    commune            text NOT NULL REFERENCES communes(slug),
    reference          text NOT NULL CHECK (length(btrim(reference)) BETWEEN 1 AND 120),
    granted_on         date NOT NULL,
    valid_until        date NOT NULL,   -- the last day it covers (in the commune's time zone)
    purposes           text[] NOT NULL CHECK (cardinality(purposes) > 0),
    recipients         text[] NOT NULL CHECK (cardinality(recipients) > 0 AND recipients <@
                           ARRAY['municipal_police', 'national_police', 'gendarmerie',
                                 'other']::text[]),
    other_recipients   text NOT NULL DEFAULT '' CHECK (length(other_recipients) <= 500),
    retention_min_days integer NOT NULL DEFAULT 1 CHECK (retention_min_days BETWEEN 1 AND 30),
    retention_max_days integer NOT NULL CHECK (retention_max_days BETWEEN 1 AND 30),
    created_by         text NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (commune, reference),
    CHECK (valid_until > granted_on),
    CHECK (valid_until <= granted_on + interval '5 years'),   -- CSI L252-4
    CHECK (retention_min_days <= retention_max_days),
    CHECK (('other' = ANY (recipients)) = (length(btrim(other_recipients)) > 0))
);

-- A prefectoral order is not edited: a renewal or an amendment is a new record.
CREATE FUNCTION vigie_authorisation_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'an authorisation is not changed: record the new order and attach the cameras'
        USING ERRCODE = 'check_violation';
END $$;
CREATE TRIGGER authorisations_immutable BEFORE UPDATE ON authorisations
    FOR EACH ROW EXECUTE FUNCTION vigie_authorisation_immutable();

-- Expiry warnings (6, 3 and 1 months before, then expired), each announced once.
CREATE TABLE authorisation_notices (
    authorisation_id bigint NOT NULL REFERENCES authorisations(id) ON DELETE CASCADE,
    stage            text NOT NULL CHECK (stage IN ('6_months', '3_months', '1_month', 'expired')),
    at               timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (authorisation_id, stage)
);

ALTER TABLE cameras ADD COLUMN authorisation_id bigint REFERENCES authorisations(id);

-- Cameras that named an order before: one record per order, its purposes those its cameras
-- named, granted five years before it ends, the municipal police its only recipient (fail closed:
-- an administrator adds the national police where the order names them), retention up to the
-- commune's. Cameras without a reference, an end or purposes stay unattached, hence stopped.
INSERT INTO authorisations (commune, reference, granted_on, valid_until, purposes, recipients,
                            retention_max_days, created_by)
SELECT o.commune, o.authorisation_ref, (o.valid_until - interval '5 years')::date, o.valid_until,
       o.purposes, ARRAY['municipal_police'], m.retention_days, 'migration 0019'
FROM (SELECT c.commune, c.authorisation_ref, max(c.authorisation_expires) AS valid_until,
             array(SELECT DISTINCT p FROM cameras c2, unnest(c2.purposes) p
                   WHERE c2.commune = c.commune AND c2.authorisation_ref = c.authorisation_ref)
                 AS purposes
      FROM cameras c
      WHERE c.authorisation_ref IS NOT NULL AND c.authorisation_expires IS NOT NULL
      GROUP BY c.commune, c.authorisation_ref) o
JOIN communes m ON m.slug = o.commune
WHERE cardinality(o.purposes) > 0;

UPDATE cameras c SET authorisation_id = a.id
FROM authorisations a
WHERE a.commune = c.commune AND a.reference = c.authorisation_ref
  AND c.purposes <@ a.purposes
  AND coalesce(c.retention_days, (SELECT retention_days FROM communes WHERE slug = c.commune))
      <= a.retention_max_days;

ALTER TABLE cameras DROP COLUMN authorisation_ref, DROP COLUMN authorisation_expires;

-- What a camera's authorisation is today, in its commune's time zone: valid, missing, not yet in
-- force, or expired. One definition for masking (the fail-closed point), the API and the status.
CREATE VIEW camera_authorisation AS
SELECT c.id AS camera_id, a.id AS authorisation_id, a.reference, a.granted_on, a.valid_until,
       a.purposes AS authorised_purposes, a.recipients,
       CASE WHEN a.id IS NULL THEN 'missing'
            WHEN a.granted_on > t.today THEN 'not_yet'
            WHEN a.valid_until < t.today THEN 'expired'
            ELSE 'valid' END AS authorisation_state
FROM cameras c
JOIN communes m ON m.slug = c.commune
CROSS JOIN LATERAL (SELECT (now() AT TIME ZONE m.time_zone)::date AS today) t
LEFT JOIN authorisations a ON a.id = c.authorisation_id;

-- R4, R5: the retention a camera keeps lies within its authorisation's bounds, its purposes are
-- among the order's, and the order is its commune's.
CREATE FUNCTION vigie_check_camera_authorisation() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    a authorisations%ROWTYPE;
    days integer;
BEGIN
    IF NEW.authorisation_id IS NULL THEN
        RETURN NEW;
    END IF;
    SELECT * INTO a FROM authorisations WHERE id = NEW.authorisation_id;
    IF a.commune <> NEW.commune THEN
        RAISE EXCEPTION 'authorisation % is another commune''s', a.reference
            USING ERRCODE = 'check_violation';
    END IF;
    days := coalesce(NEW.retention_days,
                     (SELECT retention_days FROM communes WHERE slug = NEW.commune));
    IF days NOT BETWEEN a.retention_min_days AND a.retention_max_days THEN
        RAISE EXCEPTION 'retention of % days is outside authorisation %''s bounds (% to % days)',
            days, a.reference, a.retention_min_days, a.retention_max_days
            USING ERRCODE = 'check_violation';
    END IF;
    IF NOT NEW.purposes <@ a.purposes THEN
        RAISE EXCEPTION 'purposes % are not all named by authorisation %',
            array_to_string(NEW.purposes, ', '), a.reference USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER cameras_authorisation BEFORE INSERT OR UPDATE ON cameras
    FOR EACH ROW EXECUTE FUNCTION vigie_check_camera_authorisation();

-- A commune's retention applies to its cameras that have none of their own: it too stays within
-- their authorisations' bounds.
CREATE FUNCTION vigie_check_commune_retention_bounds() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    bad record;
BEGIN
    SELECT c.slug, a.reference, a.retention_min_days, a.retention_max_days INTO bad
    FROM cameras c JOIN authorisations a ON a.id = c.authorisation_id
    WHERE c.commune = NEW.slug AND c.retention_days IS NULL
      AND NEW.retention_days NOT BETWEEN a.retention_min_days AND a.retention_max_days
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'retention of % days is outside authorisation %''s bounds (% to % days) '
            'for camera %', NEW.retention_days, bad.reference, bad.retention_min_days,
            bad.retention_max_days, bad.slug USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER communes_retention_bounds BEFORE UPDATE OF retention_days ON communes
    FOR EACH ROW EXECUTE FUNCTION vigie_check_commune_retention_bounds();

-- R28: the hand-over profile names the authorisation that allows it and the coordination
-- convention with the national police (communes.handover_refs, free text until now).
ALTER TABLE communes
    ADD COLUMN handover_authorisation_id bigint REFERENCES authorisations(id),
    ADD COLUMN coordination_convention   text CHECK (length(btrim(coordination_convention))
                                                     BETWEEN 1 AND 200);

ALTER TABLE alarms DROP CONSTRAINT alarms_kind_check;
ALTER TABLE alarms ADD CONSTRAINT alarms_kind_check CHECK (kind IN (
    'camera_lost', 'masking_failed', 'recorder_late', 'authorisation_expiring', 'unauthorised'));
