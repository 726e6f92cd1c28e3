"""Live video for the browser: masked VIDEO frames re-wrapped, without decoding, as fragmented MP4
(an init segment, then one fragment per frame) that Media Source Extensions play as it arrives.
Pure: frames in, bytes out. Only VIDEO (masked) ever reaches this code (DESIGN.md invariant 1)."""

from __future__ import annotations

from collections.abc import Iterable
from fractions import Fraction
from typing import Any

import av
from vigie.plumbing.bus.frames import Frame
from vigie.plumbing.bus.order import FRAMES_LOST, GAPS, FrameChain

TIME_BASE = Fraction(1, 90000)
FLAGS = "empty_moov+default_base_moof+frag_every_frame+omit_tfhd_offset"


class _Sink:
    """The file the muxer writes to: what it wrote since the last take."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, data: Any) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        out, self.parts = b"".join(self.parts), []
        return out

    def seek(self, *_args: Any) -> int:  # the mp4 muxer asks; fragmented output never seeks back
        return 0

    def tell(self) -> int:
        return 0


class LiveFragmenter:
    """Feed frames from a keyframe on; get bytes to send. A change of size restarts the stream
    with a new init segment at the next keyframe (MSE takes a new init segment in-band)."""

    def __init__(self) -> None:
        self._sink = _Sink()
        self._out: Any = None
        self._stream: Any = None
        self._shape: tuple[int, int] | None = None
        self._t0: int = 0
        self._last_dts = -1
        self.frames = 0
        self.opened: Frame | None = None  # set by the feed that started a new init segment
        self._chain = FrameChain()  # a browser is never fed a frame across a hole (issue 34)

    def feed(self, frame: Frame) -> bytes:
        self.opened = None
        if frame.codec != "h264":
            return b""  # VIDEO is H.264 (masking transcodes the rest); anything else is skipped
        decodable = self._chain.admit(frame.session, frame.seq, frame.keyframe)
        for gap in self._chain.take_gaps():
            GAPS.labels("live", frame.commune, frame.camera).inc()
            FRAMES_LOST.labels("live", frame.commune, frame.camera).inc(gap.missing)
        if not decodable:
            return b""  # the picture holds on the last good frame until the next keyframe
        shape = (frame.width, frame.height)
        if self._out is not None and shape != self._shape and frame.keyframe:
            self.close()
        if self._out is None:
            if not frame.keyframe:
                return b""  # a stream starts at a keyframe
            self._open(frame)
        dts = (frame.capture_time_ns - self._t0) * 90_000 // 1_000_000_000
        dts = self._last_dts = max(dts, self._last_dts + 1)
        packet = av.Packet(frame.data)
        packet.stream = self._stream
        packet.time_base = TIME_BASE
        packet.dts = packet.pts = dts
        packet.is_keyframe = frame.keyframe
        self._out.mux(packet)
        self.frames += 1
        return self._sink.take()

    def _open(self, frame: Frame) -> None:
        self.opened = frame
        self._sink = _Sink()
        self._out = av.open(self._sink, "w", format="mp4",
                            options={"movflags": FLAGS, "flush_packets": "1"})
        self._stream = self._out.add_stream("h264")
        self._stream.width, self._stream.height = frame.width, frame.height
        self._stream.time_base = TIME_BASE
        if frame.parameter_sets:
            self._stream.codec_context.extradata = frame.parameter_sets
        self._shape = (frame.width, frame.height)
        self._t0 = frame.capture_time_ns
        self._last_dts = -1

    def close(self) -> bytes:
        if self._out is None:
            return b""
        self._out.close()
        self._out = None
        return self._sink.take()


def fragment_all(frames: Iterable[Frame]) -> bytes:
    fragmenter = LiveFragmenter()
    return b"".join(fragmenter.feed(f) for f in frames) + fragmenter.close()


def start_at_last_keyframe(frames: list[Frame]) -> list[Frame]:
    """What a new viewer receives of the recent backlog: from the latest keyframe on."""
    keys = [i for i, f in enumerate(frames) if f.keyframe]
    return frames[keys[-1]:] if keys else []


def start_at_keyframe_before(frames: list[Frame], since_ns: int) -> list[Frame]:
    """An instant replay: from the last keyframe at or before `since_ns` (else the first one)."""
    keys = [i for i, f in enumerate(frames) if f.keyframe]
    if not keys:
        return []
    before = [i for i in keys if frames[i].capture_time_ns <= since_ns]
    return frames[(before[-1] if before else keys[0]):]
