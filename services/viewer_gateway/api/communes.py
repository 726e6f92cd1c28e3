"""Communes: retention, municipal-police hours and their exceptions, the hand-over state and the
supervisor's manual switch (R4, R27, R28)."""

from __future__ import annotations

import json
from dataclasses import replace

from fastapi import APIRouter, HTTPException
from vigie.communes import CommuneError, NewCommune, create_commune
from vigie.register import Entry, record
from vigie.signs import NewSign, SignError, add_sign, signs_and_coverage

from services.viewer_gateway.api.deps import (
    PROBLEMS,
    CommuneAdminUser,
    ConfigurationUser,
    GatewayDep,
    HandoverUser,
    UserDep,
    allow,
)
from services.viewer_gateway.api.models import (
    CommuneCreate,
    CommuneView,
    HandoverEnd,
    HandoverExceptionRequest,
    HandoverSwitchRequest,
    HandoverView,
    HoursChange,
    RetentionChange,
    SignCreate,
    SignsView,
)
from services.viewer_gateway.handlers import current_state
from services.viewer_gateway.handover import HoursError, WeeklyHours

router = APIRouter(prefix="/api/communes", tags=["communes"])


async def _commune(gw: GatewayDep, user: UserDep, commune: str) -> CommuneView:
    row = await gw.pool.fetchrow("SELECT * FROM communes WHERE slug = $1", commune)
    if row is None or commune not in user.communes:
        raise HTTPException(404, f"no commune {commune} among yours")
    state = await current_state(gw.pool, commune)
    return CommuneView(slug=row["slug"], name=row["name"], retention_days=row["retention_days"],
                       time_zone=row["time_zone"], police_hours=json.loads(row["police_hours"]),
                       handover=HandoverView(commune=commune, holder=state.holder, by=state.by,
                                             until=state.until, reason=state.reason))


@router.get("", summary="Your communes, with their hand-over state", responses=PROBLEMS)
async def list_communes(user: UserDep, gw: GatewayDep) -> list[CommuneView]:
    rows = await gw.pool.fetch("SELECT slug FROM communes WHERE slug = ANY($1) ORDER BY slug",
                               list(user.communes))
    return [await _commune(gw, user, r["slug"]) for r in rows]


@router.post("", status_code=201, summary="A new commune (deployment administrator): its "
             "subjects, storage prefix and lifecycle rule follow", responses=PROBLEMS)
async def post_commune(body: CommuneCreate, user: CommuneAdminUser,
                       gw: GatewayDep) -> CommuneView:
    async with gw.pool.acquire() as conn, conn.transaction():
        try:
            await create_commune(conn, NewCommune(
                slug=body.slug, name=body.name, retention_days=body.retention_days,
                controller=body.controller, rights_contact=body.rights_contact,
                time_zone=body.time_zone), by=user.username)
        except CommuneError as exc:
            raise HTTPException(409 if "already used" in str(exc) else 400, str(exc)) from None
        # The creator is designated for it, to name its first accounts (no image rights).
        await conn.execute("UPDATE users SET communes = array_append(communes, $2) "
                           "WHERE id = $1 AND NOT ($2 = ANY(communes))", user.id, body.slug)
        await record(conn, Entry(actor=user.username, action="user.communes_changed",
                                 commune=body.slug,
                                 details={"username": user.username, "added": body.slug}))
    return await _commune(gw, replace(user, communes=(*user.communes, body.slug)), body.slug)


@router.get("/{commune}", summary="One of your communes", responses=PROBLEMS)
async def get_commune(commune: str, user: UserDep, gw: GatewayDep) -> CommuneView:
    return await _commune(gw, user, commune)


@router.put("/{commune}/retention", summary="Days recordings are kept (1–30, R4)",
            responses=PROBLEMS)
async def set_retention(commune: str, body: RetentionChange, user: ConfigurationUser,
                        gw: GatewayDep) -> CommuneView:
    await _commune(gw, user, commune)
    await allow(gw, user, "configuration", commune=commune)
    async with gw.pool.acquire() as conn, conn.transaction():
        before = await conn.fetchval("SELECT retention_days FROM communes WHERE slug = $1 "
                                     "FOR UPDATE", commune)
        await conn.execute("UPDATE communes SET retention_days = $2 WHERE slug = $1", commune,
                           body.days)
        await record(conn, Entry(actor=user.username, action="commune.retention_changed",
                                 commune=commune, reason=body.reason or None,
                                 details={"from_days": before, "to_days": body.days}))
    return await _commune(gw, user, commune)


@router.put("/{commune}/hours", summary="Weekly municipal-police hours (hand-over schedule)",
            responses=PROBLEMS)
async def set_hours(commune: str, body: HoursChange, user: ConfigurationUser,
                    gw: GatewayDep) -> CommuneView:
    await _commune(gw, user, commune)
    try:
        WeeklyHours.parse(body.police_hours)
    except HoursError as exc:
        raise HTTPException(400, f"police_hours: {exc}") from None
    async with gw.handover.change(commune, actor=user.username) as conn:
        await conn.execute("UPDATE communes SET police_hours = $2::jsonb WHERE slug = $1",
                           commune, json.dumps(body.police_hours))
        await record(conn, Entry(actor=user.username, action="commune.hours_changed",
                                 commune=commune, reason=body.reason or None,
                                 details={"police_hours": body.police_hours}))
    return await _commune(gw, user, commune)


@router.post("/{commune}/handover/exceptions", status_code=201,
             summary="A dated exception to the weekly hours (a holiday, an event)",
             responses=PROBLEMS)
async def add_exception(commune: str, body: HandoverExceptionRequest, user: ConfigurationUser,
                        gw: GatewayDep) -> CommuneView:
    await _commune(gw, user, commune)
    if body.ends_at <= body.starts_at:
        raise HTTPException(400, "the exception ends before it starts")
    async with gw.handover.change(commune, actor=user.username) as conn:
        await conn.execute(
            "INSERT INTO handover_exceptions (commune, starts_at, ends_at, holder, reason, "
            "created_by) VALUES ($1, $2, $3, $4, $5, $6)", commune, body.starts_at,
            body.ends_at, body.holder, body.reason, user.username)
        await record(conn, Entry(actor=user.username, action="handover.exception_added",
                                 commune=commune, period_start=body.starts_at,
                                 period_end=body.ends_at, reason=body.reason,
                                 details={"holder": body.holder}))
    return await _commune(gw, user, commune)


@router.get("/{commune}/handover", summary="Who holds the commune's cameras now",
            responses=PROBLEMS)
async def get_handover(commune: str, user: UserDep, gw: GatewayDep) -> HandoverView:
    return (await _commune(gw, user, commune)).handover


@router.post("/{commune}/handover", summary="Switch by hand, with a reason (supervisor)",
             responses=PROBLEMS)
async def switch(commune: str, body: HandoverSwitchRequest, user: HandoverUser,
                 gw: GatewayDep) -> HandoverView:
    await _commune(gw, user, commune)
    await allow(gw, user, "handover", commune=commune)
    async with gw.handover.change(commune, actor=user.username) as conn:
        await conn.execute("UPDATE handover_switches SET ended_at = now(), ended_by = $2 "
                           "WHERE commune = $1 AND ended_at IS NULL", commune, user.username)
        await conn.execute(
            "INSERT INTO handover_switches (commune, holder, reason, switched_by, until) "
            "VALUES ($1, $2, $3, $4, $5)", commune, body.holder, body.reason, user.username,
            body.until)
        await record(conn, Entry(actor=user.username, action="handover.manual_switch",
                                 commune=commune, reason=body.reason,
                                 details={"to": body.holder, "until": body.until}))
    return (await _commune(gw, user, commune)).handover


@router.post("/{commune}/handover/end", summary="End a manual switch: back to the schedule",
             responses=PROBLEMS)
async def end_switch(commune: str, body: HandoverEnd, user: HandoverUser,
                     gw: GatewayDep) -> HandoverView:
    await _commune(gw, user, commune)
    async with gw.handover.change(commune, actor=user.username) as conn:
        ended = await conn.execute(
            "UPDATE handover_switches SET ended_at = now(), ended_by = $2 "
            "WHERE commune = $1 AND ended_at IS NULL", commune, user.username)
        if ended.endswith(" 0"):
            raise HTTPException(409, "no manual switch is in force")
        await record(conn, Entry(actor=user.username, action="handover.manual_end",
                                 commune=commune, reason=body.reason))
    return (await _commune(gw, user, commune)).handover


@router.get("/{commune}/signs", summary="R26: the commune's signs and the cameras flagged "
            "(not covered, or vidéo-verbalisation without its mention)", responses=PROBLEMS)
async def get_signs(commune: str, user: ConfigurationUser, gw: GatewayDep) -> SignsView:
    await _commune(gw, user, commune)
    await allow(gw, user, "configuration", commune=commune)
    return SignsView(**await signs_and_coverage(gw.pool, commune))


@router.post("/{commune}/signs", status_code=201, summary="Record a sign as installed, with the "
             "cameras it covers", responses=PROBLEMS)
async def post_sign(commune: str, body: SignCreate, user: ConfigurationUser,
                    gw: GatewayDep) -> SignsView:
    await _commune(gw, user, commune)
    await allow(gw, user, "configuration", commune=commune)
    try:
        await add_sign(gw.pool, NewSign(
            commune=commune, place=body.place, installed_on=body.installed_on,
            cameras=list(dict.fromkeys(body.cameras)), pictogram=body.pictogram,
            controller=body.controller, purposes=body.purposes, rights=body.rights,
            cnil_complaint=body.cnil_complaint, verbalisation=body.verbalisation,
            latitude=body.latitude, longitude=body.longitude), by=user.username)
    except SignError as exc:
        raise HTTPException(400, str(exc)) from None
    return SignsView(**await signs_and_coverage(gw.pool, commune))
