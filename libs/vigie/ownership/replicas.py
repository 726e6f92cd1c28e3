"""The replicas of a service that are alive now, from their heartbeats in PostgreSQL.

Each claimant (an ingest or recorder replica, a masking worker) says it is alive every few seconds;
the others count the live ones to know their share of the cameras, ceil(C / N). A replica that
stops gracefully removes its row, so that its share is taken over at once; one that dies is no
longer counted once its heartbeat is older than the claims' TTL.
"""

from __future__ import annotations

import os
import socket

import asyncpg

HEARTBEAT_SQL = """
INSERT INTO replicas (service, name, host, pid) VALUES ($1, $2, $3, $4)
ON CONFLICT (service, name) DO UPDATE SET heartbeat_at = now(), host = EXCLUDED.host,
    pid = EXCLUDED.pid
"""
LIVE_SQL = """
SELECT count(*) FROM replicas
WHERE service = $1 AND heartbeat_at > now() - make_interval(secs => $2)
"""


def default_name(service: str) -> str:
    """Unique per process: the host (a Kubernetes pod's name) and the pid."""
    return f"{service}@{socket.gethostname()}:{os.getpid()}"


class Replicas:
    def __init__(self, pool: asyncpg.Pool, *, service: str, name: str, ttl_s: float) -> None:
        self._pool, self.service, self.name, self.ttl_s = pool, service, name, ttl_s

    async def heartbeat(self) -> None:
        await self._pool.execute(HEARTBEAT_SQL, self.service, self.name, socket.gethostname(),
                                 os.getpid())

    async def live(self) -> int:
        """How many claimants of the service are alive, this one included."""
        return max(1, int(await self._pool.fetchval(LIVE_SQL, self.service, self.ttl_s)))

    async def leave(self) -> None:
        await self._pool.execute("DELETE FROM replicas WHERE service = $1 AND name = $2",
                                 self.service, self.name)
