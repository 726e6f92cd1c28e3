"""The register (REGULATION.md R12 append-only and tamper-evident, R14 audit and export, R15 its own
retention; DESIGN.md invariant 4) against a real PostgreSQL."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from vigie.local import servers
from vigie.plumbing.db.roles import ensure_service_role
from vigie.plumbing.settings import CommonSettings
from vigie.records.audit_register import Checkpoint, Entry, checkpoint, purge, record, row_hash, verify
from vigie.security.signing import SigningKey, trusted_keys

from tests.conftest import settings_env
from tests.harness import unique

pytestmark = pytest.mark.integration
SIGNER = SigningKey.generate()  # the register key, as the retention service holds it
KEY = trusted_keys([SIGNER.public_pem()])  # what a verifier pins


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
    await checkpoint(db, SIGNER)
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
    await checkpoint(db, SIGNER)
    await _tamper(db, "DELETE FROM audit_log WHERE id >= $1", ids[7])
    async with db.acquire() as conn:
        cut = await verify(conn, KEY)
    assert not cut.ok and cut.first_broken_id == ids[9] and "cut" in cut.problem
    async with db.acquire() as conn:
        forged = await verify(conn, trusted_keys([SigningKey.generate().public_pem()]))
    assert not forged.ok and "not trusted" in forged.problem


@contextlib.asynccontextmanager
async def _as_service(db: asyncpg.Pool, pg_server: servers.PostgresServer, pg_schema: str,
                      service: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection as `service`'s role (its grants, made here), dropped afterwards."""
    role, password = unique("app_"), "app-password-123"
    async with db.acquire() as conn:
        await ensure_service_role(conn, schema=pg_schema, service=service, role=role,
                                  password=password)
    dsn = pg_server.dsn.replace(f"{pg_server.user}:{pg_server.password}", f"{role}:{password}")
    app = await asyncpg.connect(dsn, server_settings={"search_path": pg_schema})
    try:
        yield app
    finally:
        await app.close()
        async with db.acquire() as conn:
            await conn.execute(f'REVOKE ALL ON ALL TABLES IN SCHEMA "{pg_schema}" FROM "{role}"')
            await conn.execute(f'REVOKE ALL ON ALL SEQUENCES IN SCHEMA "{pg_schema}" FROM "{role}"')
            await conn.execute(f'REVOKE ALL ON ALL FUNCTIONS IN SCHEMA "{pg_schema}" FROM "{role}"')
            await conn.execute(f'REVOKE ALL ON SCHEMA "{pg_schema}" FROM "{role}"')
            await conn.execute(f'DROP ROLE "{role}"')


async def test_a_service_role_may_only_read_and_append_R12(
    db: asyncpg.Pool, pg_server: servers.PostgresServer, pg_schema: str,
) -> None:
    await _write(db, 3)
    async with _as_service(db, pg_server, pg_schema, "retention") as app:
        for sql in ("TRUNCATE audit_log", "UPDATE audit_log SET reason = 'x'",
                    "DELETE FROM audit_log", "DELETE FROM audit_checkpoints",
                    "ALTER TABLE audit_log DISABLE TRIGGER USER"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await app.execute(sql)
        await record(app, Entry(actor="app", action="live.stop"))  # appending works
        assert await app.fetchval("SELECT count(*) FROM audit_log") == 4
        await app.execute("DELETE FROM segments")  # what retention (this role's grants) does
    async with db.acquire() as conn:
        assert (await verify(conn, KEY)).ok


async def test_a_service_role_cannot_choose_a_register_rows_id_time_or_link_R12(
    db: asyncpg.Pool, pg_server: servers.PostgresServer, pg_schema: str,
) -> None:
    """Issue 34: ids and times are the database's. A row at id 10^12, or dated last year, or
    chained to another row than the last, is refused to every service's role."""
    ids = await _write(db, 3)
    await checkpoint(db, SIGNER)
    last = await db.fetchval("SELECT hash FROM audit_log ORDER BY id DESC LIMIT 1")
    forged = Entry(actor="agent", action="live.start", reason="rien à signaler")
    insert = ("INSERT INTO audit_log (id, at, actor, action, reason, prev_hash, hash) "
              "OVERRIDING SYSTEM VALUE VALUES ($1, $2, 'agent', 'live.start', 'rien à signaler', "
              "$3, $4)")
    async with _as_service(db, pg_server, pg_schema, "viewer-gateway") as app:
        far = 10 ** 12
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="not the one the database"):
            await app.execute(insert, far, datetime.now(UTC), last,
                              row_hash(far, datetime.now(UTC), forged, last))
        async with app.transaction():
            drawn = await app.fetchval("SELECT nextval(pg_get_serial_sequence('audit_log', "
                                       "'id'))")
            back = datetime.now(UTC) - timedelta(days=300)
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="time"):
                await app.execute(insert, drawn, back, last, row_hash(drawn, back, forged, last))
        async with app.transaction():
            drawn = await app.fetchval("SELECT nextval(pg_get_serial_sequence('audit_log', "
                                       "'id'))")
            now = await app.fetchval("SELECT clock_timestamp()")
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="not chained"):
                await app.execute(insert, drawn, now, "f" * 64, row_hash(drawn, now, forged,
                                                                           "f" * 64))
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await app.execute("SELECT setval(pg_get_serial_sequence('audit_log', 'id'), $1)",
                              10 ** 12)
        await record(app, Entry(actor="app", action="live.stop"))  # the honest way still works
    async with db.acquire() as conn:
        result = await verify(conn, KEY)
    assert result.ok and result.rows == len(ids) + 1, result.problem


async def test_an_unsigned_legacy_purge_row_neither_starts_nor_cuts_the_chain_R12(
    db: asyncpg.Pool,
) -> None:
    """Issue 34: with no HMAC key (Compose's default), a legacy `purge` row (seq NULL) that anyone
    with the database password can write was taken as the chain's start, hiding a deleted
    prefix. Only a checked signature anchors the chain."""
    ids = await _write(db, 6)
    await checkpoint(db, SIGNER)
    cut = await db.fetchrow("SELECT id, hash FROM audit_log WHERE id = $1", ids[2])
    await _tamper(db, "DELETE FROM audit_log WHERE id <= $1", cut["id"])
    await _tamper_checkpoints(db, "DELETE FROM audit_checkpoints")
    await _tamper_checkpoints(
        db, "INSERT INTO audit_checkpoints (kind, last_id, last_hash, signature) "
        "VALUES ('purge', $1, $2, 'whatever')", cut["id"], cut["hash"])
    async with db.acquire() as conn:
        result = await verify(conn, KEY)
    assert not result.ok and result.first_broken_id == ids[3], result
    assert "deleted" in result.problem
    # With the legacy key that made it, a genuine legacy purge still anchors the chain.
    from vigie.records.audit_register import legacy_sign
    legacy = b"the legacy HMAC key"
    await _tamper_checkpoints(db, "DELETE FROM audit_checkpoints")
    await _tamper_checkpoints(
        db, "INSERT INTO audit_checkpoints (kind, last_id, last_hash, signature) "
        "VALUES ('purge', $1, $2, $3)", cut["id"], cut["hash"],
        legacy_sign(legacy, cut["id"], cut["hash"], "purge"))
    async with db.acquire() as conn:
        assert (await verify(conn, KEY, legacy_key=legacy)).ok
        assert not (await verify(conn, KEY)).ok


async def test_purge_removes_whole_old_months_and_the_rest_still_verifies_R15(
    db: asyncpg.Pool,
) -> None:
    now = datetime.now(UTC)
    for months_ago in (40, 39, 38, 2, 1):
        await record(db, Entry(actor="agent", action="playback", reason=f"{months_ago} mois"),
                     at=now - timedelta(days=30.5 * months_ago))
    await _write(db, 3)
    await checkpoint(db, SIGNER)
    async with db.acquire() as conn:
        # The owner could not delete without `vigie audit purge`'s setting either.
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("DELETE FROM audit_log")
        assert await purge(conn, SIGNER, keep_months=36) == 3
        result = await verify(conn, KEY)
    assert result.ok, result.problem
    reasons = [r["reason"] for r in await db.fetch("SELECT reason FROM audit_log ORDER BY id")]
    assert reasons[:2] == ["2 mois", "1 mois"] and "40 mois" not in reasons
    last = await db.fetchrow("SELECT action, details FROM audit_log ORDER BY id DESC LIMIT 1")
    assert last["action"] == "register.purged" and json.loads(last["details"])["rows"] == 3


def test_vigie_audit_verify_exits_0_when_valid_and_1_naming_the_row_when_not(
    settings_for: Callable[..., CommonSettings], db: asyncpg.Pool, tmp_path: Path,
) -> None:
    env = {**os.environ, **settings_env(settings_for())}
    pinned, other = tmp_path / "register.pub", tmp_path / "other.pub"
    pinned.write_bytes(SIGNER.public_pem())
    other.write_bytes(SigningKey.generate().public_pem())

    def verify_cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "vigie.cli.main", "audit", "verify", *args],
                              env=env, capture_output=True, text=True, timeout=60)

    loop = asyncio.new_event_loop()
    try:
        ids = loop.run_until_complete(_write_with_new_pool(db, env))
        ok = verify_cli("--public-key", str(pinned))
        assert ok.returncode == 0 and "verifies: 4 rows" in ok.stdout, ok.stdout + ok.stderr
        unpinned = verify_cli()  # the keys the database announces: none here
        assert unpinned.returncode == 1 and "not trusted" in unpinned.stdout
        foreign = verify_cli("--public-key", str(other))
        assert foreign.returncode == 1 and "not trusted" in foreign.stdout
        loop.run_until_complete(_tamper_with_new_pool(env, ids[1]))
    finally:
        loop.close()
    broken = verify_cli("--public-key", str(pinned))
    assert broken.returncode == 1 and f"first broken row: {ids[1]}" in broken.stdout


async def _pool_from_env(env: dict[str, str]) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(env["VIGIE_POSTGRES_DSN"], min_size=1, max_size=2,
                                     server_settings={"search_path": env["VIGIE_POSTGRES_SCHEMA"]})
    assert pool is not None
    return pool


async def _write_with_new_pool(_db: asyncpg.Pool, env: dict[str, str]) -> list[int]:
    pool = await _pool_from_env(env)
    try:
        ids = await _write(pool, 4)
        await checkpoint(pool, SIGNER)
        return ids
    finally:
        await pool.close()


async def _tamper_with_new_pool(env: dict[str, str], row_id: int) -> None:
    pool = await _pool_from_env(env)
    try:
        await _tamper(pool, "UPDATE audit_log SET actor = 'quelqu''un' WHERE id = $1", row_id)
    finally:
        await pool.close()


async def _tamper_checkpoints(db: asyncpg.Pool, sql: str, *args: object) -> None:
    async with db.acquire() as conn, conn.transaction():
        await conn.execute("ALTER TABLE audit_checkpoints DISABLE TRIGGER USER")
        await conn.execute(sql, *args)
        await conn.execute("ALTER TABLE audit_checkpoints ENABLE TRIGGER USER")


async def _witnessed(db: asyncpg.Pool) -> list[Checkpoint]:
    """What a witness kept: every checkpoint as published on EVENTS."""
    return [Checkpoint.from_dict(dict(r)) for r in await db.fetch(
        "SELECT * FROM audit_checkpoints WHERE seq IS NOT NULL ORDER BY seq")]


async def test_a_checkpoint_deleted_from_the_middle_leaves_a_gap_that_is_named_R12(
    db: asyncpg.Pool,
) -> None:
    for _ in range(3):
        await _write(db, 2)
        await checkpoint(db, SIGNER)
    await _tamper_checkpoints(db, "DELETE FROM audit_checkpoints WHERE seq = 2")
    async with db.acquire() as conn:
        result = await verify(conn, KEY)
    assert not result.ok and "checkpoint 2 is missing" in result.problem


async def test_a_tail_cut_with_its_checkpoints_is_caught_by_a_witness_R12(
    db: asyncpg.Pool,
) -> None:
    ids = await _write(db, 4)
    await checkpoint(db, SIGNER)
    ids += await _write(db, 4)
    await checkpoint(db, SIGNER)
    witness = await _witnessed(db)
    # Rows and the checkpoint that signed them, gone together: the database alone still verifies.
    await _tamper(db, "DELETE FROM audit_log WHERE id > $1", ids[3])
    await _tamper_checkpoints(db, "DELETE FROM audit_checkpoints WHERE seq = 2")
    async with db.acquire() as conn:
        alone = await verify(conn, KEY)
        witnessed = await verify(conn, KEY, witness=witness)
    assert alone.ok, "nothing in the database alone says so: hence the witnesses"
    assert not witnessed.ok and "checkpoint 2, which a witness holds" in witnessed.problem


async def test_a_row_inserted_with_a_chosen_id_is_caught_R12(db: asyncpg.Pool) -> None:
    ids = await _write(db, 6)
    await checkpoint(db, SIGNER)
    # Row 3 replaced by another, chained to row 2 as a genuine one would be.
    row2 = await db.fetchrow("SELECT * FROM audit_log WHERE id = $1", ids[1])
    at = row2["at"]
    forged = Entry(actor="agent", action="live.start", reason="rien à signaler")
    await _tamper(db, "DELETE FROM audit_log WHERE id = $1", ids[2])
    await _tamper(db, "INSERT INTO audit_log (id, at, actor, action, reason, prev_hash, hash) "
                  "OVERRIDING SYSTEM VALUE VALUES ($1, $2, 'agent', 'live.start', "
                  "'rien à signaler', $3, $4)", ids[2], at, row2["hash"],
                  row_hash(ids[2], at, forged, row2["hash"]))
    async with db.acquire() as conn:
        result = await verify(conn, KEY)
    assert not result.ok and result.first_broken_id == ids[3] and "inserted" in result.problem
    # And a row slipped in before the chain's first one, where no walk would start.
    await _tamper(db, "INSERT INTO audit_log (id, at, actor, action, prev_hash, hash) "
                  "OVERRIDING SYSTEM VALUE VALUES (-7, now(), 'agent', 'export', $1, $1)",
                  "0" * 64)
    async with db.acquire() as conn:
        before = await verify(conn, KEY)
    assert not before.ok and before.first_broken_id == -7 and "before the chain" in before.problem


async def test_a_rewritten_register_re_signed_with_another_key_is_caught_R12(
    db: asyncpg.Pool,
) -> None:
    await db.execute("INSERT INTO signing_keys (fingerprint, purpose, public_pem) VALUES "
                     "($1, 'register', $2)", SIGNER.fingerprint(), SIGNER.public_pem().decode())
    ids = await _write(db, 5)
    await checkpoint(db, SIGNER)
    witness = await _witnessed(db)
    # Someone with the database's keys rewrites a row, re-chains the rest, re-signs the checkpoint
    # with a key of their own and announces that key in the database.
    intruder = SigningKey.generate()
    await _tamper(db, "UPDATE audit_log SET reason = 'rien' WHERE id = $1", ids[1])
    prev = (await db.fetchrow("SELECT hash FROM audit_log WHERE id = $1", ids[0]))["hash"]
    for row in await db.fetch("SELECT * FROM audit_log WHERE id >= $1 ORDER BY id", ids[1]):
        entry = Entry(actor=row["actor"], action=row["action"], commune=row["commune"],
                      cameras=row["cameras"], reason=row["reason"],
                      details=json.loads(row["details"]))
        new = row_hash(row["id"], row["at"], entry, prev)
        await _tamper(db, "UPDATE audit_log SET prev_hash = $2, hash = $3 WHERE id = $1",
                      row["id"], prev, new)
        prev = new
    await _tamper_checkpoints(db, "DELETE FROM audit_checkpoints")
    await checkpoint(db, intruder)
    await db.execute("INSERT INTO signing_keys (fingerprint, purpose, public_pem) VALUES "
                     "($1, 'register', $2)", intruder.fingerprint(),
                     intruder.public_pem().decode())
    from vigie.records.announced_keys import register_keys

    async with db.acquire() as conn:
        fooled = await verify(conn, await register_keys(conn))
        pinned = await verify(conn, KEY)
        witnessed = await verify(conn, await register_keys(conn), witness=witness)
    assert fooled.ok, "trusting the database's own keys is trusting the database"
    assert not pinned.ok and "not trusted" in pinned.problem
    assert not witnessed.ok and "differs from the witness's copy" in witnessed.problem


async def test_a_checkpoint_older_than_the_bound_fails_verification_R12(
    db: asyncpg.Pool,
) -> None:
    await _write(db, 2)
    async with db.acquire() as conn:
        empty_early = await verify(conn, KEY, max_age_s=600)
        await asyncio.sleep(0.2)
        none = await verify(conn, KEY, max_age_s=0.1)
    # Younger than the bound, the register has not had its first checkpoint yet (not cut): the
    # CI's first run caught a verification right after the first sign-in calling it broken.
    assert empty_early.ok and empty_early.unsigned_rows == 2
    assert not none.ok and none.problem.startswith("no signed checkpoint: the oldest entry")
    # A genuine checkpoint, made an hour ago (the signer stopped since).
    head = await db.fetchrow("SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1")
    hour_ago = (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=0)
    old = Checkpoint(1, "periodic", head["id"], head["hash"], hour_ago, SIGNER.fingerprint(), "")
    old = replace(old, signature=base64.b64encode(SIGNER.sign(old.message())).decode())
    await db.execute("INSERT INTO audit_checkpoints (seq, at, kind, last_id, last_hash, "
                     "fingerprint, signature) VALUES ($1, $2, $3, $4, $5, $6, $7)", old.seq,
                     old.at, old.kind, old.last_id, old.last_hash, old.fingerprint, old.signature)
    assert await checkpoint(db, SIGNER) is None, "nothing new, and no heartbeat asked"
    async with db.acquire() as conn:
        stale = await verify(conn, KEY, max_age_s=600)
    assert not stale.ok and "old (bound 600 s)" in stale.problem
    heartbeat = await checkpoint(db, SIGNER, heartbeat_s=300)
    assert heartbeat is not None and heartbeat.seq == 2, "a quiet register is signed again"
    async with db.acquire() as conn:
        fresh = await verify(conn, KEY, max_age_s=600)
    assert fresh.ok, fresh.problem


async def test_the_retention_role_purges_only_old_months_behind_a_purge_checkpoint_R15(
    db: asyncpg.Pool, service_db: Callable[[str], Awaitable[asyncpg.Pool]],
) -> None:
    """Issue 40: the register's 36-month purge was never scheduled. The retention service runs it;
    its role may not delete a row, and the owner's function it calls deletes only a prefix of
    months past the retention, named by a purge checkpoint."""
    now = datetime.now(UTC)
    for months_ago in (40, 39, 2):
        await record(db, Entry(actor="agent", action="playback", reason=f"{months_ago} mois"),
                     at=now - timedelta(days=30.5 * months_ago))
    retention = await service_db("retention")
    async with retention.acquire() as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("DELETE FROM audit_log")
        recent = await conn.fetchval("SELECT max(id) FROM audit_log")
        # No checkpoint names the row, and the rows are recent: refused both ways.
        with pytest.raises(asyncpg.CheckViolationError, match="not all older"):
            await conn.fetchval("SELECT vigie_purge_register($1, 36)", recent)
        oldest = await conn.fetchval("SELECT min(id) FROM audit_log")
        with pytest.raises(asyncpg.CheckViolationError, match="no purge checkpoint"):
            await conn.fetchval("SELECT vigie_purge_register($1, 36)", oldest)
        with pytest.raises(asyncpg.CheckViolationError, match="12 to 120 months"):
            await conn.fetchval("SELECT vigie_purge_register($1, 1)", oldest)
        assert await purge(conn, SIGNER, keep_months=36, actor="retention") == 2
        assert await purge(conn, SIGNER, keep_months=36, actor="retention") == 0  # nothing left
        assert (await verify(conn, KEY)).ok
    for service in ("recorder", "viewer-gateway"):
        other = await service_db(service)
        async with other.acquire() as conn:
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.fetchval("SELECT vigie_purge_register(1, 36)")
    purged = await db.fetchrow("SELECT actor, details FROM audit_log "
                               "WHERE action = 'register.purged'")
    assert purged["actor"] == "retention" and json.loads(purged["details"])["rows"] == 2
