"""The public halves of the deployment's signing keys, announced by the services that hold the
private halves (the recorder: recording key; retention: export and register keys) when they
start. A key seen for
the first time is journaled (`key.created`, or `key.rotated` naming the key it replaces), so the
register says from when each fingerprint signed; the gateway publishes them (GET /api/keys)."""

from __future__ import annotations

from typing import Any, Literal

import asyncpg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from vigie.records.audit_register import Entry, record
from vigie.security.signing import SigningKey, trusted_keys

Purpose = Literal["export", "recording", "register"]
LOCK = 7_421_021  # one announcer at a time: two replicas starting together journal once


async def announce(pool: asyncpg.Pool, key: SigningKey, *, purpose: Purpose,
                   service: str) -> bool:
    """Record the key if new (True), retiring the previous key of that purpose; journaled."""
    fingerprint = key.fingerprint()
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", LOCK)
        known = await conn.fetchrow("SELECT purpose, retired_at FROM signing_keys "
                                    "WHERE fingerprint = $1", fingerprint)
        if known is not None:
            if known["retired_at"] is not None:  # an old key put back: say so, keep one current
                await _make_current(conn, fingerprint, purpose, service, "key.reinstated")
            return False
        await conn.execute("INSERT INTO signing_keys (fingerprint, purpose, public_pem) "
                           "VALUES ($1, $2, $3)", fingerprint, purpose, key.public_pem().decode())
        await _make_current(conn, fingerprint, purpose, service, None)
        return True


async def _make_current(conn: asyncpg.Connection, fingerprint: str, purpose: str, service: str,
                        action: str | None) -> None:
    replaced = [r["fingerprint"] for r in await conn.fetch(
        "UPDATE signing_keys SET retired_at = now() WHERE purpose = $1 AND fingerprint <> $2 "
        "AND retired_at IS NULL RETURNING fingerprint", purpose, fingerprint)]
    await conn.execute("UPDATE signing_keys SET retired_at = NULL WHERE fingerprint = $1",
                       fingerprint)
    await record(conn, Entry(
        actor=service, action=action or ("key.rotated" if replaced else "key.created"),
        details={"purpose": purpose, "fingerprint": fingerprint, "replaces": replaced}))


async def published(pool: asyncpg.Pool) -> list[dict[str, Any]]:
    rows = await pool.fetch("SELECT fingerprint, purpose, public_pem, first_seen, retired_at "
                            "FROM signing_keys ORDER BY purpose, first_seen DESC")
    return [dict(r) for r in rows]


async def public_keys(conn: asyncpg.Connection | asyncpg.Pool,
                      fingerprints: set[str]) -> dict[str, str]:
    rows = await conn.fetch("SELECT fingerprint, public_pem FROM signing_keys "
                            "WHERE fingerprint = ANY($1::text[])", sorted(fingerprints))
    return {r["fingerprint"]: r["public_pem"] for r in rows}


async def register_keys(conn: asyncpg.Connection | asyncpg.Pool) -> dict[str, Ed25519PublicKey]:
    """Every key that signed register checkpoints, as announced in the database. A verification
    that trusts these trusts the database; `vigie audit verify --public-key` pins the key."""
    rows = await conn.fetch("SELECT public_pem FROM signing_keys WHERE purpose = 'register'")
    return trusted_keys([r["public_pem"].encode() for r in rows])
