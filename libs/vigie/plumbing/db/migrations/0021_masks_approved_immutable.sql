-- Issue 25 (R1, R2): an approved mask version is never changed nor deleted, by anyone — the
-- database refuses it, whatever the role. A new version supersedes it; the camera's removal alone
-- takes its versions with it.
CREATE FUNCTION vigie_masks_approved_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.approved_at IS NULL THEN
        RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
    END IF;
    IF TG_OP = 'DELETE' AND NOT EXISTS (SELECT 1 FROM cameras WHERE id = OLD.camera_id) THEN
        RETURN OLD;  -- the camera itself is being removed
    END IF;
    RAISE EXCEPTION 'mask version % of camera % is approved: it is never changed or deleted; '
        'save a new version', OLD.version, OLD.camera_id USING ERRCODE = 'check_violation';
END $$;
CREATE TRIGGER masks_approved_immutable BEFORE UPDATE OR DELETE ON masks
    FOR EACH ROW EXECUTE FUNCTION vigie_masks_approved_immutable();
