"""Ingest benchmark: CPU per camera for 1080p 25 fps H.264 passthrough, and reception → RAW
publish latency, against the ffmpeg CLI copying the same RTSP stream (`-c copy -f null`).

    .venv/bin/python -m bench.ingest [--cameras 4] [--seconds 20]

Real servers on loopback: nats-server, PostgreSQL, GStreamer's RTSP server looping the 1080p clip.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import time
from pathlib import Path

import asyncpg
from vigie.local import servers
from vigie.plumbing.bus.connection import connect_nats, jetstream
from vigie.plumbing.bus.streams import StreamLimits, ensure_streams
from vigie.plumbing.bus.subjects import BusNames

from bench.common import (
    FOOTAGE,
    bench_settings,
    cpu_self_s,
    percentile,
    run_in_scratch,
    seed_bench_cameras,
    timed_child,
)
from services.ingest.handlers import Ingest
from services.ingest.settings import IngestSettings

CLIP = FOOTAGE / "town-centre-pedestrians-shopfronts-1920x1080.mp4"


async def run(cameras: int, seconds: float, folder: Path) -> None:
    nats = servers.start_nats(folder / "nats", extra_users=servers.PROBE)
    pg = servers.start_postgres(folder / "pg")
    rtsp = servers.start_rtsp_cameras(
        folder / "rtsp", clips=[servers.ClipMount(f"c{i}", CLIP, "h264") for i in range(cameras)])
    try:
        common = bench_settings(nats.url, nats.passwords[servers.PROBE_USER], pg.dsn)
        nc = await connect_nats(common, name="bench")
        names = BusNames("bench")
        await ensure_streams(jetstream(nc), names, StreamLimits())
        await seed_bench_cameras(pg.dsn, {f"c{i}": rtsp.url(f"c{i}") for i in range(cameras)})
        pool = await asyncpg.create_pool(pg.dsn, min_size=1, max_size=4)
        latencies: list[float] = []

        async def on_raw(msg) -> None:  # type: ignore[no-untyped-def]
            latencies.append((time.time_ns() - int(msg.headers["Vigie-Capture-Time-Ns"])) / 1e6)

        await nc.subscribe(names.all_raw, cb=on_raw)
        ingest = Ingest(js=jetstream(nc), names=names, pool=pool, settings=IngestSettings())
        stop = asyncio.Event()
        task = asyncio.create_task(ingest.run(stop))
        await asyncio.sleep(5)  # warm up: connect, first keyframes
        latencies.clear()
        frames0 = sum(r.worker.status.frames for r in ingest.cameras.values())
        cpu0, t0 = cpu_self_s(), time.monotonic()
        await asyncio.sleep(seconds)
        cpu, wall = cpu_self_s() - cpu0, time.monotonic() - t0
        frames = sum(r.worker.status.frames for r in ingest.cameras.values()) - frames0
        stop.set()
        await task
        await pool.close()
        await nc.close()

        ffmpeg = shutil.which("ffmpeg")
        base_wall, base_cpu = timed_child(
            [ffmpeg or "ffmpeg", "-v", "error", "-rtsp_transport", "tcp", "-i", rtsp.url("c0"),
             "-map", "0:v", "-c", "copy", "-t", str(seconds), "-f", "null", "-"], seconds + 30)
        vigie_pct = 100 * cpu / wall / cameras
        ffmpeg_pct = 100 * base_cpu / base_wall
        print(f"cameras: {cameras} × 1920x1080 H.264 25 fps (looping {CLIP.name}), {seconds:.0f} s")
        print(f"frames published: {frames} ({frames / wall / cameras:.1f} fps per camera)")
        print(f"vigie ingest CPU per camera: {vigie_pct:.2f} % of a core (target ≤ 2 %; includes "
              "the in-process latency subscriber)")
        print(f"ffmpeg -c copy CPU for one camera: {ffmpeg_pct:.2f} % of a core")
        print(f"ratio vigie/ffmpeg CPU: {vigie_pct / ffmpeg_pct:.2f}")
        print(f"reception → RAW delivery latency: p50 {percentile(latencies, 50):.2f} ms, "
              f"p95 {percentile(latencies, 95):.2f} ms ({len(latencies)} frames)")
        print(f"ingest_cpu_pct_per_camera {vigie_pct:.2f}")
    finally:
        rtsp.process.stop()
        pg.process.stop()
        nats.process.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--cameras", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=20)
    args = ap.parse_args()
    run_in_scratch(lambda folder: run(args.cameras, args.seconds, folder))


if __name__ == "__main__":
    main()
