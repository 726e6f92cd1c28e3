"""Masking benchmark: Vigie's masking core (`vigie.media.maskfile`, the same MaskGeometry and
libx264 settings as the service) against the ffmpeg CLI doing decode → drawbox → libx264 with the
same preset, CRF and keyframes, both on one thread; five interleaved runs, medians.

    .venv/bin/python -m bench.masking [--runs 5] [--seconds 30]    (or: make bench-masking)

Inputs are generated at run time from ../shared/footage: the street clip looped to 30 s at 25 fps,
at 1280x720 and 1920x1080. Last line: `masking_vs_ffmpeg <ratio at 1080p>`.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from vigie.media.encoder import EncoderOptions
from vigie.media.maskfile import mask_file
from vigie.media.masks import MaskDocument

from bench.common import FOOTAGE, median, record_cost, timed_child

CLIP = FOOTAGE / "town-centre-pedestrians-shopfronts-1920x1080.mp4"
POLYGONS = [(0.05, 0.05, 0.30, 0.40), (0.65, 0.05, 0.95, 0.35), (0.35, 0.60, 0.60, 0.95)]
PRESET, CRF = "veryfast", 23


def document() -> MaskDocument:
    return MaskDocument.parse({"schema_version": 1, "version": 1, "masks": [
        {"label": f"zone {i}", "mode": "fill",
         "points": [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]}
        for i, (x0, y0, x1, y1) in enumerate(POLYGONS)]})


def make_input(folder: Path, width: int, height: int, seconds: float) -> Path:
    out = folder / f"input-{width}x{height}.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-stream_loop", "-1", "-i", str(CLIP),
                    "-t", str(seconds), "-an", "-vf", f"scale={width}:{height},fps=25",
                    "-c:v", "libx264", "-preset", "medium", "-crf", "20", "-g", "50",
                    "-bf", "0", str(out)], check=True)
    return out


def ffmpeg_argv(src: Path, dst: Path, width: int, height: int) -> list[str]:
    boxes = ",".join(
        f"drawbox=x={round(x0 * width)}:y={round(y0 * height)}:w={round((x1 - x0) * width)}:"
        f"h={round((y1 - y0) * height)}:color=black:t=fill" for x0, y0, x1, y1 in POLYGONS)
    return ["ffmpeg", "-v", "error", "-y", "-threads", "1", "-i", str(src), "-filter_threads", "1",
            "-vf", boxes, "-an", "-c:v", "libx264", "-threads", "1", "-preset", PRESET,
            "-crf", str(CRF), "-g", "100000", "-x264-params", "scenecut=0",
            "-force_key_frames", "source", str(dst)]


def run_vigie(src: Path, dst: Path) -> float:
    t0 = time.perf_counter()
    mask_file(document(), src, dst, EncoderOptions(preset=PRESET, crf=CRF, tune=None, threads=1),
              decoder_threads=1)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--record", action="store_true",
                    help="write the fps per core into libs/vigie/operations/sizing/costs.json")
    args = ap.parse_args()
    if not shutil.which("ffmpeg"):
        raise SystemExit("ffmpeg CLI missing: `make setup` installs it")
    frames = int(args.seconds * 25)
    print(f"settings: libx264 preset={PRESET} crf={CRF}, keyframes as the source (GOP 50), "
          f"3 fill polygons, one thread each side, {args.runs} interleaved runs, medians")
    ratio_1080 = float("nan")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for width, height in ((1280, 720), (1920, 1080)):
            src = make_input(folder, width, height, args.seconds)
            vigie_s, ffmpeg_s = [], []
            for _ in range(args.runs):
                vigie_s.append(run_vigie(src, folder / "vigie.mp4"))
                wall, _cpu = timed_child(ffmpeg_argv(src, folder / "ffmpeg.mp4", width, height), 600)
                ffmpeg_s.append(wall)
            v_fps, f_fps = frames / median(vigie_s), frames / median(ffmpeg_s)
            in_bytes = src.stat().st_size
            ratio = v_fps / f_fps
            print(f"{width}x{height}: vigie {v_fps:.1f} fps/core, ffmpeg {f_fps:.1f} fps/core, "
                  f"ratio {ratio:.2f}; output/input bytes vigie "
                  f"{(folder / 'vigie.mp4').stat().st_size / in_bytes:.2f}, ffmpeg "
                  f"{(folder / 'ffmpeg.mp4').stat().st_size / in_bytes:.2f}; "
                  f"cameras per core at 25 fps: {v_fps / 25:.1f}")
            if height == 1080:
                ratio_1080 = ratio
            if args.record:
                record_cost(["masking_fps_per_core", f"{width}x{height}"], v_fps,
                            "bench.masking (vigie.media.maskfile, one thread)")
    print(f"masking_vs_ffmpeg {ratio_1080:.2f}")


if __name__ == "__main__":
    main()
