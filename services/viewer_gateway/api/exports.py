"""Requisition exports over the API (issue 21; R13, R17, R18): asked here, built in the background
by the retention service (the gateway never holds the export key), downloaded here, delivery
recorded here; every step journaled with the requisition's reference."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from vigie.custody.exports.jobs import ExportRequest, approve_export, list_exports, request_export
from vigie.custody.exports.package import Requisition
from vigie.plumbing.bus.events import ExportDelivered, publish_event_or_log
from vigie.plumbing.refusals import NotFound, Refusal
from vigie.records.announced_keys import published
from vigie.records.audit_register import Entry, record

from services.viewer_gateway.api.deps import PROBLEMS, ExportUser, GatewayDep, allow, camera_row
from services.viewer_gateway.api.models import (
    ExportCreate,
    ExportDelivery,
    ExportView,
    SigningKeyView,
)
from services.viewer_gateway.auth import User

router = APIRouter(prefix="/api/exports", tags=["exports"])


async def _exports(gw: GatewayDep, user: User) -> list[ExportView]:
    return [ExportView(**e) for e in await list_exports(gw.pool, user.communes)]


async def _one(gw: GatewayDep, user: User, export_id: int) -> ExportView:
    found = [e for e in await _exports(gw, user) if e.id == export_id]
    if not found:
        raise NotFound(f"no export {export_id} in your communes",
                       code="export.not_found", id=export_id)
    await allow(gw, user, "export", commune=found[0].commune)
    return found[0]


@router.get("", summary="Exports of your communes, with their state", responses=PROBLEMS)
async def get_exports(user: ExportUser, gw: GatewayDep) -> list[ExportView]:
    return await _exports(gw, user)


@router.post("", status_code=202, summary="Ask for a requisition's export: held at once, built "
             "in the background (follow state and percent)", responses=PROBLEMS)
async def post_export(body: ExportCreate, user: ExportUser, gw: GatewayDep) -> ExportView:
    await allow(gw, user, "export", commune=body.commune)
    for camera in dict.fromkeys(body.cameras):
        row = await camera_row(gw, user, body.commune, camera)
        await allow(gw, user, "export", commune=body.commune, camera_state=row["state"])
    export_id = await request_export(gw.pool, ExportRequest(
        commune=body.commune, cameras=body.cameras, start=body.period_start,
        end=body.period_end, requisition=Requisition(
            reference=body.reference, officer=body.officer, recipient=body.recipient,
            medium=body.medium, reason=body.reason, created_by=user.username)))
    return await _one(gw, user, export_id)


@router.get("/{export_id}", summary="One export and its progress", responses=PROBLEMS)
async def get_export(export_id: int, user: ExportUser, gw: GatewayDep) -> ExportView:
    return await _one(gw, user, export_id)


@router.get("/{export_id}/download", summary="The package (ZIP), journaled",
            response_class=StreamingResponse,
            responses={**PROBLEMS, 200: {"content": {"application/zip": {}},
                                         "description": "the package"}})
async def download(export_id: int, user: ExportUser, gw: GatewayDep) -> StreamingResponse:
    export = await _one(gw, user, export_id)
    key, erased_at = await gw.pool.fetchrow(
        "SELECT object_key, erased_at FROM exports WHERE id = $1", export_id)
    if erased_at is not None:
        raise Refusal(f"the package was erased on {erased_at:%Y-%m-%d} (kept 30 days, "
                      "R6); the evidence it was made from stays under its hold",
                      code="export.erased", on=f'{erased_at:%Y-%m-%d}', kind="gone")
    if export.state != "ready" or not key:
        raise Refusal(f"the export is {export.state}: nothing to download yet",
                      code="export.not_ready", state=export.state, kind="conflict")
    store = gw.rt.require_store()
    if await store.stat(gw.rt.buckets.exports, key) is None:
        raise Refusal("the package is no longer stored (its retention has passed)",
                      code="export.not_stored", kind="gone")
    await record(gw.pool, Entry(
        actor=user.username, action="export.downloaded", commune=export.commune,
        cameras=[f"{export.commune}/{c}" for c in export.cameras],
        period_start=export.period_start, period_end=export.period_end, reason=export.reason,
        recipients=export.recipient,
        details={"export": export_id, "package": export.package, "reference": export.reference}))

    async def body() -> AsyncIterator[bytes]:
        async for block in store.stream(gw.rt.buckets.exports, key):
            yield block

    return StreamingResponse(body(), media_type="application/zip", headers={
        "Cache-Control": "no-store",
        "Content-Disposition": f'attachment; filename="{export.package}.zip"'})


@router.post("/{export_id}/approve", summary="Approve an export over the camera-hours limit "
             "(another supervisor than who asked): it is built", responses=PROBLEMS)
async def post_approve(export_id: int, user: ExportUser, gw: GatewayDep) -> ExportView:
    export = await _one(gw, user, export_id)
    for camera in export.cameras:
        row = await camera_row(gw, user, export.commune, camera)
        await allow(gw, user, "export", commune=export.commune, camera_state=row["state"])
    await approve_export(gw.pool, export_id, by=user.username)
    return await _one(gw, user, export_id)


@router.post("/{export_id}/delivery", summary="Record the package's delivery: to whom, on what",
             responses=PROBLEMS)
async def post_delivery(export_id: int, body: ExportDelivery, user: ExportUser,
                        gw: GatewayDep) -> ExportView:
    export = await _one(gw, user, export_id)
    if export.state != "ready":
        raise Refusal(f"the export is {export.state}: it cannot have been delivered",
                      code="export.not_deliverable", state=export.state, kind="conflict")
    async with gw.pool.acquire() as conn, conn.transaction():
        updated = await conn.fetchval(
            "UPDATE exports SET delivered_to = $2, delivered_medium = $3, delivered_at = now(), "
            "delivered_by = $4 WHERE id = $1 AND delivered_at IS NULL RETURNING id",
            export_id, body.delivered_to, body.medium, user.username)
        if updated is None:
            raise Refusal("the delivery is recorded already",
                          code="export.already_delivered", kind="conflict")
        await record(conn, Entry(
            actor=user.username, action="export.delivered", commune=export.commune,
            cameras=[f"{export.commune}/{c}" for c in export.cameras],
            period_start=export.period_start, period_end=export.period_end,
            reason=export.reason, recipients=body.delivered_to,
            details={"export": export_id, "package": export.package,
                     "reference": export.reference, "medium": body.medium}))
    if gw.rt.js is not None:
        await publish_event_or_log(gw.rt.js, gw.rt.names, ExportDelivered(
            commune=export.commune, export=export_id, package=export.package or "",
            reference=export.reference, delivered_to=body.delivered_to, medium=body.medium))
    return await _one(gw, user, export_id)


keys_router = APIRouter(prefix="/api/keys", tags=["exports"])


@keys_router.get("", summary="The deployment's signing keys (public halves and fingerprints): an "
                 "investigator compares a package's with these. No session needed.")
async def get_keys(gw: GatewayDep) -> list[SigningKeyView]:
    return [SigningKeyView(**k) for k in await published(gw.pool)]
