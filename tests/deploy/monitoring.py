"""The metric families that deploy/'s alert rules and Grafana dashboard use."""

from __future__ import annotations

import json
import re

import yaml

from tests.harness import REPO

ALERTS = REPO / "deploy" / "prometheus" / "alerts.yml"
DASHBOARD = REPO / "deploy" / "grafana" / "vigie-dashboard.json"
_NAME = re.compile(r"\bvigie_[a-z0-9_]+")
_SUFFIX = re.compile(r"_(bucket|sum|count|total|created)$")


def family(sample_name: str) -> str:
    """`vigie_x_seconds_bucket` → `vigie_x_seconds`; `vigie_y_total` → `vigie_y`."""
    return _SUFFIX.sub("", sample_name)


def alert_rules() -> list[dict]:  # type: ignore[type-arg]
    return [r for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]]


def dashboard_exprs() -> list[str]:
    return [t["expr"] for p in json.loads(DASHBOARD.read_text())["panels"] for t in p["targets"]]


def referenced_families() -> set[str]:
    exprs = [r["expr"] for r in alert_rules()] + dashboard_exprs()
    return {family(n) for e in exprs for n in _NAME.findall(e)}


def exported_families(text: str) -> set[str]:
    """Families in a /metrics answer (Prometheus text format)."""
    return {family(line.split()[2]) for line in text.splitlines() if line.startswith("# TYPE ")}
