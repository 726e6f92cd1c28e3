"""R25: each commune's public register of cameras, without sign-in, as a page in French, CSV and
GeoJSON — location, purposes, controller, retention, rights contact, authorisation reference —
and nothing internal: no RTSP address (nor its credentials or host), no mask geometry."""

from __future__ import annotations

import csv
import io
import json
from datetime import date

import asyncpg
import pytest

from tests.harness import authorise
from tests.viewer_gateway.conftest import GatewayUnderTest

pytestmark = pytest.mark.integration
RTSP = "rtsp://admin:S3cret-pass@10.20.30.40:554/Streaming/Channels/101"
POINTS = [[0.123457, 0.234568], [0.345679, 0.234568], [0.345679, 0.456789]]


async def test_the_public_register_says_what_the_law_asks_and_nothing_internal_R25(
    gateway: GatewayUnderTest, db: asyncpg.Pool,
) -> None:
    await db.execute("UPDATE communes SET controller = 'le maire de Palaiseau', rights_contact = "
                     "'Mairie de Palaiseau, dpo@palaiseau.fr' WHERE slug = 'palaiseau'")
    await db.execute(
        "UPDATE cameras SET name = 'Gare RER', location = 'Place de la gare', latitude = 48.7167, "
        "longitude = 2.2458, purposes = ARRAY['régulation des flux de transport', "
        "'protection des bâtiments publics'] WHERE slug = 'gare'")
    await authorise(db, "palaiseau", ["gare"], reference="AP 2024-091-0042",
                    valid_until=date(2029, 3, 1))
    gare = await db.fetchval("SELECT id FROM cameras WHERE slug = 'gare'")
    await db.execute("INSERT INTO camera_sources (camera_id, rtsp_url) VALUES ($1, $2)", gare,
                     RTSP)
    await db.execute(
        "INSERT INTO masks (camera_id, version, document, author) VALUES ($1, 7, $2::jsonb, "
        "'x')", gare, json.dumps({"version": 7, "polygons": [
            {"label": "fenêtre", "mode": "fill", "points": POINTS}]}))
    async with gateway.client() as anonymous:
        page = await anonymous.get("/public/palaiseau/cameras")
        table = await anonymous.get("/public/palaiseau/cameras.csv")
        geo = await anonymous.get("/public/palaiseau/cameras.geojson")
        other = await anonymous.get("/public/ballainvilliers/cameras")
        unknown = await anonymous.get("/public/nowhere/cameras")
        forged = await anonymous.get("/public/<b>x</b>/cameras")
    assert page.status_code == table.status_code == geo.status_code == other.status_code == 200
    # Issue 38: a person reads the page, so its 404 is a French page, not the API's JSON.
    assert unknown.status_code == 404 and unknown.headers["content-type"].startswith("text/html")
    assert "Registre public introuvable" in unknown.text and "nowhere" in unknown.text
    assert "no commune" not in unknown.text
    assert forged.status_code == 404 and "<b>" not in forged.text  # escaped
    assert page.headers["content-type"].startswith("text/html")
    for text in ("Vidéoprotection de la commune de palaiseau", "Gare RER", "Place de la gare",
                 "régulation des flux de transport", "AP 2024-091-0042", "15 jours",
                 "le maire de Palaiseau", "dpo@palaiseau.fr", "CNIL"):
        assert text in page.text, text
    rows = list(csv.DictReader(io.StringIO(table.text), delimiter=";"))
    assert {r["camera"] for r in rows} == {"gare", "chantier"}, "not the disabled camera"
    gare_row = next(r for r in rows if r["camera"] == "gare")
    assert gare_row["autorisation_prefectorale"] == "AP 2024-091-0042"
    assert gare_row["duree_conservation_jours"] == "15" and gare_row["en_service"] == "oui"
    # Open in a spreadsheet, no typed text runs as a formula (OWASP CSV injection).
    await db.execute("UPDATE cameras SET location = '=HYPERLINK(\"http://x\")' "
                     "WHERE slug = 'chantier'")
    async with gateway.client() as anonymous:
        again = (await anonymous.get("/public/palaiseau/cameras.csv")).text
    chantier = next(r for r in csv.DictReader(io.StringIO(again), delimiter=";")
                    if r["camera"] == "chantier")
    assert chantier["lieu"] == "'=HYPERLINK(\"http://x\")"
    features = geo.json()["features"]
    assert [f["properties"]["camera"] for f in features] == ["gare"], "only those placed"
    assert features[0]["geometry"]["coordinates"] == [2.2458, 48.7167], "longitude first"
    assert "mairie" not in page.text and "mairie" in other.text, "each commune its own"
    for body in (page.text, table.text, geo.text):
        for secret in ("rtsp", "S3cret", "10.20.30.40", "Channels", "0.123457", "fenêtre",
                       "polygon", "mask"):
            assert secret not in body.lower() if secret.islower() else secret not in body, secret
