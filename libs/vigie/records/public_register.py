"""The public register of a commune's cameras (R25; issue 24): what the law asks the commune to
publish — where each camera films, for what purposes, under which prefectoral authorisation, who is
responsible, how long images are kept, where to exercise one's rights — and nothing internal: no
RTSP address (it lives in `camera_sources`, never read here), no mask geometry, no health, no
internal id. Served without sign-in as a French page, CSV and GeoJSON (open data)."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import date
from html import escape
from typing import Any

import asyncpg

from vigie.records.spreadsheet import spreadsheet_cell

# The columns read, named one by one: a new column of `cameras` is never published by accident.
CAMERAS_SQL = """
SELECT c.slug, c.name, c.location, c.latitude, c.longitude, c.purposes, ca.reference AS authorisation_ref,
       ca.valid_until AS authorisation_expires, ca.authorisation_state, c.state,
       least(coalesce(c.retention_days, m.retention_days), m.retention_days) AS retention_days
FROM cameras c JOIN communes m ON m.slug = c.commune
JOIN camera_authorisation ca ON ca.camera_id = c.id
WHERE c.commune = $1 AND c.state <> 'disabled'
ORDER BY c.name, c.slug
"""


@dataclass(frozen=True)
class Register:
    commune: str
    name: str
    controller: str
    rights_contact: str
    cameras: list[dict[str, Any]]


async def public_register(pool: asyncpg.Pool, commune: str) -> Register | None:
    row = await pool.fetchrow("SELECT slug, name, controller, rights_contact FROM communes "
                              "WHERE slug = $1", commune)
    if row is None:
        return None
    cameras = [{
        "camera": r["slug"], "name": r["name"], "location": r["location"],
        "latitude": r["latitude"], "longitude": r["longitude"],
        "purposes": list(r["purposes"]),
        "authorisation": r["authorisation_ref"] or "",
        "authorisation_expires": r["authorisation_expires"].isoformat()
        if isinstance(r["authorisation_expires"], date) else "",
        "retention_days": r["retention_days"],
        # Films only in service and under a valid authorisation (R3).
        "in_service": r["state"] == "active" and r["authorisation_state"] == "valid",
    } for r in await pool.fetch(CAMERAS_SQL, commune)]
    return Register(row["slug"], row["name"], row["controller"] or "",
                    row["rights_contact"] or "", cameras)


def as_csv(register: Register) -> str:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";")
    writer.writerow(["commune", "camera", "nom", "lieu", "latitude", "longitude", "finalites",
                     "autorisation_prefectorale", "autorisation_expire_le",
                     "duree_conservation_jours", "en_service", "responsable", "droits_aupres_de"])
    text = spreadsheet_cell  # typed text never starts a formula (coordinates stay numbers)
    for c in register.cameras:
        writer.writerow([register.commune, c["camera"], text(c["name"]), text(c["location"]),
                         "" if c["latitude"] is None else c["latitude"],
                         "" if c["longitude"] is None else c["longitude"],
                         text(" | ".join(c["purposes"])), text(c["authorisation"]),
                         c["authorisation_expires"], c["retention_days"],
                         "oui" if c["in_service"] else "non", text(register.controller),
                         text(register.rights_contact)])
    return out.getvalue()


def as_geojson(register: Register) -> str:
    """Cameras with coordinates as points (RFC 7946: longitude first); the others are listed in
    the page and the CSV."""
    features = [{
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [c["longitude"], c["latitude"]]},
        "properties": {k: v for k, v in c.items() if k not in ("latitude", "longitude")}
        | {"commune": register.commune, "controller": register.controller,
           "rights_contact": register.rights_contact},
    } for c in register.cameras if c["latitude"] is not None and c["longitude"] is not None]
    return json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False)


def as_html(register: Register) -> str:
    rows = "\n".join(
        f"<tr><td>{escape(c['name'])}</td><td>{escape(c['location'])}</td>"
        f"<td>{escape(', '.join(c['purposes']))}</td><td>{escape(c['authorisation'])}</td>"
        f"<td>{c['retention_days']} jours</td><td>{'oui' if c['in_service'] else 'non'}"
        f"</td></tr>" for c in register.cameras)
    base = f"/public/{escape(register.commune)}/cameras"
    return f"""<!doctype html>
<html lang="fr"><head><meta charset="utf-8"><title>Vidéoprotection — {escape(register.name)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font-family:sans-serif;margin:2em;max-width:70em}}table{{border-collapse:collapse;
width:100%}}td,th{{border:1px solid #999;padding:.3em .5em;text-align:left}}</style></head><body>
<h1>Vidéoprotection de la commune de {escape(register.name)}</h1>
<p>Responsable du traitement : {escape(register.controller or "—")}.<br>
Pour exercer vos droits (accès aux images vous concernant, information) :
{escape(register.rights_contact or "—")}.<br>
Vous pouvez aussi saisir la CNIL (www.cnil.fr) ou la commission départementale de
vidéoprotection.</p>
<table><thead><tr><th>Caméra</th><th>Lieu</th><th>Finalités</th>
<th>Autorisation préfectorale</th><th>Conservation</th><th>En service</th></tr></thead><tbody>
{rows or '<tr><td colspan="6">Aucune caméra.</td></tr>'}
</tbody></table>
<p>Données ouvertes : <a href="{base}.csv">CSV</a>, <a href="{base}.geojson">GeoJSON</a>.</p>
</body></html>
"""
