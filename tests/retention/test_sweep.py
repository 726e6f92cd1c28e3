"""The retention sweep against real PostgreSQL and S3: backdated rows and real objects, then the
sweep (REGULATION.md R4 retention per camera, R7 every deletion journaled; invariant 3)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from nats.aio.client import Client as NATS
from vigie.bus.connection import jetstream
from vigie.bus.subjects import BusNames
from vigie.service import Runtime
from vigie.storage.objects import Buckets, ObjectStore

from services.retention.handlers import sweep
from services.retention.settings import RetentionSettings
from tests.conftest import events_seen

pytestmark = pytest.mark.integration


async def _segment(db: asyncpg.Pool, objects: ObjectStore, bucket: str, camera_id: int,
                   slug: str, age_days: float) -> str:
    end = datetime.now(UTC) - timedelta(days=age_days)
    key = f"palaiseau/{slug}/{end:%Y/%m/%d/%H}/{end:%Y%m%dT%H%M%S}.mp4"
    await objects.put(bucket, key, b"segment")
    await db.execute(
        "INSERT INTO segments (camera_id, start_time, end_time, object_key, frames, size_bytes, "
        "sha256, mask_version, codec, width, height) VALUES ($1, $2, $3, $4, 1, 7, $5, 1, "
        "'h264', 640, 360)", camera_id, end - timedelta(seconds=60), end, key, "0" * 64)
    return key


async def test_each_camera_keeps_exactly_its_retention_and_deletions_are_journaled_R4_R7(
    db: asyncpg.Pool, store: tuple[ObjectStore, Buckets], admin_nc: NATS, streams: BusNames,
) -> None:
    objects, buckets = store
    await db.execute("INSERT INTO communes (slug, name, retention_days) VALUES ('palaiseau', 'P', 15)")
    short = await db.fetchval("INSERT INTO cameras (commune, slug, name, retention_days) VALUES "
                              "('palaiseau', 'court', 'C', 2) RETURNING id")
    usual = await db.fetchval("INSERT INTO cameras (commune, slug, name) VALUES "
                              "('palaiseau', 'normal', 'N') RETURNING id")
    for camera_id, slug, age in ((short, "court", 3), (usual, "normal", 16),
                                 (usual, "normal", 15.1)):
        await _segment(db, objects, buckets.recordings, camera_id, slug, age)  # expired
    kept = [await _segment(db, objects, buckets.recordings, short, "court", 1.5),
            await _segment(db, objects, buckets.recordings, usual, "normal", 10)]
    rt = Runtime(service="retention", common=None, names=streams, stop=asyncio.Event(),  # type: ignore[arg-type]
                 js=jetstream(admin_nc), pool=db, store=objects, buckets=buckets)
    assert await sweep(rt, RetentionSettings(batch=1)) == 3
    remaining = {r["object_key"] for r in await db.fetch("SELECT object_key FROM segments")}
    assert remaining == set(kept)
    listed = {o.key for o in await objects.list_objects(buckets.recordings)}
    assert listed == set(kept), "objects and rows go together"
    journal = await db.fetch("SELECT * FROM audit_log WHERE action = 'deletion' ORDER BY id")
    assert sum(json.loads(j["details"])["segments"] for j in journal) == 3
    assert {c for j in journal for c in j["cameras"]} == {"palaiseau/court", "palaiseau/normal"}
    assert all(j["reason"] == "retention" and j["period_end"] for j in journal)
    assert await sweep(rt, RetentionSettings()) == 0, "idempotent"
    purged = [json.loads(d) for s, d in events_seen()
              if s.startswith(streams.root + ".") and s.endswith(".retention.purged")]
    assert sorted(e["camera"] for e in purged) == ["court", "normal"]

