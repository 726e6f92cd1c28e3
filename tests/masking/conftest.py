"""Fixtures for masking: a marker camera, ingest and a masking worker in the test's event loop,
and a VIDEO reader that decodes what masking published."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import av
import nats.js.errors
import pytest
import pytest_asyncio
from nats.aio.client import Client as NATS
from vigie.local import servers
from vigie.plumbing.bus.connection import jetstream
from vigie.plumbing.bus.consumer import camera_durable
from vigie.plumbing.bus.frames import Frame
from vigie.plumbing.bus.subjects import BusNames

from services.ingest.handlers import Ingest
from services.ingest.settings import IngestSettings
from services.masking.handlers import MaskingWorker
from services.masking.settings import MaskingSettings
from tests.harness import authorise, eventually

W, H = 320, 240
# The marker box the RTSP test camera draws (x, y = 1/8 of the frame, 1/4 of its size).
MARKER = (W // 8, H // 8, W // 8 + W // 4, H // 8 + H // 4)
COVER = [[0.09, 0.09], [0.41, 0.09], [0.41, 0.41], [0.09, 0.41]]  # polygon over the marker


def marker_visible(picture: av.VideoFrame) -> bool:
    """Saturated magenta (high U and V) inside the marker box, even partly."""
    yuv = picture.to_ndarray(format="yuv444p")
    x0, y0, x1, y1 = MARKER
    u, v = yuv[1, y0 + 4:y1 - 4, x0 + 4:x1 - 4], yuv[2, y0 + 4:y1 - 4, x0 + 4:x1 - 4]
    return int(((u > 170) & (v > 170)).sum()) > 20


@pytest.fixture(scope="session")
def marker_cameras(work_dir: Path) -> Iterator[servers.RtspCameras]:
    server = servers.start_rtsp_cameras(
        work_dir / "rtsp-marker", name="rtsp-marker",
        patterns=[servers.PatternMount("m1", W, H, 25, marker=True),
                  servers.PatternMount("m2", W, H, 25, marker=True)])
    yield server
    server.process.stop()


@dataclass
class VideoReader:
    """Decodes every VIDEO frame of one camera as it arrives, in order."""

    frames: list[Frame] = field(default_factory=list)
    pictures: list[tuple[Frame, bool]] = field(default_factory=list)  # (frame, marker visible)
    decode_errors: int = 0
    _decoder: av.CodecContext | None = None

    def feed(self, frame: Frame) -> None:
        self.frames.append(frame)
        if self._decoder is None:
            if not frame.keyframe:
                self.decode_errors += 1  # the first VIDEO frame of a stream must be a keyframe
                return
            self._decoder = av.CodecContext.create("h264", "r")
        try:
            for picture in self._decoder.decode(av.Packet(frame.data)):
                self.pictures.append((frame, marker_visible(picture)))
        except av.error.FFmpegError:
            self.decode_errors += 1


async def raw_consumer_ready(nc: NATS, names: BusNames, camera: str,
                             commune: str = "palaiseau") -> None:
    """Until masking's consumer on the camera's RAW exists (issue 37: tests slept 1.5 s). It
    reads RAW from its creation on (DeliverPolicy.NEW): a frame published before is not read."""
    js = jetstream(nc)

    async def exists() -> bool:
        try:
            await js.consumer_info(names.raw_stream, camera_durable("masking", commune, camera))
        except nats.js.errors.NotFoundError:
            return False
        return True

    await eventually(exists, timeout_s=30, message=f"masking never read {commune}/{camera}'s RAW")


@dataclass
class MaskingHarness:
    db: asyncpg.Pool
    names: BusNames
    nc: NATS
    start_masking: Callable[[], asyncio.Task[None]]
    stop_masking: Callable[[], asyncio.Future[None]]

    async def add_camera(self, slug: str, url: str, *, state: str = "active",
                         masks: list[dict] | None = None) -> int:  # type: ignore[type-arg]
        """Camera, source and approved masks in one transaction, as an administrator would
        commission it (otherwise masking may see the camera before its masks, and say so)."""
        async with self.db.acquire() as conn, conn.transaction():
            await conn.execute("INSERT INTO communes (slug, name, retention_days) VALUES "
                               "('palaiseau', 'Palaiseau', 15) ON CONFLICT DO NOTHING")
            cid: int = await conn.fetchval(
                "INSERT INTO cameras (commune, slug, name, state) VALUES ('palaiseau', $1, $1, $2) "
                "RETURNING id", slug, state)
            await conn.execute("INSERT INTO camera_sources VALUES ($1, $2)", cid, url)
            await authorise(conn, "palaiseau", [slug])
            if masks is not None:
                await self.approve(cid, masks, conn=conn)
        return cid

    async def approve(self, cid: int, masks: list[dict],  # type: ignore[type-arg]
                      conn: asyncpg.Connection | None = None) -> int:
        db = conn or self.db
        version: int = await db.fetchval(
            "SELECT coalesce(max(version), 0) + 1 FROM masks WHERE camera_id = $1", cid)
        doc = {"schema_version": 1, "camera": f"palaiseau/{cid}", "version": version,
               "masks": masks}
        await db.execute(
            "INSERT INTO masks (camera_id, version, document, author, approved_by, approved_at) "
            "VALUES ($1, $2, $3::jsonb, 'mask-admin', 'mask-admin', now())",
            cid, version, json.dumps(doc))
        return version

    async def read_video(self, slug: str) -> tuple[VideoReader, Callable[[], asyncio.Future[None]]]:
        reader = VideoReader()

        async def on_msg(msg) -> None:  # type: ignore[no-untyped-def]
            reader.feed(Frame.from_message(msg.headers, msg.data))

        sub = await self.nc.subscribe(self.names.video("palaiseau", slug), cb=on_msg)
        return reader, sub.unsubscribe


@pytest_asyncio.fixture
async def masking_harness(
    probe_nc: NATS, streams: BusNames, db: asyncpg.Pool,
    service_db: Callable[[str], Awaitable[asyncpg.Pool]],
) -> AsyncIterator[MaskingHarness]:
    js = jetstream(probe_nc)
    as_masking = await service_db("masking")  # each service as its own role, as deployed
    ingest = Ingest(js=js, names=streams, pool=await service_db("ingest"), settings=IngestSettings(
        poll_interval_s=0.5, offline_after_s=3, backoff_initial_s=0.3, backoff_max_s=2))
    ingest_stop = asyncio.Event()
    ingest_task = asyncio.create_task(ingest.run(ingest_stop))
    state: dict[str, tuple[asyncio.Event, asyncio.Task[None]]] = {}

    def start() -> asyncio.Task[None]:
        worker = MaskingWorker(nc=probe_nc, js=js, names=streams, pool=as_masking,
                               settings=MaskingSettings(poll_interval_s=0.3, workers=1,
                                                        norms_after_frames=50))
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run(stop))
        state["masking"] = (stop, task)
        return task

    async def stop() -> None:
        if "masking" in state:
            s, t = state.pop("masking")
            s.set()
            await asyncio.wait_for(t, timeout=20)

    start()
    yield MaskingHarness(db, streams, probe_nc, start, stop)  # type: ignore[arg-type]
    await stop()
    ingest_stop.set()
    await asyncio.wait_for(ingest_task, timeout=20)
