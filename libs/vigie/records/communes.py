"""A commune joins the deployment (issue 24; R4, R25): `vigie commune create` and
POST /api/communes (a deployment administrator). One row is all it takes — its NATS subjects are
`<root>.….<commune>.…` under the streams' wildcards, its storage prefix is `<commune>/` in the
buckets, and the retention service adds its lifecycle rule at its next sweep, from the row — so
creation checks what the schema cannot say in a friendly way, writes the row and journals it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import asyncpg

from vigie.plumbing.refusals import Refusal
from vigie.records.audit_register import Entry, record
from vigie.records.legal_time import DEFAULT_TIME_ZONE

SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
MAX_RETENTION_DAYS = 30  # R4: a month at most


class CommuneError(Refusal):
    """A refused commune, with what to correct."""

    domain = "commune"


class CommuneConflict(CommuneError):
    """The record's state does not allow it now (HTTP 409)."""

    kind = "conflict"


@dataclass(frozen=True)
class NewCommune:
    slug: str
    name: str
    retention_days: int
    controller: str
    rights_contact: str
    time_zone: str = DEFAULT_TIME_ZONE


def check(new: NewCommune) -> None:
    if not SLUG.match(new.slug):
        raise CommuneError(f"{new.slug!r}: a slug is lowercase letters, digits, '-' or '_' "
                           "(it names the commune in subjects, storage keys and URLs)",
                           code="commune.slug", slug=new.slug)
    if not new.name.strip():
        raise CommuneError("the commune's name is required", code="commune.name_required")
    if not 1 <= new.retention_days <= MAX_RETENTION_DAYS:
        raise CommuneError(f"retention must be 1 to {MAX_RETENTION_DAYS} days (R4: one month at "
                           f"most), not {new.retention_days}",
                           code="commune.retention_range", days=new.retention_days,
                           max_days=MAX_RETENTION_DAYS)
    for field, label, value in (
            ("controller", "the controller (responsable du traitement)", new.controller),
            ("rights_contact", "where people exercise their rights", new.rights_contact)):
        if not value.strip():
            raise CommuneError(f"{label} is required: the public register names it (R25)",
                               code="commune.required", field=field)
    try:
        ZoneInfo(new.time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise CommuneError(f"{new.time_zone!r} is not a time zone (Europe/Paris, "
                           "America/Cayenne…)",
                           code="commune.time_zone", zone=new.time_zone) from None


async def create_commune(conn: asyncpg.Connection, new: NewCommune, *, by: str) -> None:
    """Checked (CommuneError), written and journaled in the caller's transaction."""
    check(new)
    if await conn.fetchval("SELECT 1 FROM communes WHERE slug = $1", new.slug):
        raise CommuneConflict(f"the slug {new.slug!r} is already used by a commune",
                              code="commune.slug_taken", slug=new.slug)
    await conn.execute(
        "INSERT INTO communes (slug, name, retention_days, time_zone, controller, rights_contact, "
        "created_by) VALUES ($1, $2, $3, $4, $5, $6, $7)", new.slug, new.name.strip(),
        new.retention_days, new.time_zone, new.controller.strip(), new.rights_contact.strip(),
        by)
    await record(conn, Entry(actor=by, action="commune.created", commune=new.slug,
                             details={"name": new.name.strip(),
                                      "retention_days": new.retention_days,
                                      "time_zone": new.time_zone}))


async def change_identity(conn: asyncpg.Connection, slug: str, *, by: str, reason: str = "",
                          name: str | None = None, controller: str | None = None,
                          rights_contact: str | None = None) -> dict[str, dict[str, str]]:
    """Change what the public register says of the commune — its name, its controller (a new
    mayor), where people exercise their rights (R25) — in the caller's transaction, journaled with
    each value before and after. Returns the changes (none: nothing written)."""
    asked = {"name": name, "controller": controller, "rights_contact": rights_contact}
    asked = {k: v.strip() for k, v in asked.items() if v is not None}
    if not asked:
        raise CommuneError("say what changes: the name, the controller or the rights contact",
                           code="commune.nothing_changed")
    for field, value in asked.items():
        if not value:
            raise CommuneError(f"{field.replace('_', ' ')} cannot be emptied: the public register "
                               "names it (R25)", code="commune.required", field=field)
    row = await conn.fetchrow("SELECT name, controller, rights_contact FROM communes "
                              "WHERE slug = $1 FOR UPDATE", slug)
    if row is None:
        raise CommuneError(f"no commune {slug}", code="commune.unknown", commune=slug)
    changes = {k: {"from": row[k], "to": v} for k, v in asked.items() if row[k] != v}
    if changes:
        # One statement over fixed column names (the keys above, never user text).
        sets = ", ".join(f"{k} = ${i}" for i, k in enumerate(changes, start=2))
        await conn.execute(f"UPDATE communes SET {sets} WHERE slug = $1", slug,
                           *(c["to"] for c in changes.values()))
        await record(conn, Entry(actor=by, action="commune.identity_changed", commune=slug,
                                 reason=reason.strip() or None, details=changes))
    return changes


async def change_retention(conn: asyncpg.Connection, slug: str, days: int, *, by: str,
                           reason: str = "") -> int:
    """Set how many days the commune's recordings are kept (R4: 1 to 30; within its
    authorisation's bounds, R5, which the database's trigger checks), in the caller's
    transaction, journaled with the value before and after. The command line and the API both
    change it here (issue 37: they had drifted apart). Returns the days before."""
    if not 1 <= days <= MAX_RETENTION_DAYS:
        raise CommuneError(f"retention must be 1 to {MAX_RETENTION_DAYS} days (R4: one month at "
                           f"most), not {days}",
                           code="commune.retention_range", days=days, max_days=MAX_RETENTION_DAYS)
    if not by.strip():
        raise CommuneError("say who decided the change", code="commune.decided_by_required")
    before = await conn.fetchval("SELECT retention_days FROM communes WHERE slug = $1 "
                                 "FOR UPDATE", slug)
    if before is None:
        raise CommuneError(f"unknown commune {slug!r}", code="commune.unknown", commune=slug)
    try:
        async with conn.transaction():  # a savepoint: a refusal leaves the caller's open
            await conn.execute("UPDATE communes SET retention_days = $2 WHERE slug = $1",
                               slug, days)
    except asyncpg.CheckViolationError as exc:  # an authorisation's bounds (R5)
        raise CommuneError(exc.message,
                           code="commune.retention_outside_authorisation",
                           reason=exc.message) from None
    await record(conn, Entry(actor=by.strip(), action="commune.retention_changed", commune=slug,
                             reason=reason.strip() or None,
                             details={"from_days": before, "to_days": days}))
    return int(before)
