"""Pure logic of the recorder: cutting a camera's VIDEO frames into segments, and muxing a segment
into a fragmented MP4 that browsers (MSE), ffmpeg and VLC play from the first byte.

Boundaries depend on the frames alone (keyframe, capture-time gap, length, mask version, size), never
on arrival time, so that a replay after a crash produces the same segments, keys and rows.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Generic, TypeVar

import av
from vigie.media.payload import payload_sha256
from vigie.plumbing.bus.frames import Frame

T = TypeVar("T")  # what travels with each frame (the NATS message to acknowledge)
MP4_TIME_BASE = Fraction(1, 90000)


@dataclass
class Segment(Generic[T]):
    frames: list[Frame] = field(default_factory=list)
    tokens: list[T] = field(default_factory=list)
    end_ns: int = 0  # capture time where the next segment starts, or last frame + one interval

    @property
    def start_ns(self) -> int:
        return self.frames[0].capture_time_ns

    @property
    def first(self) -> Frame:
        return self.frames[0]


@dataclass
class Segmenter(Generic[T]):
    """Feed frames in order; get back the segments they close."""

    segment_s: float = 60.0
    gap_s: float = 2.0  # a capture-time gap longer than this closes the segment (camera offline)
    floor_ns: int = 0  # end of the last stored segment: anything before it is already in storage
    current: Segment[T] | None = None

    def feed(self, frame: Frame, token: T) -> tuple[list[Segment[T]], bool]:
        """Returns (closed segments, whether this frame was kept). Frames before a first
        keyframe cannot be decoded on their own: they are not kept (the caller acknowledges them)."""
        closed: list[Segment[T]] = []
        if frame.capture_time_ns < self.floor_ns:
            return closed, False  # redelivered after its segment was stored: never twice
        cur = self.current
        if cur is not None:
            last = cur.frames[-1]
            if frame.capture_time_ns <= last.capture_time_ns:
                return closed, False  # a duplicate or out-of-order frame: never twice in storage
            gap = frame.capture_time_ns - last.capture_time_ns
            if gap > self.gap_s * 1e9:
                cur.end_ns = last.capture_time_ns + self._interval(cur)
                closed.append(cur)
                cur = self.current = None
            elif frame.keyframe and (
                frame.capture_time_ns - cur.start_ns >= self.segment_s * 1e9
                or frame.mask_version != cur.first.mask_version
                or (frame.width, frame.height, frame.codec)
                != (cur.first.width, cur.first.height, cur.first.codec)
            ):
                cur.end_ns = frame.capture_time_ns  # contiguous: the next one starts here
                closed.append(cur)
                cur = self.current = None
        if cur is None:
            if not frame.keyframe:
                return closed, False
            cur = self.current = Segment()
        cur.frames.append(frame)
        cur.tokens.append(token)
        return closed, True

    def stored(self, segment: Segment[T]) -> None:
        # What storage now holds ends with this segment's last frame. Its `end_ns` (one frame
        # interval further, estimated) is for playback: a new masking owner's keyframe inside
        # that interval — re-encoding a picture its predecessor's VIDEO lost — was dropped as
        # "already stored" when it never was (tests/e2e/test_replicas.py, found in CI).
        self.floor_ns = max(self.floor_ns, segment.frames[-1].capture_time_ns + 1)

    def flush(self) -> Segment[T] | None:
        """Close the open segment (the camera went quiet): same boundary as a gap would give."""
        cur, self.current = self.current, None
        if cur is not None:
            cur.end_ns = cur.frames[-1].capture_time_ns + self._interval(cur)
        return cur

    @staticmethod
    def _interval(seg: Segment[T]) -> int:
        frames = seg.frames
        if len(frames) < 2:
            return 40_000_000  # one frame: assume 25 fps
        return (frames[-1].capture_time_ns - frames[0].capture_time_ns) // (len(frames) - 1)


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def utc(ns: int) -> datetime:
    """Exact: truncated to the microsecond (what PostgreSQL keeps), never rounded up. A float
    division rounded a segment's end up by a microsecond past the next segment's first frame,
    and after a restart that keyframe counted as already stored: its whole GOP was lost."""
    return EPOCH + timedelta(microseconds=ns // 1000)


def ns_of(moment: datetime) -> int:
    """The inverse of ``utc``, exact."""
    return (moment - EPOCH) // timedelta(microseconds=1) * 1000


def object_key(commune: str, camera: str, start_ns: int) -> str:
    """`<commune>/<camera>/<YYYY>/<MM>/<DD>/<HH>/<start>.mp4` (UTC), deterministic."""
    t = utc(start_ns)
    stamp = t.strftime("%Y%m%dT%H%M%S") + f".{(start_ns // 1_000_000) % 1000:03d}Z"
    return f"{commune}/{camera}/{t:%Y/%m/%d/%H}/{stamp}.mp4"


class FrameRejected(ValueError):
    """One frame of the segment cannot be written: the caller sets it aside and tries again."""

    def __init__(self, index: int, reason: str) -> None:
        super().__init__(reason)
        self.index, self.reason = index, reason


MAX_REORDER_S = 10  # a presentation time this far after the decoding time is a corrupt frame


@dataclass(frozen=True)
class MuxedSegment:
    data: bytes
    sha256: str
    payload_sha256: str  # the picture data's (vigie.media.payload): what a remux keeps
    packets: int


def mux_fmp4(segment: Segment[T]) -> MuxedSegment:
    """Fragmented MP4 (H.264, no audio); timestamps are capture times relative to the start."""
    try:
        data = _mux(segment)
    except FrameRejected:
        raise
    except (av.error.FFmpegError, OverflowError, ValueError) as exc:
        if isinstance(exc.__context__, FrameRejected):  # closing after the rejection failed too
            raise exc.__context__ from None
        # Not attributable to one frame (the trailer): the last one is set aside.
        raise FrameRejected(len(segment.frames) - 1, f"{type(exc).__name__}: {exc}") from None
    payload, packets = payload_sha256(data)
    return MuxedSegment(data, hashlib.sha256(data).hexdigest(), payload, packets)


def _mux(segment: Segment[T]) -> bytes:
    first = segment.first
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4", options={
        "movflags": "frag_keyframe+empty_moov+default_base_moof"}) as out:
        stream = out.add_stream("h264")
        stream.width, stream.height = first.width, first.height
        stream.time_base = MP4_TIME_BASE
        if first.parameter_sets:
            stream.codec_context.extradata = first.parameter_sets
        last_dts = -1
        for index, frame in enumerate(segment.frames):
            dts = (frame.capture_time_ns - segment.start_ns) * 90_000 // 1_000_000_000
            # Frames received in a burst can be microseconds apart: keep dts strictly increasing.
            dts = max(dts, last_dts + 1)
            offset = 0
            if frame.dts is not None:
                offset = int((frame.pts - frame.dts) * frame.time_base / MP4_TIME_BASE)
            if offset > MAX_REORDER_S * 90_000:
                raise FrameRejected(index, f"presentation {offset / 90_000:.0f} s after decoding")
            if not frame.data:
                raise FrameRejected(index, "empty frame")
            packet = av.Packet(frame.data)
            packet.stream = stream
            packet.time_base = MP4_TIME_BASE
            packet.dts, packet.pts = dts, dts + max(0, offset)
            packet.is_keyframe = frame.keyframe
            try:
                out.mux(packet)
            except (av.error.FFmpegError, OverflowError, ValueError) as exc:
                raise FrameRejected(index, f"{type(exc).__name__}: {exc}") from None
            last_dts = dts
    return buf.getvalue()
