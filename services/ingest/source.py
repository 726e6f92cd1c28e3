"""One RTSP session read by PyAV in a thread of its own, demuxed without decoding.

Blocking FFmpeg I/O stays off the event loop; each session is a plain thread (not the default
executor, which has only a handful of workers for tens of cameras). Items reach the camera's
asyncio queue through ``call_soon_threadsafe``. Audio is never set up: ``allowed_media_types=video``
keeps it off the wire, and only the video stream is demuxed (only images are authorised).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

import av

from services.ingest.core import SUPPORTED_CODECS, CaptureClock, IngestFailure, classify_error


@dataclass(frozen=True)
class StreamInfo:
    codec: str
    width: int
    height: int
    time_base: Fraction
    extradata: bytes | None
    fps: float | None


@dataclass(frozen=True)
class Packet:
    data: bytes
    pts: int | None
    dts: int | None
    keyframe: bool
    capture_time_ns: int


Item = StreamInfo | Packet | IngestFailure


def _read(
    url: str,
    *,
    open_timeout_s: float,
    read_timeout_s: float,
    clock: CaptureClock,
    emit: Callable[[Item], None],
    stop: threading.Event,
) -> None:
    try:
        container = av.open(
            url,
            options={"rtsp_transport": "tcp", "allowed_media_types": "video"},
            timeout=(open_timeout_s, read_timeout_s),
        )
    except Exception as exc:  # noqa: BLE001 - thread boundary: every failure becomes a status
        emit(classify_error(exc))
        return
    try:
        if not container.streams.video:
            emit(IngestFailure("no_video", "the stream carries no video"))
            return
        stream = container.streams.video[0]
        ctx = stream.codec_context
        codec = SUPPORTED_CODECS.get(ctx.name)
        if codec is None:
            emit(IngestFailure("unsupported_codec", f"codec {ctx.name} (H.264 or H.265 only)"))
            return
        rate = stream.average_rate or stream.guessed_rate
        emit(StreamInfo(codec=codec, width=ctx.width, height=ctx.height,
                        time_base=stream.time_base or Fraction(1, 90000),
                        extradata=bytes(ctx.extradata) if ctx.extradata else None,
                        fps=float(rate) if rate else None))
        for packet in container.demux(stream):
            if stop.is_set():
                return
            if packet.size == 0:  # demuxer flush marker
                continue
            emit(Packet(bytes(packet), packet.pts, packet.dts, packet.is_keyframe, clock.stamp()))
        emit(IngestFailure("ended", "the camera closed the stream"))
    except Exception as exc:  # noqa: BLE001 - thread boundary: every failure becomes a status
        if not stop.is_set():
            emit(classify_error(exc))
    finally:
        container.close()


class RtspSession:
    """A reader thread feeding an asyncio queue; ``close`` asks it to stop (bounded by read timeout)."""

    def __init__(self, url: str, *, open_timeout_s: float, read_timeout_s: float,
                 clock: CaptureClock, queue: asyncio.Queue[Item], on_shed: Callable[[], None]):
        loop = asyncio.get_running_loop()
        self._stop = threading.Event()

        def put(item: Item) -> None:
            try:
                queue.put_nowait(item)
            except asyncio.QueueFull:
                on_shed()

        def emit(item: Item) -> None:
            if not loop.is_closed():
                loop.call_soon_threadsafe(put, item)

        self._thread = threading.Thread(
            target=_read, name="rtsp-reader", daemon=True,
            kwargs=dict(url=url, open_timeout_s=open_timeout_s, read_timeout_s=read_timeout_s,
                        clock=clock, emit=emit, stop=self._stop),
        )
        self._thread.start()

    def close(self) -> None:
        self._stop.set()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()
