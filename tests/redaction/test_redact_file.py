"""`vigie redact-file` (issue 23; R22): inverse redaction — outside the requester's box (interpolated
between the times given) the fine detail is gone, inside it the picture matches the source; before
the first time and after the last everything is blurred; bad input is one line and exit 2, with
nothing left behind. The detectors assist only: their weights are checked, and the moving-vehicle
proposal keeps a walking person (taller than wide) out of it."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from vigie.custody.redaction import detect
from vigie.custody.redaction.blur import block_size
from vigie.custody.redaction.keep import KeepError, KeepTrack

pytestmark = pytest.mark.integration

W, H, FPS = 320, 240, 25


def _write(path: Path, pictures: Iterable[np.ndarray]) -> Path:
    """RGB pictures at FPS into a near-lossless H.264 MP4."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        stream.options = {"crf": "8", "preset": "veryfast"}
        for i, picture in enumerate(pictures):
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, FPS)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


@pytest.fixture(scope="module")
def textured(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 s of fine random texture (what a face's or a plate's detail is to a blur), near-lossless."""
    base = np.random.default_rng(7).integers(0, 256, (H, W, 3), dtype=np.uint8)
    return _write(tmp_path_factory.mktemp("redact") / "texture.mp4",  # moves: each one differs
                  (np.roll(base, i, axis=1) for i in range(3 * FPS)))


def _frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="gray") for f in c.decode(video=0)]


def _sharpness(plane: np.ndarray) -> float:
    return float(cv2.Laplacian(plane, cv2.CV_64F).var())


def _redact(tmp_path: Path, source: Path, keep: object, *extra: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "keep.json").write_text(json.dumps(keep))
    return subprocess.run([sys.executable, "-m", "vigie.cli.main", "redact-file", "--keep",
                           str(tmp_path / "keep.json"), *extra, str(source),
                           str(tmp_path / "out.mp4")], capture_output=True, text=True,
                          timeout=120)


def test_outside_the_box_the_detail_is_gone_inside_it_stays_R22(
    textured: Path, tmp_path: Path,
) -> None:
    done = _redact(tmp_path, textured, [{"t": 0, "box": [100, 60, 80, 100]},
                                        {"t": 2, "box": [140, 60, 80, 100]}])
    assert done.returncode == 0, done.stderr
    assert "blur block 10 px" in done.stdout and "on 51 frames" in done.stdout
    source, redacted = _frames(textured), _frames(tmp_path / "out.mp4")
    assert len(redacted) == len(source) == 75
    for index in (0, 25, 50):
        x = 100 + round(40 * index / 50)  # the box interpolated at t = index / 25
        inside = (slice(64, 156), slice(x + 4, x + 76))
        diff = np.abs(source[index][inside].astype(int) - redacted[index][inside].astype(int))
        assert diff.mean() < 6, (index, diff.mean())  # the same picture (but the codec's loss)
        outside = (slice(0, H), slice(0, 90))
        assert _sharpness(redacted[index][outside]) < 0.02 * _sharpness(source[index][outside])
    # After the last time (and before the first) there is no box: all of it blurred.
    assert _sharpness(redacted[70]) < 0.02 * _sharpness(source[70])


@pytest.mark.parametrize(("keep", "words"), [
    ([{"t": 2, "box": [0, 0, 10, 10]}, {"t": 1, "box": [0, 0, 10, 10]}], "times must increase"),
    ([{"t": 0, "box": [0, 0, -5, 10]}], "positive width"),
    ([{"t": 0, "box": [300, 200, 50, 50]}], "outside the 320x240 picture"),
    ([{"t": 0, "box": [0, 0, 10]}], "[x, y, w, h]"),
    ([], "non-empty list"),
    ([{"t": -1, "box": [0, 0, 10, 10]}], "0 or more"),
    ({"t": 0}, "non-empty list")])
def test_bad_keep_documents_are_one_line_and_exit_2_and_leave_nothing(
    textured: Path, tmp_path: Path, keep: object, words: str,
) -> None:
    done = _redact(tmp_path, textured, keep)
    assert done.returncode == 2 and words in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out.mp4").exists()
    assert not list(tmp_path.glob(".out.mp4.partial"))


def test_a_file_that_is_not_a_video_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.mp4").write_text("not a video")
    done = _redact(tmp_path, tmp_path / "notes.mp4", [{"t": 0, "box": [0, 0, 10, 10]}])
    assert done.returncode == 2 and "not a video" in done.stderr
    missing = _redact(tmp_path, tmp_path / "absent.mp4", [{"t": 0, "box": [0, 0, 10, 10]}])
    assert missing.returncode == 2 and "no such file" in missing.stderr


def test_the_box_is_interpolated_and_absent_outside_its_span() -> None:
    track = KeepTrack.parse(json.dumps([{"t": 1, "box": [0, 0, 10, 20]},
                                        {"t": 3, "box": [20, 10, 30, 40]}]))
    assert track.box_at(0.5) is None and track.box_at(3.5) is None
    assert track.box_at(2) == (10, 5, 20, 30)
    assert track.box_at(1) == (0, 0, 10, 20) and track.box_at(3) == (20, 10, 30, 40)
    with pytest.raises(KeepError):
        KeepTrack.parse("{")


def test_the_blur_block_is_relative_to_the_picture() -> None:
    assert (block_size(1920, 1080), block_size(640, 360), block_size(160, 120)) == (45, 15, 8)


def test_the_detectors_propose_and_never_run_on_altered_weights(monkeypatch: pytest.MonkeyPatch,
                                                                ) -> None:
    assert detect.faces(np.full((240, 320, 3), 128, np.uint8)) == []  # nothing in a grey picture
    # A wide moving shape is proposed (a vehicle); a tall one (a walking person) is not.
    vehicles = detect.MovingVehicles()
    rng = np.random.default_rng(3)
    car = rng.integers(150, 255, (30, 120), dtype=np.uint8)  # textured, as a real one is
    walker = rng.integers(0, 60, (80, 20), dtype=np.uint8)
    for step in range(30):
        luma = np.full((240, 320), 90, np.uint8)
        x = 5 + step * 6
        luma[160:190, x:x + 120] = car  # 120 × 30: wider than tall
        luma[40:120, 290 - step * 3:310 - step * 3] = walker  # 20 × 80: taller than wide
        boxes = vehicles.boxes(luma)
    assert boxes and all(w >= h for _x, _y, w, h in boxes)
    assert all(y > 100 for _x, y, _w, _h in boxes), "the tall shape is not proposed"
    detect._net.cache_clear()
    monkeypatch.setattr(detect, "MODEL_SHA256", "0" * 64)
    with pytest.raises(detect.DetectorError):
        detect.faces(np.zeros((64, 64, 3), np.uint8))
    detect._net.cache_clear()


def test_assistance_does_not_blur_the_requester_from_the_first_picture_R22(
        tmp_path: Path) -> None:
    """Found in the browser: the background model, before it knows the scene, took the whole first
    picture for a moving vehicle and blurred the requester's box on it."""
    base = np.random.default_rng(11).integers(0, 256, (H, W, 3), dtype=np.uint8)
    source = _write(tmp_path / "still.mp4", (base for _ in range(FPS)))
    done = _redact(tmp_path, source, [{"t": 0, "box": [40, 40, 160, 120]},
                                      {"t": 0.96, "box": [40, 40, 160, 120]}], "--assist")
    assert done.returncode == 0, done.stderr
    before, after = _frames(source), _frames(tmp_path / "out.mp4")
    for k in (0, 1, 12, 24):
        kept = after[k][40:160, 40:200].astype(np.int16)
        assert np.abs(kept - before[k][40:160, 40:200]).mean() < 6, k


def test_faces_are_looked_for_one_picture_in_five_and_followed_between_R22(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The face detector is the costly part: it runs on one picture in FACE_STRIDE, and a face
    moving between two detections is blurred on every picture in between (its box interpolated
    and grown), inside the requester's kept box."""
    from vigie.custody.redaction import redact

    face = np.random.default_rng(5).integers(0, 256, (40, 40, 3), dtype=np.uint8)  # textured,
    # as a face is to a blur; 8 px a picture: a face's width between two detections
    positions = [20 + 8 * i for i in range(FPS)]

    def walking(x: int) -> np.ndarray:
        picture = np.full((H, W, 3), 100, np.uint8)
        picture[100:140, x:x + 40] = face
        return picture

    source = _write(tmp_path / "walker.mp4", (walking(x) for x in positions))
    calls: list[int] = []

    def found(rgb: np.ndarray) -> list[tuple[int, int, int, int]]:
        calls.append(1)
        cols = np.where((np.abs(rgb[120].astype(int) - 100).sum(axis=1)) > 30)[0]
        return [(int(cols.min()), 100, int(cols.max() - cols.min() + 1), 40)] if cols.size else []

    monkeypatch.setattr(detect, "faces", found)
    keep = KeepTrack.parse(json.dumps([{"t": 0, "box": [0, 0, W, H]},
                                       {"t": 1, "box": [0, 0, W, H]}]))
    done = redact.redact_file(keep, source, tmp_path / "out.mp4", assist=True)
    assert done.frames == FPS and len(calls) <= FPS // redact.FACE_STRIDE + 2
    before, after = _frames(source), _frames(tmp_path / "out.mp4")
    for k, x in enumerate(positions):
        original = _sharpness(before[k][104:136, x + 4:x + 36])
        assert _sharpness(after[k][104:136, x + 4:x + 36]) < 0.1 * original, k
    # Away from the face the kept picture stays (the flat grey, and its edges, unchanged).
    assert np.abs(after[12][10:60, 200:300].astype(int) - before[12][10:60, 200:300]).mean() < 3
