"""Masking on the bus: per camera, a pull consumer on RAW feeding its CameraPipeline, VIDEO out,
`masking.*` events and health; the policy poller; the commissioning-snapshot responder."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field

import asyncpg
import av
import nats.errors
import nats.js.errors
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StorageType
from prometheus_client import Counter, Gauge, Histogram
from vigie.cameras.leases import Lease
from vigie.cameras.replicas import default_name
from vigie.cameras.runtime import CameraRuntime, Running, Wanted
from vigie.media.encoder import EncoderOptions
from vigie.media.masks import MaskDocument, MaskError
from vigie.plumbing.aio import run_periodically, sleep_or_stop
from vigie.plumbing.bus.claims import BIND_RETRY
from vigie.plumbing.bus.consumer import (
    TRANSIENT_NATS_ERRORS,
    DeliveryCount,
    camera_durable,
    give_back,
    owned_batches,
    replayed_from_start,
    rewound_to_ack_floor,
)
from vigie.plumbing.bus.events import (
    Event,
    FramesLost,
    MaskingBelowNorms,
    MaskingFailed,
    MaskingRecovered,
    publish_event_or_log,
)
from vigie.plumbing.bus.frames import Frame, FrameMessageError, publish_frame_retrying
from vigie.plumbing.bus.order import FRAMES_LOST, GAPS, FrameChain, FrameOrder, Gap
from vigie.plumbing.bus.subjects import BusNames
from vigie.plumbing.clock import FRAME_AHEAD_S, IMPLAUSIBLE, implausible
from vigie.plumbing.db.pool import TRANSIENT_DB_ERRORS
from vigie.plumbing.log import get_logger
from vigie.records.audit_register import Entry, record
from vigie.records.authorisations import why_unauthorised

from services.masking.core import (
    NORMS,
    POLICY_BLOCKS,
    SOURCE_CHANGED,
    STARTING,
    CameraPipeline,
    CameraPolicy,
    NormsWatch,
    snapshot_jpeg,
)
from services.masking.settings import MaskingSettings

log = get_logger(__name__)

LABELS = ["commune", "camera"]
FRAMES_OUT = Counter("vigie_masking_frames_total", "Masked frames published to VIDEO", LABELS)
DROPPED = Counter("vigie_masking_dropped_frames_total", "RAW frames not published (fail closed)",
                  LABELS)
LATENCY = Histogram("vigie_masking_latency_seconds",
                    "From capture (ingest's reception) to the masked frame published to VIDEO",
                    LABELS, buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0))
DELIVERIES_MISSED = Counter(
    "vigie_masking_deliveries_missed_total",
    "Times RAW frames sent to masking never reached it (a connection or a NATS node lost on "
    "the way) and were read again from the acknowledgement floor", LABELS)
BELOW_NORMS = Gauge("vigie_masking_camera_below_norms",
                    "1 while the camera's stored resolution or frame rate is below the floors of "
                    "the arrêté of 3 August 2007 (R35)", LABELS, multiprocess_mode="livemax")
NORMS_SQL = """
INSERT INTO camera_health (camera_id, below_norms) VALUES ($1, $2)
ON CONFLICT (camera_id) DO UPDATE SET below_norms = EXCLUDED.below_norms
"""
FAILING = Gauge("vigie_masking_camera_failing",
                "1 while masking fails closed for the camera (nothing shown or recorded)", LABELS,
                multiprocess_mode="livemax")

POLICIES_SQL = """
SELECT c.id, c.commune, c.slug, c.state, c.encoder, c.narrow_field, m.version, m.document,
       m.picture_width, m.picture_height, ca.authorisation_state, ca.reference, ca.valid_until
FROM cameras c
JOIN camera_authorisation ca ON ca.camera_id = c.id
LEFT JOIN LATERAL (
    SELECT version, document, picture_width, picture_height FROM masks
    WHERE camera_id = c.id AND approved_at IS NOT NULL ORDER BY version DESC LIMIT 1
) m ON true
WHERE c.state <> 'disabled'
"""

HEALTH_SQL = """
INSERT INTO camera_health (camera_id, masking_ok, masking_detail, mask_version, updated_at)
VALUES ($1, $2, $3, $4, now())
ON CONFLICT (camera_id) DO UPDATE SET masking_ok = EXCLUDED.masking_ok,
    masking_detail = EXCLUDED.masking_detail, mask_version = EXCLUDED.mask_version,
    updated_at = now()
"""


def policy_from_row(row: asyncpg.Record, defaults: EncoderOptions) -> CameraPolicy:
    """Build the camera's policy; a document that does not validate counts as no document."""
    document, problem = None, ""
    if row["document"] is not None:
        try:
            raw = row["document"]
            document = MaskDocument.parse(raw if isinstance(raw, str) else json.dumps(raw))
            if document.version != row["version"]:
                document = document.model_copy(update={"version": row["version"]})
        except MaskError as exc:
            problem = str(exc)
    encoder = defaults
    if row["encoder"]:
        overrides = row["encoder"] if isinstance(row["encoder"], dict) else json.loads(row["encoder"])
        try:
            encoder = defaults.model_copy(update=overrides)
            encoder = EncoderOptions.model_validate(encoder.model_dump())
        except ValueError as exc:
            problem = f"invalid encoder settings: {exc}"
            document = None
    size = (row["picture_width"], row["picture_height"]) if row["picture_width"] else None
    unauthorised = "" if row["authorisation_state"] == "valid" else why_unauthorised(
        row["authorisation_state"], row["reference"], row["valid_until"])
    return CameraPolicy(state=row["state"], document=document, encoder=encoder,
                        narrow_field=row["narrow_field"], problem=problem, picture_size=size,
                        unauthorised=unauthorised)


class CameraMasker:
    """One camera: its RAW consumer, its pipeline, its VIDEO publishing and events."""

    def __init__(self, camera_id: int, commune: str, camera: str, *, js: JetStreamContext,
                 names: BusNames, pool: asyncpg.Pool, settings: MaskingSettings) -> None:
        self.camera_id = camera_id
        self.pipeline = CameraPipeline(commune, camera)
        self._js, self._names, self._pool, self._settings = js, names, pool, settings
        self._log = log.bind(commune=commune, camera=camera)
        self._labels = (commune, camera)
        self._reported: tuple[str | None, int | None] | None = None
        self._norms = NormsWatch(settings.norms_after_frames)  # R35
        self._lease: Lease | None = None
        self._order = FrameOrder()  # RAW in capture order, from the newest ingest owner
        self._chain = FrameChain()  # and no frame decoded across a hole in ingest's sequence
        self._delivered = DeliveryCount()  # the consumer's number of the last one received
        # Taking the camera over: the capture time of the last frame VIDEO holds (a
        # predecessor's), and the source frames since the keyframe before it (ResumePoint).
        self._resume: ResumePoint | None = None
        self._implausible_logged = -1e9

    def set_policy(self, policy: CameraPolicy) -> None:
        self.pipeline.set_policy(policy)

    async def run(self, lease: Lease, stop: asyncio.Event) -> None:
        """Work on the camera while this worker owns it (the runtime holds the claim): a second
        masking process (an orphan, a replica, a restarted service) never shares its frames."""
        self._lease = lease
        self._chain = FrameChain()
        try:
            await self._consume(stop, lease)
        finally:
            # Whoever works on it next starts from a keyframe, and so will we if we get it back.
            self.pipeline.restart("the camera changed hands")
            FAILING.labels(*self._labels).set(0)  # its next owner says

    async def _consume(self, stop: asyncio.Event, lease: Lease) -> None:
        # A new owner carries on from the last frame VIDEO holds: RAW is read again from the
        # start (10 s) and decoded from the keyframe before that frame, unpublished (ResumePoint).
        # Later, only a miss rewinds (to the acknowledgement floor).
        rewind = False
        while await self._consume_until_missed(stop, lease, rewind=rewind, resume=not rewind):
            rewind = True
            # RAW frames sent to this worker never reached it (a connection or a NATS node lost
            # on the way): JetStream would send them again only after ack_wait, behind newer
            # ones — a hole up to the next keyframe though they were in RAW. Read again from the
            # acknowledgement floor: what was missed comes first, then the rest, in order (what
            # was already masked is older than the last frame: FrameOrder drops it).
            DELIVERIES_MISSED.labels(*self._labels).inc()
            self._log.warning("raw_deliveries_missed")

    async def _consume_until_missed(self, stop: asyncio.Event, lease: Lease, *,
                                    rewind: bool, resume: bool) -> bool:
        """Mask the camera's RAW until stopped, handed over or no longer its owner (False), or
        until a delivery was missed (True: subscribe again from the acknowledgement floor)."""
        subject = self._names.raw(self.pipeline.commune, self.pipeline.camera)
        config = ConsumerConfig(
            durable_name=camera_durable("masking", *self._labels),
            name=camera_durable("masking", *self._labels),
            filter_subject=subject, ack_policy=AckPolicy.EXPLICIT, ack_wait=10,
            # 3: a hand-over gives back (nak) the keyframe it stopped at, a delivery more.
            deliver_policy=DeliverPolicy.NEW, max_ack_pending=2000, max_deliver=3,
        )
        sub = None
        while not stop.is_set() and sub is None:
            if not await lease.still_held():
                return False
            try:
                raw = await self._js.stream_info(self._names.raw_stream)
                if raw.config.storage != StorageType.MEMORY:
                    # Invariant 1: unmasked frames never touch a disk. Whoever made RAW so,
                    # nothing of it is read or published (fail closed), and it is said.
                    self.pipeline.fail("other", "RAW is not a memory stream: refusing to read it")
                    await self._report()
                    await sleep_or_stop(stop, 5)
                    continue
                self._resume = await self._resume_point() if resume else None
                if self._resume is not None:
                    config = await replayed_from_start(self._js, self._names.raw_stream, config,
                                                       self._delivered)
                else:
                    config = await rewound_to_ack_floor(self._js, self._names.raw_stream,
                                                        config, self._delivered, rewind=rewind)
                sub = await self._js.pull_subscribe(subject, durable=config.durable_name,
                                                    stream=self._names.raw_stream, config=config)
            except BIND_RETRY as exc:  # NATS away, or RAW not there (yet, or again)
                self._log.warning("raw_subscribe_retry", error=type(exc).__name__)
                await sleep_or_stop(stop, 1)
        if sub is None:
            return False
        await self._report()

        def claim_lost(msgs: list[Msg]) -> None:
            # Frozen past the claim's life with frames in hand: they are another's now.
            self._log.warning("camera_claim_lost", frames=len(msgs), epoch=lease.epoch)

        try:
            async with contextlib.aclosing(owned_batches(
                    sub, self._settings.fetch_batch, stop=stop, still_owner=lease.still_held,
                    on_lost=claim_lost)) as batches:
                async for msgs in batches:
                    if not msgs and lease.handover.is_set():
                        return False  # nothing flowing: nothing to hand over at a keyframe
                    for i, msg in enumerate(msgs):
                        if self._delivered.missed_before(msg):
                            return True  # this one and the rest come again, after the missed
                        if lease.handover.is_set() and _is_keyframe(msg):
                            # Hand over at a keyframe: the next owner starts its encoder on it,
                            # and VIDEO loses no frame.
                            self._log.info("camera_handed_over_at_keyframe", epoch=lease.epoch)
                            await give_back(msgs[i:])
                            return False
                        await self._handle(msg)
                    await self._report()
            return False
        finally:
            with contextlib.suppress(*TRANSIENT_NATS_ERRORS, nats.errors.BadSubscriptionError):
                await sub.unsubscribe()

    async def _handle(self, msg: Msg) -> None:
        try:
            raw = Frame.from_message(msg.headers, msg.data)
        except FrameMessageError as exc:
            self._log.warning("raw_frame_malformed", error=str(exc))
            await msg.term()
            return
        if not self._order.admit(raw.owner_epoch, raw.capture_time_ns):
            # A stale ingest owner's frame, or one redelivered behind newer ones (its consumer
            # was killed before acknowledging it): decoded now, it would break the pictures after.
            DROPPED.labels(*self._labels).inc()
            with contextlib.suppress(*TRANSIENT_NATS_ERRORS):
                await msg.ack()
            return
        decodable = self._chain.admit(raw.session, raw.seq, raw.keyframe)
        for gap in self._chain.take_gaps():
            await self._frames_lost(gap, raw)
        if self._resume is not None:
            if self._resume.published(raw, decodable=decodable):
                with contextlib.suppress(*TRANSIENT_NATS_ERRORS):
                    await msg.ack()  # masked and published by the predecessor
                return
            resume, self._resume = self._resume, None
            if decodable and resume.anchor is not None and resume.gop and \
                    self.pipeline.resume_after(resume.gop[0], resume.anchor.pts):
                # The kept frames first: the pictures among them shown after the anchor are
                # this owner's to publish.
                for kept in resume.gop:
                    for frame in await asyncio.to_thread(self.pipeline.process, kept):
                        await self._publish(frame)
                self._log.info("camera_resumed_mid_gop", decoded_again=len(resume.gop))
            elif resume.abandoned:
                self._log.info("camera_resume_point_not_in_raw")
        if not decodable:
            # After a hole, up to the next keyframe: these reference a picture that never came.
            # Decoded, they would be masked and recorded smeared; a gap is recorded instead.
            DROPPED.labels(*self._labels).inc()
            with contextlib.suppress(*TRANSIENT_NATS_ERRORS):
                await msg.ack()
            return
        self._check_capture_time(raw)
        # Decoding and encoding are CPU work: off the event loop (PyAV releases the GIL).
        out = await asyncio.to_thread(self.pipeline.process, raw)
        if not out:
            if self.pipeline.blocked is not None:
                DROPPED.labels(*self._labels).inc()
        for frame in out:
            await self._publish(frame)
        self._observe(raw)
        with contextlib.suppress(*TRANSIENT_NATS_ERRORS):
            await msg.ack()

    async def _resume_point(self) -> ResumePoint | None:
        """Where the camera's previous owner stopped: the last frame VIDEO holds (None when it
        holds none, or cannot say — the new owner then starts at the next keyframe)."""
        try:
            last = await self._js.get_last_msg(self._names.video_stream,
                                               self._names.video(*self._labels))
        except nats.js.errors.NotFoundError:
            return None
        except TRANSIENT_NATS_ERRORS as exc:
            self._log.warning("video_last_frame_unavailable", error=type(exc).__name__)
            return None
        try:
            return ResumePoint(int((last.headers or {})["Vigie-Capture-Time-Ns"]))
        except (KeyError, ValueError):
            return None

    def _check_capture_time(self, raw: Frame) -> None:
        """R36: a capture time in the future or a day old means a clock is wrong (ingest's or
        ours): counted, and logged once a minute per camera. The frame is still masked — its
        images are what they are — and the drift is the clock check's to raise."""
        why = implausible(raw.capture_time_ns, time.time_ns(), FRAME_AHEAD_S)
        if why is None:
            return
        IMPLAUSIBLE.labels(*self._labels).inc()
        now = time.monotonic()
        if now - self._implausible_logged > 60:
            self._implausible_logged = now
            self._log.warning("capture_time_implausible", detail=why)

    async def _publish(self, frame: Frame) -> None:
        if self._lease is not None:
            frame = frame.model_copy(update={"owner_epoch": self._lease.epoch})
        if await publish_frame_retrying(self._js, self._names, frame, stage="video", attempts=5,
                                        log=self._log):
            FRAMES_OUT.labels(*self._labels).inc()
            LATENCY.labels(*self._labels).observe(
                max(0.0, time.time() - frame.capture_time_ns / 1e9))
            return
        # The encoder's chain is now broken for consumers: restart from a keyframe.
        self.pipeline._block("encode", "VIDEO unavailable")  # noqa: SLF001

    def _observe(self, raw: Frame) -> None:
        """R35, continuously (NormsWatch): a change either way is said — health row (the
        console's alarm, `vigie status`, the record of processing), metric, and the event when
        the camera falls below."""
        if self.pipeline.blocked is not None:
            self._norms.interrupt()
            return
        policy = self.pipeline.policy
        verdict = self._norms.observe(raw.width, raw.height, raw.capture_time_ns,
                                      bool(policy and policy.narrow_field))
        if verdict is None:
            return
        BELOW_NORMS.labels(*self._labels).set(1 if verdict.below else 0)
        loop = asyncio.get_running_loop()
        loop.create_task(self._norms_changed(verdict.detail))
        if verdict.below:
            self._log.warning("masking_below_norms", detail=verdict.detail)
            min_w, min_h, min_fps = NORMS[verdict.narrow_field]
            loop.create_task(self._event(MaskingBelowNorms(
                commune=self._labels[0], camera=self._labels[1], width=verdict.width,
                height=verdict.height, fps=verdict.fps, min_width=min_w, min_height=min_h,
                min_fps=min_fps)))

    async def _norms_changed(self, detail: str | None) -> None:
        try:
            await self._pool.execute(NORMS_SQL, self.camera_id, detail)
        except (*TRANSIENT_DB_ERRORS, asyncpg.PostgresError) as exc:
            self._norms.forget()  # told again at the next window
            self._log.warning("health_write_failed", error=type(exc).__name__)

    async def _report(self) -> None:
        """An event and a health row on every change between flowing and blocked (and why)."""
        self.pipeline.apply_pending()  # between frames: no process() is running now
        blocked = self.pipeline.blocked
        policy = self.pipeline.policy
        version = policy.document.version if policy and policy.document else None
        # A policy's block says why in words that change only with the policy (an authorisation
        # expired, then another not in force yet): each new reason is reported.
        state = ((f"{blocked.reason}: {blocked.detail}" if blocked.reason in POLICY_BLOCKS
                  else blocked.reason, None) if blocked else (None, version))
        if state == self._reported:
            return
        self._reported = state
        commune, camera = self._labels
        FAILING.labels(commune, camera).set(1 if blocked and blocked.reason != STARTING else 0)
        if blocked and blocked.reason == STARTING:
            pass
        elif blocked:
            self._log.warning("masking_failed", reason=blocked.reason, detail=blocked.detail)
            if blocked.reason == SOURCE_CHANGED:
                await self._back_to_commissioning(blocked.detail)
            await self._event(MaskingFailed(commune=commune, camera=camera,
                                            reason=blocked.reason,  # type: ignore[arg-type]
                                            detail=blocked.detail))
        elif version is not None:
            self._log.info("masking_recovered", mask_version=version)
            await self._event(MaskingRecovered(commune=commune, camera=camera,
                                               mask_version=version))
        try:
            await self._pool.execute(HEALTH_SQL, self.camera_id, blocked is None,
                                     f"{blocked.reason}: {blocked.detail}" if blocked else "",
                                     version)
        except (*TRANSIENT_DB_ERRORS, asyncpg.PostgresError) as exc:
            self._log.warning("health_write_failed", error=type(exc).__name__)

    async def _back_to_commissioning(self, detail: str) -> None:
        """The picture changed under approved masks: the camera needs new ones (journaled)."""
        commune, camera = self._labels
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                changed = await conn.fetchval(
                    "UPDATE cameras SET state = 'commissioning', source_changed_at = now(), "
                    "updated_at = now() WHERE id = $1 AND state = 'active' RETURNING true",
                    self.camera_id)
                if changed:
                    await record(conn, Entry(actor="masking", action="camera.source_changed",
                                             commune=commune, cameras=[f"{commune}/{camera}"],
                                             details={"detail": detail,
                                                      "back_to_commissioning": True}))
        except (*TRANSIENT_DB_ERRORS, asyncpg.PostgresError) as exc:
            # Still blocked in memory: nothing passes; the next report tries again.
            self._reported = None
            self._log.warning("commissioning_write_failed", error=type(exc).__name__)

    async def _event(self, event: Event) -> None:
        await publish_event_or_log(self._js, self._names, event)

    async def _frames_lost(self, gap: Gap, after: Frame) -> None:
        """RAW frames never received: the decoder starts again at the next keyframe (its
        references are gone), counted and said."""
        self.pipeline.reset_decoder()
        GAPS.labels("raw", *self._labels).inc()
        FRAMES_LOST.labels("raw", *self._labels).inc(gap.missing)
        self._log.warning("raw_frames_lost", missing=gap.missing, after_seq=gap.after_seq)
        await self._event(FramesLost(commune=self._labels[0], camera=self._labels[1], stage="raw",
                                     consumer="masking", missing=gap.missing,
                                     capture_time_ns=after.capture_time_ns))


@dataclass
class ResumePoint:
    """A camera taken over (its owner killed, frozen, or handing it over): VIDEO's last frame
    says where the predecessor stopped — its capture time is that of the RAW frame it was made
    from (the anchor). RAW, read again from its start, brings the frames up to the anchor, and
    after it those of the same session shown before it (B-frames: pts at most the anchor's): all
    published already, acknowledged, not published again. The frames since the last keyframe
    are kept and fed to the pipeline again (`resume_after`), which publishes only the pictures
    shown after the anchor. Without, the new owner waited for the next source keyframe: a hole of
    up to a GOP in every camera's recording at each masking failover (issue 35)."""

    after_ns: int  # capture time of the last frame published to VIDEO
    anchor: Frame | None = None  # the RAW frame it was made from, once read
    gop: list[Frame] = field(default_factory=list)
    abandoned: bool = False  # the anchor is not in RAW (any more): start at a keyframe

    MAX_GOP = 600  # frames kept at most (24 s at 25 fps; RAW itself keeps 10 s)

    def published(self, raw: Frame, *, decodable: bool) -> bool:
        """Whether this source frame was masked and published already (keeping it if needed)."""
        anchor = self.anchor
        if anchor is None:
            if raw.capture_time_ns > self.after_ns:
                self.abandoned = True  # RAW no longer holds where the predecessor stopped
                return False
            if raw.capture_time_ns == self.after_ns:
                self.anchor = raw
        elif raw.session != anchor.session or raw.pts > anchor.pts:
            return False
        if not decodable:
            self.gop = []
        elif raw.keyframe:
            self.gop = [raw]
        elif self.gop and len(self.gop) < self.MAX_GOP:
            self.gop.append(raw)
        else:
            self.gop = []
        return True


class MaskingWorker:
    """The cameras one worker process owns: each worker is a claimant of its own, so the cameras
    are shared between every worker of every masking replica (a camera's decoder and encoder
    always live in one process)."""

    def __init__(self, *, nc: NATS, js: JetStreamContext, names: BusNames, pool: asyncpg.Pool,
                 settings: MaskingSettings, name: str = "",
                 encoder_defaults: EncoderOptions | None = None) -> None:
        self._nc, self._js, self._names, self._pool = nc, js, names, pool
        self._settings = settings
        self.name = name or default_name("masking")
        self._defaults = encoder_defaults or EncoderOptions()
        self._policies: dict[int, CameraPolicy] = {}
        self._by_slug: dict[tuple[str, str], int] = {}
        self._last_loaded = asyncio.get_event_loop().time()
        self.runtime: CameraRuntime[CameraPolicy, CameraMasker] | None = None

    @property
    def cameras(self) -> dict[int, Running[CameraPolicy, CameraMasker]]:
        return self.runtime.running if self.runtime else {}

    async def run(self, stop: asyncio.Event) -> None:
        self.runtime = await CameraRuntime.bound(
            self._js, self._names, self._pool, service="masking", replica=self.name,
            make=self._make, stop=stop, on_update=_update_policy)
        if self.runtime is None:
            return
        snapshot_sub = await self._nc.subscribe(self._names.snapshot_request("*", "*"),
                                                cb=self._snapshot)
        try:
            await asyncio.gather(
                run_periodically(stop, self._settings.poll_interval_s, self.sync,
                                 what="mask_policies"),
                self.runtime.run(stop))
        finally:
            with contextlib.suppress(*TRANSIENT_NATS_ERRORS, nats.errors.BadSubscriptionError):
                await snapshot_sub.unsubscribe()

    async def sync(self) -> None:
        if self.runtime is None:
            return
        now = asyncio.get_running_loop().time()
        try:
            rows = await self._pool.fetch(POLICIES_SQL)
        except (*TRANSIENT_DB_ERRORS, asyncpg.PostgresError) as exc:
            if now - self._last_loaded > self._settings.masks_stale_after_s:
                # Masks we cannot re-read may have changed: fail closed.
                for held in self.cameras.values():
                    held.worker.set_policy(CameraPolicy(
                        state="active", document=None,
                        problem=f"masks not loadable: {type(exc).__name__}"))
            log.warning("policies_unavailable", error=type(exc).__name__)
            return
        self._last_loaded = now
        self._by_slug = {(r["commune"], r["slug"]): r["id"] for r in rows}
        await self.runtime.reconcile({
            r["id"]: Wanted(r["commune"], r["slug"], policy_from_row(r, self._defaults))
            for r in rows})

    def _make(self, camera_id: int, want: Wanted[CameraPolicy]) -> CameraMasker:
        masker = CameraMasker(camera_id, want.commune, want.camera, js=self._js,
                              names=self._names, pool=self._pool, settings=self._settings)
        masker.set_policy(want.config)
        return masker

    async def _snapshot(self, msg: Msg) -> None:
        """Commissioning snapshot: one RAW keyframe decoded in memory, never stored."""
        parts = msg.subject.split(".")
        cid = self._by_slug.get((parts[-2], parts[-1]))
        if cid is None or cid not in self.cameras:
            return  # another worker owns it (or nobody: the requester times out)
        pipeline = self.cameras[cid].worker.pipeline
        policy = pipeline.latest_policy
        if policy is None or policy.unauthorised:
            # R3: a camera without a valid prefectoral authorisation shows nothing, not even to
            # draw its masks (record the order and attach the camera first).
            await self._nc.publish(msg.reply, b"", headers={"Vigie-Error": policy.unauthorised
                                                            if policy else "no policy yet"})
            return
        # Served once: a second request waits for a newer keyframe (no reuse, no hoarding).
        raw, pipeline.last_raw_keyframe = pipeline.last_raw_keyframe, None
        if raw is None:
            await self._nc.publish(msg.reply, b"", headers={"Vigie-Error": "no keyframe yet"})
            return
        try:
            jpeg = await asyncio.to_thread(snapshot_jpeg, raw)
        except (ValueError, av.error.FFmpegError) as exc:
            await self._nc.publish(msg.reply, b"", headers={"Vigie-Error": str(exc)})
            return
        await self._nc.publish(msg.reply, jpeg, headers={
            "Content-Type": "image/jpeg", "Vigie-Capture-Time-Ns": str(raw.capture_time_ns)})


def _update_policy(masker: CameraMasker, policy: CameraPolicy) -> None:
    if masker.pipeline.latest_policy != policy:
        masker.set_policy(policy)


def _is_keyframe(msg: Msg) -> bool:
    return bool(msg.headers and msg.headers.get("Vigie-Keyframe") == "1")


