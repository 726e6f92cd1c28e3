"""Joining an export's videos: one hour of one 1080p camera (the demo's town-centre clip looped,
cut into 60-s fragmented-MP4 segments as the recorder stores them), joined by Vigie without
re-encoding — a plain MP4, then as a package builds it, a fragmented MP4 that is a signed ONVIF
export file — beside `ffmpeg -f concat -c copy` of the same segments in the same run (target: at
most 1.5 × ffmpeg's time); then the verification's cost (SHA-256 of every byte, the ONVIF file's
signature, the pictures against the recorder's per-segment hashes).

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

from vigie.custody.exports.onvif import ExportInfo, Source, verify_file
from vigie.custody.exports.package import join_segments
from vigie.media.payload import payload_sha256, split_payload
from vigie.security.signing import SigningKey

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
        key = SigningKey.generate()
        info = ExportInfo(unit_name="Vigie", unit_url="", operator="bench", exported_at=start,
                          start=start, sources=(Source(1, "Centre-ville", "vigie:bench/centre",
                                                       ""),), place="Centre-ville",
                          latitude=48.71, longitude=2.25)
        vigie, both, ffmpeg = [], [], []
        for run in range(args.runs):
            data = [(start + timedelta(seconds=60 * i), p) for i, p in enumerate(segments)]
            t0 = time.monotonic()
            join_segments(data, folder / f"vigie-{run}.mp4")
            vigie.append(time.monotonic() - t0)
            t0 = time.monotonic()
            join_segments(data, folder / f"onvif-{run}.mp4", (info, key))
            both.append(time.monotonic() - t0)
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
        t0 = time.monotonic()
        problem = verify_file(folder / "onvif-0.mp4", key.public_pem())
        onvif_check = time.monotonic() - t0
        assert problem == "", problem
        signed = [payload_sha256(p) for p in segments]  # what the recorder signed, per segment
        t0 = time.monotonic()
        assert split_payload(folder / "onvif-0.mp4", [n for _, n in signed]) == \
            [d for d, _ in signed]
        pictures = time.monotonic() - t0
    print(f"{len(segments)} segments, {size / 2**20:.0f} MiB ({args.minutes} min of 1080p)")
    print(f"join (Vigie, PyAV remux), plain MP4: median {median(vigie):.2f} s over {args.runs} runs")
    print(f"join as the package does, a signed ONVIF export MP4: median {median(both):.2f} s")
    print(f"ffmpeg -f concat -c copy: median {median(ffmpeg):.2f} s")
    print(f"vigie/ffmpeg = {median(vigie) / median(ffmpeg):.2f}, with ONVIF "
          f"{median(both) / median(ffmpeg):.2f} (target <= 1.5)")
    print(f"verification: SHA-256 of the {out / 2**20:.0f} MiB video in {hashing:.2f} s; ONVIF "
          f"signature {onvif_check:.2f} s; pictures against the recorder's hashes {pictures:.2f} s")


if __name__ == "__main__":
    main()
