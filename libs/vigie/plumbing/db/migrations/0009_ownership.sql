-- Issue 19: replicas and camera ownership. The claim itself (who may work on a camera now) is a
-- JetStream KV key with a TTL; these rows give it a durable, strictly increasing epoch — the
-- fencing token that frames carry and that the recorder's writes check — and tell `vigie status`
-- who owns what.
CREATE TABLE replicas (
    service       text NOT NULL CHECK (service IN ('ingest', 'masking', 'recorder')),
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    host          text NOT NULL DEFAULT '',
    pid           integer NOT NULL DEFAULT 0,
    started_at    timestamptz NOT NULL DEFAULT now(),
    heartbeat_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (service, name)
);

CREATE TABLE camera_owners (
    service    text NOT NULL CHECK (service IN ('ingest', 'masking', 'recorder')),
    camera_id  bigint NOT NULL REFERENCES cameras(id) ON DELETE CASCADE,
    owner      text NOT NULL,           -- the replica's name
    epoch      bigint NOT NULL CHECK (epoch >= 1),
    since      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (service, camera_id)
);
