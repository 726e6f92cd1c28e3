"""One way to run every service (STYLE.md "Shutdown").

start HTTP (alive at once) → connect to what the service needs, with bounded logged retries
(ready) → run the service's work until SIGTERM/SIGINT → stop taking work, let in-flight work finish
within the grace period → drain NATS → close the pool and clients in the reverse order of opening.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
from fastapi import FastAPI
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext

from vigie.cameras.replicas import default_name
from vigie.plumbing.bus.connection import connect_nats, jetstream
from vigie.plumbing.bus.subjects import BusNames
from vigie.plumbing.db.pool import TRANSIENT_DB_ERRORS, pool_from_settings
from vigie.plumbing.http import HttpServer, add_health_routes
from vigie.plumbing.log import get_logger, redact
from vigie.plumbing.metrics import export_certificate_expiry
from vigie.plumbing.settings import CommonSettings, ServiceSettings
from vigie.plumbing.storage.objects import TRANSIENT_STORAGE_ERRORS, Buckets, ObjectStore

log = get_logger(__name__)


@dataclass
class Runtime:
    """What a running service holds: its settings, its connections and the stop signal."""

    service: str
    common: CommonSettings
    names: BusNames
    stop: asyncio.Event
    nc: NATS | None = None
    js: JetStreamContext | None = None
    pool: asyncpg.Pool | None = None
    store: ObjectStore | None = None
    buckets: Buckets = field(default_factory=Buckets.with_prefix)
    state: dict[str, Any] = field(default_factory=dict)
    # Work loops that must keep going: what, when it last moved (monotonic), how late is stuck.
    progress: dict[str, tuple[Callable[[], float], float]] = field(default_factory=dict)

    def watch(self, what: str, last_moved: Callable[[], float], *, stuck_after_s: float) -> None:
        """/healthz fails once ``what`` has not moved for ``stuck_after_s``: a loop stuck on a
        call that never returns is restarted by Compose or Kubernetes (issue 36: /healthz was
        always true while the event loop still answered HTTP)."""
        self.progress[what] = (last_moved, stuck_after_s)

    def stuck(self) -> list[str]:
        now = time.monotonic()
        return [what for what, (last_moved, limit) in self.progress.items()
                if now - last_moved() > limit]

    @property
    def replica(self) -> str:
        """This replica's name (VIGIE_REPLICA, a pod's name), else <service>@<host>:<pid>."""
        return self.common.replica or default_name(self.service)

    def require_js(self) -> JetStreamContext:
        assert self.js is not None, "service declared no NATS need"
        return self.js

    def require_pool(self) -> asyncpg.Pool:
        assert self.pool is not None, "service declared no database need"
        return self.pool

    def require_store(self) -> ObjectStore:
        assert self.store is not None, "service declared no storage need"
        return self.store

    async def readiness(self) -> dict[str, bool]:
        checks: dict[str, bool] = {"started": bool(self.state.get("started"))}
        if self.nc is not None:
            checks["nats"] = self.nc.is_connected
        if self.pool is not None:
            try:
                async with asyncio.timeout(2):
                    await self.pool.fetchval("SELECT 1")
                checks["postgres"] = True
            except (*TRANSIENT_DB_ERRORS, asyncpg.PostgresError):
                checks["postgres"] = False
        if self.store is not None:
            try:
                async with asyncio.timeout(2):
                    await self.store.ping()
                checks["storage"] = True
            except TRANSIENT_STORAGE_ERRORS:
                checks["storage"] = False
        return checks


Work = Callable[[Runtime], Coroutine[Any, Any, None]]
ApiFactory = Callable[[Runtime], FastAPI]


def install_stop_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)


async def run_service(
    *,
    service: str,
    common: CommonSettings,
    http: ServiceSettings,
    work: Work,
    needs: frozenset[str] = frozenset({"nats", "postgres", "storage"}),
    api: ApiFactory | None = None,
) -> int:
    """Run a service until a stop signal; returns the exit code."""
    stop = asyncio.Event()
    install_stop_signals(stop)
    rt = Runtime(
        service=service,
        common=common,
        names=BusNames(common.bus_root),
        stop=stop,
        buckets=Buckets.with_prefix(common.bucket_prefix),
    )
    app = api(rt) if api else FastAPI(title=f"vigie-{service}")
    # A public service (the gateway) serves its metrics on an operations port apart: the public
    # port shows nothing of the deployment's internals (issue 17).
    ops_port: int | None = getattr(http, "ops_port", None)
    add_health_routes(app, service=service, readiness=rt.readiness, liveness=rt.stuck,
                      metrics=ops_port is None)
    cert, key = getattr(http, "tls_certificate", None), getattr(http, "tls_key", None)
    server = HttpServer(app, host=http.http_host, port=http.http_port,
                        ssl_certfile=str(cert) if cert else None, ssl_keyfile=str(key) if key else None,
                        trusted_proxies=getattr(http, "trusted_proxies", ""))
    servers = [server]
    # R30: national-police posts reach the gateway on a port of their own that demands their
    # client certificate; the gateway knows a request came that way by the port it reached.
    police_port: int | None = getattr(http, "police_port", None)
    police_ca = getattr(http, "police_client_ca", None)
    police = None
    if police_port is not None and police_ca and cert and key:
        crl = getattr(http, "police_client_crl", None)
        police = HttpServer(app, host=http.http_host, port=police_port, ssl_certfile=str(cert),
                            ssl_keyfile=str(key), client_ca=str(police_ca),
                            client_crl=str(crl) if crl else None)
        servers.append(police)
    if ops_port is not None:
        ops = FastAPI(title=f"vigie-{service} operations", docs_url=None, redoc_url=None)
        add_health_routes(ops, service=service, readiness=rt.readiness)
        servers.append(HttpServer(ops, host=getattr(http, "ops_host", "127.0.0.1"),
                                  port=ops_port))
    try:
        for each in servers:
            await each.start()
    except OSError as exc:
        log.error("http_port_unavailable", host=http.http_host, port=http.http_port,
                  ops_port=ops_port, error=str(exc))
        for each in servers:
            with contextlib.suppress(RuntimeError, OSError):
                await each.stop()
        return 2
    rt.state["ops_port"] = servers[-1].port if ops_port is not None else None
    rt.state["police_port"] = police.port if police else None
    log.info("service_starting", http_port=server.port)
    work_task: asyncio.Task[None] | None = None
    clock_task: asyncio.Task[None] | None = None
    try:
        if not await _connect(rt, needs):
            return 1 if not stop.is_set() else 0
        rt.state["started"] = True
        export_certificate_expiry({"nats_client": common.nats_tls_cert,
                                   "https": Path(cert) if cert else None})
        log.info("service_ready")
        work_task = asyncio.create_task(work(rt))
        clock_task = _watch_clock(rt)
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({work_task, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if work_task.done():
            work_task.result()  # a crash of the work loop is a crash of the service
            return 0
        log.info("service_stopping", grace_s=common.shutdown_grace_s)
        try:
            await asyncio.wait_for(asyncio.shield(work_task), timeout=common.shutdown_grace_s + 5)
        except TimeoutError:
            log.warning("service_work_cancelled_after_grace")
            work_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await work_task
        return 0
    except ConnectionError as exc:
        log.error("service_dependency_unavailable", error=redact(str(exc)))
        return 1
    finally:
        if clock_task is not None:
            clock_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await clock_task
        await _close(rt)
        for each in servers:
            await each.stop()
        log.info("service_stopped")


def _watch_clock(rt: Runtime) -> asyncio.Task[None] | None:
    """R36: every service that reaches the database checks its clock against it."""
    if rt.pool is None:
        return None
    from vigie.plumbing.clock import ClockWatch

    watch = ClockWatch(rt.service, rt.replica, rt.common.clock_max_offset_s)
    rt.state["clock"] = watch
    return asyncio.create_task(watch.run(rt.stop, rt.common.clock_check_s, rt.pool, rt.js,
                                         rt.names))


async def _connect(rt: Runtime, needs: frozenset[str]) -> bool:
    """Connect what the service needs; False if a stop signal came first."""

    async def _all() -> None:
        if "nats" in needs:
            rt.nc = await connect_nats(rt.common, name=f"vigie-{rt.service}")
            rt.js = jetstream(rt.nc)
        if "postgres" in needs:
            rt.pool = await pool_from_settings(rt.common)
        if "storage" in needs:
            rt.store = ObjectStore.from_settings(rt.common)
            await _wait_storage(rt.store, rt.common.connect_timeout_s)

    connecting = asyncio.create_task(_all())
    stopping = asyncio.create_task(rt.stop.wait())
    await asyncio.wait({connecting, stopping}, return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    if not connecting.done():
        connecting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await connecting
        return False
    connecting.result()
    return True


async def _wait_storage(store: ObjectStore, timeout_s: float) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    attempt = 0
    while True:
        attempt += 1
        try:
            await store.ping()
            return
        except TRANSIENT_STORAGE_ERRORS as exc:
            if asyncio.get_running_loop().time() >= deadline:
                raise ConnectionError(f"object storage unreachable after {attempt} attempts") from exc
            log.warning("storage_connect_retry", attempt=attempt, error=redact(str(exc)))
            await asyncio.sleep(min(0.2 * 2**attempt, 5.0))


async def _close(rt: Runtime) -> None:
    """Reverse order of opening: storage (nothing to close), pool, then NATS (drained)."""
    if rt.pool is not None:
        with contextlib.suppress(*TRANSIENT_DB_ERRORS):
            await asyncio.wait_for(rt.pool.close(), timeout=5)
    if rt.nc is not None and not rt.nc.is_closed:
        try:
            await asyncio.wait_for(rt.nc.drain(), timeout=5)
        except (TimeoutError, OSError) as exc:
            log.warning("nats_drain_incomplete", error=str(exc))
            await rt.nc.close()


def service_main(
    *,
    service: str,
    settings_cls: type[ServiceSettings],
    work: Callable[[Runtime, Any], Coroutine[Any, Any, None]],
    needs: frozenset[str] = frozenset({"nats", "postgres", "storage"}),
    api: Callable[[Runtime, Any], FastAPI] | None = None,
) -> int:
    """The body of every service's ``main()``: settings, logging, then ``run_service``."""
    from vigie.plumbing.log import configure_logging
    from vigie.plumbing.settings import load_settings

    common = load_settings(CommonSettings)
    own = load_settings(settings_cls)
    configure_logging(level=common.log_level, fmt=common.log_format, service=service)
    return asyncio.run(
        run_service(
            service=service,
            common=common,
            http=own,
            work=lambda rt: work(rt, own),
            needs=needs,
            api=(lambda rt: api(rt, own)) if api else None,
        )
    )


async def idle_until_stopped(rt: Runtime, _settings: Any = None) -> None:
    """Work of a service whose logic has not been built yet: healthy, connected, doing nothing."""
    await rt.stop.wait()
