"""Pure logic of ingest: reconnect backoff, capture clock, timestamps, failure classification."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Protocol

import av
from vigie.plumbing.log import redact

SUPPORTED_CODECS = {"h264": "h264", "hevc": "hevc", "h265": "hevc"}


class Clock(Protocol):
    """The source of capture times; tests drive it."""

    def now_ns(self) -> int: ...


class SystemClock:
    def now_ns(self) -> int:
        return time.time_ns()


@dataclass
class CaptureClock:
    """Wall-clock UTC at reception, strictly increasing per camera (a clock step never reorders)."""

    clock: Clock = field(default_factory=SystemClock)
    last_ns: int = 0

    def stamp(self) -> int:
        now = self.clock.now_ns()
        self.last_ns = now if now > self.last_ns else self.last_ns + 1
        return self.last_ns


@dataclass
class Backoff:
    """Capped exponential backoff with full jitter; reset once a session delivered frames."""

    initial_s: float = 0.5
    max_s: float = 30.0
    attempt: int = 0
    rng: random.Random = field(default_factory=random.Random)

    def next_delay(self) -> float:
        ceiling = min(self.max_s, self.initial_s * 2**self.attempt)
        self.attempt += 1
        return self.rng.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self.attempt = 0


@dataclass
class Timestamps:
    """RTSP demuxers may give no pts (the first packet) or repeat one; keep pts usable and dts sane."""

    last_pts: int | None = None
    last_dts: int | None = None

    def fix(self, pts: int | None, dts: int | None) -> tuple[int, int | None]:
        if pts is None:
            pts = dts if dts is not None else (self.last_pts + 1 if self.last_pts is not None else 0)
        if dts is not None and self.last_dts is not None and dts <= self.last_dts:
            dts = self.last_dts + 1
        self.last_pts, self.last_dts = pts, dts if dts is not None else self.last_dts
        return pts, dts


class IngestFailure(Exception):
    """Why a camera session ended: a machine-readable reason and a redacted detail."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = redact(detail)


def classify_error(exc: BaseException) -> IngestFailure:
    """Map what PyAV/FFmpeg raised to a per-camera status the operators can act on."""
    if isinstance(exc, IngestFailure):
        return exc
    detail = redact(str(exc))
    if isinstance(exc, av.error.HTTPUnauthorizedError | av.error.HTTPForbiddenError):
        return IngestFailure("unauthorized", detail)
    if isinstance(exc, av.error.HTTPNotFoundError):
        return IngestFailure("not_found", detail)
    if isinstance(exc, av.error.HTTPClientError | av.error.HTTPServerError):
        return IngestFailure("rtsp_error", detail)
    if isinstance(exc, av.error.ConnectionRefusedError | av.error.ConnectionResetError):
        return IngestFailure("unreachable", detail)
    if isinstance(exc, av.error.TimeoutError | av.error.ExitError | TimeoutError):
        return IngestFailure("timeout", detail)
    if isinstance(exc, av.error.InvalidDataError):
        return IngestFailure("corrupt", detail)
    if isinstance(exc, av.error.EOFError):
        return IngestFailure("ended", detail)
    if isinstance(exc, OSError):
        return IngestFailure("unreachable", detail)
    return IngestFailure("stream_error", f"{type(exc).__name__}: {detail}")
