"""A Prometheus configuration for the running embedded default (`vigie prometheus-config`): what
deploy/prometheus/prometheus.yml scrapes in Compose or Kubernetes — every service replica (labels
`service`, `replica`), the NATS and PostgreSQL exporters, SeaweedFS — as static targets read from
`vigie run`'s run.json, so that a Prometheus pointed at `make run` loads the deployed rules as is."""

from __future__ import annotations

from typing import Any


def prometheus_config(state: dict[str, Any], *, interval_s: float = 15,
                      rule_files: list[str] | None = None) -> dict[str, Any]:
    ports, metrics = state["ports"]["services"], state["ports"].get("metrics", {})
    services = {name: info["service"] for name, info in state["services"].items()}
    jobs: list[dict[str, Any]] = [{"job_name": "vigie", "static_configs": [
        {"targets": [f"127.0.0.1:{port}"],
         "labels": {"service": services.get(name, name), "replica": name}}
        for name, port in ports.items()]}]
    for job in ("nats", "postgres"):
        if job in metrics:
            jobs.append({"job_name": job, "static_configs": [
                {"targets": [f"127.0.0.1:{metrics[job]}"], "labels": {"service": job}}]})
    if "seaweedfs" in metrics:
        jobs.append({"job_name": "seaweedfs", "static_configs": [
            {"targets": [f"127.0.0.1:{metrics['seaweedfs']}"]}]})
    timeout = min(10.0, interval_s * 0.95)
    return {"global": {"scrape_interval": f"{interval_s:g}s",
                       "evaluation_interval": f"{interval_s:g}s",
                       "scrape_timeout": f"{round(timeout * 1000)}ms"},
            "rule_files": rule_files or [], "scrape_configs": jobs}
