"""The per-camera runtime shared by ingest, masking and recorder (issue 19), against real
nats-server (the claims bucket) and PostgreSQL (epochs, replicas): balanced ownership, a replica
that joins takes its share, one stopped gracefully hands over within 3 s, one that dies within its
claim's TTL (see test_replicas), a crashed camera task is started again, and a stale epoch is fenced.
A replica killed (its process gone) has its cameras taken within a second, not after the TTL;
one frozen keeps them until the TTL."""

from __future__ import annotations

import asyncio
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from nats.aio.client import Client as NATS
from vigie.cameras.leases import Fenced, Lease, check_epoch, take_epoch
from vigie.cameras.replicas import Replicas
from vigie.cameras.runtime import CameraRuntime, RuntimeSettings, Wanted
from vigie.plumbing.bus.claims import Claims
from vigie.plumbing.bus.connection import jetstream
from vigie.plumbing.bus.subjects import BusNames
from vigie.plumbing.http import add_health_routes
from vigie.plumbing.settings import CommonSettings
from vigie.service import Runtime

from tests.conftest import settings_env
from tests.harness import eventually

pytestmark = pytest.mark.integration
CAMERAS = 7


@dataclass
class Worker:
    """Stands for a camera's work: counts its runs, crashes when told to."""

    camera_id: int
    runs: list[int] = field(default_factory=list)  # the epochs it ran under
    crash: bool = False

    async def run(self, lease: Lease, stop: asyncio.Event) -> None:
        self.runs.append(lease.epoch)
        if self.crash:
            self.crash = False
            raise RuntimeError("camera task crashed")
        async with lease.until_lost(stop) as ended:
            await ended.wait()


@dataclass
class Replica:
    runtime: CameraRuntime[None, Worker]
    stop: asyncio.Event
    task: asyncio.Task[None]

    def owned(self) -> set[int]:
        return set(self.runtime.running)


async def _commune(db: asyncpg.Pool) -> None:
    await db.execute("INSERT INTO communes (slug, name, retention_days) VALUES "
                     "('palaiseau', 'Palaiseau', 15) ON CONFLICT DO NOTHING")


async def _cameras(db: asyncpg.Pool) -> dict[int, Wanted[None]]:
    await _commune(db)
    wanted = {}
    for i in range(CAMERAS):
        cid = await db.fetchval(
            "INSERT INTO cameras (commune, slug, name) VALUES ('palaiseau', $1, $1) RETURNING id",
            f"cam-{i}")
        wanted[cid] = Wanted("palaiseau", f"cam-{i}", None)
    return wanted


async def _replica(name: str, nc: NATS, names: BusNames, db: asyncpg.Pool,
                   wanted: dict[int, Wanted[None]], workers: dict[int, Worker]) -> Replica:
    claims = await Claims.bind(jetstream(nc), names, service="recorder", owner=name)

    def make(camera_id: int, _want: Wanted[None]) -> Worker:
        return workers.setdefault(camera_id, Worker(camera_id))

    runtime: CameraRuntime[None, Worker] = CameraRuntime(
        service="recorder", claims=claims, pool=db, make=make,
        replicas=Replicas(db, service="recorder", name=name, ttl_s=claims.ttl_s,
                          holder=claims.owner),
        settings=RuntimeSettings(tick_s=0.3, handover_timeout_s=1))
    await runtime.reconcile(wanted)
    stop = asyncio.Event()
    return Replica(runtime, stop, asyncio.create_task(runtime.run(stop)))


def _all_owned_once(replicas: list[Replica]) -> bool:
    owned = [c for r in replicas for c in r.owned()]
    return len(owned) == len(set(owned)) == CAMERAS


async def test_replicas_share_the_cameras_a_newcomer_takes_its_share_and_a_stopped_one_hands_over(
    probe_nc: NATS, streams: BusNames, db: asyncpg.Pool,
) -> None:
    wanted = await _cameras(db)
    workers: dict[int, Worker] = {}
    reps = [await _replica(f"recorder-{k}", probe_nc, streams, db, wanted, workers)
            for k in (1, 2, 3)]
    try:
        await eventually(lambda: _all_owned_once(reps), timeout_s=15,
                         message="cameras not all owned exactly once")
        await eventually(lambda: max(len(r.owned()) for r in reps) <= math.ceil(CAMERAS / 3),
                         timeout_s=15, message=f"unbalanced: {[len(r.owned()) for r in reps]}")

        # A fourth replica joins: it takes its share, and nothing is owned twice meanwhile.
        reps.append(await _replica("recorder-4", probe_nc, streams, db, wanted, workers))

        def balanced_over_four() -> bool:
            owned = [c for r in reps for c in r.owned()]
            assert len(owned) == len(set(owned)), "a camera owned twice"
            return len(owned) == CAMERAS and \
                max(len(r.owned()) for r in reps) <= math.ceil(CAMERAS / 4)

        await eventually(balanced_over_four, timeout_s=20, message="the newcomer got no share")
        assert reps[3].owned()

        # One stops gracefully (SIGTERM, a rolling update): its cameras run elsewhere within 3 s.
        leaving = reps.pop(0)
        handed = leaving.owned()
        t0 = time.monotonic()
        leaving.stop.set()
        await leaving.task
        await eventually(lambda: _all_owned_once(reps), timeout_s=5,
                         message="cameras of the stopped replica not taken over")
        assert time.monotonic() - t0 < 3, "graceful hand-over slower than 3 s"
        for cid in handed:
            assert workers[cid].runs[-1] > workers[cid].runs[0], "not a new epoch"
        epochs = dict(await db.fetch("SELECT camera_id, epoch FROM camera_owners "
                                     "WHERE service = 'recorder'"))
        assert all(epochs[c] == workers[c].runs[-1] for c in wanted)
    finally:
        for r in reps:
            r.stop.set()
        await asyncio.gather(*(r.task for r in reps))
    assert not await db.fetchval("SELECT count(*) FROM replicas"), "replicas left their rows"


async def test_a_crashed_camera_task_runs_again_under_the_same_lease(
    probe_nc: NATS, streams: BusNames, db: asyncpg.Pool,
) -> None:
    """(A replica killed or frozen is in tests/e2e/test_replicas.py and
    tests/recorder/test_recorder.py: it takes processes.)"""
    wanted = await _cameras(db)
    workers: dict[int, Worker] = {}
    a = await _replica("recorder-a", probe_nc, streams, db, wanted, workers)
    try:
        await eventually(lambda: _all_owned_once([a]), timeout_s=15, message="not all owned")
        crashed = next(iter(a.owned()))
        workers[crashed].crash = True
        a.runtime.running[crashed].stop.set()  # this run ends; the next crashes; then it runs on
        await eventually(lambda: len(workers[crashed].runs) >= 3, timeout_s=10,
                         message="a crashed camera task was not started again")
        assert len(set(workers[crashed].runs)) == 1, "restarted under the same epoch"
        assert not a.runtime.running[crashed].task.done()
    finally:
        a.stop.set()
        await a.task


async def test_a_stale_epoch_is_fenced_in_the_database(db: asyncpg.Pool) -> None:
    await _commune(db)
    cid = await db.fetchval("INSERT INTO cameras (commune, slug, name) VALUES "
                            "('palaiseau', 'gare', 'Gare') RETURNING id")
    first = await take_epoch(db, "recorder", cid, "recorder-1")
    second = await take_epoch(db, "recorder", cid, "recorder-2")
    assert second == first + 1
    async with db.acquire() as conn, conn.transaction():
        await check_epoch(conn, "recorder", cid, second)  # the owner writes
    async with db.acquire() as conn:
        with pytest.raises(Fenced):
            async with conn.transaction():
                await check_epoch(conn, "recorder", cid, first)  # the one that lost it cannot


async def test_healthz_fails_once_the_camera_loop_stops_going_round(
    probe_nc: NATS, streams: BusNames, db: asyncpg.Pool,
) -> None:
    """Issue 36: /healthz said « healthy » while the work loop could be stuck. The camera loop
    marks each round; a service watches it (`Runtime.watch`) and /healthz answers 503, naming
    the loop, once it stops moving — here, a database call that never returns."""
    wanted = await _cameras(db)
    a = await _replica("recorder-a", probe_nc, streams, db, wanted, {})
    rt = Runtime(service="recorder", common=None, names=streams,  # type: ignore[arg-type]
                 stop=asyncio.Event())
    rt.watch("cameras", lambda: a.runtime.last_tick, stuck_after_s=2.5)
    app = FastAPI()
    add_health_routes(app, service="recorder", readiness=rt.readiness, liveness=rt.stuck)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
    release = asyncio.Event()
    try:
        await eventually(lambda: _all_owned_once([a]), timeout_s=15, message="not all owned")
        assert (await client.get("/healthz")).json() == {
            "service": "recorder", "healthy": True, "stuck": []}
        heartbeat = a.runtime.replicas.heartbeat

        async def never_returns() -> None:
            await release.wait()

        a.runtime.replicas.heartbeat = never_returns  # type: ignore[method-assign]
        a.runtime._last_heartbeat = 0.0  # noqa: SLF001 - the next round calls it
        answer = await eventually(
            lambda: _unhealthy(client), timeout_s=10, message="/healthz stayed true")
        assert answer == {"service": "recorder", "healthy": False, "stuck": ["cameras"]}
        a.runtime.replicas.heartbeat = heartbeat  # type: ignore[method-assign]
        release.set()
        await eventually(lambda: _healthy(client), timeout_s=10, message="never healthy again")
    finally:
        release.set()
        await client.aclose()
        a.stop.set()
        await a.task


async def _unhealthy(client: httpx.AsyncClient) -> dict[str, object] | None:
    answer = await client.get("/healthz")
    return answer.json() if answer.status_code == 503 else None  # type: ignore[no-any-return]


async def _healthy(client: httpx.AsyncClient) -> bool:
    return (await client.get("/healthz")).status_code == 200


# A replica in a process of its own, so that it can be killed for real: it owns every camera of
# the commune (it runs alone at first), each camera's work waiting until the process ends.
REPLICA_PROCESS = """
import asyncio, sys
from vigie.plumbing.bus.connection import connect_nats, jetstream
from vigie.plumbing.bus.subjects import BusNames
from vigie.plumbing.db.pool import pool_from_settings
from vigie.cameras.runtime import CameraRuntime, RuntimeSettings, Wanted
from vigie.plumbing.settings import CommonSettings, load_settings

class Waits:
    async def run(self, lease, stop):
        async with lease.until_lost(stop) as ended:
            await ended.wait()

async def main():
    common = load_settings(CommonSettings)
    nc = await connect_nats(common, name="replica")
    pool = await pool_from_settings(common, max_size=3)
    stop = asyncio.Event()
    runtime = await CameraRuntime.bound(
        jetstream(nc), BusNames(root=common.bus_root), pool, service="recorder",
        replica=sys.argv[1], make=lambda cid, want: Waits(), stop=stop,
        settings=RuntimeSettings(tick_s=0.3))
    rows = await pool.fetch("SELECT id, slug FROM cameras WHERE commune = 'palaiseau'")
    await runtime.reconcile({r["id"]: Wanted("palaiseau", r["slug"], None) for r in rows})
    await runtime.run(stop)

asyncio.run(main())
"""


@contextmanager
def _replica_process(name: str, common: CommonSettings) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen([sys.executable, "-c", REPLICA_PROCESS, name],
                               env={**os.environ, **settings_env(common)},
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGCONT)
            process.kill()
        process.wait(timeout=10)


async def _owned_by(db: asyncpg.Pool, prefix: str) -> int:
    """Cameras whose claim the named replica took last (camera_owners records each taking)."""
    return int(await db.fetchval("SELECT count(*) FROM camera_owners WHERE service = 'recorder' "
                                 "AND owner LIKE $1 || '%'", prefix))


async def _until_the_process_owns_all(db: asyncpg.Pool, process: subprocess.Popen[bytes]) -> None:
    async def all_owned() -> bool:
        assert process.poll() is None, process.stderr.read().decode()[-2000:]  # type: ignore[union-attr]
        return await _owned_by(db, "doomed") == CAMERAS

    await eventually(all_owned, timeout_s=20, message="the replica process owned nothing")
    await asyncio.sleep(0.5)  # a heartbeat written since it took its lock


async def _owner_of_all_killed(name: str, common: CommonSettings, db: asyncpg.Pool) -> float:
    """A replica process that came to own every camera, killed with SIGKILL: when (monotonic)."""
    with _replica_process(name, common) as process:
        await _until_the_process_owns_all(db, process)
        process.kill()
        process.wait()
        return time.monotonic()


async def test_a_killed_replicas_cameras_are_taken_within_a_second_not_after_the_claims_ttl(
    probe_nc: NATS, streams: BusNames, db: asyncpg.Pool,
    settings_for: Callable[..., CommonSettings],
) -> None:
    """Issue 35: an ingest replica killed left a 7.1 s hole in its camera's recording — the
    claim's TTL (6 s) and a tick. Its process's end is known at once (its session lock in
    PostgreSQL falls with its connection): a survivor takes every camera within a second."""
    wanted = await _cameras(db)
    common = settings_for(bus_root=streams.root)
    ttl_s = (await Claims.bind(jetstream(probe_nc), streams, service="recorder")).ttl_s
    assert ttl_s >= 6
    workers: dict[int, Worker] = {}
    killed_at = await _owner_of_all_killed("doomed-1", common, db)
    survivor = await _replica("survivor-1", probe_nc, streams, db, wanted, workers)
    try:
        await eventually(lambda: _all_owned_once([survivor]), timeout_s=ttl_s + 5,
                         message="the dead replica's cameras were never taken")
        taken_after_s = time.monotonic() - killed_at
    finally:
        survivor.stop.set()
        await survivor.task
    assert taken_after_s < 1.5, f"taken {taken_after_s:.1f} s after the kill (TTL {ttl_s} s)"


async def test_a_frozen_replica_keeps_its_cameras_until_the_ttl_and_a_restarted_one_takes_back_its_own(
    probe_nc: NATS, streams: BusNames, db: asyncpg.Pool,
    settings_for: Callable[..., CommonSettings],
) -> None:
    """A replica frozen (SIGSTOP: its connection open, its lock held) is not taken for dead:
    nobody works on its cameras until its claims expire. And a replica restarted under the same
    name (a container restarted in place) takes back its former life's cameras at once."""
    wanted = await _cameras(db)
    common = settings_for(bus_root=streams.root)
    ttl_s = (await Claims.bind(jetstream(probe_nc), streams, service="recorder")).ttl_s
    workers: dict[int, Worker] = {}
    with _replica_process("doomed-1", common) as frozen:
        await _until_the_process_owns_all(db, frozen)
        frozen.send_signal(signal.SIGSTOP)
        frozen_at = time.monotonic()
        other = await _replica("other-1", probe_nc, streams, db, wanted, workers)
        try:
            await asyncio.sleep(2)
            assert not other.owned(), "a frozen replica's cameras were taken before its TTL"
            await eventually(lambda: _all_owned_once([other]), timeout_s=ttl_s + 5,
                             message="the frozen replica's cameras were never taken")
            assert time.monotonic() - frozen_at > ttl_s / 2
        finally:
            other.stop.set()
            await other.task

    workers.clear()
    killed_at = await _owner_of_all_killed("doomed-1", common, db)
    # The same name again, as a container restarted in place (its row now names the new life).
    again = await _replica("doomed-1", probe_nc, streams, db, wanted, workers)
    try:
        await eventually(lambda: _all_owned_once([again]), timeout_s=ttl_s + 5,
                         message="the restarted replica did not take its cameras back")
        assert time.monotonic() - killed_at < 1.5
    finally:
        again.stop.set()
        await again.task
