"""`vigie backup` (issue 25; REGULATION.md R4, R12, R38): a dump restores into an empty database
with the register still verifying; dumps are 0600 and never carry the password on the command
line; those older than the kept days go, and more than 30 days is refused."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pyrage
import pytest
from pyrage import x25519
from vigie.local import servers
from vigie.operations.backup import BackupError, _without_password, prune
from vigie.plumbing.db import programs
from vigie.plumbing.storage.objects import ObjectStore
from vigie.records.announced_keys import trusted_keys
from vigie.records.audit_register import Entry, checkpoint, record, verify
from vigie.security.signing import SigningKey

from tests.harness import REPO, unique

pytestmark = pytest.mark.integration


def _backup(out: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`vigie backup` once, keeping 7 days, as its schedule runs it."""
    return subprocess.run([sys.executable, "-m", "vigie.cli.main", "backup", "--out", str(out),
                           "--keep-days", "7"], env=env, capture_output=True, text=True,
                          timeout=120, cwd=REPO)


async def test_a_dump_restores_with_the_register_verifying_R12(
    db: asyncpg.Pool, pg_server: servers.PostgresServer, pg_schema: str, tmp_path: Path,
) -> None:
    signer = SigningKey.generate()
    async with db.acquire() as conn:
        for i in range(5):
            await record(conn, Entry(actor="agent", action="live.start", reason=f"n° {i}"))
    await checkpoint(db, signer)
    env = {**os.environ, "VIGIE_POSTGRES_DSN": pg_server.dsn, "VIGIE_POSTGRES_SCHEMA": pg_schema}
    out = tmp_path / "backups"
    result = _backup(out, env)
    assert result.returncode == 0, result.stderr
    (dump,) = out.glob("vigie-*.dump")
    assert dump.stat().st_mode & 0o777 == 0o600

    restored = unique("restored_")
    admin = await asyncpg.connect(pg_server.dsn)
    await admin.execute(f'CREATE DATABASE "{restored}"')
    try:
        url, password = _without_password(pg_server.dsn.rsplit("/", 1)[0] + f"/{restored}")
        subprocess.run([programs.pg_bin("pg_restore"), "--no-owner", "--dbname", url, str(dump)],
                       env={**os.environ, "PGPASSWORD": password or ""}, check=True,
                       capture_output=True, timeout=120)
        conn = await asyncpg.connect(pg_server.dsn.rsplit("/", 1)[0] + f"/{restored}",
                                     server_settings={"search_path": pg_schema})
        try:
            assert await conn.fetchval("SELECT count(*) FROM audit_log") == 5
            checked = await verify(conn, trusted_keys([signer.public_pem()]), max_age_s=3600)
            assert checked.ok and checked.rows == 5, checked.problem
        finally:
            await conn.close()
    finally:
        await admin.execute(f'DROP DATABASE "{restored}"')
        await admin.close()


def test_the_password_stays_off_the_command_line() -> None:
    url, password = _without_password("postgresql://vigie:s3cr%40t@postgres:5432/vigie?sslmode="
                                      "verify-full&sslrootcert=/run/certs/ca.pem")
    assert password == "s3cr@t" and "s3cr" not in url
    assert url == "postgresql://vigie@postgres:5432/vigie?sslmode=verify-full&sslrootcert=" \
        "/run/certs/ca.pem"


def test_old_dumps_go_and_no_more_than_thirty_days_are_kept_R4(tmp_path: Path) -> None:
    now = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)
    for days in (0, 6, 8, 40):
        stamp = (now - timedelta(days=days)).strftime("%Y%m%dT%H%M%SZ")
        (tmp_path / f"vigie-{stamp}.dump").write_bytes(b"x")
    (tmp_path / f"vigie-{(now - timedelta(days=9)):%Y%m%dT%H%M%SZ}.dump.age").write_bytes(b"y")
    (tmp_path / "notes.txt").write_text("not ours")
    gone = prune(tmp_path, keep_days=7, now=now)
    assert sorted(p.name[6:14] for p in gone) == ["20261021", "20261121", "20261122"]
    assert sorted(p.name for p in tmp_path.iterdir())[-1] == "vigie-20261130T030000Z.dump"
    assert (tmp_path / "notes.txt").exists()
    with pytest.raises(BackupError, match="1 to 30 days"):
        prune(tmp_path, keep_days=31, now=now)


async def test_each_dump_is_copied_off_the_host_and_old_ones_go_there_too_R4(
    db: asyncpg.Pool, pg_server: servers.PostgresServer, pg_schema: str,
    s3_server: servers.SeaweedServer, tmp_path: Path,
) -> None:
    """Issue 35: the dumps sat on a volume of the host they would have to restore. Each one is
    copied to another site's S3 (VIGIE_BACKUP_S3_*), checked whole there, and the remote dumps
    older than --keep-days are deleted as the local ones are (R4). The copy failing fails the
    run (the schedule says so), the local dump stays."""
    store = ObjectStore(s3_server.endpoint, s3_server.access_key, s3_server.secret_key)
    bucket = unique("offsite-")
    await store.ensure_buckets([bucket])
    now = datetime.now(UTC)
    for name in (f"vigie-{(now - timedelta(days=40)):%Y%m%dT%H%M%SZ}.dump",
                 f"vigie-{(now - timedelta(days=2)):%Y%m%dT%H%M%SZ}.dump", "notes.txt"):
        await store.put(bucket, name, b"older")
    identity = x25519.Identity.generate()  # kept off the database host, where restores happen
    env = {**os.environ, "VIGIE_POSTGRES_DSN": pg_server.dsn, "VIGIE_POSTGRES_SCHEMA": pg_schema,
           "VIGIE_BACKUP_S3_ENDPOINT": s3_server.endpoint, "VIGIE_BACKUP_S3_BUCKET": bucket,
           "VIGIE_BACKUP_S3_ACCESS_KEY": s3_server.access_key, "VIGIE_BACKUP_S3_SECURE": "false"}
    (tmp_path / "remote-secret").write_text(s3_server.secret_key + "\n")
    env["VIGIE_BACKUP_S3_SECRET_KEY_FILE"] = str(tmp_path / "remote-secret")
    out = tmp_path / "backups"
    # R38 (issue 40): the database never leaves the host in clear.
    clear = _backup(out, env)
    assert clear.returncode == 2 and "VIGIE_BACKUP_RECIPIENTS" in clear.stderr
    assert not out.exists() or not list(out.glob("vigie-*")), "refused before dumping anything"
    env["VIGIE_BACKUP_RECIPIENTS"] = str(identity.to_public())
    result = _backup(out, env)
    assert result.returncode == 0, result.stderr
    assert not list(out.glob("vigie-*.dump")), "no dump left in clear"
    (dumped,) = out.glob("vigie-*.dump.age")
    assert dumped.stat().st_mode & 0o777 == 0o600
    sealed = dumped.read_bytes()
    assert sealed.startswith(b"age-encryption.org/v1") and b"audit_log" not in sealed
    assert await store.get(bucket, dumped.name) == sealed
    # Where the identity is, the dump opens and pg_restore reads it.
    opened = tmp_path / "opened.dump"
    pyrage.decrypt_file(str(dumped), str(opened), [identity])
    listed = subprocess.run([programs.pg_bin("pg_restore"), "--list", str(opened)],
                            capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0 and "audit_log" in listed.stdout
    remote = sorted(o.key for o in await store.list_objects(bucket))
    assert remote == sorted([dumped.name, f"vigie-{(now - timedelta(days=2)):%Y%m%dT%H%M%SZ}.dump",
                             "notes.txt"]), "the 40-day-old dump went, what is not ours stayed"
    assert s3_server.secret_key not in result.stdout + result.stderr
    wrong = _backup(out, {**env, "VIGIE_BACKUP_RECIPIENTS": "age1nonsense"})
    assert wrong.returncode == 2 and "not an age public key" in wrong.stderr

    (tmp_path / "remote-secret").write_text("not-the-right-secret-key\n")
    failed = _backup(out, env)
    assert failed.returncode == 1
    assert "off the host failed" in failed.stderr and "not-the-right" not in failed.stderr
    assert len(list(out.glob("vigie-*.dump.age"))) >= 1, "the local dump is made all the same"
    incomplete = _backup(out, {**env, "VIGIE_BACKUP_S3_BUCKET": ""})
    assert incomplete.returncode != 0 and "VIGIE_BACKUP_S3_BUCKET" in incomplete.stderr
