"""Bookmarks (issue 18): an instant of a camera's recording marked with a label while watching;
journaled (R12), searchable by camera, period and words, and the starting point of a requisition
export later. Reading and writing them needs the playback right on the camera's commune."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import AwareDatetime, BaseModel
from vigie.plumbing.refusals import Refusal
from vigie.records.audit_register import Entry, record

from services.viewer_gateway.api.deps import PROBLEMS, GatewayDep, PlaybackUser
from services.viewer_gateway.api.models import LINE_CHARS, Required, Strict
from services.viewer_gateway.api.playback import recorded_camera

router = APIRouter(tags=["bookmarks"])
Filter = Annotated[str | None, Query(max_length=200, pattern=rf"^{LINE_CHARS}*$")]


class BookmarkCreate(Strict):
    at: AwareDatetime
    label: Required


class BookmarkView(BaseModel):
    id: int
    commune: str
    camera: str
    camera_name: str
    at: datetime
    label: str
    author: str
    post: str
    created_at: datetime


def _view(row: dict) -> BookmarkView:  # type: ignore[type-arg]
    return BookmarkView(id=row["id"], commune=row["commune"], camera=row["slug"],
                        camera_name=row["name"], at=row["at"], label=row["label"],
                        author=row["author"], post=row["post"], created_at=row["created_at"])


@router.post("/api/cameras/{commune}/{camera}/bookmarks", status_code=201, responses=PROBLEMS,
             summary="Mark an instant of the camera's recording (journaled)")
async def create(commune: str, camera: str, body: BookmarkCreate, user: PlaybackUser,
                 gw: GatewayDep) -> BookmarkView:
    row = await recorded_camera(gw, user, commune, camera, body.at)
    if len(body.label) > 200:
        raise Refusal("label: at most 200 characters",
                      code="bookmark.label_too_long", characters=200, kind="malformed")
    async with gw.pool.acquire() as conn, conn.transaction():
        mark = await conn.fetchrow(
            "INSERT INTO bookmarks (camera_id, at, label, author, post) VALUES ($1, $2, $3, $4, "
            "$5) RETURNING *", row["id"], body.at, body.label, user.username, user.post or "")
        await record(conn, Entry(actor=user.username, action="bookmark.created", commune=commune,
                                 cameras=[f"{commune}/{camera}"], period_start=body.at,
                                 details={"bookmark": mark["id"], "label": body.label,
                                          "post": user.post}))
    return _view({**mark, "commune": commune, "slug": camera, "name": row["name"]})


@router.get("/api/bookmarks", responses=PROBLEMS,
            summary="Bookmarks of your communes: by commune, camera, period and words")
async def search(user: PlaybackUser, gw: GatewayDep, commune: Filter = None,
                 camera: Filter = None, q: Filter = None, start: AwareDatetime | None = None,
                 end: AwareDatetime | None = None,
                 limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> list[BookmarkView]:
    communes = [c for c in user.communes if commune in (None, c)]
    rows = await gw.pool.fetch(
        "SELECT b.*, c.commune, c.slug, c.name FROM bookmarks b JOIN cameras c "
        "ON c.id = b.camera_id WHERE c.commune = ANY($1) AND ($2::text IS NULL OR c.slug = $2) "
        "AND ($3::text IS NULL OR b.label ILIKE '%' || $3 || '%' OR b.author = $3) "
        "AND ($4::timestamptz IS NULL OR b.at >= $4) AND ($5::timestamptz IS NULL OR b.at < $5) "
        "ORDER BY b.at DESC LIMIT $6", communes, camera, q, start, end, limit)
    return [_view(dict(r)) for r in rows]
