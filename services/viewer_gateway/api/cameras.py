"""Cameras of your communes: their state, what you may do with each (the policy's answer), the
recorded timeline; creation and changes for administrators. RTSP URLs are write-only: stored
apart (camera_sources) and never returned."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Annotated

import asyncpg
from fastapi import APIRouter, Query, Response
from vigie.custody.coverage import uncovered
from vigie.plumbing.refusals import NotFound, Refusal
from vigie.records import purposes
from vigie.records.audit_register import Entry, record

from services.viewer_gateway.api.deps import (
    PROBLEMS,
    ConfigurationUser,
    GatewayDep,
    LiveUser,
    PlaybackUser,
    UserDep,
    allow,
    camera_row,
)
from services.viewer_gateway.api.models import (
    CameraChange,
    CameraCreate,
    CameraRights,
    CameraSettings,
    CameraView,
    DecisionView,
    Gap,
    Timeline,
    TimelineSegment,
)
from services.viewer_gateway.camera_status import camera_status, masking_state
from services.viewer_gateway.policy import rights

router = APIRouter(prefix="/api/cameras", tags=["cameras"])
MAX_TIMELINE = timedelta(days=31)
NULLABLE = {"retention_days", "authorisation_id", "latitude", "longitude", "device_id",
            "sensor_index"}
# What the database refuses for a value the API let through (coordinates given alone, a sensor of
# a device already taken): the client's to correct.
REFUSED = (asyncpg.RaiseError, asyncpg.NotNullViolationError, asyncpg.CheckViolationError)

LIST_SQL = """
SELECT c.*, h.online, h.masking_ok, h.masking_detail, h.mask_version,
       ca.reference AS authorisation_ref, ca.valid_until AS authorisation_expires,
       ca.authorisation_state,
       EXISTS (SELECT 1 FROM camera_sources s WHERE s.camera_id = c.id) AS has_source
FROM cameras c LEFT JOIN camera_health h ON h.camera_id = c.id
JOIN camera_authorisation ca ON ca.camera_id = c.id
WHERE c.commune = ANY($1) {extra}
ORDER BY c.commune, c.slug
"""


def _view(row: asyncpg.Record) -> CameraView:
    expires = row["authorisation_expires"]
    return CameraView(
        commune=row["commune"], slug=row["slug"], name=row["name"], location=row["location"],
        state=row["state"], retention_days=row["retention_days"],
        purposes=list(row["purposes"]),
        authorisation_ref=row["authorisation_ref"], authorisation_expires=expires,
        authorisation_expired=row["authorisation_state"] == "expired",
        authorisation=row["authorisation_state"],
        device_id=row["device_id"], sensor_index=row["sensor_index"],
        latitude=row["latitude"], longitude=row["longitude"], narrow_field=row["narrow_field"],
        encoder=row["encoder"] if isinstance(row["encoder"], dict)
        else json.loads(row["encoder"] or "{}"),
        online=row["online"], masking_ok=row["masking_ok"],
        masking=masking_state(row["masking_ok"], row["masking_detail"]),
        status=camera_status(row["state"], row["online"], row["masking_ok"],
                             row["masking_detail"], row["authorisation_state"] == "valid"),
        mask_version=row["mask_version"],
        has_source=row["has_source"])


async def _one(gw: GatewayDep, commune: str, camera: str) -> CameraView:
    row = await gw.pool.fetchrow(LIST_SQL.format(extra="AND c.slug = $2"), [commune], camera)
    assert row is not None
    return _view(row)


@router.get("", summary="The cameras of your communes and their state", responses=PROBLEMS)
async def list_cameras(user: UserDep, gw: GatewayDep) -> list[CameraView]:
    rows = await gw.pool.fetch(LIST_SQL.format(extra=""), list(user.communes))
    return [_view(r) for r in rows]


@router.post("", status_code=201, summary="Add a camera (commissioning until its masks are "
             "approved)", responses=PROBLEMS)
async def create_camera(body: CameraCreate, user: ConfigurationUser,
                        gw: GatewayDep) -> CameraView:
    if body.commune in user.communes and not await gw.pool.fetchval(
            "SELECT true FROM communes WHERE slug = $1", body.commune):
        raise NotFound(f"no commune {body.commune}", code="commune.unknown", commune=body.commune)
    await allow(gw, user, "configuration", commune=body.commune)
    async with gw.pool.acquire() as conn, conn.transaction():
        if await conn.fetchval("SELECT true FROM cameras WHERE commune = $1 AND slug = $2",
                               body.commune, body.slug):
            raise Refusal(f"camera {body.commune}/{body.slug} exists already",
                          code="camera.exists", camera=body.slug, kind="conflict")
        _check_settings(body)
        authorisation = await _authorisation_id(conn, body.commune, body.authorisation_ref)
        try:
            cid = await conn.fetchval(
                "INSERT INTO cameras (commune, slug, name, location, retention_days, "
                "authorisation_id, purposes, latitude, longitude, "
                "device_id, sensor_index, narrow_field, encoder) VALUES ($1, $2, $3, $4, $5, $6, "
                "$7, $8, $9, $10, $11, $12, $13::jsonb) RETURNING id", body.commune,
                body.slug, body.name, body.location, body.retention_days, authorisation,
                body.purposes or [], body.latitude, body.longitude,
                body.device_id, body.sensor_index, bool(body.narrow_field),
                json.dumps(body.encoder.model_dump(exclude_none=True) if body.encoder else {}))
        except REFUSED as exc:  # retention triggers (commune, authorisation), coordinates
            raise Refusal(_refusal(exc)) from None
        except asyncpg.UniqueViolationError:
            raise Refusal(f"sensor {body.sensor_index} of device {body.device_id} "
                          "is another camera already",
                          code="camera.sensor_taken", kind="conflict") from None
        await conn.execute("INSERT INTO camera_sources (camera_id, rtsp_url) VALUES ($1, $2)",
                           cid, body.rtsp_url)
        await record(conn, Entry(actor=user.username, action="camera.created",
                                 commune=body.commune, cameras=[f"{body.commune}/{body.slug}"],
                                 details={"name": body.name, "location": body.location,
                                          "authorisation_ref": body.authorisation_ref}))
    return await _one(gw, body.commune, body.slug)


@router.patch("/{commune}/{camera}", summary="Change a camera (the RTSP URL is write-only)",
              responses=PROBLEMS)
async def change_camera(commune: str, camera: str, body: CameraChange, user: ConfigurationUser,
                        gw: GatewayDep) -> CameraView:
    row = await camera_row(gw, user, commune, camera)
    await allow(gw, user, "configuration", commune=commune)
    # An explicit null for a column that cannot be empty means "no change".
    changes = {k: v for k, v in body.model_dump(exclude_unset=True, exclude={"rtsp_url"}).items()
               if v is not None or k in NULLABLE}
    if changes.get("state") == "active" and row["state"] != "active":
        # Into service only through the approval of masks drawn on the camera's present picture
        # (R1); a disabled camera comes back as it was only if nothing it films changed since.
        if row["state"] == "commissioning" or not await _approved_since_source_change(gw, row):
            raise Refusal("a camera goes into service when a mask administrator "
                          "approves masks drawn on its present picture",
                          code="camera.service_by_masks", kind="conflict")
    _check_settings(body)
    if "authorisation_ref" in changes:
        changes["authorisation_id"] = await _authorisation_id(gw.pool, commune,
                                                              changes.pop("authorisation_ref"))
    if "encoder" in changes:
        changes["encoder"] = json.dumps(body.encoder.model_dump(exclude_none=True)
                                        if body.encoder else {})
    async with gw.pool.acquire() as conn, conn.transaction():
        # One statement: the database checks the row as a whole (coordinates go in pairs).
        # Columns are the model's fields, not user text.
        sets = ", ".join(f"{column} = ${n}{'::jsonb' if column == 'encoder' else ''}"
                         for n, column in enumerate(changes, start=2))
        if sets:
            try:
                await conn.execute(f"UPDATE cameras SET {sets}, updated_at = now() "
                                   "WHERE id = $1", row["id"], *changes.values())
            except REFUSED as exc:
                raise Refusal(_refusal(exc)) from None
            except asyncpg.UniqueViolationError:
                raise Refusal("that sensor of that device is another camera "
                              "already",
                              code="camera.sensor_taken", kind="conflict") from None
        source_changed = False
        if body.rtsp_url is not None:
            source_changed = await conn.fetchval(
                "INSERT INTO camera_sources (camera_id, rtsp_url) VALUES ($1, $2) "
                "ON CONFLICT (camera_id) DO UPDATE SET rtsp_url = excluded.rtsp_url "
                "WHERE camera_sources.rtsp_url IS DISTINCT FROM excluded.rtsp_url RETURNING true",
                row["id"], body.rtsp_url) or False
        if source_changed:
            # Another source films something else: its approved masks no longer say what is
            # private in view. Back to commissioning: nothing recorded or shown until a mask
            # administrator approves masks drawn on a snapshot of the new picture.
            await conn.execute(
                "UPDATE cameras SET source_changed_at = now(), updated_at = now(), "
                "state = CASE WHEN state = 'disabled' THEN state ELSE 'commissioning' END "
                "WHERE id = $1", row["id"])
        await record(conn, Entry(
            actor=user.username, action="camera.changed", commune=commune,
            cameras=[f"{commune}/{camera}"],
            details={**{k: v for k, v in changes.items()},
                     **({"rtsp_url": "changed (not recorded)", "back_to_commissioning":
                         row["state"] != "disabled"} if source_changed else {})}))
    return await _one(gw, commune, camera)


async def _authorisation_id(conn: asyncpg.Connection | asyncpg.Pool, commune: str,
                            reference: str | None) -> int | None:
    if reference is None:
        return None
    found = await conn.fetchval("SELECT id FROM authorisations WHERE commune = $1 "
                                "AND reference = $2", commune, reference)
    if found is None:
        raise Refusal(f"no authorisation {reference!r} is recorded for {commune}: "
                      "record the prefectoral order first",
                      code="camera.authorisation_unknown", reference=reference)
    return int(found)


def _refusal(exc: Exception) -> str:
    if "cameras_coordinates_both" in str(exc):
        return "latitude and longitude go together: give both, or clear both"
    return str(exc)


def _check_settings(body: CameraSettings) -> None:
    if body.purposes is not None and (wrong := purposes.unknown(body.purposes)):
        raise Refusal(f"not a purpose of CSI L251-2: {', '.join(wrong)} (the list: "
                      f"{'; '.join(purposes.PURPOSES)})",
                      code="camera.unknown_purposes", purposes=', '.join(wrong))


async def _approved_since_source_change(gw: GatewayDep, row: asyncpg.Record) -> bool:
    return bool(await gw.pool.fetchval(
        "SELECT true FROM masks WHERE camera_id = $1 AND approved_at IS NOT NULL "
        "AND ($2::timestamptz IS NULL OR approved_at > $2) LIMIT 1",
        row["id"], row["source_changed_at"]))


@router.get("/{commune}/{camera}/rights", summary="What you may do with this camera now, and why "
            "not (the policy's decisions)", responses=PROBLEMS)
async def camera_rights(commune: str, camera: str, user: UserDep,
                        gw: GatewayDep) -> CameraRights:
    row = await camera_row(gw, user, commune, camera)
    holder = await gw.handover.holder(commune)
    decisions = rights(user.subject, commune=commune, holder=holder,  # type: ignore[arg-type]
                       camera_state=row["state"])
    return CameraRights(commune=commune, camera=camera, holder=holder,  # type: ignore[arg-type]
                        camera_state=row["state"],
                        rights={a: DecisionView(allowed=d.allowed, reason=d.reason)
                                for a, d in decisions.items()})


@router.get("/{commune}/{camera}/tile.jpg", response_class=Response,
            summary="A small JPEG of the camera's latest keyframe, for the mosaic",
            responses={**PROBLEMS, 200: {"content": {"image/jpeg": {}},
                                         "description": "X-Capture-Time: when it was filmed"}})
async def tile(commune: str, camera: str, user: LiveUser, gw: GatewayDep) -> Response:
    row = await camera_row(gw, user, commune, camera)
    await allow(gw, user, "live", commune=commune, camera_state=row["state"])
    image = await gw.tiles.jpeg(commune, camera)
    if image is None:
        state = await gw.pool.fetchrow("SELECT online, masking_ok FROM camera_health "
                                       "WHERE camera_id = $1", row["id"])
        why = ("masking failed: nothing is shown (fail closed)"
               if state and state["masking_ok"] is False else "the camera sends no image")
        raise Refusal(why, kind="conflict")
    if gw.tiles_seen.first(user.session, f"{commune}/{camera}"):
        # Watching the mosaic is live viewing (R12): once per session and camera.
        await record(gw.pool, Entry(actor=user.username, action="live.tile", commune=commune,
                                    cameras=[f"{commune}/{camera}"],
                                    period_start=datetime.now(UTC), details={"post": user.post}))
    data, captured_ns = image
    return Response(data, media_type="image/jpeg", headers={
        "Cache-Control": "no-store",
        "X-Capture-Time": datetime.fromtimestamp(captured_ns / 1e9, UTC).isoformat()})


# A segment is stored when it ends (60 s by default) and a little after: past this, the stretch
# since the last one is a gap (the recorder's alarm comes at 4 min).
RECORDING_WITHIN = timedelta(seconds=150)


async def _being_recorded(gw: GatewayDep, camera_id: int, since: datetime,
                          now: datetime) -> bool:
    """The camera sends (a frame within 10 s) and its last segment ended recently: the stretch
    since is in the recorder's open segment."""
    if now - since > RECORDING_WITHIN:
        return False
    fresh = await gw.pool.fetchval(
        "SELECT online AND last_frame_at > now() - interval '10 seconds' FROM camera_health "
        "WHERE camera_id = $1", camera_id)
    return bool(fresh)


@router.get("/{commune}/{camera}/timeline", summary="Recorded segments and the gaps between them "
            "over a period (no image: opening a recording needs a reason, R13)",
            responses=PROBLEMS)
async def timeline(commune: str, camera: str, user: PlaybackUser, gw: GatewayDep,
                   response: Response,
                   start: Annotated[datetime, Query(description="Period start, ISO 8601, zone")],
                   end: Annotated[datetime, Query(description="Period end, ISO 8601, zone")],
                   ) -> Timeline:
    if start.tzinfo is None or end.tzinfo is None:
        raise Refusal("start and end need a time zone (…Z or …+01:00)", code="period.no_offset")
    if end <= start:
        raise Refusal("the period ends before it starts", code="period.ends_before_start")
    if end - start > MAX_TIMELINE:
        raise Refusal("a timeline covers 31 days at most", code="timeline.too_long", days=31)
    if start > datetime.now(UTC):
        raise Refusal("the period is in the future", code="period.in_future")
    row = await camera_row(gw, user, commune, camera)
    await allow(gw, user, "playback", commune=commune, camera_state=row["state"])
    segments = await gw.pool.fetch(
        "SELECT start_time, end_time, frames, size_bytes, mask_version FROM segments "
        "WHERE camera_id = $1 AND start_time < $3 AND end_time > $2 ORDER BY start_time",
        row["id"], start, end)
    holes = uncovered([(s["start_time"], s["end_time"]) for s in segments], start, end)
    now = datetime.now(UTC)
    if holes and holes[-1][1] == end:  # what lies ahead of now is not a gap yet
        holes[-1] = (holes[-1][0], min(end, max(holes[-1][0], now)))
    recording = None
    if holes and holes[-1][1] >= min(end, now) - timedelta(seconds=1) and \
            await _being_recorded(gw, row["id"], holes[-1][0], now):
        # The minute being recorded is not a gap (issue 38): its segment is stored when it ends.
        recording = Gap(start=holes[-1][0], end=holes[-1][1])
        holes.pop()
    gaps = [Gap(start=a, end=b) for a, b in holes if b > a]
    response.headers["Cache-Control"] = "no-store"
    return Timeline(commune=commune, camera=camera, start=start, end=end, gaps=gaps,
                    recording=recording,
                    segments=[TimelineSegment(start=s["start_time"], end=s["end_time"],
                                              frames=s["frames"], size_bytes=s["size_bytes"],
                                              mask_version=s["mask_version"]) for s in segments])
