-- R26: a sign taken down (damaged, moved, stolen) no longer informs anyone: recorded with the day
-- it came down, who recorded it and why; the cameras it covered are flagged again unless another
-- complete sign covers them. The row stays (what was posted, and when, is part of the file).
ALTER TABLE signs
    ADD COLUMN removed_on date,
    ADD COLUMN removed_by text,
    ADD COLUMN removal_reason text CHECK (length(btrim(removal_reason)) BETWEEN 1 AND 2000),
    ADD CONSTRAINT signs_removal_whole
        CHECK ((removed_on IS NULL) = (removed_by IS NULL)
               AND (removed_on IS NULL) = (removal_reason IS NULL)),
    ADD CONSTRAINT signs_removed_after_installed
        CHECK (removed_on IS NULL OR removed_on >= installed_on);
