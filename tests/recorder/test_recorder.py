"""The recorder against real nats-server, PostgreSQL and S3: every frame that reached VIDEO is in
exactly one stored segment, in order — proven by demuxing what is in storage (issue 7, DESIGN.md
invariant 2)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import av
import nats.errors
import pytest
import pytest_asyncio
from nats.aio.client import Client as NATS
from prometheus_client import REGISTRY
from vigie.custody import provenance
from vigie.local import servers
from vigie.media.payload import payload_sha256
from vigie.plumbing.bus.connection import connect_nats, jetstream
from vigie.plumbing.bus.frames import Frame, publish_frame
from vigie.plumbing.bus.streams import StreamLimits, ensure_streams
from vigie.plumbing.bus.subjects import BusNames
from vigie.plumbing.db.migrate import migrate
from vigie.plumbing.db.pool import TRANSIENT_DB_ERRORS
from vigie.plumbing.settings import CommonSettings
from vigie.plumbing.storage.objects import Buckets, ObjectStore
from vigie.security.signing import SigningKey

from services.recorder.handlers import Recorder
from services.recorder.settings import RecorderSettings
from tests.conftest import events_seen, settings_env
from tests.harness import PROBE, PROBE_USER, ConnectionCutter, eventually, unique
from tests.recorder.frames import video_frames

pytestmark = pytest.mark.integration
T0 = (time.time_ns() // 10**9 - 3600) * 10**9
SETTINGS = dict(segment_s=2.0, gap_s=1.0, upload_timeout_s=3.0, retry_max_s=1.0,
                poll_interval_s=0.5, quiet_flush_s=2.0)


async def _camera(db: asyncpg.Pool, slug: str) -> int:
    await db.execute("INSERT INTO communes (slug, name, retention_days) VALUES "
                     "('palaiseau', 'Palaiseau', 15) ON CONFLICT DO NOTHING")
    return int(await db.fetchval("INSERT INTO cameras (commune, slug, name, state) VALUES "
                                 "('palaiseau', $1, $1, 'active') RETURNING id", slug))


async def _publish(nc: NATS, names: BusNames, frames: list[Frame]) -> None:
    js = jetstream(nc)
    for frame in frames:
        for attempt in range(100):  # a restarting nats-server: masking would retry the same way
            try:
                await publish_frame(js, names, frame, stage="video")
                break
            except (nats.errors.Error, TimeoutError):
                if attempt == 99:
                    raise
                await asyncio.sleep(0.2)


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


async def _check_chain(db: asyncpg.Pool, objects: ObjectStore, bucket: str, camera_id: int,
                       camera: str, key: SigningKey) -> int:
    """The recorder's chain of the camera (issue 21): one link per stored segment, in order, each
    naming the previous, its text hashing to its link, signed by the recording key, its picture
    data hash that of the stored object's packets. Returns the links."""
    segments = await db.fetch("SELECT * FROM segments WHERE camera_id = $1 ORDER BY start_time",
                              camera_id)
    links = await db.fetch("SELECT * FROM segment_chain WHERE camera_id = $1 ORDER BY seq",
                           camera_id)
    assert [r["object_key"] for r in links] == [r["object_key"] for r in segments]
    assert [r["seq"] for r in links] == list(range(1, len(links) + 1))
    previous = provenance.GENESIS
    for row, seg in zip(links, segments, strict=True):
        link = provenance.Link(camera=camera, seq=row["seq"], start=row["start_time"],
                               end=row["end_time"], sha256=row["sha256"],
                               payload_sha256=row["payload_sha256"], frames=row["frames"],
                               mask_version=row["mask_version"], prev=row["prev_link"])
        assert row["prev_link"] == previous
        assert provenance.check_link(link, row["link"], row["signature"], key.public_pem()) == ""
        assert row["key_fingerprint"] == key.fingerprint() and row["sha256"] == seg["sha256"]
        data = await objects.get(bucket, seg["object_key"])
        assert payload_sha256(data) == (row["payload_sha256"], seg["frames"])
        previous = row["link"]
    assert await db.fetchval("SELECT count(*) FROM signing_keys WHERE purpose = 'recording' "
                             "AND fingerprint = $1", key.fingerprint()) in (0, 1)
    return len(links)


def _expected_ms(frames: list[Frame]) -> list[int]:
    return [f.capture_time_ns // 1_000_000 for f in frames]


@pytest_asyncio.fixture
async def run_recorder(
    probe_nc: NATS, streams: BusNames, store: tuple[ObjectStore, Buckets],
    service_db: Callable[[str], Awaitable[asyncpg.Pool]],
    service_store: Callable[[str], ObjectStore],
) -> AsyncIterator[Callable[..., Recorder]]:
    tasks: list[tuple[asyncio.Event, asyncio.Task[None]]] = []
    _, buckets = store
    # Its own database role and object-store identity, as deployed.
    as_recorder, objects = await service_db("recorder"), service_store("recorder")

    def _start(object_store: ObjectStore | None = None, bucket: str | None = None,
               signing_key: SigningKey | None = None, **overrides: float) -> Recorder:
        recorder = Recorder(js=jetstream(probe_nc), names=streams, pool=as_recorder,
                            store=object_store or objects, bucket=bucket or buckets.recordings,
                            settings=RecorderSettings(**{**SETTINGS, **overrides}),
                            signing_key=signing_key)
        stop = asyncio.Event()
        tasks.append((stop, asyncio.create_task(recorder.run(stop))))
        return recorder

    yield _start
    for stop, task in tasks:
        stop.set()
        await asyncio.wait_for(task, timeout=30)


async def test_segments_are_contiguous_playable_and_hold_every_frame_once(
    run_recorder: Callable[..., Recorder], probe_nc: NATS, streams: BusNames, db: asyncpg.Pool,
    store: tuple[ObjectStore, Buckets],
) -> None:
    cid = await _camera(db, "gare")
    key = SigningKey.generate()
    run_recorder(signing_key=key)
    frames = video_frames("gare", 130, start_ns=T0) + \
        video_frames("gare", 50, start_ns=T0 + 130 * 40_000_000 + 30 * 10**9, first_seq=130)
    await _publish(probe_nc, streams, frames)
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
    info = await jetstream(probe_nc).consumer_info(streams.video_stream, "recorder_palaiseau_gare")
    assert info.num_ack_pending == 0 and info.num_pending == 0
    assert await _check_chain(db, objects, buckets.recordings, cid, "palaiseau/gare",
                              key) == len(rows)


async def test_sigkill_mid_segment_then_restart_loses_and_duplicates_nothing(
    settings_for: Callable[..., CommonSettings], probe_nc: NATS, streams: BusNames,
    db: asyncpg.Pool, store: tuple[ObjectStore, Buckets],
) -> None:
    cid = await _camera(db, "parvis")
    key = SigningKey.generate()
    env = {**os.environ, **settings_env(settings_for(PROBE_USER)),
           **{f"VIGIE_RECORDER_{k.upper()}": str(v) for k, v in SETTINGS.items()},
           "VIGIE_RECORDER_HTTP_PORT": "0", "VIGIE_RECORDING_KEY": key.private_pem()}

    def spawn() -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-m", "vigie.cli.main", "service", "recorder"],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    frames = video_frames("parvis", 150, start_ns=T0)
    proc = spawn()
    try:
        await _publish(probe_nc, streams, frames[:70])  # one segment closes, one stays open
        await eventually(lambda: db.fetchval("SELECT count(*) = 1 FROM segments"), timeout_s=30,
                         message="first segment not stored")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        await _publish(probe_nc, streams, frames[70:])
        proc = spawn()
        await eventually(lambda: db.fetchval("SELECT sum(frames) = 150 FROM segments"),
                         timeout_s=40, message="frames lost across the crash")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    objects, buckets = store
    assert await _stored_capture_times(db, objects, buckets.recordings, cid) == _expected_ms(frames)
    # Linked once each across the crash; the key announced (and journaled) once, not per start.
    assert await _check_chain(db, objects, buckets.recordings, cid, "palaiseau/parvis", key) >= 2
    assert await db.fetchval("SELECT count(*) FROM audit_log WHERE action = 'key.created' "
                             "AND details->>'fingerprint' = $1", key.fingerprint()) == 1


async def test_two_replicas_one_frozen_past_its_lease_is_fenced_and_nothing_is_stored_twice(
    settings_for: Callable[..., CommonSettings], probe_nc: NATS, streams: BusNames,
    db: asyncpg.Pool, store: tuple[ObjectStore, Buckets], tmp_path: Path,
) -> None:
    """Issue 19: the camera's owner is frozen (SIGSTOP) with a segment open; the other replica
    takes the camera over after the claim's TTL and records on; woken up, the frozen one stores
    nothing (its lease is lost, and its epoch is fenced in the database)."""
    cid = await _camera(db, "halle")
    base = {**os.environ, **settings_env(settings_for(PROBE_USER)),
            **{f"VIGIE_RECORDER_{k.upper()}": str(v) for k, v in SETTINGS.items()},
            "VIGIE_RECORDER_HTTP_PORT": "0", "VIGIE_LOG_FORMAT": "json"}
    logs = {name: tmp_path / f"{name}.log" for name in ("rec-a", "rec-b")}

    def spawn(name: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "vigie.cli.main", "service", "recorder"],
            env={**base, "VIGIE_REPLICA": name}, stdout=logs[name].open("wb"),
            stderr=subprocess.STDOUT)

    async def owner() -> tuple[str, int] | None:
        row = await db.fetchrow("SELECT owner, epoch FROM camera_owners WHERE service = "
                                "'recorder' AND camera_id = $1", cid)
        return (row["owner"], row["epoch"]) if row else None

    frames = video_frames("halle", 200, start_ns=T0)
    a = spawn("rec-a")
    await eventually(lambda: owner(), timeout_s=20, message="rec-a never owned the camera")
    b = spawn("rec-b")  # its share is ceil(1/2) = 1: it waits for the camera
    try:
        assert await owner() == ("rec-a", 1)
        await _publish(probe_nc, streams, frames[:70])  # one segment stored, one left open
        await eventually(lambda: db.fetchval("SELECT count(*) = 1 FROM segments"), timeout_s=20,
                         message="first segment not stored")
        a.send_signal(signal.SIGSTOP)
        frozen_at = time.monotonic()
        await _publish(probe_nc, streams, frames[70:])
        await eventually(lambda: _is(owner(), ("rec-b", 2)), timeout_s=20,
                         message="rec-b did not take the camera of the frozen rec-a")
        assert time.monotonic() - frozen_at < 15, "failover slower than 15 s"
        await eventually(lambda: db.fetchval("SELECT sum(frames) = 200 FROM segments"),
                         timeout_s=30, message="frames lost across the freeze")
        a.send_signal(signal.SIGCONT)  # wakes up holding an open segment it no longer owns
        await asyncio.sleep(4)  # time for a stale write to show, if there were one
        assert await owner() == ("rec-b", 2)
        objects, buckets = store
        assert await _stored_capture_times(db, objects, buckets.recordings, cid) == \
            _expected_ms(frames)
    finally:
        for proc in (a, b):
            proc.send_signal(signal.SIGCONT)
            proc.send_signal(signal.SIGTERM)
        for proc in (a, b):
            proc.wait(timeout=30)
    woke = [json.loads(line) for line in logs["rec-a"].read_text().splitlines()
            if line.startswith("{")]
    assert {"camera_claim_lost", "recorder_fenced"} & {e["event"] for e in woke}, \
        "the frozen replica did not notice it lost the camera"
    assert [e["event"] for e in woke].count("segment_stored") == 1, \
        "the frozen replica stored a segment after waking"


async def _is(value: Any, expected: Any) -> bool:
    return bool(await value == expected)


def _events(names: BusNames, event_type: str) -> list[dict[str, Any]]:
    return [json.loads(d) for s, d in events_seen()
            if s.startswith(names.root + ".") and s.endswith("." + event_type)]


def _upload_failures() -> float:
    return REGISTRY.get_sample_value("vigie_recorder_upload_failures_total",
                                     {"target": "object_storage"}) or 0.0


@pytest.mark.slow
@pytest.mark.parametrize(("fault", "outage_s", "video_max_age_s"),
                         [("killed", 30, 120), ("frozen", 60, 100)])
async def test_storage_outage_of_60_s_backpressure_backlog_event_then_catch_up(
    fault: str, outage_s: int, video_max_age_s: int, run_recorder: Callable[..., Recorder],
    probe_nc: NATS, streams: BusNames, db: asyncpg.Pool, tmp_path: Path,
) -> None:
    # VIDEO keeps more than the outage: it passes 50 % of it (recorder.backlog) and loses nothing.
    # A store that hangs (frozen) gets the full minute and is back on SIGCONT; one that is killed
    # is down 30 s and then restarts, which takes SeaweedFS up to ~20 s more under load before
    # it stores again (CI: frames past a 50-s VIDEO were gone by then) — hence its 120 s.
    await ensure_streams(jetstream(probe_nc), streams,
                         StreamLimits(video_max_age_s=video_max_age_s))
    # SeaweedFS, the object store of production, killed or frozen whole (master, volume, filer
    # and S3 gateway are one process).
    s3 = servers.start_seaweedfs(tmp_path / "s3")
    try:
        objects = ObjectStore(s3.endpoint, s3.access_key, s3.secret_key, timeout_s=2)
        bucket = "outage-recordings"
        await objects.ensure_buckets([bucket])
        cid = await _camera(db, "marche")
        run_recorder(object_store=objects, bucket=bucket, backlog_check_s=1)
        frames = video_frames("marche", 200, start_ns=T0)
        await _publish(probe_nc, streams, frames[:60])
        await eventually(lambda: db.fetchval("SELECT count(*) >= 1 FROM segments"), timeout_s=20)
        failures_before = _upload_failures()
        if fault == "killed":
            s3.process.stop(sig=signal.SIGKILL)
        else:
            s3.process.send_signal(signal.SIGSTOP)  # connections hang
        await _publish(probe_nc, streams, frames[60:])
        outage_started = time.monotonic()
        event = await eventually(lambda: _events(streams, "recorder.storage_unavailable"),
                                 timeout_s=20, message="no recorder.storage_unavailable")
        assert event[0]["target"] == "object_storage"
        stored_during = await db.fetchval("SELECT sum(frames) FROM segments")
        backlog = await eventually(lambda: _events(streams, "recorder.backlog"),
                                   timeout_s=video_max_age_s / 2 + 30,
                                   message="no recorder.backlog past 50 % of VIDEO's max age")
        assert backlog[0]["camera"] == "marche" and backlog[0]["age_fraction"] >= 0.5
        assert backlog[0]["pending_messages"] > 0
        # Issue 36: a store that refuses everything observes no latency; the failures count.
        assert _upload_failures() > failures_before
        await asyncio.sleep(max(0.0, outage_s - (time.monotonic() - outage_started)))
        info = await jetstream(probe_nc).consumer_info(streams.video_stream,
                                                       "recorder_palaiseau_marche")
        assert info.num_ack_pending > 0, "nothing is acknowledged during the outage"
        assert await db.fetchval("SELECT sum(frames) FROM segments") == stored_during
        if fault == "killed":
            await asyncio.to_thread(s3.restart)
        else:
            s3.process.send_signal(signal.SIGCONT)
        await eventually(lambda: db.fetchval("SELECT sum(frames) = 200 FROM segments"),
                         timeout_s=40, message="did not catch up after the outage")
        assert stored_during < 200
        assert await _stored_capture_times(db, objects, bucket, cid) == _expected_ms(frames)
    finally:
        s3.process.send_signal(signal.SIGCONT)
        s3.process.stop(sig=signal.SIGKILL)  # a throwaway store: its 15-s graceful stop not waited


async def test_nats_server_restart_mid_segment_loses_and_duplicates_nothing(
    db: asyncpg.Pool, store: tuple[ObjectStore, Buckets], tmp_path: Path,
) -> None:
    # File storage: VIDEO and consumers persist.
    server = servers.start_nats(tmp_path / "nats", extra_users=PROBE)
    names = BusNames(unique("t"))
    common = CommonSettings(
        local_mode=True, nats_url=server.url, nats_user=PROBE_USER,
        nats_password=server.passwords[PROBE_USER], bus_root=names.root,
        postgres_dsn="postgresql://x@127.0.0.1/x", s3_endpoint="127.0.0.1:1",
        s3_access_key="unused", s3_secret_key="unused")
    objects, buckets = store
    nc = await connect_nats(common, name="test-recorder-nats-restart")
    stop = asyncio.Event()
    task = None
    try:
        await ensure_streams(jetstream(nc), names, StreamLimits())
        cid = await _camera(db, "mairie")
        recorder = Recorder(js=jetstream(nc), names=names, pool=db, store=objects,
                            bucket=buckets.recordings, settings=RecorderSettings(**SETTINGS))
        task = asyncio.create_task(recorder.run(stop))
        frames = video_frames("mairie", 150, start_ns=T0)
        await _publish(nc, names, frames[:70])  # one segment stored, one open
        await eventually(lambda: db.fetchval("SELECT count(*) = 1 FROM segments"), timeout_s=20,
                         message="first segment not stored")
        await asyncio.to_thread(server.restart)
        await _publish(nc, names, frames[70:])
        await eventually(lambda: db.fetchval("SELECT sum(frames) = 150 FROM segments"),
                         timeout_s=60, message="frames lost across the nats-server restart")
        await asyncio.sleep(3)  # a late redelivery would show up as an extra segment
        assert await _stored_capture_times(db, objects, buckets.recordings, cid) == \
            _expected_ms(frames)
    finally:
        stop.set()
        if task:
            await asyncio.wait_for(task, timeout=30)
        await nc.close()
        server.process.stop()


async def test_postgresql_down_then_back_loses_and_duplicates_nothing(
    run_recorder: Callable[..., Recorder], probe_nc: NATS, streams: BusNames,
    store: tuple[ObjectStore, Buckets], tmp_path: Path,
) -> None:
    pg = servers.start_postgres(tmp_path / "pg")
    conn = await asyncpg.connect(pg.dsn)
    await migrate(conn, schema="public")
    await conn.close()
    pool = await asyncpg.create_pool(pg.dsn, min_size=1, max_size=4)
    assert pool is not None
    objects, buckets = store
    try:
        cid = await _camera(pool, "stade")
        recorder = Recorder(js=jetstream(probe_nc), names=streams, pool=pool, store=objects,
                            bucket=buckets.recordings, settings=RecorderSettings(**SETTINGS))
        stop = asyncio.Event()
        task = asyncio.create_task(recorder.run(stop))
        frames = video_frames("stade", 200, start_ns=T0)
        await _publish(probe_nc, streams, frames[:70])
        await eventually(lambda: pool.fetchval("SELECT count(*) = 1 FROM segments"), timeout_s=20,
                         message="first segment not stored")
        await asyncio.to_thread(pg.process.stop, sig=signal.SIGINT)
        await _publish(probe_nc, streams, frames[70:])
        event = await eventually(
            lambda: [e for e in _events(streams, "recorder.storage_unavailable")
                     if e["target"] == "database"],
            timeout_s=20, message="no recorder.storage_unavailable for the database")
        assert event[0]["camera"] == "stade"
        await asyncio.sleep(3)
        pg.process.start()
        await asyncio.to_thread(pg.process.wait_until, lambda: servers.tcp_answers(pg.port), 60)

        async def all_stored() -> bool:
            with contextlib.suppress(*TRANSIENT_DB_ERRORS):  # the pool's connections died
                return bool(await pool.fetchval("SELECT sum(frames) = 200 FROM segments"))
            return False

        await eventually(all_stored, timeout_s=60,
                         message="did not catch up after PostgreSQL came back")
        stop.set()
        await asyncio.wait_for(task, timeout=30)
        assert await _stored_capture_times(pool, objects, buckets.recordings, cid) == \
            _expected_ms(frames)
    finally:
        await pool.close()
        pg.process.stop(sig=signal.SIGINT)


@pytest.mark.slow
async def test_three_cameras_with_60_s_segments_no_stall_no_redelivery(
    run_recorder: Callable[..., Recorder], probe_nc: NATS, streams: BusNames, db: asyncpg.Pool,
    store: tuple[ObjectStore, Buckets],
) -> None:
    cameras = {slug: await _camera(db, slug) for slug in ("nord", "sud", "est")}
    run_recorder(segment_s=60.0, gap_s=2.0)
    # 150 s of 25 fps video per camera, interleaved as three live cameras would send it.
    per_camera = {slug: video_frames(slug, 3750, start_ns=T0 + i * 7_000_000)
                  for i, slug in enumerate(cameras)}
    interleaved = [f for triple in zip(*per_camera.values()) for f in triple]
    await _publish(probe_nc, streams, interleaved)
    await eventually(lambda: db.fetchval("SELECT sum(frames) = 3 * 3750 FROM segments"),
                     timeout_s=120, message="a camera stalled")
    objects, buckets = store
    js = jetstream(probe_nc)
    for slug, cid in cameras.items():
        rows = await db.fetch("SELECT start_time, end_time FROM segments WHERE camera_id = $1 "
                              "ORDER BY start_time", cid)
        lengths = [(r["end_time"] - r["start_time"]).total_seconds() for r in rows]
        assert lengths[:2] == [60.0, 60.0] and 29 < lengths[2] <= 30.1, lengths
        assert await _stored_capture_times(db, objects, buckets.recordings, cid) == \
            _expected_ms(per_camera[slug])
        info = await js.consumer_info(streams.video_stream, f"recorder_palaiseau_{slug}")
        assert info.num_redelivered == 0, f"{slug}: redelivery storm"
        assert info.num_ack_pending == 0 and info.num_pending == 0


async def test_a_frame_the_muxer_refuses_is_set_aside_and_recording_goes_on(
    run_recorder: Callable[..., Recorder], probe_nc: NATS, streams: BusNames, db: asyncpg.Pool,
    store: tuple[ObjectStore, Buckets],
) -> None:
    """Issue 17: one frame the muxer cannot write (pts − dts overflow) crash-looped the recorder
    and the camera never recorded again."""
    cid = await _camera(db, "gare")
    run_recorder()
    frames = video_frames("gare", 150, start_ns=T0)
    broken_p, broken_key = 30, 75  # a P-frame; a keyframe (its GOP cannot be decoded without it)
    assert not frames[broken_p].keyframe and frames[broken_key].keyframe
    for i in (broken_p, broken_key):
        frames[i] = frames[i].model_copy(update={"pts": frames[i].dts + 2**62})
    await _publish(probe_nc, streams, frames)
    kept = [f for i, f in enumerate(frames) if i != broken_p and not broken_key <= i < 100]
    objects, buckets = store
    await eventually(lambda: db.fetchval("SELECT sum(frames) = $1 FROM segments", len(kept)),
                     timeout_s=20, message="the recording did not go on past the refused frames")
    assert await _stored_capture_times(db, objects, buckets.recordings, cid) == _expected_ms(kept)
    rejected = [json.loads(d) for s, d in events_seen() if s.startswith(streams.root + ".")
                and s.endswith(".recorder.frame_rejected")]
    assert sorted((e["capture_time_ns"], e["frames"]) for e in rejected) == [
        (frames[broken_p].capture_time_ns, 1), (frames[broken_key].capture_time_ns, 25)]
    info = await jetstream(probe_nc).consumer_info(streams.video_stream, "recorder_palaiseau_gare")
    assert info.num_ack_pending == 0 and info.num_redelivered == 0


async def test_a_lost_video_frame_is_a_gap_in_the_recording_never_a_smeared_picture(
    run_recorder: Callable[..., Recorder], probe_nc: NATS, streams: BusNames, db: asyncpg.Pool,
    store: tuple[ObjectStore, Buckets],
) -> None:
    """Issue 34 (DESIGN.md invariant 2, R17: evidence carries only what the camera sent): one
    VIDEO message lost inside a run of P-frames. Stored, the frames up to the next keyframe would
    decode smeared. The segment ends before the hole, nothing is stored until the keyframe, every
    stored picture is the one the full stream decodes to, and the hole is counted and said."""
    cid = await _camera(db, "halte")
    run_recorder()
    frames = video_frames("halte", 100, start_ns=T0)  # keyframes at 0, 25, 50, 75
    lost = 30
    await _publish(probe_nc, streams, [f for i, f in enumerate(frames) if i != lost])
    objects, buckets = store
    kept = [f for i, f in enumerate(frames) if i < lost or i >= 50]
    await eventually(lambda: db.fetchval("SELECT coalesce(sum(frames), 0) = $1 FROM segments",
                                         len(kept)), timeout_s=20,
                     message="the frames after the keyframe were not stored")
    assert await _stored_capture_times(db, objects, buckets.recordings, cid) == _expected_ms(kept)
    # Every stored picture is the camera's: bit for bit what the complete stream decodes to.
    decoder = av.CodecContext.create("h264", "r")
    decoder.extradata = frames[0].parameter_sets
    truth = {f.capture_time_ns // 1_000_000: picture.to_ndarray()
             for f in frames for picture in decoder.decode(av.Packet(f.data))}
    for row in await db.fetch("SELECT * FROM segments WHERE camera_id = $1 ORDER BY start_time",
                              cid):
        start_ms = int(row["start_time"].timestamp() * 1000)
        with av.open(io.BytesIO(await objects.get(buckets.recordings, row["object_key"]))) as c:
            for picture in c.decode(video=0):
                at = start_ms + round(float(picture.pts * picture.time_base) * 1000)
                assert (picture.to_ndarray() == truth[at]).all(), f"frame at {at} ms smeared"
    ends = await db.fetch("SELECT start_time, end_time FROM segments WHERE camera_id = $1 "
                          "ORDER BY start_time", cid)
    assert (ends[1]["start_time"] - ends[0]["end_time"]).total_seconds() >= 0.7, "a gap, shown"
    lost_events = [json.loads(d) for s, d in events_seen() if s.startswith(streams.root + ".")
                   and s.endswith(".frames.lost")]
    assert [(e["camera"], e["stage"], e["missing"]) for e in lost_events] == [("halte", "video", 1)]


@pytest.mark.parametrize("frames_after_the_cut", [True, False])
async def test_frames_lost_in_flight_when_the_connection_drops_are_fetched_again_not_a_gap(
    frames_after_the_cut: bool, probe_nc: NATS, streams: BusNames, db: asyncpg.Pool,
    store: tuple[ObjectStore, Buckets], nats_server: servers.NatsServer,
    settings_for: Callable[..., CommonSettings],
    service_db: Callable[[str], Awaitable[asyncpg.Pool]],
    service_store: Callable[[str], ObjectStore],
) -> None:
    """Caught in CI (issue 35, a NATS node killed under three replicas): the node carrying the
    recorder's connection died while VIDEO frames were on their way. The server counts them
    delivered; the recorder never got them, saw a hole in masking's sequence and recorded a gap
    up to the next keyframe — though the frames were in VIDEO all along (DESIGN.md invariant 2,
    R17). A delivery the recorder missed (the consumer's delivery count jumps, or it says more are
    pending than the recorder holds once the camera goes quiet) is asked again from the
    acknowledgement floor; only a frame that is not in VIDEO is a gap (the test above)."""
    cid = await _camera(db, "pont")
    frames = video_frames("pont", 100, start_ns=T0)  # keyframes at 0, 25, 50, 75
    cut_at = 30
    marker = str(frames[cut_at].capture_time_ns).encode()  # its Vigie-Capture-Time-Ns header
    objects, buckets = store
    async with ConnectionCutter(nats_server.port, marker) as cutter:
        nc = await connect_nats(settings_for(PROBE_USER, nats_url=cutter.url), name="recorder")
        recorder = Recorder(js=jetstream(nc), names=streams, pool=await service_db("recorder"),
                            store=service_store("recorder"), bucket=buckets.recordings,
                            settings=RecorderSettings(**SETTINGS))
        stop = asyncio.Event()
        task = asyncio.create_task(recorder.run(stop))
        try:
            await _publish(probe_nc, streams, frames[:cut_at])
            await eventually(lambda: recorder.cameras and sum(
                len(r.worker.held()) for r in recorder.cameras.values()) == cut_at,
                timeout_s=20, message="the recorder did not hold the open segment")
            shown = frames if frames_after_the_cut else frames[:cut_at + 1]  # the last one
            await _publish(probe_nc, streams, shown[cut_at:cut_at + 10])
            await asyncio.wait_for(cutter.cut.wait(), timeout=20)
            await _publish(probe_nc, streams, shown[cut_at + 10:])
            await eventually(lambda: db.fetchval(
                "SELECT coalesce(sum(frames), 0) = $1 FROM segments", len(shown)),
                timeout_s=30, message="what was in VIDEO was not all recorded")
        finally:
            stop.set()
            await asyncio.wait_for(task, timeout=30)
            await nc.close()
    assert await _stored_capture_times(db, objects, buckets.recordings, cid) == \
        _expected_ms(shown)
    lost_events = [json.loads(d) for s, d in events_seen() if s.startswith(streams.root + ".")
                   and s.endswith(".frames.lost")]
    assert lost_events == [], "frames that were in VIDEO were announced lost"
