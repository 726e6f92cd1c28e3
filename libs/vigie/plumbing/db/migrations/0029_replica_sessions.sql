-- Issue 35: a replica killed (kill -9, an OOM kill, a crashed container) must have its cameras
-- taken within a second, not after its claims' TTL. Each claimant holds a session-level advisory
-- lock, keyed by `holder` (its claims' owner id, unique per process start), on a connection kept
-- for its life; PostgreSQL drops the lock the moment that connection closes, which the kernel does
-- when the process dies. The others read the lock's absence as a death. A replica that froze or
-- lost its network keeps its connection open: the TTL still covers it.
ALTER TABLE replicas ADD COLUMN holder text NOT NULL DEFAULT '' CHECK (length(holder) <= 240);
