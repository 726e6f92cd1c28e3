"""The real-server harness: nats-server, PostgreSQL, S3 (SeaweedFS; rclone) and RTSP cameras, started
once per test session on free loopback ports and health-polled; every test isolates itself by
unique names (a subject root and stream prefix, a Postgres schema, a bucket prefix)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import jsonschema
import nats.errors
import pytest
import pytest_asyncio
import yaml
from nats.aio.client import Client as NATS
from vigie.local import servers
from vigie.plumbing.bus.asyncapi import schemas_by_event_type
from vigie.plumbing.bus.connection import connect_nats, jetstream
from vigie.plumbing.bus.streams import StreamLimits, ensure_streams
from vigie.plumbing.bus.subjects import BusNames
from vigie.plumbing.db.migrate import migrate
from vigie.plumbing.db.roles import ensure_service_role
from vigie.plumbing.settings import CommonSettings
from vigie.plumbing.storage.objects import Buckets, ObjectStore

from tests.harness import PROBE, PROBE_USER, REPO, unique

EXTERNALS = {"ext_palaiseau": ["palaiseau"]}


@pytest.fixture(scope="session")
def work_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("servers")


@pytest.fixture(scope="session")
def nats_server(work_dir: Path) -> Iterator[servers.NatsServer]:
    server = servers.start_nats(work_dir / "nats", externals=EXTERNALS, extra_users=PROBE)
    yield server
    server.process.stop()


@pytest.fixture(scope="session")
def pg_server(work_dir: Path) -> Iterator[servers.PostgresServer]:
    server = servers.start_postgres(work_dir / "postgres")
    yield server
    server.process.stop(sig=2)


@pytest.fixture(scope="session")
def s3_server(work_dir: Path) -> Iterator[servers.SeaweedServer]:
    """SeaweedFS, as in `make run` and production, with its lifecycle worker passing every 2 s."""
    server = servers.start_seaweedfs(work_dir / "s3")
    worker = servers.start_lifecycle_worker(server, refresh_s=2)
    yield server
    worker.stop()
    server.process.stop()


@pytest.fixture(scope="session")
def rclone_server(work_dir: Path) -> Iterator[servers.S3Server]:
    """An S3 endpoint that refuses lifecycle rules (rclone), as some a commune may bring."""
    server = servers.start_rclone_s3(work_dir / "rclone")
    yield server
    server.process.stop()


@pytest.fixture
def bus_names() -> BusNames:
    return BusNames(root=unique("t"))


@pytest.fixture
def pg_schema() -> str:
    return unique("test_")


@pytest.fixture
def bucket_prefix() -> str:
    return unique("t")


@pytest.fixture
def settings_for(
    nats_server: servers.NatsServer,
    pg_server: servers.PostgresServer,
    s3_server: servers.S3Server,
    bus_names: BusNames,
    pg_schema: str,
    bucket_prefix: str,
) -> Callable[..., CommonSettings]:
    """CommonSettings of this test's isolated names, as a given NATS user (the harness's probe,
    which reads and writes every subject, by default)."""

    def _make(user: str = PROBE_USER, **overrides: Any) -> CommonSettings:
        values: dict[str, Any] = dict(
            local_mode=True,
            nats_url=nats_server.url,
            nats_user=user,
            nats_password=nats_server.passwords[user],
            bus_root=bus_names.root,
            postgres_dsn=pg_server.dsn,
            postgres_schema=pg_schema,
            s3_endpoint=s3_server.endpoint,
            s3_access_key=s3_server.access_key,
            s3_secret_key=s3_server.secret_key,
            bucket_prefix=bucket_prefix,
            connect_timeout_s=10,
            log_format="console",
        )
        values.update(overrides)
        return CommonSettings(**values)

    return _make


def settings_env(common: CommonSettings) -> dict[str, str]:
    """The same settings as environment variables, for a service run as a subprocess."""
    env = {}
    for name, value in common.model_dump().items():
        if value is None:
            continue
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        env[f"VIGIE_{name.upper()}"] = str(value).lower() if isinstance(value, bool) else str(value)
    return env


@pytest_asyncio.fixture
async def probe_nc(settings_for: Callable[..., CommonSettings]) -> AsyncIterator[NATS]:
    nc = await connect_nats(settings_for(PROBE_USER), name="test-probe")
    yield nc
    await nc.close()


@pytest_asyncio.fixture
async def streams(probe_nc: NATS, bus_names: BusNames) -> AsyncIterator[BusNames]:
    """RAW, VIDEO and EVENTS under this test's own root; deleted afterwards."""
    js = jetstream(probe_nc)
    await ensure_streams(js, bus_names, StreamLimits())
    yield bus_names
    for stream in (bus_names.raw_stream, bus_names.video_stream, bus_names.events_stream,
                   f"KV_{bus_names.claims_bucket}"):
        try:
            await js.delete_stream(stream)
        except Exception:  # noqa: BLE001 - best-effort cleanup of a test's own stream
            pass


@pytest_asyncio.fixture
async def db(pg_server: servers.PostgresServer, pg_schema: str) -> AsyncIterator[asyncpg.Pool]:
    """A migrated schema of this test's own, dropped afterwards."""
    conn = await asyncpg.connect(pg_server.dsn)
    try:
        await migrate(conn, schema=pg_schema)
    finally:
        await conn.close()
    pool = await asyncpg.create_pool(
        # Up to four claimants share it, each keeping a connection for its session lock.
        pg_server.dsn, min_size=1, max_size=10, server_settings={"search_path": pg_schema}
    )
    assert pool is not None
    yield pool
    await pool.close()
    conn = await asyncpg.connect(pg_server.dsn)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{pg_schema}" CASCADE')
    finally:
        await conn.close()


ROLE_PASSWORD = "test-role-password-0123"


@pytest_asyncio.fixture
async def service_db(
    db: asyncpg.Pool, pg_server: servers.PostgresServer, pg_schema: str,
) -> AsyncIterator[Callable[[str], Awaitable[asyncpg.Pool]]]:
    """A pool on this test's schema as a service's own database role, with exactly the grants
    production gives it (vigie.plumbing.db.roles): the suite runs the services as they run deployed."""
    pools: list[asyncpg.Pool] = []

    async def _pool(service: str) -> asyncpg.Pool:
        async with db.acquire() as conn:
            role = await ensure_service_role(conn, schema=pg_schema, service=service,
                                             password=ROLE_PASSWORD)
        dsn = pg_server.dsn.replace(f"{pg_server.user}:{pg_server.password}",
                                    f"{role}:{ROLE_PASSWORD}")
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=4,
                                         server_settings={"search_path": pg_schema})
        assert pool is not None
        pools.append(pool)
        return pool

    yield _pool
    for pool in pools:
        await pool.close()


@pytest_asyncio.fixture
async def store(
    s3_server: servers.S3Server, bucket_prefix: str
) -> AsyncIterator[tuple[ObjectStore, Buckets]]:
    store = ObjectStore(s3_server.endpoint, s3_server.access_key, s3_server.secret_key)
    buckets = Buckets.with_prefix(bucket_prefix)
    await store.ensure_buckets(buckets.all(), object_lock=buckets.locked())
    yield store, buckets
    for bucket in buckets.all():
        await store.erase_prefix(bucket, "")  # every version, legal holds lifted


@pytest.fixture
def service_store(
    s3_server: servers.SeaweedServer, store: tuple[ObjectStore, Buckets],
) -> Callable[[str], ObjectStore]:
    """The object store as a service's own identity, under the policy production gives it
    (vigie.plumbing.storage.identities), on this test's buckets."""

    def _store(service: str) -> ObjectStore:
        return ObjectStore(s3_server.endpoint, *s3_server.as_service(service))

    return _store


# --- every event published in the suite validates against docs/asyncapi.yaml ---------------------

_EVENTS_SEEN: list[tuple[str, bytes]] = []


@pytest_asyncio.fixture(scope="session", autouse=True)
async def _event_schema_check(nats_server: servers.NatsServer) -> AsyncIterator[None]:
    common = CommonSettings(
        local_mode=True, nats_url=nats_server.url, nats_user=PROBE_USER,
        nats_password=nats_server.passwords[PROBE_USER], postgres_dsn="postgresql://x@127.0.0.1/x",
        s3_endpoint="127.0.0.1:1", s3_access_key="unused", s3_secret_key="unused",
    )
    nc = await connect_nats(common, name="test-event-schema-check")

    async def _collect(msg: Any) -> None:
        _EVENTS_SEEN.append((msg.subject, msg.data))

    await nc.subscribe("*.events.>", cb=_collect)
    yield
    try:
        await nc.flush(timeout=5)
    except (nats.errors.Error, TimeoutError):
        pass  # what arrived is checked below; a late flush must not fail the session
    await nc.close()
    document = yaml.safe_load((REPO / "docs" / "asyncapi.yaml").read_text())
    schemas = schemas_by_event_type(document)
    problems = []
    for subject, data in _EVENTS_SEEN:
        kind, name = subject.split(".")[3:5]
        schema = schemas.get(f"{kind}.{name}")
        if schema is None:
            problems.append(f"{subject}: not in docs/asyncapi.yaml")
            continue
        try:
            jsonschema.validate(json.loads(data), schema)
        except jsonschema.ValidationError as exc:
            problems.append(f"{subject}: {exc.message}")
    assert not problems, f"events not matching docs/asyncapi.yaml: {problems[:5]}"


def events_seen() -> list[tuple[str, bytes]]:
    return list(_EVENTS_SEEN)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A skipped test is a failure here: a feature whose test did not run is not proven (the
    suite must stand on the repository alone, issue 17)."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter is not None else []
    if skipped and exitstatus == 0:
        reporter.write_line(f"{len(skipped)} test(s) skipped: a skipped test fails the suite",
                            red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


LAYERS = ("unit", "integration", "e2e")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test says its layer (issue 37): `-m unit` must not start servers, and a test
    without a marker would run under no layer's selection or under the wrong one."""
    unmarked = sorted({item.nodeid.split("::")[0] for item in items
                       if not any(item.get_closest_marker(layer) for layer in LAYERS)})
    if unmarked:
        raise pytest.UsageError("tests without a layer marker (pytestmark = pytest.mark.unit, "
                                "integration or e2e): " + ", ".join(unmarked))
