"""PostgreSQL over TLS (issue 25; REGULATION.md R37, R38): with the deployment's certificate the
server accepts TCP connections over TLS only; a client verifying it against the deployment's CA
gets in, a plain connection or a client trusting another CA does not; production settings refuse
a DSN that does not verify the server. Certificates are made in the test."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest
from vigie.local import servers
from vigie.plumbing import certs
from vigie.plumbing.db.pool import create_pool
from vigie.plumbing.settings import CommonSettings

pytestmark = pytest.mark.integration


async def test_postgresql_takes_tls_only_and_the_client_verifies_it_R37(tmp_path: Path) -> None:
    ca = certs.make_ca()
    ca.write(tmp_path / "pki", "ca")
    cert, key = certs.issue(ca, "postgres", hosts=("127.0.0.1", "localhost"), server=True
                            ).write(tmp_path / "pki", "postgres")
    server = servers.start_postgres(tmp_path / "pg", tls=(cert, key))
    try:
        verified = f"{server.dsn}?sslmode=verify-full&sslrootcert={tmp_path / 'pki' / 'ca.pem'}"
        conn = await asyncpg.connect(verified)
        try:
            assert await conn.fetchval(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()") is True
        finally:
            await conn.close()
        pool = await create_pool(verified, schema="public", max_size=1)  # as the services do
        assert await pool.fetchval("SELECT 1") == 1
        await pool.close()

        with pytest.raises(asyncpg.InvalidAuthorizationSpecificationError, match="no encryption"):
            await asyncpg.connect(f"{server.dsn}?sslmode=disable")
        rogue = certs.make_ca("Someone else's CA")
        rogue.write(tmp_path / "rogue", "ca")
        with pytest.raises((OSError, asyncpg.PostgresError)):  # ssl.SSLCertVerificationError
            await asyncpg.connect(f"{server.dsn}?sslmode=verify-full&sslrootcert="
                                  f"{tmp_path / 'rogue' / 'ca.pem'}")
    finally:
        server.process.stop()


def test_production_refuses_an_unverified_postgresql_dsn_R37() -> None:
    base = dict(nats_url="tls://nats:4222", nats_tls_ca=Path("ca.pem"),
                nats_tls_cert=Path("c.pem"), nats_tls_key=Path("c.key"), s3_endpoint="h:1",
                s3_access_key="key", s3_secret_key="a-long-secret", s3_secure=True)
    for dsn in ("postgresql://x:pw@postgres/vigie", "postgresql://x:pw@postgres/vigie?sslmode=require"):
        with pytest.raises(ValueError, match="unverified connection to PostgreSQL") as refused:
            CommonSettings(**base, postgres_dsn=dsn)  # type: ignore[arg-type]
        assert "pw" not in str(refused.value).replace("password", "")
    ok = CommonSettings(**base, postgres_dsn="postgresql://x:pw@postgres/vigie?sslmode=verify-full"
                        "&sslrootcert=/run/certs/ca.pem")  # type: ignore[arg-type]
    assert ok.postgres_dsn.get_secret_value().endswith("ca.pem")
