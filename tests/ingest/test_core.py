"""Ingest's pure logic: capture clock, backoff, timestamps, failure classification."""

from __future__ import annotations

import random

import av
import pytest

from services.ingest.core import Backoff, CaptureClock, IngestFailure, Timestamps, classify_error

pytestmark = pytest.mark.unit


class SteppingClock:
    def __init__(self, values: list[int]) -> None:
        self.values = values

    def now_ns(self) -> int:
        return self.values.pop(0)


def test_capture_time_is_monotonic_even_when_the_clock_steps_back() -> None:
    clock = CaptureClock(SteppingClock([1000, 2000, 1500, 1500, 3000]))
    stamps = [clock.stamp() for _ in range(5)]
    assert stamps == [1000, 2000, 2001, 2002, 3000]


def test_backoff_is_capped_exponential_with_jitter_and_resets() -> None:
    backoff = Backoff(initial_s=0.5, max_s=4.0, rng=random.Random(7))
    delays = [backoff.next_delay() for _ in range(8)]
    ceilings = [0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0, 4.0]
    assert all(c / 2 <= d <= c for d, c in zip(delays, ceilings, strict=True))
    assert len(set(delays)) == len(delays), "jitter spreads reconnects of many cameras"
    backoff.reset()
    assert backoff.next_delay() <= 0.5


def test_timestamps_fill_missing_pts_and_keep_dts_increasing() -> None:
    ts = Timestamps()
    assert ts.fix(None, None) == (0, None)
    assert ts.fix(3600, 3600) == (3600, 3600)
    assert ts.fix(None, 7200) == (7200, 7200)
    assert ts.fix(7200, 7200) == (7200, 7201)  # a repeated dts (loop seam) moves forward


def test_failures_are_classified_and_redacted() -> None:
    url = "rtsp://agent:S3cret@cam/x"
    cases = [
        (av.error.HTTPUnauthorizedError(1, "401", url), "unauthorized"),
        (av.error.HTTPNotFoundError(1, "404", url), "not_found"),
        (av.error.ConnectionRefusedError(111, "refused", url), "unreachable"),
        (av.error.InvalidDataError(1, "bad", url), "corrupt"),
        (TimeoutError("slow"), "timeout"),
        (RuntimeError("?"), "stream_error"),
    ]
    for exc, reason in cases:
        failure = classify_error(exc)
        assert isinstance(failure, IngestFailure)
        assert failure.reason == reason, exc
        assert "S3cret" not in failure.detail
