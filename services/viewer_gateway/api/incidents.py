"""Personal-data breaches over the API (R39): declared with what the CNIL's notification needs,
the 72-hour deadline shown (and evented by the retention service), the notification's content
prepared, the notification recorded — permission `register_audit` (the commune's auditor, who keeps
the CNIL's file), the account's communes only, every step journaled."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse, Response
from vigie.plumbing.bus.events import IncidentDeclared, publish_event_or_log
from vigie.plumbing.refusals import NotFound
from vigie.records import incidents

from services.viewer_gateway.api.deps import PROBLEMS, AuditUser, GatewayDep, allow
from services.viewer_gateway.api.models import IncidentCreate, IncidentNotification, IncidentView
from services.viewer_gateway.auth import User

router = APIRouter(prefix="/api/incidents", tags=["CNIL file"])


async def _one(gw: GatewayDep, user: User, incident: int) -> IncidentView:
    found = await incidents.list_incidents(gw.pool, user.communes, incident)
    if not found:
        raise NotFound(f"no incident {incident} in your communes",
                       code="incident.not_found", id=incident)
    return IncidentView(**found[0])


@router.get("", summary="Breaches of your communes, the latest deadline first",
            responses=PROBLEMS)
async def get_incidents(user: AuditUser, gw: GatewayDep) -> list[IncidentView]:
    return [IncidentView(**r) for r in await incidents.list_incidents(gw.pool, user.communes)]


@router.post("", status_code=201, summary="Declare a breach: the CNIL is notified within 72 h "
             "of its discovery (R39)", responses=PROBLEMS)
async def post_incident(body: IncidentCreate, user: AuditUser,
                        gw: GatewayDep) -> IncidentView:
    await allow(gw, user, "register_audit", commune=body.commune)
    incident = await incidents.declare(gw.pool, incidents.Declaration(
        commune=body.commune, summary=body.summary, discovered_at=body.discovered_at,
        data_concerned=body.data_concerned, people_concerned=body.people_concerned,
        measures=body.measures, risk=body.risk, consequences=body.consequences,
        no_notice_reason=body.no_notice_reason), by=user.username)
    view = await _one(gw, user, incident)
    if gw.rt.js is not None:
        await publish_event_or_log(gw.rt.js, gw.rt.names, IncidentDeclared(
            commune=view.commune, incident=view.id, risk=view.risk,  # type: ignore[arg-type]
            due_at=view.due_at))
    return view


@router.get("/{incident_id}", summary="One breach and its deadline", responses=PROBLEMS)
async def get_incident(incident_id: int, user: AuditUser, gw: GatewayDep) -> IncidentView:
    return await _one(gw, user, incident_id)


@router.get("/{incident_id}/notification", response_class=Response,
            summary="The notification's content for the CNIL, prepared from the record",
            responses={**PROBLEMS, 200: {"content": {"text/plain": {}},
                                         "description": "the text"}})
async def get_notification(incident_id: int, user: AuditUser,
                           gw: GatewayDep) -> Response:
    view = await _one(gw, user, incident_id)
    commune = await gw.pool.fetchrow("SELECT name, controller, rights_contact, time_zone "
                                     "FROM communes WHERE slug = $1", view.commune)
    return PlainTextResponse(incidents.notification_text(
        view.model_dump(), commune_name=commune["name"], controller=commune["controller"] or "",
        contact=commune["rights_contact"] or "", time_zone=commune["time_zone"]),
        headers={"Cache-Control": "no-store"})


@router.post("/{incident_id}/notified", summary="Record the notification to the CNIL (its "
             "reference)", responses=PROBLEMS)
async def post_notified(incident_id: int, body: IncidentNotification, user: AuditUser,
                        gw: GatewayDep) -> IncidentView:
    await _one(gw, user, incident_id)
    await incidents.notified(gw.pool, incident_id, reference=body.reference,
                             at=body.notified_at, by=user.username, communes=user.communes)
    return await _one(gw, user, incident_id)
