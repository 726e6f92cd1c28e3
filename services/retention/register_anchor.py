"""The register's anchor (R12; issue 25): the retention service — not the internet-facing gateway —
holds the register key and signs the head of the chain; each checkpoint leaves the database at once,
on EVENTS (police systems and any witness keep it) and as an object in the evidence bucket."""

from __future__ import annotations

import json

from prometheus_client import Gauge
from vigie.plumbing.bus.events import SYSTEM_COMMUNE, RegisterCheckpoint, publish_event_or_log
from vigie.plumbing.log import get_logger
from vigie.plumbing.storage.objects import TRANSIENT_STORAGE_ERRORS
from vigie.records.announced_keys import announce
from vigie.records.audit_register import Checkpoint, checkpoint, unsigned_age_s
from vigie.security.signing import SigningKey
from vigie.service import Runtime

from services.retention.settings import RetentionSettings

log = get_logger(__name__)

UNSIGNED_AGE = Gauge("vigie_register_unsigned_age_seconds",
                     "Age of the oldest register entry no signed checkpoint covers (0: all signed)")
PREFIX = "register/checkpoints/"


def object_key(seq: int) -> str:
    return f"{PREFIX}{seq:012d}.json"


async def publish(rt: Runtime, made: Checkpoint) -> None:
    """Out of the database: an event, and an object. Either may fail (logged): the checkpoint is
    in the database already, and the next one carries the chain further."""
    await publish_event_or_log(rt.require_js(), rt.names, RegisterCheckpoint(
        commune=SYSTEM_COMMUNE, seq=made.seq, checkpoint=made.kind,  # type: ignore[arg-type]
        last_id=made.last_id, last_hash=made.last_hash, checkpoint_at=made.at,
        fingerprint=made.fingerprint, signature=made.signature))
    try:
        await rt.require_store().put(rt.buckets.evidence, object_key(made.seq),
                                     json.dumps(made.as_dict()).encode(),
                                     content_type="application/json")
    except TRANSIENT_STORAGE_ERRORS as exc:
        log.warning("checkpoint_object_not_stored", seq=made.seq, error=type(exc).__name__)


class Anchor:
    def __init__(self, rt: Runtime, key: SigningKey, settings: RetentionSettings) -> None:
        self._rt, self._key, self._settings = rt, key, settings

    async def start(self) -> None:
        await announce(self._rt.require_pool(), self._key, purpose="register",
                       service="retention")

    async def step(self) -> None:
        pool = self._rt.require_pool()
        made = await checkpoint(pool, self._key,
                                heartbeat_s=self._settings.checkpoint_heartbeat_s)
        if made is not None:
            await publish(self._rt, made)
        UNSIGNED_AGE.set(await unsigned_age_s(pool))
