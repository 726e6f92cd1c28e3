"""Communes: retention, municipal-police hours and their exceptions, the hand-over state and the
supervisor's manual switch (R4, R27, R28)."""

from __future__ import annotations

import json
from dataclasses import replace

from fastapi import APIRouter
from vigie.plumbing.refusals import NotFound, Refusal
from vigie.records.audit_register import Entry, record
from vigie.records.authorisations import (
    NewAuthorisation,
    attach,
    create,
    handover_allowed,
    list_authorisations,
    set_handover_profile,
    unauthorised_cameras,
)
from vigie.records.communes import (
    NewCommune,
    change_identity,
    change_retention,
    create_commune,
)
from vigie.records.purposes import PURPOSES
from vigie.records.road_signs import NewSign, add_sign, remove_sign, signs_and_coverage

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
    AuthorisationAttach,
    AuthorisationCreate,
    AuthorisationsView,
    AuthorisationView,
    CommuneCreate,
    CommuneIdentityChange,
    CommuneView,
    HandoverEnd,
    HandoverExceptionRequest,
    HandoverProfile,
    HandoverSwitchRequest,
    HandoverView,
    HoursChange,
    RetentionChange,
    SignCreate,
    SignRemoval,
    SignsView,
)
from services.viewer_gateway.handlers import NO_HANDOVER, current_state
from services.viewer_gateway.handover import WeeklyHours

router = APIRouter(prefix="/api/communes", tags=["communes"])


async def _commune(gw: GatewayDep, user: UserDep, commune: str) -> CommuneView:
    row = await gw.pool.fetchrow("SELECT * FROM communes WHERE slug = $1", commune)
    if row is None or commune not in user.communes:
        raise NotFound(f"no commune {commune} among yours",
                       code="commune.not_yours", commune=commune)
    state = await current_state(gw.pool, commune)
    reference = await gw.pool.fetchval("SELECT reference FROM authorisations WHERE id = $1",
                                       row["handover_authorisation_id"])
    return CommuneView(slug=row["slug"], name=row["name"], retention_days=row["retention_days"],
                       time_zone=row["time_zone"], police_hours=json.loads(row["police_hours"]),
                       handover=HandoverView(commune=commune, holder=state.holder, by=state.by,
                                             until=state.until, reason=state.reason),
                       handover_authorisation=reference,
                       coordination_convention=row["coordination_convention"],
                       controller=row["controller"], rights_contact=row["rights_contact"])


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
        await create_commune(conn, NewCommune(
            slug=body.slug, name=body.name, retention_days=body.retention_days,
            controller=body.controller, rights_contact=body.rights_contact,
            time_zone=body.time_zone), by=user.username)
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
        await change_retention(conn, commune, body.days, by=user.username,
                               reason=body.reason or "")
    return await _commune(gw, user, commune)


@router.put("/{commune}/identity", summary="R25: the commune's name, controller or rights "
            "contact as the public register shows them", responses=PROBLEMS)
async def set_identity(commune: str, body: CommuneIdentityChange, user: ConfigurationUser,
                       gw: GatewayDep) -> CommuneView:
    await _commune(gw, user, commune)
    await allow(gw, user, "configuration", commune=commune)
    async with gw.pool.acquire() as conn, conn.transaction():
        await change_identity(conn, commune, by=user.username, reason=body.reason,
                              name=body.name, controller=body.controller,
                              rights_contact=body.rights_contact)
    return await _commune(gw, user, commune)


@router.put("/{commune}/hours", summary="Weekly municipal-police hours (hand-over schedule)",
            responses=PROBLEMS)
async def set_hours(commune: str, body: HoursChange, user: ConfigurationUser,
                    gw: GatewayDep) -> CommuneView:
    await _commune(gw, user, commune)
    WeeklyHours.parse(body.police_hours)  # a HoursError: a 400 with its code
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
        raise Refusal("the exception ends before it starts", code="period.ends_before_start")
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
    if body.holder == "national_police" and not await handover_allowed(gw.pool, commune):
        raise Refusal(NO_HANDOVER, code="handover.unavailable", kind="conflict")
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
            raise Refusal("no manual switch is in force",
                          code="handover.no_manual_switch", kind="conflict")
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
    await add_sign(gw.pool, NewSign(
        commune=commune, place=body.place, installed_on=body.installed_on,
        cameras=list(dict.fromkeys(body.cameras)), pictogram=body.pictogram,
        controller=body.controller, purposes=body.purposes, rights=body.rights,
        cnil_complaint=body.cnil_complaint, verbalisation=body.verbalisation,
        latitude=body.latitude, longitude=body.longitude), by=user.username)
    return SignsView(**await signs_and_coverage(gw.pool, commune))


@router.post("/{commune}/signs/{sign_id}/removal", summary="R26: a sign taken down — its "
             "cameras are flagged again unless another complete sign covers them",
             responses=PROBLEMS)
async def post_sign_removal(commune: str, sign_id: int, body: SignRemoval,
                            user: ConfigurationUser, gw: GatewayDep) -> SignsView:
    await _commune(gw, user, commune)
    await allow(gw, user, "configuration", commune=commune)
    await remove_sign(gw.pool, commune, sign_id, removed_on=body.removed_on,
                      reason=body.reason, by=user.username)
    return SignsView(**await signs_and_coverage(gw.pool, commune))


async def _authorisations(gw: GatewayDep, commune: str) -> AuthorisationsView:
    return AuthorisationsView(
        authorisations=[AuthorisationView(**a) for a in await list_authorisations(gw.pool,
                                                                                    commune)],
        unauthorised=[{k: (str(v) if v is not None else None) for k, v in r.items()}
                      for r in await unauthorised_cameras(gw.pool, [commune])],
        below_norms=[dict(r) for r in await gw.pool.fetch(
            "SELECT c.slug, c.name, h.below_norms AS measured FROM cameras c "
            "JOIN camera_health h ON h.camera_id = c.id WHERE c.commune = $1 "
            "AND c.state = 'active' AND h.below_norms IS NOT NULL ORDER BY c.slug", commune)],
        purposes_allowed=list(PURPOSES))


@router.get("/{commune}/authorisations", summary="R3: the prefectoral authorisations, their "
            "cameras and warnings, and the cameras without a valid one", responses=PROBLEMS)
async def get_authorisations(commune: str, user: ConfigurationUser,
                             gw: GatewayDep) -> AuthorisationsView:
    await _commune(gw, user, commune)
    await allow(gw, user, "configuration", commune=commune)
    return await _authorisations(gw, commune)


@router.post("/{commune}/authorisations", status_code=201, summary="Record a prefectoral order "
             "(never edited: a renewal is a new record) and attach cameras", responses=PROBLEMS)
async def post_authorisation(commune: str, body: AuthorisationCreate, user: ConfigurationUser,
                             gw: GatewayDep) -> AuthorisationsView:
    await _commune(gw, user, commune)
    await allow(gw, user, "configuration", commune=commune)
    await create(gw.pool, NewAuthorisation(
        commune=commune, reference=body.reference, granted_on=body.granted_on,
        valid_until=body.valid_until, purposes=body.purposes, recipients=list(body.recipients),
        other_recipients=body.other_recipients, retention_min_days=body.retention_min_days,
        retention_max_days=body.retention_max_days,
        cameras=list(dict.fromkeys(body.cameras))), by=user.username)
    return await _authorisations(gw, commune)


@router.post("/{commune}/authorisations/{authorisation_id}/cameras", summary="Attach cameras to "
             "an authorisation (a renewal: to the new order)", responses=PROBLEMS)
async def attach_cameras(commune: str, authorisation_id: int, body: AuthorisationAttach,
                         user: ConfigurationUser, gw: GatewayDep) -> AuthorisationsView:
    await _commune(gw, user, commune)
    await allow(gw, user, "configuration", commune=commune)
    await attach(gw.pool, commune, authorisation_id, list(dict.fromkeys(body.cameras)),
                 by=user.username)
    return await _authorisations(gw, commune)


@router.put("/{commune}/handover/profile", summary="R27, R28: the authorisation naming the "
            "national police and the coordination convention the hand-over rests on",
            responses=PROBLEMS)
async def put_handover_profile(commune: str, body: HandoverProfile, user: ConfigurationUser,
                               gw: GatewayDep) -> CommuneView:
    await _commune(gw, user, commune)
    await allow(gw, user, "configuration", commune=commune)
    await set_handover_profile(gw.pool, commune, authorisation=body.authorisation_id,
                               convention=body.coordination_convention, by=user.username)
    await gw.handover.evaluate(commune, actor=user.username)
    return await _commune(gw, user, commune)
