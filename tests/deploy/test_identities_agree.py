"""One definition of who each service is — its NATS user (vigie.plumbing.catalog.NATS_USER),
its database role (vigie.plumbing.db.roles.role_name), its object-store identity
(vigie.plumbing.storage.identities.key_env) and its client certificate (one per service name) —
followed by `make run`, Compose and Kubernetes alike (issue 34: they had been written three
times). Each platform is read as it runs: the embedded default's environment for a replica,
`docker-compose config`, the committed manifests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from vigie.local.supervisor import Ports, service_env
from vigie.plumbing import certs
from vigie.plumbing.bus.permissions import SERVICE_USERS
from vigie.plumbing.catalog import NATS_USER, PROVISIONING_USER, SERVICES
from vigie.plumbing.db.roles import GRANTS, role_name
from vigie.plumbing.storage.identities import key_env

from tests.deploy.test_compose import _compose, _env_with_secrets
from tests.deploy.test_kubernetes import _manifests
from tests.harness import REPO

pytestmark = pytest.mark.unit


def _definition(service: str) -> dict[str, str]:
    return {"nats_user": NATS_USER[service], "role": role_name(service),
            "s3_key": key_env(service)[0], "certificate": service}


def _make_run(service: str) -> dict[str, str]:
    sec: dict[str, Any] = {
        "s3_services": {s: {"access_key": key_env(s)[0], "secret_key": "x"} for s in SERVICES},
        "s3_access_key": "admin", "s3_secret_key": "x", "export_key": "k",
        "register_signing_key": "k", "register_key": "k", "totp_key": "k", "recording_key": "k"}
    env = service_env(ports=Ports.from_base(20000, 8000), sec=sec, service=service,
                      pg_dsn=f"postgresql://{role_name(service)}:pw@127.0.0.1/vigie",
                      replica=service, certificates=Path("/data/pki"))
    # make run speaks TLS to NATS too, each service with its own certificate (issue 39).
    return {"nats_user": env["VIGIE_NATS_USER"], "role": _role(env["VIGIE_POSTGRES_DSN"]),
            "s3_key": env["VIGIE_S3_ACCESS_KEY"],
            "certificate": Path(env["VIGIE_NATS_TLS_KEY"]).stem}


def _compose_services() -> dict[str, Any]:
    env = _env_with_secrets()
    result = _compose("config", env=env)
    assert result.returncode == 0, result.stderr
    return dict(yaml.safe_load(result.stdout)["services"])


def _from_compose(services: dict[str, Any], service: str) -> dict[str, str]:
    env = services[service]["environment"]
    mounted = [v["source"] for v in services[service]["volumes"] if isinstance(v, dict)] + [
        v.split(":")[0] for v in services[service]["volumes"] if isinstance(v, str)]
    [cert] = [m.rsplit("/", 1)[1].removesuffix(".key") for m in mounted
              if m.endswith(".key") and "/certs/" in m]
    return {"nats_user": env["VIGIE_NATS_USER"], "role": _role(env["VIGIE_POSTGRES_DSN"]),
            "s3_key": _key_variable(env["VIGIE_S3_ACCESS_KEY_FILE"]), "certificate": cert}


def _role(dsn: str) -> str:
    return dsn.split("//")[1].split("@")[0].split(":")[0]


def _key_variable(path: str) -> str:
    """The access key's file (deploy/secrets/s3_access_key_<service>) as the variable make run
    sets (VIGIE_S3_ACCESS_KEY_<SERVICE>): one identity, whichever way it is given."""
    return "VIGIE_" + path.rsplit("/", 1)[1].upper()


def _from_kubernetes(service: str) -> dict[str, str]:
    [deployment] = [d for d in _manifests() if d["kind"] == "Deployment"
                    and d["metadata"]["name"] == service]
    pod = deployment["spec"]["template"]["spec"]
    env = {e["name"]: e for e in pod["containers"][0]["env"]}
    [certs] = [v for v in pod["volumes"] if v["name"] == "certs"]
    [cert] = [i["key"].removesuffix(".key") for i in certs["secret"]["items"]
              if i["key"].endswith(".key")]
    return {"nats_user": env["VIGIE_NATS_USER"]["value"],
            "role": _role(env["VIGIE_POSTGRES_DSN"]["value"]),
            "s3_key": _key_variable(env["VIGIE_S3_ACCESS_KEY_FILE"]["value"]),
            "certificate": cert}


def test_make_run_compose_and_kubernetes_give_each_service_the_same_identities_R38() -> None:
    assert set(NATS_USER) == set(SERVICES) == set(GRANTS)
    assert set(NATS_USER.values()) == set(SERVICE_USERS), "every NATS user has its permissions"
    compose = _compose_services()
    for service in SERVICES:
        expected = _definition(service)
        assert _make_run(service) == expected, ("make run", service)
        assert _from_compose(compose, service) == expected, ("Compose", service)
        assert _from_kubernetes(service) == expected, ("Kubernetes", service)


@pytest.mark.parametrize("conf", ["deploy/nats/nats.conf", "deploy/compose/nats-cluster.conf",
                                  "deploy/k8s/nats.conf"])
def test_nats_knows_each_service_by_its_certificate_and_nothing_else_R38(conf: str) -> None:
    """Issue 34: nats-server took another holder's certificate with a password. Under TLS each
    user is named by its certificate's subject (`verify_and_map`) and has no password; the
    subject is the one `vigie certs init` writes into the service's certificate, and its
    inboxes are its NATS user's."""
    text = (REPO / conf).read_text()
    [client_tls] = [line for line in text.splitlines() if line.startswith("tls:")]
    assert "verify_and_map: true" in client_tls
    assert "password" not in text
    pki = certs.make_ca()
    for service in (*SERVICES, "init"):
        cert = certs.issue(pki, service, client=True, kind=certs.SERVICE)
        subject = x509.load_pem_x509_certificate(cert.cert_pem).subject.rfc4514_string()
        user = NATS_USER.get(service, PROVISIONING_USER)
        entry = text.split(f'{{ user: "{subject}"', 1)[1].split("} }", 1)[0]
        assert f'"_INBOX_{user}.>"' in entry, (service, entry)
