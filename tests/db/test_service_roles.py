"""Each service's database role tries what it must not do (issue 25, REGULATION.md R12, R38:
least privilege). The roles are the ones `vigie init` and `make run` create (vigie.plumbing.db.roles)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import asyncpg
import pytest
from vigie.plumbing.catalog import SERVICES
from vigie.plumbing.db.roles import GRANTS, _grants, grants_markdown, role_name

from tests.harness import REPO
from tests.viewer_gateway.conftest import seed_communes

pytestmark = pytest.mark.integration

ServiceDb = Callable[[str], Awaitable[asyncpg.Pool]]

SEGMENT = ("INSERT INTO segments (camera_id, start_time, end_time, object_key, frames, size_bytes, "
           "sha256, mask_version, codec, width, height) VALUES ((SELECT min(id) FROM cameras), "
           "now() - interval '1 minute', now(), 'x/' || gen_random_uuid(), 1, 1, repeat('a', 64), 1, 'h264', "
           "2, 2)")


async def _refused(pool: asyncpg.Pool, sql: str) -> None:
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await pool.execute(sql)


def test_every_service_has_a_role_and_no_role_may_rewrite_the_register_R12() -> None:
    assert set(GRANTS) == set(SERVICES)
    assert len({role_name(s) for s in SERVICES}) == len(SERVICES)
    for service, tables in GRANTS.items():
        for table in ("audit_log", "audit_checkpoints"):
            assert not set(tables.get(table, "")) & {"U", "D"}, (service, table)
    with pytest.raises(ValueError, match="not a grant"):
        _grants("SU(state;drop)")


async def test_ingest_reads_its_sources_and_nothing_of_masks_users_sessions_or_recordings_R38(
    db: asyncpg.Pool, service_db: ServiceDb,
) -> None:
    await seed_communes(db)
    ingest = await service_db("ingest")
    assert await ingest.fetchval("SELECT count(*) FROM camera_sources") >= 0
    for sql in ("SELECT * FROM masks", "SELECT * FROM users", "SELECT * FROM sessions",
                "UPDATE masks SET approved_by = NULL", "DELETE FROM masks",
                "SELECT * FROM segments", SEGMENT, "SELECT * FROM audit_log",
                "UPDATE cameras SET state = 'active'", "DELETE FROM users"):
        await _refused(ingest, sql)


async def test_masking_changes_a_cameras_state_and_nothing_else_of_it_R3_R38(
    db: asyncpg.Pool, service_db: ServiceDb,
) -> None:
    """Masking sets a camera back to commissioning when its source changed: the state columns
    only, never its retention, its authorisation, its purposes or its name (column grants)."""
    await seed_communes(db)
    masking = await service_db("masking")
    assert await masking.execute("UPDATE cameras SET state = 'commissioning', "
                                 "source_changed_at = now(), updated_at = now()") != "UPDATE 0"
    for column, value in (("retention_days", "1"), ("authorisation_id", "NULL"),
                          ("purposes", "'{}'"), ("name", "'x'"), ("commune", "'ballainvilliers'")):
        await _refused(masking, f"UPDATE cameras SET {column} = {value}")


@pytest.mark.parametrize("service", [s for s in SERVICES if s != "retention"])
async def test_nobody_but_retention_deletes_a_recording_R4(
    db: asyncpg.Pool, service_db: ServiceDb, service: str,
) -> None:
    await seed_communes(db)
    await db.execute(SEGMENT)
    pool = await service_db(service)
    for sql in ("DELETE FROM segments", "TRUNCATE segments", "DELETE FROM segment_chain",
                "UPDATE segments SET object_key = 'elsewhere'"):
        await _refused(pool, sql)
    assert await db.fetchval("SELECT count(*) FROM segments") == 1


async def test_retention_deletes_recordings_and_only_the_recorder_stores_them_R4(
    db: asyncpg.Pool, service_db: ServiceDb,
) -> None:
    await seed_communes(db)
    recorder, retention = await service_db("recorder"), await service_db("retention")
    await recorder.execute(SEGMENT)
    for service in ("viewer-gateway", "retention", "verbalisation", "masking"):
        await _refused(await service_db(service), SEGMENT)
    # Retention may lock the rows it erases (SELECT … FOR UPDATE), never change one.
    await _refused(retention, "UPDATE segments SET object_key = 'elsewhere'")
    async with retention.acquire() as conn, conn.transaction():
        assert len(await conn.fetch("SELECT id FROM segments FOR UPDATE SKIP LOCKED")) == 1
    with pytest.raises(asyncpg.GeneratedAlwaysError):
        await retention.execute("UPDATE segments SET id = id + 1000")
    assert await retention.execute("DELETE FROM segments") == "DELETE 1"


@pytest.mark.parametrize("service", SERVICES)
async def test_no_role_rewrites_the_register_or_disables_its_triggers_R12(
    db: asyncpg.Pool, service_db: ServiceDb, service: str,
) -> None:
    pool = await service_db(service)
    for sql in ("UPDATE audit_log SET reason = 'x'", "DELETE FROM audit_log",
                "TRUNCATE audit_log", "DELETE FROM audit_checkpoints",
                "UPDATE audit_checkpoints SET signature = 'x'"):
        await _refused(pool, sql)
    with pytest.raises(asyncpg.InsufficientPrivilegeError):  # only the owner may alter a table
        await pool.execute("ALTER TABLE audit_log DISABLE TRIGGER USER")


@pytest.mark.parametrize("service", [s for s in SERVICES if s not in ("ingest", "viewer-gateway")])
async def test_only_ingest_and_the_administrators_api_read_rtsp_credentials_R38(
    db: asyncpg.Pool, service_db: ServiceDb, service: str,
) -> None:
    await _refused(await service_db(service), "SELECT * FROM camera_sources")


@pytest.mark.parametrize("service", [s for s in SERVICES if s != "viewer-gateway"])
async def test_only_the_gateway_touches_accounts_sessions_and_masks_R38(
    db: asyncpg.Pool, service_db: ServiceDb, service: str,
) -> None:
    pool = await service_db(service)
    for sql in ("SELECT * FROM sessions", "UPDATE users SET disabled = true",
                "INSERT INTO masks SELECT * FROM masks",
                # Issue 34: no password hash nor TOTP secret outside the gateway.
                "SELECT password_hash FROM users", "SELECT totp_secret FROM users",
                "SELECT * FROM users"):
        await _refused(pool, sql)


async def test_verbalisation_reads_an_agents_power_and_nothing_of_their_secrets_R38(
    db: asyncpg.Pool, service_db: ServiceDb,
) -> None:
    verbalisation = await service_db("verbalisation")
    assert await verbalisation.fetch(
        "SELECT username, agent_number, verbalisation_power, disabled, communes FROM users") == []


async def test_running_init_again_takes_a_narrowed_grant_away(
    db: asyncpg.Pool, service_db: ServiceDb, pg_schema: str,
) -> None:
    ingest = await service_db("ingest")
    async with db.acquire() as conn:  # a grant made by hand, beyond the policy
        await conn.execute(f'GRANT SELECT ON "{pg_schema}".users TO {role_name("ingest")}')
    assert await ingest.fetchval("SELECT count(*) FROM users") == 0
    await service_db("ingest")  # `vigie init` again
    await _refused(ingest, "SELECT * FROM users")


def test_the_security_page_shows_the_policy_as_it_is() -> None:
    assert grants_markdown() in (REPO / "docs" / "security.md").read_text()


async def test_retention_tells_each_due_incident_with_its_own_role_R39(
    db: asyncpg.Pool, service_db: ServiceDb,
) -> None:
    """Found under `make run`: retention's round failed on `incidents` (it marks each due notice
    once); no test ran it as its role."""
    from vigie.records.incidents import newly_due

    await seed_communes(db)
    await db.execute("INSERT INTO incidents (commune, summary, discovered_at, data_concerned, "
                     "people_concerned, measures, risk, due_at, created_by) VALUES ('palaiseau', "
                     "'x', now() - interval '71 hours', 'images', 'passants', 'aucune', 'risk', "
                     "now() + interval '1 hour', 'a')")
    retention = await service_db("retention")
    assert [r["notice"] for r in await newly_due(retention)] == ["due_soon"]
    await _refused(retention, "DELETE FROM incidents")
