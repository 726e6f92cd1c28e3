"""Holds over the API (issue 8; REGULATION.md R18, R21): the same operations as `vigie hold`."""

from __future__ import annotations

from fastapi import APIRouter
from vigie.custody.holds import (
    HoldRequest,
    approve_hold,
    list_holds,
    register_hold,
    release_hold,
)
from vigie.plumbing.refusals import NotFound

from services.viewer_gateway.api.deps import PROBLEMS, GatewayDep, HoldsUser, allow
from services.viewer_gateway.api.models import HoldCreate, HoldCreated, HoldRelease, HoldView

router = APIRouter(prefix="/api/holds", tags=["holds"])


async def _holds(gw: GatewayDep, communes: tuple[str, ...]) -> list[HoldView]:
    return [HoldView(**{**h, "cameras": h["cameras"] or []}) for h in await list_holds(gw.pool)
            if h["commune"] in communes]


@router.get("", summary="Holds of your communes, with their state", responses=PROBLEMS)
async def get_holds(user: HoldsUser, gw: GatewayDep) -> list[HoldView]:
    return await _holds(gw, user.communes)


@router.post("", status_code=201, summary="Hold footage for a requisition or a right-of-access "
             "request: kept past retention at once, copied under legal hold in the background "
             "(follow copy_state); over the camera-hours limit, pending a second approval",
             responses=PROBLEMS)
async def post_hold(body: HoldCreate, user: HoldsUser, gw: GatewayDep) -> HoldCreated:
    await allow(gw, user, "holds", commune=body.commune)
    request = HoldRequest.parse({**body.model_dump(), "requested_by": user.username})
    hold_id, state = await register_hold(gw.pool, request, queue_copy=True)
    return HoldCreated(hold=await _one(gw, user, hold_id), pending=state == "pending")


async def _one(gw: GatewayDep, user: HoldsUser, hold_id: int) -> HoldView:
    found = [h for h in await _holds(gw, user.communes) if h.id == hold_id]
    if not found:
        raise NotFound(f"no hold {hold_id} in your communes", code="hold.not_found", id=hold_id)
    return found[0]


@router.post("/{hold_id}/approve", summary="Approve a pending hold (someone other than who "
             "asked): it is kept and copied from now on", responses=PROBLEMS)
async def post_approve(hold_id: int, user: HoldsUser, gw: GatewayDep) -> HoldView:
    hold = await _one(gw, user, hold_id)
    await allow(gw, user, "holds", commune=hold.commune)
    await approve_hold(gw.pool, hold_id, by=user.username, communes=user.communes)
    return await _one(gw, user, hold_id)


@router.post("/{hold_id}/release", summary="Return a hold's copies to deletion (next sweep)",
             responses=PROBLEMS)
async def post_release(hold_id: int, body: HoldRelease, user: HoldsUser,
                       gw: GatewayDep) -> HoldView:
    hold = await _one(gw, user, hold_id)
    await allow(gw, user, "holds", commune=hold.commune)
    await release_hold(gw.pool, hold_id=hold_id, released_by=user.username, reason=body.reason)
    return await _one(gw, user, hold_id)
