"""deploy/'s Prometheus configuration, alert rules and Grafana dashboard: well formed, and every
metric they use is one the services define (the e2e test of `vigie run` checks that the running
services export them)."""

from __future__ import annotations

import importlib
import importlib.util
import shutil
import subprocess

import pytest
import yaml
from prometheus_client import REGISTRY
from vigie.plumbing.bus.monitoring import metrics_of as nats_metrics_of

from services import SERVICES, module_name
from tests.deploy.monitoring import (
    alert_rules,
    dashboard_exprs,
    family,
    referenced_families,
)
from tests.harness import REPO

pytestmark = pytest.mark.unit

OPERATOR_NEEDS = {  # issue 20: the figures an operator needs
    "vigie_ingest_frames", "vigie_masking_frames",  # per-camera fps in and out
    "vigie_masking_latency_seconds", "vigie_recorder_upload_seconds",
    "vigie_ownership_moves", "vigie_register_unsigned_age_seconds",
}
ALERTS_NEEDED = {"VigieCameraOffline", "VigieMaskingFailed", "VigieRecorderBacklog",
                 "VigieNoLifecycleBackstop", "VigieOwnershipNotConverging",
                 # issue 36: what the rules could not see
                 "VigieServiceAbsent", "VigieSegmentUploadFailing", "VigieRetentionSweepLate",
                 "VigieCertificateExpiring", "VigieAuthorisationExpiring", "VigieClockOffset",
                 "VigieObjectStoreDiskFilling", "VigieObjectStoreVolumesExhausted",
                 "VigieObjectStoreDown", "VigieNatsDown", "VigieNatsUnhealthy",
                 "VigieNatsStoreFilling", "VigieNatsStreamAtCeiling", "VigiePostgresDown",
                 "VigiePostgresConnectionsNearLimit"}
PROMETHEUS = REPO / "deploy" / "prometheus"


def _defined_families() -> set[str]:
    for service in SERVICES:
        importlib.import_module(f"{module_name(service)}.__main__")
        if importlib.util.find_spec(f"{module_name(service)}.handlers"):
            importlib.import_module(f"{module_name(service)}.handlers")
    importlib.import_module("services.masking.worker")
    # NATS's figures are made by `vigie nats-exporter`, at each scrape (vigie.plumbing.bus.monitoring).
    return {family(m.name) for m in [*REGISTRY.collect(), *nats_metrics_of([])]}


def test_every_metric_an_alert_or_panel_uses_is_defined_by_a_service() -> None:
    used = referenced_families()
    assert OPERATOR_NEEDS <= used, OPERATOR_NEEDS - used
    missing = used - _defined_families()
    assert not missing, f"alerts or panels on metrics nobody defines: {sorted(missing)}"


def test_the_alerts_an_operator_needs_are_there_and_explained() -> None:
    rules = {r["alert"]: r for r in alert_rules()}
    assert ALERTS_NEEDED <= set(rules)
    operations = (REPO / "docs" / "operations.md").read_text()
    for name, rule in rules.items():
        assert rule["labels"]["severity"] in {"critical", "warning"}, name
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], name
        assert f"`{name}`" in operations, f"docs/operations.md says nothing of {name}"


def test_the_scrape_configuration_loads_the_alert_rules() -> None:
    config = yaml.safe_load((REPO / "deploy" / "prometheus" / "prometheus.yml").read_text())
    assert config["rule_files"] == ["alerts.yml"]
    assert {j["job_name"] for j in config["scrape_configs"]} == {"vigie", "vigie-compose",
                                                                 "seaweedfs", "nats", "postgres"}
    assert all(e.strip() for e in dashboard_exprs())


def test_promtool_accepts_the_rules_and_each_alert_fires_on_its_failure_and_only_then() -> None:
    """Issue 36: the alerts lied — « camera offline » after every hand-over, silence with every
    recorder gone or a store refusing uploads, the register's runbook pointing at the gateway.
    alerts.test.yml replays each case through Prometheus's own rule engine (promtool, Debian's
    `prometheus` package); every rule has a case where it fires."""
    promtool = shutil.which("promtool")
    assert promtool, "promtool missing: `make setup` installs Debian's prometheus package"
    check = subprocess.run([promtool, "check", "rules", str(PROMETHEUS / "alerts.yml")],
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    tested = subprocess.run([promtool, "test", "rules", str(PROMETHEUS / "alerts.test.yml")],
                            capture_output=True, text=True, timeout=120)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    cases = yaml.safe_load((PROMETHEUS / "alerts.test.yml").read_text())["tests"]
    firing = {t["alertname"] for case in cases for t in case["alert_rule_test"] if t["exp_alerts"]}
    rules = {r["alert"] for r in alert_rules()}
    assert rules <= firing, f"no case where these fire: {sorted(rules - firing)}"


def test_the_live_check_runs_the_deployed_rules_with_shorter_waits_only(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`make prometheus-check` (deploy/prometheus/check.py) replays alerts.yml against a running
    `vigie run`: the same expressions and labels, only `for:` divided; its scrape configuration
    is one Prometheus accepts."""
    spec = importlib.util.spec_from_file_location("prometheus_check", PROMETHEUS / "check.py")
    assert spec and spec.loader
    check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(check)
    deployed = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"]
    scaled = check.scaled_rules(PROMETHEUS / "alerts.yml", 10)["groups"]
    for original, short in zip(deployed[0]["rules"], scaled[0]["rules"], strict=True):
        assert {k: v for k, v in original.items() if k != "for"} == \
            {k: v for k, v in short.items() if k != "for"}
        if "for" in original:
            assert check._seconds(short["for"]) == max(2, round(check._seconds(original["for"]) / 10))
    state = {"ports": {"services": {"ingest-1": 18011, "viewer-gateway": 8080},
                       "metrics": {"nats": 18007, "postgres": 18008, "seaweedfs": 18009}},
             "services": {"ingest-1": {"service": "ingest"},
                          "viewer-gateway": {"service": "viewer-gateway"}}}
    (tmp_path / "alerts.yml").write_text(yaml.safe_dump({"groups": scaled}))
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(check.prometheus_config(
        state, interval_s=2, rule_files=["alerts.yml"])))
    promtool = shutil.which("promtool")
    assert promtool
    done = subprocess.run([promtool, "check", "config", str(tmp_path / "prometheus.yml")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_vigie_prometheus_config_points_a_prometheus_at_make_run(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A Prometheus pointed at `make run` loads the deployed rules and scrapes what the
    deployments scrape; without a running `vigie run`, one clear line."""
    import json
    import sys

    missing = subprocess.run([sys.executable, "-m", "vigie.cli.main", "prometheus-config",
                              "--data", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and "no running `vigie run`" in missing.stderr
    (tmp_path / "run.json").write_text(json.dumps({
        "ports": {"services": {"recorder-1": 18012, "recorder-2": 18013},
                  "metrics": {"nats": 18007, "postgres": 18008, "seaweedfs": 18009}},
        "services": {"recorder-1": {"service": "recorder"}, "recorder-2": {"service": "recorder"}},
    }))
    made = subprocess.run([sys.executable, "-m", "vigie.cli.main", "prometheus-config",
                           "--data", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    config = yaml.safe_load(made.stdout)
    assert config["rule_files"] == [str(PROMETHEUS / "alerts.yml")]
    jobs = {j["job_name"]: j["static_configs"] for j in config["scrape_configs"]}
    assert set(jobs) == {"vigie", "nats", "postgres", "seaweedfs"}
    assert {c["labels"]["replica"]: c["labels"]["service"] for c in jobs["vigie"]} == {
        "recorder-1": "recorder", "recorder-2": "recorder"}
    (tmp_path / "prometheus.yml").write_text(made.stdout)
    checked = subprocess.run([shutil.which("promtool") or "promtool", "check", "config",
                              str(tmp_path / "prometheus.yml")], capture_output=True, text=True,
                             timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
