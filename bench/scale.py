"""Scale-out load: many cameras, replicas of ingest, masking and recorder, one replica of each
killed with SIGKILL half-way (issue 19).

    .venv/bin/python -m bench.scale [--cameras 45] [--masked 3] [--replicas 2] [--minutes 10]

Real servers on loopback (nats-server, PostgreSQL, rclone's S3, GStreamer's RTSP server serving the
clips without re-encoding); each service replica is its own process (`vigie service …`, as in
production). Most cameras are the 1080p clip with an approved empty mask document (passed
through); `--masked` of them are the 640×360 clip with one mask (decoded, masked, encoded). At the
end ingest is stopped, the recorders drain, and every frame in VIDEO is compared with what the
segments hold, demuxed: frames in, frames stored, losses after VIDEO (must be 0), and CPU per
camera per service, beside ffmpeg's `-c copy` of one camera in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import asyncpg
import av
from vigie.local import servers
from vigie.plumbing.bus.connection import connect_nats, jetstream
from vigie.plumbing.bus.streams import StreamLimits, ensure_streams
from vigie.plumbing.bus.subjects import BusNames
from vigie.plumbing.storage.objects import ObjectStore

from bench.common import (
    FOOTAGE,
    VideoHeader,
    bench_settings,
    run_in_scratch,
    seed_bench_cameras,
    timed_child,
    video_frames_to_store,
    video_headers,
    wait_until,
)

FULL_HD = FOOTAGE / "town-centre-pedestrians-shopfronts-1920x1080.mp4"
SMALL = FOOTAGE / "shopfront-door-cctv-timestamp-640x360.mp4"
SCALED = ("ingest", "masking", "recorder")
TICK = os.sysconf("SC_CLK_TCK")


def cpu_of_tree(pid: int) -> float:
    """CPU seconds of a process and its children (masking's workers)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(stat.parent.name) == pid or int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / TICK
    return total


async def run(args: argparse.Namespace, folder: Path) -> None:
    # lifeline: the servers die with the benchmark, however it ends (a timeout's SIGKILL too).
    nats_server = servers.start_nats(folder / "nats", lifeline=True, extra_users=servers.PROBE)
    pg = servers.start_postgres(folder / "pg", lifeline=True)
    s3 = servers.start_rclone_s3(folder / "s3", lifeline=True)
    plain = args.cameras - args.masked
    mounts = [servers.ClipMount(f"c{i}", FULL_HD, "h264") for i in range(plain)] + \
        [servers.ClipMount(f"m{i}", SMALL, "h264") for i in range(args.masked)]
    rtsp = servers.start_rtsp_cameras(folder / "rtsp", clips=mounts, lifeline=True)
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        common = bench_settings(nats_server.url, nats_server.passwords[servers.PROBE_USER], pg.dsn)
        nc = await connect_nats(common, name="bench")
        names = BusNames("bench")
        await ensure_streams(jetstream(nc), names, StreamLimits())
        await seed_bench_cameras(pg.dsn, {m.mount: rtsp.url(m.mount) for m in mounts[:plain]},
                                 masks=[])
        await seed_bench_cameras(pg.dsn, {m.mount: rtsp.url(m.mount) for m in mounts[plain:]},
                                 masks=[{"label": "porte", "points": [[0.1, 0.1], [0.4, 0.1],
                                                                      [0.4, 0.6], [0.1, 0.6]]}])
        store = ObjectStore(s3.endpoint, s3.access_key, s3.secret_key)
        await store.ensure_buckets(["recordings"])
        env = {**os.environ, "VIGIE_LOCAL_MODE": "true", "VIGIE_NATS_URL": nats_server.url,
               "VIGIE_NATS_USER": servers.PROBE_USER,
               "VIGIE_NATS_PASSWORD": nats_server.passwords[servers.PROBE_USER],
               "VIGIE_BUS_ROOT": "bench", "VIGIE_POSTGRES_DSN": pg.dsn,
               "VIGIE_S3_ENDPOINT": s3.endpoint, "VIGIE_S3_ACCESS_KEY": s3.access_key,
               "VIGIE_S3_SECRET_KEY": s3.secret_key, "VIGIE_LOG_LEVEL": "warning",
               "VIGIE_MASKING_WORKERS": "1", "VIGIE_RECORDER_QUIET_FLUSH_S": "5"}
        logs = folder / "logs"
        logs.mkdir()
        for service in SCALED:
            for k in range(1, args.replicas + 1):
                procs[f"{service}-{k}"] = _spawn(service, f"{service}-{k}", env, logs)
        pool = await asyncpg.create_pool(pg.dsn, min_size=1, max_size=2)
        await wait_until(lambda: pool.fetchval(
            "SELECT count(DISTINCT camera_id) = $1 FROM segments", args.cameras),
            timeout_s=180, what="not every camera recorded")
        seconds = args.minutes * 60
        cpu0 = {n: cpu_of_tree(p.pid) for n, p in procs.items()}
        t0 = time.monotonic()
        await asyncio.sleep(seconds / 2)
        half = {n: cpu_of_tree(p.pid) for n, p in procs.items()}
        killed = [f"{s}-1" for s in SCALED]
        for name in killed:
            procs[name].send_signal(signal.SIGKILL)
        await asyncio.sleep(seconds / 2)
        wall = time.monotonic() - t0
        cpu1 = {n: cpu_of_tree(p.pid) if n not in killed else half[n] for n, p in procs.items()}
        owners = await pool.fetch(
            "SELECT service, owner, count(*) AS n FROM camera_owners GROUP BY 1, 2 ORDER BY 1, 2")
        # The load figures first (the comparison below reads every frame's headers and demuxes
        # every segment: minutes).
        print(f"cameras: {args.cameras} ({plain} × 1920x1080 passed through, {args.masked} × "
              f"640x360 masked), {args.replicas} replicas of each of ingest, masking, recorder, "
              f"{wall / 60:.1f} min; {', '.join(killed)} killed (SIGKILL) half-way", flush=True)
        for service in SCALED:
            used = sum(cpu1[n] - cpu0[n] for n in procs if n.startswith(service + "-"))
            print(f"{service}: {100 * used / wall / args.cameras:.2f} % of a core per camera "
                  f"(all replicas, before and after the kill)", flush=True)
        print("owners at the end: " + ", ".join(f"{r['owner']} {r['n']}" for r in owners),
              flush=True)

        for k in range(1, args.replicas + 1):  # ingest stops: VIDEO ends, the recorders drain
            if f"ingest-{k}" not in killed:
                procs[f"ingest-{k}"].send_signal(signal.SIGTERM)
        await asyncio.sleep(15)
        print("reading VIDEO's headers…", flush=True)
        video = await video_headers(nc, names)
        print(f"… {sum(len(v) for v in video.values())} frames; demuxing the segments…",
              flush=True)
        total_video = sum(len(v) for v in video.values())
        await wait_until(lambda: _drained(pool, video), timeout_s=120,
                         what="the recorders did not drain VIDEO")
        lost, stored_total = await _compare(pool, store, video)
        raw_in = (await jetstream(nc).stream_info(names.raw_stream)).state.last_seq
        await pool.close()
        await nc.close()

        ffmpeg = shutil.which("ffmpeg") or "ffmpeg"
        base_wall, base_cpu = timed_child(
            [ffmpeg, "-v", "error", "-rtsp_transport", "tcp", "-i", rtsp.url("c0"), "-map",
             "0:v", "-c", "copy", "-t", "20", "-f", "null", "-"], 60)
        ffmpeg_pct = 100 * base_cpu / base_wall
        print(f"frames in (RAW): {raw_in}; frames in VIDEO: {total_video}; stored: {stored_total}")
        print(f"frames that reached VIDEO and were not stored: {lost} (must be 0)")
        print(f"ffmpeg -c copy of one 1080p camera: {ffmpeg_pct:.2f} % of a core")
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        rtsp.process.stop()
        s3.process.stop()
        pg.process.stop()
        nats_server.process.stop()


def _spawn(service: str, name: str, env: dict[str, str], logs: Path) -> subprocess.Popen[bytes]:
    """One replica, as production runs it."""
    return subprocess.Popen(
        [sys.executable, "-m", "vigie.cli.main", "service", service],
        env={**env, "VIGIE_REPLICA": name, f"VIGIE_{service.upper()}_HTTP_PORT": "0"},
        stdout=(logs / f"{name}.log").open("wb"), stderr=subprocess.STDOUT)


async def _drained(pool: asyncpg.Pool, video: dict[str, list[VideoHeader]]) -> bool:
    """Every camera's last VIDEO frame is inside a stored segment (or nothing more will come)."""
    rows = await pool.fetch("SELECT c.commune || '/' || c.slug AS camera, max(s.end_time) AS end "
                            "FROM segments s JOIN cameras c ON c.id = s.camera_id GROUP BY 1")
    ends = {r["camera"]: r["end"].timestamp() * 1e9 for r in rows}
    return all(ends.get(cam, 0) >= frames[-1][0] for cam, frames in video.items() if frames)


async def _compare(pool: asyncpg.Pool, store: ObjectStore,
                   video: dict[str, list[VideoHeader]]) -> tuple[int, int]:
    """(VIDEO frames that should be stored and are not, frames stored)."""
    rows = await pool.fetch("SELECT c.commune || '/' || c.slug AS camera, s.* FROM segments s "
                            "JOIN cameras c ON c.id = s.camera_id ORDER BY c.id, s.start_time")
    stored: dict[str, list[int]] = defaultdict(list)
    for row in rows:
        data = await store.get("recordings", row["object_key"])
        start_us = int(row["start_time"].timestamp() * 1_000_000)
        with av.open(io.BytesIO(data)) as container:
            packets = [p for p in container.demux(container.streams.video[0]) if p.size]
        stored[row["camera"]] += [start_us + round(float(p.dts * p.time_base) * 1e6)
                                  for p in packets]
    lost = 0
    for camera, frames in video.items():
        times = sorted(stored.get(camera, []))
        if not times:
            lost += len(frames)
            continue
        expected = [t for t in video_frames_to_store(frames) if times[0] - 500 <= t]
        lost += sum(1 for t in expected if not _near(times, t))
    return lost, sum(len(v) for v in stored.values())


def _near(times: list[int], t: int) -> bool:
    import bisect

    i = bisect.bisect_left(times, t - 500)
    return i < len(times) and times[i] <= t + 500


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--cameras", type=int, default=45)
    ap.add_argument("--masked", type=int, default=3)
    ap.add_argument("--replicas", type=int, default=2)
    ap.add_argument("--minutes", type=float, default=10)
    args = ap.parse_args()
    print(json.dumps(vars(args)))
    run_in_scratch(lambda folder: run(args, folder))


if __name__ == "__main__":
    main()
