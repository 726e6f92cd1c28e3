"""Events on ``<root>.events.<commune>.<kind>.<name>``: one named model per kind of event.

Events are the integration surface for police systems (docs/asyncapi.yaml is generated from these
models). Inbound parsing ignores unknown fields so that newer producers never break older consumers.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime
from typing import ClassVar, Literal

from nats.js import JetStreamContext
from nats.js.api import PubAck
from pydantic import BaseModel, ConfigDict, Field

from vigie.plumbing.bus.subjects import BusNames
from vigie.plumbing.log import redact_value

SYSTEM_COMMUNE = "_system"  # events that concern no single commune


def _now() -> datetime:
    return datetime.now(UTC)


class Event(BaseModel):
    """Common envelope of every event."""

    model_config = ConfigDict(extra="ignore")

    kind: ClassVar[str]
    name: ClassVar[str]
    summary: ClassVar[str]

    schema_version: int = Field(default=1, description="Version of this event's schema")
    event_id: str = Field(default_factory=lambda: uuid.uuid4().hex, description="Unique id")
    time: datetime = Field(default_factory=_now, description="When it happened (UTC)")
    commune: str = Field(description="Commune slug, or _system")

    @classmethod
    def event_type(cls) -> str:
        return f"{cls.kind}.{cls.name}"


class CameraEvent(Event):
    camera: str = Field(description="Camera slug within the commune")
    device_id: str | None = Field(default=None, description="Multi-sensor device, if any")


class CameraWentOnline(CameraEvent):
    kind = "camera"
    name = "online"
    summary = "Frames are flowing from the camera (again)."
    width: int | None = None
    height: int | None = None
    codec: str | None = None


class CameraWentOffline(CameraEvent):
    kind = "camera"
    name = "offline"
    summary = "No frame received from the camera for the offline timeout."
    reason: str = Field(description="Machine-readable cause: timeout, unreachable, unauthorized…")
    detail: str = Field(default="", description="Human-readable detail, credentials redacted")


class CameraStreamChanged(CameraEvent):
    kind = "camera"
    name = "stream_changed"
    summary = "The camera's resolution or codec changed mid-stream."
    codec: str
    width: int
    height: int
    previous_codec: str | None = None
    previous_width: int | None = None
    previous_height: int | None = None


# Masking's health detail before a camera's first keyframe: not a failure, no event.
MASKING_STARTING = "starting"


class MaskingFailed(CameraEvent):
    kind = "masking"
    name = "failed"
    summary = "Masking publishes nothing of this camera (fail closed), and says why."
    reason: Literal[
        "commissioning", "unknown_camera", "masks_unavailable", "decode", "mask", "encode",
        "source_changed", "unauthorised", "other"
    ]
    detail: str = ""


class MaskingRecovered(CameraEvent):
    kind = "masking"
    name = "recovered"
    summary = "Masked video flows again, from a keyframe, under the named mask version."
    mask_version: int


class MaskingBelowNorms(CameraEvent):
    kind = "masking"
    name = "below_norms"
    summary = "Stored resolution or frame rate below the arrêté of 3 August 2007 (R35)."
    width: int
    height: int
    fps: float
    min_width: int
    min_height: int
    min_fps: float


class SegmentRecorded(CameraEvent):
    kind = "segment"
    name = "recorded"
    summary = "A segment of masked video is in object storage and in the database."
    key: str
    start: datetime
    end: datetime
    frames: int
    size_bytes: int
    sha256: str
    mask_version: int


class RecorderStorageUnavailable(Event):
    kind = "recorder"
    name = "storage_unavailable"
    summary = "Object storage or the database cannot be written; video waits in VIDEO."
    camera: str | None = None
    target: Literal["object_storage", "database"]
    detail: str = ""


class RecorderFrameRejected(CameraEvent):
    kind = "recorder"
    name = "frame_rejected"
    summary = ("A frame the MP4 muxer cannot write (or one that cannot be decoded without it) was "
               "set aside; the camera's recording goes on.")
    capture_time_ns: int = Field(description="Capture time of the frame refused")
    frames: int = Field(default=1, description="Frames set aside: it and those depending on it")
    reason: str = ""


class RecorderBacklog(CameraEvent):
    kind = "recorder"
    name = "backlog"
    summary = "A camera's unrecorded backlog passed 50 % of VIDEO's limits (max age or max bytes)."
    pending_messages: int = Field(description="VIDEO messages of the camera not yet acknowledged")
    pending_bytes: int = Field(description="Their size, estimated from VIDEO's mean message size")
    oldest_age_s: float = Field(description="Age in VIDEO of the oldest unrecorded frame")
    age_fraction: float = Field(description="Share of VIDEO's max age that frame has spent")
    bytes_fraction: float = Field(description="Share of VIDEO's max bytes stored in front of it")
    limit_fraction: float = Field(description="The larger of the two: at 1.0 frames are lost")


class FramesLost(CameraEvent):
    kind = "frames"
    name = "lost"
    summary = ("Frames of a camera never reached a consumer (a hole in the producer's sequence): "
               "nothing of it is decoded, stored or shown until the next keyframe — a gap in the "
               "recording or the live picture rather than a smeared one (issue 34).")
    stage: Literal["raw", "video"] = Field(description="raw: masking saw the hole in ingest's "
                                           "frames; video: the recorder did, in masking's")
    consumer: Literal["masking", "recorder"]
    missing: int = Field(ge=1, description="Frames skipped in the producer's sequence")
    capture_time_ns: int = Field(description="Capture time of the first frame after the hole")


class RetentionPurged(CameraEvent):
    kind = "retention"
    name = "purged"
    summary = "Expired recordings were erased (journaled in the register)."
    cause: Literal["retention", "hold_released", "manual", "orphan"]
    period_start: datetime | None = None
    period_end: datetime | None = None
    segments: int
    objects: int


class HandoverSwitched(Event):
    kind = "handover"
    name = "switched"
    summary = "Live and playback rights of a commune passed between municipal and national police."
    to: Literal["municipal_police", "national_police"]
    by: Literal["schedule", "manual"]
    reason: str = ""
    until: datetime | None = None


class ExportCreated(Event):
    kind = "export"
    name = "created"
    summary = ("A requisition's evidence package is ready: held copies, signed manifest "
               "(docs/exports.md).")
    export: int = Field(description="The export's id in the API")
    package: str = Field(description="The package's name (extraction-…)")
    reference: str = Field(description="The requisition's reference (PV or procedure number)")
    cameras: list[str] = Field(description="Camera slugs within the commune")
    period_start: datetime
    period_end: datetime
    manifest_sha256: str
    gaps: int = Field(description="Parts of the period with no images, listed in the package")


class ExportDelivered(Event):
    kind = "export"
    name = "delivered"
    summary = "A requisition's package was handed over (recorded by a supervisor)."
    export: int
    package: str
    reference: str
    delivered_to: str
    medium: str


class OffenceRecorded(CameraEvent):
    kind = "offence"
    name = "recorded"
    summary = ("A vidéo-verbalisation offence is complete (stills, offence, plate) and ready for "
               "the electronic-ticket tool; the plate is not in the event (docs/verbalisation.md).")
    offence: int = Field(description="The offence's id in the API")
    offence_code: str = Field(description="Code in the offence list (offences.json)")
    natinf: str | None = Field(default=None, description="NATINF code, when the list gives it")
    capture_times: list[datetime] = Field(description="Capture times of its stills (UTC)")
    agent_number: str = Field(description="The noting agent's number")


class OffenceHandedOver(CameraEvent):
    kind = "offence"
    name = "handed_over"
    summary = "An offence's hand-over file was fetched for the electronic-ticket (PVe) tool."
    offence: int
    offence_code: str
    package_sha256: str = Field(description="SHA-256 of the hand-over file (ZIP)")
    by: str = Field(description="Who fetched it")


class AccessRequestOpened(Event):
    kind = "access_request"
    name = "opened"
    summary = ("A filmed person asked for their images (R20): the period is held at once (R21). "
               "No personal data in the event.")
    request: int = Field(description="The request's id in the API")
    cameras: list[str] = Field(description="Camera slugs within the commune")
    period_start: datetime
    period_end: datetime
    due_at: datetime = Field(description="When the answer is due (a month after receipt)")


class AccessRequestAnswered(Event):
    kind = "access_request"
    name = "answered"
    summary = "An access request was answered: copy, on-site viewing, refusal or restriction."
    request: int
    answer: Literal["copy", "viewing", "refusal", "restriction"]


class AccessRequestClosed(Event):
    kind = "access_request"
    name = "closed"
    summary = "An access request was closed: its hold is released."
    request: int


class AccessRequestDue(Event):
    kind = "access_request"
    name = "due"
    summary = "An access request's answer is due within 7 days, or overdue (told once each)."
    request: int
    due_at: datetime
    overdue: bool


class HoldReviewDue(Event):
    kind = "hold"
    name = "review_due"
    summary = ("A legal hold is to be reviewed within 7 days, or its review date has passed (R18; "
               "told once each): keep it only for an inquiry that still needs it.")
    hold: int
    reference: str
    review_on: date
    overdue: bool


class IncidentDeclared(Event):
    kind = "incident"
    name = "declared"
    summary = ("A personal-data breach was declared (R39): the CNIL is to be notified within 72 "
               "hours of its discovery unless the risk is unlikely. No personal data in the event.")
    incident: int
    risk: Literal["unlikely", "risk", "high_risk"]
    due_at: datetime = Field(description="72 hours after the discovery")


class IncidentDue(Event):
    kind = "incident"
    name = "due"
    summary = ("A breach's notification to the CNIL is due within 24 hours, or overdue (told "
               "once each).")
    incident: int
    due_at: datetime
    overdue: bool


class AuthorisationExpiring(Event):
    kind = "authorisation"
    name = "expiring"
    summary = ("A prefectoral authorisation ends in six months, three months, one month, or has "
               "ended (R3; told once each): its cameras stop recording and being shown the day "
               "after its last day unless they are attached to a renewed one.")
    authorisation: int
    reference: str
    valid_until: date = Field(description="The last day it covers")
    stage: Literal["6_months", "3_months", "1_month", "expired"]
    cameras: int = Field(description="Cameras attached to it (not disabled)")


class ClockDrift(Event):
    kind = "clock"
    name = "drift"
    summary = ("A service's clock differs from the database's by more than the bound (R36): the "
               "capture times and register instants it writes may be wrong. Commune _system.")
    service: str
    replica: str
    offset_s: float = Field(description="The service's clock minus the database's")
    bound_s: float


class ClockSynchronised(Event):
    kind = "clock"
    name = "synchronised"
    summary = "A service's clock is back within the bound of the database's (R36)."
    service: str
    replica: str
    offset_s: float
    bound_s: float


class RegisterCheckpoint(Event):
    kind = "register"
    name = "checkpoint"
    summary = ("A signed head of the register's chain (R12; commune _system). Keep every one: "
               "`vigie audit verify --witness` checks the database against your copy, so "
               "checkpoints cut from the database together with the rows they sign are detected.")
    seq: int = Field(description="Checkpoints are numbered from 1 without gaps")
    checkpoint: Literal["periodic", "purge"]
    last_id: int = Field(description="The register row it signs as the head of the chain")
    last_hash: str
    checkpoint_at: datetime
    fingerprint: str = Field(description="The Ed25519 key that signed it (GET /api/keys)")
    signature: str = Field(description="Base64 Ed25519 signature of "
                           "'vigie-register-checkpoint/1:seq:checkpoint:last_id:last_hash:at'")


EVENT_TYPES: tuple[type[Event], ...] = (
    CameraWentOnline,
    CameraWentOffline,
    CameraStreamChanged,
    MaskingFailed,
    MaskingRecovered,
    MaskingBelowNorms,
    SegmentRecorded,
    RecorderStorageUnavailable,
    RecorderFrameRejected,
    RecorderBacklog,
    FramesLost,
    RetentionPurged,
    HandoverSwitched,
    ExportCreated,
    ExportDelivered,
    OffenceRecorded,
    OffenceHandedOver,
    AccessRequestOpened,
    AccessRequestAnswered,
    AccessRequestClosed,
    AccessRequestDue,
    HoldReviewDue,
    IncidentDeclared,
    IncidentDue,
    AuthorisationExpiring,
    ClockDrift,
    ClockSynchronised,
    RegisterCheckpoint,
)
EVENTS_BY_TYPE: dict[str, type[Event]] = {cls.event_type(): cls for cls in EVENT_TYPES}


def parse_event(subject: str, data: bytes) -> Event:
    """Decode an event from its subject's kind and name; unknown kinds raise ``KeyError``."""
    parts = subject.split(".")
    if len(parts) != 5 or parts[1] != "events":
        raise ValueError(f"not an event subject: {subject!r}")
    cls = EVENTS_BY_TYPE[f"{parts[3]}.{parts[4]}"]
    return cls.model_validate_json(data)


def event_subject(names: BusNames, event: Event) -> str:
    return names.events(event.commune, event.kind, event.name)


def encode_event(event: Event) -> bytes:
    """JSON with credentials redacted: an event may quote an error from a camera or a library."""
    # Each text redacted on its own, then encoded: redacting the JSON text could cut across
    # fields (the userinfo of a URL runs to the last '@' of its line).
    return json.dumps(redact_value(event.model_dump(mode="json")), ensure_ascii=False).encode()


async def publish_event(js: JetStreamContext, names: BusNames, event: Event) -> PubAck:
    return await js.publish(
        event_subject(names, event), encode_event(event), headers={"Nats-Msg-Id": event.event_id}
    )


async def publish_event_or_log(js: JetStreamContext, names: BusNames, event: Event) -> bool:
    """Events are notifications: a bus that is away loses one, loudly, and never stops the work."""
    from vigie.plumbing.bus.consumer import TRANSIENT_NATS_ERRORS
    from vigie.plumbing.log import get_logger

    try:
        await publish_event(js, names, event)
        return True
    except TRANSIENT_NATS_ERRORS as exc:
        get_logger(__name__).warning("event_publish_failed", event_type=event.event_type(),
                                     commune=event.commune, error=type(exc).__name__)
        return False
