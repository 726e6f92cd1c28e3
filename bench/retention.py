"""Retention benchmark: one sweep over 1,000,000 segment rows of which 5 % have expired, against the
same with 0.5 % expired. If the sweep's cost follows what expires (index on end time, no full scan,
no bucket listing beyond the expired hour prefixes), the first costs about ten times the second.

    .venv/bin/python -m bench.retention [--rows 1000000] [--cameras 40]
    (or: make bench-retention)

Real servers on loopback: PostgreSQL, rclone's S3, nats-server (for the events). Every expiring row
has a real (tiny) object; the others have rows only, since no sweep may touch them.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import io
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
from minio.error import InvalidResponseError
from vigie.local import servers
from vigie.plumbing.bus.connection import connect_nats, jetstream
from vigie.plumbing.bus.streams import StreamLimits, ensure_streams
from vigie.plumbing.bus.subjects import BusNames
from vigie.plumbing.db.migrate import migrate
from vigie.plumbing.storage.objects import Buckets, ObjectStore
from vigie.service import Runtime

from bench.common import bench_settings, cpu_self_s, run_in_scratch
from services.recorder.core import object_key
from services.retention.handlers import sweep
from services.retention.settings import RetentionSettings

RETENTION_DAYS = 15
SEGMENT = timedelta(seconds=60)
SHA = hashlib.sha256(b"x").hexdigest()


async def seed(pool: asyncpg.Pool, store: ObjectStore, bucket: str, *, rows: int, cameras: int,
               expiring: float) -> int:
    """`rows` segments spread evenly over a window that ends now and starts far enough behind the
    retention horizon for `expiring` of them to have expired."""
    now = datetime.now(UTC)
    window = timedelta(days=RETENTION_DAYS) / (1 - expiring)
    await pool.execute("INSERT INTO communes (slug, name, retention_days) VALUES ('b', 'B', $1)",
                       RETENTION_DAYS)
    ids = [await pool.fetchval("INSERT INTO cameras (commune, slug, name, state) VALUES "
                               "('b', $1, $1, 'active') RETURNING id", f"c{i}")
           for i in range(cameras)]
    per_camera = rows // cameras
    step = window / per_camera
    records, expired_keys = [], []
    horizon = now - timedelta(days=RETENTION_DAYS)
    for n, cid in enumerate(ids):
        for i in range(per_camera):
            end = now - window + step * (i + 0.5)  # half a step off the horizon
            start = end - SEGMENT
            key = object_key("b", f"c{n}", int(start.timestamp() * 1e6) * 1000)
            records.append((cid, start, end, key, 1500, 1, SHA, 1, "h264", 1920, 1080))
            if end < horizon:
                expired_keys.append(key)
    await pool.copy_records_to_table(
        "segments", records=records,
        columns=["camera_id", "start_time", "end_time", "object_key", "frames", "size_bytes",
                 "sha256", "mask_version", "codec", "width", "height"])
    # The orphan pass resumes where the previous sweep stopped: at the start of the data here.
    await pool.executemany("INSERT INTO retention_cursors VALUES ($1, $2)",
                           [(cid, now - window - timedelta(hours=1)) for cid in ids])
    await pool.execute("ANALYZE segments")
    with ThreadPoolExecutor(16) as threads:
        loop = asyncio.get_running_loop()
        await asyncio.gather(*(loop.run_in_executor(threads, _put, store, bucket, key)
                               for key in expired_keys))
    return len(expired_keys)


def _put(store: ObjectStore, bucket: str, key: str) -> None:
    # rclone answers 500 now and then when many uploads create the same folders at once: retry.
    for attempt in range(10):
        try:
            store._client.put_object(bucket, key, io.BytesIO(b"x"), 1)  # noqa: SLF001 - seeding
            return
        except InvalidResponseError:
            if attempt == 9:
                raise
            time.sleep(0.05 * (attempt + 1))


async def one_run(pg: servers.PostgresServer, s3: servers.S3Server, nc, *,  # type: ignore[no-untyped-def]
                  rows: int, cameras: int, expiring: float, name: str) -> dict[str, float]:
    schema = f"bench_{name}"
    conn = await asyncpg.connect(pg.dsn)
    await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    await migrate(conn, schema=schema)
    await conn.close()
    pool = await asyncpg.create_pool(pg.dsn, min_size=1, max_size=4,
                                     server_settings={"search_path": schema})
    store = ObjectStore(s3.endpoint, s3.access_key, s3.secret_key)
    buckets = Buckets.with_prefix(name)
    await store.ensure_buckets(buckets.all(), object_lock=buckets.locked())
    t0 = time.monotonic()
    expired = await seed(pool, store, buckets.recordings, rows=rows, cameras=cameras,
                         expiring=expiring)
    seed_s = time.monotonic() - t0
    names = BusNames("bench")
    rt = Runtime(service="retention", common=None, names=names,  # type: ignore[arg-type]
                 stop=asyncio.Event(), js=jetstream(nc), pool=pool, store=store, buckets=buckets)
    cpu0, t0 = cpu_self_s(), time.monotonic()
    deleted = await sweep(rt, RetentionSettings(batch=500))
    wall, cpu = time.monotonic() - t0, cpu_self_s() - cpu0
    t0 = time.monotonic()
    assert await sweep(rt, RetentionSettings(batch=500)) == 0
    idle = time.monotonic() - t0
    left = await pool.fetchval("SELECT count(*) FROM segments")
    await pool.close()
    # Rows within a few seconds of the horizon expire while the objects are being seeded.
    assert expired <= deleted <= expired * 1.01, (deleted, expired)
    print(f"  {name}: {rows:,} rows, {expired:,} expired ({100 * expiring:g} %) seeded in "
          f"{seed_s:.0f} s; sweep of {deleted:,} in {wall:.1f} s wall ({cpu:.1f} s CPU of the "
          f"sweeper): {deleted / wall:,.0f} rows/s and objects/s; {left:,} rows left; "
          f"next sweep with nothing to do: {idle * 1000:.0f} ms")
    return {"wall": wall, "expired": deleted, "idle": idle}


async def run(rows: int, cameras: int, folder: Path) -> None:
    pg = servers.start_postgres(folder / "pg")
    s3 = servers.start_rclone_s3(folder / "s3")
    nats = servers.start_nats(folder / "nats", extra_users=servers.PROBE)
    try:
        nc = await connect_nats(bench_settings(nats.url, nats.passwords[servers.PROBE_USER], pg.dsn),
                                name="bench")
        await ensure_streams(jetstream(nc), BusNames("bench"), StreamLimits())
        print(f"{rows:,} segment rows over {cameras} cameras, retention {RETENTION_DAYS} days, "
              "batches of 500, one sweep each:")
        many = await one_run(pg, s3, nc, rows=rows, cameras=cameras, expiring=0.05, name="five")
        few = await one_run(pg, s3, nc, rows=rows, cameras=cameras, expiring=0.005, name="half")
        await nc.close()
        print(f"expired ratio {many['expired'] / few['expired']:.1f}, sweep time ratio "
              f"{many['wall'] / few['wall']:.1f} (cost follows what expires when they match)")
        print(f"retention_sweep_time_ratio {many['wall'] / few['wall']:.2f}")
    finally:
        nats.process.stop()
        s3.process.stop()
        pg.process.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--cameras", type=int, default=40)
    args = ap.parse_args()
    run_in_scratch(lambda folder: run(args.rows, args.cameras, folder))


if __name__ == "__main__":
    main()
