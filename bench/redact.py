"""Redacted copies (R22): frames per second per core of `vigie redact-file` at 640×360 and 1080p,
with and without detector assistance, beside `ffmpeg` blurring the whole picture (boxblur) and
encoding with libx264 over the same clip in the same run. CPU time, not wall time: per core.

    python -m bench.redact
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from bench.common import FOOTAGE, timed_child

CLIPS = {"640x360": "shopfront-door-cctv-timestamp-640x360.mp4",
         "1920x1080": "town-centre-pedestrians-shopfronts-1920x1080.mp4"}


def frames_of(path: Path) -> tuple[int, float]:
    """The clip's pictures, and the time of the last one (seconds from the first)."""
    import av

    with av.open(str(path)) as c:
        times = [float(f.time or 0.0) for f in c.decode(video=0)]
    return len(times), times[-1] - times[0]


def main() -> None:
    if not all((FOOTAGE / clip).exists() for clip in CLIPS.values()):
        raise SystemExit(f"{FOOTAGE}: the benchmark uses ../shared/footage")
    with tempfile.TemporaryDirectory(prefix="vigie-bench-redact-") as tmp:
        folder = Path(tmp)
        for size, clip in CLIPS.items():
            source = FOOTAGE / clip
            w, h = (int(v) for v in size.split("x"))
            keep = folder / f"keep-{size}.json"
            frames, duration = frames_of(source)
            # The requester's box on every picture, moving across: the face detector runs on
            # the whole clip, as it does on a copy (it runs only where a box is kept).
            keep.write_text(json.dumps([{"t": 0, "box": [w // 6, h // 4, w // 4, h // 2]},
                                        {"t": duration, "box": [w // 2, h // 4, w // 4, h // 2]}]))
            rows = []
            for label, extra in (("vigie redact-file", []), ("vigie redact-file --assist",
                                                             ["--assist"])):
                _, cpu = timed_child([sys.executable, "-m", "vigie.cli.main", "redact-file",
                                      "--keep", str(keep), *extra, str(source),
                                      str(folder / "out.mp4")], timeout_s=1800)
                rows.append((label, cpu))
            block = max(8, min(w, h) // 24)
            _, cpu = timed_child(["ffmpeg", "-v", "error", "-y", "-threads", "1", "-i", str(source),
                                  "-an", "-vf", f"boxblur={block}:2", "-c:v", "libx264",
                                  "-preset", "veryfast", "-crf", "18", "-threads", "1",
                                  str(folder / "ff.mp4")], timeout_s=1800)
            baseline = frames / cpu
            print(f"{size} ({clip}, {frames} frames):")
            print(f"  ffmpeg boxblur + libx264:     {baseline:7.1f} frames/s per core")
            for label, used in rows:
                fps = frames / used
                print(f"  {label:28s} {fps:7.1f} frames/s per core ({fps / baseline:.2f} × ffmpeg)")


if __name__ == "__main__":
    main()
