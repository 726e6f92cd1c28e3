"""NATS over TLS with client certificates (issue 25; REGULATION.md R30, R37, R38): a police
subscriber presents a certificate of the deployment's CA, and without one — or with another CA's,
or over a plain connection — it is refused before its password is even asked; the services connect
with theirs; cluster routes are TLS too. Certificates are made in the test (`vigie certs`)."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
import sys
from pathlib import Path

import nats
import nats.errors
import pytest
from nats.js.api import StreamConfig
from vigie.local import servers
from vigie.plumbing import certs
from vigie.plumbing.bus.connection import connect_nats, jetstream
from vigie.plumbing.bus.events import CameraWentOffline, publish_event_or_log
from vigie.plumbing.bus.permissions import ServerTls
from vigie.plumbing.bus.streams import StreamLimits, ensure_streams
from vigie.plumbing.bus.subscribers import add_subscriber, durable_name
from vigie.plumbing.settings import CommonSettings

from tests.bus.test_permissions import NAMES
from tests.bus.test_subscribers import follow_client, publish_offline
from tests.harness import REPO, eventually

pytestmark = pytest.mark.integration
SUBSCRIBER = "prefecture-91"


def _deployment(folder: Path) -> ServerTls:
    result = subprocess.run([sys.executable, "-m", "vigie.cli.main", "certs", "init", "--out",
                             str(folder)], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert result.returncode == 0, result.stderr
    subprocess.run([sys.executable, "-m", "vigie.cli.main", "certs", "client", SUBSCRIBER,
                    "--out", str(folder)], check=True, capture_output=True, timeout=60)
    assert (folder / "ca.key").stat().st_mode & 0o777 == 0o600
    return ServerTls(str(folder / "nats.pem"), str(folder / "nats.key"), str(folder / "ca.pem"))


def _settings(server: servers.NatsServer, folder: Path, user: str, cert: str | None,
              **more: object) -> CommonSettings:
    return CommonSettings(
        local_mode=True, nats_url=server.url, nats_user=user,
        nats_password=server.passwords[user], bus_root=NAMES.root,
        nats_tls_ca=folder / "ca.pem",
        nats_tls_cert=folder / f"{cert}.pem" if cert else None,
        nats_tls_key=folder / f"{cert}.key" if cert else None,
        postgres_dsn="postgresql://x@127.0.0.1/x", s3_endpoint="127.0.0.1:1",
        s3_access_key="unused", s3_secret_key="unused", **more)  # type: ignore[arg-type]


async def _refused(common: CommonSettings) -> None:
    with pytest.raises((ConnectionError, nats.errors.Error)):
        nc = await connect_nats(common, name="refused", timeout_s=3)
        await nc.close()


async def test_a_subscriber_needs_a_certificate_of_the_deployments_ca_R30(tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    tls = _deployment(pki)
    server = servers.start_nats(tmp_path / "nats", externals={SUBSCRIBER: ["palaiseau"]}, tls=tls)
    try:
        assert server.url.startswith("tls://")
        admin = await connect_nats(_settings(server, pki, "admin", "init"), name="admin")
        await ensure_streams(jetstream(admin), NAMES, StreamLimits(raw_max_age_s=60))
        await add_subscriber(jetstream(admin), NAMES, SUBSCRIBER, ["palaiseau"])
        retention = await connect_nats(_settings(server, pki, "retention", "retention"),
                                       name="retention")
        event = CameraWentOffline(commune="palaiseau", camera="gare", reason="timeout")
        assert await publish_event_or_log(jetstream(retention), NAMES, event)

        # With its certificate and password: in, and it reads its communes' events.
        subscriber = await connect_nats(_settings(server, pki, SUBSCRIBER, SUBSCRIBER),
                                        name="subscriber")
        received = await jetstream(subscriber).pull_subscribe_bind(
            durable_name(SUBSCRIBER), stream=NAMES.events_stream)
        (msg,) = await received.fetch(1, timeout=5)
        assert event.event_id.encode() in msg.data
        await subscriber.close()

        # Without a certificate; a certificate of another CA; a plain connection.
        await _refused(_settings(server, pki, SUBSCRIBER, None))
        rogue = tmp_path / "rogue"
        rogue_ca = certs.make_ca("Someone else's CA")
        rogue_ca.write(rogue, "ca")
        certs.issue(rogue_ca, SUBSCRIBER, client=True, kind=certs.SUBSCRIBER).write(rogue,
                                                                                  SUBSCRIBER)
        (rogue / "ca.pem").write_bytes((pki / "ca.pem").read_bytes())  # trusts the real server
        await _refused(_settings(server, rogue, SUBSCRIBER, SUBSCRIBER))
        with pytest.raises((nats.errors.Error, OSError, ssl.SSLError)):
            await nats.connect(server.url.replace("tls://", "nats://"), user=SUBSCRIBER,
                               password="anything", allow_reconnect=False, connect_timeout=2)
        await _another_holders_certificate_opens_only_its_own_account(server, pki)
        await retention.close()
        await admin.close()
    finally:
        server.process.stop()


async def test_cluster_routes_speak_tls_and_replicate_R37(tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    tls = _deployment(pki)
    passwords = {u: f"pw-{u}-0123456789" for u in ("admin", *servers.all_users())}
    nodes = servers.start_nats_cluster(
        tmp_path / "cluster", ports=[servers.free_port() for _ in range(3)],
        cluster_ports=[servers.free_port() for _ in range(3)], passwords=passwords, tls=tls)
    try:
        url = ",".join(n.url for n in nodes)
        common = _settings(nodes[0], pki, "admin", "init").model_copy(update={"nats_url": url})
        nc = await connect_nats(common, name="admin", timeout_s=30)
        js = jetstream(nc)

        async def replicated() -> bool:
            try:
                await js.add_stream(StreamConfig(name="TLS_R3", subjects=["vigie.events.tls.>"],
                                                 num_replicas=3))
            except Exception:  # noqa: BLE001 - no JetStream leader yet while the cluster forms
                return False
            return True

        await eventually(replicated, timeout_s=30, message="no replicated stream over TLS routes")
        retention = await connect_nats(_settings(nodes[1], pki, "retention", "retention"),
                                       name="retention")
        await jetstream(retention).publish("vigie.events.tls.x", b"over encrypted routes")
        await retention.close()
        info = await js.stream_info("TLS_R3")
        assert info.state.messages == 1 and len(info.cluster.replicas or []) == 2
        for node in nodes:
            assert "tls" in node.config_path.read_text().split("cluster {")[1]
        await nc.close()
    finally:
        for node in nodes:
            node.process.stop()


async def _another_holders_certificate_opens_only_its_own_account(
        server: servers.NatsServer, pki: Path) -> None:
    """Issue 34: the server took another holder's certificate with the subscriber's password. The
    certificate is the account now (R30, R38): retention's certificate is retention whatever name
    it claims, so the subscriber's consumer stays out of its reach; naming a user beside a
    certificate is refused outright."""
    impostor = await connect_nats(_settings(server, pki, SUBSCRIBER, "retention"),
                                  name="impostor")
    with pytest.raises((nats.errors.Error, TimeoutError)):
        sub = await jetstream(impostor, timeout_s=2).pull_subscribe_bind(
            durable_name(SUBSCRIBER), stream=NAMES.events_stream)
        await sub.fetch(1, timeout=2)
    await impostor.close()
    context = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    context.load_cert_chain(str(pki / "retention.pem"), str(pki / "retention.key"))
    with pytest.raises(nats.errors.Error, match="Authorization Violation"):
        await nats.connect(server.url, tls=context, user=SUBSCRIBER, password="anything",
                           allow_reconnect=False, connect_timeout=2)


async def provision_and_publish(server: servers.NatsServer, pki: Path,
                                cameras: list[tuple[str, str]]) -> list[str]:
    """Streams and the subscriber's consumer (on palaiseau) made with the provisioning
    certificate, then one event per (commune, camera) published by retention; their ids."""
    admin = await connect_nats(_settings(server, pki, "admin", "init"), name="admin")
    await ensure_streams(jetstream(admin), NAMES, StreamLimits(raw_max_age_s=60))
    await add_subscriber(jetstream(admin), NAMES, SUBSCRIBER, ["palaiseau"])
    await admin.close()
    retention = await connect_nats(_settings(server, pki, "retention", "retention"),
                                   name="retention")
    ids = await publish_offline(retention, cameras)
    await retention.close()
    return ids


def test_production_refuses_a_plain_nats_connection_R37(monkeypatch: pytest.MonkeyPatch) -> None:
    base = dict(nats_url="nats://nats:4222",
                postgres_dsn="postgresql://x@h/x?sslmode=verify-full&sslrootcert=ca.pem",
                s3_endpoint="h:1", s3_access_key="key", s3_secret_key="a-long-secret",
                s3_secure=True)
    with pytest.raises(ValueError, match="production refuses a plain connection to NATS"):
        CommonSettings(**base)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="needs both"):
        CommonSettings(**base, local_mode=True, nats_tls_cert=Path("c.pem"))  # type: ignore[arg-type]
    assert CommonSettings(**base, nats_tls_ca=Path("ca.pem"), nats_tls_cert=Path("c.pem"),
                          nats_tls_key=Path("c.key")).nats_tls_cert == Path("c.pem")


def test_the_events_client_takes_its_certificate_from_the_environment(tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    tls = _deployment(pki)
    server = servers.start_nats(tmp_path / "nats", externals={SUBSCRIBER: ["palaiseau"]}, tls=tls)
    try:
        asyncio.run(provision_and_publish(server, pki, [("palaiseau", "gare")]))
        # Its certificate is its account: no password given (issue 34).
        proc = follow_client(server, VIGIE_SUBSCRIBER_PASSWORD="",
                             VIGIE_NATS_TLS_CA=str(pki / "ca.pem"),
                             VIGIE_NATS_TLS_CERT=str(pki / f"{SUBSCRIBER}.pem"),
                             VIGIE_NATS_TLS_KEY=str(pki / f"{SUBSCRIBER}.key"))
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
        finally:
            proc.terminate()
            proc.wait(timeout=10)
        assert '"camera": "gare"' in line or '"camera":"gare"' in line, proc.stderr.read() \
            if proc.stderr else line
    finally:
        server.process.stop()
