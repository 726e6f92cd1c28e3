"""The redacted copy over the API (issue 23, R22): the redaction editor's pictures of the request's
held recording (and the detectors' proposals for one picture, kept nowhere: R29), the copy asked
with the requester's boxes and built in the background by the retention service, its preview, the
operator's approval or rejection, then the package's download — permission `rights_requests`,
the account's communes only, every step journaled."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Annotated

import asyncpg
from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import Response, StreamingResponse
from pydantic import AwareDatetime
from vigie.custody import access_copies as copies
from vigie.custody.access_requests import deletion_proof
from vigie.custody.redaction.keep import KeepTrack
from vigie.custody.redaction.still import NoStill, picture_size, still
from vigie.plumbing.refusals import NotFound, Refusal
from vigie.records import legal_time
from vigie.records.audit_register import Entry, record

from services.viewer_gateway.api.deps import PROBLEMS, Gateway, GatewayDep, RightsUser, allow
from services.viewer_gateway.api.models import (
    AccessCopyCreate,
    AccessCopyReject,
    AccessCopyView,
    HeldStretch,
    StillProposals,
)
from services.viewer_gateway.auth import User

router = APIRouter(prefix="/api/access-requests/{request_id}", tags=["right of access"])
NO_STORE = {"Cache-Control": "no-store"}
EDGE = timedelta(milliseconds=500)
JOIN_S = 2.0  # held segments closer than this are one stretch on the editor's timeline
CameraQuery = Annotated[str, Query(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]
AtQuery = Annotated[AwareDatetime, Query(description="ISO 8601 with zone")]


async def _request(gw: Gateway, user: User, request_id: int) -> asyncpg.Record:
    request = await copies.held_request(gw.pool, request_id, user.communes)
    await allow(gw, user, "rights_requests", commune=request["commune"])
    return request


async def _may_see(gw: Gateway, user: User, request: asyncpg.Record, camera: str) -> None:
    """A route that returns pictures decides as playback does (issue 34): training (R11), the
    hand-over (R27: not while the national police hold the commune), the camera's state — on top
    of the rights-requests permission."""
    state = await gw.pool.fetchval("SELECT state FROM cameras WHERE commune = $1 AND slug = $2",
                                   request["commune"], camera)
    await allow(gw, user, "playback", commune=request["commune"], camera_state=state)


def _why(request_id: int) -> str:
    """The reason journaled with a picture shown for a request (R13): the request is the case."""
    return f"droit d'accès : demande n° {request_id}"


async def _held_at(gw: Gateway, request: asyncpg.Record, camera: str,
                   at: datetime) -> tuple[asyncpg.Record, bytes]:
    if camera not in request["cameras"]:
        raise NotFound(f"the request does not name the camera {camera!r}",
                       code="copy.camera_not_requested", camera=camera)
    # A browser keeps times to the millisecond: a held stretch's first instant, read back, can
    # fall a few microseconds before it. A segment starting within EDGE after `at` is shown then.
    rows = await copies.held_pieces(gw.pool, request, camera, at, at + EDGE)
    covering = [r for r in rows if r["segment_start"] <= at < r["segment_end"]] or rows
    if not covering:
        raise NotFound(f"nothing of {camera} is held at {at.isoformat()}",
                       code="copy.nothing_held_at", camera=camera, at=at.isoformat())
    return covering[0], await copies.evidence_bytes(gw.rt.require_store(), gw.rt.buckets,
                                                    covering[0])


async def _copy(gw: Gateway, request_id: int, copy_id: int) -> AccessCopyView:
    found = await copies.list_copies(gw.pool, request_id, copy_id)
    if not found:
        raise NotFound(f"no copy {copy_id} for request {request_id}",
                       code="copy.not_found", id=copy_id)
    return AccessCopyView(**found[0])


@router.get("/held", summary="What the request's hold keeps, per camera: the stretches the "
            "editor can show", responses=PROBLEMS)
async def get_held(request_id: int, user: RightsUser, gw: GatewayDep) -> list[HeldStretch]:
    request = await _request(gw, user, request_id)
    out: list[HeldStretch] = []
    for camera in request["cameras"]:
        if request["hold_id"] is None:
            break
        rows = await copies.held_pieces(gw.pool, request, camera, request["held_start"],
                                        request["held_end"])
        for row in rows:
            start, end = row["segment_start"], row["segment_end"]
            if out and out[-1].camera == camera and (
                    start - out[-1].end).total_seconds() <= JOIN_S:
                out[-1].end = max(out[-1].end, end)
            else:
                out.append(HeldStretch(camera=camera, start=start, end=end))
    return out


@router.get("/still", response_class=Response, summary="The held picture of a camera at a time "
            "(JPEG at the recording's size; X-Picture-Time says when it was filmed)",
            responses={**PROBLEMS, 200: {"content": {"image/jpeg": {}},
                                         "description": "the picture"}})
async def get_still(request_id: int, camera: CameraQuery, at: AtQuery, user: RightsUser,
                    gw: GatewayDep) -> Response:
    request = await _request(gw, user, request_id)
    await _may_see(gw, user, request, camera)
    row, blob = await _held_at(gw, request, camera, at)
    try:
        picture = await asyncio.to_thread(
            still, blob, max(0.0, (at - row["segment_start"]).total_seconds()))
    except NoStill as exc:
        raise NotFound(str(exc), code="still.none") from None
    filmed = row["segment_start"] + timedelta(seconds=picture.t)
    await record(gw.pool, Entry(
        actor=user.username, action="access_request.still_viewed", commune=request["commune"],
        cameras=[f"{request['commune']}/{camera}"], period_start=filmed, period_end=filmed,
        reason=_why(request_id), details={"request": request_id}))
    return Response(picture.jpeg, media_type="image/jpeg", headers={
        **NO_STORE, "X-Picture-Time": filmed.isoformat(),
        "X-Picture-Width": str(picture.width), "X-Picture-Height": str(picture.height)})


@router.get("/proposals", summary="The detectors' boxes on the held picture at a time: faces, "
            "moving vehicles (proposals to blur, kept nowhere: R29)", responses=PROBLEMS)
async def get_proposals(request_id: int, camera: CameraQuery, at: AtQuery, user: RightsUser,
                        gw: GatewayDep) -> StillProposals:
    request = await _request(gw, user, request_id)
    await _may_see(gw, user, request, camera)
    row, blob = await _held_at(gw, request, camera, at)
    try:
        picture = await asyncio.to_thread(
            still, blob, max(0.0, (at - row["segment_start"]).total_seconds()), propose=True)
    except NoStill as exc:
        raise NotFound(str(exc), code="still.none") from None
    return StillProposals(at=row["segment_start"] + timedelta(seconds=picture.t),
                          width=picture.width, height=picture.height,
                          faces=[list(b) for b in picture.faces],
                          vehicles=[list(b) for b in picture.vehicles])


@router.get("/copies", summary="The request's redacted copies and their state",
            responses=PROBLEMS)
async def get_copies(request_id: int, user: RightsUser, gw: GatewayDep) -> list[AccessCopyView]:
    await _request(gw, user, request_id)
    return [AccessCopyView(**c) for c in await copies.list_copies(gw.pool, request_id)]


@router.post("/copies", status_code=202, summary="Ask for a redacted copy (R22): everything "
             "blurred but the requester's box; built in the background", responses=PROBLEMS)
async def post_copy(request_id: int, body: AccessCopyCreate, user: RightsUser,
                    gw: GatewayDep) -> AccessCopyView:
    request = await _request(gw, user, request_id)
    keep = KeepTrack.parse_entries([k.model_dump() for k in body.keep])
    copies.check_window(request, body.camera, body.period_start, body.period_end)
    held = await copies.held_pieces(gw.pool, request, body.camera, body.period_start,
                                    body.period_end)
    if not held:
        raise HTTPException(400, await _why_nothing_held(gw, request["commune"], body.camera,
                                                         body.period_start, body.period_end))
    try:
        blob = await copies.evidence_bytes(gw.rt.require_store(), gw.rt.buckets, held[0])
        size = await asyncio.to_thread(picture_size, blob)
    except NoStill:
        size = None  # the build says it, with the reason
    copy_id = await copies.request_copy(gw.pool, copies.CopyAsked(
        request_id=request_id, camera=body.camera, start=body.period_start,
        end=body.period_end, keep=keep, assist=body.assist, by=user.username),
        user.communes, picture=size)
    return await _copy(gw, request_id, copy_id)


async def _why_nothing_held(gw: Gateway, commune: str, camera: str, start: datetime,
                            end: datetime) -> str:
    """The answer from the register (R24): erased, when and why — or never recorded."""
    lines = await deletion_proof(gw.pool, commune, [camera], start, end)
    erased = [x for x in lines if x.what == "destroyed" and x.at is not None]
    if erased:
        last = max(erased, key=lambda x: x.at or start)
        cause = last.detail.partition(":")[0] or "retention"
        zone = legal_time.zone_of(await legal_time.time_zones(gw.pool, [commune]), commune)
        return (f"nothing of {camera} is held in that window: it was erased on "
                f"{legal_time.local(last.at or start, zone):%d/%m/%Y %H:%M} ({cause}), before the "
                "request was received — the deletion-proof extract gives the details")
    return (f"nothing of {camera} is held in that window: nothing was recorded there (the "
            "camera was off or not yet installed)")


@router.get("/copies/{copy_id}", summary="One copy and its progress", responses=PROBLEMS)
async def get_copy(request_id: int, copy_id: int, user: RightsUser,
                   gw: GatewayDep) -> AccessCopyView:
    await _request(gw, user, request_id)
    return await _copy(gw, request_id, copy_id)


async def _stored(gw: Gateway, request_id: int, copy_id: int, column: str,
                  states: tuple[str, ...]) -> tuple[AccessCopyView, str]:
    view = await _copy(gw, request_id, copy_id)
    if view.state not in states:
        raise Refusal(f"the copy is {view.state}",
                      code="copy.not_ready", state=view.state, kind="conflict")
    if view.erased_at is not None:
        raise Refusal("the copy is erased (its retention has passed)",
                      code="copy.erased", kind="gone")
    key = await gw.pool.fetchval(f"SELECT {column} FROM access_copies WHERE id = $1", copy_id)
    if not key or await gw.rt.require_store().stat(gw.rt.buckets.exports, key) is None:
        raise Refusal("the copy is no longer stored", code="copy.not_stored", kind="gone")
    return view, key


def _streamed(gw: Gateway, key: str, media_type: str,
              headers: dict[str, str]) -> StreamingResponse:
    store = gw.rt.require_store()

    async def body() -> AsyncIterator[bytes]:
        async for block in store.stream(gw.rt.buckets.exports, key):
            yield block

    return StreamingResponse(body(), media_type=media_type, headers={**NO_STORE, **headers})


@router.get("/copies/{copy_id}/video", response_class=StreamingResponse,
            summary="The redacted video, to watch before approving it (journaled)",
            responses={**PROBLEMS, 200: {"content": {"video/mp4": {}},
                                         "description": "the redacted video"}})
async def get_copy_video(request_id: int, copy_id: int, user: RightsUser,
                         gw: GatewayDep) -> StreamingResponse:
    request = await _request(gw, user, request_id)
    view, key = await _stored(gw, request_id, copy_id, "video_key", ("preview", "approved"))
    await _may_see(gw, user, request, view.camera)
    await record(gw.pool, Entry(
        actor=user.username, action="access_request.copy_previewed", commune=view.commune,
        cameras=[f"{view.commune}/{view.camera}"], period_start=view.period_start,
        period_end=view.period_end, reason=_why(request_id),
        details={"request": request_id, "copy": copy_id}))
    return _streamed(gw, key, "video/mp4", {})


@router.post("/copies/{copy_id}/approve", summary="Approve the preview: the copy may be sent "
             "(journaled)", responses=PROBLEMS)
async def post_approve(request_id: int, copy_id: int, user: RightsUser,
                       gw: GatewayDep) -> AccessCopyView:
    await _request(gw, user, request_id)
    await copies.approve(gw.pool, request_id, copy_id, by=user.username)
    return await _copy(gw, request_id, copy_id)


@router.post("/copies/{copy_id}/approve-box", summary="Approve a kept box wider than a third "
             "of the picture (someone other than who asked): the copy is built",
             responses=PROBLEMS)
async def post_approve_box(request_id: int, copy_id: int, user: RightsUser,
                           gw: GatewayDep) -> AccessCopyView:
    await _request(gw, user, request_id)
    await copies.approve_wide(gw.pool, request_id, copy_id, by=user.username)
    return await _copy(gw, request_id, copy_id)


@router.post("/copies/{copy_id}/reject", summary="Reject the preview with what is wrong: never "
             "released, erased", responses=PROBLEMS)
async def post_reject(request_id: int, copy_id: int, body: AccessCopyReject, user: RightsUser,
                      gw: GatewayDep) -> AccessCopyView:
    await _request(gw, user, request_id)
    await copies.reject(gw.pool, request_id, copy_id, by=user.username, reason=body.reason)
    return await _copy(gw, request_id, copy_id)


@router.get("/copies/{copy_id}/download", response_class=StreamingResponse,
            summary="The approved copy's package (ZIP), journaled",
            responses={**PROBLEMS, 200: {"content": {"application/zip": {}},
                                         "description": "the package"}})
async def download(request_id: int, copy_id: int, user: RightsUser,
                   gw: GatewayDep) -> StreamingResponse:
    request = await _request(gw, user, request_id)
    view, key = await _stored(gw, request_id, copy_id, "object_key", ("approved",))
    await _may_see(gw, user, request, view.camera)
    await record(gw.pool, Entry(
        actor=user.username, action="access_request.copy_downloaded", commune=view.commune,
        cameras=[f"{view.commune}/{view.camera}"], period_start=view.period_start,
        period_end=view.period_end, reason=_why(request_id),
        details={"request": request_id, "copy": copy_id, "package": view.package,
                 "manifest_sha256": view.manifest_sha256}))
    return _streamed(gw, key, "application/zip",
                     {"Content-Disposition": f'attachment; filename="{view.package}.zip"'})
