"""The recorder against real nats-server, PostgreSQL and S3: every frame that reached VIDEO is in
exactly one stored segment, in order — proven by demuxing what is in storage (issue 7, DESIGN.md
invariant 2)."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import asyncpg
import av
import pytest
import pytest_asyncio
from nats.aio.client import Client as NATS
from vigie.bus.connection import jetstream
from vigie.bus.frames import Frame, publish_frame
from vigie.bus.subjects import BusNames
from vigie.local import servers
from vigie.settings import CommonSettings
from vigie.storage.objects import Buckets, ObjectStore

from services.recorder.handlers import Recorder
from services.recorder.settings import RecorderSettings
from tests.conftest import events_seen, settings_env
from tests.harness import eventually
from tests.recorder.frames import video_frames

pytestmark = pytest.mark.integration
T0 = (time.time_ns() // 10**9 - 3600) * 10**9
SETTINGS = dict(segment_s=2.0, gap_s=1.0, upload_timeout_s=3.0, retry_max_s=1.0,
                poll_interval_s=0.5)


async def _camera(db: asyncpg.Pool, slug: str) -> int:
    await db.execute("INSERT INTO communes (slug, name, retention_days) VALUES "
                     "('palaiseau', 'Palaiseau', 15) ON CONFLICT DO NOTHING")
    return int(await db.fetchval("INSERT INTO cameras (commune, slug, name, state) VALUES "
                                 "('palaiseau', $1, $1, 'active') RETURNING id", slug))


async def _publish(nc: NATS, names: BusNames, frames: list[Frame]) -> None:
    js = jetstream(nc)
    for frame in frames:
        await publish_frame(js, names, frame, stage="video")


async def _stored_capture_times(db: asyncpg.Pool, objects: ObjectStore, bucket: str,
                                camera_id: int) -> list[int]:
    """Capture times (ms) of every frame in storage, segment by segment, from the MP4s."""
    times: list[int] = []
    rows = await db.fetch("SELECT * FROM segments WHERE camera_id = $1 ORDER BY start_time",
                          camera_id)
    for row in rows:
        data = await objects.get(bucket, row["object_key"])
        assert hashlib.sha256(data).hexdigest() == row["sha256"]
        assert len(data) == row["size_bytes"]
        start_ms = int(row["start_time"].timestamp() * 1000)
        with av.open(io.BytesIO(data)) as c:
            stream = c.streams.video[0]
            packets = [p for p in c.demux(stream) if p.size]
            assert packets[0].is_keyframe
        with av.open(io.BytesIO(data)) as c:
            assert sum(1 for _ in c.decode(video=0)) == row["frames"], "decodes from frame one"
        assert len(packets) == row["frames"]
        times += [start_ms + round(float(p.dts * p.time_base) * 1000) for p in packets]
    return times


def _expected_ms(frames: list[Frame]) -> list[int]:
    return [f.capture_time_ns // 1_000_000 for f in frames]


@pytest_asyncio.fixture
async def run_recorder(
    admin_nc: NATS, streams: BusNames, db: asyncpg.Pool, store: tuple[ObjectStore, Buckets],
) -> AsyncIterator[Callable[..., Recorder]]:
    tasks: list[tuple[asyncio.Event, asyncio.Task[None]]] = []
    objects, buckets = store

    def _start(object_store: ObjectStore | None = None, bucket: str | None = None,
               **overrides: float) -> Recorder:
        recorder = Recorder(js=jetstream(admin_nc), names=streams, pool=db,
                            store=object_store or objects, bucket=bucket or buckets.recordings,
                            settings=RecorderSettings(**{**SETTINGS, **overrides}))
        stop = asyncio.Event()
        tasks.append((stop, asyncio.create_task(recorder.run(stop))))
        return recorder

    yield _start
    for stop, task in tasks:
        stop.set()
        await asyncio.wait_for(task, timeout=30)


async def test_segments_are_contiguous_playable_and_hold_every_frame_once(
    run_recorder: Callable[..., Recorder], admin_nc: NATS, streams: BusNames, db: asyncpg.Pool,
    store: tuple[ObjectStore, Buckets],
) -> None:
    cid = await _camera(db, "gare")
    run_recorder()
    frames = video_frames("gare", 130, start_ns=T0) + \
        video_frames("gare", 50, start_ns=T0 + 130 * 40_000_000 + 30 * 10**9, first_seq=130)
    await _publish(admin_nc, streams, frames)
    objects, buckets = store
    await eventually(lambda: db.fetchval("SELECT sum(frames) = 180 FROM segments"), timeout_s=20,
                     message="not every frame stored")
    assert await _stored_capture_times(db, objects, buckets.recordings, cid) == _expected_ms(frames)
    rows = await db.fetch("SELECT start_time, end_time, object_key, mask_version FROM segments "
                          "ORDER BY start_time")
    ends = [(r["start_time"], r["end_time"]) for r in rows]
    gaps = [(b[0] - a[1]).total_seconds() for a, b in zip(ends, ends[1:])]
    assert gaps.count(0.0) == len(gaps) - 1, "contiguous while the camera is online"
    assert max(gaps) == pytest.approx(30, abs=0.1), "a 30 s offline period is a 30 s gap"
    assert rows[0]["object_key"].startswith("palaiseau/gare/") and rows[0]["mask_version"] == 1
    recorded = [json.loads(d) for s, d in events_seen() if s.startswith(streams.root + ".")
                and s.endswith(".segment.recorded")]
    assert len(recorded) == len(rows)
    info = await jetstream(admin_nc).consumer_info(streams.video_stream, "recorder_palaiseau_gare")
    assert info.num_ack_pending == 0 and info.num_pending == 0


async def test_sigkill_mid_segment_then_restart_loses_and_duplicates_nothing(
    settings_for: Callable[..., CommonSettings], admin_nc: NATS, streams: BusNames,
    db: asyncpg.Pool, store: tuple[ObjectStore, Buckets],
) -> None:
    cid = await _camera(db, "parvis")
    env = {**os.environ, **settings_env(settings_for("admin")),
           **{f"VIGIE_RECORDER_{k.upper()}": str(v) for k, v in SETTINGS.items()},
           "VIGIE_RECORDER_HTTP_PORT": "0"}

    def spawn() -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-m", "vigie.cli.main", "service", "recorder"],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    frames = video_frames("parvis", 150, start_ns=T0)
    proc = spawn()
    try:
        await _publish(admin_nc, streams, frames[:70])  # one segment closes, one stays open
        await eventually(lambda: db.fetchval("SELECT count(*) = 1 FROM segments"), timeout_s=30,
                         message="first segment not stored")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        await _publish(admin_nc, streams, frames[70:])
        proc = spawn()
        await eventually(lambda: db.fetchval("SELECT sum(frames) = 150 FROM segments"),
                         timeout_s=40, message="frames lost across the crash")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    objects, buckets = store
    assert await _stored_capture_times(db, objects, buckets.recordings, cid) == _expected_ms(frames)


@pytest.mark.parametrize("fault", ["killed", "frozen"])
async def test_storage_outage_backpressure_then_catch_up(
    fault: str, run_recorder: Callable[..., Recorder], admin_nc: NATS, streams: BusNames,
    db: asyncpg.Pool, tmp_path: Path,
) -> None:
    s3 = servers.start_rclone_s3(tmp_path / "s3")
    try:
        objects = ObjectStore(s3.endpoint, s3.access_key, s3.secret_key, timeout_s=2)
        bucket = "outage-recordings"
        await objects.ensure_buckets([bucket])
        cid = await _camera(db, "marche")
        run_recorder(object_store=objects, bucket=bucket)
        frames = video_frames("marche", 200, start_ns=T0)
        await _publish(admin_nc, streams, frames[:60])
        await eventually(lambda: db.fetchval("SELECT count(*) >= 1 FROM segments"), timeout_s=20)
        if fault == "killed":
            s3.process.stop()
        else:
            s3.process.send_signal(signal.SIGSTOP)  # connections hang
        await _publish(admin_nc, streams, frames[60:])
        event = await eventually(
            lambda: [json.loads(d) for s, d in events_seen() if s.startswith(streams.root + ".")
                     and s.endswith(".recorder.storage_unavailable")],
            timeout_s=20, message="no recorder.storage_unavailable during the outage")
        assert event[0]["target"] == "object_storage"
        stored_during = await db.fetchval("SELECT sum(frames) FROM segments")
        await asyncio.sleep(8)  # the outage lasts; nothing is acknowledged meanwhile
        info = await jetstream(admin_nc).consumer_info(streams.video_stream,
                                                       "recorder_palaiseau_marche")
        assert info.num_ack_pending > 0
        if fault == "killed":
            s3.process.start()
        else:
            s3.process.send_signal(signal.SIGCONT)
        await eventually(lambda: db.fetchval("SELECT sum(frames) = 200 FROM segments"),
                         timeout_s=40, message="did not catch up after the outage")
        assert stored_during < 200
        assert await _stored_capture_times(db, objects, bucket, cid) == _expected_ms(frames)
    finally:
        s3.process.send_signal(signal.SIGCONT)
        s3.process.stop()
