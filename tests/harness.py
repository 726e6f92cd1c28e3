"""Helpers the tests share: unique names, settings for a test, waiting without sleeping blindly."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from vigie.local.servers import PROBE, PROBE_USER

__all__ = ["PROBE", "PROBE_USER"]  # the harness's NATS user, defined beside the servers

REPO = Path(__file__).resolve().parent.parent
# The real clips beside the repository (optional: the suite makes its own when they are absent).
FOOTAGE = Path(
    __import__("os").environ.get("VIGIE_FOOTAGE", str(REPO.parent / "shared" / "footage"))
)
CLIPS_VERSION = 1  # bump when tests/clips.py draws differently
_footage_lock = threading.Lock()


def demo_footage() -> Path:
    """A folder holding the demo cameras' clips: ../shared/footage when it is there, else clips
    of the same names, sizes, codec, B-frames and audio made by the suite (once per machine)."""
    from vigie.local.demo import DEMO_CAMERAS

    from tests.clips import make_clip

    if all((FOOTAGE / c.clip).is_file() for c in DEMO_CAMERAS):
        return FOOTAGE
    folder = REPO / "test-artifacts" / f"clips-v{CLIPS_VERSION}"
    with _footage_lock:
        for camera in DEMO_CAMERAS:
            target = folder / camera.clip
            if target.is_file():
                continue
            width, height = (int(v) for v in camera.clip.rsplit("-", 1)[1][:-4].split("x"))
            folder.mkdir(parents=True, exist_ok=True)
            partial = folder / f".{camera.clip}"
            # Ten seconds, B-frames and AAC audio, as the real clips have; written then renamed
            # so that a run interrupted halfway never leaves a truncated clip behind.
            make_clip(partial.with_suffix(".mp4"), width=width, height=height, frames=250,
                      bframes=2, gop=50, audio=True)
            partial.with_suffix(".mp4").rename(target)
    return folder


def unique(prefix: str = "t") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


async def eventually(
    check: Callable[[], Awaitable[Any]] | Callable[[], Any],
    *,
    timeout_s: float = 10.0,
    interval_s: float = 0.05,
    message: str = "condition not met",
) -> Any:
    """Poll ``check`` until it returns something truthy; fail with ``message`` after the timeout."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if asyncio.iscoroutine(last):
            last = await last
        if last:
            return last
        await asyncio.sleep(interval_s)
    raise AssertionError(f"{message} (after {timeout_s} s; last value {last!r})")


def wait_for_sync(check: Callable[[], Any], *, timeout_s: float, message: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"{message} (after {timeout_s} s)")


async def authorise(db: Any, commune: str, cameras: list[str] | None = None, *,
                    reference: str | None = None, valid_until: Any = None,
                    recipients: tuple[str, ...] = ("municipal_police", "national_police"),
                    handover: bool = True) -> int:
    """A valid prefectoral authorisation for the commune (R3), every purpose, retention 1–30
    days, its cameras attached (all of the commune's when ``cameras`` is None), and the hand-over
    profile resting on it (R27, R28): without one, masking films nothing of a camera."""
    from datetime import date, timedelta

    from vigie.records.purposes import PURPOSES

    until = valid_until or date.today() + timedelta(days=3 * 365)
    aid: int = await db.fetchval(
        "INSERT INTO authorisations (commune, reference, granted_on, valid_until, purposes, "
        "recipients, retention_max_days, created_by) VALUES ($1, $2, $3, $4, $5, $6, 30, "
        "'test') RETURNING id", commune, reference or unique(f"AP-{commune}"),
        until - timedelta(days=4 * 365), until, list(PURPOSES), list(recipients))
    await db.execute("UPDATE cameras SET authorisation_id = $1 WHERE commune = $2 "
                     "AND ($3::text[] IS NULL OR slug = ANY($3::text[]))", aid, commune, cameras)
    if handover and "national_police" in recipients:
        await db.execute("UPDATE communes SET handover_authorisation_id = $1, "
                         "coordination_convention = 'Convention PM/PN (test)' WHERE slug = $2",
                         aid, commune)
    return aid


class ConnectionCutter:
    """A TCP relay on loopback in front of a server that cuts the connection once, at the moment
    the server sends bytes holding ``marker``: those bytes never arrive. The client sees what a
    node's death or a network cut does to a message in flight — the server counts it delivered,
    the client never got it — and reconnects through the relay, which relays from then on."""

    def __init__(self, target_port: int, marker: bytes) -> None:
        self._target_port, self._marker = target_port, marker
        self.cut = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def __aenter__(self) -> ConnectionCutter:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        await self._server.wait_closed()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"nats://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def _relay(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection("127.0.0.1", self._target_port)
        self._writers |= {client_w, server_w}

        async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                       watch: bool) -> None:
            tail = b""
            try:
                while chunk := await reader.read(65536):
                    if watch and not self.cut.is_set() and self._marker in tail + chunk:
                        self.cut.set()
                        break  # the chunk with the marker is dropped with the connection
                    tail = chunk[-len(self._marker):]
                    writer.write(chunk)
                    await writer.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                for w in (client_w, server_w):
                    w.close()

        await asyncio.gather(pump(client_r, server_w, False), pump(server_r, client_w, True))
        self._writers -= {client_w, server_w}
