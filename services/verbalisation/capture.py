"""A still from the masked VIDEO stream at a capture time (never RAW: invariant 1): the frames from
the keyframe before that instant are read from JetStream with a throw-away consumer and decoded in
memory; the picture shown at that instant becomes a JPEG at the camera's resolution with the date,
time (the commune's legal time, to the tenth), camera and place written on a band at its top (R34)."""

from __future__ import annotations

import asyncio
import contextlib
import io
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import av
import nats.errors
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from PIL import ImageDraw, ImageFont
from vigie.plumbing.bus.consumer import TRANSIENT_NATS_ERRORS
from vigie.plumbing.bus.frames import Frame, FrameMessageError
from vigie.plumbing.bus.subjects import BusNames
from vigie.records import legal_time
from vigie.records.legal_time import DEFAULT_TIME_ZONE

FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")  # Debian's fonts-dejavu-core
LOOKBACK_S = 12.0  # VIDEO is read from this far before the instant: the keyframe is in reach
NEAREST_S = 2.0  # the picture shown must be this close to the instant asked (else: no picture)


class NoPicture(Exception):
    """No masked picture of the camera at that instant (offline, or not in VIDEO)."""


@dataclass(frozen=True)
class StillPicture:
    jpeg: bytes
    capture_time: datetime
    width: int
    height: int
    mask_version: int


async def frames_around(js: JetStreamContext, names: BusNames, commune: str, camera: str,
                        at: datetime, *, wait_s: float) -> list[Frame]:
    """VIDEO's frames of the camera from LOOKBACK_S before `at` to the first one after it (waiting
    up to `wait_s` for it, when `at` is a moment ago and VIDEO is a little behind)."""
    config = ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_TIME,
                            opt_start_time=at - timedelta(seconds=LOOKBACK_S),
                            ack_policy=AckPolicy.NONE, inactive_threshold=30.0, mem_storage=True)
    sub = await js.pull_subscribe(names.video(commune, camera), durable=None,
                                  stream=names.video_stream, config=config)
    at_ns = int(at.timestamp() * 1e9)
    frames: list[Frame] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    try:
        while loop.time() < deadline:
            try:
                msgs = await sub.fetch(100, timeout=0.5)
            except nats.errors.TimeoutError:
                continue
            for msg in msgs:
                try:
                    frame = Frame.from_message(msg.headers, msg.data)
                except FrameMessageError:
                    continue
                frames.append(frame)
                if frame.capture_time_ns > at_ns:
                    return frames
        return frames
    finally:
        with contextlib.suppress(*TRANSIENT_NATS_ERRORS, nats.errors.BadSubscriptionError):
            await sub.unsubscribe()


def picture_at(frames: list[Frame], at: datetime) -> tuple[av.VideoFrame, Frame]:
    """The decoded picture shown at `at` (the last one captured at or before it) and its frame."""
    at_ns = int(at.timestamp() * 1e9)
    shown = [i for i, f in enumerate(frames) if f.capture_time_ns <= at_ns]
    if not shown:
        raise NoPicture("no picture of the camera at that instant")
    target = shown[-1]
    if (at_ns - frames[target].capture_time_ns) / 1e9 > NEAREST_S:
        raise NoPicture("the camera sent no picture at that instant (offline?)")
    keyframes = [i for i in range(target + 1) if frames[i].keyframe]
    if not keyframes:
        raise NoPicture("the picture cannot be decoded (no keyframe before it in VIDEO)")
    first = keyframes[-1]
    decoder = av.CodecContext.create(frames[first].codec, "r")
    if frames[first].parameter_sets:
        decoder.extradata = frames[first].parameter_sets
    decoded: dict[int, av.VideoFrame] = {}
    for index in range(first, target + 1):
        packet = av.Packet(frames[index].data)
        packet.pts = packet.dts = index
        for picture in decoder.decode(packet):
            if picture.pts is not None:
                decoded[picture.pts] = picture
    for picture in decoder.decode(None):
        if picture.pts is not None:
            decoded[picture.pts] = picture
    if target not in decoded:
        raise NoPicture("the picture at that instant did not decode")
    return decoded[target], frames[target]


def band_lines(captured: datetime, time_zone: str, *, camera_name: str, camera: str,
               place: str) -> list[str]:
    """The band's text: the instant in the commune's legal time to the tenth, the camera, the
    place."""
    moment = legal_time.local(captured, time_zone)
    tenths = moment.microsecond // 100_000
    return [f"{moment:%d/%m/%Y %H:%M:%S},{tenths} ({legal_time.label(time_zone)})",
            f"{camera_name} ({camera})" + (f" — {place}" if place else "")]


def render(picture: av.VideoFrame, frame: Frame, *, camera_name: str, camera: str,
           place: str, time_zone: str = DEFAULT_TIME_ZONE, quality: int = 90) -> StillPicture:
    """The JPEG with its band: date and time in the commune's legal time, camera name and id,
    place."""
    if frame.mask_version is None:  # not a VIDEO frame: never a still (fail closed)
        raise NoPicture("the frame carries no mask version")
    image = picture.to_image()  # RGB, the camera's resolution
    captured = datetime.fromtimestamp(frame.capture_time_ns / 1e9, UTC)
    lines = band_lines(captured, time_zone, camera_name=camera_name, camera=camera, place=place)
    font, size = _fitting_font(lines, image.width, max(10, image.height // 28))
    draw = ImageDraw.Draw(image, "RGBA")
    step = int(size * 1.3)
    band = step * len(lines) + size // 2
    draw.rectangle([0, 0, image.width, band], fill=(0, 0, 0, 190))
    for n, line in enumerate(lines):
        draw.text((size // 2, size // 4 + n * step), line, font=font, fill=(255, 255, 255, 255))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=quality)
    return StillPicture(out.getvalue(), captured, image.width, image.height, frame.mask_version)


def _fitting_font(lines: list[str], width: int, size: int,
                  ) -> tuple[ImageFont.FreeTypeFont | ImageFont.ImageFont, int]:
    """The band's font, as large as wanted but small enough for every line to fit the picture."""
    if not FONT.exists():
        return ImageFont.load_default(), 10
    while True:
        font = ImageFont.truetype(str(FONT), size)
        if size <= 8 or max(font.getlength(line) for line in lines) <= width - size:
            return font, size
        size -= 1


async def still_at(js: JetStreamContext, names: BusNames, commune: str, camera: str,
                   at: datetime, *, camera_name: str, place: str, wait_s: float,
                   time_zone: str = DEFAULT_TIME_ZONE) -> StillPicture:
    frames = await frames_around(js, names, commune, camera, at, wait_s=wait_s)
    picture, frame = await asyncio.to_thread(picture_at, frames, at)
    return await asyncio.to_thread(render, picture, frame, camera_name=camera_name,
                                   camera=f"{commune}/{camera}", place=place,
                                   time_zone=time_zone)
