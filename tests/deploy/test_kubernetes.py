"""deploy/k8s, checked offline (no cluster runs here): every manifest validates against the schema
of a current Kubernetes (kubernetes-validate, strict: an unknown field is an error), the committed
files are the generator's output, every container has probes, resources and a restricted security
context, every Secret key used is in the example, every command's module imports, and only the
gateway is reachable from outside its namespace."""

from __future__ import annotations

import importlib
import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import kubernetes_validate
import pytest
import yaml
from vigie.security.secret_files import SECRETS, postgres_password, s3_keys

from services import module_name
from tests.harness import REPO

pytestmark = pytest.mark.unit

K8S = REPO / "deploy" / "k8s"
KUBERNETES = "1.37.0"  # the newest schema kubernetes-validate carries (checked below)


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("vigie_k8s_generate", K8S / "generate.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _load(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _manifests() -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    return [d for name in kustomization["resources"] for d in _load(K8S / name)]


def _pod_specs() -> list[tuple[dict[str, Any], dict[str, Any]]]:
    return [(d, d["spec"]["template"]["spec"]) for d in _manifests()
            if d["kind"] in {"Deployment", "StatefulSet", "Job"}]


def test_the_committed_manifests_are_the_generators_output() -> None:
    for name, text in _generator().outputs().items():
        assert (K8S / name).read_text() == text, f"{name}: run python deploy/k8s/generate.py"


def test_every_manifest_validates_against_a_current_kubernetes() -> None:
    assert KUBERNETES == kubernetes_validate.latest_version()
    documents = _manifests() + _load(K8S / "secrets.example.yaml")
    kinds = {d["kind"] for d in documents}
    assert {"StatefulSet", "Deployment", "Job", "PodDisruptionBudget", "NetworkPolicy",
            "Secret", "Ingress", "Service", "ConfigMap", "Namespace"} <= kinds
    for document in documents:
        kubernetes_validate.validate(document, KUBERNETES, strict=True)


def test_strict_validation_would_catch_a_misspelt_field() -> None:
    """The check above could fail: a typo in a probe is refused."""
    deployment = next(d for d in _manifests() if d["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["readinessProbes"] = container.pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES, strict=True)


def test_every_container_has_probes_resources_and_a_restricted_security_context() -> None:
    for owner, pod in _pod_specs():
        assert pod["securityContext"]["runAsNonRoot"] is True, owner["metadata"]["name"]
        assert pod.get("automountServiceAccountToken") is False
        for container in pod["containers"]:
            where = f"{owner['kind']}/{owner['metadata']['name']}/{container['name']}"
            if owner["kind"] != "Job":  # a one-shot has nothing to probe
                assert "readinessProbe" in container and "livenessProbe" in container, where
            limits = container["resources"]
            assert {"cpu", "memory"} <= set(limits["requests"]) and \
                {"cpu", "memory"} <= set(limits["limits"]), where
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True, where
            assert security["allowPrivilegeEscalation"] is False, where
            assert security["capabilities"]["drop"] == ["ALL"], where


def test_the_services_run_one_deployment_each_with_replicas_and_disruption_budgets() -> None:
    deployments = {d["metadata"]["name"]: d for d in _manifests() if d["kind"] == "Deployment"}
    budgets = {d["metadata"]["name"] for d in _manifests() if d["kind"] == "PodDisruptionBudget"}
    for name in ("ingest", "masking", "recorder", "viewer-gateway", "verbalisation", "retention"):
        spec = deployments[name]["spec"]
        container = spec["template"]["spec"]["containers"][0]
        assert container["args"] == ["service", name]
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        # Issue 35: every service twice at least — one process lost costs a commune nothing.
        assert spec["replicas"] >= 2, name
        assert name in budgets, f"{name} has replicas but no PodDisruptionBudget"
    nats = next(d for d in _manifests() if d["kind"] == "StatefulSet"
                and d["metadata"]["name"] == "nats")
    assert nats["spec"]["replicas"] == 3 and nats["spec"]["volumeClaimTemplates"]
    assert "nats" in budgets


def test_every_secret_is_a_projected_file_of_the_example_secret_R38() -> None:
    """Issue 35: secrets were environment variables (secretKeyRef), shown by `kubectl
    describe` and the pod spec. Each pod now projects from the Secret the keys its containers
    read — those only — as files under /run/secrets/vigie, named by VIGIE_<NAME>_FILE; the
    Secret's keys are the files `vigie secrets init` writes (one list with Compose)."""
    [example] = _load(K8S / "secrets.example.yaml")
    keys = set(example["stringData"])
    assert keys == set(SECRETS)
    secretish = re.compile(r"PASSWORD|SECRET|_KEY($|_)")
    used_anywhere = set()
    for name, pod in _pod_specs():
        projected = {i["key"] for v in pod.get("volumes", []) if v["name"] == "secrets"
                     and v["secret"]["secretName"] == example["metadata"]["name"]
                     for i in v["secret"]["items"]}
        named = set()
        for container in pod.get("initContainers", []) + pod["containers"]:
            for env in container.get("env", []):
                assert "secretKeyRef" not in env.get("valueFrom", {}), (name, env["name"])
                value = str(env.get("value", ""))
                if value.startswith("/run/secrets/vigie/"):
                    assert env["name"].endswith("_FILE"), (name, env["name"])
                    named.add(value.removeprefix("/run/secrets/vigie/"))
                elif secretish.search(env["name"]) and not value.startswith("/"):
                    raise AssertionError(f"{name}: {env['name']} holds a secret in the spec")
        assert projected == named, f"{name} projects {projected ^ named} it does not read"
        used_anywhere |= named
    assert used_anywhere <= keys and "totp_key" in used_anywhere


def test_every_command_runs_a_module_that_imports() -> None:
    for _, pod in _pod_specs():
        for container in pod["containers"]:
            if not container["image"].startswith("vigie:"):
                continue
            args = container["args"]
            if args[0] == "service":
                importlib.import_module(f"{module_name(args[1])}.__main__")
            else:
                result = subprocess.run([sys.executable, "-m", "vigie.cli.main", *args, "--help"],
                                        capture_output=True, text=True, timeout=60)
                assert result.returncode == 0, result.stderr


def test_only_the_gateway_is_reachable_from_outside_and_nats_config_is_generated() -> None:
    policies = [d for d in _manifests() if d["kind"] == "NetworkPolicy"]
    deny = next(p for p in policies if p["metadata"]["name"] == "default-deny")
    assert deny["spec"]["podSelector"] == {} and deny["spec"]["ingress"] == []
    open_to_all = [p["spec"]["podSelector"] for p in policies
                   if any("from" not in rule for rule in p["spec"].get("ingress", []))]
    assert open_to_all == [{"matchLabels": {"app.kubernetes.io/name": "viewer-gateway"}}]
    routes = _generator().nats_routes()
    generated = subprocess.run(
        [sys.executable, "-m", "vigie.cli.main", "nats-config", "--external",
         "prefecture-91=palaiseau,ballainvilliers", "--store-dir", "/data/jetstream",
         "--tls-dir", "/etc/nats-certs",
         "--server-name", "$POD_NAME", *(a for r in routes for a in ("--route", r))],
        capture_output=True, text=True, timeout=60, check=True).stdout
    assert (K8S / "nats.conf").read_text() == generated


def _egress(name: str) -> list[dict[str, Any]]:
    [policy] = [d for d in _manifests() if d["kind"] == "NetworkPolicy"
                and d["metadata"]["name"] == f"{name}-egress"]
    assert policy["spec"]["policyTypes"] == ["Egress"]
    return list(policy["spec"]["egress"])


def _reaches(rules: list[dict[str, Any]]) -> set[tuple[str, int | None]]:
    return {(peer.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/name")
             or peer.get("ipBlock", {}).get("cidr", "?"), port.get("port"))
            for rule in rules for peer in rule["to"] for port in rule.get("ports", [{}])}


def test_every_pod_may_connect_only_where_its_work_is_R1_R38() -> None:
    """Issue 35: the policies were ingress-only — masking, which holds unmasked pictures, could
    send anywhere — and the lifecycle worker could not reach the filer's gRPC port."""
    policies = [d for d in _manifests() if d["kind"] == "NetworkPolicy"]
    deny = next(p for p in policies if p["metadata"]["name"] == "default-deny")
    assert deny["spec"]["policyTypes"] == ["Ingress", "Egress"] and deny["spec"]["egress"] == []
    workloads = {d["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"]
                 for d in _manifests() if d["kind"] in ("Deployment", "StatefulSet")}
    for name in workloads:
        _egress(name)  # each has its own
    assert _reaches(_egress("masking")) == {("nats", 4222), ("postgres", 5432)}
    assert ("seaweedfs", 8333) in _reaches(_egress("recorder"))
    assert ("nats", 4222) not in _reaches(_egress("vigie-backup"))
    lifecycle = _reaches(_egress("s3-lifecycle"))
    assert {("seaweedfs", 18888), ("seaweedfs", 9333), ("seaweedfs", 18333)} <= lifecycle
    seaweed_in = next(p for p in policies if p["metadata"]["name"] == "seaweedfs-from-vigie")
    lifecycle_in = next(r for r in seaweed_in["spec"]["ingress"]
                        if r["from"] == [{"podSelector": {"matchLabels": {
                            "app.kubernetes.io/name": "s3-lifecycle"}}}])
    assert {p["port"] for p in lifecycle_in["ports"]} >= {8888, 18888}


def test_the_store_grows_with_its_disk_and_nats_holds_an_outage_of_video() -> None:
    """Issue 35: `weed server` without -volume.max got 8 volumes (8 GiB, then "No writable
    volumes"); VIDEO kept its 20 GiB default (16–27 min of 45 cameras); NATS had no startup
    probe."""
    [seaweed] = [d for d in _manifests() if d["kind"] == "StatefulSet"
                 and d["metadata"]["name"] == "seaweedfs"]
    assert "-volume.max=0" in seaweed["spec"]["template"]["spec"]["containers"][0]["args"]
    [nats] = [d for d in _manifests() if d["kind"] == "StatefulSet"
              and d["metadata"]["name"] == "nats"]
    container = nats["spec"]["template"]["spec"]["containers"][0]
    assert container["startupProbe"]["failureThreshold"] * \
        container["startupProbe"]["periodSeconds"] >= 300
    config = next(d for d in _manifests() if d["kind"] == "ConfigMap"
                  and d["metadata"]["name"] == "vigie-config")
    video = int(config["data"]["VIGIE_BUS_VIDEO_MAX_BYTES"])
    assert video >= 2 * 3600 * 21_300_000, "two hours of 45 cameras at the measured bitrate"
    claim = nats["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"]
    assert int(claim.removesuffix("Gi")) * 2**30 > video * 1.2


def test_each_service_has_its_own_role_identity_and_certificate_R38() -> None:
    """Issue 25: each pod gets its own database role, object-store identity and client
    certificate (projected alone from the certificates' Secret), and speaks TLS to NATS."""
    deployments = {d["metadata"]["name"]: d for d in _manifests() if d["kind"] == "Deployment"}
    config = next(d for d in _manifests() if d["kind"] == "ConfigMap"
                  and d["metadata"]["name"] == "vigie-config")
    assert all(u.startswith("tls://") for u in config["data"]["VIGIE_NATS_URL"].split(","))
    assert config["data"]["VIGIE_S3_SECURE"] == "true"
    for name in ("ingest", "masking", "recorder", "viewer-gateway", "verbalisation", "retention"):
        pod = deployments[name]["spec"]["template"]["spec"]
        env = {e["name"]: e for e in pod["containers"][0]["env"]}
        assert env["VIGIE_POSTGRES_DSN"]["value"].startswith(
            f"postgresql://vigie_{name.replace('-', '_')}@")
        assert env["VIGIE_POSTGRES_PASSWORD_FILE"]["value"] == \
            f"/run/secrets/vigie/{postgres_password(name)}"
        assert env["VIGIE_S3_ACCESS_KEY_FILE"]["value"] == \
            f"/run/secrets/vigie/{s3_keys(name)[0]}"
        (certs,) = [v for v in pod["volumes"] if v["name"] == "certs"]
        # Its own certificate and the CA only; the gateway's police port also the revocation list.
        assert {i["key"] for i in certs["secret"]["items"]} == {"ca.pem", f"{name}.pem",
                                                                 f"{name}.key"} | (
            {"crl.pem"} if name == "viewer-gateway" else set())
        if name == "viewer-gateway":  # R30: a revoked post's certificate is refused
            assert env["VIGIE_VIEWER_GATEWAY_POLICE_CLIENT_CRL"]["value"] == "/run/certs/crl.pem"
        assert env["VIGIE_NATS_TLS_KEY"]["value"].endswith("client.key")
        assert "sslmode=verify-full" in env["VIGIE_POSTGRES_DSN"]["value"]


def test_the_database_is_backed_up_each_night_for_thirty_days_at_most_R4() -> None:
    (cron,) = [d for d in _manifests() if d["kind"] == "CronJob"]
    container = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    args = container["args"]
    assert args[0] == "backup" and int(args[args.index("--keep-days") + 1]) <= 30
    assert "sslmode=verify-full" in str(container["env"])


def test_kube_prometheus_users_get_the_same_scrape_and_the_same_rules(tmp_path: Path) -> None:
    """Issue 36: a cluster with the Prometheus Operator scrapes through a PodMonitor and loads a
    PrometheusRule, which must be what deploy/prometheus holds — the job "vigie" (every pod of
    the namespace, port "metrics", labels service and replica) and alerts.yml verbatim, which
    promtool accepts and the promtool cases test."""
    monitoring = _load(K8S / "monitoring" / "kube-prometheus.yaml")
    kinds = {d["kind"]: d for d in monitoring}
    assert set(kinds) == {"PodMonitor", "PrometheusRule"}
    pod_monitor, rule = kinds["PodMonitor"]["spec"], kinds["PrometheusRule"]["spec"]
    assert pod_monitor["namespaceSelector"] == {"matchNames": ["vigie"]}
    assert pod_monitor["selector"]["matchLabels"] == {"app.kubernetes.io/part-of": "vigie"}
    (endpoint,) = pod_monitor["podMetricsEndpoints"]
    assert endpoint["port"] == "metrics"
    targets = {r["targetLabel"]: r for r in endpoint["relabelings"]}
    static = next(j for j in yaml.safe_load(
        (REPO / "deploy" / "prometheus" / "prometheus.yml").read_text())["scrape_configs"]
        if j["job_name"] == "vigie")
    assert {r["target_label"] for r in static["relabel_configs"] if "target_label" in r} \
        == set(targets) - {"job"}
    assert targets["job"]["replacement"] == "vigie"
    alerts = yaml.safe_load((REPO / "deploy" / "prometheus" / "alerts.yml").read_text())
    assert rule == {"groups": alerts["groups"]}
    rules_file = tmp_path / "rules.yml"
    rules_file.write_text(yaml.safe_dump(rule))
    promtool = shutil.which("promtool")
    assert promtool, "make setup installs Debian's prometheus (promtool)"
    checked = subprocess.run([promtool, "check", "rules", str(rules_file)],
                             capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # Every pod that serves metrics carries the label the PodMonitor selects, and a port so
    # named — the NATS and PostgreSQL exporters too.
    served = {d["metadata"]["name"] for d, pod in _pod_specs()
              if any(p.get("name") == "metrics" for c in pod["containers"]
                     for p in c.get("ports", []))}
    assert {"nats", "postgres", "seaweedfs", "ingest", "masking", "recorder", "viewer-gateway",
            "verbalisation", "retention"} <= served
    for document, _ in _pod_specs():
        if document["metadata"]["name"] in served:
            assert document["spec"]["template"]["metadata"]["labels"][
                "app.kubernetes.io/part-of"] == "vigie"
    kustomization = yaml.safe_load((K8S / "monitoring" / "kustomization.yaml").read_text())
    assert kustomization["resources"] == ["kube-prometheus.yaml"]
