"""The object store is watched too (issue 36): SeaweedFS serves its own Prometheus metrics
(`-metricsPort`, as Compose and Kubernetes start it), and every SeaweedFS series the alert rules
read is one a real SeaweedFS exports — an alert on a misspelt name would never fire."""

from __future__ import annotations

import re
import urllib.request
from pathlib import Path

import pytest
from vigie.local import servers
from vigie.plumbing.storage.objects import ObjectStore

from tests.deploy.monitoring import alert_rules
from tests.harness import REPO, eventually

pytestmark = pytest.mark.integration


async def test_every_seaweedfs_series_the_alerts_read_is_exported_by_seaweedfs(
        tmp_path: Path) -> None:
    used = {n for rule in alert_rules() for n in re.findall(r"\bSeaweedFS_[A-Za-z0-9_]+",
                                                            rule["expr"])}
    assert {"SeaweedFS_volumeServer_resource", "SeaweedFS_volumeServer_volumes",
            "SeaweedFS_volumeServer_max_volumes"} <= used
    metrics_port = servers.free_port()
    server = servers.start_seaweedfs(tmp_path / "s3", metrics_port=metrics_port)
    try:
        store = ObjectStore(f"127.0.0.1:{server.port}", server.access_key, server.secret_key)
        await store.ensure_buckets(["recordings"])
        await store.put("recordings", "palaiseau/gare/a.mp4", b"x" * 4096)

        def exported() -> str:
            with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics",
                                        timeout=5) as answer:
                text: str = answer.read().decode()
            return text if "SeaweedFS_volumeServer_volumes{" in text else ""

        text = await eventually(exported, timeout_s=20, message="no SeaweedFS metrics")
        names = {line.split("{")[0].split(" ")[0] for line in text.splitlines()
                 if line and not line.startswith("#")}
        assert used <= names, f"alerts on series SeaweedFS does not export: {used - names}"
        # What the disk alert divides is there, one per type, for the data folder.
        kinds = set(re.findall(r'SeaweedFS_volumeServer_resource\{[^}]*type="(\w+)"', text))
        assert {"avail", "all"} <= kinds
    finally:
        server.process.stop()
    compose = (REPO / "docker-compose.yml").read_text()
    assert '"-metricsPort=9327"' in compose
