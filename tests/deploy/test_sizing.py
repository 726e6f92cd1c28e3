"""`vigie sizing` (issue 36): the figures follow the benches' costs (libs/vigie/operations/sizing/costs.json),
and the Kubernetes overlay it writes applies to deploy/k8s and validates (R4: retention ≤ 30 days)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonpatch
import kubernetes_validate
import pytest
import yaml
from vigie.operations.sizing import CameraGroup, Inputs, kubernetes_overlay, load_costs, size

from tests.deploy.test_kubernetes import KUBERNETES, _manifests

pytestmark = pytest.mark.unit


def test_one_commune_is_sized_from_the_measured_costs() -> None:
    costs = load_costs()
    inputs = Inputs(groups=[CameraGroup(45)], retention_days=30, outage_hours=2, headroom=0.3)
    sizing = size(inputs)
    grow = 1.3
    assert sizing.cores["masking"] == pytest.approx(
        45 * 25 / costs["masking_fps_per_core"]["1920x1080"]["value"] * grow)
    assert sizing.cores["recorder"] == pytest.approx(
        45 / costs["recorder_cameras_per_core_25fps"]["value"] * grow)
    stored = 45 * 4e6 / 8 * costs["stored_bytes_per_source_byte"]["h264"]["value"]
    assert sizing.object_store_bytes == pytest.approx(stored * 86400 * 30 * grow, rel=1e-6)
    assert sizing.video_store_bytes == pytest.approx(stored * 7200 * 1.15 * grow, rel=1e-6)
    assert sizing.first_to_run_out == "masking"
    assert all(n >= 2 for n in sizing.replicas.values()), "two replicas at least (issue 35)"
    # An H.265 camera costs what H.264 must carry of it: far more bytes for the same bitrate.
    h265 = size(Inputs(groups=[CameraGroup(45, codec="h265")]))
    assert h265.object_store_bytes > 10 * sizing.object_store_bytes
    # Fifty communes: fifty times the work.
    many = size(Inputs(groups=[CameraGroup(2250)]))
    assert many.cores["masking"] == pytest.approx(50 * sizing.cores["masking"])


def test_the_overlay_applies_to_deploy_k8s_and_validates(tmp_path: Path) -> None:
    sizing = size(Inputs(groups=[CameraGroup(2250), CameraGroup(100, width=1280, height=720)]))
    kustomization = yaml.safe_load(kubernetes_overlay(sizing)["kustomization.yaml"])
    assert kustomization["resources"] == ["../../k8s"]
    documents = _manifests()
    for entry in kustomization["patches"]:
        target = entry["target"]
        [document] = [d for d in documents if d["kind"] == target["kind"]
                      and d["metadata"]["name"] == target["name"]]
        patched = jsonpatch.apply_patch(document, json.loads(entry["patch"]))
        kubernetes_validate.validate(patched, KUBERNETES, strict=True)
        if target["kind"] == "Deployment":
            assert patched["spec"]["replicas"] == sizing.replicas[target["name"]]
        if target["kind"] == "ConfigMap":
            assert int(patched["data"]["VIGIE_BUS_VIDEO_MAX_BYTES"]) == sizing.video_store_bytes


@pytest.mark.parametrize(("args", "says"), [
    (["0x1920x1080"], "a count ≥ 1"),
    (["45x1920"], "COUNTxWIDTHxHEIGHT"),
    (["45x1920x1080:vp9"], "codec h264 or h265"),
    (["45x1920x1080", "--retention-days", "31"], "retention 1–30 days"),
])
def test_bad_input_is_one_clear_line(args: list[str], says: str) -> None:
    done = subprocess.run([sys.executable, "-m", "vigie.cli.main", "sizing", *args],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and says in done.stderr and "Traceback" not in done.stderr


def test_the_cli_prints_the_table_the_compose_scale_and_writes_the_overlay(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "vigie.cli.main", "sizing",
                           "43x1920x1080@25:h264:4", "--retention-days", "15", "--overlay",
                           str(tmp_path / "palaiseau")], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert "masking" in done.stdout and "TiB" in done.stdout
    assert "--scale masking=" in done.stdout
    assert (tmp_path / "palaiseau" / "kustomization.yaml").exists()
