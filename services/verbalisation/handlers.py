"""The verbalisation service on the bus: it answers the gateway's requests (create a draft from the
live image, add a still, update, hand over) and erases the stills when they are due. Each answer is
JSON: the offence record, or a refusal with its HTTP status and reason."""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import timedelta
from typing import Any

import asyncpg
import nats.errors
from nats.aio.msg import Msg
from pydantic import ValidationError
from vigie.plumbing.aio import run_periodically
from vigie.plumbing.bus.consumer import TRANSIENT_NATS_ERRORS
from vigie.plumbing.bus.events import OffenceHandedOver, OffenceRecorded, publish_event_or_log
from vigie.plumbing.db.pool import TRANSIENT_DB_ERRORS
from vigie.plumbing.log import get_logger
from vigie.plumbing.storage.objects import TRANSIENT_STORAGE_ERRORS
from vigie.records.legal_time import DEFAULT_TIME_ZONE
from vigie.security.signing import SigningKey
from vigie.service import Runtime
from vigie.verbalisation import catalogue
from vigie.verbalisation.messages import (
    REQUESTS,
    CreateRequest,
    HandoverRequest,
    OffenceRecord,
    Refused,
    StillRequest,
    UpdateRequest,
    reply_ok,
    reply_refused,
)

from services.verbalisation import handover_file, records
from services.verbalisation.capture import NoPicture, StillPicture, still_at
from services.verbalisation.settings import VerbalisationSettings

log = get_logger(__name__)
SEAL_LOCK_SQL = "SELECT pg_advisory_xact_lock(hashtextextended('vigie.offence.seal.' || $1::bigint, 0))"
SEALERS = 4  # hand-overs sealed at once by one replica (each holds a connection for its lock)


class Verbalisation:
    def __init__(self, rt: Runtime, settings: VerbalisationSettings,
                 key: SigningKey | None) -> None:
        self.rt, self.settings, self.key = rt, settings, key
        self.rules = records.Rules(
            capture_window_s=settings.capture_window_s,
            future_tolerance_s=settings.future_tolerance_s,
            keep_after_handover=timedelta(days=settings.keep_after_handover_days),
            keep_at_most=timedelta(days=settings.keep_at_most_days))
        catalogue.load(settings.offences_file)  # a broken list stops the start, with its reason
        self._working: set[asyncio.Task[None]] = set()
        self._sealers = asyncio.Semaphore(SEALERS)

    @property
    def _bucket(self) -> str:
        return self.rt.buckets.evidence

    async def run(self) -> None:
        nc = self.rt.nc
        assert nc is not None
        sub = await nc.subscribe(self.rt.names.verbalisation_request("*"),
                                 queue="verbalisation", cb=self._dispatch)
        try:
            await run_periodically(self.rt.stop, self.settings.erase_interval_s,
                                   self.erase_due, what="offence_stills_erasure")
        finally:
            with contextlib.suppress(*TRANSIENT_NATS_ERRORS, nats.errors.BadSubscriptionError):
                await sub.unsubscribe()
            if self._working:  # answers under way finish (each is bounded by the gateway's wait)
                await asyncio.wait(self._working, timeout=25)

    async def erase_due(self) -> None:
        erased = await records.erase_due(self.rt.require_pool(), self.rt.require_store(),
                                         self._bucket)
        if erased:
            log.info("offence_stills_erased", offences=erased)

    async def _capture(self, commune: str, camera: str, at: Any, name: str,
                       place: str) -> StillPicture:
        # The band states the commune's legal time (R34): Paris's is not Cayenne's.
        time_zone = await self.rt.require_pool().fetchval(
            "SELECT time_zone FROM communes WHERE slug = $1", commune) or DEFAULT_TIME_ZONE
        try:
            return await still_at(self.rt.require_js(), self.rt.names, commune, camera, at,
                                  camera_name=name, place=place,
                                  wait_s=self.settings.picture_wait_s, time_zone=time_zone)
        except NoPicture as exc:
            raise Refused(409, f"no still: {exc}") from None

    async def _dispatch(self, msg: Msg) -> None:
        """Each request in its own task: a still decodes a GOP, and one agent's capture must not
        hold up another's (the subscription would otherwise serve them one at a time)."""
        task = asyncio.create_task(self._answer(msg))
        self._working.add(task)
        task.add_done_callback(self._working.discard)

    async def _answer(self, msg: Msg) -> None:
        op = msg.subject.rsplit(".", 1)[-1]
        try:
            answer = reply_ok(await self.handle(op, msg.data))
        except Refused as exc:
            answer = reply_refused(exc)
        except (*TRANSIENT_DB_ERRORS, *TRANSIENT_STORAGE_ERRORS, asyncpg.PostgresConnectionError,
                *TRANSIENT_NATS_ERRORS) as exc:
            log.warning("verbalisation_unavailable", op=op, error=type(exc).__name__)
            answer = reply_refused(Refused(503, f"storage or database unavailable "
                                                f"({type(exc).__name__}): try again"))
        if msg.reply:
            with contextlib.suppress(*TRANSIENT_NATS_ERRORS):
                await msg.respond(json.dumps(answer, default=str).encode())

    async def handle(self, op: str, data: bytes) -> dict[str, Any]:
        model = REQUESTS.get(op)
        if model is None:
            raise Refused(404, f"unknown operation {op!r}")
        try:
            request = model.model_validate_json(data)
        except ValidationError as exc:
            err = exc.errors()[0]
            raise Refused(422, f"{'.'.join(map(str, err['loc']))}: {err['msg']}") from None
        pool, store = self.rt.require_pool(), self.rt.require_store()
        if isinstance(request, CreateRequest):
            offence = await records.create(pool, store, self._bucket, self._capture, self.rules,
                                           request)
        elif isinstance(request, StillRequest):
            offence = await records.add_still(pool, store, self._bucket, self._capture,
                                              self.rules, request)
        elif isinstance(request, UpdateRequest):
            offence, moved = await records.update(pool, store, self._bucket, self.rules, request)
            if moved == "ready":
                await self._announce_recorded(offence)
        else:
            assert isinstance(request, HandoverRequest)
            return await self.hand_over(request)
        return {"offence": offence.model_dump(mode="json")}

    async def hand_over(self, request: HandoverRequest) -> dict[str, Any]:
        """Seal the file (once: a second fetch gets the same bytes), store it in the evidence
        bucket, mark the offence handed over; the gateway streams it from there."""
        # Whichever replica is asked, one file per offence: a transaction-scoped advisory lock,
        # released when the transaction ends (or its connection dies with this process). Each
        # sealer holds a connection for it: at most a few at once, the pool keeps the rest for
        # the work itself.
        async with self._sealers, self.rt.require_pool().acquire() as conn, conn.transaction():
            await conn.execute(SEAL_LOCK_SQL, request.offence_id)
            return await self._seal_once(request)

    async def _seal_once(self, request: HandoverRequest) -> dict[str, Any]:
        pool, store = self.rt.require_pool(), self.rt.require_store()
        offence = await records.load(pool, request.offence_id)
        if offence.state not in ("ready", "handed_over", "closed"):
            raise Refused(409, "only a ready offence is handed over (stills, offence, plate)")
        if offence.stills_erased_at is not None:
            raise Refused(410, "its stills were erased: the file no longer exists (R34)")
        await records.agent_of(pool, request.agent, offence.commune)
        row = await pool.fetchrow("SELECT package_key, package_sha256 FROM offences "
                                  "WHERE id = $1", offence.id)
        if row["package_key"] is None:
            if self.key is None:
                raise Refused(503, "the verbalisation service has no signing key "
                              "(VIGIE_EXPORT_KEY): no hand-over file")
            try:
                data, digest = await handover_file.build(offence, store, self._bucket, self.key,
                                                         request.agent)
            except ValueError as exc:
                raise Refused(409, str(exc)) from None
            key = f"offences/{offence.commune}/{offence.id}/remise-{offence.id}.zip"
            await store.put(self._bucket, key, data, content_type="application/zip",
                            metadata={"sha256": digest})
            offence = await records.handed_over(pool, offence.id, by=request.agent,
                                                package_key=key, package_sha256=digest,
                                                rules=self.rules)
            await publish_event_or_log(self.rt.require_js(), self.rt.names, OffenceHandedOver(
                commune=offence.commune, camera=offence.camera, offence=offence.id,
                offence_code=offence.offence_code or "", package_sha256=digest,
                by=request.agent))
            row = {"package_key": key, "package_sha256": digest}
        return {"offence": offence.model_dump(mode="json"), "package_key": row["package_key"],
                "package_sha256": row["package_sha256"]}

    async def _announce_recorded(self, offence: OffenceRecord) -> None:
        await publish_event_or_log(self.rt.require_js(), self.rt.names, OffenceRecorded(
            commune=offence.commune, camera=offence.camera, offence=offence.id,
            offence_code=offence.offence_code or "", natinf=offence.natinf,
            capture_times=[s.capture_time for s in offence.stills],
            agent_number=offence.agent_number))


async def work(rt: Runtime, settings: VerbalisationSettings) -> None:
    key = None
    if rt.common.export_key is not None:
        key = SigningKey.from_pem(rt.common.export_key.get_secret_value())
    else:
        log.warning("no_export_key", detail="VIGIE_EXPORT_KEY is not set: offences are noted but "
                    "no hand-over file can be sealed")
    service = Verbalisation(rt, settings, key)
    rt.state["verbalisation"] = service
    await asyncio.gather(service.run())
