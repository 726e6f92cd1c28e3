"""Ingest's HTTP side: per camera and per device status, never a URL or a credential."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from fastapi import FastAPI
from vigie.service import Runtime

from services.ingest.handlers import Ingest
from services.ingest.settings import IngestSettings


def device_health(cameras: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A multi-sensor device is online when all its sensors are, degraded when some are."""
    by_device: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for cam in cameras:
        if cam["device_id"]:
            by_device[cam["device_id"]].append(cam)
    result = []
    for device, sensors in sorted(by_device.items()):
        online = sum(1 for s in sensors if s["online"])
        state = "online" if online == len(sensors) else ("offline" if online == 0 else "degraded")
        result.append({"device_id": device, "state": state, "sensors": len(sensors),
                       "sensors_online": online})
    return result


def create_app(rt: Runtime, _settings: IngestSettings) -> FastAPI:
    app = FastAPI(title="vigie-ingest")

    @app.get("/cameras", summary="State of every camera ingest serves, and of multi-sensor devices")
    async def cameras() -> dict[str, Any]:
        ingest: Ingest | None = rt.state.get("ingest")
        snapshot = ingest.snapshot() if ingest else []
        return {"cameras": snapshot, "devices": device_health(snapshot)}

    return app
