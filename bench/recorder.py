"""Recorder benchmark: how many 1080p 25 fps cameras one core records (VIDEO → segmenter → fMP4 →
S3 → Postgres → ack), and segment upload latency, against the ffmpeg CLI cutting the same H.264 into
the same fragmented-MP4 segments on local disk (`-c copy -f segment`: no bus, no upload, no database).

    .venv/bin/python -m bench.recorder [--cameras 4] [--seconds 120] [--segment 60]
    (or: make bench-recorder)

Real servers on loopback: nats-server (VIDEO on disk), PostgreSQL, rclone's S3 (not MinIO: the upload
latency is rclone's). The input is the street clip re-encoded at a camera's 1080p bitrate (4 Mbit/s,
one keyframe a second). VIDEO is filled first, then the recorder drains it: recorded frames per
CPU-second of the recorder's process, divided by 25, is cameras per core.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import time
from fractions import Fraction
from pathlib import Path

import asyncpg
import av
from vigie.local import servers
from vigie.media.bitstream import parameter_sets
from vigie.plumbing.bus.connection import connect_nats, jetstream
from vigie.plumbing.bus.frames import Frame, publish_frame
from vigie.plumbing.bus.streams import StreamLimits, ensure_streams
from vigie.plumbing.bus.subjects import BusNames
from vigie.plumbing.storage.objects import ObjectStore

from bench.common import (
    FOOTAGE,
    bench_settings,
    cpu_self_s,
    percentile,
    record_cost,
    run_in_scratch,
    seed_bench_cameras,
    timed_child,
    wait_until,
)
from services.recorder.handlers import Recorder
from services.recorder.settings import RecorderSettings

CLIP = FOOTAGE / "town-centre-pedestrians-shopfronts-1920x1080.mp4"
FRAME_NS = 40_000_000


def make_input(folder: Path, seconds: float) -> Path:
    """The clip looped to `seconds`, as a camera would send it: Annex B, 4 Mbit/s, GOP 25, no B."""
    out = folder / "camera-1080p.h264"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-stream_loop", "-1", "-i", str(CLIP), "-t", str(seconds),
         "-an", "-r", "25", "-c:v", "libx264", "-preset", "ultrafast", "-b:v", "4M",
         "-maxrate", "4M", "-bufsize", "8M", "-g", "25", "-bf", "0", "-f", "h264", str(out)],
        check=True)
    return out


def read_frames(path: Path) -> list[tuple[bytes, bool]]:
    with av.open(str(path), format="h264") as container:
        return [(bytes(p), bool(p.is_keyframe)) for p in container.demux(video=0) if p.size]


class TimedStore(ObjectStore):
    """The real ObjectStore, timing each upload."""

    uploads: list[float]

    async def put(self, *args, **kwargs):  # type: ignore[no-untyped-def,override]
        t0 = time.monotonic()
        etag = await super().put(*args, **kwargs)
        self.uploads.append(time.monotonic() - t0)
        return etag


async def fill_video(nc, names: BusNames, cameras: int,  # type: ignore[no-untyped-def]
                     packets: list[tuple[bytes, bool]]) -> int:
    js = jetstream(nc)
    start = (time.time_ns() // 10**9 - 3600) * 10**9
    count = 0
    for i, (data, key) in enumerate(packets):
        for c in range(cameras):
            frame = Frame(commune="b", camera=f"c{c}", codec="h264", width=1920, height=1080,
                          pts=i * 3600, dts=i * 3600, time_base=Fraction(1, 90000), keyframe=key,
                          capture_time_ns=start + i * FRAME_NS, session="bench", seq=i,
                          mask_version=1, parameter_sets=parameter_sets(data) if key else None,
                          data=data)
            await publish_frame(js, names, frame, stage="video")
            count += 1
    return count


async def run(cameras: int, seconds: float, segment_s: float, folder: Path,
              record: bool = False) -> None:
    source = make_input(folder, seconds)
    packets = read_frames(source)
    nats = servers.start_nats(folder / "nats", extra_users=servers.PROBE)
    pg = servers.start_postgres(folder / "pg")
    s3 = servers.start_rclone_s3(folder / "s3")
    try:
        common = bench_settings(nats.url, nats.passwords[servers.PROBE_USER], pg.dsn)
        nc = await connect_nats(common, name="bench")
        names = BusNames("bench")
        await ensure_streams(jetstream(nc), names, StreamLimits())
        await seed_bench_cameras(pg.dsn, {f"c{i}": f"rtsp://unused/{i}" for i in range(cameras)})
        total = await fill_video(nc, names, cameras, packets)
        store = TimedStore(s3.endpoint, s3.access_key, s3.secret_key)
        store.uploads = []
        await store.ensure_buckets(["recordings"])
        pool = await asyncpg.create_pool(pg.dsn, min_size=1, max_size=4)
        recorder = Recorder(js=jetstream(nc), names=names, pool=pool, store=store,
                            bucket="recordings",
                            settings=RecorderSettings(segment_s=segment_s, gap_s=2.0,
                                                           quiet_flush_s=3.0))
        stop = asyncio.Event()
        cpu0, t0 = cpu_self_s(), time.monotonic()
        task = asyncio.create_task(recorder.run(stop))
        await wait_until(lambda: pool.fetchval(
            "SELECT coalesce(sum(frames), 0) = $1 FROM segments", total), timeout_s=600,
            what="the recorder did not drain VIDEO")
        cpu, wall = cpu_self_s() - cpu0, time.monotonic() - t0
        stop.set()
        await task
        segments = await pool.fetchval("SELECT count(*) FROM segments")
        size = await pool.fetchval("SELECT sum(size_bytes) FROM segments")
        await pool.close()
        await nc.close()

        out = folder / "ffmpeg-segments"
        out.mkdir()
        base_wall, base_cpu = timed_child(
            ["ffmpeg", "-v", "error", "-stream_loop", str(cameras - 1), "-f", "h264",
             "-framerate", "25", "-i", str(source), "-c", "copy", "-f", "segment",
             "-segment_time", str(segment_s), "-segment_format", "mp4", "-segment_format_options",
             "movflags=frag_keyframe+empty_moov+default_base_moof", str(out / "s%04d.mp4")], 600)
        vigie_cams = total / cpu / 25
        ffmpeg_cams = total / base_cpu / 25
        print(f"input: {CLIP.name} re-encoded 1920x1080 25 fps 4 Mbit/s GOP 25, {seconds:.0f} s "
              f"× {cameras} cameras = {total} frames, {segment_s:.0f} s segments")
        print(f"vigie recorder: {segments} segments, {size / 2**20:.0f} MiB in {wall:.1f} s wall, "
              f"{cpu:.1f} s CPU → {vigie_cams:.1f} cameras at 25 fps per core")
        print(f"ffmpeg -c copy -f segment (local disk only): {base_cpu:.2f} s CPU "
              f"({base_wall:.1f} s wall) → {ffmpeg_cams:.0f} cameras per core")
        print(f"ratio vigie/ffmpeg CPU per frame: {ffmpeg_cams / vigie_cams:.1f}")
        print(f"segment upload latency (rclone S3, {len(store.uploads)} uploads of "
              f"≈{size / segments / 2**20:.0f} MiB): p50 {percentile(store.uploads, 50) * 1000:.0f} ms,"
              f" p95 {percentile(store.uploads, 95) * 1000:.0f} ms")
        print(f"recorder_cameras_per_core {vigie_cams:.1f}")
        if record:
            record_cost(["recorder_cameras_per_core_25fps"], vigie_cams,
                        "bench.recorder (VIDEO to 60-s segments to S3, 1080p25 4 Mbit/s)")
    finally:
        s3.process.stop()
        pg.process.stop()
        nats.process.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--cameras", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=120)
    ap.add_argument("--segment", type=float, default=60)
    ap.add_argument("--record", action="store_true",
                    help="write cameras per core into libs/vigie/operations/sizing/costs.json")
    args = ap.parse_args()
    if not shutil.which("ffmpeg"):
        raise SystemExit("ffmpeg is needed (make setup installs it)")
    run_in_scratch(lambda folder: run(args.cameras, args.seconds, args.segment, folder,
                                      args.record))


if __name__ == "__main__":
    main()
