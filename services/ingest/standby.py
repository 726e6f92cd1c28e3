"""Hot standby: a second RTSP session on the cameras this replica would take over next.

An ingest replica killed used to leave a hole in its cameras' recordings of 2–10 s (make
compose-check, issue 35): the survivor noticed within a tick, then had to open an RTSP session
(the camera answering in its own time) and wait for a keyframe. A standby replica keeps a session
open on each camera it is next in line for, and the last seconds of its access units in memory
(unmasked: memory only, like RAW, never written anywhere), and follows RAW's headers of the camera
(republished by the server without the picture: only masking reads RAW). When it takes the camera,
it finds the last frame RAW stored among the access units it kept, by its digest (a camera sends
the same bytes to every session of a stream), and carries the predecessor's session on — same session id,
the next sequence number, capture times and timestamps shifted onto the predecessor's — so that
masking and the recorder see one unbroken stream: no frame lost, none twice.

Which replica stands by for a camera: among the live replicas other than the owner, the first in a
per-camera order (rendezvous hashing), so that standbys spread over the replicas and each camera
costs the camera one more session, whatever the number of replicas.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from fractions import Fraction

import nats.errors
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from vigie.plumbing.bus.consumer import TRANSIENT_NATS_ERRORS
from vigie.plumbing.bus.frames import Frame, FrameMessageError, payload_digest

from services.ingest.core import CaptureClock, Clock, IngestFailure, Timestamps
from services.ingest.source import Item, Packet, RtspSession, StreamInfo


def standby_for(camera_id: int, owner: str | None, live: Iterable[str]) -> str | None:
    """The replica that stands by for a camera: the first of the live ones but its owner, in
    the camera's rendezvous order (None when no other replica is alive)."""
    candidates = [name for name in live if name != owner]
    if not candidates:
        return None
    return max(candidates, key=lambda name: hashlib.blake2s(
        f"{name}/{camera_id}".encode(), digest_size=8).digest())


@dataclass(frozen=True)
class LastRaw:
    """The last frame RAW stored for a camera (from its headers): where its owner stands."""

    session: str
    seq: int
    capture_time_ns: int
    pts: int
    time_base: Fraction
    digest: str | None

    @classmethod
    def from_headers(cls, headers: dict[str, str] | None) -> LastRaw | None:
        try:
            frame = Frame.from_message(headers, b"")
        except FrameMessageError:
            return None
        return cls(session=frame.session, seq=frame.seq, capture_time_ns=frame.capture_time_ns,
                   pts=frame.pts, time_base=frame.time_base, digest=frame.digest)


@dataclass
class Continuation:
    """How a taken-over session goes on: its identity and what shifts this replica's clock and
    timestamps onto the predecessor's (zero for a new session)."""

    session: str
    next_seq: int
    capture_offset_ns: int = 0
    pts_offset: int = 0
    timestamps: Timestamps = field(default_factory=Timestamps)
    packets: list[Packet] = field(default_factory=list)  # kept ones to publish first
    continued: bool = False


def continuation(kept: list[Packet], info: StreamInfo, last: LastRaw | None,
                 new_session: str) -> Continuation:
    """What a replica taking a camera over publishes first, from the access units its standby
    session kept. The predecessor's last frame found among them: the session goes on right after
    it. Not found (kept too short, another stream, a camera encoding per session): a new session
    from the first kept keyframe after the predecessor's last frame — or the live one to come."""
    timestamps = Timestamps()
    if last is not None and last.digest and last.time_base == info.time_base:
        for i in range(len(kept) - 1, -1, -1):
            if payload_digest(kept[i].data) == last.digest:
                for packet in kept[:i + 1]:
                    pts, _dts = timestamps.fix(packet.pts, packet.dts)
                return Continuation(
                    session=last.session, next_seq=last.seq + 1,
                    capture_offset_ns=last.capture_time_ns - kept[i].capture_time_ns,
                    pts_offset=last.pts - pts, timestamps=timestamps, packets=kept[i + 1:],
                    continued=True)
    after = last.capture_time_ns if last is not None else -1
    start = next((i for i, p in enumerate(kept) if p.keyframe and p.capture_time_ns > after),
                 len(kept))
    return Continuation(session=new_session, next_seq=0, timestamps=timestamps,
                        packets=kept[start:])


@dataclass
class Adopted:
    """A standby's session, handed to the camera's new owner."""

    session: RtspSession
    queue: asyncio.Queue[Item]
    info: StreamInfo
    kept: list[Packet]
    last: LastRaw | None  # the last frame RAW stored, when taken


class CameraStandby:
    """One camera's standby session: what it receives is kept for ``keep_s`` seconds, published
    nowhere. It ends with the camera's session (``failure`` says why) or when adopted/closed."""

    def __init__(self, url: str, *, nc: NATS, headers_subject: str, keep_s: float,
                 queue_frames: int, open_timeout_s: float, read_timeout_s: float,
                 clock: Clock) -> None:
        self.url = url
        self._nc, self._headers_subject = nc, headers_subject
        self.last: LastRaw | None = None
        self.keep_ns = int(keep_s * 1e9)
        self.queue: asyncio.Queue[Item] = asyncio.Queue(maxsize=queue_frames)
        self.session = RtspSession(url, open_timeout_s=open_timeout_s,
                                   read_timeout_s=read_timeout_s, clock=CaptureClock(clock),
                                   queue=self.queue, on_shed=lambda: None)
        self.kept: deque[Packet] = deque()
        self.info: StreamInfo | None = None
        self.failure: IngestFailure | None = None
        self._task = asyncio.get_running_loop().create_task(self._keep())

    @property
    def ended(self) -> bool:
        return self._task.done()

    async def _follow(self, msg: Msg) -> None:
        last = LastRaw.from_headers(msg.headers)
        if last is not None:
            self.last = last

    async def _keep(self) -> None:
        try:
            sub = await self._nc.subscribe(self._headers_subject, cb=self._follow)
        except TRANSIENT_NATS_ERRORS:
            self.failure = IngestFailure("standby", "RAW's headers could not be followed")
            self.session.close()
            return
        try:
            await self._receive()
        finally:
            with contextlib.suppress(*TRANSIENT_NATS_ERRORS, nats.errors.BadSubscriptionError):
                await sub.unsubscribe()

    async def _receive(self) -> None:
        while True:
            self._take(await self.queue.get())
            if self.failure is not None:
                self.session.close()
                return

    def _take(self, item: Item) -> None:
        if isinstance(item, IngestFailure):
            self.failure = item
        elif isinstance(item, StreamInfo):
            self.info = item
            self.kept.clear()
        else:
            self.kept.append(item)
            while self.kept and item.capture_time_ns - self.kept[0].capture_time_ns > self.keep_ns:
                self.kept.popleft()

    async def adopt(self) -> Adopted | None:
        """Stop keeping and hand the session over (None when it ended or never opened)."""
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        while self.failure is None and not self.queue.empty():
            self._take(self.queue.get_nowait())
        if self.failure is not None or self.info is None:
            self.session.close()
            return None
        return Adopted(self.session, self.queue, self.info, list(self.kept), self.last)

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self.session.close()
