"""A post's live layout (issue 18): the size of the Direct screen's grid and the camera of each
pane, per commune and post, kept on the server so that the agent who takes the post — at any
workstation of it — finds the screens as they were left. A pane's camera is only a name: opening it
is decided by the policy like any live view."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter
from pydantic import Field
from vigie.plumbing.refusals import NotFound, Refusal

from services.viewer_gateway.api.deps import PROBLEMS, GatewayDep, LiveUser
from services.viewer_gateway.api.models import Slug, Strict
from services.viewer_gateway.auth import User

router = APIRouter(prefix="/api/views", tags=["views"])


class PostView(Strict):
    size: Annotated[int, Field(ge=1, le=4, description="1, 2 (2×2), 3 (3×3) or 4 (4×4)")]
    cameras: list[Slug | None] = Field(max_length=16, description="Pane by pane, row by row")


class SavedView(PostView):
    commune: str
    post: str
    updated_by: str | None
    updated_at: datetime | None


def _post(user: User, commune: str) -> str:
    if commune not in user.communes:
        raise NotFound(f"no commune {commune} among yours",
                       code="commune.not_yours", commune=commune)
    if not user.post:
        raise Refusal("this session has no post: sign in again giving your post",
                      code="view.no_post", kind="conflict")
    return user.post


@router.get("/{commune}", responses=PROBLEMS, summary="The layout of your session's post")
async def get_view(commune: str, user: LiveUser, gw: GatewayDep) -> SavedView:
    post = _post(user, commune)
    row = await gw.pool.fetchrow("SELECT * FROM post_views WHERE commune = $1 AND post = $2",
                                 commune, post)
    if row is None:
        return SavedView(commune=commune, post=post, size=2, cameras=[], updated_by=None,
                         updated_at=None)
    return SavedView(commune=commune, post=post, size=row["size"],
                     cameras=[c or None for c in row["cameras"]], updated_by=row["updated_by"],
                     updated_at=row["updated_at"])


@router.put("/{commune}", responses=PROBLEMS, summary="Keep the layout of your session's post")
async def put_view(commune: str, body: PostView, user: LiveUser, gw: GatewayDep) -> SavedView:
    post = _post(user, commune)
    if len(body.cameras) > body.size * body.size:
        raise Refusal(f"cameras: at most {body.size * body.size} panes in a "
                      f"{body.size}×{body.size} layout",
                      code="view.too_many_panes", panes=body.size * body.size, size=body.size,
                      kind="malformed")
    row = await gw.pool.fetchrow(
        "INSERT INTO post_views (commune, post, size, cameras, updated_by) VALUES ($1, $2, $3, "
        "$4, $5) ON CONFLICT (commune, post) DO UPDATE SET size = EXCLUDED.size, cameras = "
        "EXCLUDED.cameras, updated_by = EXCLUDED.updated_by, updated_at = now() RETURNING *",
        commune, post, body.size, [c or "" for c in body.cameras], user.username)
    return SavedView(commune=commune, post=post, size=row["size"],
                     cameras=[c or None for c in row["cameras"]], updated_by=row["updated_by"],
                     updated_at=row["updated_at"])
