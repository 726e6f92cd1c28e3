"""`vigie mask-file`: apply a mask document to a video file, exactly as the masking service does.

Any video FFmpeg decodes in, H.264 MP4 out: every decodable frame kept with its timestamp, audio
dropped. Used by the tests, the benchmark, and a commune checking its masks on a clip.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

from vigie.media.encoder import EncoderOptions, configure
from vigie.media.masks import MaskDocument, MaskGeometry, yuv_planes
from vigie.media.pictures import PresentationTimes, encodable, encoded_size, maskable


class MaskFileError(Exception):
    """Bad input: one clear line for the user."""


@dataclass(frozen=True)
class MaskFileResult:
    frames_in: int
    frames_out: int
    width: int
    height: int


def mask_file(document: MaskDocument, source: Path, target: Path,
              options: EncoderOptions | None = None, *, decoder_threads: int = 0) -> MaskFileResult:
    """Mask ``source`` into ``target``; ``decoder_threads`` 0 lets FFmpeg choose (1 for benchmarks)."""
    options = options or EncoderOptions(tune=None)
    if not source.is_file():
        raise MaskFileError(f"{source}: no such file")
    try:
        inp = av.open(str(source))
    except av.error.FFmpegError as exc:
        raise MaskFileError(f"{source}: not a video FFmpeg can read ({exc.strerror})") from None
    with inp:
        if not inp.streams.video:
            raise MaskFileError(f"{source}: no video stream")
        ist = inp.streams.video[0]
        if decoder_threads:
            ist.codec_context.thread_count = decoder_threads
        else:
            ist.thread_type = "AUTO"
        rate = ist.average_rate or ist.guessed_rate
        frames_in = frames_out = 0
        geometry: MaskGeometry | None = None
        with av.open(str(target), "w", format="mp4") as out:
            ost = out.add_stream("libx264")
            opened = False
            times = PresentationTimes()

            def encode(frame: av.VideoFrame) -> int:
                frame.time_base = ist.time_base
                frame.pict_type = av.video.frame.PictureType.I if frame.key_frame else \
                    av.video.frame.PictureType.NONE
                written = 0
                for out_packet in ost.encode(encodable(frame)):
                    out.mux(out_packet)
                    written += 1
                return written

            for packet in inp.demux(ist):
                try:
                    decoded = packet.decode()
                except av.error.InvalidDataError:
                    continue  # an undecodable packet: its frame is not "decodable", skip it
                for frame in decoded:
                    frames_in += 1
                    frame = maskable(frame)  # full range, 10 bits, 4:2:2 → yuv420p
                    if geometry is None or (geometry.width, geometry.height) != (frame.width, frame.height):
                        if geometry is not None:
                            raise MaskFileError(f"{source}: resolution changes mid-file")
                        geometry = MaskGeometry(document, frame.width, frame.height)
                    if not opened:
                        width, height = encoded_size(frame.width, frame.height)
                        configure(ost.codec_context, options, width=width, height=height,
                                  time_base=ist.time_base or Fraction(1, 90000),
                                  fps=float(rate) if rate else None)
                        ost.time_base = ist.time_base
                        opened = True
                    geometry.apply(*yuv_planes(frame))
                    for ready in times.push(frame):
                        frames_out += encode(ready)
            if not opened:
                raise MaskFileError(f"{source}: no decodable video frame")
            for ready in times.flush():
                frames_out += encode(ready)
            for out_packet in ost.encode(None):
                out.mux(out_packet)
                frames_out += 1
    assert geometry is not None
    return MaskFileResult(frames_in, frames_out, geometry.width, geometry.height)
