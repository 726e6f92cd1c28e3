"""Every service runs the same way: alive at once, ready when connected, clean exit on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable

import httpx
import pytest
from vigie.local.servers import free_port
from vigie.plumbing.settings import CommonSettings

from services import SERVICES
from tests.conftest import settings_env
from tests.harness import wait_for_sync

pytestmark = pytest.mark.integration

NATS_USER = {"viewer-gateway": "gateway"}


def _ready(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.mark.parametrize("service", SERVICES)
def test_service_health_readiness_and_sigterm(
    service: str, settings_for: Callable[..., CommonSettings], streams: object, db: object,
    store: object,
) -> None:
    port = free_port()
    env = {**os.environ,
           **settings_env(settings_for(NATS_USER.get(service, service), register_key="k" * 32)),
           f"VIGIE_{service.upper().replace('-', '_')}_HTTP_PORT": str(port)}
    proc = subprocess.Popen([sys.executable, "-m", "vigie.cli.main", "service", service], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for_sync(lambda: _ready(port), timeout_s=30, message=f"{service} never became ready")
        health = httpx.get(f"http://127.0.0.1:{port}/healthz").json()
        assert health == {"service": service, "healthy": True, "stuck": []}
        checks = httpx.get(f"http://127.0.0.1:{port}/readyz").json()["checks"]
        assert checks.pop("started") and checks and all(checks.values()), checks
        assert {"nats", "postgres"} <= set(checks)
        assert "vigie_" in httpx.get(f"http://127.0.0.1:{port}/metrics").text or \
            "python_info" in httpx.get(f"http://127.0.0.1:{port}/metrics").text
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        assert time.monotonic() - t0 < 15
    finally:
        if proc.poll() is None:
            proc.kill()
        output = proc.communicate()[0]
    assert "service_stopped" in output


def test_the_gateways_public_port_shows_no_metrics_nor_api_docs_in_production(
    settings_for: Callable[..., CommonSettings], streams: object, db: object, store: object,
) -> None:
    """Issue 17: /metrics and /docs were served on the public port in Compose."""
    port, ops = free_port(), free_port()
    env = {**os.environ, **settings_env(settings_for("gateway", register_key="k" * 32)),
           "VIGIE_VIEWER_GATEWAY_HTTP_PORT": str(port), "VIGIE_VIEWER_GATEWAY_OPS_PORT": str(ops),
           "VIGIE_VIEWER_GATEWAY_API_DOCS": "false"}
    proc = subprocess.Popen([sys.executable, "-m", "vigie.cli.main", "service", "viewer-gateway"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_sync(lambda: _ready(port), timeout_s=30, message="the gateway never became ready")
        for path in ("/metrics", "/docs", "/openapi.json", "/redoc"):
            assert httpx.get(f"http://127.0.0.1:{port}{path}").status_code == 404, path
        assert "python_info" in httpx.get(f"http://127.0.0.1:{ops}/metrics").text
        assert httpx.get(f"http://127.0.0.1:{ops}/healthz").status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
