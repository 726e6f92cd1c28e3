"""Synthetic masked video for recorder tests: real H.264 access units with chosen capture times."""

from __future__ import annotations

import uuid
from fractions import Fraction

import av
import cv2
import numpy as np
from vigie.media.bitstream import parameter_sets
from vigie.plumbing.bus.frames import Frame

FRAME_NS = 40_000_000  # 25 fps


def video_frames(camera: str, count: int, *, start_ns: int, gop: int = 25, mask_version: int = 1,
                 commune: str = "palaiseau", first_seq: int = 0,
                 gap_after: int | None = None, gap_ns: int = 0,
                 session: str | None = None) -> list[Frame]:
    """Frames of one masking session (a new one each call unless given: `seq` runs on within
    it, as a consumer checks)."""
    session = session or uuid.uuid4().hex[:12]
    enc = av.CodecContext.create("libx264", "w")
    enc.width, enc.height, enc.pix_fmt = 160, 120, "yuv420p"
    enc.time_base = Fraction(1, 90000)
    enc.options = {"preset": "ultrafast", "tune": "zerolatency",
                   "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0"}
    out: list[Frame] = []
    t = start_ns
    for i in range(count):
        if gap_after is not None and i == gap_after:
            t += gap_ns
        img = np.zeros((120, 160, 3), np.uint8)
        cv2.putText(img, str(i), (10, 80), cv2.FONT_HERSHEY_SIMPLEX, 1.5, (255, 255, 255), 3)
        picture = av.VideoFrame.from_ndarray(img, format="bgr24").reformat(format="yuv420p")
        picture.pts = i * 3600
        if gap_after is not None and i == gap_after:
            picture.pict_type = av.video.frame.PictureType.I  # masking resumes at a keyframe
        for p in enc.encode(picture):
            data = bytes(p)
            out.append(Frame(
                commune=commune, camera=camera, codec="h264", width=160, height=120, pts=p.pts,
                dts=p.dts, time_base=Fraction(1, 90000), keyframe=p.is_keyframe,
                capture_time_ns=t, session=session, seq=first_seq + i, mask_version=mask_version,
                parameter_sets=parameter_sets(data) if p.is_keyframe else None, data=data))
        t += FRAME_NS
    return out
