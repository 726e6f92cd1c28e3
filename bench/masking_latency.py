"""Camera → VIDEO latency of masking: ingest and one masking worker in this process, real
nats-server, PostgreSQL and RTSP cameras; latency is VIDEO arrival minus the capture time stamped
by ingest at reception (so RTSP transport before ingest is not counted).

    .venv/bin/python -m bench.masking_latency [--cameras 2] [--seconds 20] [--size 640x360]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path

import asyncpg
from vigie.local import servers
from vigie.plumbing.bus.connection import connect_nats, jetstream
from vigie.plumbing.bus.streams import StreamLimits, ensure_streams
from vigie.plumbing.bus.subjects import BusNames

from bench.common import bench_settings, cpu_self_s, percentile, run_in_scratch, seed_bench_cameras
from services.ingest.handlers import Ingest
from services.ingest.settings import IngestSettings
from services.masking.handlers import MaskingWorker
from services.masking.settings import MaskingSettings

MASKS = [{"mode": "fill", "points": [[0.1, 0.1], [0.4, 0.1], [0.4, 0.4], [0.1, 0.4]]},
         {"mode": "blur", "points": [[0.6, 0.5], [0.9, 0.5], [0.9, 0.9], [0.6, 0.9]]}]


async def run(cameras: int, seconds: float, width: int, height: int, folder: Path) -> None:
    nats = servers.start_nats(folder / "nats", extra_users=servers.PROBE)
    pg = servers.start_postgres(folder / "pg")
    rtsp = servers.start_rtsp_cameras(folder / "rtsp", patterns=[
        servers.PatternMount(f"c{i}", width, height, 25, marker=True) for i in range(cameras)])
    try:
        common = bench_settings(nats.url, nats.passwords[servers.PROBE_USER], pg.dsn)
        nc = await connect_nats(common, name="bench")
        js = jetstream(nc)
        names = BusNames("bench")
        await ensure_streams(js, names, StreamLimits())
        await seed_bench_cameras(pg.dsn, {f"c{i}": rtsp.url(f"c{i}") for i in range(cameras)},
                                 masks=MASKS)
        pool = await asyncpg.create_pool(pg.dsn, min_size=1, max_size=6)
        latencies: list[float] = []

        async def on_video(msg) -> None:  # type: ignore[no-untyped-def]
            latencies.append((time.time_ns() - int(msg.headers["Vigie-Capture-Time-Ns"])) / 1e6)

        await nc.subscribe(names.all_video, cb=on_video)
        stop = asyncio.Event()
        ingest = Ingest(js=js, names=names, pool=pool, settings=IngestSettings())
        worker = MaskingWorker(nc=nc, js=js, names=names, pool=pool,
                               settings=MaskingSettings(workers=1))
        tasks = [asyncio.create_task(ingest.run(stop)), asyncio.create_task(worker.run(stop))]
        await asyncio.sleep(6)
        latencies.clear()
        cpu0, t0 = cpu_self_s(), time.monotonic()
        await asyncio.sleep(seconds)
        cpu, wall = cpu_self_s() - cpu0, time.monotonic() - t0
        stop.set()
        await asyncio.gather(*tasks)
        await pool.close()
        await nc.close()
        print(f"load: {cameras} cameras {width}x{height} 25 fps, 2 polygons each, ingest + masking "
              f"in one process on this {len(__import__('os').sched_getaffinity(0))}-core machine")
        print(f"VIDEO frames: {len(latencies)} ({len(latencies) / wall / cameras:.1f} fps per camera)")
        print(f"CPU: {100 * cpu / wall:.0f} % of a core for all cameras")
        print(f"capture → VIDEO latency: p50 {percentile(latencies, 50):.1f} ms, "
              f"p95 {percentile(latencies, 95):.1f} ms, p99 {percentile(latencies, 99):.1f} ms")
    finally:
        rtsp.process.stop()
        pg.process.stop()
        nats.process.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--cameras", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--size", default="640x360")
    args = ap.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    run_in_scratch(lambda folder: run(args.cameras, args.seconds, width, height, folder))


if __name__ == "__main__":
    main()
