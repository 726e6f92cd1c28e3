"""The recorder on the bus: per camera, a durable pull consumer on VIDEO, segments stored in object
storage and Postgres, and only then acknowledged (DESIGN.md invariant 2)."""

from __future__ import annotations

import asyncio
import contextlib
import time

import asyncpg
import nats.errors
from minio.error import S3Error
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError
from prometheus_client import Counter, Gauge, Histogram
from vigie.cameras.leases import Fenced, Lease, check_epoch
from vigie.cameras.replicas import default_name
from vigie.cameras.runtime import CameraRuntime, Running, RuntimeSettings, Wanted
from vigie.custody import provenance
from vigie.plumbing.aio import run_periodically, sleep_or_stop
from vigie.plumbing.bus.consumer import (
    TRANSIENT_NATS_ERRORS,
    DeliveryCount,
    camera_durable,
    owned_batches,
    rewound_to_ack_floor,
)
from vigie.plumbing.bus.events import (
    Event,
    FramesLost,
    RecorderBacklog,
    RecorderFrameRejected,
    RecorderStorageUnavailable,
    SegmentRecorded,
    publish_event_or_log,
)
from vigie.plumbing.bus.frames import Frame, FrameMessageError
from vigie.plumbing.bus.order import FRAMES_LOST, GAPS, FrameChain, FrameOrder, Gap
from vigie.plumbing.bus.subjects import BusNames
from vigie.plumbing.db.pool import TRANSIENT_DB_ERRORS
from vigie.plumbing.log import get_logger
from vigie.plumbing.storage.objects import TRANSIENT_STORAGE_ERRORS, ObjectStore
from vigie.security.signing import SigningKey

from services.recorder.backlog import Backlog, BacklogAlarm, StreamState, measure
from services.recorder.core import (
    FrameRejected,
    Segment,
    Segmenter,
    mux_fmp4,
    ns_of,
    object_key,
    utc,
)
from services.recorder.settings import RecorderSettings

log = get_logger(__name__)

LABELS = ["commune", "camera"]
SEGMENTS = Counter("vigie_recorder_segments_total", "Segments stored", LABELS)
REJECTED = Counter("vigie_recorder_frames_set_aside_total",
                   "Frames the muxer refused (and their dependants), terminated", LABELS)
BYTES = Counter("vigie_recorder_bytes_total", "Bytes of segments stored", LABELS)
UPLOAD = Histogram("vigie_recorder_upload_seconds", "Segment upload latency",
                   buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30))
# A store that refuses every upload observes no latency: counted here, or the alert is silent.
UPLOAD_FAILURES = Counter("vigie_recorder_upload_failures_total",
                          "Segment uploads that failed (the store unreachable, refusing, or slow "
                          "past the timeout); each is retried", ["target"])
DELIVERIES_MISSED = Counter(
    "vigie_recorder_deliveries_missed_total",
    "Times VIDEO frames sent to the recorder never reached it (a connection or a NATS node lost "
    "on the way) and were read again from the acknowledgement floor", LABELS)
BACKLOG_MESSAGES = Gauge("vigie_recorder_backlog_messages",
                         "VIDEO messages of the camera not yet acknowledged", LABELS)
BACKLOG_AGE = Gauge("vigie_recorder_backlog_age_seconds",
                    "Age in VIDEO of the camera's oldest unrecorded frame", LABELS)
BACKLOG_FRACTION = Gauge("vigie_recorder_backlog_limit_fraction",
                         "Share of VIDEO's max age or max bytes spent by that frame (1 = lost)",
                         LABELS)

CAMERAS_SQL = """
SELECT c.id, c.commune, c.slug, coalesce(h.fps, 30) AS fps
FROM cameras c LEFT JOIN camera_health h ON h.camera_id = c.id
WHERE c.state <> 'disabled'
"""
INSERT_SQL = """
INSERT INTO segments (camera_id, start_time, end_time, object_key, frames, size_bytes, sha256,
                      mask_version, codec, width, height)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
ON CONFLICT (camera_id, start_time) DO NOTHING
RETURNING id
"""
STORED_UNTIL_SQL = "SELECT max(end_time) FROM segments WHERE camera_id = $1"
CONSUMER_UNREADABLE: tuple[type[BaseException], ...] = (*TRANSIENT_NATS_ERRORS, NotFoundError)


class _Unavailable(Exception):
    def __init__(self, target: str, cause: BaseException) -> None:
        super().__init__(target)
        self.target, self.cause = target, cause


def consumer_limits(fps: float, settings: RecorderSettings) -> tuple[int, float]:
    """(max_ack_pending, ack_wait_s): two whole segments fit in flight with room to spare, and
    ack_wait exceeds a segment's length plus the upload timeout (held messages are also kept alive
    with in-progress acknowledgements during an outage)."""
    per_segment = int(max(fps, 1) * settings.segment_s * 1.5) + 50
    return 2 * per_segment, settings.segment_s + settings.upload_timeout_s + 30


class CameraRecorder:
    def __init__(self, camera_id: int, commune: str, camera: str, fps: float, *,
                 js: JetStreamContext, names: BusNames, pool: asyncpg.Pool, store: ObjectStore,
                 bucket: str, settings: RecorderSettings,
                 signing_key: SigningKey | None = None) -> None:
        self.camera_id, self.commune, self.camera, self.fps = camera_id, commune, camera, fps
        self._signing_key = signing_key
        self._js, self._names, self._pool, self._store = js, names, pool, store
        self._bucket, self._settings = bucket, settings
        self._segmenter: Segmenter[Msg] = Segmenter(settings.segment_s, settings.gap_s)
        self._storing: Segment[Msg] | None = None
        self._log = log.bind(commune=commune, camera=camera)
        self._labels = (commune, camera)
        self._outage = False
        # An upload abandoned on timeout goes on in its thread: the next attempt waits for it
        # rather than racing it (two PUTs of one key: the late one's abort removed the object).
        self._upload: asyncio.Task[str] | None = None
        self._alarm = BacklogAlarm()
        self.stored = 0
        self.durable = camera_durable("recorder", commune, camera)
        self._lease: Lease | None = None
        self._order = FrameOrder()  # the newest masking owner seen on VIDEO
        self._chain = FrameChain()  # no frame stored across a hole in masking's sequence
        self._delivered = DeliveryCount()  # the consumer's number of the last one received

    async def run(self, lease: Lease, stop: asyncio.Event) -> None:
        """While this replica owns the camera. A hand-over needs no clean point: what is not
        stored stays unacknowledged, and the next owner rebuilds the same segments from it."""
        self._lease = lease
        self._chain = FrameChain()  # the durable resumes at a segment's first keyframe
        async with lease.until_lost(stop) as ended:
            await self._run(ended)

    async def _run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            if not (missed := await self._consume(stop)):
                return
            # Deliveries this recorder never received (a connection or a NATS node lost while
            # they were on their way): the server counts them delivered and would send them again
            # only after ack_wait, behind newer frames — a hole in the recording though the frames
            # are in VIDEO. Read again from the acknowledgement floor instead: the open segment
            # (unacknowledged) comes again first, then what was missed, in order.
            DELIVERIES_MISSED.labels(*self._labels).inc()
            self._log.warning("video_deliveries_missed", seen_by=missed)
            self._segmenter.current = None
            self._chain = FrameChain()

    async def _consume(self, stop: asyncio.Event) -> str:
        """Read the camera's VIDEO until stopped or no longer its owner (""), or until a
        delivery was missed (how it showed: subscribe again from the acknowledgement floor)."""
        subject = self._names.video(self.commune, self.camera)
        max_pending, ack_wait = consumer_limits(self.fps, self._settings)
        name = self.durable
        config = ConsumerConfig(durable_name=name, name=name, filter_subject=subject,
                                ack_policy=AckPolicy.EXPLICIT, ack_wait=ack_wait,
                                max_ack_pending=max_pending, deliver_policy=DeliverPolicy.ALL)
        sub = None
        while sub is None and not stop.is_set():
            try:
                await self._load_stored_until()
                config = await self._resume_from_ack_floor(config)
                sub = await self._js.pull_subscribe(subject, durable=name,
                                                    stream=self._names.video_stream, config=config)
            except (*TRANSIENT_NATS_ERRORS, *TRANSIENT_DB_ERRORS,
                    asyncpg.PostgresConnectionError) as exc:
                self._log.warning("video_subscribe_retry", error=type(exc).__name__)
                await sleep_or_stop(stop, 1)
        if sub is None:
            return ""
        keepalive = asyncio.create_task(self._keep_alive(stop, ack_wait / 3))
        last_frame = time.monotonic()
        try:
            # An owner frozen past its lease, woken up, must not take frames from the consumer its
            # successor now reads (they would wait there for ack_wait, unacknowledged).
            async with contextlib.aclosing(owned_batches(
                    sub, self._settings.fetch_batch, stop=stop,
                    still_owner=self._still_owner)) as batches:
                async for msgs in batches:
                    if not msgs:
                        if time.monotonic() - last_frame > self._settings.quiet_flush_s:
                            # Quiet camera: close the open segment as a capture gap would —
                            # unless the last frames sent were never received (then they come
                            # again first).
                            if await self._deliveries_outstanding():
                                return "pending_count"
                            segment = self._segmenter.flush()
                            if segment:
                                await self._store_until_done(segment, stop)
                        continue
                    last_frame = time.monotonic()
                    for msg in msgs:
                        if self._delivered.missed_before(msg):
                            return "delivery_count"  # it and the rest come again, after the missed
                        await self._handle(msg, stop)
                        if stop.is_set():
                            break
            return ""
        finally:
            keepalive.cancel()
            # Unstored frames stay unacknowledged: the next recorder gets them (idempotently).
            with contextlib.suppress(*TRANSIENT_NATS_ERRORS, nats.errors.BadSubscriptionError):
                await sub.unsubscribe()

    async def _deliveries_outstanding(self) -> bool:
        """The consumer counts more frames delivered and unacknowledged than this recorder holds:
        the last ones sent were lost on the way, and no later delivery showed it."""
        try:
            info = await self._js.consumer_info(self._names.video_stream, self.durable)
        except CONSUMER_UNREADABLE:
            return False  # asked again at the next quiet fetch
        return (info.num_ack_pending or 0) > len(self.held())

    async def _load_stored_until(self) -> None:
        """Frames before the end of the last stored segment are in storage already: a redelivery
        of them (acknowledgements lost in a NATS restart, say) must not make a second segment."""
        until = await self._pool.fetchval(STORED_UNTIL_SQL, self.camera_id)
        if until is not None:
            self._segmenter.floor_ns = ns_of(until)

    async def _resume_from_ack_floor(self, config: ConsumerConfig) -> ConsumerConfig:
        """After a crash, the dead recorder's unacknowledged messages would come back only after
        ack_wait, *behind* newer ones: the segments would be cut differently and frames before the
        first keyframe lost. So restart the durable at its ack floor (always a segment boundary,
        since whole segments are acknowledged together): redelivery in order, same segments."""
        return await rewound_to_ack_floor(self._js, self._names.video_stream, config,
                                          self._delivered)

    async def _handle(self, msg: Msg, stop: asyncio.Event) -> None:
        try:
            frame = Frame.from_message(msg.headers, msg.data)
        except FrameMessageError as exc:
            self._log.warning("video_frame_malformed", error=str(exc))
            await msg.term()
            return
        if (frame.owner_epoch or 0) < self._order.epoch:
            # A stale masking owner's frame, after its successor's: never stored.
            self._log.warning("stale_owner_frame_dropped", epoch=frame.owner_epoch,
                              current=self._order.epoch)
            with contextlib.suppress(*TRANSIENT_NATS_ERRORS):
                await msg.ack()
            return
        # (A frame already passed is the segmenter's to drop: it knows what is stored.)
        self._order.admit(frame.owner_epoch, frame.capture_time_ns)
        decodable = self._chain.admit(frame.session, frame.seq, frame.keyframe)
        closed: list[Segment[Msg]] = []
        for gap in self._chain.take_gaps():
            # Frames of VIDEO never arrived: the segment ends before the hole, and nothing is
            # stored until the next keyframe — a gap in the recording, never a smeared picture.
            if (cut := self._segmenter.flush()) is not None:
                closed.append(cut)
            await self._frames_lost(gap, frame)
        kept = False
        if decodable:
            more, kept = self._segmenter.feed(frame, msg)
            closed += more
            if not kept:
                # Already stored (a new masking owner re-encoding what its predecessor sent):
                # the frames that follow reference this one, which is not in the segment.
                self._chain.need_keyframe()
        if not kept:
            # Before the first keyframe (undecodable alone) or already held: nothing to store.
            with contextlib.suppress(*TRANSIENT_NATS_ERRORS):
                await msg.ack()
        for segment in closed:
            await self._store_until_done(segment, stop)

    async def _store_until_done(self, segment: Segment[Msg], stop: asyncio.Event) -> None:
        """Retry with capped backoff until stored; acknowledge only after object and row exist."""
        self._storing = segment
        delay = 0.5
        try:
            while True:
                try:
                    await self._store_segment(segment)
                    break
                except FrameRejected as exc:
                    if not await self._set_aside(segment, exc):
                        return  # nothing left to store
                    continue
                except _Unavailable as exc:
                    await self._unavailable(exc.target, exc.cause)
                except Fenced as exc:
                    # Another replica owns the camera now: its frames are its own to store.
                    self._log.warning("recorder_fenced", detail=str(exc))
                    if self._lease is not None:
                        self._lease.lost.set()
                    return
                if stop.is_set():
                    return  # left unacknowledged: redelivered to the next recorder
                await sleep_or_stop(stop, delay)
                delay = min(delay * 2, self._settings.retry_max_s)
        finally:
            self._storing = None
        self._segmenter.stored(segment)
        for msg in segment.tokens:
            with contextlib.suppress(*TRANSIENT_NATS_ERRORS):
                await msg.ack()

    async def _set_aside(self, segment: Segment[Msg], rejected: FrameRejected) -> bool:
        """One frame the muxer refuses must not stop the camera's recording for good (it would be
        redelivered and refused again): it is terminated, said in an event and counted, and the
        segment is stored without it — and without the frames that cannot be decoded without it,
        up to the next keyframe. False when nothing of the segment is left."""
        frames = segment.frames
        rejected_at = frames[rejected.index].capture_time_ns
        drop = [rejected.index]
        if frames[rejected.index].keyframe:  # its dependants go too: a segment starts at a keyframe
            following = rejected.index + 1
            while following < len(frames) and not frames[following].keyframe:
                drop.append(following)
                following += 1
        for i in sorted(drop, reverse=True):
            frames.pop(i)
            msg = segment.tokens.pop(i)
            with contextlib.suppress(*TRANSIENT_NATS_ERRORS):
                await msg.term()
        REJECTED.labels(*self._labels).inc(len(drop))
        self._log.warning("frames_set_aside", capture_time_ns=rejected_at, frames=len(drop),
                          reason=rejected.reason)
        await self._event(RecorderFrameRejected(
            commune=self.commune, camera=self.camera, capture_time_ns=rejected_at,
            reason=rejected.reason, frames=len(drop)))
        return bool(segment.frames)

    async def _still_owner(self) -> bool:
        return self._lease is None or await self._lease.still_held()

    async def _fence(self, conn: asyncpg.Connection | asyncpg.Pool) -> None:
        """Refuse to write as an owner that lost the camera (frozen past its lease, say)."""
        lease = self._lease
        if lease is None:
            return
        if not await lease.still_held():
            raise Fenced(f"lease of epoch {lease.epoch} lost")
        await check_epoch(conn, "recorder", self.camera_id, lease.epoch)  # type: ignore[arg-type]

    async def _store_segment(self, segment: Segment[Msg]) -> None:
        try:
            await self._fence(self._pool)
        except (*TRANSIENT_DB_ERRORS, asyncpg.PostgresConnectionError) as exc:
            raise _Unavailable("database", exc) from exc
        muxed = await asyncio.to_thread(mux_fmp4, segment)
        key = object_key(self.commune, self.camera, segment.start_ns)
        first = segment.first
        t0 = time.monotonic()
        # Both raise OSError when unreachable: which step failed names the target, not the type.
        timeout = self._settings.upload_timeout_s
        try:
            if self._upload is not None and not self._upload.done():
                # The previous attempt is still in flight: let it end before sending again.
                await asyncio.wait({self._upload}, timeout=timeout)
                if not self._upload.done():
                    raise TimeoutError("the previous upload is still in flight")
            self._upload = asyncio.create_task(self._store.put(
                self._bucket, key, muxed.data, content_type="video/mp4",
                metadata={"sha256": muxed.sha256, "mask-version": str(first.mask_version)}))
            await asyncio.wait_for(asyncio.shield(self._upload), timeout)
        except TRANSIENT_STORAGE_ERRORS + (S3Error,) as exc:
            UPLOAD_FAILURES.labels("object_storage").inc()
            raise _Unavailable("object_storage", exc) from exc
        UPLOAD.observe(time.monotonic() - t0)
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                await self._fence(conn)  # the row stays locked until the segment is recorded
                inserted = await conn.fetchval(
                    INSERT_SQL, self.camera_id, utc(segment.start_ns), utc(segment.end_ns), key,
                    len(segment.frames), len(muxed.data), muxed.sha256, first.mask_version or 0,
                    first.codec, first.width, first.height)
                if inserted is not None:  # a redelivered segment is linked once
                    await provenance.append(
                        conn, self._signing_key, camera_id=self.camera_id,
                        camera=f"{self.commune}/{self.camera}", object_key=key,
                        start=utc(segment.start_ns), end=utc(segment.end_ns),
                        sha256_hex=muxed.sha256, payload_sha256=muxed.payload_sha256,
                        frames=muxed.packets, mask_version=first.mask_version or 0)
        except (*TRANSIENT_DB_ERRORS, asyncpg.PostgresConnectionError) as exc:
            raise _Unavailable("database", exc) from exc
        if self._outage:
            self._outage = False
            self._log.info("storage_available_again")
        self.stored += 1
        SEGMENTS.labels(*self._labels).inc()
        BYTES.labels(*self._labels).inc(len(muxed.data))
        self._log.info("segment_stored", key=key, frames=len(segment.frames),
                       size_bytes=len(muxed.data))
        await self._event(SegmentRecorded(
            commune=self.commune, camera=self.camera, key=key, start=utc(segment.start_ns),
            end=utc(segment.end_ns), frames=len(segment.frames), size_bytes=len(muxed.data),
            sha256=muxed.sha256, mask_version=first.mask_version or 0))

    async def _unavailable(self, target: str, exc: BaseException) -> None:
        self._log.warning("segment_store_retry", target=target, error=type(exc).__name__)
        if not self._outage:
            self._outage = True
            await self._event(RecorderStorageUnavailable(
                commune=self.commune, camera=self.camera, target=target,  # type: ignore[arg-type]
                detail=type(exc).__name__))

    def held(self) -> list[Msg]:
        """Messages delivered and not yet acknowledged: the open segment and the one being stored."""
        held = list(self._storing.tokens) if self._storing else []
        if self._segmenter.current:
            held += self._segmenter.current.tokens
        return held

    async def _keep_alive(self, stop: asyncio.Event, every_s: float) -> None:
        """Tell JetStream that held messages are still being worked on (segments take a minute,
        outages longer): without it they would be redelivered while still held."""
        while not stop.is_set():
            await asyncio.sleep(every_s)
            for msg in self.held():
                with contextlib.suppress(*TRANSIENT_NATS_ERRORS):
                    await msg.in_progress()

    async def check_backlog(self, stream: StreamState) -> Backlog:
        """Measure the backlog against VIDEO's limits; a `recorder.backlog` event past 50 %."""
        info = await self._js.consumer_info(self._names.video_stream, self.durable)
        pending = (info.num_pending or 0) + (info.num_ack_pending or 0)
        oldest = min((m.metadata for m in self.held()), default=None,
                     key=lambda meta: meta.sequence.stream)
        backlog = measure(stream, pending_messages=pending,
                          oldest_seq=oldest.sequence.stream if oldest else None,
                          oldest_stored_at_s=oldest.timestamp.timestamp() if oldest else None,
                          now_s=time.time())
        BACKLOG_MESSAGES.labels(*self._labels).set(backlog.pending_messages)
        BACKLOG_AGE.labels(*self._labels).set(backlog.oldest_age_s)
        BACKLOG_FRACTION.labels(*self._labels).set(backlog.limit_fraction)
        if self._alarm.update(backlog.limit_fraction):
            self._log.warning("recorder_backlog", pending_messages=backlog.pending_messages,
                              limit_fraction=round(backlog.limit_fraction, 3))
            await self._event(RecorderBacklog(
                commune=self.commune, camera=self.camera,
                pending_messages=backlog.pending_messages, pending_bytes=backlog.pending_bytes,
                oldest_age_s=round(backlog.oldest_age_s, 3),
                age_fraction=round(backlog.age_fraction, 4),
                bytes_fraction=round(backlog.bytes_fraction, 4),
                limit_fraction=round(backlog.limit_fraction, 4)))
        return backlog

    async def _event(self, event: Event) -> None:
        await publish_event_or_log(self._js, self._names, event)

    async def _frames_lost(self, gap: Gap, after: Frame) -> None:
        GAPS.labels("video", *self._labels).inc()
        FRAMES_LOST.labels("video", *self._labels).inc(gap.missing)
        self._log.warning("video_frames_lost", missing=gap.missing, after_seq=gap.after_seq)
        await self._event(FramesLost(commune=self.commune, camera=self.camera, stage="video",
                                     consumer="recorder", missing=gap.missing,
                                     capture_time_ns=after.capture_time_ns))


class Recorder:
    """One CameraRecorder per camera this replica owns, kept in step by polling."""

    def __init__(self, *, js: JetStreamContext, names: BusNames, pool: asyncpg.Pool,
                 store: ObjectStore, bucket: str, settings: RecorderSettings,
                 replica: str = "", signing_key: SigningKey | None = None) -> None:
        self._js, self._names, self._pool, self._store = js, names, pool, store
        self._signing_key = signing_key
        self._bucket, self._settings = bucket, settings
        self.replica = replica or default_name("recorder")
        self.runtime: CameraRuntime[float, CameraRecorder] | None = None

    @property
    def cameras(self) -> dict[int, Running[float, CameraRecorder]]:
        return self.runtime.running if self.runtime else {}

    async def run(self, stop: asyncio.Event) -> None:
        self.runtime = await CameraRuntime.bound(
            self._js, self._names, self._pool, service="recorder", replica=self.replica,
            make=self._make, stop=stop,
            # A segment being stored finishes first (its upload is bounded); what is not stored
            # stays unacknowledged for the next owner.
            settings=RuntimeSettings(stop_timeout_s=self._settings.upload_timeout_s + 5))
        if self.runtime is None:
            return
        await asyncio.gather(
            run_periodically(stop, self._settings.poll_interval_s, self.sync,
                             what="camera_list"),
            run_periodically(stop, self._settings.backlog_check_s, self.check_backlogs,
                             what="backlog"),
            self.runtime.run(stop))

    async def sync(self) -> None:
        if self.runtime is None:
            return
        rows = await self._pool.fetch(CAMERAS_SQL)
        # The frame rate sizes the consumer when a camera is started; a change waits for then.
        await self.runtime.reconcile({
            r["id"]: Wanted(r["commune"], r["slug"], float(r["fps"])) for r in rows})

    def _make(self, camera_id: int, want: Wanted[float]) -> CameraRecorder:
        return CameraRecorder(camera_id, want.commune, want.camera, want.config, js=self._js,
                              names=self._names, pool=self._pool, store=self._store,
                              bucket=self._bucket, settings=self._settings,
                              signing_key=self._signing_key)

    async def check_backlogs(self) -> None:
        try:
            info = await self._js.stream_info(self._names.video_stream)
        except TRANSIENT_NATS_ERRORS as exc:
            log.warning("backlog_unavailable", error=type(exc).__name__)
            return
        stream = StreamState(last_seq=info.state.last_seq, messages=info.state.messages,
                             bytes=info.state.bytes, max_age_s=info.config.max_age or 0.0,
                             max_bytes=info.config.max_bytes or -1)
        for running in list(self.cameras.values()):
            # NotFoundError: its consumer is not created yet; next time.
            with contextlib.suppress(NotFoundError, *TRANSIENT_NATS_ERRORS):
                await running.worker.check_backlog(stream)
