"""Offence records and their stills (docs/verbalisation.md): draft → ready → handed over → closed,
or cancelled with a reason. Every step is journaled in the register (R12) — without the plate,
which stays in the record; the stills are erased at hand-over plus a delay, at once for a
cancelled offence, and never kept past a month from their capture (R34)."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from vigie.plumbing.storage.objects import ObjectStore
from vigie.records.audit_register import Entry, record
from vigie.verbalisation import catalogue, plates
from vigie.verbalisation.messages import (
    MAX_STILLS,
    OFFENCE_SQL,
    TRAFFIC_PURPOSE,
    CreateRequest,
    OffenceRecord,
    Refused,
    StillRequest,
    UpdateRequest,
    load_offence,
)

from services.verbalisation.capture import StillPicture

# Takes a still of (commune, camera, instant, camera name, place).
Capture = Callable[[str, str, datetime, str, str], Awaitable[StillPicture]]

AGENT_SQL = """
SELECT username, agent_number, verbalisation_power, disabled, communes
FROM users WHERE username = $1
"""
CAMERA_SQL = """
SELECT id, slug, name, location, state, purposes FROM cameras WHERE commune = $1 AND slug = $2
"""


@dataclass(frozen=True)
class Rules:
    capture_window_s: float  # how far behind now a capture may be (R31: the live image only)
    future_tolerance_s: float  # clocks differ a little between the browser and the servers
    keep_after_handover: timedelta
    keep_at_most: timedelta  # the arrêté of 14 April 2009: a month


@dataclass(frozen=True)
class Agent:
    username: str
    number: str
    power: catalogue.Power


async def agent_of(conn: asyncpg.Connection | asyncpg.Pool, username: str,
                   commune: str | None = None) -> Agent:
    row = await conn.fetchrow(AGENT_SQL, username)
    if row is None or row["disabled"]:
        raise Refused(403, "unknown or disabled account")
    if row["verbalisation_power"] is None:
        raise Refused(403, "your account is not listed for vidéo-verbalisation (R32)")
    if not row["agent_number"]:
        raise Refused(403, "your account has no agent number: an offence names its agent (R34)")
    if commune is not None and commune not in row["communes"]:
        raise Refused(404, f"no camera of {commune} in your communes")
    return Agent(row["username"], row["agent_number"], row["verbalisation_power"])


def check_capture_time(at: datetime, rules: Rules, now: datetime | None = None) -> None:
    """R31: from the live image only — a moment ago, never a recording's time."""
    now = now or datetime.now(UTC)
    age = (now - at).total_seconds()
    if age < -rules.future_tolerance_s:
        raise Refused(422, "the capture time is in the future")
    if age > rules.capture_window_s:
        raise Refused(422, f"the capture time is {age:.0f} s old: an offence is noted from the "
                      f"live image only, within {rules.capture_window_s:.0f} s (R31); never from "
                      "a recording or an instant replay")


async def _store_still(conn: asyncpg.Connection, store: ObjectStore, bucket: str, *,
                       offence_id: int, commune: str, n: int, still: StillPicture) -> None:
    key = f"offences/{commune}/{offence_id}/{n}.jpg"
    digest = hashlib.sha256(still.jpeg).hexdigest()
    await store.put(bucket, key, still.jpeg, content_type="image/jpeg",
                    metadata={"sha256": digest, "mask-version": str(still.mask_version)})
    await conn.execute(
        "INSERT INTO offence_stills (offence_id, n, capture_time, object_key, sha256, width, "
        "height, size_bytes, mask_version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        offence_id, n, still.capture_time, key, digest, still.width, still.height,
        len(still.jpeg), still.mask_version)


async def create(pool: asyncpg.Pool, store: ObjectStore, bucket: str, capture: Capture,
                 rules: Rules, request: CreateRequest) -> OffenceRecord:
    for at in request.capture_times:
        check_capture_time(at, rules)
    agent = await agent_of(pool, request.agent, request.commune)
    camera = await pool.fetchrow(CAMERA_SQL, request.commune, request.camera)
    if camera is None:
        raise Refused(404, f"no camera {request.commune}/{request.camera}")
    if TRAFFIC_PURPOSE not in camera["purposes"]:
        raise Refused(403, "this camera's authorisation does not include « constatation des "
                      "infractions aux règles de la circulation » (R32)")
    if camera["state"] != "active":
        raise Refused(409, "the camera is not in service")
    # The pictures first (they may take a second): nothing is written if one cannot be made.
    stills = [await capture(request.commune, request.camera, at, camera["name"],
                            camera["location"]) for at in sorted(request.capture_times)]
    first = min(s.capture_time for s in stills)
    async with pool.acquire() as conn, conn.transaction():
        offence_id = int(await conn.fetchval(
            "INSERT INTO offences (commune, camera_id, place, agent, agent_number, agent_power, "
            "stills_erase_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
            request.commune, camera["id"], camera["location"], agent.username, agent.number,
            agent.power, first + rules.keep_at_most))
        for n, still in enumerate(stills, start=1):
            await _store_still(conn, store, bucket, offence_id=offence_id,
                               commune=request.commune, n=n, still=still)
        await record(conn, Entry(
            actor=agent.username, action="offence.created", commune=request.commune,
            cameras=[f"{request.commune}/{request.camera}"], period_start=first,
            period_end=max(s.capture_time for s in stills),
            details={"offence": offence_id, "stills": len(stills), "agent_number": agent.number,
                     "from": "live"}))
    return await load(pool, offence_id)


async def _owned(conn: asyncpg.Connection, offence_id: int, agent: str) -> asyncpg.Record:
    row = await conn.fetchrow(OFFENCE_SQL + " FOR UPDATE OF o", offence_id)
    if row is None:
        raise Refused(404, f"no offence {offence_id}")
    if row["agent"] != agent:
        raise Refused(403, "only the agent who noted the offence may change it")
    return row


async def add_still(pool: asyncpg.Pool, store: ObjectStore, bucket: str, capture: Capture,
                    rules: Rules, request: StillRequest) -> OffenceRecord:
    check_capture_time(request.capture_time, rules)
    async with pool.acquire() as conn:
        row = await _owned(conn, request.offence_id, request.agent)
    if row["state"] != "draft":
        raise Refused(409, "stills are added to a draft only")
    count = await pool.fetchval("SELECT count(*) FROM offence_stills WHERE offence_id = $1",
                                request.offence_id)
    if count >= MAX_STILLS:
        raise Refused(409, f"an offence has at most {MAX_STILLS} stills (vehicle and plate)")
    await agent_of(pool, request.agent, row["commune"])
    still = await capture(row["commune"], row["camera"], request.capture_time,
                          row["camera_name"], row["place"])
    async with pool.acquire() as conn, conn.transaction():
        row = await _owned(conn, request.offence_id, request.agent)
        n = int(await conn.fetchval("SELECT count(*) FROM offence_stills WHERE offence_id = $1",
                                    request.offence_id)) + 1
        if row["state"] != "draft" or n > MAX_STILLS:
            raise Refused(409, f"an offence has at most {MAX_STILLS} stills, added to a draft")
        await _store_still(conn, store, bucket, offence_id=request.offence_id,
                           commune=row["commune"], n=n, still=still)
        await record(conn, Entry(
            actor=request.agent, action="offence.still_added", commune=row["commune"],
            cameras=[f"{row['commune']}/{row['camera']}"], period_start=still.capture_time,
            period_end=still.capture_time, details={"offence": request.offence_id, "still": n}))
    return await load(pool, request.offence_id)


async def update(pool: asyncpg.Pool, store: ObjectStore, bucket: str, rules: Rules,
                 request: UpdateRequest) -> tuple[OffenceRecord, str | None]:
    """Returns the record and the state it moved to, if any."""
    offences = catalogue.load()
    async with pool.acquire() as conn, conn.transaction():
        row = await _owned(conn, request.offence_id, request.agent)
        agent = await agent_of(conn, request.agent, row["commune"])
        changes: dict[str, Any] = {}
        editing = any(v is not None for v in (request.offence_code, request.plate,
                                               request.plate_country))
        if editing and row["state"] != "draft":
            raise Refused(409, "an offence is changed while it is a draft only")
        if request.offence_code is not None:
            offence = offences.find(request.offence_code)
            if offence is None:
                raise Refused(422, f"{request.offence_code!r} is not in the offence list "
                              f"({offences.year}) (R33)")
            if offence not in offences.allowed(agent.power):
                raise Refused(403, f"« {offence.label} » is beyond your powers "
                              f"({catalogue.POWER_NAMES[agent.power]}) (R33)")
            changes.update(offence_code=offence.code, offence_label=offence.label,
                           offence_article=offence.article, natinf=offence.natinf)
        if request.plate is not None or request.plate_country is not None:
            country = request.plate_country or row["plate_country"] or "FR"
            try:
                changes.update(plate=plates.check(request.plate or row["plate"] or "", country),
                               plate_country=country.upper())
            except plates.PlateError as exc:
                raise Refused(422, str(exc)) from None
        moved = await _move(conn, row, request, changes)
        if changes:
            sets = ", ".join(f"{k} = ${i}" for i, k in enumerate(changes, start=2))
            await conn.execute(f"UPDATE offences SET {sets}, updated_at = now() WHERE id = $1",
                               request.offence_id, *changes.values())
        action = f"offence.{moved}" if moved else "offence.updated"
        await record(conn, Entry(
            actor=request.agent, action=action, commune=row["commune"],
            cameras=[f"{row['commune']}/{row['camera']}"],
            reason=request.cancel_reason if moved == "cancelled" else None,
            details={"offence": request.offence_id,
                     "changed": sorted(k for k in changes if k not in ("updated_at",)),
                     "offence_code": changes.get("offence_code", row["offence_code"])}))
    if moved == "cancelled":
        await erase_stills(pool, store, bucket, request.offence_id, cause="offence_cancelled")
    return await load(pool, request.offence_id), moved


async def _move(conn: asyncpg.Connection, row: asyncpg.Record, request: UpdateRequest,
                changes: dict[str, Any]) -> str | None:
    """The state change asked for, checked; its columns put into `changes`."""
    target, state = request.state, row["state"]
    if target is None or target == state:
        return None
    now = datetime.now(UTC)
    if target == "ready":
        if state != "draft":
            raise Refused(409, f"a {state} offence cannot become ready")
        stills = await conn.fetchval("SELECT count(*) FROM offence_stills WHERE offence_id = $1",
                                     row["id"])
        missing = [what for what, value in (
            ("2 or 3 stills (vehicle and plate)", stills >= 2),
            ("the offence", changes.get("offence_code", row["offence_code"])),
            ("the plate", changes.get("plate", row["plate"]))) if not value]
        if missing:
            raise Refused(409, f"not ready: {', '.join(missing)} missing (R34)")
        changes["ready_at"] = now
    elif target == "closed":
        if state != "handed_over":
            raise Refused(409, "an offence is closed once handed over to the PVe tool")
        changes["closed_at"] = now
    elif target == "cancelled":
        if state not in ("draft", "ready"):
            raise Refused(409, f"a {state} offence cannot be cancelled here: the PVe tool "
                          "has it")
        if not (request.cancel_reason or "").strip():
            raise Refused(422, "cancelling needs its reason")
        changes.update(cancelled_at=now, cancel_reason=request.cancel_reason.strip()
                       if request.cancel_reason else "", stills_erase_at=now)
    changes["state"] = target
    return target


async def handed_over(pool: asyncpg.Pool, offence_id: int, *, by: str, package_key: str,
                      package_sha256: str, rules: Rules) -> OffenceRecord:
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(OFFENCE_SQL + " FOR UPDATE OF o", offence_id)
        assert row is not None
        first = await conn.fetchval("SELECT min(capture_time) FROM offence_stills "
                                    "WHERE offence_id = $1", offence_id)
        erase_at = min(datetime.now(UTC) + rules.keep_after_handover, first + rules.keep_at_most)
        await conn.execute(
            "UPDATE offences SET state = 'handed_over', handed_over_at = now(), "
            "handed_over_by = $2, package_key = $3, package_sha256 = $4, stills_erase_at = $5, "
            "updated_at = now() WHERE id = $1", offence_id, by, package_key, package_sha256,
            erase_at)
        await record(conn, Entry(
            actor=by, action="offence.handed_over", commune=row["commune"],
            cameras=[f"{row['commune']}/{row['camera']}"], recipients="outil PVe",
            details={"offence": offence_id, "offence_code": row["offence_code"],
                     "package_sha256": package_sha256, "stills_erase_at": erase_at.isoformat()}))
    return await load(pool, offence_id)


async def erase_stills(pool: asyncpg.Pool, store: ObjectStore, bucket: str, offence_id: int, *,
                       cause: str) -> int:
    """Erase an offence's stills (and its hand-over file), journaled like the retention's."""
    row = await pool.fetchrow(OFFENCE_SQL, offence_id)
    if row is None:
        return 0
    stills = await pool.fetch("SELECT n, object_key, capture_time FROM offence_stills "
                              "WHERE offence_id = $1 AND erased_at IS NULL", offence_id)
    keys = [s["object_key"] for s in stills] + ([row["package_key"]] if row["package_key"]
                                                 else [])
    for key in keys:
        await store.delete(bucket, key)
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("UPDATE offence_stills SET erased_at = now() WHERE offence_id = $1 "
                           "AND erased_at IS NULL", offence_id)
        # The plate goes with the pictures: what stays is what was noted, by whom, when.
        await conn.execute("UPDATE offences SET stills_erased_at = now(), plate = NULL "
                           "WHERE id = $1", offence_id)
        times = [s["capture_time"] for s in stills]
        await record(conn, Entry(
            actor="verbalisation", action="deletion", commune=row["commune"],
            cameras=[f"{row['commune']}/{row['camera']}"],
            period_start=min(times) if times else None, period_end=max(times) if times else None,
            reason=cause, details={"kind": "offence_stills", "offence": offence_id,
                                   "objects": len(keys)}))
    return len(keys)


async def erase_due(pool: asyncpg.Pool, store: ObjectStore, bucket: str) -> int:
    """The offences whose stills are due for erasure; returns how many were erased."""
    due = await pool.fetch(
        "SELECT id, state FROM offences WHERE stills_erased_at IS NULL AND stills_erase_at <= "
        "now() ORDER BY stills_erase_at LIMIT 200")
    for row in due:
        cause = {"handed_over": "offence_handed_over", "closed": "offence_handed_over",
                 "cancelled": "offence_cancelled"}.get(row["state"], "offence_expired")
        await erase_stills(pool, store, bucket, row["id"], cause=cause)
    return len(due)


async def load(pool: asyncpg.Pool | asyncpg.Connection, offence_id: int) -> OffenceRecord:
    offence = await load_offence(pool, offence_id)
    if offence is None:
        raise Refused(404, f"no offence {offence_id}")
    return offence
