"""Frame messages: one encoded access unit per message on RAW and VIDEO (DESIGN.md "Bus").

The payload is the access unit as bytes; everything else travels in NATS headers so that a consumer
can route and filter without parsing the payload. A keyframe carries its parameter sets (SPS/PPS, and
VPS for H.265) so that any consumer can start decoding at any keyframe.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import Awaitable, Callable
from fractions import Fraction
from typing import Any, Literal

import nats.js.errors
from nats.js import JetStreamContext
from nats.js.api import PubAck
from pydantic import BaseModel, ConfigDict, Field

from vigie.plumbing.bus.consumer import TRANSIENT_NATS_ERRORS
from vigie.plumbing.bus.subjects import BusNames

SCHEMA_VERSION = 1

Codec = Literal["h264", "hevc"]

_H = {
    "schema_version": "Vigie-Schema-Version",
    "commune": "Vigie-Commune",
    "camera": "Vigie-Camera",
    "codec": "Vigie-Codec",
    "width": "Vigie-Width",
    "height": "Vigie-Height",
    "pts": "Vigie-Pts",
    "dts": "Vigie-Dts",
    "time_base": "Vigie-Time-Base",
    "keyframe": "Vigie-Keyframe",
    "capture_time_ns": "Vigie-Capture-Time-Ns",
    "session": "Vigie-Session",
    "seq": "Vigie-Seq",
    "mask_version": "Vigie-Mask-Version",
    "owner_epoch": "Vigie-Owner-Epoch",
    "parameter_sets": "Vigie-Parameter-Sets",
    "digest": "Vigie-Digest",
}
MSG_ID_HEADER = "Nats-Msg-Id"


class FrameMessageError(ValueError):
    """A frame message whose headers are missing or malformed (poison: terminate it)."""


class Frame(BaseModel):
    """One encoded access unit with what a consumer needs to decode, order and attribute it."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    schema_version: int = SCHEMA_VERSION
    commune: str
    camera: str
    codec: Codec
    width: int = Field(ge=1, le=16384)
    height: int = Field(ge=1, le=16384)
    pts: int
    dts: int | None = None
    time_base: Fraction
    keyframe: bool
    capture_time_ns: int = Field(ge=0, description="Wall-clock UTC at reception, ns, monotonic")
    session: str = Field(min_length=1, description="Producer session; seq restarts with it")
    seq: int = Field(ge=0, description="Gapless per camera session")
    mask_version: int | None = Field(default=None, ge=0, description="Set on VIDEO only")
    owner_epoch: int | None = Field(
        default=None, ge=1, description="Fencing token of the producer's ownership of the camera: "
        "a consumer drops a frame whose epoch is below one it has already seen")
    parameter_sets: bytes | None = Field(default=None, description="SPS/PPS(/VPS) on keyframes")
    digest: str | None = Field(
        default=None, max_length=64, description="Set on RAW by ingest (`payload_digest`): the "
        "same access unit recognised in another RTSP session of the camera, by its headers alone")
    data: bytes = Field(repr=False)

    @property
    def msg_id(self) -> str:
        """Deduplication id (also ``Nats-Msg-Id``): the same frame published twice is stored once."""
        return f"{self.commune}.{self.camera}.{self.session}.{self.seq}"

    def to_headers(self) -> dict[str, str]:
        headers = {MSG_ID_HEADER: self.msg_id}
        for field, header in _H.items():
            value = getattr(self, field)
            if value is None:
                continue
            if field == "parameter_sets":
                headers[header] = base64.b64encode(value).decode()
            elif field == "keyframe":
                headers[header] = "1" if value else "0"
            else:
                headers[header] = str(value)
        return headers

    @classmethod
    def from_message(cls, headers: dict[str, str] | None, data: bytes) -> Frame:
        """Rebuild a frame from a NATS message; a malformed one raises ``FrameMessageError``."""
        if not headers:
            raise FrameMessageError("frame message has no headers")
        fields: dict[str, object] = {"data": data}
        for field, header in _H.items():
            if header in headers:
                fields[field] = headers[header]
        try:
            if "parameter_sets" in fields:
                fields["parameter_sets"] = base64.b64decode(str(fields["parameter_sets"]), validate=True)
            if "keyframe" in fields:
                fields["keyframe"] = fields["keyframe"] == "1"
            if "time_base" in fields:
                fields["time_base"] = Fraction(str(fields["time_base"]))
            return cls.model_validate(fields)
        except (ValueError, ZeroDivisionError) as exc:
            raise FrameMessageError(f"malformed frame message: {exc}") from exc


def payload_digest(data: bytes) -> str:
    """An access unit's fingerprint: its length and its first and last 4 KiB (slice headers
    carry the frame's number and order count), so that it costs the same for any picture size."""
    digest = hashlib.blake2b(len(data).to_bytes(8, "big"), digest_size=12)
    digest.update(data[:4096])
    digest.update(data[-4096:])
    return digest.hexdigest()


async def publish_frame_retrying(
    js: JetStreamContext, names: BusNames, frame: Frame, *, stage: Literal["raw", "video"],
    attempts: int, log: Any,
    on_missing_stream: Callable[[], Awaitable[object]] | None = None,
) -> bool:
    """Publish, retried `attempts` times with a growing pause (0.2 s, 0.4 s…) while NATS is
    away or a stream elects its leader; ``Nats-Msg-Id`` makes a retried publish stored once.
    False when every try failed: the caller says what the frame's loss means (ingest sheds a RAW
    frame, masking restarts its encoder at a keyframe). ``on_missing_stream`` is called when no
    stream answers at all (a nats-server restart lost the memory stream RAW)."""
    for attempt in range(attempts):
        try:
            await publish_frame(js, names, frame, stage=stage)
            return True
        except nats.js.errors.NoStreamResponseError as exc:
            log.warning(f"{stage}_publish_retry", attempt=attempt, error=type(exc).__name__)
            if on_missing_stream is not None:
                await on_missing_stream()
        except TRANSIENT_NATS_ERRORS as exc:
            log.warning(f"{stage}_publish_retry", attempt=attempt, error=type(exc).__name__)
        await asyncio.sleep(0.2 * (attempt + 1))
    return False


async def publish_frame(
    js: JetStreamContext, names: BusNames, frame: Frame, *, stage: Literal["raw", "video"]
) -> PubAck:
    """Publish with acknowledgement; ``Nats-Msg-Id`` makes a retried publish store it once."""
    subject = (names.raw if stage == "raw" else names.video)(frame.commune, frame.camera)
    return await js.publish(subject, frame.data, headers=frame.to_headers())
