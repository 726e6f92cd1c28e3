"""Vidéo-verbalisation over the API (issue 22; R31–R34): the gateway authorises — the permission
and the hand-over (policy), the account listed with its powers, the camera's purpose, an open live
view of that camera (R31) — and forwards to the verbalisation service, which owns the offences and
their stills (request-reply on the bus): a still never exists outside VIDEO's masked frames.
Reading (lists, stills, the hand-over file) is served from the database and the evidence bucket,
every access journaled."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import nats.errors
from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import Response
from pydantic import AwareDatetime
from vigie.plumbing.refusals import NotFound, Refusal
from vigie.records.audit_register import Entry, record
from vigie.verbalisation import catalogue
from vigie.verbalisation.messages import TRAFFIC_PURPOSE, OffenceRecord, load_offence

from services.viewer_gateway.api.deps import PROBLEMS, GatewayDep, allow, camera_row, require
from services.viewer_gateway.api.live import live_view_open
from services.viewer_gateway.api.models import (
    OffenceCatalogueView,
    OffenceCreate,
    OffenceStillAdd,
    OffenceUpdate,
)
from services.viewer_gateway.auth import User

router = APIRouter(tags=["verbalisation"])
REQUEST_TIMEOUT_S = 20.0  # a capture waits for VIDEO (a few seconds) and decodes a GOP
LIST_SQL = """
SELECT o.id FROM offences o JOIN cameras c ON c.id = o.camera_id
WHERE o.commune = ANY($1::text[]) AND o.created_at >= $2 AND o.created_at < $3
  AND ($4::text IS NULL OR o.state = $4) AND ($5::text IS NULL OR c.slug = $5)
ORDER BY o.id DESC LIMIT 500
"""


async def listed_user(user: Annotated[User, Depends(require("verbalisation"))],
                      gw: GatewayDep) -> User:
    """R32: the verbalisation permission, and the account listed for it with its powers (read
    with the session, from the account's row, at every request)."""
    if user.verbalisation_power is None:
        raise Refusal("your account is not listed for vidéo-verbalisation (R32)",
                      code="verbalisation.not_listed", kind="forbidden")
    return user


VerbalisationUser = Annotated[User, Depends(listed_user)]


async def _forward(gw: GatewayDep, op: str, body: dict[str, Any]) -> dict[str, Any]:
    nc = gw.rt.nc
    if nc is None:
        raise Refusal("the gateway is not connected to NATS",
                      code="bus.unavailable", kind="unavailable")
    try:
        reply = await nc.request(gw.rt.names.verbalisation_request(op),
                                 json.dumps(body, default=str).encode(),
                                 timeout=REQUEST_TIMEOUT_S)
    except (nats.errors.TimeoutError, nats.errors.NoRespondersError):
        raise Refusal("the verbalisation service did not answer",
                      code="verbalisation.no_answer", kind="unavailable") from None
    answer: dict[str, Any] = json.loads(reply.data)
    if not answer.get("ok"):
        raise HTTPException(int(answer.get("status", 502)), str(answer.get("error")))
    return answer


async def _visible(gw: GatewayDep, user: User, offence_id: int) -> OffenceRecord:
    """An offence of the user's communes (the same 404 otherwise: R9)."""
    offence = await load_offence(gw.pool, offence_id)
    if offence is None or offence.commune not in user.communes:
        raise NotFound(f"no offence {offence_id} in your communes",
                       code="offence.not_found", id=offence_id)
    await allow(gw, user, "verbalisation", commune=offence.commune)
    return offence


@router.get("/api/offences/catalogue", summary="The offences your powers let you note (R33)",
            responses=PROBLEMS)
async def get_catalogue(user: VerbalisationUser, gw: GatewayDep) -> OffenceCatalogueView:
    power = user.verbalisation_power
    assert power is not None  # listed_user
    offences = catalogue.load(gw.settings.offences_file)
    return OffenceCatalogueView(
        year=offences.year, valid_from=offences.valid_from, natinf_note=offences.natinf_note,
        power=power, power_name=catalogue.POWER_NAMES[power],
        offences=[o.model_dump() for o in offences.allowed(power)])


@router.post("/api/cameras/{commune}/{camera}/offences", status_code=201,
             summary="Note an offence from the live image: a draft with its stills (R31, R32)",
             responses=PROBLEMS)
async def post_offence(commune: str, camera: str, body: OffenceCreate, user: VerbalisationUser,
                       gw: GatewayDep) -> OffenceRecord:
    row = await camera_row(gw, user, commune, camera)
    await allow(gw, user, "verbalisation", commune=commune, camera_state=row["state"])
    if TRAFFIC_PURPOSE not in row["purposes"]:
        raise Refusal("this camera's authorisation does not include « constatation "
                      "des infractions aux règles de la circulation » (R32)",
                      code="verbalisation.not_a_purpose", kind="forbidden")
    if not await live_view_open(gw, user.username, f"{commune}/{camera}"):
        raise Refusal("an offence is noted from the live image only: open the "
                      "camera's live view (not an instant replay, not a playback) (R31)",
                      code="verbalisation.live_only", kind="conflict")
    answer = await _forward(gw, "create", {"agent": user.username, "commune": commune,
                                           "camera": camera,
                                           "capture_times": body.capture_times})
    return OffenceRecord.model_validate(answer["offence"])


@router.post("/api/offences/{offence_id}/stills", status_code=201,
             summary="Add a still from the live image (2 or 3 per offence)", responses=PROBLEMS)
async def post_still(offence_id: int, body: OffenceStillAdd, user: VerbalisationUser,
                     gw: GatewayDep) -> OffenceRecord:
    offence = await _visible(gw, user, offence_id)
    state = await gw.pool.fetchval("SELECT state FROM cameras WHERE commune = $1 AND slug = $2",
                                   offence.commune, offence.camera)
    await allow(gw, user, "verbalisation", commune=offence.commune, camera_state=state)
    if not await live_view_open(gw, user.username, f"{offence.commune}/{offence.camera}"):
        raise Refusal("a still is taken from the live image only: open the camera's "
                      "live view (R31)",
                      code="verbalisation.still_live_only", kind="conflict")
    answer = await _forward(gw, "still", {"agent": user.username, "offence_id": offence_id,
                                          "capture_time": body.capture_time})
    return OffenceRecord.model_validate(answer["offence"])


@router.patch("/api/offences/{offence_id}",
              summary="Set the offence, the plate, or the state (ready, closed, cancelled)",
              responses=PROBLEMS)
async def patch_offence(offence_id: int, body: OffenceUpdate, user: VerbalisationUser,
                        gw: GatewayDep) -> OffenceRecord:
    await _visible(gw, user, offence_id)
    answer = await _forward(gw, "update", {"agent": user.username, "offence_id": offence_id,
                                           **body.model_dump(exclude_none=True)})
    return OffenceRecord.model_validate(answer["offence"])


@router.get("/api/offences", summary="Offences of your communes (the day's by default)",
            responses=PROBLEMS)
async def get_offences(user: VerbalisationUser, gw: GatewayDep,
                       since: Annotated[AwareDatetime | None, Query()] = None,
                       until: Annotated[AwareDatetime | None, Query()] = None,
                       state: Annotated[str | None, Query(max_length=20)] = None,
                       camera: Annotated[str | None, Query(max_length=64)] = None,
                       ) -> list[OffenceRecord]:
    now = datetime.now(UTC)
    start = since or now.replace(hour=0, minute=0, second=0, microsecond=0)
    end = until or now + timedelta(minutes=1)
    if end <= start or end - start > timedelta(days=31):
        raise Refusal("since/until: a period of at most 31 days, in order",
                      code="offence.period", days=31)
    ids = [r["id"] for r in await gw.pool.fetch(LIST_SQL, list(user.communes), start, end, state,
                                               camera)]
    return [await _visible(gw, user, i) for i in ids]


@router.get("/api/offences/{offence_id}", summary="One offence", responses=PROBLEMS)
async def get_offence(offence_id: int, user: VerbalisationUser, gw: GatewayDep) -> OffenceRecord:
    return await _visible(gw, user, offence_id)


@router.get("/api/offences/{offence_id}/stills/{n}", summary="A still (JPEG), journaled",
            response_class=Response,
            responses={**PROBLEMS, 200: {"content": {"image/jpeg": {}}, "description": "still"}})
async def get_still(offence_id: int, n: int, user: VerbalisationUser, gw: GatewayDep) -> Response:
    offence = await _visible(gw, user, offence_id)
    still = next((s for s in offence.stills if s.n == n), None)
    if still is None:
        raise NotFound(f"no still {n} of offence {offence_id}", code="offence.still_not_found")
    if still.erased:
        raise Refusal("this still was erased (R34)", code="offence.still_erased", kind="gone")
    key = f"offences/{offence.commune}/{offence_id}/{n}.jpg"
    data = await gw.rt.require_store().get(gw.rt.buckets.evidence, key)
    await record(gw.pool, Entry(actor=user.username, action="offence.still_viewed",
                                commune=offence.commune,
                                cameras=[f"{offence.commune}/{offence.camera}"],
                                details={"offence": offence_id, "still": n}))
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "no-store"})


@router.get("/api/offences/{offence_id}/handover",
            summary="The hand-over file for the PVe tool (ZIP, signed); marks it handed over",
            response_class=Response,
            responses={**PROBLEMS, 200: {"content": {"application/zip": {}},
                                         "description": "the hand-over file"}})
async def get_handover(offence_id: int, user: VerbalisationUser, gw: GatewayDep) -> Response:
    offence = await _visible(gw, user, offence_id)
    answer = await _forward(gw, "handover", {"agent": user.username, "offence_id": offence_id})
    data = await gw.rt.require_store().get(gw.rt.buckets.evidence, answer["package_key"])
    await record(gw.pool, Entry(actor=user.username, action="offence.handover_downloaded",
                                commune=offence.commune,
                                cameras=[f"{offence.commune}/{offence.camera}"],
                                recipients="outil PVe",
                                details={"offence": offence_id,
                                         "package_sha256": answer["package_sha256"]}))
    return Response(data, media_type="application/zip", headers={
        "Cache-Control": "no-store",
        "Content-Disposition": f'attachment; filename="infraction-{offence_id}.zip"'})
