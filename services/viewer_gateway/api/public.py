"""The public register of cameras (R25): no sign-in, a stable address per commune, as a French
page, CSV and GeoJSON — nothing internal (vigie.records.public_register)."""

from __future__ import annotations

import html

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response
from vigie.plumbing.refusals import NotFound
from vigie.records.public_register import Register, as_csv, as_geojson, as_html, public_register

from services.viewer_gateway.api.deps import PROBLEMS, GatewayDep

router = APIRouter(prefix="/public", tags=["public"])
CACHE = {"Cache-Control": "public, max-age=300"}


async def _register(gw: GatewayDep, commune: str) -> Register:
    found = await public_register(gw.pool, commune)
    if found is None:
        raise NotFound(f"no commune {commune}", code="commune.unknown", commune=commune)
    return found


@router.get("/{commune}/cameras", response_class=Response,
            summary="The commune's public register of cameras (R25), a page in French",
            responses={**PROBLEMS, 200: {"content": {"text/html": {}}, "description": "page"},
                       404: {"content": {"text/html": {}},
                             "description": "No such commune: a page in French"}})
async def page(commune: str, gw: GatewayDep) -> Response:
    try:
        register = await _register(gw, commune)
    except NotFound:
        # A person reads this page: a French page, not the API's JSON (issue 38).
        return HTMLResponse(NOT_FOUND_PAGE.format(commune=html.escape(commune)), status_code=404)
    return HTMLResponse(as_html(register), headers=CACHE)


NOT_FOUND_PAGE = """<!doctype html>
<html lang="fr"><head><meta charset="utf-8"><title>Registre public introuvable</title></head>
<body><h1>Registre public introuvable</h1>
<p>Aucune commune « {commune} » ne tient son registre public des caméras ici. Vérifiez l'adresse
indiquée sur les panneaux d'information, ou adressez-vous à la mairie.</p></body></html>
"""


@router.get("/{commune}/cameras.csv", response_class=Response, summary="The same, as CSV",
            responses={**PROBLEMS, 200: {"content": {"text/csv": {}}, "description": "CSV"}})
async def csv_file(commune: str, gw: GatewayDep) -> Response:
    return Response(as_csv(await _register(gw, commune)), media_type="text/csv; charset=utf-8",
                    headers={**CACHE, "Content-Disposition":
                             f'attachment; filename="cameras-{commune}.csv"'})


@router.get("/{commune}/cameras.geojson", response_class=Response,
            summary="The same, as GeoJSON (cameras with coordinates)",
            responses={**PROBLEMS, 200: {"content": {"application/geo+json": {}},
                                         "description": "GeoJSON"}})
async def geojson(commune: str, gw: GatewayDep) -> Response:
    return Response(as_geojson(await _register(gw, commune)),
                    media_type="application/geo+json", headers=CACHE)
