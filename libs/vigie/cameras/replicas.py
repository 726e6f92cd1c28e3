"""The replicas of a service that are alive now, from their heartbeats in PostgreSQL.

Each claimant (an ingest or recorder replica, a masking worker) says it is alive every few seconds;
the others count the live ones to know their share of the cameras, ceil(C / N). A replica that
stops gracefully removes its row, so that its share is taken over at once.

One that dies is known dead at once rather than after the claims' TTL: it holds, on a connection
kept for its life, a session advisory lock named after its claims' holder id, and PostgreSQL drops
the lock when the connection closes — which the kernel does when the process dies, however it dies.
A lock that can be taken, for a holder that heartbeat since PostgreSQL itself last started (after
a restart of PostgreSQL every lock is gone until each replica takes its own again), is a dead
holder: its claims may be taken over without waiting (`vigie.plumbing.bus.claims.Claims.take_over`). A
replica that froze or is cut from the network keeps its connection, so for it the TTL still rules;
and if a live replica only lost its connection to PostgreSQL, taking its cameras is safe all the
same: the epoch fences it (`vigie.cameras.leases`).
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

import asyncpg

from vigie.plumbing.log import get_logger

log = get_logger(__name__)
LOCK_SQL = "SELECT pg_advisory_lock(hashtextextended('vigie/claimant/' || $1, 0))"
HEARTBEAT_SQL = """
INSERT INTO replicas (service, name, host, pid, holder) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (service, name) DO UPDATE SET heartbeat_at = now(), host = EXCLUDED.host,
    pid = EXCLUDED.pid, holder = EXCLUDED.holder
"""
# The other claimants counted alive by their heartbeat, and for each whether it is gone: its lock
# free (taken for this statement's transaction only, then released) although it held it since
# PostgreSQL started.
CENSUS_SQL = """
SELECT holder,
       heartbeat_at > pg_postmaster_start_time()
       AND holder <> ''
       AND pg_try_advisory_xact_lock(hashtextextended('vigie/claimant/' || holder, 0)) AS gone
FROM replicas
WHERE service = $1 AND name <> $2 AND heartbeat_at > now() - make_interval(secs => $3)
"""


def default_name(service: str) -> str:
    """Unique per process: the host (a Kubernetes pod's name) and the pid."""
    return f"{service}@{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class Census:
    live: int  # claimants alive, this one included
    gone: frozenset[str]  # holders whose process is known dead


class Replicas:
    def __init__(self, pool: asyncpg.Pool, *, service: str, name: str, ttl_s: float,
                 holder: str = "") -> None:
        self._pool, self.service, self.name, self.ttl_s = pool, service, name, ttl_s
        self.holder = holder  # the claims' owner id; '' for a claimant that holds no lock
        self._session: asyncpg.Connection | None = None  # holds the lock while this lives

    async def heartbeat(self) -> None:
        """Say this replica is alive, on the connection that holds its lock (taken again after
        the connection was lost): a heartbeat is proof that the lock was held when it was written."""
        if not self.holder:
            await self._pool.execute(HEARTBEAT_SQL, self.service, self.name,
                                     socket.gethostname(), os.getpid(), "")
            return
        try:
            if self._session is None:
                session = await self._pool.acquire()
                self._session = session
                await session.execute(LOCK_SQL, self.holder)
            await self._session.execute(HEARTBEAT_SQL, self.service, self.name,
                                        socket.gethostname(), os.getpid(), self.holder)
        except BaseException:
            await self._drop_session()
            raise

    async def census(self) -> Census:
        rows = await self._pool.fetch(CENSUS_SQL, self.service, self.name, self.ttl_s)
        gone = frozenset(r["holder"] for r in rows if r["gone"])
        return Census(live=1 + len(rows) - len(gone), gone=gone)

    async def live(self) -> int:
        """How many claimants of the service are alive, this one included."""
        return (await self.census()).live

    async def leave(self) -> None:
        try:
            await self._pool.execute("DELETE FROM replicas WHERE service = $1 AND name = $2",
                                     self.service, self.name)
        finally:
            await self._drop_session()

    async def _drop_session(self) -> None:
        session, self._session = self._session, None
        if session is None:
            return
        if not session.is_closed():
            session.terminate()  # its lock goes with it; a reset could hang on a broken link
        await self._pool.release(session)
