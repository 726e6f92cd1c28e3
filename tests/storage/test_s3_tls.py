"""The object store over HTTPS (issue 25; REGULATION.md R37, R38): SeaweedFS with the deployment's
certificate answers S3 over TLS only; a service verifying it against the deployment's CA stores
and reads, a plain-HTTP client or one trusting another CA gets nothing; production settings refuse
a plain connection. Certificates are made in the test."""

from __future__ import annotations

from pathlib import Path

import pytest
from vigie.local import servers
from vigie.plumbing import certs
from vigie.plumbing.settings import CommonSettings
from vigie.plumbing.storage.objects import Buckets, ObjectStore

pytestmark = pytest.mark.integration


async def test_seaweedfs_speaks_https_only_and_the_services_verify_it_R37(tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    ca = certs.make_ca()
    ca_pem, _ = ca.write(pki, "ca")
    cert, key = certs.issue(ca, "seaweedfs", hosts=("127.0.0.1", "localhost"), server=True
                            ).write(pki, "seaweedfs")
    server = servers.start_seaweedfs(tmp_path / "s3", tls=(cert, key, ca_pem))
    try:
        buckets = Buckets.with_prefix("tls")
        admin = ObjectStore(server.endpoint, server.access_key, server.secret_key, secure=True,
                            ca_file=str(ca_pem))
        await admin.ensure_buckets(buckets.all(), object_lock=buckets.locked())
        recorder = ObjectStore(server.endpoint, *server.as_service("recorder"), secure=True,
                               ca_file=str(ca_pem), timeout_s=3)
        await recorder.put(buckets.recordings, "palaiseau/gare/a.mp4", b"segment")
        assert await recorder.get(buckets.recordings, "palaiseau/gare/a.mp4") == b"segment"

        plain = ObjectStore(server.endpoint, *server.as_service("recorder"), secure=False,
                            timeout_s=3)
        with pytest.raises(Exception) as refused:  # noqa: PT011 - the client library's choice
            await plain.get(buckets.recordings, "palaiseau/gare/a.mp4")
        assert "segment" not in str(refused.value)
        rogue_ca = certs.make_ca("Someone else's CA")
        rogue_pem, _ = rogue_ca.write(tmp_path / "rogue", "ca")
        fooled = ObjectStore(server.endpoint, *server.as_service("recorder"), secure=True,
                             ca_file=str(rogue_pem), timeout_s=3)
        with pytest.raises(Exception, match="(?i)certificate"):  # noqa: PT011
            await fooled.get(buckets.recordings, "palaiseau/gare/a.mp4")
    finally:
        server.process.stop()


def test_production_refuses_a_plain_object_store_R37() -> None:
    base = dict(nats_url="tls://nats:4222", nats_tls_ca=Path("ca.pem"),
                nats_tls_cert=Path("c.pem"), nats_tls_key=Path("c.key"),
                postgres_dsn="postgresql://x:pw@postgres/vigie?sslmode=verify-full",
                s3_endpoint="seaweedfs:8333", s3_access_key="key", s3_secret_key="a-long-secret")
    with pytest.raises(ValueError, match="plain connection to the object store"):
        CommonSettings(**base)  # type: ignore[arg-type]
    settings = CommonSettings(**base, s3_secure=True, s3_tls_ca=Path("/run/certs/ca.pem"))  # type: ignore[arg-type]
    assert settings.s3_tls_ca == Path("/run/certs/ca.pem")
