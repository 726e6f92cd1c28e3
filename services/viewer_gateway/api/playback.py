"""Playback (issue 10; REGULATION.md R13): a recording opens only with a reason (a category, a
text, the requisition's reference when there is one); segments are served from object storage
through the gateway (never a public URL) and never cached (R4); the period actually served is
written to the register when the view ends — by the viewer, or after it went quiet."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

import asyncpg
from fastapi import APIRouter, Query, Response
from pydantic import AwareDatetime, BaseModel
from vigie.plumbing.refusals import NotFound, Refusal

from services.viewer_gateway.api.deps import (
    PROBLEMS,
    Gateway,
    GatewayDep,
    PlaybackUser,
    UserDep,
    allow,
    camera_row,
)
from services.viewer_gateway.api.models import Line, Required, Strict
from services.viewer_gateway.auth import User
from services.viewer_gateway.handlers import close_view

router = APIRouter(tags=["playback"])
Category = Literal["intervention", "damage", "judicial_requisition", "verbalisation",
                   "right_of_access", "other"]
NO_STORE = {"Cache-Control": "no-store"}


class PlaybackOpen(Strict):
    category: Category
    reason: Required
    reference: Line | None = None
    at: AwareDatetime


class PlaybackView(BaseModel):
    id: str
    commune: str
    camera: str
    category: Category
    at: datetime
    media: str  # where to fetch the segment containing a time: GET media?at=…


async def recorded_camera(gw: Gateway, user: User, commune: str, camera: str,
                          at: datetime) -> asyncpg.Record:
    """A camera of the user's communes whose recordings the user may consult now, at a time that
    can have been recorded (playback views and bookmarks alike)."""
    row = await camera_row(gw, user, commune, camera)
    await allow(gw, user, "playback", commune=commune, camera_state=row["state"])
    if at > datetime.now(UTC):
        raise Refusal("that time is in the future: nothing is recorded yet",
                      code="playback.in_future")
    return row


@router.post("/api/cameras/{commune}/{camera}/playback", status_code=201, responses=PROBLEMS,
             summary="Open a recording: the reason is required before anything plays (R13)")
async def open_playback(commune: str, camera: str, body: PlaybackOpen, user: PlaybackUser,
                        gw: GatewayDep) -> PlaybackView:
    row = await recorded_camera(gw, user, commune, camera, body.at)
    view_id = uuid.uuid4()
    await gw.pool.execute(
        "INSERT INTO playback_views (id, user_id, username, camera_id, category, reason, "
        "reference, post) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)", view_id, user.id,
        user.username, row["id"], body.category, body.reason, body.reference, user.post)
    return PlaybackView(id=str(view_id), commune=commune, camera=camera, category=body.category,
                        at=body.at, media=f"/api/playback/{view_id}/media")


async def _view(gw: Gateway, user_id: int, view_id: uuid.UUID) -> asyncpg.Record:
    view = await gw.pool.fetchrow(
        "SELECT v.*, c.commune, c.slug, c.state FROM playback_views v "
        "JOIN cameras c ON c.id = v.camera_id WHERE v.id = $1 AND v.user_id = $2",
        view_id, user_id)
    if view is None:
        raise NotFound("no such playback view of yours", code="playback.not_found")
    if view["closed_at"] is not None:
        raise Refusal("this playback view has ended: open a new one with its reason",
                      code="playback.ended", kind="conflict")
    return view


@router.get("/api/playback/{view_id}/media", response_class=Response,
            summary="The recorded segment containing a time (fragmented MP4; X-Segment-Start, "
            "X-Segment-End, X-Next-At headers)",
            responses={**PROBLEMS, 200: {"content": {"video/mp4": {}},
                                         "description": "One segment"}})
async def media(view_id: uuid.UUID, user: UserDep, gw: GatewayDep,
                at: Annotated[AwareDatetime, Query(description="ISO 8601 with zone")]) -> Response:
    view = await _view(gw, user.id, view_id)
    # Rights are decided again at every fetch: a hand-over can take them away mid-view.
    await allow(gw, user, "playback", commune=view["commune"], camera_state=view["state"])
    segment = await gw.pool.fetchrow(
        "SELECT * FROM segments WHERE camera_id = $1 AND start_time <= $2 AND end_time > $2",
        view["camera_id"], at)
    if segment is None:
        following = await gw.pool.fetchval(
            "SELECT min(start_time) FROM segments WHERE camera_id = $1 AND start_time > $2",
            view["camera_id"], at)
        hint = f"; the next recording starts at {following.isoformat()}" if following else ""
        raise NotFound(f"nothing recorded at {at.isoformat()}{hint}",
                       code="playback.nothing_recorded", at=at.isoformat(),
                       next=following.isoformat() if following else None)
    data = await gw.rt.require_store().get(gw.rt.buckets.recordings, segment["object_key"])
    following = await gw.pool.fetchval(
        "SELECT min(start_time) FROM segments WHERE camera_id = $1 AND start_time >= $2",
        view["camera_id"], segment["end_time"])
    await gw.pool.execute(
        "UPDATE playback_views SET last_seen_at = now(), "
        "watched_start = least(coalesce(watched_start, $2), $2), "
        "watched_end = greatest(coalesce(watched_end, $3), $3) WHERE id = $1",
        view_id, segment["start_time"], segment["end_time"])
    headers = {**NO_STORE, "X-Segment-Start": segment["start_time"].isoformat(),
               "X-Segment-End": segment["end_time"].isoformat()}
    if following is not None:
        headers["X-Next-At"] = to_milliseconds_up(following).isoformat(timespec="milliseconds")
    return Response(data, media_type="video/mp4", headers=headers)


def to_milliseconds_up(t: datetime) -> datetime:
    """Browsers keep times to the millisecond: a next-segment time of 12:00:07.254318 read as
    .254 fell in the segment before, which was served again and again (playback froze at the first
    boundary, issue 18). Rounded up, it falls in the next segment (segments outlast 1 ms)."""
    extra = t.microsecond % 1000
    return t + timedelta(microseconds=1000 - extra) if extra else t


@router.post("/api/playback/{view_id}/end", status_code=204, responses=PROBLEMS,
             summary="End a playback view: the period watched goes to the register")
async def end_playback(view_id: uuid.UUID, user: UserDep, gw: GatewayDep) -> Response:
    await _view(gw, user.id, view_id)
    await close_view(gw.pool, view_id, ended_by="viewer")
    return Response(status_code=204)
