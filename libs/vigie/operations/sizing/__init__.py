"""`vigie sizing` (issue 36): from what storage calculators ask — cameras by codec, resolution,
frame rate and bitrate, hours a day, retention, the outage VIDEO must ride out, headroom — the
cores per service, the NATS file store, the object store, the bandwidth; and the Kubernetes
overlay and Compose scale that match. The per-camera costs are the benches' (costs.json)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

COSTS_FILE = "costs.json"
# What one replica is given (deploy/k8s): masking's limit is what a node's share can take.
CORES_PER_REPLICA = {"ingest": 2.0, "masking": 4.0, "recorder": 2.0, "viewer-gateway": 2.0}
NATS_OVERHEAD = 1.15  # JetStream's index and per-message headers over the payload bytes


def load_costs() -> dict[str, Any]:
    return dict(json.loads(resources.files(__package__).joinpath(COSTS_FILE).read_text()))


@dataclass(frozen=True)
class CameraGroup:
    """Cameras alike: how many, codec, resolution, frame rate, the bitrate they send."""
    count: int
    codec: str = "h264"
    width: int = 1920
    height: int = 1080
    fps: float = 25.0
    mbit_s: float = 4.0

    @classmethod
    def parse(cls, spec: str) -> CameraGroup:
        """``45x1920x1080@25:h264:4`` — count × resolution @ fps : codec : Mbit/s."""
        try:
            head, *rest = spec.split(":")
            count, size = head.split("x", 1)
            resolution, _, fps = size.partition("@")
            width, height = resolution.split("x")
            group = cls(count=int(count), width=int(width), height=int(height),
                        fps=float(fps or 25), codec=(rest[0] if rest else "h264").lower(),
                        mbit_s=float(rest[1]) if len(rest) > 1 else 4.0)
        except ValueError:
            raise ValueError(f"camera group {spec!r}: COUNTxWIDTHxHEIGHT[@FPS][:CODEC[:MBIT/S]], "
                             "e.g. 45x1920x1080@25:h264:4") from None
        if group.count < 1 or group.fps <= 0 or group.mbit_s <= 0 or group.width < 16 \
                or group.height < 16 or group.codec not in ("h264", "h265"):
            raise ValueError(f"camera group {spec!r}: a count ≥ 1, a size, fps and Mbit/s > 0, "
                             "codec h264 or h265")
        return group


@dataclass(frozen=True)
class Inputs:
    groups: list[CameraGroup]
    hours_per_day: float = 24.0
    retention_days: int = 30
    outage_hours: float = 2.0  # a recorder or storage outage VIDEO keeps every frame through
    headroom: float = 0.3
    live_panes: int = 16  # panes watched at once, all posts together


@dataclass
class Sizing:
    cores: dict[str, float] = field(default_factory=dict)
    replicas: dict[str, int] = field(default_factory=dict)
    video_store_bytes: int = 0
    object_store_bytes: int = 0
    ingest_mbit_s: float = 0.0
    stored_mbit_s: float = 0.0
    cameras: int = 0

    @property
    def first_to_run_out(self) -> str:
        """The service needing the most cores: what a node's CPU runs out on first."""
        return max(self.cores, key=lambda s: self.cores[s])


def _masking_cores(group: CameraGroup, costs: dict[str, Any]) -> float:
    """By pixel rate, from the measured resolution nearest in pixels."""
    measured = {tuple(map(int, k.split("x"))): v["value"]
                for k, v in costs["masking_fps_per_core"].items()}
    pixels = group.width * group.height
    (w, h), fps_per_core = min(measured.items(), key=lambda kv: abs(kv[0][0] * kv[0][1] - pixels))
    return group.count * group.fps / (fps_per_core * (w * h) / pixels)


def size(inputs: Inputs, costs: dict[str, Any] | None = None) -> Sizing:
    costs = costs or load_costs()
    grow = 1 + inputs.headroom
    out = Sizing(cameras=sum(g.count for g in inputs.groups))
    ingest = costs["ingest_core_per_camera_25fps"]["value"]
    recorder = 1 / costs["recorder_cameras_per_core_25fps"]["value"]
    ratio = {k: v["value"] for k, v in costs["stored_bytes_per_source_byte"].items()}
    out.cores = {
        "ingest": grow * sum(g.count * ingest * g.fps / 25 for g in inputs.groups),
        "masking": grow * sum(_masking_cores(g, costs) for g in inputs.groups),
        "recorder": grow * sum(g.count * recorder * g.fps / 25 for g in inputs.groups),
        "viewer-gateway": grow * inputs.live_panes
        * costs["gateway_core_per_live_pane"]["value"],
    }
    out.replicas = {s: max(2, math.ceil(c / CORES_PER_REPLICA[s])) for s, c in out.cores.items()}
    out.ingest_mbit_s = sum(g.count * g.mbit_s for g in inputs.groups)
    out.stored_mbit_s = sum(g.count * g.mbit_s * ratio[g.codec] for g in inputs.groups)
    stored_bytes_s = out.stored_mbit_s * 1e6 / 8
    out.video_store_bytes = math.ceil(stored_bytes_s * inputs.outage_hours * 3600
                                      * NATS_OVERHEAD * grow)
    out.object_store_bytes = math.ceil(stored_bytes_s * inputs.hours_per_day * 3600
                                       * inputs.retention_days * grow)
    return out


def table(inputs: Inputs, sizing: Sizing) -> str:
    tib, gib = 2**40, 2**30
    lines = [f"{sizing.cameras} cameras, {inputs.hours_per_day:g} h a day, kept "
             f"{inputs.retention_days} days, VIDEO riding out {inputs.outage_hours:g} h, "
             f"headroom {inputs.headroom:.0%}, {inputs.live_panes} live panes",
             "", f"{'service':<16}{'cores':>8}{'replicas':>10}"]
    for service, cores in sizing.cores.items():
        lines.append(f"{service:<16}{cores:>8.1f}{sizing.replicas[service]:>10}")
    lines += ["", f"cameras → ingest   {sizing.ingest_mbit_s:,.0f} Mbit/s",
              f"stored (masked)    {sizing.stored_mbit_s:,.0f} Mbit/s",
              f"NATS VIDEO store   {sizing.video_store_bytes / gib:,.0f} GiB "
              f"(VIGIE_BUS_VIDEO_MAX_BYTES; each NATS node's volume)",
              f"object store       {sizing.object_store_bytes / tib:,.2f} TiB "
              "(before the store's own replication)",
              f"runs out first     {sizing.first_to_run_out} (CPU)"]
    return "\n".join(lines) + "\n"


def kubernetes_overlay(sizing: Sizing, *, base: str = "../../k8s") -> dict[str, str]:
    """A kustomize overlay over deploy/k8s: replicas and CPU per service, VIDEO's ceiling and
    the NATS volume. File name → text."""
    patches: list[dict[str, Any]] = []
    for service, replicas in sizing.replicas.items():
        per_replica = sizing.cores[service] / replicas
        patches.append({"target": {"kind": "Deployment", "name": service}, "patch": json.dumps([
            {"op": "replace", "path": "/spec/replicas", "value": replicas},
            {"op": "replace", "path": "/spec/template/spec/containers/0/resources/requests/cpu",
             "value": f"{max(50, math.ceil(per_replica * 1000))}m"},
            # Room above the steady share: a segment closing, a camera taken over.
            {"op": "replace", "path": "/spec/template/spec/containers/0/resources/limits/cpu",
             "value": f"{max(1000, math.ceil(per_replica * 1000 * 1.5))}m"},
        ])})
    volume = math.ceil(sizing.video_store_bytes * 1.25 / 2**30)
    patches.append({"target": {"kind": "StatefulSet", "name": "nats"}, "patch": json.dumps([
        {"op": "replace",
         "path": "/spec/volumeClaimTemplates/0/spec/resources/requests/storage",
         "value": f"{volume}Gi"}])})
    patches.append({"target": {"kind": "ConfigMap", "name": "vigie-config"}, "patch": json.dumps([
        {"op": "replace", "path": "/data/VIGIE_BUS_VIDEO_MAX_BYTES",
         "value": str(sizing.video_store_bytes)}])})
    lines = ["# Written by `vigie sizing`: deploy/k8s sized for these cameras.",
             "apiVersion: kustomize.config.k8s.io/v1beta1", "kind: Kustomization",
             "resources:", f"  - {base}", "patches:"]
    for p in patches:
        target = p["target"]
        lines += [f"  - target: {{kind: {target['kind']}, name: {target['name']}}}",
                  f"    patch: '{p['patch']}'"]
    return {"kustomization.yaml": "\n".join(lines) + "\n"}


def compose_scale(sizing: Sizing) -> str:
    """The `docker compose up` options that match (the gateway stays one: its published port)."""
    return " ".join(f"--scale {s}={n}" for s, n in sizing.replicas.items()
                    if s != "viewer-gateway")
