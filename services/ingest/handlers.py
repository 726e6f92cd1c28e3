"""Ingest on the bus: one task per camera publishing access units to RAW, and the registry that
starts, stops and restarts those tasks as the cameras table changes."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import nats.js.errors
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from prometheus_client import Counter, Gauge
from vigie.cameras.leases import Lease
from vigie.cameras.replicas import default_name
from vigie.cameras.runtime import CameraRuntime, Running, Wanted
from vigie.plumbing.aio import run_periodically, sleep_or_stop
from vigie.plumbing.bus.consumer import TRANSIENT_NATS_ERRORS
from vigie.plumbing.bus.events import (
    CameraStreamChanged,
    CameraWentOffline,
    CameraWentOnline,
    Event,
    publish_event_or_log,
)
from vigie.plumbing.bus.frames import Frame, payload_digest, publish_frame_retrying
from vigie.plumbing.bus.pending import PendingAcks
from vigie.plumbing.bus.streams import RawStreamKeeper
from vigie.plumbing.bus.subjects import BusNames
from vigie.plumbing.db.pool import TRANSIENT_DB_ERRORS
from vigie.plumbing.log import get_logger

from services.ingest.core import (
    Backoff,
    CaptureClock,
    Clock,
    IngestFailure,
    SystemClock,
    Timestamps,
)
from services.ingest.settings import IngestSettings
from services.ingest.source import Item, Packet, RtspSession, StreamInfo
from services.ingest.standby import (
    Adopted,
    CameraStandby,
    Continuation,
    continuation,
    standby_for,
)

log = get_logger(__name__)

LABELS = ["commune", "camera"]
FRAMES_IN = Counter("vigie_ingest_frames_total", "Access units published to RAW", LABELS)
BYTES_IN = Counter("vigie_ingest_bytes_total", "Bytes of access units published to RAW", LABELS)
RECONNECTS = Counter("vigie_ingest_reconnects_total", "RTSP sessions started after the first", LABELS)
SHED = Counter("vigie_ingest_shed_frames_total", "Frames dropped because RAW publishing lagged", LABELS)
ONLINE = Gauge("vigie_ingest_camera_online", "1 when frames are flowing", LABELS)
STANDBYS = Gauge("vigie_ingest_standby_sessions",
                 "Standby RTSP sessions open on cameras this replica would take over next")
TAKEOVERS = Counter(
    "vigie_ingest_takeovers_total",
    "Cameras taken with a standby session: continued (the predecessor's stream carried on, no "
    "frame lost), new_session (from a kept keyframe), or without a standby session (none)",
    ["outcome"])

CAMERAS_SQL = """
SELECT c.id, c.commune, c.slug, c.state, c.device_id, c.sensor_index, s.rtsp_url
FROM cameras c JOIN camera_sources s ON s.camera_id = c.id
WHERE c.state <> 'disabled'
"""

# Who stands by for which camera (vigie.ingest.standby): the live replicas and the owners.
LIVE_REPLICAS_SQL = """
SELECT name FROM replicas
WHERE service = 'ingest' AND heartbeat_at > now() - make_interval(secs => $1)
"""
OWNERS_SQL = "SELECT camera_id, owner FROM camera_owners WHERE service = 'ingest'"
STANDBY_RETRY_S = 10.0  # a standby session that ended (camera down) is tried again after this

HEALTH_SQL = """
INSERT INTO camera_health (camera_id, online, ingest_status, ingest_detail, last_frame_at,
                           codec, width, height, fps, updated_at)
VALUES ($1, $2, $3, $4, to_timestamp($5::double precision / 1e9), $6, $7, $8, $9, now())
ON CONFLICT (camera_id) DO UPDATE SET
    online = EXCLUDED.online, ingest_status = EXCLUDED.ingest_status,
    ingest_detail = EXCLUDED.ingest_detail,
    last_frame_at = coalesce(EXCLUDED.last_frame_at, camera_health.last_frame_at),
    codec = coalesce(EXCLUDED.codec, camera_health.codec),
    width = coalesce(EXCLUDED.width, camera_health.width),
    height = coalesce(EXCLUDED.height, camera_health.height),
    fps = coalesce(EXCLUDED.fps, camera_health.fps),
    updated_at = now()
"""


@dataclass(frozen=True)
class CameraConfig:
    id: int
    commune: str
    slug: str
    state: str
    device_id: str | None
    sensor_index: int | None
    rtsp_url: str = field(repr=False)  # credentials inside: never logged


@dataclass
class CameraStatus:
    """What ingest knows of a camera right now (served by /cameras, written to camera_health)."""

    online: bool = False
    status: str = "connecting"
    detail: str = ""
    last_frame_ns: int | None = None
    info: StreamInfo | None = None
    frames: int = 0
    sessions: int = 0

    def public(self) -> dict[str, Any]:
        info = self.info
        return {
            "online": self.online, "status": self.status, "detail": self.detail,
            "last_frame_ns": self.last_frame_ns, "frames": self.frames, "sessions": self.sessions,
            "codec": info.codec if info else None, "width": info.width if info else None,
            "height": info.height if info else None, "fps": info.fps if info else None,
        }


class CameraIngest:
    """One camera: connect, publish every access unit, report health, reconnect with backoff."""

    def __init__(self, cfg: CameraConfig, *, js: JetStreamContext, names: BusNames,
                 pool: asyncpg.Pool, settings: IngestSettings, clock: Clock,
                 raw: RawStreamKeeper, standby: CameraStandby | None = None) -> None:
        self.cfg = cfg
        self._standby = standby  # a session already open on the camera, adopted at the start
        # Shifts onto a predecessor's clock and timestamps (a session taken over, else zero).
        self._capture_offset_ns = 0
        self._pts_offset = 0
        self._raw = raw
        self.status = CameraStatus()
        self._js, self._names, self._pool, self._settings = js, names, pool, settings
        self._capture = CaptureClock(clock)
        self._backoff = Backoff(settings.backoff_initial_s, settings.backoff_max_s)
        self._labels = (cfg.commune, cfg.slug)
        self._log = log.bind(commune=cfg.commune, camera=cfg.slug)
        self._last_health_write = 0.0
        self._lease: Lease | None = None
        self._acks: PendingAcks | None = None  # per RTSP session
        self._last_ack_failure = ""
        self._background: set[asyncio.Task[bool]] = set()

    async def run(self, lease: Lease, stop: asyncio.Event) -> None:
        """While this replica owns the camera: at most one RTSP session per camera cluster-wide.
        A hand-over simply ends the session; the next owner opens its own."""
        self._lease = lease
        async with lease.until_lost(stop) as ended:
            await self._run(ended)

    async def _run(self, stop: asyncio.Event) -> None:
        last_info: StreamInfo | None = None
        adopted = await self._adopt_standby()
        while not stop.is_set():
            failure = await self._session(stop, last_info, adopted)
            adopted = None
            if self.status.info is not None:
                last_info = self.status.info
            if stop.is_set():
                break
            await self._went_offline(failure)
            delay = self._backoff.next_delay()
            self._log.info("camera_reconnect_scheduled", reason=failure.reason, retry_in_s=round(delay, 2))
            await sleep_or_stop(stop, delay)
        with contextlib.suppress(*TRANSIENT_DB_ERRORS, asyncpg.PostgresError):
            await self._write_health(force=True, online=False, status="stopped", detail="")
        # No longer this replica's camera: its series goes (issue 36). Left at 0, it said
        # "offline" beside the new owner's 1, and the alert fired for a camera that was online.
        with contextlib.suppress(KeyError):
            ONLINE.remove(*self._labels)

    async def _adopt_standby(self) -> Adopted | None:
        standby, self._standby = self._standby, None
        if standby is None:
            TAKEOVERS.labels("none").inc()
            return None
        adopted = await standby.adopt()
        if adopted is None:
            TAKEOVERS.labels("none").inc()
        return adopted

    async def _session(self, stop: asyncio.Event, last_info: StreamInfo | None,
                       adopted: Adopted | None = None) -> IngestFailure:
        queue: asyncio.Queue[Item]
        self.status.sessions += 1
        if self.status.sessions > 1:
            RECONNECTS.labels(*self._labels).inc()
        if self._settings.publish_window:
            self._acks = PendingAcks(self._js, size=self._settings.publish_window,
                                     timeout_s=self._settings.read_timeout_s,
                                     on_failure=self._ack_failed)
        if adopted is None:
            queue = asyncio.Queue(maxsize=self._settings.queue_frames)
            session = RtspSession(
                self.cfg.rtsp_url, open_timeout_s=self._settings.open_timeout_s,
                read_timeout_s=self._settings.read_timeout_s, clock=self._capture, queue=queue,
                on_shed=lambda: SHED.labels(*self._labels).inc(),
            )
            plan = Continuation(session=uuid.uuid4().hex[:12], next_seq=0)
        else:
            queue, session = adopted.queue, adopted.session
            plan = await self._taken_over(adopted, last_info)
        session_id, seq, timestamps = plan.session, plan.next_seq, plan.timestamps
        self._capture_offset_ns, self._pts_offset = plan.capture_offset_ns, plan.pts_offset
        stopping = asyncio.ensure_future(stop.wait())
        try:
            for packet in plan.packets:
                await self._publish(packet, session_id, seq, timestamps)
                seq += 1
            while True:
                if stop.is_set():
                    return IngestFailure("stopped")
                try:
                    item = queue.get_nowait()  # fast path: no future, no timer per frame
                except asyncio.QueueEmpty:
                    item = None
                if item is not None:
                    if isinstance(item, Packet):
                        await self._publish(item, session_id, seq, timestamps)
                        seq += 1
                        continue
                    if isinstance(item, IngestFailure):
                        return item
                    await self._opened(item, last_info)
                    continue
                getter = asyncio.ensure_future(queue.get())
                done, _ = await asyncio.wait(
                    {getter, stopping}, timeout=self._settings.offline_after_s,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if stopping in done:
                    getter.cancel()
                    return IngestFailure("stopped")
                if not done:
                    getter.cancel()
                    return IngestFailure("timeout", f"no frame for {self._settings.offline_after_s} s")
                item = getter.result()
                if isinstance(item, IngestFailure):
                    return item
                if isinstance(item, StreamInfo):
                    await self._opened(item, last_info)
                    continue
                await self._publish(item, session_id, seq, timestamps)
                seq += 1
        finally:
            stopping.cancel()
            session.close()
            if self._acks is not None:
                await self._acks.drain()
                self._acks = None

    async def _taken_over(self, adopted: Adopted, last_info: StreamInfo | None) -> Continuation:
        """A standby session adopted: carry the predecessor's stream on from the last frame
        RAW holds (vigie.ingest.standby)."""
        await self._opened(adopted.info, last_info)
        plan = continuation(adopted.kept, adopted.info, adopted.last, uuid.uuid4().hex[:12])
        TAKEOVERS.labels("continued" if plan.continued else "new_session").inc()
        self._log.info("camera_taken_over_from_standby", continued=plan.continued,
                       kept=len(adopted.kept), published_first=len(plan.packets),
                       capture_offset_ms=round(plan.capture_offset_ns / 1e6, 1))
        return plan

    async def _opened(self, info: StreamInfo, last: StreamInfo | None) -> None:
        self.status.info = info
        self._log.info("camera_connected", codec=info.codec, width=info.width, height=info.height)
        if last and (last.codec, last.width, last.height) != (info.codec, info.width, info.height):
            await self._event(CameraStreamChanged(
                commune=self.cfg.commune, camera=self.cfg.slug, device_id=self.cfg.device_id,
                codec=info.codec, width=info.width, height=info.height,
                previous_codec=last.codec, previous_width=last.width, previous_height=last.height))

    async def _publish(self, packet: Packet, session_id: str, seq: int, ts: Timestamps) -> None:
        info = self.status.info
        assert info is not None and self._lease is not None
        if not await self._lease.still_held():
            return  # frozen past the lease: the camera is another replica's now (fenced)
        pts, dts = ts.fix(packet.pts, packet.dts)
        pts += self._pts_offset
        dts = None if dts is None else dts + self._pts_offset
        capture_time_ns = packet.capture_time_ns + self._capture_offset_ns
        # model_construct: every value is already typed here, and validation per frame costs
        # about a third of ingest's CPU (bench/ingest.py).
        frame = Frame.model_construct(
            commune=self.cfg.commune, camera=self.cfg.slug, codec=info.codec,  # type: ignore[arg-type]
            width=info.width, height=info.height, pts=pts, dts=dts, time_base=info.time_base,
            keyframe=packet.keyframe, capture_time_ns=capture_time_ns, session=session_id,
            seq=seq, parameter_sets=info.extradata if packet.keyframe else None, data=packet.data,
            owner_epoch=self._lease.epoch, digest=payload_digest(packet.data),
        )
        await self._publish_with_retry(frame)
        FRAMES_IN.labels(*self._labels).inc()
        BYTES_IN.labels(*self._labels).inc(len(packet.data))
        self.status.frames += 1
        self.status.last_frame_ns = capture_time_ns
        if not self.status.online:
            await self._went_online(info)
        else:
            await self._write_health()

    async def _publish_with_retry(self, frame: Frame) -> None:
        if self._acks is not None:
            try:
                await self._acks.publish(self._names.raw(frame.commune, frame.camera),
                                         frame.data, frame.to_headers())
            except TRANSIENT_NATS_ERRORS as exc:
                self._ack_failed(exc)
            return
        await self._publish_and_wait(frame)

    def _ack_failed(self, exc: BaseException) -> None:
        """A RAW frame not stored (it would have lived 10 s): counted, said once per cause."""
        SHED.labels(*self._labels).inc()
        cause = type(exc).__name__
        if cause != self._last_ack_failure:
            self._last_ack_failure = cause
            self._log.warning("raw_publish_failed", error=cause)
        if isinstance(exc, nats.js.errors.NoStreamResponseError):
            # No RAW behind the subject: a nats-server restart lost the memory stream.
            task = asyncio.get_running_loop().create_task(self._raw.ensure())
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _publish_and_wait(self, frame: Frame) -> None:
        # RAW frames older than RAW's max age are useless to masking: a few attempts, then the
        # frame is shed out loud.
        if not await publish_frame_retrying(self._js, self._names, frame, stage="raw",
                                            attempts=3, log=self._log,
                                            on_missing_stream=self._raw.ensure):
            SHED.labels(*self._labels).inc()
            self._log.warning("raw_frame_shed", seq=frame.seq)

    async def _went_online(self, info: StreamInfo) -> None:
        self.status.online, self.status.status, self.status.detail = True, "online", ""
        self._backoff.reset()
        ONLINE.labels(*self._labels).set(1)
        self._log.info("camera_online")
        await self._write_health(force=True)
        await self._event(CameraWentOnline(
            commune=self.cfg.commune, camera=self.cfg.slug, device_id=self.cfg.device_id,
            width=info.width, height=info.height, codec=info.codec))

    async def _went_offline(self, failure: IngestFailure) -> None:
        was_online = self.status.online
        changed = (self.status.status, self.status.detail) != (failure.reason, failure.detail)
        self.status.online, self.status.status, self.status.detail = False, failure.reason, failure.detail
        ONLINE.labels(*self._labels).set(0)
        if was_online or changed:
            self._log.warning("camera_offline", reason=failure.reason, detail=failure.detail)
            await self._write_health(force=True)
            await self._event(CameraWentOffline(
                commune=self.cfg.commune, camera=self.cfg.slug, device_id=self.cfg.device_id,
                reason=failure.reason, detail=failure.detail))

    async def _write_health(self, *, force: bool = False, online: bool | None = None,
                            status: str | None = None, detail: str | None = None) -> None:
        now = asyncio.get_running_loop().time()
        if not force and now - self._last_health_write < self._settings.health_write_interval_s:
            return
        self._last_health_write = now
        info = self.status.info
        try:
            await self._pool.execute(
                HEALTH_SQL, self.cfg.id, self.status.online if online is None else online,
                status or self.status.status, self.status.detail if detail is None else detail,
                self.status.last_frame_ns, info.codec if info else None,
                info.width if info else None, info.height if info else None,
                info.fps if info else None)
        except TRANSIENT_DB_ERRORS as exc:
            # Health is advisory; frames keep flowing while the database is away.
            self._log.warning("health_write_failed", error=type(exc).__name__)

    async def _event(self, event: Event) -> None:
        await publish_event_or_log(self._js, self._names, event)


class Ingest:
    """Keeps one CameraIngest per enabled camera this replica owns in step with the database,
    without a restart (the runtime shares the cameras between replicas)."""

    def __init__(self, *, js: JetStreamContext, names: BusNames, pool: asyncpg.Pool,
                 settings: IngestSettings, replica: str = "", clock: Clock | None = None,
                 nc: NATS | None = None) -> None:
        self._js, self._names, self._pool, self._settings = js, names, pool, settings
        self._nc = nc  # for standby sessions to follow RAW's headers (none: no standby)
        self._clock = clock or SystemClock()
        self._raw = RawStreamKeeper(js, names)
        self.replica = replica or default_name("ingest")
        self.runtime: CameraRuntime[CameraConfig, CameraIngest] | None = None
        self._standbys: dict[int, CameraStandby] = {}
        self._standby_retry_at: dict[int, float] = {}

    async def run(self, stop: asyncio.Event) -> None:
        self.runtime = await CameraRuntime.bound(
            self._js, self._names, self._pool, service="ingest", replica=self.replica,
            make=self._make, stop=stop, on_update=_update_config)
        if self.runtime is None:
            return
        try:
            await asyncio.gather(
                run_periodically(stop, self._settings.poll_interval_s, self.sync,
                                 what="camera_list"),
                self.runtime.run(stop))
        finally:
            for standby in self._standbys.values():
                await standby.close()
            self._standbys.clear()
            STANDBYS.set(0)

    async def sync(self) -> None:
        if self.runtime is None:
            return
        rows = await self._pool.fetch(CAMERAS_SQL)
        cameras = {r["id"]: CameraConfig(r["id"], r["commune"], r["slug"], r["state"],
                                         r["device_id"], r["sensor_index"], r["rtsp_url"])
                   for r in rows}
        await self.runtime.reconcile({
            cid: Wanted(cfg.commune, cfg.slug, cfg, restart_key=cfg.rtsp_url)
            for cid, cfg in cameras.items()})
        if self._settings.standby and self._nc is not None:
            await self._keep_standbys(cameras)

    async def _keep_standbys(self, cameras: dict[int, CameraConfig]) -> None:
        """A standby session on each camera this replica is next in line for (and only those)."""
        assert self.runtime is not None and self._nc is not None
        try:
            live = [r["name"] for r in await self._pool.fetch(LIVE_REPLICAS_SQL,
                                                              self.runtime.replicas.ttl_s)]
            owners = {r["camera_id"]: r["owner"] for r in await self._pool.fetch(OWNERS_SQL)}
        except (*TRANSIENT_DB_ERRORS, asyncpg.PostgresError) as exc:
            log.warning("standby_owners_unavailable", error=type(exc).__name__)
            return
        wanted = {cid: cfg for cid, cfg in cameras.items() if cid not in self.runtime.running
                  and standby_for(cid, owners.get(cid), live) == self.replica}
        now = asyncio.get_running_loop().time()
        for cid, standby in list(self._standbys.items()):
            if cid not in wanted or wanted[cid].rtsp_url != standby.url or standby.ended:
                if standby.ended:
                    self._standby_retry_at[cid] = now + STANDBY_RETRY_S
                await standby.close()
                del self._standbys[cid]
        for cid, cfg in wanted.items():
            if cid not in self._standbys and self._standby_retry_at.get(cid, 0.0) <= now:
                self._standbys[cid] = CameraStandby(
                    cfg.rtsp_url, nc=self._nc,
                    headers_subject=self._names.raw_headers(cfg.commune, cfg.slug),
                    keep_s=self._settings.standby_keep_s,
                    queue_frames=self._settings.queue_frames,
                    open_timeout_s=self._settings.open_timeout_s,
                    read_timeout_s=self._settings.read_timeout_s, clock=self._clock)
        STANDBYS.set(len(self._standbys))

    def _make(self, camera_id: int, want: Wanted[CameraConfig]) -> CameraIngest:
        standby = self._standbys.pop(camera_id, None)
        if standby is not None and standby.url != want.config.rtsp_url:
            asyncio.get_running_loop().create_task(standby.close())
            standby = None
        STANDBYS.set(len(self._standbys))
        return CameraIngest(want.config, js=self._js, names=self._names, pool=self._pool,
                            settings=self._settings, clock=self._clock, raw=self._raw,
                            standby=standby)

    @property
    def cameras(self) -> dict[int, Running[CameraConfig, CameraIngest]]:
        return self.runtime.running if self.runtime else {}

    def snapshot(self) -> list[dict[str, Any]]:
        """Per camera owned here and per multi-sensor device status, without URLs or
        credentials."""
        return [{"id": f"{r.wanted.commune}/{r.wanted.camera}", "state": r.wanted.config.state,
                 "device_id": r.wanted.config.device_id,
                 "sensor_index": r.wanted.config.sensor_index, "owner": self.replica,
                 "epoch": r.lease.epoch, **r.worker.status.public()}
                for r in self.cameras.values()]


def _update_config(worker: CameraIngest, cfg: CameraConfig) -> None:
    worker.cfg = cfg  # state or device changes need no new session
