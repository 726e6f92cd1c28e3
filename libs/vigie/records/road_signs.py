"""The signs that inform people on site (R26; issue 24): each with its place, install date and
content, and the cameras it covers. A sign that lacks one of the mentions the law asks for does
not count as informing; a camera that no complete sign covers is flagged, and a camera that may be
used for vidéo-verbalisation needs a sign that says so too."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import asyncpg

from vigie.cameras.named import named_cameras
from vigie.plumbing.refusals import NotFound, Refusal
from vigie.records.audit_register import Entry, record
from vigie.records.purposes import TRAFFIC

MENTIONS = ("pictogram", "controller", "purposes", "rights", "cnil_complaint")


class SignError(Refusal):
    """A refused sign, with what to correct."""

    domain = "sign"


class SignConflict(SignError):
    """The record's state does not allow it now (HTTP 409)."""

    kind = "conflict"


@dataclass(frozen=True)
class NewSign:
    commune: str
    place: str
    installed_on: date
    cameras: list[str]  # slugs in the commune
    pictogram: bool
    controller: bool
    purposes: bool
    rights: bool
    cnil_complaint: bool
    verbalisation: bool = False
    latitude: float | None = None
    longitude: float | None = None


async def add_sign(pool: asyncpg.Pool, sign: NewSign, *, by: str) -> int:
    if not sign.place.strip():
        raise SignError("the sign's place is required", code="sign.place_required")
    if sign.installed_on > date.today():
        raise SignError("a sign is recorded once installed: its date cannot be in the future",
                        code="sign.installed_in_future")
    if (sign.latitude is None) != (sign.longitude is None):
        raise SignError("latitude and longitude go together", code="sign.coordinates")
    if not sign.cameras:
        raise SignError("a sign covers at least one camera", code="sign.no_camera")
    async with pool.acquire() as conn, conn.transaction():
        camera_ids = await named_cameras(conn, sign.commune, sign.cameras, refusal=SignError)
        sign_id = int(await conn.fetchval(
            "INSERT INTO signs (commune, place, latitude, longitude, installed_on, pictogram, "
            "controller, purposes, rights, cnil_complaint, verbalisation, created_by) VALUES "
            "($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id", sign.commune,
            sign.place.strip(), sign.latitude, sign.longitude, sign.installed_on,
            sign.pictogram, sign.controller, sign.purposes, sign.rights, sign.cnil_complaint,
            sign.verbalisation, by))
        await conn.executemany("INSERT INTO sign_cameras (sign_id, camera_id) VALUES ($1, $2)",
                               [(sign_id, camera_id) for camera_id in camera_ids.values()])
        missing = [m for m in MENTIONS if not getattr(sign, m)]
        await record(conn, Entry(actor=by, action="sign.added", commune=sign.commune,
                                 cameras=[f"{sign.commune}/{c}" for c in sorted(sign.cameras)],
                                 details={"sign": sign_id, "place": sign.place.strip(),
                                          "missing_mentions": missing}))
    return sign_id


SIGNS_SQL = """
SELECT s.*, coalesce(array_agg(c.slug ORDER BY c.slug) FILTER (WHERE c.slug IS NOT NULL), '{}')
       AS cameras
FROM signs s LEFT JOIN sign_cameras sc ON sc.sign_id = s.id
LEFT JOIN cameras c ON c.id = sc.camera_id
WHERE s.commune = $1 GROUP BY s.id ORDER BY s.place, s.id
"""
COVERAGE_SQL = """
SELECT c.slug, c.name, c.state, $2 = ANY(c.purposes) AS traffic,
       EXISTS (SELECT 1 FROM sign_cameras sc JOIN signs s ON s.id = sc.sign_id
               WHERE sc.camera_id = c.id AND s.removed_on IS NULL AND s.pictogram
                 AND s.controller AND s.purposes AND s.rights AND s.cnil_complaint) AS informed,
       EXISTS (SELECT 1 FROM sign_cameras sc JOIN signs s ON s.id = sc.sign_id
               WHERE sc.camera_id = c.id AND s.removed_on IS NULL AND s.verbalisation)
         AS verbalisation_sign
FROM cameras c WHERE c.commune = $1 AND c.state <> 'disabled' ORDER BY c.slug
"""


async def remove_sign(pool: asyncpg.Pool, commune: str, sign_id: int, *, removed_on: date,
                      reason: str, by: str) -> None:
    """A sign taken down: it informs no one from that day (its cameras are flagged again unless
    another complete sign covers them); the row stays, journaled."""
    if not reason.strip():
        raise SignError("say why the sign came down (damaged, moved, stolen…)",
                        code="sign.removal_reason_required")
    if removed_on > date.today():
        raise SignError("a sign is recorded as removed once it is: the date cannot be in the "
                        "future", code="sign.removed_in_future")
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow("SELECT * FROM signs WHERE id = $1 AND commune = $2 FOR UPDATE",
                                  sign_id, commune)
        if row is None:
            raise NotFound(f"no sign {sign_id} in {commune}", code="sign.not_found", id=sign_id)
        if row["removed_on"] is not None:
            raise SignConflict(f"this sign was already recorded as removed on {row['removed_on']}",
                               code="sign.already_removed", on=str(row["removed_on"]))
        if removed_on < row["installed_on"]:
            raise SignError(f"removed before it was installed ({row['installed_on']})",
                            code="sign.removed_before_installed", on=str(row["installed_on"]))
        await conn.execute("UPDATE signs SET removed_on = $2, removed_by = $3, "
                           "removal_reason = $4 WHERE id = $1", sign_id, removed_on, by,
                           reason.strip())
        cameras = await conn.fetch("SELECT c.slug FROM sign_cameras sc JOIN cameras c "
                                   "ON c.id = sc.camera_id WHERE sc.sign_id = $1 ORDER BY c.slug",
                                   sign_id)
        await record(conn, Entry(actor=by, action="sign.removed", commune=commune,
                                 cameras=[f"{commune}/{c['slug']}" for c in cameras],
                                 reason=reason.strip(),
                                 details={"sign": sign_id, "place": row["place"],
                                          "removed_on": removed_on.isoformat()}))


async def signs_and_coverage(pool: asyncpg.Pool, commune: str) -> dict[str, Any]:
    """The commune's signs (each with the mentions it lacks; those taken down too, with when and
    why) and the cameras flagged: not covered by a complete sign still up, or used for
    vidéo-verbalisation without a sign saying so."""
    signs = []
    for r in await pool.fetch(SIGNS_SQL, commune):
        row = dict(r)
        row["cameras"] = list(row["cameras"])
        row["missing_mentions"] = [m for m in MENTIONS if not row[m]]
        signs.append(row)
    flagged = []
    for c in await pool.fetch(COVERAGE_SQL, commune, TRAFFIC):
        if not c["informed"]:
            flagged.append({"camera": c["slug"], "name": c["name"],
                            "why": "no complete sign covers it (R26)"})
        elif c["traffic"] and not c["verbalisation_sign"]:
            flagged.append({"camera": c["slug"], "name": c["name"],
                            "why": "used for vidéo-verbalisation: no sign says so (R26)"})
    return {"signs": signs, "flagged": flagged}
