"""The retention sweep against real PostgreSQL and S3: backdated rows and real objects, then the
sweep (REGULATION.md R4 retention per camera, R7 every deletion journaled; invariant 3)."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable

import asyncpg
import pytest
from nats.aio.client import Client as NATS
from prometheus_client import REGISTRY
from vigie.plumbing.bus.subjects import BusNames
from vigie.plumbing.storage.objects import Buckets, ObjectStore

from services.recorder.core import object_key
from services.retention.handlers import sweep
from services.retention.settings import RetentionSettings
from tests.conftest import events_seen
from tests.retention.helpers import ago, camera, commune, keys, runtime, segment

pytestmark = pytest.mark.integration
SWEPT_AT = "vigie_retention_sweep_last_success_timestamp_seconds"


async def test_each_camera_keeps_exactly_its_retention_orphans_go_and_all_is_journaled_R4_R7(
    service_db: Callable[[str], Awaitable[asyncpg.Pool]],
    service_store: Callable[[str], ObjectStore],
    db: asyncpg.Pool, store: tuple[ObjectStore, Buckets], probe_nc: NATS, streams: BusNames,
) -> None:
    objects, buckets = store
    bucket = buckets.recordings
    await commune(db, "palaiseau", 15)
    short = await camera(db, "court", days=2)  # the camera's own retention, under the commune's
    usual = await camera(db, "normal")
    expired = [await segment(db, objects, bucket, short, slug="court", end=ago(3)),
               await segment(db, objects, bucket, usual, slug="normal", end=ago(16)),
               await segment(db, objects, bucket, usual, slug="normal", end=ago(15, minutes=5))]
    kept = {await segment(db, objects, bucket, short, slug="court", end=ago(1.5)),
            await segment(db, objects, bucket, usual, slug="normal", end=ago(10)),
            await segment(db, objects, bucket, usual, slug="normal", end=ago(14.9))}
    # Uploaded, row never committed: one under an expired hour prefix, one under a recent one.
    orphan_old = object_key("palaiseau", "normal", int(ago(17).timestamp()) * 10**9)
    orphan_recent = object_key("palaiseau", "normal", int(ago(1).timestamp()) * 10**9)
    for key in (orphan_old, orphan_recent):
        await objects.put(bucket, key, b"orphan")

    rt = await runtime(streams, probe_nc, service_db, service_store("retention"), buckets)
    assert await sweep(rt, RetentionSettings(batch=1)) == len(expired) + 1
    remaining = {r["object_key"] for r in await db.fetch("SELECT object_key FROM segments")}
    assert remaining == kept
    assert await keys(objects, bucket) == kept | {orphan_recent}, "objects and rows go together"

    journal = await db.fetch("SELECT * FROM audit_log WHERE action = 'deletion' ORDER BY id")
    retention = [j for j in journal if j["reason"] == "retention"]
    assert len(retention) == 3, "batch of 1: one journal row per batch"
    assert sum(json.loads(j["details"])["segments"] for j in retention) == len(expired)
    assert {c for j in retention for c in j["cameras"]} == {"palaiseau/court", "palaiseau/normal"}
    assert all(j["actor"] == "retention" and j["period_start"] and j["period_end"]
               for j in journal)
    orphans = [j for j in journal if j["reason"] == "orphan"]
    assert [json.loads(j["details"])["objects"] for j in orphans] == [1]
    assert orphans[0]["cameras"] == ["palaiseau/normal"]

    assert await sweep(rt, RetentionSettings()) == 0, "idempotent"
    assert await db.fetchval("SELECT count(*) FROM audit_log WHERE action = 'deletion'") == 4
    purged = [json.loads(d) for s, d in events_seen()
              if s.startswith(streams.root + ".") and s.endswith(".retention.purged")]
    assert sorted((e["camera"], e["cause"], e["segments"], e["objects"]) for e in purged) == [
        ("court", "retention", 1, 1), ("normal", "orphan", 0, 1), ("normal", "retention", 2, 2)]


async def test_a_sweep_lists_only_hour_prefixes_not_visited_yet(
    service_db: Callable[[str], Awaitable[asyncpg.Pool]],
    service_store: Callable[[str], ObjectStore],
    db: asyncpg.Pool, store: tuple[ObjectStore, Buckets], probe_nc: NATS, streams: BusNames,
) -> None:
    objects, buckets = store
    await commune(db, "palaiseau", 15)
    cid = await camera(db, "gare")
    rt = await runtime(streams, probe_nc, service_db, service_store("retention"), buckets)
    await sweep(rt, RetentionSettings())
    first = await db.fetchval("SELECT orphans_swept_until FROM retention_cursors "
                              "WHERE camera_id = $1", cid)
    assert (ago(15) - first).total_seconds() < 3600, "visited up to the retention horizon"
    # An orphan behind the cursor is the lifecycle backstop's: a sweep never lists it again.
    behind = object_key("palaiseau", "gare", int(ago(20).timestamp()) * 10**9)
    await objects.put(buckets.recordings, behind, b"late orphan")
    await sweep(rt, RetentionSettings())
    assert behind in await keys(objects, buckets.recordings)
    again = await db.fetchval("SELECT orphans_swept_until FROM retention_cursors "
                              "WHERE camera_id = $1", cid)
    assert again == first


async def test_the_sweeps_last_success_moves_only_when_a_sweep_went_through(
    service_db: Callable[[str], Awaitable[asyncpg.Pool]],
    service_store: Callable[[str], ObjectStore],
    db: asyncpg.Pool, store: tuple[ObjectStore, Buckets], probe_nc: NATS, streams: BusNames,
) -> None:
    """Issue 36: nothing said when the sweep last succeeded, so a sweep failing on every camera
    went unnoticed. `vigie_retention_sweep_last_success_timestamp_seconds` (alert
    VigieRetentionSweepLate) moves on a complete sweep, not on one that left work to retry (R4)."""
    objects, buckets = store
    await commune(db, "palaiseau", 15)
    cam = await camera(db, "quai")
    await segment(db, objects, buckets.recordings, cam, slug="quai", end=ago(16))
    unreachable = ObjectStore("127.0.0.1:1", "unused", "unused-secret", timeout_s=1)
    broken = await runtime(streams, probe_nc, service_db, unreachable, buckets)
    before = REGISTRY.get_sample_value(SWEPT_AT) or 0.0
    await sweep(broken, RetentionSettings())
    assert (REGISTRY.get_sample_value(SWEPT_AT) or 0.0) == before
    assert await db.fetchval("SELECT count(*) FROM segments") == 1, "kept for the next sweep"

    rt = await runtime(streams, probe_nc, service_db, service_store("retention"), buckets)
    started = time.time()
    await sweep(rt, RetentionSettings())
    assert (REGISTRY.get_sample_value(SWEPT_AT) or 0.0) >= started
    assert await db.fetchval("SELECT count(*) FROM segments") == 0
