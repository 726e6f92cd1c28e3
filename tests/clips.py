"""Video clips the tests make themselves (the suite stands on the repository alone; the real footage
of ../shared/footage is an optional, richer demo). Each clip is a bright scene with a moving bar and
a frame counter drawn as a bit pattern, so that tests can find masks, motion and frame order."""

from __future__ import annotations

import json
import subprocess
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

BITS = 10  # frame number drawn as 10 cells along the bottom


def scene(index: int, width: int, height: int) -> np.ndarray:
    """A BGR picture: light background, a moving dark bar, the frame number as cells."""
    img = np.full((height, width, 3), (200, 210, 220), np.uint8)
    x = (index * 7) % max(1, width - width // 10)
    cv2.rectangle(img, (x, height // 3), (x + width // 10, 2 * height // 3), (30, 40, 160), -1)
    cell = max(2, width // (2 * BITS))
    for bit in range(BITS):
        if index >> bit & 1:
            cv2.rectangle(img, (bit * cell, height - cell), ((bit + 1) * cell - 1, height - 1),
                          (0, 0, 0), -1)
    return img


def make_clip(path: Path, *, width: int = 320, height: int = 240, frames: int = 50,
              fps: int = 25, codec: str = "libx264", pix_fmt: str = "yuv420p", bframes: int = 0,
              gop: int = 25, audio: bool = False) -> Path:
    """Encode a clip; the container follows the file's extension (mp4, avi, mkv…)."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        options = {"g": str(gop), "bf": str(bframes)} if codec != "mjpeg" else {}
        if codec == "libx264":
            options["preset"] = "ultrafast" if not bframes else "veryfast"
        elif codec == "libx265":
            options.update({"preset": "ultrafast", "x265-params": f"log-level=error:bframes={bframes}"})
        stream.codec_context.options = options
        sound = None
        if audio:
            sound = out.add_stream("aac", rate=48000)
        for i in range(frames):
            picture = av.VideoFrame.from_ndarray(scene(i, width, height), format="bgr24")
            picture = picture.reformat(format=pix_fmt)
            picture.pts = i
            for packet in stream.encode(picture):
                out.mux(packet)
            if sound is not None:
                samples = np.zeros((1, 48000 // fps), np.float32)
                chunk = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
                chunk.sample_rate, chunk.pts = 48000, i * (48000 // fps)
                for packet in sound.encode(chunk):
                    out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
        if sound is not None:
            for packet in sound.encode(None):
                out.mux(packet)
    return path


def frame_times(path: Path) -> list[float]:
    """Each video frame's presentation time in seconds, as the ffmpeg CLI's ffprobe reads it."""
    run = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
         "stream=time_base:frame=best_effort_timestamp", "-of", "json", str(path)],
        capture_output=True, text=True, check=True)
    data = json.loads(run.stdout)
    base = Fraction(data["streams"][0]["time_base"])
    times: list[float] = []
    for frame in data["frames"]:
        if "best_effort_timestamp" in frame:
            times.append(float(frame["best_effort_timestamp"] * base))
        else:  # the decoder's last frames of a file without times: ffmpeg counts one step on
            step = times[-1] - times[-2] if len(times) > 1 else 0.04
            times.append(times[-1] + step if times else 0.0)
    return times


def frame_numbers(path: Path) -> list[int]:
    """The frame counter read back from each decoded picture (see ``scene``)."""
    numbers = []
    with av.open(str(path)) as container:
        for picture in container.decode(video=0):
            gray = picture.to_ndarray(format="gray")
            height, width = gray.shape
            cell = max(2, width // (2 * BITS))
            row = gray[height - cell // 2 - 1]
            numbers.append(sum(1 << bit for bit in range(BITS)
                               if row[bit * cell + cell // 2] < 100))
    return numbers


def first_seconds(source: Path, target: Path, seconds: float) -> Path:
    """The video of `source` up to the first keyframe after `seconds`, copied (no re-encoding):
    a real clip's codec, size and timestamps, in bounded test time."""
    with av.open(str(source)) as inp, av.open(str(target), "w") as out:
        video = inp.streams.video[0]
        copy = out.add_stream_from_template(video)
        for packet in inp.demux(video):
            if packet.dts is None:
                continue  # the demuxer's flush packet
            if (packet.is_keyframe and packet.pts is not None and video.time_base is not None
                    and packet.pts * video.time_base > seconds):
                break
            packet.stream = copy
            out.mux(packet)
    return target
