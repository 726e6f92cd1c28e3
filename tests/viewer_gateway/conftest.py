"""The gateway in the test's event loop, on a real HTTP port, over the real servers of the harness;
accounts of every role in two communes."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, timedelta

import asyncpg
import httpx
import pyotp
import pytest_asyncio
from nats.aio.client import Client as NATS
from vigie.plumbing.aio import run_periodically
from vigie.plumbing.bus.connection import connect_nats, jetstream
from vigie.plumbing.bus.frames import publish_frame
from vigie.plumbing.bus.subjects import BusNames
from vigie.plumbing.http import HttpServer
from vigie.plumbing.settings import CommonSettings
from vigie.plumbing.storage.objects import Buckets, ObjectStore
from vigie.records.audit_register import checkpoint
from vigie.security.accounts import TotpKey, create_user
from vigie.security.signing import SigningKey
from vigie.service import Runtime

from services.verbalisation.handlers import Verbalisation
from services.verbalisation.settings import VerbalisationSettings
from services.viewer_gateway import handlers
from services.viewer_gateway.api import create_app
from services.viewer_gateway.api.deps import Gateway
from services.viewer_gateway.settings import ViewerGatewaySettings
from tests.harness import authorise
from tests.recorder.frames import video_frames

REGISTER_KEY = "test-register-key-0123456789abcdef"  # legacy HMAC checkpoints only
REGISTER_SIGNER = SigningKey.generate()  # what the retention service signs the register with
PASSWORD = "correct horse battery staple"
ALWAYS_MUNICIPAL = {d: [["00:00", "24:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat",
                                                      "sun")}
ROLES = ("operator", "supervisor", "national_police", "mask_admin", "admin", "auditor",
         "deployment_admin")


@dataclass
class GatewayUnderTest:
    url: str
    rt: Runtime
    gw: Gateway
    totp: dict[str, str] = field(default_factory=dict)
    _totp_steps: dict[str, int] = field(default_factory=dict)

    async def totp_code(self, username: str) -> str:
        """A code the gateway has not seen yet: each is accepted once (R38), and the tests sign
        the same account in several times within one 30-s step."""
        return await fresh_totp_code(self.totp[username], self._totp_steps, username)

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=10)

    async def login(self, username: str, password: str = PASSWORD) -> httpx.AsyncClient:
        client = self.client()
        body: dict[str, str] = {"username": username, "password": password, "post": "CSU poste 1"}
        if username in self.totp:
            body["totp"] = await self.totp_code(username)
        response = await client.post("/api/session", json=body)
        assert response.status_code == 200, response.text
        return client


async def fresh_totp_code(secret: str, used: dict[str, int], key: str) -> str:
    """The code of the current step, or of the next one when the current was used already (the
    server accepts one step either side for drift); waits for the clock beyond that. Never the
    step behind: a request crossing a step boundary would find it expired."""
    totp = pyotp.TOTP(secret)
    while True:
        current = int(time.time() // totp.interval)
        step = max(current, used.get(key, current - 1) + 1)
        if step <= current + 1:
            used[key] = step
            return totp.generate_otp(step)
        await asyncio.sleep(1)


async def seed_communes(db: asyncpg.Pool) -> None:
    import json

    for slug, days in (("palaiseau", 15), ("ballainvilliers", 30)):
        await db.execute("INSERT INTO communes (slug, name, retention_days, police_hours) "
                         "VALUES ($1, $1, $2, $3::jsonb)", slug, days,
                         json.dumps(ALWAYS_MUNICIPAL))
    for commune, slug, state in (("palaiseau", "gare", "active"),
                                 ("palaiseau", "chantier", "commissioning"),
                                 ("palaiseau", "ancienne", "disabled"),
                                 ("ballainvilliers", "mairie", "active")):
        await db.execute("INSERT INTO cameras (commune, slug, name, state) VALUES ($1, $2, $2, $3)",
                         commune, slug, state)
    for slug in ("palaiseau", "ballainvilliers"):
        await authorise(db, slug, reference=f"AP-{slug}")


TOTP_KEY = "5a" * 32  # the gateway's TOTP key (VIGIE_TOTP_KEY), as production has one


async def seed_users(db: asyncpg.Pool) -> dict[str, str]:
    """One account per role in Palaiseau (`<role>`), TOTP secrets sealed with TOTP_KEY as the
    gateway and `vigie user create` store them; returns the secrets in clear."""
    secrets: dict[str, str] = {}
    for role in ROLES:
        user = await create_user(db, username=role.replace("_", "-"), full_name=role,
                                 password=PASSWORD, roles=[role], communes=["palaiseau"],
                                 designated_by="le maire",
                                 designation_expires=date.today() + timedelta(days=365),
                                 agent_number="A-1" if role in ("operator", "supervisor") else None,
                                 trained_on=date.today() - timedelta(days=30),
                                 totp_key=TotpKey.from_hex(TOTP_KEY))
        if user.totp_secret:
            secrets[role.replace("_", "-")] = user.totp_secret
    return secrets


@contextlib.asynccontextmanager
async def gateway_replica(
    common: CommonSettings, nc: NATS, names: BusNames, pool: asyncpg.Pool, objects: ObjectStore,
    buckets: Buckets,
) -> AsyncIterator[tuple[str, Runtime, Gateway]]:
    """One gateway process: its HTTP server and its background work (hand-over, alarms)."""
    rt = Runtime(service="viewer-gateway", common=common, names=names, stop=asyncio.Event(),
                 nc=nc, js=jetstream(nc), pool=pool, store=objects, buckets=buckets)
    settings = ViewerGatewaySettings(http_port=0, handover_check_s=0.3, login_window_s=60,
                                     alarm_check_s=1.0)
    app = create_app(rt, settings)
    server = HttpServer(app, host="127.0.0.1", port=0)
    await server.start()
    gw: Gateway = app.state.gateway
    work = handlers.run(pool=pool, handover=gw.handover, settings=settings, stop=rt.stop,
                        alarm_round=gw.alarms.round, notifier=gw.notifier)
    task = asyncio.ensure_future(work)
    try:
        yield f"http://127.0.0.1:{server.port}", rt, gw
    finally:
        rt.stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, timeout=10)
        await gw.tiles.close()
        await server.stop()


@pytest_asyncio.fixture
async def gateway(
    settings_for: Callable[..., CommonSettings], probe_nc: NATS, streams: BusNames,
    db: asyncpg.Pool, service_db: Callable[[str], Awaitable[asyncpg.Pool]],
    store: tuple[ObjectStore, Buckets], service_store: Callable[[str], ObjectStore],
) -> AsyncIterator[GatewayUnderTest]:
    _, buckets = store
    objects = service_store("viewer-gateway")  # its own identity, as deployed
    common = settings_for("gateway", register_key=REGISTER_KEY, totp_key=TOTP_KEY)
    as_gateway = await service_db("viewer-gateway")  # its own role, as deployed
    await seed_communes(db)
    totp = await seed_users(db)
    # The register's head signed as the retention service does (its key announced, unjournaled).
    await db.execute("INSERT INTO signing_keys (fingerprint, purpose, public_pem) VALUES "
                     "($1, 'register', $2)", REGISTER_SIGNER.fingerprint(),
                     REGISTER_SIGNER.public_pem().decode())

    async def sign_head() -> None:
        await checkpoint(db, REGISTER_SIGNER, heartbeat_s=5)

    async with gateway_replica(common, probe_nc, streams, as_gateway, objects, buckets) as (
            url, rt, gw):
        signing = asyncio.ensure_future(run_periodically(rt.stop, 0.5, sign_head,
                                                         what="checkpoint"))
        try:
            yield GatewayUnderTest(url, rt, gw, totp)
        finally:
            rt.stop.set()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(signing, timeout=10)


@pytest_asyncio.fixture
async def other_gateway(
    gateway: GatewayUnderTest, settings_for: Callable[..., CommonSettings], streams: BusNames,
    service_db: Callable[[str], Awaitable[asyncpg.Pool]], store: tuple[ObjectStore, Buckets],
    service_store: Callable[[str], ObjectStore],
) -> AsyncIterator[GatewayUnderTest]:
    """A second replica of the gateway (its own process's pool and NATS connection), sharing
    the database, the bus and the store with the first, as two replicas behind a load balancer."""
    common = settings_for("gateway", register_key=REGISTER_KEY, totp_key=TOTP_KEY)
    # Its own connection, as the first replica's: the probe's (the test's subjects are its own).
    nc = await connect_nats(settings_for(), name="test-gateway-2")
    try:
        async with gateway_replica(common, nc, streams, await service_db("viewer-gateway"),
                                   service_store("viewer-gateway"), store[1]) as (url, rt, gw):
            yield GatewayUnderTest(url, rt, gw, gateway.totp, gateway._totp_steps)  # noqa: SLF001
    finally:
        await nc.close()


@pytest_asyncio.fixture
async def live_camera(probe_nc: NATS, streams: BusNames) -> AsyncIterator[None]:
    """palaiseau/gare sending masked video in real time (25 fps, a keyframe a second)."""
    js = jetstream(probe_nc)
    frames = video_frames("gare", 1500, start_ns=time.time_ns())

    async def play() -> None:
        t0 = time.monotonic()
        for i, frame in enumerate(frames):
            now = time.time_ns()
            await publish_frame(js, streams, frame.model_copy(update={"capture_time_ns": now}),
                                stage="video")
            await asyncio.sleep(max(0.0, t0 + (i + 1) * 0.04 - time.monotonic()))

    task = asyncio.create_task(play())
    await asyncio.sleep(1.5)  # some backlog: a viewer starts at the latest keyframe
    yield
    task.cancel()


EXPORT_KEY = SigningKey.generate()  # the deployment's export key, held by retention alone


@pytest_asyncio.fixture
async def as_retention(
    settings_for: Callable[..., CommonSettings], probe_nc: NATS, streams: BusNames,
    service_db: Callable[[str], Awaitable[asyncpg.Pool]], store: tuple[ObjectStore, Buckets],
    service_store: Callable[[str], ObjectStore],
) -> Runtime:
    """The retention service's runtime exactly as deployed — its own database role and
    object-store identity, the export key — for tests that take its steps one at a time (issue
    34: exports were once built in the suite under an identity production lacks)."""
    _, buckets = store
    common = settings_for("retention", export_key=EXPORT_KEY.private_pem())
    return Runtime(service="retention", common=common, names=streams, stop=asyncio.Event(),
                   nc=probe_nc, js=jetstream(probe_nc), pool=await service_db("retention"),
                   store=service_store("retention"), buckets=buckets)


@pytest_asyncio.fixture
async def retention_service(as_retention: Runtime) -> AsyncIterator[Runtime]:
    """The retention service's loops running in the test's loop (`as_retention`), polling queued
    exports, access copies and hold copies every 0.3 s: a flow asked from the screen or the API
    is built the way production builds it."""
    from services.retention import handlers as retention
    from services.retention.settings import RetentionSettings

    task = asyncio.create_task(retention.run(as_retention, RetentionSettings(
        http_port=0, export_poll_s=0.3, sweep_interval_s=3600)))
    yield as_retention
    as_retention.stop.set()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.wait_for(task, timeout=15)


async def copy_holds(retention: Runtime) -> int:
    """The retention service's hold-copy step until nothing is queued; returns how many ran."""
    from vigie.custody.holds import copy_next_hold

    ran = 0
    while await copy_next_hold(retention.require_pool(), retention.require_store(),
                               recordings=retention.buckets.recordings,
                               holds=retention.buckets.holds) is not None:
        ran += 1
    return ran


VERBALISATION_KEY = SigningKey.generate()


@pytest_asyncio.fixture
async def verbalisation_service(
    settings_for: Callable[..., CommonSettings], probe_nc: NATS, streams: BusNames,
    service_db: Callable[[str], Awaitable[asyncpg.Pool]], store: tuple[ObjectStore, Buckets],
    service_store: Callable[[str], ObjectStore],
) -> AsyncIterator[Verbalisation]:
    """The verbalisation service in the test's loop (its own database role), answering the
    gateway over the bus, sealing with VERBALISATION_KEY."""
    _, buckets = store
    rt = Runtime(service="verbalisation", common=settings_for("verbalisation"), names=streams,
                 stop=asyncio.Event(), nc=probe_nc, js=jetstream(probe_nc),
                 pool=await service_db("verbalisation"),
                 store=service_store("verbalisation"), buckets=buckets)
    service = Verbalisation(rt, VerbalisationSettings(erase_interval_s=3600), VERBALISATION_KEY)
    task = asyncio.create_task(service.run())
    yield service
    rt.stop.set()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.wait_for(task, timeout=10)
