"""R35, continuously (issue 40): the technical norms of the arrêté of 3 August 2007 were checked
once per masking process, over its first 100 frames. A camera turned down later (a lower frame
rate set on its web page, a resolution changed) went unseen; one brought back stayed flagged."""

from __future__ import annotations

import pytest

from services.masking.core import NormsWatch

pytestmark = pytest.mark.unit

SECOND = 1_000_000_000


def _feed(watch: NormsWatch, frames: int, fps: float, width: int = 1920, height: int = 1080,
          start_ns: int = 0, narrow: bool = False) -> tuple[list, int]:  # type: ignore[type-arg]
    verdicts, t = [], start_ns
    for _ in range(frames):
        if (v := watch.observe(width, height, t, narrow)) is not None:
            verdicts.append(v)
        t += int(SECOND / fps)
    return verdicts, t


def test_a_camera_turned_down_later_is_seen_and_seen_again_when_brought_back_R35() -> None:
    watch = NormsWatch(window=50)
    first, t = _feed(watch, 200, fps=25)
    assert [v.below for v in first] == [False]  # told once: within the norms
    assert first[0].detail is None
    lower, t = _feed(watch, 200, fps=4, start_ns=t)  # 4 fps < the 6 fps floor
    assert [v.below for v in lower] == [True]
    assert lower[0].detail == "1920x1080 at 4.0 fps, below 352x288 at 6 fps"
    back, t = _feed(watch, 200, fps=25, start_ns=t)
    assert [v.below for v in back] == [False]
    small, _ = _feed(watch, 200, fps=25, width=320, height=240, start_ns=t)
    assert [v.below for v in small] == [True] and small[0].detail.startswith("320x240")


def test_a_narrow_field_camera_has_the_higher_floors_and_a_gap_is_no_low_frame_rate_R35() -> None:
    watch = NormsWatch(window=20)
    verdicts, t = _feed(watch, 60, fps=10, width=704, height=576, narrow=True)
    assert [v.below for v in verdicts] == [True]  # 10 fps < the 12 fps of a narrow field
    watch = NormsWatch(window=20)
    _, t = _feed(watch, 10, fps=25)
    watch.interrupt()  # masking blocked for a minute: the window starts again after
    verdicts, _ = _feed(watch, 30, fps=25, start_ns=t + 60 * SECOND)
    assert [v.below for v in verdicts] == [False]
    watch.forget()  # the verdict could not be stored: the next window tells it again
    again, _ = _feed(watch, 30, fps=25, start_ns=t + 120 * SECOND)
    assert [v.below for v in again] == [False]


def test_a_camera_that_reconnects_is_not_below_the_norms_for_it_R35() -> None:
    """30 s without frames (the camera's link cut, ingest reconnecting) inside a window is an
    interruption, not 0.5 frames per second: no alarm that clears itself a window later."""
    watch = NormsWatch(window=50)
    verdicts, t = _feed(watch, 120, fps=25)
    more, _ = _feed(watch, 120, fps=25, start_ns=t + 30 * SECOND)
    assert [v.below for v in verdicts + more] == [False]
