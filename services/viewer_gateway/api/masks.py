"""Masks for the mask administrator (REGULATION.md R1, R2): the commissioning snapshot, versions
saved and approved. A version is never edited, only superseded; every step is journaled. Masking
applies the latest approved version (it re-reads the database every second)."""

from __future__ import annotations

import json

import asyncpg
import nats.errors
from fastapi import APIRouter, Response
from nats.aio.msg import Msg
from vigie.media.masks import MaskDocument
from vigie.plumbing.refusals import NotFound, Refusal
from vigie.records.audit_register import Entry, record

from services.viewer_gateway.api.deps import (
    PROBLEMS,
    Gateway,
    GatewayDep,
    MaskAdminUser,
    allow,
    camera_row,
)
from services.viewer_gateway.api.models import (
    MaskApproval,
    MaskSave,
    MaskVersionView,
    SnapshotRequest,
)

router = APIRouter(prefix="/api/cameras", tags=["masks"])
SNAPSHOT_TIMEOUT_S = 5.0
RESURVEY_PER_HOUR = 3  # snapshots of a camera in service
# In every state (issue 34): a cosmetic source change sends a camera back to commissioning, where
# snapshots were unlimited (6 unmasked pictures in 25 s). Drawing a camera's masks needs one or two.
COMMISSIONING_PER_HOUR = 6  # snapshots of one camera not in service
ACCOUNT_PER_HOUR = 20  # snapshots by one account, every camera together
SNAPSHOT_LOCK = 0x56494735  # the quota is counted and spent under one lock: no burst slips past


def _view(row: asyncpg.Record, applied: int | None) -> MaskVersionView:
    return MaskVersionView(version=row["version"], document=json.loads(row["document"]),
                           author=row["author"], created_at=row["created_at"],
                           approved_by=row["approved_by"], approved_at=row["approved_at"],
                           applied=row["version"] == applied)


@router.get("/{commune}/{camera}/masks", summary="A camera's mask versions, newest first",
            responses=PROBLEMS)
async def list_masks(commune: str, camera: str, user: MaskAdminUser,
                     gw: GatewayDep) -> list[MaskVersionView]:
    row = await camera_row(gw, user, commune, camera)
    await allow(gw, user, "mask_admin", commune=commune)
    rows = await gw.pool.fetch("SELECT * FROM masks WHERE camera_id = $1 ORDER BY version DESC",
                               row["id"])
    applied = next((r["version"] for r in rows if r["approved_at"] is not None), None)
    return [_view(r, applied) for r in rows]


@router.post("/{commune}/{camera}/masks", status_code=201,
             summary="Save polygons as a new version (not applied before it is approved)",
             responses=PROBLEMS)
async def save_masks(commune: str, camera: str, body: MaskSave, user: MaskAdminUser,
                     gw: GatewayDep) -> MaskVersionView:
    row = await camera_row(gw, user, commune, camera)
    await allow(gw, user, "mask_admin", commune=commune)
    name = f"{commune}/{camera}"
    async with gw.pool.acquire() as conn, conn.transaction():
        # One saver at a time per camera: versions are gapless and never reused.
        await conn.execute("SELECT 1 FROM cameras WHERE id = $1 FOR UPDATE", row["id"])
        version = await conn.fetchval(
            "SELECT coalesce(max(version), 0) + 1 FROM masks WHERE camera_id = $1", row["id"])
        # The polygons were validated (and bounded) with the body, before this lock was taken.
        document = MaskDocument(camera=name, version=version, masks=body.masks)
        saved = await conn.fetchrow(
            "INSERT INTO masks (camera_id, version, document, author) VALUES ($1, $2, $3::jsonb, "
            "$4) RETURNING *", row["id"], version, document.model_dump_json(), user.username)
        await record(conn, Entry(actor=user.username, action="mask.saved", commune=commune,
                                 cameras=[name], reason=body.note or None,
                                 details={"version": version, "polygons": len(document.masks)}))
    return _view(saved, None)


@router.post("/{commune}/{camera}/masks/{version}/approve",
             summary="Approve a version: masking applies it from its next keyframe; a camera "
             "being commissioned goes into service", responses=PROBLEMS)
async def approve_masks(commune: str, camera: str, version: int, body: MaskApproval,
                        user: MaskAdminUser, gw: GatewayDep) -> MaskVersionView:
    row = await camera_row(gw, user, commune, camera)
    await allow(gw, user, "mask_admin", commune=commune)
    async with gw.pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT 1 FROM cameras WHERE id = $1 FOR UPDATE", row["id"])
        found = await conn.fetchrow("SELECT * FROM masks WHERE camera_id = $1 AND version = $2",
                                    row["id"], version)
        if found is None:
            raise NotFound(f"no mask version {version} for {commune}/{camera}",
                           code="mask.version_not_found", version=version)
        if found["approved_at"] is not None:
            raise Refusal(f"version {version} is approved already",
                          code="mask.already_approved", version=version, kind="conflict")
        newer = await conn.fetchval("SELECT max(version) FROM masks WHERE camera_id = $1 AND "
                                    "approved_at IS NOT NULL", row["id"])
        if newer is not None and newer > version:
            raise Refusal(f"version {newer} is approved already: save this one again "
                          "to make it the newest",
                          code="mask.newer_approved", version=newer, kind="conflict")
        changed_at = row["source_changed_at"]
        if changed_at is not None and found["created_at"] < changed_at:
            raise Refusal(f"version {version} was drawn before the camera's source "
                          "changed: take a snapshot of the new picture and save a version "
                          "drawn on it",
                          code="mask.drawn_before_source_change", version=version,
                                kind="conflict")
        polygons = len(json.loads(found["document"])["masks"])
        if polygons == 0 and not body.no_private_space:
            raise Refusal("a version without any polygon is approved only with "
                          "no_private_space: « aucun espace privé dans le champ »",
                          code="mask.empty_needs_statement", kind="malformed")
        # The picture it is approved on: masking stops the camera if that picture changes.
        size = await conn.fetchrow("SELECT width, height FROM camera_health WHERE camera_id = $1",
                                   row["id"])
        approved = await conn.fetchrow(
            "UPDATE masks SET approved_by = $3, approved_at = now(), picture_width = $4, "
            "picture_height = $5 WHERE camera_id = $1 AND version = $2 RETURNING *",
            row["id"], version, user.username, size["width"] if size else None,
            size["height"] if size else None)
        commissioned = row["state"] == "commissioning"
        if commissioned:
            await conn.execute("UPDATE cameras SET state = 'active', updated_at = now() "
                               "WHERE id = $1", row["id"])
        await record(conn, Entry(
            actor=user.username, action="mask.approved", commune=commune,
            cameras=[f"{commune}/{camera}"],
            details={"version": version, "polygons": polygons,
                     "no_private_space": polygons == 0, "put_in_service": commissioned,
                     # Said plainly (issue 18): one person drew and approved; an auditor
                     # looking for four-eyes approvals finds these at once.
                     "self_approved": found["author"] == user.username}))
    return _view(approved, version)


@router.post("/{commune}/{camera}/snapshot", summary="The commissioning snapshot: one unmasked "
             "image, for drawing masks; a reason is required and it is journaled", responses={
                 **PROBLEMS, 200: {"content": {"image/jpeg": {}}, "description": "JPEG"},
                 429: {"description": "This camera's or this account's snapshots for the "
                       "hour are spent (journaled)"},
                 503: {"description": "Masking did not answer"}},
             response_class=Response)
async def snapshot(commune: str, camera: str, body: SnapshotRequest, user: MaskAdminUser,
                   gw: GatewayDep) -> Response:
    row = await camera_row(gw, user, commune, camera)
    await allow(gw, user, "mask_admin", commune=commune)
    # The one unmasked picture Vigie shows (DESIGN.md): for drawing a new camera's masks; of a
    # camera in service only for a declared re-survey, and rarely — never a way to watch it.
    if row["state"] == "disabled":
        raise Refusal("the camera is disabled: no snapshot",
                      code="snapshot.camera_disabled", kind="conflict")
    if row["state"] == "active" and not body.resurvey:
        raise Refusal("the camera is in service: a snapshot of it is a re-survey "
                      "of its field (resurvey: true, with its reason)",
                      code="snapshot.resurvey_needed", kind="conflict")
    if gw.rt.nc is None:
        raise Refusal("the gateway is not connected to NATS",
                      code="bus.unavailable", kind="unavailable")
    camera_ref = f"{commune}/{row['slug']}"
    async with gw.pool.acquire() as conn:
        async with conn.transaction():
            # Counted and spent under one lock held until this snapshot's row commits: a burst
            # of requests cannot all pass the count before any is journaled.
            await conn.execute("SELECT pg_advisory_xact_lock($1, hashtext(current_schema()))",
                               SNAPSHOT_LOCK)
            refusal = await _over_quota(conn, user.username, camera_ref,
                                        in_service=row["state"] == "active")
            if refusal is None:
                reply = await _ask_masking(gw, commune, camera)
            # Refused tries are journaled too: repeated ones are what an audit looks for.
            await record(conn, Entry(actor=user.username, action="mask.snapshot",
                                     commune=commune, cameras=[camera_ref], reason=body.reason,
                                     outcome="ok" if refusal is None else "refused",
                                     details={"camera_state": row["state"],
                                              "resurvey": row["state"] == "active",
                                              **({"refused": refusal} if refusal else {})}))
    if refusal is not None:
        raise Refusal(refusal, kind="too_many")
    return Response(reply.data, media_type="image/jpeg", headers={
        "Cache-Control": "no-store",
        "X-Capture-Time-Ns": (reply.headers or {}).get("Vigie-Capture-Time-Ns", "")})


async def _ask_masking(gw: Gateway, commune: str, camera: str) -> Msg:
    """The unmasked keyframe masking holds for this camera (it answers on the snapshot subject)."""
    assert gw.rt.nc is not None
    try:
        reply = await gw.rt.nc.request(gw.rt.names.snapshot_request(commune, camera), b"",
                                       timeout=SNAPSHOT_TIMEOUT_S)
    except (nats.errors.TimeoutError, nats.errors.NoRespondersError):
        raise Refusal("masking did not answer: is the camera sending "
                      "images?",
                      code="masking.no_answer", kind="unavailable") from None
    error = (reply.headers or {}).get("Vigie-Error")
    if error or not reply.data:
        raise Refusal(f"no image: {error or 'empty answer'}",
                      code="snapshot.no_image", kind="conflict")
    return reply


async def _over_quota(conn: asyncpg.Connection, username: str, camera_ref: str, *,
                      in_service: bool) -> str | None:
    """Why not, when this camera or this account had its snapshots for the hour (the register
    counts them: each snapshot shown is a `mask.snapshot` row with outcome ok)."""
    per_camera = RESURVEY_PER_HOUR if in_service else COMMISSIONING_PER_HOUR
    counts = await conn.fetchrow(
        "SELECT count(*) FILTER (WHERE $1 = ANY(cameras)) AS camera, "
        "count(*) FILTER (WHERE actor = $2) AS account FROM audit_log "
        "WHERE action = 'mask.snapshot' AND outcome = 'ok' AND at > now() - interval '1 hour'",
        camera_ref, username)
    if counts["camera"] >= per_camera:
        state = "in service" if in_service else "not in service"
        return f"at most {per_camera} snapshots of a camera {state} an hour: try again later"
    if counts["account"] >= ACCOUNT_PER_HOUR:
        return f"at most {ACCOUNT_PER_HOUR} snapshots by one account an hour: try again later"
    return None
