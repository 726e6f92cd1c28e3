"""Holds over the API (issue 8; REGULATION.md R18, R21): the same operations as `vigie hold`."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from vigie.holds import HoldError, HoldRequest, create_hold, list_holds, release_hold

from services.viewer_gateway.api.deps import PROBLEMS, GatewayDep, HoldsUser, allow
from services.viewer_gateway.api.models import (
    HoldCoverageView,
    HoldCreate,
    HoldCreated,
    HoldRelease,
    HoldView,
    MissingView,
)

router = APIRouter(prefix="/api/holds", tags=["holds"])


async def _holds(gw: GatewayDep, communes: tuple[str, ...]) -> list[HoldView]:
    return [HoldView(**{**h, "cameras": h["cameras"] or []}) for h in await list_holds(gw.pool)
            if h["commune"] in communes]


@router.get("", summary="Holds of your communes, with their state", responses=PROBLEMS)
async def get_holds(user: HoldsUser, gw: GatewayDep) -> list[HoldView]:
    return await _holds(gw, user.communes)


@router.post("", status_code=201, summary="Hold footage for a requisition or a right-of-access "
             "request: copies under legal hold, reports what was already erased", responses=PROBLEMS)
async def post_hold(body: HoldCreate, user: HoldsUser, gw: GatewayDep) -> HoldCreated:
    await allow(gw, user, "holds", commune=body.commune)
    try:
        request = HoldRequest.parse({**body.model_dump(), "requested_by": user.username})
        report = await create_hold(gw.pool, gw.rt.require_store(),
                                   recordings=gw.rt.buckets.recordings,
                                   holds=gw.rt.buckets.holds, request=request)
    except HoldError as exc:
        raise HTTPException(400, str(exc)) from None
    [hold] = [h for h in await _holds(gw, user.communes) if h.id == report.hold_id]
    return HoldCreated(hold=hold, complete=report.complete, coverage=[
        HoldCoverageView(camera=c.camera, segments_copied=c.copied, size_bytes=c.size_bytes,
                         missing=[MissingView(start=m.start, end=m.end, why=m.why)
                                  for m in c.missing]) for c in report.coverage])


@router.post("/{hold_id}/release", summary="Return a hold's copies to deletion (next sweep)",
             responses=PROBLEMS)
async def post_release(hold_id: int, body: HoldRelease, user: HoldsUser,
                       gw: GatewayDep) -> HoldView:
    found = [h for h in await _holds(gw, user.communes) if h.id == hold_id]
    if not found:
        raise HTTPException(404, f"no hold {hold_id} in your communes")
    try:
        await release_hold(gw.pool, hold_id=hold_id, released_by=user.username, reason=body.reason)
    except HoldError as exc:
        raise HTTPException(409, str(exc)) from None
    return [h for h in await _holds(gw, user.communes) if h.id == hold_id][0]
