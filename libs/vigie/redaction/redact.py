"""`vigie redact-file`: inverse redaction of a video file — outside the kept box everything is
blurred (vigie.redaction.blur), inside it the picture stays, except what the detectors propose
there (faces, moving vehicles), blurred too. Applied to decoded frames of the (masked) recording,
in YUV planes (privacy masks stay: they are in the pixels), encoded H.264 MP4."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from vigie.media.encoder import EncoderOptions, configure
from vigie.media.masks import yuv_planes
from vigie.media.pictures import PresentationTimes, encodable, encoded_size, maskable
from vigie.redaction import detect
from vigie.redaction.blur import block_size, blurred
from vigie.redaction.keep import Box, KeepError, KeepTrack


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


def redact_file(keep: KeepTrack, source: Path, target: Path, *, assist: bool = False,
                options: EncoderOptions | None = None) -> RedactResult:
    """Written under a temporary name and renamed when complete: a refusal halfway (a box
    outside the picture, a resolution change) leaves nothing behind."""
    partial = target.with_name(f".{target.name}.partial")
    try:
        result = _redact(keep, source, partial, assist=assist, options=options)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(target)
    return result


def _redact(keep: KeepTrack, source: Path, target: Path, *, assist: bool,
            options: EncoderOptions | None) -> RedactResult:
    options = options or EncoderOptions(tune=None, crf=18)  # what is kept stays sharp
    if not source.is_file():
        raise RedactError(f"{source}: no such file")
    try:
        inp = av.open(str(source))
    except av.error.FFmpegError as exc:
        raise RedactError(f"{source}: not a video FFmpeg can read ({exc.strerror})") from None
    frames = kept_frames = proposed = 0
    size: tuple[int, int] | None = None
    block = 8
    vehicles = detect.MovingVehicles() if assist else None
    with inp:
        if not inp.streams.video:
            raise RedactError(f"{source}: no video stream")
        ist = inp.streams.video[0]
        ist.thread_type = "AUTO"
        rate = ist.average_rate or ist.guessed_rate
        with av.open(str(target), "w", format="mp4") as out:
            ost = out.add_stream("libx264")
            times = PresentationTimes()
            opened = False

            def encode(frame: av.VideoFrame) -> None:
                frame.time_base = ist.time_base
                frame.pict_type = av.video.frame.PictureType.NONE
                for packet in ost.encode(encodable(frame)):
                    out.mux(packet)

            for packet in inp.demux(ist):
                try:
                    decoded = packet.decode()
                except av.error.InvalidDataError:
                    continue
                for frame in decoded:
                    frame = maskable(frame)
                    if size is None:
                        size = (frame.width, frame.height)
                        try:
                            keep.check_inside(*size)
                        except KeepError as exc:
                            raise RedactError(str(exc)) from None
                        block = block_size(*size)
                        width, height = encoded_size(*size)
                        configure(ost.codec_context, options, width=width, height=height,
                                  time_base=ist.time_base or Fraction(1, 90000),
                                  fps=float(rate) if rate else None)
                        ost.time_base = ist.time_base
                        opened = True
                    elif size != (frame.width, frame.height):
                        raise RedactError(f"{source}: resolution changes mid-file")
                    t = float(frame.time) if frame.time is not None else 0.0
                    box = keep.box_at(t)
                    planes = yuv_planes(frame)
                    inside: list[Box] = []
                    if vehicles is not None:
                        moving = vehicles.boxes(planes[0])
                        if box is not None:
                            found = detect.faces(frame.to_ndarray(format="rgb24")) + moving
                            inside = _inside(found, box)
                    _apply(planes, box, inside, block)
                    frames += 1
                    kept_frames += box is not None
                    proposed += len(inside)
                    for ready in times.push(frame):
                        encode(ready)
            if not opened:
                raise RedactError(f"{source}: no decodable video frame")
            for ready in times.flush():
                encode(ready)
            for packet in ost.encode(None):
                out.mux(packet)
    assert size is not None
    return RedactResult(frames, size[0], size[1], block, kept_frames, proposed)
