"""The API's typed requests and responses. Text fields refuse control characters (NUL, which
PostgreSQL cannot store, and the others, which forge lines in logs, CSV and the register) and are
bounded, so that bad input is a 422 with a reason, never a server error."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints
from vigie.media.masks import MAX_POINTS, MAX_POLYGONS, Polygon
from vigie.records.announced_keys import Purpose
from vigie.records.legal_time import DEFAULT_TIME_ZONE

from services.viewer_gateway.policy import Action

# Free text may hold line breaks and tabs; a line holds no control character at all.
TEXT_CHARS = r"[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]"
LINE_CHARS = r"[^\x00-\x1f\x7f]"
Text = Annotated[str, StringConstraints(max_length=2000, pattern=rf"^{TEXT_CHARS}*$")]
Line = Annotated[str, StringConstraints(max_length=200, pattern=rf"^{LINE_CHARS}*$")]
Required = Annotated[str, StringConstraints(min_length=1, max_length=2000, strip_whitespace=True,
                                            pattern=rf"^{TEXT_CHARS}*[^\s\x00-\x1f\x7f]{TEXT_CHARS}*$")]
Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]
Holder = Literal["municipal_police", "national_police"]
Role = Literal["operator", "supervisor", "national_police", "mask_admin", "admin", "auditor"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoginRequest(Strict):
    username: Line
    password: Annotated[str, StringConstraints(max_length=1000)]
    totp: Annotated[str, StringConstraints(max_length=10)] | None = None
    post: Line = Field(default="", description="The post the session is opened from (R12)")


class Designation(BaseModel):
    designated_by: str | None
    designated_on: date | None
    expires: date | None
    agent_number: str | None


class HandoverView(BaseModel):
    commune: str
    holder: Holder
    by: str = Field(description="schedule, exception or manual; authorisation when the schedule "
                    "would hand over but the hand-over profile does not allow it (R27)")
    until: datetime | None
    reason: str


class Me(BaseModel):
    username: str
    full_name: str
    roles: list[str]
    permissions: list[Action]
    communes: list[str]
    totp_enabled: bool
    designation: Designation
    post: str
    verbalisation_power: Literal["police_municipale", "asvp"] | None = Field(
        default=None, description="Listed for vidéo-verbalisation with these powers (R32)")
    password_change_required: bool = Field(
        default=False, description="The password was chosen by whoever created the account: "
        "nothing but POST /api/session/password opens until the account sets its own")


class PasswordChange(Strict):
    current_password: Annotated[str, StringConstraints(min_length=1, max_length=1000)]
    new_password: Annotated[str, StringConstraints(min_length=12, max_length=1000)]


class LoginRefusal(BaseModel):
    detail: str
    totp_required: bool = False


class CommuneView(BaseModel):
    slug: str
    name: str
    retention_days: int
    time_zone: str
    police_hours: dict[str, Any]
    handover: HandoverView
    handover_authorisation: str | None = Field(
        default=None, description="R28: the authorisation the hand-over profile names")
    coordination_convention: str | None = Field(
        default=None, description="R28: the coordination convention with the national police")
    controller: str | None = Field(default=None, description="R25: the controller the public "
                                   "register names")
    rights_contact: str | None = Field(default=None, description="R25: where filmed people "
                                       "exercise their rights")


class CommuneIdentityChange(Strict):
    """R25: what the public register says of the commune changes (a new mayor, a new address)."""
    name: Line | None = Field(default=None, min_length=1)
    controller: Line | None = Field(default=None, min_length=1)
    rights_contact: Text | None = Field(default=None, min_length=1)
    reason: Text = ""


class CommuneCreate(Strict):
    """A new commune of the deployment (issue 24): a deployment administrator's act."""
    slug: Slug
    name: Line = Field(min_length=1)
    retention_days: int = Field(ge=1, le=30, description="1 to 30 days (R4: one month at most)")
    controller: Line = Field(min_length=1, description="The controller the public register "
                             "names (R25): le maire de …")
    rights_contact: Text = Field(min_length=1, description="Where filmed people exercise "
                                 "their rights (R25)")
    time_zone: Line = DEFAULT_TIME_ZONE


class RetentionChange(Strict):
    days: int = Field(ge=1, le=30, description="1 to 30 days (R4: one month at most)")
    reason: Text = ""


class HoursChange(Strict):
    police_hours: dict[str, list[list[str]]] = Field(
        description='{"mon": [["08:00", "20:00"]], …} in the commune\'s time zone')
    reason: Text = ""


class HandoverSwitchRequest(Strict):
    holder: Holder
    reason: Required
    until: AwareDatetime | None = Field(
        default=None, description="Explicit end; default: the next scheduled switch")


class HandoverEnd(Strict):
    reason: Required


class HandoverExceptionRequest(Strict):
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    holder: Holder
    reason: Required


class EncoderOverrides(Strict):
    """Per-camera encoder settings (vigie.media.encoder.EncoderOptions' fields and bounds)."""
    preset: Literal["ultrafast", "superfast", "veryfast", "faster", "fast", "medium"] | None = None
    tune: Literal["zerolatency"] | None = None
    crf: int | None = Field(default=None, ge=0, le=51)
    max_bitrate_kbps: int | None = Field(default=None, ge=100, le=50_000)
    gop: int | None = Field(default=None, ge=1, le=1000)
    threads: int | None = Field(default=None, ge=0, le=16)


class CameraView(BaseModel):
    commune: str
    slug: str
    name: str
    location: str
    state: Literal["commissioning", "active", "disabled"]
    retention_days: int | None
    purposes: list[str] = Field(default_factory=list,
                                description="The purposes its prefectoral authorisation names")
    authorisation_ref: str | None
    authorisation_expires: date | None = Field(description="The last day its authorisation "
                                               "covers")
    authorisation_expired: bool
    authorisation: Literal["valid", "missing", "not_yet", "expired"] = Field(
        description="R3: without a valid authorisation nothing of the camera is recorded or shown")
    device_id: str | None
    sensor_index: int | None = None
    latitude: float | None = None
    longitude: float | None = None
    narrow_field: bool = False
    encoder: dict[str, Any] = Field(default_factory=dict)
    online: bool | None
    masking_ok: bool | None
    masking: Literal["ok", "starting", "failed"] | None = Field(
        description="Masking's state: starting until the first keyframe, failed when blocked")
    mask_version: int | None = Field(description="The mask version masking applies now")
    status: Literal["disabled", "commissioning", "unauthorised", "masking_failed", "offline",
                    "starting", "online"] = Field(description="What every screen says about the camera, most "
                                      "serious cause first")
    has_source: bool = Field(description="An RTSP source is set (the URL itself is write-only)")


class CameraSettings(Strict):
    """What the services know of a camera besides its name (issue 24), with the database's
    bounds: the purposes of its authorisation (CSI L251-2, vigie.records.purposes), its place, one
    sensor of a multi-sensor device, a narrow field (R35's higher floors), encoder overrides."""
    purposes: list[Line] | None = Field(default=None, max_length=11)
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)
    device_id: Line | None = Field(default=None, min_length=1)
    sensor_index: int | None = Field(default=None, ge=0, le=63)
    narrow_field: bool | None = None
    encoder: EncoderOverrides | None = None


class CameraCreate(CameraSettings):
    commune: Slug
    slug: Slug
    name: Required
    location: Line = ""
    rtsp_url: Annotated[str, StringConstraints(max_length=2000, pattern=r"^rtsps?://[^\x00\s]+$")]
    retention_days: int | None = Field(default=None, ge=1, le=30)
    authorisation_ref: Line | None = Field(
        default=None, description="The reference of one of the commune's recorded prefectoral "
        "authorisations, to attach the camera to (R3); null detaches it (it then stops)")


class CameraChange(CameraSettings):
    name: Required | None = None
    location: Line | None = None
    state: Literal["commissioning", "active", "disabled"] | None = None
    rtsp_url: Annotated[str, StringConstraints(max_length=2000,
                                               pattern=r"^rtsps?://[^\x00\s]+$")] | None = None
    retention_days: int | None = Field(default=None, ge=1, le=30)
    authorisation_ref: Line | None = Field(
        default=None, description="The reference of one of the commune's recorded prefectoral "
        "authorisations, to attach the camera to (R3); null detaches it (it then stops)")


class DecisionView(BaseModel):
    allowed: bool
    reason: str


class CameraRights(BaseModel):
    commune: str
    camera: str
    holder: Holder
    camera_state: str
    rights: dict[Action, DecisionView]


class TimelineSegment(BaseModel):
    start: datetime
    end: datetime
    frames: int
    size_bytes: int
    mask_version: int


class Gap(BaseModel):
    start: datetime
    end: datetime


class Timeline(BaseModel):
    commune: str
    camera: str
    start: datetime
    end: datetime
    segments: list[TimelineSegment]
    gaps: list[Gap]
    recording: Gap | None = Field(None, description="After the last stored segment, what the "
                                  "recorder is recording now (the camera sends, the last segment "
                                  "ended less than 150 s ago): not a gap, not playable yet")


class VerbalisationListing(Strict):
    """R32: the account listed for vidéo-verbalisation, with its powers and designation."""
    power: Literal["police_municipale", "asvp"] = Field(
        description="police_municipale: every offence of the list; asvp: parking only, not "
        "dangerous parking (R33)")
    designation: Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True,
                                                  pattern=rf"^{LINE_CHARS}*$")] = Field(
        description="The act listing the agent (arrêté du maire n°…)")


class UserView(BaseModel):
    username: str
    full_name: str
    roles: list[str]
    communes: list[str]
    disabled: bool
    totp_enabled: bool
    designation: Designation
    designation_expired: bool
    verbalisation: VerbalisationListing | None = None
    trained_on: date | None = Field(default=None, description="Data-protection training (R11): "
                                    "without it, no live, playback, export or verbalisation")


class UserCreate(Strict):
    username: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]{1,62}$")]
    full_name: Required
    password: Annotated[str, StringConstraints(min_length=12, max_length=1000)]
    roles: list[Role] = Field(min_length=1, max_length=6)
    communes: list[Slug] = Field(min_length=1, max_length=100,
                                 description="One or more of your communes (R9)")
    designated_by: Required
    designation_expires: date | None = None
    agent_number: Line | None = None
    with_totp: bool = False
    trained_on: date | None = Field(default=None, description="Data-protection training (R11)")
    designation_act: Line | None = Field(
        default=None, description="The act designating the agent (« arrêté du maire n° … »): "
        "required for an account with image rights (operator, supervisor, national police, mask "
        "administrator), and journaled (R8). Such an account sets its own password at its first "
        "sign-in: the one given here opens nothing else")


class UserChange(Strict):
    full_name: Required | None = None
    roles: list[Role] | None = Field(default=None, min_length=1, max_length=6)
    communes: list[Slug] | None = Field(default=None, min_length=1, max_length=100)
    designated_by: Required | None = None
    designation_expires: date | None = None
    agent_number: Line | None = None
    disabled: bool | None = None
    trained_on: date | None = Field(default=None, description="Data-protection training (R11); "
                                    "null removes it")
    verbalisation: VerbalisationListing | None = Field(
        default=None, description="List the account for vidéo-verbalisation; null removes it")
    designation_act: Line | None = Field(
        default=None, description="The act designating the agent for wider image rights: "
        "required when roles with image rights or communes are added to an account that has "
        "or gets them (R8), and journaled")


class TotpEnrolment(BaseModel):
    username: str
    secret: str = Field(description="Shown once: enter it in the authenticator app")
    uri: str
    qr_code: str = Field(description="The uri as a QR code to scan, a PNG data: URI (shown once)")


class UserCreatedView(BaseModel):
    """The new account, and its second factor when one was enrolled (shown this once: the agent
    scans it; issue 38 — it was never shown, and a national-police account was locked out)."""
    user: UserView
    totp: TotpEnrolment | None = None


class HoldCreate(Strict):
    kind: Literal["judicial_requisition", "right_of_access"]
    reference: Required
    commune: Slug
    cameras: list[Slug] = Field(min_length=1, max_length=200)
    period_start: AwareDatetime
    period_end: AwareDatetime
    reason: Required
    review_on: date


class HoldRelease(Strict):
    reason: Required


class MissingView(BaseModel):
    start: datetime
    end: datetime
    why: Literal["erased", "not_recorded"]


class HoldCoverageView(BaseModel):
    camera: str
    segments_copied: int
    size_bytes: int
    missing: list[MissingView]


class HoldView(BaseModel):
    id: int
    kind: str
    reference: str
    commune: str
    cameras: list[str]
    period_start: datetime = Field(description="No earlier than the commune's retention back "
                                   "from when the hold was placed: nothing older can exist")
    period_end: datetime
    requested_by: str
    reason: str
    review_on: date
    review_due: Literal["due_soon", "overdue"] | None = Field(
        default=None, description="R18: a kept hold whose review is within 7 days, or past")
    state: Literal["pending", "active", "released"] = Field(
        description="pending: over the camera-hours limit, waiting for a second person's "
        "approval (it keeps and copies nothing meanwhile)")
    camera_hours: float
    approved_by: str | None
    approved_at: datetime | None
    created_at: datetime
    released_at: datetime | None
    released_by: str | None
    copies_kept: int
    copies_erased: int
    copy_state: Literal["queued", "building", "done", "failed"] | None = Field(
        description="The copies made by the retention service in the background")
    copy_percent: int | None
    copy_error: str | None
    coverage: list[HoldCoverageView] | None = Field(
        description="Once copied: what was copied, and what was missing, per camera")


class HoldCreated(BaseModel):
    hold: HoldView
    pending: bool = Field(description="Waiting for a second person's approval")


class RegisterRow(BaseModel):
    id: int
    at: datetime
    actor: str
    action: str
    commune: str | None
    cameras: list[str]
    period_start: datetime | None
    period_end: datetime | None
    reason: str | None
    recipients: str | None
    outcome: str
    details: dict[str, Any]


class RegisterPage(BaseModel):
    rows: list[RegisterRow]
    more: bool


class VerificationView(BaseModel):
    ok: bool
    rows: int
    first_broken_id: int | None
    problem: str | None
    checkpoints: int
    latest_checkpoint_age_s: float | None = Field(description="Seconds since the latest signed "
                                                  "checkpoint")
    unsigned_rows: int = Field(description="Rows written since the latest checkpoint")
    legacy_unverified: int = Field(description="HMAC checkpoints of before issue 25 not checked")


class MaskVersionView(BaseModel):
    version: int
    document: dict[str, Any]
    author: str
    created_at: datetime
    approved_by: str | None
    approved_at: datetime | None
    applied: bool = Field(description="The version masking applies now (the latest approved)")


class MaskSave(Strict):
    masks: list[Polygon] = Field(
        max_length=MAX_POLYGONS, description="Polygons as in DESIGN.md \"Masks\": label, mode, "
        f"points ({MAX_POLYGONS} polygons of {MAX_POINTS} points at most)")
    note: Text = ""


class MaskApproval(Strict):
    no_private_space: bool = Field(
        default=False, description="Required to approve a version without any polygon: "
        "« aucun espace privé dans le champ »")


class SnapshotRequest(Strict):
    reason: Required
    resurvey: bool = Field(
        default=False, description="Of a camera in service (a re-survey of its field): allowed "
        "with this flag, a few times an hour, journaled as such")


class ExportCreate(Strict):
    """A requisition's request (R17): built in the background, followed by `state` and `percent`."""
    commune: Slug
    cameras: list[Slug] = Field(min_length=1, max_length=200)
    period_start: AwareDatetime
    period_end: AwareDatetime
    reference: Line
    officer: Line
    recipient: Line
    medium: Line
    reason: Required


class ExportDelivery(Strict):
    delivered_to: Line
    medium: Line


class ExportView(BaseModel):
    id: int
    commune: str
    cameras: list[str]
    period_start: datetime
    period_end: datetime
    reference: str
    officer: str
    recipient: str
    medium: str
    reason: str
    created_by: str
    created_at: datetime
    state: Literal["pending", "queued", "building", "ready", "failed"] = Field(
        description="pending: over the camera-hours limit, waiting for another supervisor's "
        "approval; failed: `error` says why")
    approved_by: str | None
    approved_at: datetime | None
    percent: int
    finished_at: datetime | None
    error: str | None
    package: str | None
    hold_id: int | None
    size_bytes: int | None
    manifest_sha256: str | None
    gaps: int | None
    delivered_to: str | None
    delivered_medium: str | None
    delivered_at: datetime | None
    delivered_by: str | None


class SigningKeyView(BaseModel):
    fingerprint: str = Field(description="SHA256:<base64> of the public key's DER form")
    purpose: Purpose = Field(
        description="export: signs packages' manifests; recording: the recorder's chain; "
        "register: the register's checkpoints (pin it: vigie audit verify --public-key)")
    public_pem: str
    first_seen: datetime = Field(description="When the service holding it first announced it")
    retired_at: datetime | None = Field(description="When another key of the purpose took over")


class OffenceCreate(Strict):
    """Stills to take now from the live image (R31): their capture times, one to three."""
    capture_times: list[AwareDatetime] = Field(min_length=1, max_length=3)


class OffenceStillAdd(Strict):
    capture_time: AwareDatetime


class OffenceUpdate(Strict):
    offence_code: Annotated[str, StringConstraints(pattern=r"^[A-Z0-9-]{3,40}$")] | None = None
    plate: Annotated[str, StringConstraints(min_length=2, max_length=20,
                                            pattern=r"^[A-Za-z0-9 .\-]*$")] | None = None
    plate_country: Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{2}$")] | None = None
    state: Literal["ready", "closed", "cancelled"] | None = None
    cancel_reason: Line | None = None


class OffenceCatalogueView(BaseModel):
    year: int
    valid_from: str
    natinf_note: str
    power: Literal["police_municipale", "asvp"]
    power_name: str
    offences: list[dict[str, Any]]


class AccessRequestCreate(Strict):
    """R20: a filmed person's request, as received (never a copy of their identity document)."""
    commune: Slug
    requester: Line = Field(min_length=1, description="The person, as they sign")
    contact: Line = Field(min_length=1, description="How to answer them (address, e-mail)")
    identity_document: Literal["carte_identite", "passeport", "titre_sejour", "permis_conduire",
                               "autre"] = Field(description="The kind of document shown")
    identity_checked_by: Line = Field(min_length=1, description="Who checked it")
    cameras: list[Slug] = Field(min_length=1, max_length=50)
    period_start: AwareDatetime
    period_end: AwareDatetime
    description: Text = Field(default="", description="What they say of themselves and the place")
    received_at: AwareDatetime | None = Field(default=None, description="The letter's date, "
                                              "when entered later (now by default)")


class AccessRequestExtension(Strict):
    months: Literal[1, 2]
    reason: Required


class AccessRequestAnswer(Strict):
    kind: Literal["copy", "viewing", "refusal", "restriction"]
    grounds: Text = ""
    viewing_at: AwareDatetime | None = None
    viewing_report: Text = ""


class AccessRequestView(BaseModel):
    id: int
    commune: str
    requester: str
    contact: str
    identity_document: str
    identity_checked_by: str
    cameras: list[str]
    period_start: datetime
    period_end: datetime
    description: str
    received_at: datetime
    due_at: datetime
    extension_reason: str | None
    state: Literal["open", "answered", "closed"]
    urgency: Literal["on_time", "due_soon", "overdue"]
    hold_id: int | None
    hold_state: Literal["pending", "active", "released"] | None = Field(
        description="pending: the period passes the camera-hours limit, a second person "
        "approves the hold (Réquisitions) before anything is kept")
    answer: str | None
    answer_grounds: str | None
    answered_at: datetime | None
    viewing_at: datetime | None
    viewing_done_at: datetime | None
    viewing_report: str | None
    created_by: str
    closed_at: datetime | None


class KeepBox(Strict):
    """Where the requester is at one time of the copy: seconds from its start, a box in the
    recording's pixels (interpolated to the next one; nothing kept before the first or after
    the last)."""
    t: float = Field(ge=0, le=1800)
    box: list[Annotated[float, Field(ge=0, le=20000)]] = Field(min_length=4, max_length=4)


class AccessCopyCreate(Strict):
    """R22: an inverse-redacted copy of one camera over a window of the held period."""
    camera: Slug
    period_start: AwareDatetime
    period_end: AwareDatetime
    keep: list[KeepBox] = Field(min_length=1, max_length=500)
    assist: bool = Field(default=True, description="Detectors propose faces and moving vehicles "
                         "inside the requester's box, blurred too")


class AccessCopyReject(Strict):
    reason: Required


class AccessCopyView(BaseModel):
    id: int
    request_id: int
    commune: str
    camera: str
    period_start: datetime
    period_end: datetime
    keep: list[dict[str, Any]]
    assist: bool
    created_by: str
    created_at: datetime
    state: Literal["pending", "queued", "building", "preview", "approved", "rejected",
                   "failed"] = Field(description="pending: the kept box is wider than a third "
                                     "of the picture, waiting for a second person's approval")
    keep_share: float | None = Field(description="The largest share of the picture kept sharp")
    wide_approved_by: str | None
    wide_approved_at: datetime | None
    percent: int
    finished_at: datetime | None
    error: str | None
    package: str | None
    size_bytes: int | None
    manifest_sha256: str | None
    frames: int | None
    block_px: int | None
    proposed: int | None
    approved_by: str | None
    approved_at: datetime | None
    rejected_by: str | None
    rejected_reason: str | None
    expires_at: datetime | None
    erased_at: datetime | None


class HeldStretch(BaseModel):
    camera: str
    start: datetime
    end: datetime


class StillProposals(BaseModel):
    """The detectors' boxes for one picture (nothing of them is kept, R29)."""
    at: datetime
    width: int
    height: int
    faces: list[list[int]]
    vehicles: list[list[int]]


class IncidentCreate(Strict):
    """R39: a personal-data breach as found (GDPR art. 33(3))."""
    commune: Slug
    summary: Required = Field(description="What happened")
    discovered_at: AwareDatetime
    data_concerned: Required = Field(description="Categories and approximate number of records")
    people_concerned: Required = Field(description="Categories and approximate number of people")
    consequences: Text = ""
    measures: Required = Field(description="Measures taken or proposed")
    risk: Literal["unlikely", "risk", "high_risk"]
    no_notice_reason: Text = Field(default="", description="Why it is not notified, when the "
                                   "risk is unlikely")


class IncidentNotification(Strict):
    reference: Required = Field(description="The CNIL's reference of the notification")
    notified_at: AwareDatetime


class IncidentView(BaseModel):
    id: int
    commune: str
    summary: str
    discovered_at: datetime
    declared_at: datetime
    data_concerned: str
    people_concerned: str
    consequences: str
    measures: str
    risk: str
    no_notice_reason: str | None
    due_at: datetime
    notified_at: datetime | None
    notification_ref: str | None
    created_by: str
    urgency: Literal["notified", "not_to_notify", "on_time", "due_soon", "overdue"]


class SignCreate(Strict):
    """R26: a sign as installed, what it says, and the cameras it covers."""
    place: Line = Field(min_length=1)
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)
    installed_on: date
    cameras: list[Slug] = Field(min_length=1, max_length=100)
    pictogram: bool = Field(description="The camera pictogram")
    controller: bool = Field(description="Names the controller")
    purposes: bool = Field(description="States the purposes")
    rights: bool = Field(description="Says how to exercise one's rights")
    cnil_complaint: bool = Field(description="Mentions the complaint to the CNIL")
    verbalisation: bool = Field(default=False, description="The specific vidéo-verbalisation "
                                "mention")


class SignRemoval(Strict):
    """R26: a sign taken down (damaged, moved, stolen)."""
    removed_on: date
    reason: Text = Field(min_length=1)


class SignsView(BaseModel):
    signs: list[dict[str, Any]]
    flagged: list[dict[str, str]] = Field(description="Cameras no complete sign covers, or used "
                                          "for vidéo-verbalisation without a sign saying so")


Recipient = Literal["municipal_police", "national_police", "gendarmerie", "other"]


class AuthorisationCreate(Strict):
    """R3, R5: a prefectoral order as granted, and the cameras it covers (attached at once)."""
    reference: Line = Field(min_length=1, max_length=120, description="The order's reference")
    granted_on: date
    valid_until: date = Field(description="The last day it covers (five years at most)")
    purposes: list[Line] = Field(min_length=1, max_length=11,
                                 description="Among CSI L251-2's (vigie.records.purposes)")
    recipients: list[Recipient] = Field(min_length=1, max_length=4)
    other_recipients: Line = ""
    retention_min_days: int = Field(default=1, ge=1, le=30)
    retention_max_days: int = Field(ge=1, le=30)
    cameras: list[Slug] = Field(default_factory=list, max_length=500)


class AuthorisationAttach(Strict):
    cameras: list[Slug] = Field(min_length=1, max_length=500)


class HandoverProfile(Strict):
    """R27, R28: the authorisation that names the national police, and the convention."""
    authorisation_id: int = Field(ge=1)
    coordination_convention: Line = Field(min_length=1, max_length=200)


class AuthorisationView(BaseModel):
    id: int
    reference: str
    granted_on: date
    valid_until: date
    purposes: list[str]
    recipients: list[str]
    other_recipients: str
    retention_min_days: int
    retention_max_days: int
    created_by: str
    created_at: datetime
    cameras: list[str]
    state: Literal["valid", "not_yet", "expired"]
    warning: Literal["6_months", "3_months", "1_month", "expired"] | None
    days_left: int


class AuthorisationsView(BaseModel):
    authorisations: list[AuthorisationView]
    unauthorised: list[dict[str, Any]] = Field(description="Cameras (not disabled) without a "
                                               "valid authorisation: they film nothing (R3)")
    below_norms: list[dict[str, str]] = Field(
        default_factory=list, description="Cameras in service masking measured below the "
        "technical norms (R35): slug, name and what was measured")
    purposes_allowed: list[str] = Field(description="CSI L251-2's purposes, as stored")
