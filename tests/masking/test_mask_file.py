"""`vigie mask-file` on every clip of ../shared/footage: masked inside, intact outside, every frame
kept with increasing timestamps (issue 6; REGULATION.md R1)."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import pytest
from vigie.media.masks import MaskDocument

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
CLIPS = sorted(p.name for p in (Path(__file__).resolve().parents[3] / "shared" / "footage").glob("*.mp4"))


def _frames(path: Path) -> Iterator[tuple[int, np.ndarray]]:
    """Decoded luma planes, streamed: a whole clip in memory would take gigabytes."""
    with av.open(str(path)) as c:
        for f in c.decode(video=0):
            yield f.pts, f.to_ndarray(format="gray")


@pytest.mark.parametrize("clip", CLIPS)
def test_mask_file_on_every_clip(clip: str, footage: Path, tmp_path: Path) -> None:
    masks = tmp_path / "masks.json"
    masks.write_text(json.dumps(DOCUMENT))
    out = tmp_path / "masked.mp4"
    result = subprocess.run([sys.executable, "-m", "vigie.cli.main", "mask-file", "--masks",
                             str(masks), str(footage / clip), str(out)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    with av.open(str(out)) as c:
        stream = c.streams.video[0]
        assert stream.codec_context.name == "h264" and not c.streams.audio
        pts = [p.pts for p in c.demux(stream) if p.size]
    assert sorted(pts) == sorted(set(pts)), "timestamps unique"
    report, reg, count_in, count_out, last_pts = QualityReport(), None, 0, 0, None
    for (_, src), masked in itertools.zip_longest(_frames(footage / clip), _frames(out),
                                                  fillvalue=(None, None)):
        if src is not None:
            count_in += 1
        if masked[1] is None or src is None:
            count_out += masked[1] is not None
            continue
        count_out += 1
        assert last_pts is None or masked[0] > last_pts, "presentation timestamps increase"
        last_pts = masked[0]
        if reg is None:
            reg = regions(MaskDocument.parse(DOCUMENT), src.shape[1], src.shape[0])
        report.check(src, masked[1], reg, f"{clip} frame {count_in}")
    assert count_out == count_in, "as many frames out as decodable frames in"
    report.finish()
    assert not report.failures, report.failures[:5]
