"""Inverse redaction — outside the kept box everything is blurred (vigie.custody.redaction.blur), inside it
the picture stays, except what the detectors propose there (faces, moving vehicles), blurred too.
Applied to decoded frames of the (masked) recording, in YUV planes (privacy masks stay: they are in
the pixels), encoded H.264 MP4. `redact_file` does it to one file (`vigie redact-file`);
`redact_segments` to a stretch of stored segments (a right-of-access copy, vigie.custody.access_copies)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from vigie.custody.redaction import detect
from vigie.custody.redaction.blur import block_size, blurred
from vigie.custody.redaction.keep import Box, KeepError, KeepTrack
from vigie.media.encoder import EncoderOptions, configure
from vigie.media.masks import yuv_planes
from vigie.media.pictures import (
    PresentationTimes,
    decoded_pictures,
    encodable,
    encoded_size,
)

SHARP = EncoderOptions(tune=None, crf=18)  # what is kept stays sharp
COPY_TIME_BASE = Fraction(1, 90000)
LEARN_S = 4.0  # the vehicle detector learns from the recording this long before the window
EPSILON_S = 0.0005  # a picture's time read through float sums: within it, on the edge


class RedactError(Exception):
    """Bad input: one clear line for the user."""


@dataclass(frozen=True)
class RedactResult:
    frames: int
    width: int
    height: int
    block: int
    kept_frames: int  # frames where the requester's box was applied
    proposed: int  # boxes the detectors blurred inside the kept region


def _apply(planes: tuple[np.ndarray, np.ndarray, np.ndarray], keep: Box | None,
           inside: list[Box], block: int) -> None:
    """In place: each plane blurred, then the kept box restored but for the proposed boxes."""
    for index, plane in enumerate(planes):
        shift = 0 if index == 0 else 1  # chroma planes are half size (4:2:0)
        original = plane.copy() if keep is not None else None
        plane[:] = blurred(plane, max(2, block >> shift))
        if keep is None or original is None:
            continue
        x, y, w, h = (v >> shift for v in keep)
        plane[y:y + h, x:x + w] = original[y:y + h, x:x + w]
        for bx, by, bw, bh in inside:
            bx, by, bw, bh = bx >> shift, by >> shift, (bw >> shift) + 1, (bh >> shift) + 1
            region = plane[by:by + bh, bx:bx + bw]
            if region.size:
                region[:] = blurred(np.ascontiguousarray(region), max(2, block >> shift))


def _inside(boxes: list[Box], keep: Box) -> list[Box]:
    """The proposed boxes that overlap the kept one, clipped to it."""
    kx, ky, kw, kh = keep
    out = []
    for x, y, w, h in boxes:
        ax, ay = max(x, kx), max(y, ky)
        bx, by = min(x + w, kx + kw), min(y + h, ky + kh)
        if bx > ax and by > ay:
            out.append((ax, ay, bx - ax, by - ay))
    return out


FACE_STRIDE = 5  # faces looked for on one picture in five; the boxes between are interpolated
FACE_MARGIN = 0.2  # an interpolated face box grows by this much of its size on each side


@dataclass
class _Pending:
    frame: av.VideoFrame
    t: float
    box: Box | None
    moving: list[Box]


class Redaction:
    """Pictures in (each with its time on the keep track), redacted pictures out in the same
    order: the kept box at that time, the rest blurred; the detectors' boxes (when assisting)
    blurred inside it too. The face detector, the costly part, runs on one picture in
    FACE_STRIDE; the pictures between wait for the next detection and get each face's box
    interpolated between the two (matched by position), grown by FACE_MARGIN — a face that
    appears or leaves keeps its box over the whole stretch. The vehicle detector sees every
    picture. The first picture fixes the size: the track must fit in it, and it may not change."""

    def __init__(self, keep: KeepTrack, *, assist: bool, source: str) -> None:
        self.keep, self.source = keep, source
        self.vehicles = detect.MovingVehicles() if assist else None
        self.size: tuple[int, int] | None = None
        self.block = 8
        self.frames = self.kept_frames = self.proposed = 0
        self._pending: list[_Pending] = []
        self._faces: list[Box] = []  # found on the first pending picture
        self._span = (keep.keys[0].t - 1.0, keep.keys[-1].t + 1.0)

    def first(self, frame: av.VideoFrame) -> bool:
        """Whether this picture is the first (the caller opens its encoder then)."""
        if self.size is None:
            self.size = (frame.width, frame.height)
            try:
                self.keep.check_inside(*self.size)
            except KeepError as exc:
                raise RedactError(str(exc)) from None
            self.block = block_size(*self.size)
            return True
        if self.size != (frame.width, frame.height):
            raise RedactError(f"{self.source}: resolution changes mid-recording")
        return False

    def push(self, frame: av.VideoFrame, t: float) -> list[av.VideoFrame]:
        """The pictures now redacted, in order (this one, or ones held for the next detection)."""
        box = self.keep.box_at(t)
        moving: list[Box] = []
        if self.vehicles is not None:
            moving = self.vehicles.boxes(yuv_planes(frame)[0])  # every picture: it learns
        if self.vehicles is None:
            self._redact(_Pending(frame, t, box, []), [])
            return [frame]
        ready: list[av.VideoFrame] = []
        if len(self._pending) == FACE_STRIDE:
            found = self._detect(frame, t)
            ready = self._release(found)
            self._faces = found
        elif not self._pending:
            self._faces = self._detect(frame, t)
        self._pending.append(_Pending(frame, t, box, moving))
        return ready

    def flush(self) -> list[av.VideoFrame]:
        if len(self._pending) > 1:
            # The last pictures are followed to a detection on the very last one, not left
            # with the faces where they were a few pictures earlier.
            last = self._pending.pop()
            found = self._detect(last.frame, last.t)
            ready = self._release(found)
            self._faces, self._pending = found, [last]
            return ready + self._release(found)
        return self._release(self._faces)

    def _detect(self, frame: av.VideoFrame, t: float) -> list[Box]:
        if not self._span[0] <= t <= self._span[1]:
            return []  # no kept box near: everything is blurred anyway
        return detect.faces(frame.to_ndarray(format="rgb24"))

    def _release(self, following: list[Box]) -> list[av.VideoFrame]:
        """The pending pictures, redacted with the faces interpolated from the detection on the
        first of them to `following` (the one after the last)."""
        pending, self._pending = self._pending, []
        count = len(pending)
        for n, item in enumerate(pending):
            faces = _between(self._faces, following, n / count, self.size or (0, 0))
            self._redact(item, faces)
        return [item.frame for item in pending]

    def _redact(self, item: _Pending, faces: list[Box]) -> None:
        inside = _inside(faces + item.moving, item.box) if item.box is not None else []
        _apply(yuv_planes(item.frame), item.box, inside, self.block)
        self.frames += 1
        self.kept_frames += item.box is not None
        self.proposed += len(inside)

    def result(self) -> RedactResult:
        if self.size is None:
            raise RedactError(f"{self.source}: no decodable video frame")
        return RedactResult(self.frames, self.size[0], self.size[1], self.block,
                            self.kept_frames, self.proposed)


def _between(before: list[Box], after: list[Box], f: float, size: tuple[int, int]) -> list[Box]:
    """Face boxes a fraction `f` of the way from one detection to the next: each box matched to
    the nearest of the other detection (within two of its sizes) moves linearly; one without a
    match stays where it was seen. All grown by FACE_MARGIN, clipped to the picture."""
    out: list[Box] = []
    unmatched = list(after)
    for a in before:
        ax, ay = a[0] + a[2] / 2, a[1] + a[3] / 2
        best = min(unmatched, default=None,
                   key=lambda b: (b[0] + b[2] / 2 - ax) ** 2 + (b[1] + b[3] / 2 - ay) ** 2)
        if best is not None and ((best[0] + best[2] / 2 - ax) ** 2 + (
                best[1] + best[3] / 2 - ay) ** 2) ** 0.5 <= 2 * max(a[2], a[3]):
            unmatched.remove(best)
            out.append(_grown(tuple(u + (v - u) * f for u, v in zip(a, best, strict=True)),
                              size))
        else:
            out.append(_grown(a, size))
    return out + [_grown(b, size) for b in unmatched]


def _grown(box: tuple[float, ...], size: tuple[int, int]) -> Box:
    x, y, w, h = box
    mx, my = w * FACE_MARGIN, h * FACE_MARGIN
    ax, ay = max(0, int(x - mx)), max(0, int(y - my))
    bx, by = min(size[0], int(x + w + mx) + 1), min(size[1], int(y + h + my) + 1)
    return ax, ay, max(1, bx - ax), max(1, by - ay)


def _written(target: Path, write: Callable[[Path], RedactResult]) -> RedactResult:
    """Written under a temporary name and renamed when complete: a refusal halfway (a box
    outside the picture, a resolution change) leaves nothing behind."""
    partial = target.with_name(f".{target.name}.partial")
    try:
        result = write(partial)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(target)
    return result


def _open(source: Path) -> av.container.InputContainer:
    if not source.is_file():
        raise RedactError(f"{source}: no such file")
    try:
        return av.open(str(source))
    except av.error.FFmpegError as exc:
        raise RedactError(f"{source}: not a video FFmpeg can read ({exc.strerror})") from None


def redact_file(keep: KeepTrack, source: Path, target: Path, *, assist: bool = False,
                options: EncoderOptions | None = None) -> RedactResult:
    return _written(target, lambda partial: _redact_file(keep, source, partial, assist=assist,
                                                         options=options or SHARP))


def _redact_file(keep: KeepTrack, source: Path, target: Path, *, assist: bool,
                 options: EncoderOptions) -> RedactResult:
    redaction = Redaction(keep, assist=assist, source=str(source))
    with _open(source) as inp:
        if not inp.streams.video:
            raise RedactError(f"{source}: no video stream")
        ist = inp.streams.video[0]
        ist.thread_type = "AUTO"
        rate = ist.average_rate or ist.guessed_rate
        with av.open(str(target), "w", format="mp4") as out:
            ost = out.add_stream("libx264")

            def encode(frame: av.VideoFrame) -> None:
                frame.time_base = ist.time_base
                frame.pict_type = av.video.frame.PictureType.NONE
                for packet in ost.encode(encodable(frame)):
                    out.mux(packet)

            times = PresentationTimes()
            for frame in decoded_pictures(inp, ist):
                if redaction.first(frame):
                    width, height = encoded_size(frame.width, frame.height)
                    configure(ost.codec_context, options, width=width, height=height,
                              time_base=ist.time_base or COPY_TIME_BASE,
                              fps=float(rate) if rate else None)
                    ost.time_base = ist.time_base
                for redacted in redaction.push(frame, float(frame.time)
                                               if frame.time is not None else 0.0):
                    for ready in times.push(redacted):
                        encode(ready)
            for redacted in redaction.flush():
                for ready in times.push(redacted):
                    encode(ready)
            result = redaction.result()
            for ready in times.flush():
                encode(ready)
            for packet in ost.encode(None):
                out.mux(packet)
    return result


@dataclass(frozen=True)
class Piece:
    """A stored segment on the copy's clock: its file, and where it starts (seconds from the
    copy's start; negative when it began before)."""
    path: Path
    offset_s: float


def redact_segments(keep: KeepTrack, pieces: list[Piece], duration_s: float, target: Path, *,
                    assist: bool = True, options: EncoderOptions | None = None,
                    progress: Callable[[float], None] | None = None) -> RedactResult:
    """The pictures of `pieces` between 0 and `duration_s` on the copy's clock, redacted, into
    one MP4 whose time starts at 0 (the keep track's clock); `progress` hears the share done."""
    return _written(target, lambda partial: _redact_segments(
        keep, pieces, duration_s, partial, assist=assist, options=options or SHARP,
        progress=progress))


def _redact_segments(keep: KeepTrack, pieces: list[Piece], duration_s: float, target: Path, *,
                     assist: bool, options: EncoderOptions,
                     progress: Callable[[float], None] | None) -> RedactResult:
    redaction = Redaction(keep, assist=assist, source="the held recording")
    last_pts = -1
    with av.open(str(target), "w", format="mp4", options={"movflags": "+faststart"}) as out:
        ost = out.add_stream("libx264")
        for piece in pieces:
            with _open(piece.path) as inp:
                ist = inp.streams.video[0]
                ist.thread_type = "AUTO"
                rate = ist.average_rate or ist.guessed_rate
                for frame in decoded_pictures(inp, ist):
                    t = piece.offset_s + (float(frame.time) if frame.time is not None else 0.0)
                    if t < -EPSILON_S and redaction.vehicles is not None and t >= -LEARN_S:
                        # Just before the window: the vehicle detector learns the scene, so
                        # that it proposes from the copy's first picture.
                        redaction.vehicles.boxes(yuv_planes(frame)[0])
                    if t < -EPSILON_S or t >= duration_s - EPSILON_S:
                        continue  # outside the copy's window (a picture on its edge: in)
                    t = max(0.0, t)
                    if redaction.first(frame):
                        width, height = encoded_size(frame.width, frame.height)
                        configure(ost.codec_context, options, width=width, height=height,
                                  time_base=COPY_TIME_BASE, fps=float(rate) if rate else None)
                        ost.time_base = COPY_TIME_BASE
                    pts = max(round(t / COPY_TIME_BASE), last_pts + 1)
                    last_pts = pts
                    frame.pts, frame.time_base = pts, COPY_TIME_BASE
                    frame.pict_type = av.video.frame.PictureType.NONE
                    for redacted in redaction.push(frame, t):
                        for packet in ost.encode(encodable(redacted)):
                            out.mux(packet)
                    if progress is not None and redaction.frames % 25 == 0:
                        progress(min(1.0, t / duration_s))
        for redacted in redaction.flush():
            for packet in ost.encode(encodable(redacted)):
                out.mux(packet)
        result = redaction.result()
        for packet in ost.encode(None):
            out.mux(packet)
    return result
