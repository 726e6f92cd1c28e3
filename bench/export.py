"""Joining an export's videos: one hour of one 1080p camera (the demo's town-centre clip looped,
cut into 60-s fragmented-MP4 segments as the recorder stores them), joined by Vigie without
re-encoding, beside `ffmpeg -f concat -c copy` of the same segments in the same run (target: at most
1.5 × ffmpeg's time); then the verification's cost (SHA-256 of every byte).

    python -m bench.export [--minutes 60]
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from vigie.exports.package import join_segments

from bench.common import FOOTAGE, median, timed_child

CLIP = FOOTAGE / "town-centre-pedestrians-shopfronts-1920x1080.mp4"


def make_segments(folder: Path, minutes: int) -> list[Path]:
    """The clip looped for `minutes`, cut at keyframes into 60-s fMP4 files (no re-encoding)."""
    pattern = folder / "seg-%04d.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-stream_loop", "-1", "-i", str(CLIP), "-t", str(minutes * 60),
         "-an", "-c:v", "copy", "-f", "segment", "-segment_time", "60", "-reset_timestamps", "1",
         "-segment_format", "mp4", "-segment_format_options",
         "movflags=frag_keyframe+empty_moov+default_base_moof", str(pattern)],
        check=True, timeout=900)
    return sorted(folder.glob("seg-*.mp4"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, default=60)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if not CLIP.exists():
        raise SystemExit(f"{CLIP} not found: the benchmark uses ../shared/footage")
    with tempfile.TemporaryDirectory(prefix="vigie-bench-export-") as tmp:
        folder = Path(tmp)
        segments = make_segments(folder, args.minutes)
        size = sum(p.stat().st_size for p in segments)
        start = datetime(2026, 11, 29, 14, tzinfo=UTC)
        listing = folder / "list.txt"
        listing.write_text("".join(f"file '{p}'\n" for p in segments))
        vigie, ffmpeg = [], []
        for run in range(args.runs):
            data = [(start + timedelta(seconds=60 * i), p.read_bytes())
                    for i, p in enumerate(segments)]
            t0 = time.monotonic()
            join_segments(data, folder / f"vigie-{run}.mp4")
            vigie.append(time.monotonic() - t0)
            wall, _ = timed_child(["ffmpeg", "-v", "error", "-y", "-f", "concat", "-safe", "0",
                                   "-i", str(listing), "-c", "copy", str(folder / f"ff-{run}.mp4")],
                                  timeout_s=900)
            ffmpeg.append(wall)
        t0 = time.monotonic()
        digest = hashlib.sha256()
        with (folder / "vigie-0.mp4").open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        hashing = time.monotonic() - t0
        out = (folder / "vigie-0.mp4").stat().st_size
    print(f"{len(segments)} segments, {size / 2**20:.0f} MiB ({args.minutes} min of 1080p)")
    print(f"join (Vigie, PyAV remux): median {median(vigie):.2f} s over {args.runs} runs")
    print(f"ffmpeg -f concat -c copy: median {median(ffmpeg):.2f} s")
    print(f"vigie/ffmpeg = {median(vigie) / median(ffmpeg):.2f} (target <= 1.5)")
    print(f"verification: SHA-256 of the {out / 2**20:.0f} MiB video in {hashing:.2f} s")


if __name__ == "__main__":
    main()
