"""Backdated real objects and rows for retention tests (no patched clock)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import asyncpg
from nats.aio.client import Client as NATS
from vigie.plumbing.bus.connection import jetstream
from vigie.plumbing.bus.subjects import BusNames
from vigie.plumbing.storage.objects import Buckets, ObjectStore
from vigie.service import Runtime

from services.recorder.core import object_key


async def commune(db: asyncpg.Pool, slug: str = "palaiseau", days: int = 15) -> None:
    await db.execute("INSERT INTO communes (slug, name, retention_days) VALUES ($1, $1, $2)",
                     slug, days)


async def camera(db: asyncpg.Pool, slug: str, *, commune: str = "palaiseau",
                 days: int | None = None) -> int:
    return int(await db.fetchval(
        "INSERT INTO cameras (commune, slug, name, state, retention_days) "
        "VALUES ($1, $2, $2, 'active', $3) RETURNING id", commune, slug, days))


async def segment(db: asyncpg.Pool, objects: ObjectStore, bucket: str, camera_id: int, *,
                  commune: str = "palaiseau", slug: str, end: datetime,
                  length_s: float = 60) -> str:
    """A real object and its row, as the recorder would have written them at `end`."""
    start = end - timedelta(seconds=length_s)
    key = object_key(commune, slug, int(start.timestamp() * 1_000_000) * 1000)
    data = f"segment {key}".encode()
    await objects.put(bucket, key, data)
    await db.execute(
        "INSERT INTO segments (camera_id, start_time, end_time, object_key, frames, size_bytes, "
        "sha256, mask_version, codec, width, height) VALUES ($1, $2, $3, $4, 1, $5, $6, 1, "
        "'h264', 640, 360)", camera_id, start, end, key, len(data),
        hashlib.sha256(data).hexdigest())
    return key


def ago(days: float = 0, **more: float) -> datetime:
    return datetime.now(UTC) - timedelta(days=days, **more)


async def runtime(names: BusNames, nc: NATS, service_db: Callable[[str], Awaitable[asyncpg.Pool]],
                  objects: ObjectStore, buckets: Buckets) -> Runtime:
    """The retention service's runtime, on its own database role and object-store identity (as
    deployed)."""
    return Runtime(service="retention", common=None, names=names,  # type: ignore[arg-type]
                   stop=asyncio.Event(), js=jetstream(nc), pool=await service_db("retention"),
                   store=objects, buckets=buckets)


async def keys(objects: ObjectStore, bucket: str) -> set[str]:
    return {o.key for o in await objects.list_objects(bucket)}
