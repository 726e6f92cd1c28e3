"""One picture of a held recording for the redaction editor: the masked picture shown at a time
(privacy masks stay: they are in the pixels), as a JPEG at the recording's own size — the box the
operator draws on it is in the recording's pixels —, and, when asked, the detectors' proposals
for that picture (faces; vehicles moving over the seconds before). Nothing of it is kept (R29)."""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import av

from vigie.custody.redaction import detect
from vigie.custody.redaction.keep import Box
from vigie.media.masks import yuv_planes
from vigie.media.pictures import decoded_pictures

LEARN_S = 4.0  # the vehicle detector learns the scene from this long before the picture


class NoStill(LookupError):
    """No decodable picture in the segment at or after that time."""


@dataclass(frozen=True)
class Still:
    jpeg: bytes
    width: int
    height: int
    t: float  # the picture's time in the segment, seconds
    faces: list[Box] = field(default_factory=list)
    vehicles: list[Box] = field(default_factory=list)


def still(segment: bytes, t: float, *, propose: bool = False) -> Still:
    """The picture shown at `t` seconds into a stored segment (the last one at or before it, or
    the first when `t` is before it)."""
    vehicles = detect.MovingVehicles() if propose else None
    chosen: av.VideoFrame | None = None
    moving: list[Box] = []
    with av.open(io.BytesIO(segment), "r", format="mp4") as inp:
        for frame in decoded_pictures(inp, inp.streams.video[0]):
            at = float(frame.time) if frame.time is not None else 0.0
            if chosen is not None and at > t:
                break
            if vehicles is not None and at >= t - LEARN_S:
                moving = vehicles.boxes(yuv_planes(frame)[0])
            chosen = frame
    if chosen is None:
        raise NoStill("no decodable picture in this recording")
    out = io.BytesIO()
    chosen.to_image().save(out, format="JPEG", quality=85)
    found = detect.faces(chosen.to_ndarray(format="rgb24")) if propose else []
    return Still(out.getvalue(), chosen.width, chosen.height,
                 float(chosen.time) if chosen.time is not None else 0.0, found, moving)


def picture_size(segment: bytes) -> tuple[int, int]:
    """The recording's picture size (its first decodable picture's)."""
    picture = still(segment, 0.0)
    return picture.width, picture.height
