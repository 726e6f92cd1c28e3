"""The public register of cameras (R25): no sign-in, a stable address per commune, as a French
page, CSV and GeoJSON — nothing internal (vigie.records.public_register)."""

from __future__ import annotations

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
            responses={**PROBLEMS, 200: {"content": {"text/html": {}}, "description": "page"}})
async def page(commune: str, gw: GatewayDep) -> Response:
    return HTMLResponse(as_html(await _register(gw, commune)), headers=CACHE)


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
