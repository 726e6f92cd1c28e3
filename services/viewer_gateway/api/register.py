"""The register for auditors (R14): search by user, camera, action and period; CSV export for the
CNIL; the chain's verification. Reading it is itself recorded."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Literal

import asyncpg
from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, Response
from vigie.plumbing.refusals import NotFound, Refusal
from vigie.records import legal_time
from vigie.records.announced_keys import register_keys
from vigie.records.audit_register import Entry, record, verify
from vigie.records.processing_record import as_html as processing_html
from vigie.records.processing_record import measures_in_force, processing_record
from vigie.records.recordings_register import recordings_register, to_csv
from vigie.records.spreadsheet import to_csv as to_spreadsheet
from vigie.records.spreadsheet import when

from services.viewer_gateway.api.deps import PROBLEMS, AuditUser, GatewayDep, allow
from services.viewer_gateway.api.models import (
    LINE_CHARS,
    RegisterPage,
    RegisterRow,
    VerificationView,
)
from services.viewer_gateway.auth import User

router = APIRouter(prefix="/api/register", tags=["register"])
Filter = Annotated[str | None, Query(max_length=200, pattern=rf"^{LINE_CHARS}*$")]

SEARCH_SQL = """
SELECT * FROM audit_log
WHERE (commune = ANY($1)
       -- A row of no commune (a login, a search) is shown where its author's accounts belong
       -- wholly to the auditor's communes (R9); anything else is the deployment's DPO's.
       OR (commune IS NULL AND EXISTS (
           SELECT 1 FROM users u WHERE u.username = audit_log.actor
           AND cardinality(u.communes) > 0 AND u.communes <@ $1::text[])))
  AND ($2::text IS NULL OR actor = $2)
  AND ($3::text IS NULL OR $3 = ANY(cameras))
  AND ($4::text IS NULL OR action = $4)
  AND ($5::timestamptz IS NULL OR at >= $5)
  AND ($6::timestamptz IS NULL OR at < $6)
  AND ($7::bigint IS NULL OR id < $7)
ORDER BY id DESC
LIMIT $8
"""


async def _search(gw: GatewayDep, user: User, *, actor: str | None, camera: str | None,
                  action: str | None, start: datetime | None, end: datetime | None,
                  before_id: int | None, limit: int) -> list[asyncpg.Record]:
    for t in (start, end):
        if t is not None and t.tzinfo is None:
            raise Refusal("start and end need a time zone (…Z or …+01:00)", code="period.no_offset")
    return await gw.pool.fetch(SEARCH_SQL, list(user.communes), actor, camera, action, start, end,
                               before_id, limit)


def _row(r: asyncpg.Record) -> RegisterRow:
    return RegisterRow(id=r["id"], at=r["at"], actor=r["actor"], action=r["action"],
                       commune=r["commune"], cameras=list(r["cameras"]),
                       period_start=r["period_start"], period_end=r["period_end"],
                       reason=r["reason"], recipients=r["recipients"], outcome=r["outcome"],
                       details=json.loads(r["details"]))


@router.get("", summary="Search the register (newest first)", responses=PROBLEMS)
async def search(user: AuditUser, gw: GatewayDep, actor: Filter = None, camera: Filter = None,
                 action: Filter = None, start: datetime | None = None, end: datetime | None = None,
                 before_id: Annotated[int | None, Query(ge=1, le=2**62)] = None,
                 limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> RegisterPage:
    rows = await _search(gw, user, actor=actor, camera=camera, action=action, start=start,
                         end=end, before_id=before_id, limit=limit + 1)
    return RegisterPage(rows=[_row(r) for r in rows[:limit]], more=len(rows) > limit)


FRENCH_HEADERS = ["N°", "Date (heure légale de la commune)", "Agent", "Action", "Commune", "Caméras",
                  "Début de la période", "Fin de la période", "Motif", "Destinataires",
                  "Résultat", "Détails", "Empreinte"]
ENGLISH_HEADERS = ["id", "at", "actor", "action", "commune", "cameras", "period_start",
                   "period_end", "reason", "recipients", "outcome", "details", "hash"]


def _csv(rows: list[asyncpg.Record], *, french: bool, zones: dict[str, str]) -> str:
    """RFC 4180 with ISO 8601 UTC times, or the French convention a French spreadsheet opens as
    is: semicolons, a byte-order mark, French headers, each row's time to the second in its
    commune's legal time (Paris's for a row of no commune; issues 18, 37)."""
    def at(moment: datetime | None, commune: str | None) -> str:
        return when(moment, french=french, time_zone=legal_time.zone_of(zones, commune))

    return to_spreadsheet(FRENCH_HEADERS if french else ENGLISH_HEADERS, ([
        r["id"], at(r["at"], r["commune"]), r["actor"], r["action"], r["commune"],
        " ".join(r["cameras"]), at(r["period_start"], r["commune"]),
        at(r["period_end"], r["commune"]), r["reason"], r["recipients"], r["outcome"],
        r["details"], r["hash"]] for r in rows), french=french)


@router.get("/export.csv", summary="The same search as CSV, for the CNIL (at most 100,000 rows); "
            "format=fr for the French spreadsheet convention",
            response_class=Response,
            responses={**PROBLEMS, 200: {"content": {"text/csv": {}}, "description": "CSV"}})
async def export_csv(user: AuditUser, gw: GatewayDep, actor: Filter = None,
                     camera: Filter = None, action: Filter = None,
                     start: datetime | None = None, end: datetime | None = None,
                     format: Literal["rfc4180", "fr"] = "rfc4180") -> Response:  # noqa: A002
    rows = await _search(gw, user, actor=actor, camera=camera, action=action, start=start,
                         end=end, before_id=None, limit=100_000)
    text = _csv(rows, french=format == "fr",
                zones=await legal_time.time_zones(gw.pool, list(user.communes)))
    await record(gw.pool, Entry(actor=user.username, action="register.exported",
                                details={"rows": len(rows), "actor": actor, "camera": camera,
                                         "action": action, "start": start, "end": end,
                                         "format": format}))
    return Response(text, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="registre.csv"',
                             "Cache-Control": "no-store"})


@router.get("/recordings.csv", summary="R16: the register of recordings — kept, destroyed, held "
            "and transmitted periods per camera; format=fr for a French spreadsheet",
            response_class=Response,
            responses={**PROBLEMS, 200: {"content": {"text/csv": {}}, "description": "CSV"}})
async def recordings_csv(user: AuditUser, gw: GatewayDep, start: datetime, end: datetime,
                         format: Literal["rfc4180", "fr"] = "rfc4180") -> Response:  # noqa: A002
    if start.tzinfo is None or end.tzinfo is None:
        raise Refusal("start and end need a time zone (…Z or …+01:00)", code="period.no_offset")
    if end <= start:
        raise Refusal("the period ends before it starts", code="period.ends_before_start")
    lines = await recordings_register(gw.pool, list(user.communes), start, end)
    await record(gw.pool, Entry(actor=user.username, action="register.exported",
                                period_start=start, period_end=end,
                                details={"register": "recordings", "rows": len(lines),
                                         "format": format}))
    zones = await legal_time.time_zones(gw.pool, list(user.communes))
    return Response(to_csv(lines, french=format == "fr", zones=zones), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="enregistrements.csv"',
                             "Cache-Control": "no-store"})


@router.get("/verify", summary="Check the hash chain and the signed checkpoints",
            responses=PROBLEMS)
async def verify_chain(user: AuditUser, gw: GatewayDep) -> VerificationView:
    # The keys as the database announces them: `vigie audit verify --public-key` pins the key
    # and checks a witness's copies, which a rewritten database cannot fool.
    legacy = gw.rt.common.register_key
    async with gw.pool.acquire() as conn:
        result = await verify(conn, await register_keys(conn),
                              max_age_s=gw.settings.register_max_age_s,
                              legacy_key=legacy.get_secret_value().encode() if legacy else None)
    return VerificationView(**result.as_dict())


@router.get("/processing-record", response_class=Response,
            summary="R40: the record of processing and the impact assessment's inputs for a "
            "commune, read from the system (JSON, or a page to print)",
            responses={**PROBLEMS, 200: {"content": {"application/json": {}, "text/html": {}},
                                         "description": "the record"}})
async def get_processing_record(user: AuditUser, gw: GatewayDep, commune: str,
                                format: Literal["json", "html"] = "json",  # noqa: A002
                                ) -> Response:
    if commune not in user.communes:
        raise NotFound(f"no commune {commune} among yours",
                       code="commune.not_yours", commune=commune)
    await allow(gw, user, "register_audit", commune=commune)
    found = await processing_record(gw.pool, commune, in_force=await measures_in_force(
        gw.rt.common, gw.rt.require_store(), gw.rt.buckets.holds))
    if found is None:
        raise NotFound(f"no commune {commune} among yours",
                       code="commune.not_yours", commune=commune)
    await record(gw.pool, Entry(actor=user.username, action="register.exported",
                                commune=commune, details={"register": "processing_record",
                                                          "format": format}))
    if format == "html":
        return HTMLResponse(processing_html(found), headers={"Cache-Control": "no-store"})
    return Response(json.dumps(found, ensure_ascii=False, indent=2, default=str),
                    media_type="application/json", headers={"Cache-Control": "no-store"})
