"""The three JetStream streams, created or updated idempotently (DESIGN.md "Bus")."""

from __future__ import annotations

import asyncio
import time

from nats.js import JetStreamContext
from nats.js.api import (
    DiscardPolicy,
    KeyValueConfig,
    RePublish,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import BadRequestError, NotFoundError
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from vigie.plumbing.bus.consumer import TRANSIENT_NATS_ERRORS
from vigie.plumbing.bus.subjects import BusNames
from vigie.plumbing.log import get_logger

log = get_logger(__name__)


class StreamLimits(BaseSettings):
    """Sizes of the streams; VIDEO's bound how long the recorder may be down without loss."""

    model_config = SettingsConfigDict(env_prefix="VIGIE_BUS_", extra="ignore", frozen=True)

    raw_max_age_s: float = Field(
        default=10.0, gt=0, le=120, description="Unmasked frames live this long, in memory only"
    )
    raw_max_bytes: int = Field(default=512 * 2**20, gt=0, description="RAW memory ceiling")
    video_max_age_s: float = Field(
        default=6 * 3600, gt=0, le=7 * 86400, description="Masked frames wait this long for the recorder"
    )
    video_max_bytes: int = Field(default=20 * 2**30, gt=0, description="VIDEO disk ceiling")
    events_max_age_s: float = Field(default=30 * 86400, gt=0, description="Events kept for replay")
    duplicate_window_s: float = Field(default=120.0, gt=0, le=3600, description="Nats-Msg-Id window")
    replicas: int = Field(
        default=1, ge=1, le=5, description="Copies of RAW, VIDEO, EVENTS and the claims bucket "
        "in a NATS cluster (3 there: a node may die without loss); RAW's copies, and their "
        "replication log, are in memory on each node")
    claim_ttl_s: float = Field(
        default=6.0, ge=2, le=120,
        description="A camera claim not renewed for this long expires: how soon a survivor takes "
        "over the camera of a dead or frozen process")


def stream_configs(names: BusNames, limits: StreamLimits) -> list[StreamConfig]:
    return [
        # Invariant 1: unmasked frames never touch a disk, and vanish quickly. Replicated in a
        # cluster (issue 35: one copy on the node that died cost every camera 4 s of RAW, a
        # 5.9-s hole in the recording): nats-server keeps a memory stream's replication log in
        # memory too (a memstore WAL), so the copies touch no disk either.
        StreamConfig(
            name=names.raw_stream,
            subjects=[names.all_raw],
            storage=StorageType.MEMORY,
            num_replicas=limits.replicas,
            retention=RetentionPolicy.LIMITS,
            discard=DiscardPolicy.OLD,
            max_age=limits.raw_max_age_s,
            max_bytes=limits.raw_max_bytes,
            duplicate_window=min(limits.duplicate_window_s, limits.raw_max_age_s),
            allow_direct=False,
            # Headers only, never the picture: where each camera's stream stands, followed by
            # the ingest replica standing by for it (services/ingest/standby.py).
            republish=RePublish(src=names.all_raw, dest=names.all_raw_headers,
                                headers_only=True),
        ),
        StreamConfig(
            name=names.video_stream,
            subjects=[names.all_video],
            storage=StorageType.FILE,
            retention=RetentionPolicy.LIMITS,
            discard=DiscardPolicy.OLD,
            max_age=limits.video_max_age_s,
            max_bytes=limits.video_max_bytes,
            duplicate_window=min(limits.duplicate_window_s, limits.video_max_age_s),
            num_replicas=limits.replicas,
        ),
        StreamConfig(
            name=names.events_stream,
            subjects=[names.all_events],
            storage=StorageType.FILE,
            retention=RetentionPolicy.LIMITS,
            max_age=limits.events_max_age_s,
            duplicate_window=limits.duplicate_window_s,
            num_replicas=limits.replicas,
        ),
    ]


async def ensure_claims(js: JetStreamContext, names: BusNames, limits: StreamLimits) -> None:
    """The claims bucket: one key per camera and service, expiring unless renewed."""
    config = KeyValueConfig(bucket=names.claims_bucket, history=1, ttl=limits.claim_ttl_s,
                            storage=StorageType.FILE, direct=True, replicas=limits.replicas)
    try:
        await js.create_key_value(config)
        log.info("claims_bucket_ready", bucket=names.claims_bucket)
    except BadRequestError:  # exists with another configuration: bring it to this one
        stream = await js.stream_info(f"KV_{names.claims_bucket}")
        stream.config.max_age = limits.claim_ttl_s
        stream.config.num_replicas = limits.replicas
        stream.config.duplicate_window = min(stream.config.duplicate_window or limits.claim_ttl_s,
                                             limits.claim_ttl_s)
        await js.update_stream(stream.config)
        log.info("claims_bucket_updated", bucket=names.claims_bucket)


async def ensure_streams(js: JetStreamContext, names: BusNames, limits: StreamLimits) -> None:
    """Create the streams and the claims bucket, or bring existing ones to the configured
    limits."""
    for config in stream_configs(names, limits):
        assert config.name is not None
        try:
            await js.stream_info(config.name)
        except NotFoundError:
            await js.add_stream(config)
            log.info("stream_created", stream=config.name)
        else:
            await js.update_stream(config)
            log.info("stream_updated", stream=config.name)
    await ensure_claims(js, names, limits)


class RawStreamKeeper:
    """Brings RAW back when it is gone. RAW is a memory stream (invariant 1), so a nats-server
    restart loses it, configuration included; without it every RAW publish failed and ingest
    crash-looped until someone ran `vigie init` (found by `kill -9` of nats-server under
    `vigie run`). Ingest may create that one stream, and only with RAW's memory configuration;
    masking refuses to read a RAW that is not in memory (fail closed)."""

    def __init__(self, js: JetStreamContext, names: BusNames, limits: StreamLimits | None = None,
                 *, min_interval_s: float = 1.0) -> None:
        self._js, self._names = js, names
        self._config = raw_stream_config(names, limits or StreamLimits())
        self._min_interval_s = min_interval_s
        self._lock = asyncio.Lock()
        self._last = 0.0

    async def ensure(self) -> bool:
        """Create RAW if it is missing (at most once a second, whoever asks); True if created."""
        async with self._lock:
            now = time.monotonic()
            if now - self._last < self._min_interval_s:
                return False
            self._last = now
            assert self._config.name is not None
            try:
                await self._js.stream_info(self._config.name)
                return False  # there (with the limits `vigie init` set, perhaps)
            except NotFoundError:
                pass
            except TRANSIENT_NATS_ERRORS as exc:
                # The cluster is electing RAW's leader (a node died): asked again at the next
                # failed publish. Raised from a background task, it went unseen ("Task
                # exception was never retrieved", make compose-check).
                log.warning("raw_stream_unanswered", error=type(exc).__name__)
                return False
            try:
                await self._js.add_stream(self._config)
            except BadRequestError:
                return False  # made meanwhile by someone else
            except TRANSIENT_NATS_ERRORS as exc:
                log.warning("raw_stream_unanswered", error=type(exc).__name__)
                return False
            log.warning("raw_stream_recreated", stream=self._config.name,
                        detail="RAW was gone (a nats-server restart loses memory streams)")
            return True


def raw_stream_config(names: BusNames, limits: StreamLimits) -> StreamConfig:
    return stream_configs(names, limits)[0]
