"""Migrations: idempotent, safe with two processes at once; the schema enforces the law's limits."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest
from vigie.local import servers
from vigie.plumbing.db.migrate import Migration, MigrationError, bundled_migrations, migrate

from tests.harness import unique

pytestmark = pytest.mark.integration


async def test_migrations_applied_twice_end_in_one_schema(pg_server: servers.PostgresServer) -> None:
    schema = unique("test_")
    conn = await asyncpg.connect(pg_server.dsn)
    try:
        first = await migrate(conn, schema=schema)
        second = await migrate(conn, schema=schema)
        assert first == [m.version for m in bundled_migrations()]
        assert second == []
        tables = {r["table_name"] for r in await conn.fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = $1", schema)}
        assert {"communes", "cameras", "masks", "segments", "users", "audit_log"} <= tables
    finally:
        await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await conn.close()


async def test_two_processes_migrating_at_once(pg_server: servers.PostgresServer) -> None:
    schema = unique("test_")
    program = Path(__file__).with_name("migrate_program.py")
    procs = [subprocess.Popen([sys.executable, str(program), pg_server.dsn, schema],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outputs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    applied = sorted(out.strip() for out, _ in outputs)
    # One process applied everything, the other found it done.
    assert applied == ["", ",".join(m.version for m in bundled_migrations())]
    conn = await asyncpg.connect(pg_server.dsn)
    try:
        rows = await conn.fetch(f'SELECT version FROM "{schema}".schema_migrations')
        assert len(rows) == len(bundled_migrations())
    finally:
        await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await conn.close()


async def test_a_changed_applied_migration_is_refused(pg_server: servers.PostgresServer) -> None:
    schema = unique("test_")
    conn = await asyncpg.connect(pg_server.dsn)
    try:
        await migrate(conn, schema=schema, migrations=[Migration("0001_x", "CREATE TABLE x (a int);")])
        with pytest.raises(MigrationError, match="changed"):
            await migrate(conn, schema=schema,
                          migrations=[Migration("0001_x", "CREATE TABLE x (a bigint);")])
    finally:
        await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await conn.close()


async def test_retention_above_30_days_is_refused_R4(db: asyncpg.Pool) -> None:
    """R4 / invariant 3: retention is 1–30 days; a camera never keeps longer than its commune."""
    for days in (0, 31):
        with pytest.raises(asyncpg.CheckViolationError):
            await db.execute("INSERT INTO communes (slug, name, retention_days) VALUES ('x', 'X', $1)",
                             days)
    await db.execute("INSERT INTO communes (slug, name, retention_days) VALUES ('p', 'P', 15)")
    await db.execute("INSERT INTO cameras (commune, slug, name, retention_days) VALUES ('p', 'a', 'A', 2)")
    with pytest.raises(asyncpg.CheckViolationError, match="exceeds its commune"):
        await db.execute(
            "INSERT INTO cameras (commune, slug, name, retention_days) VALUES ('p', 'b', 'B', 20)")
    with pytest.raises(asyncpg.CheckViolationError):
        await db.execute("UPDATE cameras SET retention_days = 16 WHERE slug = 'a'")


async def test_a_camera_keeps_what_its_authorisation_allows_no_less_and_no_more_R4_R5(
    db: asyncpg.Pool,
) -> None:
    """R5: an order may impose a minimum retention as well as a maximum (issue 40: dropping the
    minimum from the trigger left the suite green). Both bounds, for the camera's own retention
    and for the commune's that its cameras follow."""
    await db.execute("INSERT INTO communes (slug, name, retention_days) VALUES ('p', 'P', 15)")
    order = await db.fetchval(
        "INSERT INTO authorisations (commune, reference, granted_on, valid_until, purposes, "
        "recipients, retention_min_days, retention_max_days, created_by) VALUES ('p', 'AP-R5', "
        "current_date - 1, current_date + 365, '{protection des bâtiments publics}', "
        "'{municipal_police}', 10, 20, 'test') RETURNING id")
    insert = ("INSERT INTO cameras (commune, slug, name, retention_days, authorisation_id) "
              "VALUES ('p', $1, $1, $2, $3)")
    await db.execute(insert, "within", 12, order)
    await db.execute(insert, "commune", None, order)  # follows the commune's 15
    with pytest.raises(asyncpg.CheckViolationError, match=r"outside authorisation AP-R5's bounds"):
        await db.execute(insert, "too-short", 5, order)  # under the minimum
    with pytest.raises(asyncpg.CheckViolationError, match="bounds"):
        await db.execute("UPDATE cameras SET retention_days = 9 WHERE slug = 'within'")
    for days in (7, 25):  # the commune's, which 'commune' follows: under and over
        with pytest.raises(asyncpg.CheckViolationError, match="for camera commune"):
            await db.execute("UPDATE communes SET retention_days = $1 WHERE slug = 'p'", days)
    # Over the maximum on the camera itself, under a commune that keeps longer (none follows it).
    await db.execute("DELETE FROM cameras WHERE slug = 'commune'")
    await db.execute("UPDATE communes SET retention_days = 25 WHERE slug = 'p'")
    with pytest.raises(asyncpg.CheckViolationError, match="outside authorisation AP-R5's bounds"):
        await db.execute("UPDATE cameras SET retention_days = 21 WHERE slug = 'within'")


async def test_audit_log_is_append_only_R12(db: asyncpg.Pool) -> None:
    """R12: the register refuses UPDATE, DELETE and TRUNCATE."""
    await db.execute("INSERT INTO audit_log (actor, action) VALUES ('agent1', 'login')")
    for statement in ("UPDATE audit_log SET actor = 'x'", "DELETE FROM audit_log",
                      "TRUNCATE audit_log"):
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await db.execute(statement)
    assert await db.fetchval("SELECT count(*) FROM audit_log") == 1


async def test_camera_source_is_apart_and_must_be_rtsp(db: asyncpg.Pool) -> None:
    await db.execute("INSERT INTO communes (slug, name, retention_days) VALUES ('p', 'P', 15)")
    cam = await db.fetchval("INSERT INTO cameras (commune, slug, name) VALUES ('p', 'a', 'A') RETURNING id")
    assert await db.fetchval("SELECT state FROM cameras WHERE id = $1", cam) == "commissioning"
    with pytest.raises(asyncpg.CheckViolationError):
        await db.execute("INSERT INTO camera_sources (camera_id, rtsp_url) VALUES ($1, 'http://x')", cam)
    columns = {r["column_name"] for r in await db.fetch(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'cameras' "
        "AND table_schema = current_schema()")}
    assert "rtsp_url" not in columns


async def test_an_approved_mask_version_is_never_changed_or_deleted_R2(db: asyncpg.Pool) -> None:
    await db.execute("INSERT INTO communes (slug, name, retention_days) VALUES ('p', 'P', 15)")
    cam = await db.fetchval("INSERT INTO cameras (commune, slug, name) VALUES ('p', 'a', 'A') "
                            "RETURNING id")
    await db.execute("INSERT INTO masks (camera_id, version, document, author) VALUES "
                     "($1, 1, '{\"masks\": []}', 'm')", cam)
    await db.execute("UPDATE masks SET document = '{\"masks\": [1]}' WHERE camera_id = $1", cam)
    await db.execute("UPDATE masks SET approved_by = 'm', approved_at = now() "
                     "WHERE camera_id = $1", cam)  # approving a draft is the one change
    for sql in ("UPDATE masks SET document = '{\"masks\": []}' WHERE camera_id = $1",
                "UPDATE masks SET approved_at = NULL WHERE camera_id = $1",
                "DELETE FROM masks WHERE camera_id = $1"):
        with pytest.raises(asyncpg.CheckViolationError, match="never changed or deleted"):
            await db.execute(sql, cam)  # as the tables' owner, even
    assert await db.fetchval("SELECT document::text FROM masks") == '{"masks": [1]}'
    await db.execute("DELETE FROM cameras WHERE id = $1", cam)  # the camera takes them with it
    assert await db.fetchval("SELECT count(*) FROM masks") == 0
