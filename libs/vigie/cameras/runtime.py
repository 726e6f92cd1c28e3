"""The per-camera runtime of ingest, masking and recorder: one task per camera this process owns.

The service says which cameras exist (``reconcile``); the runtime owns its share of them and keeps
their tasks running:

- it **owns** a camera before starting it (a claim, then an epoch: `vigie.cameras.leases`), and
  takes at most ceil(C / N) of them, N being the live claimants of the service (`replicas`), so
  that any number of replicas share the cameras and a new one takes its share;
- it renews its claims every tick; a claim lost (frozen past its TTL, partitioned) stops that
  camera's task at once, without releasing what is now someone else's;
- a claim whose holder is known dead (its process gone: `replicas`) is taken over at the next tick
  instead of after the claim's TTL;
- a task that crashes is started again (same lease) after a doubling delay;
- a stop is bounded: the task is asked to stop, then cancelled; a graceful stop or a rebalance
  first asks for a hand-over at the task's next clean point, then releases the claim so that
  another replica takes the camera within a tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

import asyncpg
from nats.js import JetStreamContext
from prometheus_client import Counter, Gauge

from vigie.cameras.leases import Lease, take_epoch
from vigie.cameras.replicas import Census, Replicas
from vigie.plumbing.aio import first_of, sleep_or_stop
from vigie.plumbing.bus.claims import BIND_RETRY, Claim, Claims, replica_of
from vigie.plumbing.bus.subjects import BusNames
from vigie.plumbing.db.pool import TRANSIENT_DB_ERRORS
from vigie.plumbing.log import get_logger

log = get_logger(__name__)
# Masking's workers run a runtime each: gauges summed over the live processes of a host.
# A camera loop that has not gone round for this long is stuck (it ticks every second, a claim
# lives ~6 s): the process is restarted rather than left holding cameras it no longer works on.
STUCK_AFTER_S = 30.0
MOVES = Counter("vigie_ownership_moves_total",
                "Cameras taken (acquired; taken_from_dead: a killed replica's, before its claim "
                "expired), lost (claim expired), handed over, or restarted after a crash",
                ["service", "move"])
OWNED = Gauge("vigie_ownership_cameras_owned", "Cameras this replica owns", ["service", "replica"],
              multiprocess_mode="livesum")
WANTED = Gauge("vigie_ownership_cameras_wanted", "Cameras the service should run, all replicas",
               ["service"], multiprocess_mode="livemax")

C = TypeVar("C")  # what the service knows of a camera (its row)
DB_ERRORS: tuple[type[BaseException], ...] = (*TRANSIENT_DB_ERRORS, asyncpg.PostgresError)


class CameraWork(Protocol):
    """What runs for one owned camera until ``stop`` is set (or its lease is lost)."""

    async def run(self, lease: Lease, stop: asyncio.Event) -> None: ...


W = TypeVar("W", bound=CameraWork)


@dataclass(frozen=True)
class Wanted(Generic[C]):
    commune: str
    camera: str
    config: C
    # A change of this starts the task again (an RTSP address, say); other changes are handed over
    # to the running task by ``on_update``.
    restart_key: object = None


@dataclass
class Running(Generic[C, W]):
    wanted: Wanted[C]
    lease: Lease
    worker: W
    stop: asyncio.Event
    task: asyncio.Task[None]
    crashes: int = 0
    restart_at: float = 0.0


@dataclass
class RuntimeSettings:
    tick_s: float = 1.0
    stop_timeout_s: float = 10.0
    handover_timeout_s: float = 3.0  # how long a task may take to reach a clean point
    restart_max_s: float = 30.0


@dataclass
class CameraRuntime(Generic[C, W]):
    service: str
    claims: Claims
    replicas: Replicas
    pool: asyncpg.Pool
    make: Callable[[int, Wanted[C]], W]
    on_update: Callable[[W, C], None] | None = None
    settings: RuntimeSettings = field(default_factory=RuntimeSettings)
    running: dict[int, Running[C, W]] = field(default_factory=dict)
    _wanted: dict[int, Wanted[C]] = field(default_factory=dict)
    _known: bool = False  # the camera list was read at least once
    _leaving: set[int] = field(default_factory=set)  # being stopped in the background
    _stopping: set[asyncio.Task[None]] = field(default_factory=set)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _last_heartbeat: float = 0.0
    _census: Census = field(default_factory=lambda: Census(live=1, gone=frozenset()))
    # When the loop last went round (monotonic): a tick stuck on a call that never returns stops
    # renewing claims and balancing; the service's /healthz watches it (vigie.service).
    last_tick: float = field(default_factory=time.monotonic)

    @classmethod
    async def bound(cls, js: JetStreamContext, names: BusNames, pool: asyncpg.Pool, *,
                    service: str, replica: str, make: Callable[[int, Wanted[C]], W],
                    stop: asyncio.Event, on_update: Callable[[W, C], None] | None = None,
                    settings: RuntimeSettings | None = None) -> CameraRuntime[C, W] | None:
        """A service's runtime, bound to the claims bucket (None when stopped meanwhile)."""
        claims = await bind_claims(js, names, service=service, owner=replica, stop=stop)
        if claims is None:
            return None
        return cls(service=service, claims=claims, pool=pool, make=make, on_update=on_update,
                   replicas=Replicas(pool, service=service, name=replica, ttl_s=claims.ttl_s,
                                     holder=claims.owner),
                   settings=settings or RuntimeSettings())

    @property
    def owner(self) -> str:
        return self.replicas.name

    # --- what the service calls ---------------------------------------------------------------

    async def reconcile(self, wanted: Mapping[int, Wanted[C]]) -> None:
        """The cameras that exist now. Removed ones stop at once; the rest waits for the tick."""
        self._wanted, self._known = dict(wanted), True
        for cid in [c for c in self.running if c not in self._wanted]:
            log.info("camera_removed", service=self.service, commune=self.running[cid].wanted.commune,
                     camera=self.running[cid].wanted.camera)
            await self._stop(cid, handover=False)
        for cid, want in self._wanted.items():
            running = self.running.get(cid)
            if running is None or running.wanted == want:
                continue
            if running.wanted.restart_key != want.restart_key:
                log.info("camera_reconfigured", service=self.service, commune=want.commune,
                         camera=want.camera)
                running.wanted = want
                await self._restart(running)
            else:
                running.wanted = want
                if self.on_update is not None:
                    self.on_update(running.worker, want.config)
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Own, renew, restart and balance until ``stop``; then hand everything over."""
        try:
            while not stop.is_set():
                try:
                    await self.step()
                except DB_ERRORS as exc:
                    log.warning("ownership_db_unavailable", service=self.service,
                                error=type(exc).__name__)
                self.last_tick = time.monotonic()
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(first_of(stop, self._wake), self.settings.tick_s)
        finally:
            await self.stop_all()

    async def stop_all(self) -> None:
        await asyncio.gather(*self._stopping,
                             *(self._stop(cid, handover=True) for cid in list(self.running)
                               if cid not in self._leaving))
        with contextlib.suppress(*DB_ERRORS):
            await self.replicas.leave()

    # --- one tick -------------------------------------------------------------------------------

    async def step(self) -> None:
        now = time.monotonic()
        if now - self._last_heartbeat >= self.claims.renew_every_s:
            await self.replicas.heartbeat()
            self._last_heartbeat = now
        # Every tick: a replica that died is seen within a tick, its cameras taken at once.
        self._census = await self.replicas.census()
        for cid, running in list(self.running.items()):
            if cid in self._leaving:
                continue
            if not await running.lease.still_held():
                log.warning("camera_claim_lost", service=self.service, owner=self.owner,
                            commune=running.wanted.commune, camera=running.wanted.camera,
                            epoch=running.lease.epoch)
                # In the background: a task slow to end must not hold up the renewals of the
                # other cameras' claims.
                MOVES.labels(self.service, "lost").inc()
                self._stop_later(cid, handover=False, release=False)
            elif running.task.done():
                self._crashed(running, now)
        if self._known:
            await self._balance()
            WANTED.labels(self.service).set(len(self._wanted))
        OWNED.labels(self.service, self.owner).set(len(self.running) - len(self._leaving))

    def _crashed(self, running: Running[C, W], now: float) -> None:
        if running.restart_at == 0.0:
            task = running.task
            exc = None if task.cancelled() else task.exception()
            delay = min(self.settings.restart_max_s, 0.5 * 2**running.crashes)
            log.error("camera_task_ended", service=self.service, commune=running.wanted.commune,
                      camera=running.wanted.camera, restart_in_s=delay,
                      exc_info=exc if exc else None)
            running.restart_at = now + delay
        elif now >= running.restart_at:
            MOVES.labels(self.service, "restarted").inc()
            running.crashes += 1
            running.restart_at = 0.0
            self._start(running.lease, running.wanted, crashes=running.crashes)

    async def _balance(self) -> None:
        wanted = self._wanted
        share = math.ceil(len(wanted) / self._census.live) if wanted else 0
        held = [c for c in self.running if c not in self._leaving]
        if len(held) > share:
            # Over my share (a replica joined): give one up per tick, at a clean point.
            cid = max(held, key=lambda c: self._order(c))
            log.info("camera_handed_over", service=self.service, owner=self.owner,
                     commune=self.running[cid].wanted.commune,
                     camera=self.running[cid].wanted.camera, share=share, live=self._census.live)
            MOVES.labels(self.service, "handed_over").inc()
            self._stop_later(cid, handover=True)
            return
        for cid in sorted((c for c in wanted if c not in self.running), key=self._order):
            if len(held) >= share:
                break
            if await self._acquire(cid, wanted[cid]):
                held.append(cid)

    def _order(self, camera_id: int) -> str:
        """A per-replica order of the cameras: replicas race for different cameras first."""
        return hashlib.blake2s(f"{self.owner}/{camera_id}".encode(), digest_size=8).hexdigest()

    async def _acquire(self, cid: int, want: Wanted[C]) -> bool:
        claim = await self.claims.acquire(want.commune, want.camera)
        if claim is None:
            claim = await self._take_from_the_dead(want)
        if claim is None:
            return False
        try:
            epoch = await take_epoch(self.pool, self.service, cid, self.owner)
        except DB_ERRORS as exc:
            log.warning("camera_epoch_unavailable", service=self.service, commune=want.commune,
                        camera=want.camera, error=type(exc).__name__)
            await self.claims.release(claim)
            return False
        lease = Lease(self.service, cid, want.commune, want.camera, epoch, claim, self.claims)
        log.info("camera_owned", service=self.service, owner=self.owner, commune=want.commune,
                 camera=want.camera, epoch=epoch)
        MOVES.labels(self.service, "acquired").inc()
        self._start(lease, want)
        return True

    async def _take_from_the_dead(self, want: Wanted[C]) -> Claim | None:
        """The claim of a holder whose process is gone — known from its lock in PostgreSQL, or
        being this replica's previous life (same name, restarted) — without waiting its TTL."""
        held = await self.claims.holder(want.commune, want.camera)
        if held is None:
            return None
        holder, revision = held
        previous_life = replica_of(holder) == self.owner and holder != self.claims.owner
        if holder not in self._census.gone and not previous_life:
            return None
        claim = await self.claims.take_over(want.commune, want.camera, revision)
        if claim is not None:
            log.warning("camera_taken_from_dead_holder", service=self.service, owner=self.owner,
                        commune=want.commune, camera=want.camera, dead=holder)
            MOVES.labels(self.service, "taken_from_dead").inc()
        return claim

    def _start(self, lease: Lease, want: Wanted[C], *, crashes: int = 0) -> None:
        work = self.make(lease.camera_id, want)
        stop = asyncio.Event()
        task = asyncio.create_task(work.run(lease, stop),
                                   name=f"{self.service}-{want.commune}-{want.camera}")
        self.running[lease.camera_id] = Running(want, lease, work, stop, task, crashes)

    async def _restart(self, running: Running[C, W]) -> None:
        running.stop.set()
        await self._bounded_wait(running)
        self._start(running.lease, running.wanted, crashes=running.crashes)

    def _stop_later(self, cid: int, *, handover: bool, release: bool = True) -> None:
        self._leaving.add(cid)
        task = asyncio.get_running_loop().create_task(
            self._stop(cid, handover=handover, release=release))
        self._stopping.add(task)
        task.add_done_callback(self._stopping.discard)

    async def _stop(self, cid: int, *, handover: bool, release: bool = True) -> None:
        running = self.running.get(cid)
        if running is None:
            return
        try:
            if handover and not running.task.done():
                running.lease.handover.set()
                await asyncio.wait({running.task}, timeout=self.settings.handover_timeout_s)
            running.stop.set()
            await self._bounded_wait(running)
            if release and not running.lease.lost.is_set():
                await self.claims.release(running.lease.claim)
        finally:
            if self.running.get(cid) is running:
                del self.running[cid]
            self._leaving.discard(cid)

    async def _bounded_wait(self, running: Running[C, W]) -> None:
        task = running.task
        done, _ = await asyncio.wait({task}, timeout=self.settings.stop_timeout_s)
        if not done:
            log.warning("camera_task_stop_timeout", service=self.service,
                        commune=running.wanted.commune, camera=running.wanted.camera)
            task.cancel()
            await asyncio.wait({task})
        if not task.cancelled() and task.exception() is not None and running.restart_at == 0.0:
            log.error("camera_task_failed", service=self.service, commune=running.wanted.commune,
                      camera=running.wanted.camera, exc_info=task.exception())


async def bind_claims(js: JetStreamContext, names: BusNames, *, service: str, owner: str,
                      stop: asyncio.Event) -> Claims | None:
    """Bind to the claims bucket, waiting while `vigie init` has not made it or NATS is away."""
    while not stop.is_set():
        try:
            return await Claims.bind(js, names, service=service, owner=owner)
        except BIND_RETRY as exc:
            log.warning("claims_unavailable", service=service, error=type(exc).__name__)
            await sleep_or_stop(stop, 1)
    return None
