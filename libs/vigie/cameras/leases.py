"""A lease: this process's right to work on one camera for one service, with its epoch.

The claim (a KV key with a TTL, `vigie.plumbing.bus.claims`) gives mutual exclusion; the epoch, taken from
PostgreSQL when the claim is won, is strictly increasing per (service, camera) across every owner
ever, and survives a loss of the bus's state. Frames carry it (``Vigie-Owner-Epoch``) so that
consumers drop a stale owner's frames, and the recorder checks it in the transaction that records
a segment (``check_epoch``): an owner frozen past its lease that wakes up cannot store a thing.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import asyncpg

from vigie.plumbing.aio import first_of
from vigie.plumbing.bus.claims import Claim, Claims

TAKE_SQL = """
INSERT INTO camera_owners (service, camera_id, owner, epoch) VALUES ($1, $2, $3, 1)
ON CONFLICT (service, camera_id) DO UPDATE SET epoch = camera_owners.epoch + 1,
    owner = EXCLUDED.owner, since = now()
RETURNING epoch
"""
CURRENT_SQL = "SELECT epoch FROM camera_owners WHERE service = $1 AND camera_id = $2 FOR SHARE"


class Fenced(Exception):
    """A newer owner has the camera: whatever this one was about to write is refused."""


async def take_epoch(pool: asyncpg.Pool, service: str, camera_id: int, owner: str) -> int:
    return int(await pool.fetchval(TAKE_SQL, service, camera_id, owner))


async def check_epoch(conn: asyncpg.Connection, service: str, camera_id: int, epoch: int) -> None:
    """Inside the writer's transaction: the row stays locked (FOR SHARE) until it commits, so a
    new owner's ``take_epoch`` waits for it, and a stale writer is refused."""
    current = await conn.fetchval(CURRENT_SQL, service, camera_id)
    if current != epoch:
        raise Fenced(f"{service} of camera {camera_id}: epoch {epoch}, owner now at {current}")


@dataclass
class Lease:
    service: str
    camera_id: int
    commune: str
    camera: str
    epoch: int
    claim: Claim
    claims: Claims = field(repr=False)
    lost: asyncio.Event = field(default_factory=asyncio.Event)
    # Asked to give the camera up at its next clean point (masking: before a RAW keyframe).
    handover: asyncio.Event = field(default_factory=asyncio.Event)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)

    async def still_held(self) -> bool:
        """Renew when due; call before each piece of work, so that a process frozen past the TTL
        (SIGSTOP, a stalled VM) notices it lost the camera before doing anything more."""
        if self.lost.is_set():
            return False
        if time.monotonic() - self.claim.renewed_at < self.claims.renew_every_s:
            return True  # not due: no lock, no I/O (ingest asks before every frame)
        async with self._lock:  # the runtime and the camera's task both renew: one at a time
            if self.lost.is_set():
                return False
            if not await self.claims.still_held(self.claim):
                self.lost.set()
        return not self.lost.is_set()

    @contextlib.asynccontextmanager
    async def until_lost(self, stop: asyncio.Event, *,
                         with_handover: bool = True) -> AsyncIterator[asyncio.Event]:
        """An event set when ``stop`` is, when the lease is lost, or (``with_handover``) when a
        hand-over is asked: for a task with no cleaner point to give the camera up at."""
        ended = asyncio.Event()
        events = [stop, self.lost, *([self.handover] if with_handover else [])]

        async def relay() -> None:
            await first_of(*events)
            ended.set()

        task = asyncio.create_task(relay())
        try:
            yield ended
        finally:
            task.cancel()
