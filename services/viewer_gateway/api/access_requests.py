"""Right of access over the API (issue 23; R20, R21, R23, R24): intake (a hold placed at once on
what the person asked for), deadline and extension, answer (copy, viewing, refusal or restriction
with grounds), closing (the hold released), and the proof-of-deletion extract for a place and a
filmed period — permission `rights_requests`, the account's communes only, every step journaled.
The redacted copy (R22) is not built yet (docs/right-of-access.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, Response
from vigie.custody import access_requests as workflow
from vigie.plumbing.bus.events import (
    AccessRequestAnswered,
    AccessRequestClosed,
    AccessRequestOpened,
    publish_event_or_log,
)
from vigie.plumbing.refusals import NotFound, Refusal
from vigie.records.audit_register import Entry, record
from vigie.records.legal_time import DEFAULT_TIME_ZONE
from vigie.records.recordings_register import to_csv

from services.viewer_gateway.api.deps import PROBLEMS, GatewayDep, RightsUser, allow, camera_row
from services.viewer_gateway.api.models import (
    AccessRequestAnswer,
    AccessRequestCreate,
    AccessRequestExtension,
    AccessRequestView,
)
from services.viewer_gateway.auth import User

router = APIRouter(prefix="/api/access-requests", tags=["right of access"])


async def _one(gw: GatewayDep, user: User, request_id: int) -> AccessRequestView:
    found = await workflow.list_requests(gw.pool, user.communes, request_id)
    if not found:
        raise NotFound(f"no access request {request_id} in your communes",
                       code="access_request.not_found", id=request_id)
    return AccessRequestView(**found[0])


async def _publish(gw: GatewayDep, event: object) -> None:
    js = gw.rt.js
    if js is not None:
        await publish_event_or_log(js, gw.rt.names, event)  # type: ignore[arg-type]


@router.get("", summary="Access requests of your communes, the most urgent first",
            responses=PROBLEMS)
async def get_requests(user: RightsUser, gw: GatewayDep) -> list[AccessRequestView]:
    return [AccessRequestView(**r) for r in await workflow.list_requests(gw.pool, user.communes)]


@router.post("", status_code=201, summary="Record a request: the period is held at once (R21)",
             responses=PROBLEMS)
async def post_request(body: AccessRequestCreate, user: RightsUser,
                       gw: GatewayDep) -> AccessRequestView:
    await allow(gw, user, "rights_requests", commune=body.commune)
    for camera in dict.fromkeys(body.cameras):
        await camera_row(gw, user, body.commune, camera)  # 404 for another commune's (R9)
    request_id = await workflow.open_request(
        gw.pool, workflow.Intake(
            commune=body.commune, requester=body.requester, contact=body.contact,
            identity_document=body.identity_document,
            identity_checked_by=body.identity_checked_by, cameras=body.cameras,
            period_start=body.period_start, period_end=body.period_end,
            description=body.description, created_by=user.username,
            received_at=body.received_at))
    view = await _one(gw, user, request_id)
    await _publish(gw, AccessRequestOpened(
        commune=view.commune, request=view.id, cameras=view.cameras,
        period_start=view.period_start, period_end=view.period_end, due_at=view.due_at))
    return view


@router.get("/deletion-proof", summary="R24: what was recorded and erased at a place over a "
            "filmed period (HTML to print, or CSV)", response_class=Response,
            responses={**PROBLEMS, 200: {"content": {"text/html": {}, "text/csv": {}},
                                         "description": "the extract"}})
async def deletion_proof(user: RightsUser, gw: GatewayDep, commune: str,
                         cameras: Annotated[str, Query(max_length=2000,
                                                       description="slugs, comma-separated")],
                         start: datetime, end: datetime,
                         format: Literal["html", "csv", "fr"] = "html") -> Response:  # noqa: A002
    if start.tzinfo is None or end.tzinfo is None:
        raise Refusal("start and end need a time zone (…Z or …+01:00)", code="period.no_offset")
    slugs = [c for c in dict.fromkeys(cameras.split(",")) if c]
    if not slugs:
        raise Refusal("cameras: at least one camera slug", code="camera.none_named")
    await allow(gw, user, "rights_requests", commune=commune)
    for camera in slugs:
        await camera_row(gw, user, commune, camera)
    lines = await workflow.deletion_proof(gw.pool, commune, slugs, start, end)
    await record(gw.pool, Entry(actor=user.username, action="register.exported",
                                commune=commune, cameras=[f"{commune}/{c}" for c in slugs],
                                period_start=start, period_end=end,
                                details={"register": "deletion_proof", "rows": len(lines),
                                         "format": format}))
    if format == "html":
        time_zone = await gw.pool.fetchval("SELECT time_zone FROM communes WHERE slug = $1",
                                           commune)
        return HTMLResponse(workflow.proof_html(lines, commune=commune, cameras=slugs,
                                                start=start, end=end, made_by=user.username,
                                                time_zone=time_zone or DEFAULT_TIME_ZONE),
                            headers={"Cache-Control": "no-store"})
    return Response(to_csv(lines, french=format == "fr"), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="effacements.csv"',
                             "Cache-Control": "no-store"})


@router.get("/{request_id}", summary="One request", responses=PROBLEMS)
async def get_request(request_id: int, user: RightsUser, gw: GatewayDep) -> AccessRequestView:
    return await _one(gw, user, request_id)


@router.post("/{request_id}/extension", summary="Extend the deadline by one or two months, "
             "with the reason told to the person", responses=PROBLEMS)
async def post_extension(request_id: int, body: AccessRequestExtension, user: RightsUser,
                         gw: GatewayDep) -> AccessRequestView:
    await _one(gw, user, request_id)
    await workflow.extend(gw.pool, request_id, months=body.months, reason=body.reason,
                          by=user.username, communes=user.communes)
    return await _one(gw, user, request_id)


@router.post("/{request_id}/answer", summary="Answer: copy, on-site viewing (booked, then done), "
             "refusal or restriction with grounds (R23)", responses=PROBLEMS)
async def post_answer(request_id: int, body: AccessRequestAnswer, user: RightsUser,
                      gw: GatewayDep) -> AccessRequestView:
    await _one(gw, user, request_id)
    done = await workflow.answer(gw.pool, request_id, kind=body.kind, by=user.username,
                                 communes=user.communes, grounds=body.grounds,
                                 viewing_at=body.viewing_at,
                                 viewing_report=body.viewing_report)
    await _publish(gw, AccessRequestAnswered(commune=done["commune"], request=request_id,
                                             answer=body.kind))
    return await _one(gw, user, request_id)


@router.post("/{request_id}/close", summary="Close the request: its hold is released",
             responses=PROBLEMS)
async def post_close(request_id: int, user: RightsUser, gw: GatewayDep) -> AccessRequestView:
    await _one(gw, user, request_id)
    commune = await workflow.close(gw.pool, request_id, by=user.username,
                                   communes=user.communes)
    await _publish(gw, AccessRequestClosed(commune=commune, request=request_id))
    return await _one(gw, user, request_id)
