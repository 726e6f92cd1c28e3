-- Issue 34 (R31): "the agent has the camera's live view open" is the gateway's knowledge, not the
-- register's. A view is a row while its WebSocket is open, its heartbeat renewed every few
-- seconds by the gateway replica serving it; a gateway that crashes stops beating, and the view
-- no longer counts within seconds (the register's rows once kept it "open" for 24 hours).
CREATE TABLE live_views (
    view_id    text PRIMARY KEY,
    username   text NOT NULL,
    camera     text NOT NULL,  -- <commune>/<slug>
    replay_s   integer NOT NULL DEFAULT 0,
    opened_at  timestamptz NOT NULL DEFAULT now(),
    beat_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX live_views_user_camera ON live_views (username, camera);
