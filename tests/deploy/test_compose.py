"""Production packaging, checked without a container engine (none runs here): the Compose file
validates with docker-compose itself, every service has a healthcheck and its settings, every
Dockerfile COPY source exists and every command's module imports."""

from __future__ import annotations

import base64
import importlib
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from vigie.plumbing import certs
from vigie.security.secret_files import SECRETS, postgres_password, s3_keys

from services import SERVICES, module_name
from tests.harness import REPO

pytestmark = pytest.mark.unit

REQUIRED = {"VIGIE_NATS_URL", "VIGIE_NATS_USER", "VIGIE_NATS_TLS_CERT", "VIGIE_POSTGRES_DSN",
            "VIGIE_S3_ENDPOINT", "VIGIE_S3_ACCESS_KEY", "VIGIE_S3_SECRET_KEY"}


def _env_with_secrets() -> dict[str, str]:
    """The environment Compose is validated in: the secrets are files (deploy/secrets), so
    nothing of them needs to be here."""
    return dict(os.environ)


def _compose(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("docker-compose")
    assert binary, "docker-compose missing: `make setup` installs it"
    return subprocess.run([binary, "-f", str(REPO / "docker-compose.yml"), *args],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=60)


@pytest.fixture(scope="module")
def rendered() -> dict:  # type: ignore[type-arg]
    result = _compose("config", env=_env_with_secrets())
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)  # type: ignore[no-any-return]


def test_compose_file_validates() -> None:
    assert _compose("config", "-q", env=_env_with_secrets()).returncode == 0


def test_ingest_masking_and_recorder_can_be_scaled(rendered: dict) -> None:  # type: ignore[type-arg]
    """`docker compose up --scale recorder=3` (issue 19): no fixed name, no published port; each
    replica is named by its container's host name (VIGIE_REPLICA left empty)."""
    for name in ("ingest", "masking", "recorder"):
        svc = rendered["services"][name]
        assert "container_name" not in svc and "ports" not in svc, name
        assert not svc["environment"].get("VIGIE_REPLICA"), name


# Settings that name files or are empty on purpose, not secrets themselves.
NOT_SECRET = {"VIGIE_NATS_TLS_KEY", "VIGIE_VIEWER_GATEWAY_TLS_KEY", "VIGIE_REGISTER_KEY",
              "VIGIE_BACKUP_S3_ACCESS_KEY"}  # (the remote identity: its key is a file)


def test_every_secret_is_a_mounted_file_never_an_environment_variable_R38(
        rendered: dict) -> None:  # type: ignore[type-arg]
    """Issue 35: `podman inspect` showed every password and key of the deployment, since they
    were environment variables. Each is a file of deploy/secrets now — the very list `vigie
    secrets init` writes —, mounted only into the containers that read it, and named by
    VIGIE_<NAME>_FILE (POSTGRES_PASSWORD_FILE for PostgreSQL's image)."""
    declared = rendered["secrets"]
    assert set(declared) == set(SECRETS), "one list: Compose, Kubernetes and `vigie secrets init`"
    assert all(Path(d["file"]).parent.name == "secrets" for d in declared.values())
    secretish = re.compile(r"PASSWORD|SECRET|_KEY($|_)")
    for name, svc in rendered["services"].items():
        env = svc.get("environment") or {}
        given = {s["source"] if isinstance(s, dict) else s for s in svc.get("secrets", [])}
        for var, value in env.items():
            if var.endswith("_FILE") and str(value).startswith("/run/secrets/"):
                assert str(value).removeprefix("/run/secrets/") in given, (name, var)
                continue
            if secretish.search(var) and var not in NOT_SECRET:
                raise AssertionError(f"{name}: {var} is a secret in the environment")
            if str(value).startswith("postgresql://"):
                assert urlsplit(str(value)).password is None, (name, var, "a password in a DSN")
        used = {str(v).removeprefix("/run/secrets/") for v in env.values()
                if str(v).startswith("/run/secrets/") and "/" not in
                str(v).removeprefix("/run/secrets/")}  # (not the gateway's TLS folder)
        assert given == used, f"{name} is given secrets it does not read: {given - used}"
    for name in SERVICES:  # each its own, and none of another's
        own = {postgres_password(name), *s3_keys(name)}
        given = {s["source"] for s in rendered["services"][name]["secrets"]}
        assert own <= given, name
        others = {f for other in SERVICES if other != name
                  for f in (postgres_password(other), *s3_keys(other))}
        assert not given & (others | {postgres_password(None), *s3_keys(None)}), name


def test_vigie_secrets_init_writes_every_secret_once_and_keeps_what_exists(
        tmp_path: Path) -> None:
    """`vigie secrets init` writes the folder Compose mounts (and Kubernetes' Secret is made
    from), never overwriting a file: a password changed under a running deployment would lock
    its services out."""
    folder = tmp_path / "secrets"
    folder.mkdir()
    (folder / "totp_key").write_text("kept\n")
    done = subprocess.run([sys.executable, "-m", "vigie.cli.main", "secrets", "init", "--out",
                           str(folder)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert {p.name for p in folder.iterdir()} == set(SECRETS)
    assert (folder / "totp_key").read_text() == "kept\n"
    assert folder.stat().st_mode & 0o777 == 0o700, "the folder is the host's guard"
    values = {p.name: p.read_text().strip() for p in folder.iterdir()}
    assert len({v for k, v in values.items() if "password" in k or "secret" in k}) == \
        len([k for k in values if "password" in k or "secret" in k]), "each its own"
    assert values["s3_access_key_recorder"] == "vigie-recorder"
    assert base64.b64decode(values["recording_key"]).startswith(b"-----BEGIN PRIVATE KEY")
    again = subprocess.run([sys.executable, "-m", "vigie.cli.main", "secrets", "init", "--out",
                            str(folder)], capture_output=True, text=True, timeout=60)
    assert "made nothing" in again.stdout
    assert {p.name: p.read_text().strip() for p in folder.iterdir()} == values


def test_every_service_has_a_healthcheck_and_its_settings(rendered: dict) -> None:  # type: ignore[type-arg]
    services = rendered["services"]
    for name in ("nats", "postgres", "seaweedfs", "s3-lifecycle", *SERVICES):
        assert "healthcheck" in services[name], f"{name} has no healthcheck"
    for name in SERVICES:
        svc = services[name]
        assert svc["command"] == ["service", name]
        env = {var.removesuffix("_FILE") for var in svc["environment"]}  # given or a file
        assert REQUIRED <= env, f"{name} lacks {REQUIRED - env}"
        assert svc["depends_on"]["init"]["condition"] == "service_completed_successfully"
        assert "/healthz" in " ".join(svc["healthcheck"]["test"])
    assert services["init"]["command"] == ["init"]
    for dep in ("nats", "postgres", "seaweedfs"):
        assert services["init"]["depends_on"][dep]["condition"] == "service_healthy"


def test_dockerfile_copy_sources_exist_and_commands_import(rendered: dict) -> None:  # type: ignore[type-arg]
    dockerfile = (REPO / "Dockerfile").read_text()
    for line in dockerfile.splitlines():
        match = re.match(r"COPY\s+(?!--from)(.+)\s+\S+$", line.strip())
        if match:
            for source in match.group(1).split():
                assert (REPO / source).exists(), f"COPY source {source} missing"
    for svc in rendered["services"].values():
        command = svc.get("command") or []
        if command[:1] == ["service"]:
            importlib.import_module(f"{module_name(command[1])}.__main__")
    result = subprocess.run([sys.executable, "-m", "vigie.cli.main", "init", "--help"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0


def test_committed_nats_config_is_the_generated_one() -> None:
    generated = subprocess.run(
        [sys.executable, "-m", "vigie.cli.main", "nats-config", "--external",
         "prefecture-91=palaiseau,ballainvilliers", "--store-dir", "/data/jetstream",
         "--tls-dir", "/etc/nats/certs", "--monitor-host", "127.0.0.1"],
        capture_output=True, text=True, timeout=60, check=True).stdout
    assert (REPO / "deploy" / "nats" / "nats.conf").read_text() == generated
    # Issue 34: the unauthenticated monitoring port stays inside the container.
    assert 'http: "127.0.0.1:8222"' in generated


def test_the_wheel_carries_the_web_ui(tmp_path: Path) -> None:
    """The image installs a wheel: the UI's static files must be inside it."""
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                    "-q", "-w", str(tmp_path), str(REPO)], check=True, timeout=300)
    [wheel] = tmp_path.glob("vigie-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    ui = REPO / "services" / "viewer_gateway" / "ui"
    expected = {f"services/viewer_gateway/ui/{p.relative_to(ui).as_posix()}"
                for p in ui.rglob("*") if p.is_file()}
    assert expected and expected <= names, sorted(expected - names)


def test_the_nats_cluster_option_validates_with_three_nodes_and_replicated_streams() -> None:
    """docker-compose -f docker-compose.yml -f deploy/compose/nats-cluster.yml (issue 20)."""
    binary = shutil.which("docker-compose")
    assert binary
    result = subprocess.run(
        [binary, "-f", str(REPO / "docker-compose.yml"), "-f",
         str(REPO / "deploy" / "compose" / "nats-cluster.yml"), "config"],
        capture_output=True, text=True, env=_env_with_secrets(), cwd=REPO, timeout=60)
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    names = {services[n]["environment"]["NATS_SERVER_NAME"] for n in ("nats", "nats-2", "nats-3")}
    assert names == {"nats-1", "nats-2", "nats-3"}
    assert services["init"]["environment"]["VIGIE_BUS_REPLICAS"] == "3"
    generated = subprocess.run(
        [sys.executable, "-m", "vigie.cli.main", "nats-config", "--external",
         "prefecture-91=palaiseau,ballainvilliers", "--store-dir", "/data/jetstream",
         "--tls-dir", "/etc/nats/certs", "--monitor-host", "127.0.0.1",
         "--server-name", "$NATS_SERVER_NAME", "--route", "nats-route://nats:6222",
         "--route", "nats-route://nats-2:6222", "--route", "nats-route://nats-3:6222"],
        capture_output=True, text=True, timeout=60, check=True).stdout
    assert (REPO / "deploy" / "compose" / "nats-cluster.conf").read_text() == generated


def test_each_service_has_its_own_database_role_identity_and_certificate_R38() -> None:
    """Issue 25: no service holds the tables' owner, the object store's administrator or
    another's certificate."""
    result = _compose("config", env=_env_with_secrets())
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    for name in SERVICES:
        svc_env = services[name]["environment"]
        role = "vigie_" + name.replace("-", "_")
        assert svc_env["VIGIE_POSTGRES_DSN"].startswith(f"postgresql://{role}@"), name
        assert svc_env["VIGIE_POSTGRES_PASSWORD_FILE"] == \
            f"/run/secrets/{postgres_password(name)}", name
        assert svc_env["VIGIE_S3_ACCESS_KEY_FILE"] == f"/run/secrets/{s3_keys(name)[0]}", name
        # TLS to NATS with its own client certificate, and nobody else's (R37).
        assert svc_env["VIGIE_NATS_URL"].startswith("tls://"), name
        assert svc_env["VIGIE_POSTGRES_DSN"].endswith("?sslmode=verify-full&sslrootcert="
                                                      "/run/certs/ca.pem"), name
        mounted = str(services[name]["volumes"])
        assert f"certs/{name}.key" in mounted and "certs/init.key" not in mounted, name
    init = services["init"]["environment"]
    assert init["VIGIE_POSTGRES_DSN"].startswith("postgresql://vigie@")
    assert init["VIGIE_POSTGRES_PASSWORD_FILE"] == "/run/secrets/postgres_password"
    assert init["VIGIE_S3_ACCESS_KEY_FILE"] == "/run/secrets/s3_access_key"
    assert "-s3.config=/config/s3.json" in services["seaweedfs"]["command"]
    assert "ssl=on" in services["postgres"]["command"]
    assert "-s3.cert.file=/certs/seaweedfs.pem" in services["seaweedfs"]["command"]
    assert "-filer.encryptVolumeData" in services["seaweedfs"]["command"]
    backup = services["backup"]
    assert backup["command"][:1] == ["backup"] and "--every-hours" in backup["command"]
    assert int(backup["command"][backup["command"].index("--keep-days") + 1]) <= 30, "R4"
    assert all(services[n]["environment"]["VIGIE_S3_SECURE"] == "true" for n in SERVICES)
    hba = (REPO / "deploy" / "postgres" / "pg_hba.conf").read_text().splitlines()
    assert not [line for line in hba if line.startswith("host ")], "no plain network entry"
    assert services["s3-config"]["command"][:1] == ["s3-config"]
    assert services["seaweedfs"]["depends_on"]["s3-config"]["condition"] == \
        "service_completed_successfully"


def test_compose_rotates_logs_limits_resources_and_keeps_nats_off_every_interface(
    rendered: dict,  # type: ignore[type-arg]
) -> None:
    """Issue 35: no log rotation, no resource limits, NATS published on every interface, the
    store full after 8 GiB, VIDEO at its 20 GiB default, the services once each."""
    services = rendered["services"]
    for name, svc in services.items():
        assert svc.get("logging", {}).get("options", {}).get("max-size"), name
    for name in SERVICES:
        limits = services[name]["deploy"]["resources"]["limits"]
        assert limits.get("cpus") and limits.get("memory"), name
        assert services[name]["deploy"]["replicas"] >= 2, name
    assert services["nats"]["ports"] == ["127.0.0.1:4222:4222/tcp"], "loopback unless told"
    assert "-volume.max=0" in services["seaweedfs"]["command"]
    assert int(services["init"]["environment"]["VIGIE_BUS_VIDEO_MAX_BYTES"]) >= \
        2 * 3600 * 21_300_000


def test_the_gateways_replicas_sit_behind_a_load_balancer_that_haproxy_accepts(
    rendered: dict, tmp_path: Path,  # type: ignore[type-arg]
) -> None:
    """Issue 35: the gateway ran once — a commune lost its screens with one process. Its replicas
    publish nothing; `console` (HAProxy) publishes the console and the police port, ends TLS for
    the console with the gateway's own pair, passes the police port through (the gateway checks
    the posts' certificates, R30), and the gateways believe X-Forwarded-For from it alone.
    Debian's haproxy checks the configuration as Compose mounts it."""
    services = rendered["services"]
    gateway, console = services["viewer-gateway"], services["console"]
    assert "ports" not in gateway and gateway["deploy"]["replicas"] >= 2
    assert gateway["environment"]["VIGIE_VIEWER_GATEWAY_TRUSTED_PROXIES"]
    assert sorted((p["published"], p["target"]) for p in console["ports"]) == \
        [(443, 8080), (8443, 8443)]
    mounts = {v.split(":")[1]: Path(v.split(":")[0]) for v in console["volumes"]}
    config = mounts["/usr/local/etc/haproxy/haproxy.cfg"]
    assert mounts["/usr/local/etc/haproxy/tls/cert.pem"].name == "cert.pem"
    assert mounts["/usr/local/etc/haproxy/tls/cert.pem.key"].name == "key.pem"
    # The configuration, with the certificate where the container has it, checked by haproxy.
    tls = tmp_path / "tls"
    ca = certs.make_ca("test")
    cert, key = certs.issue(ca, "vigie-gateway", hosts=("localhost",), server=True).write(
        tls, "cert")
    key.rename(tls / "cert.pem.key")
    text = config.read_text().replace("/usr/local/etc/haproxy/tls/", f"{tls}/")
    (tmp_path / "haproxy.cfg").write_text(text)
    checked = subprocess.run(["haproxy", "-c", "-f", str(tmp_path / "haproxy.cfg")],
                             capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "server-template gateway 8 viewer-gateway:8080 ssl" in text
    assert "option forwardfor" in text
    police = text.split("backend police", 1)[1]
    assert "mode tcp" in police and "viewer-gateway:8443" in police


def test_the_runtime_image_can_serve_websockets() -> None:
    """Issue 35: the image installs Vigie's runtime dependencies only, and uvicorn without a
    WebSocket library answers every live view's upgrade with 404 — the suite, with its test
    dependencies, never saw it; the Compose deployment's live views did."""
    import tomllib
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {re.split(r"[<>=\[ ;]", d, maxsplit=1)[0].lower() for d in deps}
    assert names & {"websockets", "wsproto"} or "uvicorn[standard]" in deps
