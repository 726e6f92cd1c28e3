"""`vigie mask-file` on clips of every kind a camera or a file may bring — generated here (odd
sizes, full range, 10 bits, H.265, AVI with B-frames and no presentation times, audio) and, when the
folder is beside the repository, every clip of ../shared/footage: masked inside, intact outside,
every frame kept, each at the time ffmpeg gives it (issues 6 and 17; REGULATION.md R1)."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from vigie.media.masks import MaskDocument

from tests.clips import first_seconds, frame_times, make_clip
from tests.harness import FOOTAGE
from tests.masking.quality import QualityReport, regions

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DOCUMENT = {
    "schema_version": 1, "camera": "test/clip", "version": 2,
    "masks": [
        {"label": "fenêtres", "mode": "fill",
         "points": [[0.05, 0.05], [0.35, 0.05], [0.35, 0.45], [0.05, 0.45]]},
        {"label": "jardin", "mode": "pixelate",
         "points": [[0.55, 0.05], [0.95, 0.05], [0.95, 0.45], [0.55, 0.45]]},
        {"label": "entrée", "mode": "blur",
         "points": [[0.30, 0.55], [0.70, 0.55], [0.70, 0.95], [0.30, 0.95]]},
    ],
}
# Made by the suite itself: what broke mask-file (issue 17) and what cameras commonly send.
GENERATED = {
    "h264-640x360.mp4": {"width": 640, "height": 360},
    # libx264 cannot write an odd 4:2:0 picture (the very failure): odd sources are 4:4:4 H.264
    # and MJPEG, as some cameras send.
    "odd-641x361.mp4": {"width": 641, "height": 361, "pix_fmt": "yuv444p"},
    "odd-mjpeg-641x361.avi": {"width": 641, "height": 361, "codec": "mjpeg", "pix_fmt": "yuvj420p"},
    "full-range-yuvj420p.mp4": {"pix_fmt": "yuvj420p"},
    "ten-bit-yuv420p10le.mkv": {"pix_fmt": "yuv420p10le"},
    "hevc-320x240.mp4": {"codec": "libx265"},
    "b-frames-no-pts.avi": {"bframes": 2},
    "odd-b-frames-321x241.avi": {"width": 321, "height": 241, "bframes": 3, "pix_fmt": "yuv444p"},
    "with-audio.mp4": {"audio": True},
}
FOOTAGE_CLIPS = sorted(p.name for p in FOOTAGE.glob("*.mp4")) if FOOTAGE.is_dir() else []


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("clips")
    for name, options in GENERATED.items():
        make_clip(folder / name, frames=60, **options)  # type: ignore[arg-type]
    return folder


def _frames(path: Path) -> Iterator[tuple[int, np.ndarray]]:
    """Decoded luma planes, streamed: a whole clip in memory would take gigabytes."""
    with av.open(str(path)) as c:
        for f in c.decode(video=0):
            # Through RGB: full-range and limited-range sources compare on the same scale.
            yield f.pts, cv2.cvtColor(f.to_ndarray(format="rgb24"), cv2.COLOR_RGB2GRAY)


@pytest.mark.parametrize("clip", [*GENERATED, *FOOTAGE_CLIPS])
def test_mask_file_on_every_kind_of_clip(clip: str, generated: Path, tmp_path: Path) -> None:
    # Real footage cut at its first keyframe past 15 s (copied, not re-encoded): its codec, size
    # and timestamps, in bounded time — a three-minute clip took more than five minutes.
    source = generated / clip if clip in GENERATED else first_seconds(
        FOOTAGE / clip, tmp_path / f"cut-{clip}", 15)
    masks = tmp_path / "masks.json"
    masks.write_text(json.dumps(DOCUMENT))
    out = tmp_path / "masked.mp4"
    result = subprocess.run([sys.executable, "-m", "vigie.cli.main", "mask-file", "--masks",
                             str(masks), str(source), str(out)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    with av.open(str(out)) as c:
        stream = c.streams.video[0]
        assert stream.codec_context.name == "h264" and not c.streams.audio
        assert stream.codec_context.pix_fmt == "yuv420p", "what every browser decodes"
        pts = [p.pts for p in c.demux(stream) if p.size]
    assert sorted(pts) == sorted(set(pts)), "timestamps unique"
    # Issue 17: each frame at the time ffmpeg gives it in the source (no first frame held, no
    # shift), within half a frame.
    times_in, times_out = frame_times(source), frame_times(out)
    assert len(times_out) == len(times_in)
    step = min((b - a for a, b in itertools.pairwise(times_in)), default=0.04)
    shifted = [(i, a, b) for i, (a, b) in enumerate(zip(times_in, times_out)) if abs(a - b) > step / 2]
    assert not shifted, f"frames not at their source time: {shifted[:5]}"
    report, reg, count_in, count_out, last_pts = QualityReport(), None, 0, 0, None
    for (_, src), masked in itertools.zip_longest(_frames(source), _frames(out),
                                                  fillvalue=(None, None)):
        if src is not None:
            count_in += 1
        if masked[1] is None or src is None:
            count_out += masked[1] is not None
            continue
        count_out += 1
        assert last_pts is None or masked[0] > last_pts, "presentation timestamps increase"
        last_pts = masked[0]
        height, width = src.shape
        # An odd side is padded by one pixel, never rescaled: the picture is the source's.
        assert masked[1].shape == (height + height % 2, width + width % 2)
        if reg is None:
            reg = regions(MaskDocument.parse(DOCUMENT), width, height)
        report.check(src, masked[1][:height, :width], reg, f"{clip} frame {count_in}")
    assert count_out == count_in, "as many frames out as decodable frames in"
    report.finish()
    assert not report.failures, report.failures[:5]
