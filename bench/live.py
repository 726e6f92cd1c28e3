"""Live and playback latency through the whole chain: RTSP cameras → ingest → masking → VIDEO →
viewer gateway → a WebSocket client (fragmented MP4), and recorded segments → playback.

    .venv/bin/python -m bench.live [--cameras 2] [--seconds 20] [--size 640x360] [--playbacks 20]

Real servers on loopback: nats-server, PostgreSQL, rclone's S3, GStreamer RTSP test patterns.
Ingest, one masking worker, the recorder and the gateway run in this process (2 cores in all).
Live latency: the fragment's arrival at the client minus the frame's capture time (stamped by ingest
at reception; the init message maps media time 0 to a capture time, each fragment's tfdt gives the
rest). Playback first frame: opening a view with its reason, fetching the segment of a random
recorded time and decoding its first picture, as a browser would before showing anything.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import random
import struct
import time
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import av
import httpx
import websockets
from vigie.local import servers
from vigie.plumbing.bus.connection import connect_nats, jetstream
from vigie.plumbing.bus.streams import StreamLimits, ensure_streams
from vigie.plumbing.bus.subjects import BusNames
from vigie.plumbing.http import HttpServer
from vigie.plumbing.storage.objects import Buckets, ObjectStore
from vigie.security.accounts import create_user
from vigie.service import Runtime

from bench.common import bench_settings, percentile, run_in_scratch, seed_bench_cameras
from bench.masking_latency import MASKS
from services.ingest.handlers import Ingest
from services.ingest.settings import IngestSettings
from services.masking.handlers import MaskingWorker
from services.masking.settings import MaskingSettings
from services.recorder.handlers import Recorder
from services.recorder.settings import RecorderSettings
from services.viewer_gateway.api import create_app
from services.viewer_gateway.auth import COOKIE
from services.viewer_gateway.settings import ViewerGatewaySettings

PASSWORD = "bench password 1234"


def tfdt(fragment: bytes) -> int | None:
    """baseMediaDecodeTime of the fragment's first track fragment (ISO BMFF `tfdt` box)."""
    at = fragment.find(b"tfdt")
    if at < 0:
        return None
    version = fragment[at + 4]
    if version == 1:
        return int(struct.unpack(">Q", fragment[at + 8:at + 16])[0])
    return int(struct.unpack(">I", fragment[at + 8:at + 12])[0])


async def watch(url: str, token: str, path: str, seconds: float, latencies: list[float]) -> int:
    fragments = 0
    async with websockets.connect(url + path, additional_headers={"Cookie": f"{COOKIE}={token}"},
                                  max_size=None) as socket:
        start_ns = None
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            message = await socket.recv()
            now = time.time_ns()
            if isinstance(message, str):
                info = json.loads(message)
                if info.get("type") == "init":
                    start_ns = info["capture_time_ns"]
                continue
            decode_time = tfdt(message)
            if start_ns is None or decode_time is None:
                continue
            fragments += 1
            latencies.append((now - (start_ns + decode_time * 1_000_000_000 // 90_000)) / 1e6)
    return fragments


async def run(cameras: int, seconds: float, width: int, height: int, playbacks: int,
              folder: Path) -> None:
    nats = servers.start_nats(folder / "nats", extra_users=servers.PROBE)
    pg = servers.start_postgres(folder / "pg")
    s3 = servers.start_rclone_s3(folder / "s3")
    rtsp = servers.start_rtsp_cameras(folder / "rtsp", patterns=[
        servers.PatternMount(f"c{i}", width, height, 25, marker=True) for i in range(cameras)])
    try:
        common = bench_settings(nats.url, nats.passwords[servers.PROBE_USER], pg.dsn)
        common = common.model_copy(update={"register_key": "bench-register-key"})
        nc = await connect_nats(common, name="bench")
        js = jetstream(nc)
        names = BusNames("bench")
        await ensure_streams(js, names, StreamLimits())
        await seed_bench_cameras(pg.dsn, {f"c{i}": rtsp.url(f"c{i}") for i in range(cameras)},
                                 masks=MASKS)
        pool = await asyncpg.create_pool(pg.dsn, min_size=2, max_size=10)
        always = {d: [["00:00", "24:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat",
                                                    "sun")}
        await pool.execute("UPDATE communes SET police_hours = $1::jsonb", json.dumps(always))
        await pool.execute("UPDATE cameras SET state = 'active'")
        await create_user(pool, username="agent", full_name="Agent", password=PASSWORD,
                          roles=["operator"], communes=["b"], designated_by="bench")
        store = ObjectStore(s3.endpoint, s3.access_key, s3.secret_key)
        buckets = Buckets.with_prefix("bench")
        await store.ensure_buckets(buckets.all(), object_lock=buckets.locked())
        stop = asyncio.Event()
        ingest = Ingest(js=js, names=names, pool=pool, settings=IngestSettings())
        worker = MaskingWorker(nc=nc, js=js, names=names, pool=pool,
                               settings=MaskingSettings(workers=1))
        recorder = Recorder(js=js, names=names, pool=pool, store=store,
                            bucket=buckets.recordings,
                            settings=RecorderSettings(segment_s=10, quiet_flush_s=3.0))
        rt = Runtime(service="viewer-gateway", common=common, names=names, stop=stop, nc=nc,
                     js=js, pool=pool, store=store, buckets=buckets)
        server = HttpServer(create_app(rt, ViewerGatewaySettings(http_port=0)),
                            host="127.0.0.1", port=0)
        await server.start()
        tasks = [asyncio.create_task(t.run(stop)) for t in (ingest, worker, recorder)]
        await asyncio.sleep(6)
        base = f"http://127.0.0.1:{server.port}"
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            signed = await client.post("/api/session", json={"username": "agent",
                                                             "password": PASSWORD})
            token = signed.cookies[COOKIE]
            latencies: list[float] = []
            counts = await asyncio.gather(*(
                watch(base.replace("http", "ws"), token, f"/api/cameras/b/c{i}/live", seconds,
                      latencies) for i in range(cameras)))
            await asyncio.sleep(12)  # let the recorder close a few 10-s segments
            rows = await pool.fetch("SELECT c.slug, s.start_time, s.end_time FROM segments s "
                                    "JOIN cameras c ON c.id = s.camera_id")
            first_frame: list[float] = []
            for _ in range(playbacks if rows else 0):
                row = random.choice(rows)
                at = row["start_time"] + (row["end_time"] - row["start_time"]) * random.random()
                t0 = time.monotonic()
                opened = await client.post(f"/api/cameras/b/{row['slug']}/playback", json={
                    "category": "other", "reason": "bench", "at": at.isoformat()})
                media = await client.get(opened.json()["media"], params={"at": at.isoformat()})
                with av.open(io.BytesIO(media.content)) as container:
                    next(container.decode(video=0))
                first_frame.append((time.monotonic() - t0) * 1000)
                await client.post(opened.json()["media"].rsplit("/", 1)[0] + "/end")
        stop.set()
        await asyncio.gather(*tasks)
        await server.stop()
        await pool.close()
        await nc.close()
        print(f"load: {cameras} RTSP cameras {width}x{height} 25 fps (test pattern with marker), "
              "2 polygons each, ingest + 1 masking worker + recorder + gateway in one process, "
              f"one WebSocket viewer per camera, {seconds:.0f} s, "
              f"{datetime.now(UTC):%Y-%m-%d}")
        print(f"fragments received: {sum(counts)} ({sum(counts) / seconds / cameras:.1f} per "
              "second per camera)")
        print(f"capture → fragment at the client: p50 {percentile(latencies, 50):.0f} ms, "
              f"p95 {percentile(latencies, 95):.0f} ms, p99 {percentile(latencies, 99):.0f} ms "
              "(target p95 < 400 ms)")
        if first_frame:
            print(f"playback first frame ({len(first_frame)} random recorded times): p50 "
                  f"{percentile(first_frame, 50):.0f} ms, p95 {percentile(first_frame, 95):.0f} ms "
                  "(target < 300 ms)")
        print(f"live_p95_ms {percentile(latencies, 95):.0f}")
    finally:
        rtsp.process.stop()
        s3.process.stop()
        pg.process.stop()
        nats.process.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--cameras", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--size", default="640x360")
    ap.add_argument("--playbacks", type=int, default=20)
    args = ap.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    run_in_scratch(lambda folder: run(args.cameras, args.seconds, width, height, args.playbacks, folder))


if __name__ == "__main__":
    main()
