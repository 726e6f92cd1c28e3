"""Decoded pictures made fit for masking and for libx264, whatever the camera sends.

Masks are burned into 8-bit 4:2:0 planes, and libx264 in 4:2:0 needs an even width and height:
- a full-range (``yuvj420p``, common on IP cameras), 10-bit or 4:2:2 picture is converted to
  ``yuv420p`` (limited range, 8 bits: what every browser decodes);
- an odd width or height is padded by one pixel that repeats the edge — never rescaled, so the
  masks' geometry holds pixel for pixel.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from vigie.media.masks import yuv_planes

MASKABLE_FORMAT = "yuv420p"
LIMITED_RANGE, FULL_RANGE = 1, 2  # AVCOL_RANGE_MPEG, AVCOL_RANGE_JPEG
# One per thread: a reformatter keeps its swscale context between calls and is not thread-safe
# (each camera's frames are processed in a worker thread).
_local = threading.local()


def maskable(picture: av.VideoFrame) -> av.VideoFrame:
    """The picture in ``yuv420p``, its timing kept."""
    if picture.format.name == MASKABLE_FORMAT and picture.color_range != FULL_RANGE:
        return picture
    full = picture.color_range == FULL_RANGE or picture.format.name.startswith("yuvj")
    if not hasattr(_local, "reformatter"):
        _local.reformatter = VideoReformatter()
    converted = _local.reformatter.reformat(picture, format=MASKABLE_FORMAT,
                                           src_color_range=FULL_RANGE if full else LIMITED_RANGE,
                                           dst_color_range=LIMITED_RANGE)
    # swscale converts the samples to limited range but leaves the frame flagged as full range:
    # the encoder would then tell players to stretch them again (a washed-out picture).
    converted.color_range = LIMITED_RANGE
    return _timed(converted, picture)


def encoded_size(width: int, height: int) -> tuple[int, int]:
    """The size libx264 is given for a picture of this size (odd sides padded by one)."""
    return width + width % 2, height + height % 2


def encodable(picture: av.VideoFrame) -> av.VideoFrame:
    """A ``yuv420p`` picture with even sides: padded by repeating its last column and row."""
    width, height = picture.width, picture.height
    target = encoded_size(width, height)
    if target == (width, height):
        return picture
    padded = av.VideoFrame(target[0], target[1], MASKABLE_FORMAT)
    src, dst = yuv_planes(picture), yuv_planes(padded)
    y, dy = src[0], dst[0]
    dy[:height, :width] = y
    dy[:height, width:] = y[:, -1:]
    dy[height:, :] = dy[height - 1:height, :]
    for s, d in zip(src[1:], dst[1:], strict=True):
        # 4:2:0 chroma of an odd side is already rounded up: the same size as the padded one's.
        d[: s.shape[0], : s.shape[1]] = s
        if d.shape[1] > s.shape[1]:
            d[:, s.shape[1]:] = d[:, s.shape[1] - 1:s.shape[1]]
        if d.shape[0] > s.shape[0]:
            d[s.shape[0]:, :] = d[s.shape[0] - 1:s.shape[0], :]
    return _timed(padded, picture)


def _timed(out: av.VideoFrame, source: av.VideoFrame) -> av.VideoFrame:
    out.pts = source.pts
    if source.time_base is not None:
        out.time_base = source.time_base
    return out


def planes_equal(a: av.VideoFrame, b: av.VideoFrame) -> bool:
    """Whether two yuv420p pictures of one size hold the same samples (for tests and checks)."""
    return all(np.array_equal(p, q) for p, q in zip(yuv_planes(a), yuv_planes(b), strict=True))


class PresentationTimes:
    """Each decoded frame's presentation time as FFmpeg's CLI derives it (libavcodec's
    ``guess_correct_pts``: the frames' own times unless they go backwards more often than the
    decoding times do), decided over a look-ahead so that the first frames are timed like the
    rest. A container without presentation times (AVI with B-frames) gets invented ones from
    the demuxer; they go backwards at the first B-frame, and the decoding times are used.
    """

    def __init__(self, lookahead: int = 16) -> None:
        self._lookahead = lookahead
        self._waiting: list[av.VideoFrame] = []
        self._faulty_pts = self._faulty_dts = 0
        self._last_pts: int | None = None
        self._last_dts: int | None = None
        self._last_out: int | None = None

    def push(self, frame: av.VideoFrame) -> list[av.VideoFrame]:
        """Frames ready to encode, with ``pts`` set (strictly increasing)."""
        pts, dts = frame.pts, frame.dts
        if dts is not None:
            self._faulty_dts += self._last_dts is not None and dts <= self._last_dts
            self._last_dts = dts
        elif pts is not None:
            self._last_dts = pts
        if pts is not None:
            self._faulty_pts += self._last_pts is not None and pts <= self._last_pts
            self._last_pts = pts
        elif dts is not None:
            self._last_pts = dts
        self._waiting.append(frame)
        return self._release(len(self._waiting) - self._lookahead)

    def flush(self) -> list[av.VideoFrame]:
        return self._release(len(self._waiting))

    def _release(self, count: int) -> list[av.VideoFrame]:
        ready, self._waiting = self._waiting[:max(0, count)], self._waiting[max(0, count):]
        for frame in ready:
            use_pts = frame.pts is not None and (
                self._faulty_pts <= self._faulty_dts or frame.dts is None)
            time = frame.pts if use_pts else frame.dts
            if time is None:
                time = (self._last_out or 0) + 1
            if self._last_out is not None and time <= self._last_out:
                time = self._last_out + 1  # never two frames at one instant
            frame.pts = self._last_out = time
        return ready


def decoded_pictures(container: av.container.InputContainer,
                     stream: av.video.stream.VideoStream) -> Iterator[av.VideoFrame]:
    """Every decodable picture of the stream, in ``yuv420p`` (a damaged packet is skipped, as a
    player would)."""
    for packet in container.demux(stream):
        try:
            decoded = packet.decode()
        except av.error.InvalidDataError:
            continue
        for frame in decoded:
            yield maskable(frame)
