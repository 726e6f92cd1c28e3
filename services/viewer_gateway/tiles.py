"""Mosaic tiles: a small JPEG per camera, refreshed from VIDEO's keyframes, decoding keyframes only
(issue 10), so that a 40-camera wall costs one keyframe decode per camera per refresh, not 40
decoders. A camera's source runs while its tile is being asked for, and stops when nobody looks."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import av
import cv2
import nats.errors
import numpy as np
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from vigie.plumbing.bus.consumer import TRANSIENT_NATS_ERRORS
from vigie.plumbing.bus.frames import Frame, FrameMessageError
from vigie.plumbing.log import get_logger
from vigie.service import Runtime

log = get_logger(__name__)
TILE_WIDTH = 320
IDLE_S = 60.0  # a source nobody asked for in this long is stopped
FIRST_KEYFRAME_S = 3.0  # how long a first request waits for a keyframe


def keyframe_jpeg(frame: Frame, width: int = TILE_WIDTH, quality: int = 70) -> bytes:
    """Decode one keyframe (with its parameter sets) and encode a small JPEG of it."""
    decoder = av.CodecContext.create(frame.codec, "r")
    if frame.parameter_sets:
        decoder.extradata = frame.parameter_sets
    pictures = list(decoder.decode(av.Packet(frame.data))) + list(decoder.decode(None))
    if not pictures:
        raise ValueError("the keyframe did not decode")
    image = pictures[0].to_ndarray(format="bgr24")
    height = max(1, round(image.shape[0] * width / image.shape[1]))
    small = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    ok, encoded = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return bytes(np.asarray(encoded).tobytes())


@dataclass
class _Source:
    task: asyncio.Task[None] | None = None
    keyframe: Frame | None = None
    jpeg: bytes | None = None
    jpeg_of: int | None = None  # capture time of the keyframe the JPEG shows
    asked: float = field(default_factory=time.monotonic)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)


class Tiles:
    def __init__(self, rt: Runtime) -> None:
        self._rt = rt
        self._sources: dict[tuple[str, str], _Source] = {}

    async def jpeg(self, commune: str, camera: str) -> tuple[bytes, int] | None:
        """The latest keyframe as JPEG and its capture time, or None when none comes."""
        self._stop_idle()
        source = self._sources.get((commune, camera))
        if source is None or source.task is None or source.task.done():
            source = self._sources[(commune, camera)] = _Source()
            source.task = asyncio.create_task(self._follow(commune, camera, source))
        source.asked = time.monotonic()
        if source.keyframe is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(source.arrived.wait(), FIRST_KEYFRAME_S)
        key = source.keyframe
        if key is None:
            return None
        if source.jpeg_of != key.capture_time_ns:
            source.jpeg = await asyncio.to_thread(keyframe_jpeg, key)
            source.jpeg_of = key.capture_time_ns
        assert source.jpeg is not None
        return source.jpeg, key.capture_time_ns

    async def _follow(self, commune: str, camera: str, source: _Source) -> None:
        js, names = self._rt.require_js(), self._rt.names
        config = ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_TIME,
                                opt_start_time=datetime.now(UTC) - timedelta(seconds=4),
                                ack_policy=AckPolicy.NONE, inactive_threshold=30.0,
                                mem_storage=True)
        sub = await js.pull_subscribe(names.video(commune, camera), durable=None,
                                      stream=names.video_stream, config=config)
        try:  # NotFoundError (the stream or consumer went away) ends the source
            while time.monotonic() - source.asked < IDLE_S:
                try:
                    msgs = await sub.fetch(100, timeout=1)
                except nats.errors.TimeoutError:
                    continue  # nothing new within the second
                except TRANSIENT_NATS_ERRORS as exc:
                    log.warning("tile_source_retry", commune=commune, camera=camera,
                                error=type(exc).__name__)
                    await asyncio.sleep(1)  # never a tight loop when NATS is away
                    continue
                for msg in msgs:
                    if msg.headers and msg.headers.get("Vigie-Keyframe") not in ("1", "true"):
                        continue  # only keyframes are of use: nothing else is even parsed
                    with contextlib.suppress(FrameMessageError):
                        frame = Frame.from_message(msg.headers, msg.data)
                        if frame.keyframe:
                            source.keyframe = frame
                            source.arrived.set()
        finally:
            with contextlib.suppress(*TRANSIENT_NATS_ERRORS):
                await sub.unsubscribe()

    def _stop_idle(self) -> None:
        for key, source in list(self._sources.items()):
            if time.monotonic() - source.asked > IDLE_S and source.task:
                source.task.cancel()
                del self._sources[key]

    async def close(self) -> None:
        tasks = [s.task for s in self._sources.values() if s.task]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._sources.clear()


class SeenOnce:
    """Which (session, camera) tile views are already in the register: the first one of a session
    is recorded, not every refresh. Entries older than a session can live are forgotten, so the
    set stays as large as the sessions that may still be open, not as the gateway's uptime."""

    def __init__(self, lifetime_s: float, *, clock=time.monotonic) -> None:  # type: ignore[no-untyped-def]
        self._lifetime_s = lifetime_s
        self._clock = clock
        self._seen: dict[tuple[str, str], float] = {}
        self._next_prune = clock() + lifetime_s

    def first(self, session: str, camera: str) -> bool:
        """True the first time this session asks for this camera (then remembered)."""
        now = self._clock()
        if now >= self._next_prune:
            self._seen = {k: t for k, t in self._seen.items() if now - t < self._lifetime_s}
            self._next_prune = now + self._lifetime_s / 4
        key = (session, camera)
        if key in self._seen:
            return False
        self._seen[key] = now
        return True

    def __len__(self) -> int:
        return len(self._seen)
