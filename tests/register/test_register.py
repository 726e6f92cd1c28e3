"""The register (REGULATION.md R12 append-only and tamper-evident, R14 audit and export, R15 its own
retention; DESIGN.md invariant 4) against a real PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from vigie.db.roles import ensure_app_role
from vigie.local import servers
from vigie.register import Entry, checkpoint, purge, record, verify
from vigie.settings import CommonSettings

from tests.conftest import settings_env
from tests.harness import unique

pytestmark = pytest.mark.integration
KEY = b"register-test-key"


async def _write(db: asyncpg.Pool, n: int, actor: str = "agent") -> list[int]:
    return [await record(db, Entry(actor=actor, action="live.start", commune="palaiseau",
                                   cameras=["palaiseau/gare"], reason=f"ronde {i}",
                                   details={"i": i, "post": "CSU"})) for i in range(n)]


async def _tamper(db: asyncpg.Pool, sql: str, *args: object) -> None:
    """What someone with the owner's rights could do: disable the triggers, change, re-enable."""
    async with db.acquire() as conn, conn.transaction():
        await conn.execute("ALTER TABLE audit_log DISABLE TRIGGER USER")
        await conn.execute(sql, *args)
        await conn.execute("ALTER TABLE audit_log ENABLE TRIGGER USER")


async def test_eight_concurrent_writers_leave_one_valid_chain_R12(
    db: asyncpg.Pool, pg_server: servers.PostgresServer, pg_schema: str,
) -> None:
    pool = await asyncpg.create_pool(pg_server.dsn, min_size=8, max_size=8,  # one per writer
                                     server_settings={"search_path": pg_schema})
    assert pool is not None
    try:
        await asyncio.gather(*(_write(pool, 25, actor=f"writer{w}") for w in range(8)))
    finally:
        await pool.close()
    async with db.acquire() as conn:
        result = await verify(conn, KEY)
    assert result.ok, result.problem
    assert result.rows == 200
    hashes = await db.fetch("SELECT prev_hash, hash FROM audit_log ORDER BY id")
    assert len({h["hash"] for h in hashes}) == 200
    assert all(a["hash"] == b["prev_hash"] for a, b in zip(hashes, hashes[1:]))


async def test_an_edited_row_a_deleted_row_and_a_cut_tail_are_each_named_R12(
    db: asyncpg.Pool,
) -> None:
    ids = await _write(db, 10)
    await checkpoint(db, KEY)
    async with db.acquire() as conn:
        assert (await verify(conn, KEY)).ok

    await _tamper(db, "UPDATE audit_log SET reason = 'rien à signaler' WHERE id = $1", ids[3])
    async with db.acquire() as conn:
        edited = await verify(conn, KEY)
    assert not edited.ok and edited.first_broken_id == ids[3] and "edited" in edited.problem


async def test_a_deleted_row_is_named_by_the_row_after_it(db: asyncpg.Pool) -> None:
    ids = await _write(db, 10)
    await _tamper(db, "DELETE FROM audit_log WHERE id = $1", ids[5])
    async with db.acquire() as conn:
        deleted = await verify(conn, KEY)
    assert not deleted.ok and deleted.first_broken_id == ids[6]
    assert "deleted" in deleted.problem


async def test_a_cut_tail_is_caught_by_the_signed_checkpoint(db: asyncpg.Pool) -> None:
    ids = await _write(db, 10)
    await checkpoint(db, KEY)
    await _tamper(db, "DELETE FROM audit_log WHERE id >= $1", ids[7])
    async with db.acquire() as conn:
        cut = await verify(conn, KEY)
    assert not cut.ok and cut.first_broken_id == ids[9] and "cut" in cut.problem
    async with db.acquire() as conn:
        forged = await verify(conn, b"another key")
    assert not forged.ok and "signature" in forged.problem


async def test_the_application_role_may_only_read_and_append_R12(
    db: asyncpg.Pool, pg_server: servers.PostgresServer, pg_schema: str,
) -> None:
    await _write(db, 3)
    role, password = unique("app_"), "app-password-123"
    async with db.acquire() as conn:
        await ensure_app_role(conn, schema=pg_schema, role=role, password=password)
    dsn = pg_server.dsn.replace(f"{pg_server.user}:{pg_server.password}", f"{role}:{password}")
    app = await asyncpg.connect(dsn, server_settings={"search_path": pg_schema})
    try:
        for sql in ("TRUNCATE audit_log", "UPDATE audit_log SET reason = 'x'",
                    "DELETE FROM audit_log", "DELETE FROM audit_checkpoints",
                    "ALTER TABLE audit_log DISABLE TRIGGER USER"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await app.execute(sql)
        await record(app, Entry(actor="app", action="live.stop"))  # appending works
        assert await app.fetchval("SELECT count(*) FROM audit_log") == 4
        await app.execute("DELETE FROM segments")  # what retention needs elsewhere
    finally:
        await app.close()
        async with db.acquire() as conn:
            await conn.execute(f'REVOKE ALL ON ALL TABLES IN SCHEMA "{pg_schema}" FROM "{role}"')
            await conn.execute(f'REVOKE ALL ON ALL SEQUENCES IN SCHEMA "{pg_schema}" FROM "{role}"')
            await conn.execute(f'REVOKE ALL ON SCHEMA "{pg_schema}" FROM "{role}"')
            await conn.execute(f'DROP ROLE "{role}"')
    async with db.acquire() as conn:
        assert (await verify(conn, KEY)).ok


async def test_purge_removes_whole_old_months_and_the_rest_still_verifies_R15(
    db: asyncpg.Pool,
) -> None:
    now = datetime.now(UTC)
    for months_ago in (40, 39, 38, 2, 1):
        await record(db, Entry(actor="agent", action="playback", reason=f"{months_ago} mois"),
                     at=now - timedelta(days=30.5 * months_ago))
    await _write(db, 3)
    await checkpoint(db, KEY)
    async with db.acquire() as conn:
        # The owner could not delete without `vigie audit purge`'s setting either.
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("DELETE FROM audit_log")
        assert await purge(conn, KEY, keep_months=36) == 3
        result = await verify(conn, KEY)
    assert result.ok, result.problem
    reasons = [r["reason"] for r in await db.fetch("SELECT reason FROM audit_log ORDER BY id")]
    assert reasons[:2] == ["2 mois", "1 mois"] and "40 mois" not in reasons
    last = await db.fetchrow("SELECT action, details FROM audit_log ORDER BY id DESC LIMIT 1")
    assert last["action"] == "register.purged" and json.loads(last["details"])["rows"] == 3


def test_vigie_audit_verify_exits_0_when_valid_and_1_naming_the_row_when_not(
    settings_for: Callable[..., CommonSettings], db: asyncpg.Pool,
) -> None:
    env = {**os.environ, **settings_env(settings_for(register_key=KEY.decode()))}

    def verify_cli() -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "vigie.cli.main", "audit", "verify"],
                              env=env, capture_output=True, text=True, timeout=60)

    loop = asyncio.new_event_loop()
    try:
        ids = loop.run_until_complete(_write_with_new_pool(db, env))
        ok = verify_cli()
        assert ok.returncode == 0 and "verifies: 4 rows" in ok.stdout, ok.stdout + ok.stderr
        loop.run_until_complete(_tamper_with_new_pool(env, ids[1]))
    finally:
        loop.close()
    broken = verify_cli()
    assert broken.returncode == 1 and f"first broken row: {ids[1]}" in broken.stdout
    no_key = subprocess.run([sys.executable, "-m", "vigie.cli.main", "audit", "verify"],
                            env={k: v for k, v in env.items() if k != "VIGIE_REGISTER_KEY"},
                            capture_output=True, text=True, timeout=60)
    assert no_key.returncode == 2 and "VIGIE_REGISTER_KEY" in no_key.stderr


async def _pool_from_env(env: dict[str, str]) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(env["VIGIE_POSTGRES_DSN"], min_size=1, max_size=2,
                                     server_settings={"search_path": env["VIGIE_POSTGRES_SCHEMA"]})
    assert pool is not None
    return pool


async def _write_with_new_pool(_db: asyncpg.Pool, env: dict[str, str]) -> list[int]:
    pool = await _pool_from_env(env)
    try:
        ids = await _write(pool, 4)
        await checkpoint(pool, KEY)
        return ids
    finally:
        await pool.close()


async def _tamper_with_new_pool(env: dict[str, str], row_id: int) -> None:
    pool = await _pool_from_env(env)
    try:
        await _tamper(pool, "UPDATE audit_log SET actor = 'quelqu''un' WHERE id = $1", row_id)
    finally:
        await pool.close()
