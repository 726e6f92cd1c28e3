"""Fixtures for ingest: RTSP cameras and an Ingest running in the test's event loop."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio
from nats.aio.client import Client as NATS
from vigie.local import servers
from vigie.plumbing.bus.connection import jetstream
from vigie.plumbing.bus.subjects import BusNames
from vigie.plumbing.log import configure_logging

from services.ingest.handlers import Ingest
from services.ingest.settings import IngestSettings
from tests.harness import demo_footage

CAMERA_PASSWORD = "S3cretPW-cam"


@pytest.fixture(scope="session")
def cameras(work_dir: Path) -> Iterator[servers.RtspCameras]:
    """Live test patterns (no B-frames) and a shop-front clip (B-frames, AAC audio), looping."""
    shop = demo_footage() / "shopfront-door-cctv-timestamp-640x360.mp4"
    server = servers.start_rtsp_cameras(
        work_dir / "rtsp",
        clips=[servers.ClipMount("shop", shop, "h264")],
        patterns=[servers.PatternMount("a", 320, 240, 25), servers.PatternMount("b", 320, 240, 25),
                  servers.PatternMount("c", 320, 240, 25)],
    )
    yield server
    server.process.stop()


@pytest.fixture(scope="session")
def locked_cameras(work_dir: Path) -> Iterator[servers.RtspCameras]:
    """A camera requiring RTSP authentication."""
    server = servers.start_rtsp_cameras(
        work_dir / "rtsp-auth", patterns=[servers.PatternMount("locked", 320, 240, 25)],
        credentials=f"agent:{CAMERA_PASSWORD}", name="rtsp-auth")
    yield server
    server.process.stop()


@dataclass
class IngestHarness:
    ingest: Ingest
    db: asyncpg.Pool
    names: BusNames
    logs: io.StringIO

    async def add_camera(self, commune: str, slug: str, url: str, *, state: str = "active",
                         device_id: str | None = None, sensor_index: int | None = None) -> int:
        await self.db.execute(
            "INSERT INTO communes (slug, name, retention_days) VALUES ($1, $1, 15) "
            "ON CONFLICT DO NOTHING", commune)
        cid: int = await self.db.fetchval(
            "INSERT INTO cameras (commune, slug, name, state, device_id, sensor_index) "
            "VALUES ($1, $2, $2, $3, $4, $5) RETURNING id",
            commune, slug, state, device_id, sensor_index)
        await self.db.execute("INSERT INTO camera_sources (camera_id, rtsp_url) VALUES ($1, $2)",
                              cid, url)
        return cid

    def status(self, slug: str) -> dict:  # type: ignore[type-arg]
        for cam in self.ingest.snapshot():
            if cam["id"].endswith("/" + slug):
                return cam
        return {}

    def log_lines(self) -> list[dict]:  # type: ignore[type-arg]
        return [json.loads(line) for line in self.logs.getvalue().splitlines() if line.strip()]


@pytest_asyncio.fixture
async def ingest_harness(
    probe_nc: NATS, streams: BusNames, db: asyncpg.Pool,
    service_db: Callable[[str], Awaitable[asyncpg.Pool]],
) -> AsyncIterator[Callable[..., IngestHarness]]:
    """Start an Ingest (settings overridable) on this test's streams and schema."""
    logs = io.StringIO()
    configure_logging(level="info", fmt="json", stream=logs, service="ingest")
    running: list[tuple[asyncio.Event, asyncio.Task[None]]] = []
    as_ingest = await service_db("ingest")  # its own role, as deployed

    def _start(**overrides: float) -> IngestHarness:
        settings = IngestSettings(**{"poll_interval_s": 0.5, "offline_after_s": 3.0,
                                     "open_timeout_s": 3.0, "read_timeout_s": 3.0,
                                     "backoff_initial_s": 0.3, "backoff_max_s": 2.0,
                                     "health_write_interval_s": 0.5, **overrides})
        ingest = Ingest(js=jetstream(probe_nc), names=streams, pool=as_ingest, settings=settings)
        stop = asyncio.Event()
        running.append((stop, asyncio.create_task(ingest.run(stop))))
        return IngestHarness(ingest, db, streams, logs)

    yield _start
    for stop, task in running:
        stop.set()
        await asyncio.wait_for(task, timeout=20)
    configure_logging(level="info", fmt="console")
