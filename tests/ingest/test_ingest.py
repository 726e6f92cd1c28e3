"""Ingest against real RTSP cameras, nats-server and PostgreSQL (issue 5)."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable

import asyncpg
import av
import httpx
import nats.errors
import nats.js.errors
import pytest
from nats.aio.client import Client as NATS
from nats.js.api import ConsumerConfig, DeliverPolicy, StorageType
from prometheus_client import REGISTRY
from vigie.local import servers
from vigie.plumbing.bus.connection import jetstream
from vigie.plumbing.bus.frames import Frame
from vigie.plumbing.bus.subjects import BusNames
from vigie.plumbing.settings import CommonSettings

from tests.conftest import events_seen, settings_env
from tests.harness import PROBE_USER, eventually, unique
from tests.ingest.conftest import CAMERA_PASSWORD, IngestHarness

pytestmark = pytest.mark.integration


async def _collect_raw(nc: NATS, names: BusNames, commune: str, camera: str, count: int,
                       timeout_s: float = 20) -> list[Frame]:
    js = jetstream(nc)
    sub = await js.pull_subscribe(names.raw(commune, camera), stream=names.raw_stream)
    frames: list[Frame] = []
    deadline = asyncio.get_running_loop().time() + timeout_s
    while len(frames) < count and asyncio.get_running_loop().time() < deadline:
        try:
            msgs = await sub.fetch(min(100, count - len(frames)), timeout=1)
        except Exception:  # noqa: BLE001 - nats TimeoutError: nothing yet
            continue
        for m in msgs:
            frames.append(Frame.from_message(m.headers, m.data))
            await m.ack()
    await sub.unsubscribe()
    assert len(frames) >= count, f"only {len(frames)} frames in {timeout_s} s"
    return frames


def _events(names: BusNames, kind: str, name: str, camera: str | None = None) -> list[dict]:  # type: ignore[type-arg]
    prefix = f"{names.root}.events."
    out = []
    for subject, data in events_seen():
        if subject.startswith(prefix) and subject.endswith(f".{kind}.{name}"):
            event = json.loads(data)
            if camera is None or event.get("camera") == camera:
                out.append(event)
    return out


async def test_clip_camera_to_raw_in_order_with_parameter_sets_and_no_audio(
    ingest_harness: Callable[..., IngestHarness], cameras: servers.RtspCameras, probe_nc: NATS,
    streams: BusNames,
) -> None:
    h = ingest_harness()
    # "shop" carries AAC audio in its file: only video may come out.
    await h.add_camera("palaiseau", "shop", cameras.url("shop"))
    await h.add_camera("palaiseau", "mire", cameras.url("a"))
    frames = await _collect_raw(probe_nc, streams, "palaiseau", "shop", 90)
    assert [f.seq for f in frames] == list(range(frames[0].seq, frames[0].seq + len(frames)))
    assert all(b.capture_time_ns > a.capture_time_ns for a, b in zip(frames, frames[1:]))
    assert all(b.dts > a.dts for a, b in zip(frames, frames[1:]) if a.dts is not None and b.dts)
    assert {f.codec for f in frames} == {"h264"} and {(f.width, f.height) for f in frames} == {(640, 360)}
    keyframes = [f for f in frames if f.keyframe]
    assert keyframes and all(f.parameter_sets for f in keyframes)
    assert not any(f.parameter_sets for f in frames if not f.keyframe)
    # A decoder fed from RAW at a keyframe (not the first) decodes every frame without error.
    start = next(i for i, f in enumerate(frames) if f.keyframe and i > 0) if len(keyframes) > 1 \
        else frames.index(keyframes[0])
    decoder = av.CodecContext.create("h264", "r")
    decoder.extradata = frames[start].parameter_sets
    decoded = 0
    for f in frames[start:]:
        for picture in decoder.decode(av.Packet(f.data)):
            assert (picture.width, picture.height) == (640, 360)
            decoded += 1
    assert decoded >= len(frames[start:]) - 3  # the decoder's own delay holds back a few

    # The test pattern has no B-frames: pts strictly increase.
    mire = await _collect_raw(probe_nc, streams, "palaiseau", "mire", 30)
    assert all(b.pts > a.pts for a, b in zip(mire, mire[1:]))
    online = await eventually(lambda: _events(streams, "camera", "online", "shop"), timeout_s=5,
                              message="no camera.online event")
    assert online[0]["codec"] == "h264" and online[0]["width"] == 640
    health = await h.db.fetchrow(
        "SELECT online, codec, width, last_frame_at FROM camera_health h "
        "JOIN cameras c ON c.id = h.camera_id WHERE c.slug = 'shop'")
    assert health["online"] and health["codec"] == "h264" and health["last_frame_at"] is not None


async def test_camera_stopped_goes_offline_within_10s_and_comes_back(
    ingest_harness: Callable[..., IngestHarness], tmp_path, probe_nc: NATS, streams: BusNames,  # type: ignore[no-untyped-def]
) -> None:
    own = servers.start_rtsp_cameras(tmp_path / "own", patterns=[servers.PatternMount("p", 320, 240, 25)],
                                     name="own-camera")
    try:
        h = ingest_harness(offline_after_s=3.0)
        await h.add_camera("palaiseau", "gare", own.url("p"))
        await eventually(lambda: h.status("gare").get("online"), timeout_s=15,
                         message="camera never online")
        own.process.stop()
        t0 = asyncio.get_running_loop().time()
        offline = await eventually(lambda: _events(streams, "camera", "offline", "gare"),
                                   timeout_s=10, message="no camera.offline within 10 s")
        assert asyncio.get_running_loop().time() - t0 < 10
        assert offline[0]["reason"] in {"timeout", "ended", "corrupt", "stream_error", "unreachable"}
        assert not (await h.db.fetchval(
            "SELECT online FROM camera_health h JOIN cameras c ON c.id = h.camera_id "
            "WHERE c.slug = 'gare'"))
        frames_before = h.status("gare")["frames"]
        own.process.start()
        await eventually(lambda: len(_events(streams, "camera", "online", "gare")) >= 2,
                         timeout_s=20, message="no camera.online after the restart")
        await eventually(lambda: h.status("gare")["frames"] > frames_before + 25, timeout_s=10,
                         message="frames did not resume")
        assert h.status("gare")["sessions"] >= 2
    finally:
        own.process.stop()


class SilentServer:
    """Accepts RTSP connections and never answers: the camera that never sends."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)

    def close(self) -> None:
        self.sock.close()
        for c in self.conns:
            c.close()


async def test_bad_cameras_get_a_clear_status_and_do_not_delay_the_others(
    ingest_harness: Callable[..., IngestHarness], cameras: servers.RtspCameras,
    locked_cameras: servers.RtspCameras, streams: BusNames,
) -> None:
    wrong_password = "WrongPW-" + unique("")
    silent = SilentServer()
    try:
        h = ingest_harness()
        await h.add_camera("palaiseau", "good", cameras.url("b"))
        await h.add_camera("palaiseau", "unreachable", f"rtsp://127.0.0.1:{servers.free_port()}/x")
        await h.add_camera("palaiseau", "locked", locked_cameras.url("locked", with_credentials=False)
                           .replace("rtsp://", f"rtsp://agent:{wrong_password}@"))
        await h.add_camera("palaiseau", "wrong-path", cameras.url("no-such-mount"))
        await h.add_camera("palaiseau", "silent", f"rtsp://127.0.0.1:{silent.port}/x")
        await eventually(lambda: h.status("good").get("online"), timeout_s=15,
                         message="good camera never online")
        await asyncio.sleep(2)  # let the bad ones fail and retry meanwhile
        f0, t0 = h.status("good")["frames"], asyncio.get_running_loop().time()
        await asyncio.sleep(6)
        fps = (h.status("good")["frames"] - f0) / (asyncio.get_running_loop().time() - t0)
        assert abs(fps - 25) / 25 <= 0.10, f"good camera at {fps:.1f} fps beside failing ones"
        expected = {"unreachable": "unreachable", "locked": "unauthorized",
                    "wrong-path": "not_found", "silent": "timeout"}
        for slug, reason in expected.items():
            await eventually(lambda s=slug, r=reason: h.status(s).get("status") == r, timeout_s=15,
                             message=f"{slug} not reported as {reason}: {h.status(slug)}")
            events = _events(streams, "camera", "offline", slug)
            assert events and events[-1]["reason"] == reason
        # Credentials appear in no log line, event, health row or API answer.
        from fastapi.testclient import TestClient
        from vigie.service import Runtime

        from services.ingest.api import create_app

        rt = Runtime(service="ingest", common=None, names=streams, stop=asyncio.Event())  # type: ignore[arg-type]
        rt.state["ingest"] = h.ingest
        api_text = TestClient(create_app(rt, None)).get("/cameras").text  # type: ignore[arg-type]
        health = json.dumps([dict(r) for r in await h.db.fetch("SELECT * FROM camera_health")],
                            default=str)
        events_text = "".join(d.decode() for _, d in events_seen())
        for text in (h.logs.getvalue(), api_text, health, events_text):
            assert wrong_password not in text
            assert CAMERA_PASSWORD not in text
        assert "locked" in api_text
    finally:
        silent.close()


async def test_cameras_added_disabled_and_edited_without_restart(
    ingest_harness: Callable[..., IngestHarness], cameras: servers.RtspCameras, probe_nc: NATS,
    streams: BusNames,
) -> None:
    h = ingest_harness(poll_interval_s=0.5)
    await eventually(lambda: h.ingest.cameras == {}, timeout_s=2)
    cid = await h.add_camera("ballainvilliers", "ecole", cameras.url("a"), device_id="dev-1",
                             sensor_index=0)
    await h.add_camera("ballainvilliers", "ecole-2", cameras.url("b"), device_id="dev-1",
                       sensor_index=1)
    await eventually(lambda: h.status("ecole").get("online") and h.status("ecole-2").get("online"),
                     timeout_s=15, message="added cameras never online")
    from services.ingest.api import device_health
    assert device_health(h.ingest.snapshot()) == [
        {"device_id": "dev-1", "state": "online", "sensors": 2, "sensors_online": 2}]
    # edit: a new URL reconnects to the new source
    old = h.ingest.cameras[cid].worker
    await h.db.execute("UPDATE camera_sources SET rtsp_url = $1 WHERE camera_id = $2",
                       cameras.url("c"), cid)

    def new_worker_flowing() -> bool:
        running = h.ingest.cameras.get(cid)
        return bool(running and running.worker is not old and running.worker.status.frames > 10)

    await eventually(new_worker_flowing, timeout_s=15, message="edited URL not applied")
    assert h.ingest.cameras[cid].wanted.config.rtsp_url == cameras.url("c")
    online = {"commune": "ballainvilliers", "camera": "ecole"}
    assert REGISTRY.get_sample_value("vigie_ingest_camera_online", online) == 1
    # disable: ingest stops the camera
    await h.db.execute("UPDATE cameras SET state = 'disabled' WHERE id = $1", cid)
    await eventually(lambda: cid not in h.ingest.cameras, timeout_s=5, message="not disabled")
    # Issue 36: a camera this replica no longer runs has no series here (a 0 left behind said
    # « offline » beside its new owner's 1, and the alert fired for a camera that was online).
    assert REGISTRY.get_sample_value("vigie_ingest_camera_online", online) is None
    assert device_health(h.ingest.snapshot()) == [
        {"device_id": "dev-1", "state": "online", "sensors": 1, "sensors_online": 1}]
    # re-enable
    await h.db.execute("UPDATE cameras SET state = 'active' WHERE id = $1", cid)
    await eventually(lambda: h.status("ecole").get("online"), timeout_s=15, message="not re-enabled")


class CorruptingProxy:
    """Relays RTSP over TCP; on its first connection, after a while, sends garbage instead."""

    def __init__(self, upstream_port: int, corrupt_after_s: float) -> None:
        self.upstream_port = upstream_port
        self.corrupt_after_s = corrupt_after_s
        self.connections = 0
        self.server: asyncio.base_events.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        corrupt = self.connections == 1
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        loop = asyncio.get_running_loop()
        t0 = loop.time()

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, downstream: bool) -> None:
            try:
                while data := await src.read(65536):
                    if downstream and corrupt and loop.time() - t0 > self.corrupt_after_s:
                        data = bytes(random.getrandbits(8) for _ in range(4096))
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer, False), pipe(up_reader, writer, True))

    async def close(self) -> None:
        if self.server:
            self.server.close()


async def test_corrupt_stream_is_reported_and_recovered_from(
    ingest_harness: Callable[..., IngestHarness], cameras: servers.RtspCameras, streams: BusNames,
) -> None:
    proxy = CorruptingProxy(cameras.port, corrupt_after_s=2.0)
    port = await proxy.start()
    try:
        h = ingest_harness(offline_after_s=3.0)
        await h.add_camera("palaiseau", "flaky", f"rtsp://127.0.0.1:{port}/a")
        await eventually(lambda: h.status("flaky").get("online"), timeout_s=15,
                         message="never online")
        offline = await eventually(lambda: _events(streams, "camera", "offline", "flaky"),
                                   timeout_s=20, message="corruption not reported")
        assert offline[0]["reason"] in {"corrupt", "timeout", "stream_error", "ended"}
        await eventually(lambda: len(_events(streams, "camera", "online", "flaky")) >= 2,
                         timeout_s=20, message="did not recover")
        frames = h.status("flaky")["frames"]
        await eventually(lambda: h.status("flaky")["frames"] > frames + 20, timeout_s=10,
                         message="frames did not resume after recovery")
        assert proxy.connections >= 2
    finally:
        await proxy.close()


async def test_raw_lost_in_a_nats_server_restart_is_brought_back_in_memory(
    ingest_harness: Callable[..., IngestHarness], cameras: servers.RtspCameras, probe_nc: NATS,
    streams: BusNames,
) -> None:
    """Found by `kill -9` of nats-server under `vigie run`: RAW is a memory stream, the restart
    lost it, every RAW publish failed and ingest crash-looped until `vigie init` was run again."""
    h = ingest_harness()
    await h.add_camera("palaiseau", "mire", cameras.url("b"))
    await _collect_raw(probe_nc, streams, "palaiseau", "mire", 10)
    js = jetstream(probe_nc)
    await js.delete_stream(streams.raw_stream)  # what a nats-server restart does to it

    async def raw_exists() -> bool:
        try:
            return bool(await js.stream_info(streams.raw_stream))
        except nats.js.errors.NotFoundError:
            return False

    await eventually(raw_exists, timeout_s=10, message="RAW never came back")
    frames = await _collect_raw(probe_nc, streams, "palaiseau", "mire", 25, timeout_s=15)
    assert frames, "frames flow again"
    info = await js.stream_info(streams.raw_stream)
    assert info.config.storage == StorageType.MEMORY, "invariant 1: RAW never on disk"
    assert any(line.get("event") == "raw_stream_recreated" for line in h.log_lines())
    assert h.status("mire")["online"]


def _metric(port: int, line_start: str) -> float:
    """A sample of a replica's /metrics (-1 while its HTTP side is not up yet)."""
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    except httpx.HTTPError:
        return -1.0
    for line in text.splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _owns(port: int, slug: str) -> bool:
    try:
        cams = httpx.get(f"http://127.0.0.1:{port}/cameras", timeout=5).json()["cameras"]
    except (httpx.HTTPError, ValueError):
        return False
    return any(c["id"].endswith(f"/{slug}") for c in cams)


@pytest.mark.slow
async def test_a_killed_replicas_camera_goes_on_from_the_standby_session_without_a_lost_frame(
    cameras: servers.RtspCameras, probe_nc: NATS, streams: BusNames, db: asyncpg.Pool,
    settings_for: Callable[..., CommonSettings],
) -> None:
    """Issue 35 (make compose-check: 2.0–10.2 s of hole when an ingest replica was killed): the
    survivor had to open an RTSP session — the camera answering in its own time — and wait for
    a keyframe. The replica next in line keeps a standby session open; taking the camera, it
    finds the last frame RAW stored among what it kept and carries the same session on: RAW has
    every frame once, in order, in one session, with no gap in capture time."""
    slug = unique("relai")
    await db.execute("INSERT INTO communes (slug, name, retention_days) VALUES ('palaiseau', "
                     "'palaiseau', 15) ON CONFLICT DO NOTHING")
    cid = await db.fetchval(
        "INSERT INTO cameras (commune, slug, name, state) VALUES ('palaiseau', $1, $1, 'active') "
        "RETURNING id", slug)
    await db.execute("INSERT INTO camera_sources (camera_id, rtsp_url) VALUES ($1, $2)", cid,
                     cameras.url("c"))
    ports = [servers.free_port(), servers.free_port()]
    base = {**os.environ, **settings_env(settings_for(PROBE_USER)),
            "VIGIE_INGEST_POLL_INTERVAL_S": "0.5", "VIGIE_INGEST_STANDBY_KEEP_S": "6"}
    replicas = [subprocess.Popen([sys.executable, "-m", "vigie.cli.main", "service", "ingest"],
                                 env={**base, "VIGIE_INGEST_HTTP_PORT": str(port)},
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                for port in ports]
    try:
        [owner] = await eventually(
            lambda: [i for i, port in enumerate(ports) if _owns(port, slug)],
            timeout_s=30, message="no replica took the camera")
        survivor = 1 - owner
        await eventually(
            lambda: _metric(ports[survivor], "vigie_ingest_standby_sessions") == 1.0,
            timeout_s=40, message="the other replica opened no standby session")
        await asyncio.sleep(3)  # the standby session has kept seconds of the camera
        replicas[owner].kill()
        replicas[owner].wait()
        await eventually(lambda: _owns(ports[survivor], slug), timeout_s=10,
                         message="the survivor did not take the camera")
        await asyncio.sleep(3)
        assert _metric(ports[survivor],
                       'vigie_ingest_takeovers_total{outcome="continued"}') == 1.0
        frames = await _stored_raw(probe_nc, streams, "palaiseau", slug)
    finally:
        for process in replicas:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=30)
    epochs = sorted({f.owner_epoch for f in frames})
    assert len(epochs) == 2, f"the window holds both owners' frames: {epochs}"
    sessions = sorted({f.session for f in frames})
    assert len(sessions) == 1, f"one session across the kill, not {sessions}"
    seqs = [f.seq for f in frames]
    wrong = [(a, b) for a, b in zip(seqs, seqs[1:], strict=False) if b != a + 1]
    assert not wrong, f"frames lost or stored twice between seqs {wrong[:5]}"
    times = [f.capture_time_ns for f in frames]
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert min(gaps) > 0, "capture times always move forward"
    # Where the owner changed, the frames follow at the camera's pace (a reconnection and a
    # keyframe took seconds). The bound leaves room for a loaded machine's scheduling (CI saw
    # 235 ms between two frames of one owner).
    junction = next(i for i, f in enumerate(frames) if f.owner_epoch == epochs[1])
    at_junction = gaps[junction - 1] / 1e6
    assert at_junction < 500, f"{at_junction:.0f} ms between the two owners' frames"
    # One decodable stream where the owner changed: the pts go on too. (FFmpeg's RTSP demuxer
    # re-bases a session's pts once, at the camera's first RTCP report: in every session.)
    around = frames[junction - 10:junction + 10]
    assert all(b.pts > a.pts for a, b in zip(around, around[1:], strict=False)), \
        [(f.owner_epoch, f.seq, f.pts) for f in around]


async def _stored_raw(nc: NATS, names: BusNames, commune: str, camera: str) -> list[Frame]:
    """Every frame RAW holds for the camera up to now, in stream order."""
    js = jetstream(nc)
    until = (await js.stream_info(names.raw_stream)).state.last_seq
    sub = await js.pull_subscribe(names.raw(commune, camera), stream=names.raw_stream,
                                  config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL))
    frames: list[Frame] = []
    try:
        while True:
            try:
                msgs = await sub.fetch(200, timeout=1)
            except nats.errors.TimeoutError:
                break
            for m in msgs:
                await m.ack()
                if m.metadata.sequence.stream <= until:
                    frames.append(Frame.from_message(m.headers, m.data))
            if msgs[-1].metadata.sequence.stream >= until:
                break
    finally:
        await sub.unsubscribe()
    return frames
