-- Issue 18: a post's live layout (1, 2×2, 3×3, 4×4 panes and their cameras) per commune, kept on
-- the server so that any workstation of the post finds the screens as they were left.
CREATE TABLE post_views (
    commune     text NOT NULL REFERENCES communes(slug),
    post        text NOT NULL CHECK (length(post) BETWEEN 1 AND 200),
    size        integer NOT NULL CHECK (size BETWEEN 1 AND 4),
    cameras     text[] NOT NULL CHECK (cardinality(cameras) <= 16),
    updated_by  text NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (commune, post)
);
