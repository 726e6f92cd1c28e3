"""deploy/'s Prometheus configuration, alert rules and Grafana dashboard: well formed, and every
metric they use is one the services define (the e2e test of `vigie run` checks that the running
services export them)."""

from __future__ import annotations

import importlib
import importlib.util

import pytest
import yaml
from prometheus_client import REGISTRY

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
                 "VigieNoLifecycleBackstop", "VigieOwnershipNotConverging"}


def _defined_families() -> set[str]:
    for service in SERVICES:
        importlib.import_module(f"{module_name(service)}.__main__")
        if importlib.util.find_spec(f"{module_name(service)}.handlers"):
            importlib.import_module(f"{module_name(service)}.handlers")
    importlib.import_module("services.masking.worker")
    return {family(m.name) for m in REGISTRY.collect()}


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
    assert {j["job_name"] for j in config["scrape_configs"]} == {"vigie", "vigie-compose"}
    assert all(e.strip() for e in dashboard_exprs())
