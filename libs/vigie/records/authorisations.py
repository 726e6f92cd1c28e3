"""Prefectoral authorisations as records (R3, R4, R5, R27, R28; issue 24): the order's reference,
date and end (five years at most, CSI L252-4), the purposes it names, its recipients and the
retention bounds it sets; cameras are attached to one. A camera without a valid one records and
shows nothing — masking reads ``camera_authorisation`` (migration 0019) at its fail-closed point —
and administrators are warned 6, 3 and 1 month before the end, then at the end, once each."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

import asyncpg

from vigie.cameras.named import named_cameras
from vigie.plumbing.refusals import NotFound, Refusal
from vigie.records.audit_register import Entry, record
from vigie.records.purposes import unknown

RECIPIENTS = ("municipal_police", "national_police", "gendarmerie", "other")
MAX_YEARS = 5
# Warnings before the end (days ahead, stage): the earliest stage whose time has come is told.
STAGES = ((30, "1_month"), (91, "3_months"), (182, "6_months"))
STAGE_NAMES = {"6_months": "dans six mois", "3_months": "dans trois mois",
               "1_month": "dans un mois", "expired": "expirée"}


class AuthorisationError(Refusal):
    """A refused authorisation or attachment, with what to correct."""

    domain = "authorisation"


@dataclass(frozen=True)
class NewAuthorisation:
    commune: str
    reference: str
    granted_on: date
    valid_until: date
    purposes: list[str]
    recipients: list[str]
    retention_max_days: int
    retention_min_days: int = 1
    other_recipients: str = ""
    cameras: list[str] = field(default_factory=list)  # slugs attached at once


def check(a: NewAuthorisation) -> None:
    """What the database also refuses, said in words an administrator can act on."""
    if not a.reference.strip():
        raise AuthorisationError("the prefectoral order's reference is required",
                                 code="authorisation.reference_required")
    if a.valid_until <= a.granted_on:
        raise AuthorisationError("an authorisation ends after it is granted",
                                 code="authorisation.ends_before_granted")
    try:
        limit = a.granted_on.replace(year=a.granted_on.year + MAX_YEARS)
    except ValueError:  # granted on 29 February
        limit = date(a.granted_on.year + MAX_YEARS, 3, 1)
    if a.valid_until > limit:
        raise AuthorisationError(f"an authorisation lasts five years at most (CSI L252-4): it "
                                 f"ends on {limit.isoformat()} at the latest",
                                 code="authorisation.too_long", until=limit.isoformat())
    if not a.purposes:
        raise AuthorisationError("an authorisation names at least one purpose",
                                 code="authorisation.no_purpose")
    if bad := unknown(a.purposes):
        raise AuthorisationError(f"unknown purposes {bad}: the authorised ones are listed by "
                                 "CSI L251-2 (vigie.records.purposes)",
                                 code="authorisation.unknown_purposes", purposes=", ".join(bad))
    if not a.recipients or any(r not in RECIPIENTS for r in a.recipients):
        raise AuthorisationError(f"recipients are among {', '.join(RECIPIENTS)}",
                                 code="authorisation.unknown_recipients")
    if ("other" in a.recipients) != bool(a.other_recipients.strip()):
        raise AuthorisationError("name the other recipients, and only with « other »",
                                 code="authorisation.other_recipients")
    if not 1 <= a.retention_min_days <= a.retention_max_days <= 30:
        raise AuthorisationError("retention bounds lie within 1 to 30 days, minimum first (R4)",
                                 code="authorisation.retention_bounds")


async def create(pool: asyncpg.Pool, a: NewAuthorisation, *, by: str) -> int:
    check(a)
    async with pool.acquire() as conn, conn.transaction():
        if await conn.fetchval("SELECT true FROM authorisations WHERE commune = $1 "
                               "AND reference = $2", a.commune, a.reference.strip()):
            raise AuthorisationError(f"authorisation {a.reference.strip()} is recorded already",
                                     code="authorisation.exists", reference=a.reference.strip())
        aid = int(await conn.fetchval(
            "INSERT INTO authorisations (commune, reference, granted_on, valid_until, purposes, "
            "recipients, other_recipients, retention_min_days, retention_max_days, created_by) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id", a.commune,
            a.reference.strip(), a.granted_on, a.valid_until, list(dict.fromkeys(a.purposes)),
            list(dict.fromkeys(a.recipients)), a.other_recipients.strip(),
            a.retention_min_days, a.retention_max_days, by))
        await record(conn, Entry(actor=by, action="authorisation.recorded", commune=a.commune,
                                 details={"authorisation": aid, "reference": a.reference.strip(),
                                          "granted_on": a.granted_on.isoformat(),
                                          "valid_until": a.valid_until.isoformat(),
                                          "purposes": a.purposes, "recipients": a.recipients,
                                          "retention": [a.retention_min_days,
                                                        a.retention_max_days]}))
        if a.cameras:
            await _attach(conn, a.commune, aid, a.reference.strip(), a.cameras, by=by)
    return aid


async def attach(pool: asyncpg.Pool, commune: str, authorisation: int, cameras: list[str], *,
                 by: str) -> None:
    """Attach cameras to an authorisation of their commune (a renewal: to the new order)."""
    async with pool.acquire() as conn, conn.transaction():
        reference = await conn.fetchval("SELECT reference FROM authorisations WHERE id = $1 "
                                        "AND commune = $2", authorisation, commune)
        if reference is None:
            raise NotFound(f"no authorisation {authorisation} in {commune}",
                           code="authorisation.not_found", commune=commune)
        await _attach(conn, commune, authorisation, reference, cameras, by=by)


async def _attach(conn: asyncpg.Connection, commune: str, authorisation: int, reference: str,
                  cameras: list[str], *, by: str) -> None:
    if not cameras:
        raise AuthorisationError("name at least one camera to attach",
                                 code="authorisation.no_camera")
    camera_ids = await named_cameras(conn, commune, cameras, refusal=AuthorisationError)
    for slug, camera_id in camera_ids.items():
        try:
            async with conn.transaction():
                await conn.execute("UPDATE cameras SET authorisation_id = $1 WHERE id = $2",
                                   authorisation, camera_id)
        except asyncpg.CheckViolationError as exc:  # retention bounds, purposes (trigger)
            raise AuthorisationError(f"{slug}: {exc.message}",
                                     code="authorisation.camera_refused", camera=slug,
                                     reason=exc.message) from None
    await record(conn, Entry(actor=by, action="authorisation.attached", commune=commune,
                             cameras=[f"{commune}/{c}" for c in sorted(cameras)],
                             details={"authorisation": authorisation, "reference": reference}))


LIST_SQL = """
SELECT a.*, (now() AT TIME ZONE m.time_zone)::date AS today,
       coalesce(array_agg(c.slug ORDER BY c.slug) FILTER (WHERE c.slug IS NOT NULL), '{}')
           AS cameras
FROM authorisations a JOIN communes m ON m.slug = a.commune
LEFT JOIN cameras c ON c.authorisation_id = a.id
WHERE a.commune = $1 GROUP BY a.id, m.time_zone ORDER BY a.valid_until DESC, a.id DESC
"""


def state(granted_on: date, valid_until: date, today: date) -> str:
    if today < granted_on:
        return "not_yet"
    return "expired" if today > valid_until else "valid"


def warning_stage(valid_until: date, today: date) -> str | None:
    """The warning due today for an order ending on ``valid_until`` (None: none yet)."""
    left = (valid_until - today).days
    if left < 0:
        return "expired"
    for days, stage in STAGES:
        if left <= days:
            return stage
    return None


async def list_authorisations(pool: asyncpg.Pool, commune: str) -> list[dict[str, Any]]:
    out = []
    for r in await pool.fetch(LIST_SQL, commune):
        row = {k: r[k] for k in ("id", "reference", "granted_on", "valid_until", "purposes",
                                 "recipients", "other_recipients", "retention_min_days",
                                 "retention_max_days", "created_by", "created_at", "cameras")}
        row["state"] = state(r["granted_on"], r["valid_until"], r["today"])
        row["warning"] = warning_stage(r["valid_until"], r["today"])
        row["days_left"] = (r["valid_until"] - r["today"]).days
        out.append(row)
    return out


UNAUTHORISED_SQL = """
SELECT c.commune, c.slug, ca.authorisation_state, ca.reference, ca.valid_until
FROM cameras c JOIN camera_authorisation ca ON ca.camera_id = c.id
WHERE c.state <> 'disabled' AND ca.authorisation_state <> 'valid' AND c.commune = ANY($1)
ORDER BY c.commune, c.slug
"""


async def unauthorised_cameras(pool: asyncpg.Pool, communes: list[str]) -> list[dict[str, Any]]:
    return [dict(r) for r in await pool.fetch(UNAUTHORISED_SQL, communes)]


def why_unauthorised(state: str, reference: str | None, valid_until: date | None) -> str:
    """The camera state's reason, as masking reports it and the screens show it."""
    if state == "missing":
        return "no prefectoral authorisation is attached to the camera (R3)"
    if state == "not_yet":
        return f"authorisation {reference} is not in force yet (R3)"
    return f"authorisation {reference} expired on {valid_until} (R3)"


# Authorisations with cameras attached whose next warning stage has not been told yet; the caller
# inserts the notice (once per stage, whatever the number of retention replicas) and publishes.
DUE_SQL = """
SELECT a.id, a.commune, a.reference, a.valid_until, (now() AT TIME ZONE m.time_zone)::date AS today,
       (SELECT count(*) FROM cameras c WHERE c.authorisation_id = a.id
          AND c.state <> 'disabled') AS cameras
FROM authorisations a JOIN communes m ON m.slug = a.commune
WHERE a.valid_until < (now() AT TIME ZONE m.time_zone)::date + 183
  AND EXISTS (SELECT 1 FROM cameras c WHERE c.authorisation_id = a.id AND c.state <> 'disabled')
"""


async def newly_due(pool: asyncpg.Pool) -> list[dict[str, Any]]:
    """Each authorisation's warning whose time has come and was not told: recorded as told."""
    told = []
    for r in await pool.fetch(DUE_SQL):
        stage = warning_stage(r["valid_until"], r["today"])
        if stage is None:
            continue
        inserted = await pool.fetchval(
            "INSERT INTO authorisation_notices (authorisation_id, stage) VALUES ($1, $2) "
            "ON CONFLICT DO NOTHING RETURNING true", r["id"], stage)
        if inserted:
            told.append({**dict(r), "stage": stage})
    return told


# Per commune, the earliest end of an authorisation some camera in service films under (R3):
# `vigie_authorisation_valid_until_timestamp_seconds`, for the alert a month ahead (issue 36).
EARLIEST_END_SQL = """
SELECT a.commune, min(a.valid_until) AS valid_until
FROM authorisations a
WHERE EXISTS (SELECT 1 FROM cameras c WHERE c.authorisation_id = a.id AND c.state <> 'disabled')
GROUP BY a.commune
"""


async def earliest_ends(pool: asyncpg.Pool) -> dict[str, date]:
    return {r["commune"]: r["valid_until"] for r in await pool.fetch(EARLIEST_END_SQL)}


async def handover_allowed(conn: asyncpg.Connection | asyncpg.Pool, commune: str) -> bool:
    """R27, R28: the commune's cameras go to the national police only under a hand-over profile
    naming a valid authorisation that lists them as recipients, and a coordination convention."""
    return bool(await conn.fetchval(
        "SELECT true FROM communes m JOIN authorisations a ON a.id = m.handover_authorisation_id "
        "WHERE m.slug = $1 AND m.coordination_convention IS NOT NULL "
        "AND 'national_police' = ANY (a.recipients) "
        "AND (now() AT TIME ZONE m.time_zone)::date BETWEEN a.granted_on AND a.valid_until",
        commune))


async def set_handover_profile(pool: asyncpg.Pool, commune: str, *, authorisation: int,
                               convention: str, by: str) -> None:
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow("SELECT reference, recipients FROM authorisations "
                                  "WHERE id = $1 AND commune = $2", authorisation, commune)
        if row is None:
            raise NotFound(f"no authorisation {authorisation} in {commune}",
                           code="authorisation.not_found", commune=commune)
        if "national_police" not in row["recipients"]:
            raise AuthorisationError(f"authorisation {row['reference']} does not name the "
                                     "national police as a recipient: no hand-over (R27)",
                                     code="authorisation.no_national_police",
                                     reference=row["reference"])
        if not convention.strip():
            raise AuthorisationError("the coordination convention's reference is required (R28)",
                                     code="authorisation.convention_required")
        await conn.execute("UPDATE communes SET handover_authorisation_id = $1, "
                           "coordination_convention = $2 WHERE slug = $3", authorisation,
                           convention.strip(), commune)
        await record(conn, Entry(actor=by, action="handover.profile_set", commune=commune,
                                 details={"authorisation": row["reference"],
                                          "coordination_convention": convention.strip()}))
