"""`vigie init`: what must exist before services start: schema, streams, buckets.

Run once per deployment start (the Compose one-shot job, or `vigie run`), with the admin NATS user.
Every step is idempotent, so running it again is harmless.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping

import asyncpg
import nats.js.errors

from vigie.custody.holds import move_legacy_copies
from vigie.plumbing.bus.connection import connect_nats, jetstream
from vigie.plumbing.bus.streams import StreamLimits, ensure_streams
from vigie.plumbing.bus.subjects import BusNames
from vigie.plumbing.db.migrate import migrate
from vigie.plumbing.db.pool import create_pool
from vigie.plumbing.db.roles import ensure_monitor_role, ensure_service_roles
from vigie.plumbing.log import get_logger
from vigie.plumbing.settings import CommonSettings
from vigie.plumbing.storage.objects import Buckets, ObjectStore

log = get_logger(__name__)


STREAM_ATTEMPTS = 30


async def recordings_expiry_rules(pool: asyncpg.Pool) -> dict[str, int]:
    """One rule per commune prefix at the commune's retention (the backstop of invariant 3)."""
    rows = await pool.fetch("SELECT slug, retention_days FROM communes ORDER BY slug")
    return {f"{r['slug']}/": r["retention_days"] for r in rows}


async def provision(
    common: CommonSettings,
    limits: StreamLimits,
    *,
    seed: Callable[[asyncpg.Connection], Awaitable[None]] | None = None,
    role_passwords: Mapping[str, str | None] | None = None,
    monitor_password: str | None = None,
) -> dict[str, object]:
    """Migrate (then ``seed``, for the embedded default), each service's database role (those in
    ``role_passwords``), the metrics exporter's (with ``monitor_password``), streams, buckets,
    lifecycle rules."""
    dsn = common.postgres_dsn.get_secret_value()
    conn = await asyncpg.connect(dsn, timeout=common.connect_timeout_s)
    try:
        applied = await migrate(conn, schema=common.postgres_schema)
        if seed is not None:
            await conn.execute(f'SET search_path TO "{common.postgres_schema}"')
            await seed(conn)
        if role_passwords:
            await ensure_service_roles(conn, schema=common.postgres_schema,
                                       passwords=role_passwords)
        if monitor_password:
            await ensure_monitor_role(conn, schema=common.postgres_schema,
                                      password=monitor_password)
    finally:
        await conn.close()

    nc = await connect_nats(common, name="vigie-init")
    try:
        for attempt in range(STREAM_ATTEMPTS):
            try:
                await ensure_streams(jetstream(nc), BusNames(common.bus_root), limits)
                break
            except (nats.js.errors.APIError, TimeoutError) as exc:
                # A cluster that is still forming has no JetStream leader, or too few peers
                # for the streams' replicas, for a few seconds.
                if attempt == STREAM_ATTEMPTS - 1:
                    raise
                log.warning("streams_not_ready", error=str(exc) or type(exc).__name__)
                await asyncio.sleep(2)
    finally:
        await nc.drain()

    store = ObjectStore.from_settings(common)
    buckets = Buckets.with_prefix(common.bucket_prefix)
    await store.ensure_buckets(buckets.all(), object_lock=buckets.locked())
    moved = await move_legacy_copies(store, evidence=buckets.evidence, holds=buckets.holds)
    if moved:
        log.info("hold_copies_moved_under_object_lock", copies=moved, bucket=buckets.holds)
    pool = await create_pool(dsn, schema=common.postgres_schema, max_size=2)
    try:
        rules = await recordings_expiry_rules(pool)
    finally:
        await pool.close()
    lifecycle = await store.set_expiry_rules(buckets.recordings, rules) if rules else None
    log.info("provisioned", migrations=applied, lifecycle_rules=lifecycle)
    return {"migrations": applied, "lifecycle_rules": lifecycle}
