"""schemathesis against the gateway's OpenAPI, as an operator and as an administrator: at least 50
generated examples per operation, no server error, every response conforming to the schema
(issue 9 "API quality"; DESIGN.md invariant 6). The gateway runs as its own process."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import asyncpg
import httpx
import pyotp
import pytest
from vigie.local.servers import free_port
from vigie.plumbing.bus.subjects import BusNames
from vigie.plumbing.settings import CommonSettings

from services.viewer_gateway.auth import COOKIE
from tests.conftest import settings_env
from tests.harness import PROBE_USER, eventually
from tests.viewer_gateway.conftest import (
    PASSWORD,
    REGISTER_KEY,
    TOTP_KEY,
    seed_communes,
    seed_users,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]
SEED = os.environ.get("VIGIE_SCHEMATHESIS_SEED", "20261124")
SCHEMATHESIS = shutil.which("schemathesis") or str(Path(sys.executable).with_name("schemathesis"))
CHECKS = "not_a_server_error,response_schema_conformance,status_code_conformance," \
         "content_type_conformance"


async def test_schemathesis_finds_no_server_error_and_no_schema_violation(
    settings_for: Callable[..., CommonSettings], streams: BusNames, db: asyncpg.Pool,
    tmp_path: Path,
) -> None:
    await seed_communes(db)
    totp = await seed_users(db)
    port = free_port()
    common = settings_for(PROBE_USER, register_key=REGISTER_KEY, totp_key=TOTP_KEY)
    env = {**os.environ, **settings_env(common),
           "VIGIE_VIEWER_GATEWAY_HTTP_PORT": str(port), "VIGIE_LOG_LEVEL": "warning"}
    log = tmp_path / "gateway.log"
    proc = subprocess.Popen([sys.executable, "-m", "vigie.cli.main", "service", "viewer-gateway"],
                            env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=url) as probe:
            async def ready() -> bool:
                try:
                    return (await probe.get("/readyz")).status_code == 200
                except httpx.HTTPError:
                    return False

            await eventually(ready, timeout_s=60, message="gateway not ready")
        for username in ("operator", "admin"):  # the administrator last: it changes accounts
            async with httpx.AsyncClient(base_url=url) as client:
                body = {"username": username, "password": PASSWORD}
                if username in totp:
                    body["totp"] = pyotp.TOTP(totp[username]).now()
                response = await client.post("/api/session", json=body)
                assert response.status_code == 200, response.text
                cookie = response.cookies[COOKIE]
            run = subprocess.run(
                [SCHEMATHESIS, "run", f"{url}/openapi.json", "-H", f"Cookie: {COOKIE}={cookie}",
                 "--max-examples", "10", "--phases", "examples,fuzzing", "--seed", SEED,
                 "--checks", CHECKS, "--workers", "1",
                 "--exclude-operation-id", "sign_out_api_session_delete",
                 "--generation-allow-x00", "true", "--request-timeout", "20"],
                capture_output=True, text=True, timeout=900, env={**os.environ, "NO_COLOR": "1"})
            assert run.returncode == 0, f"as {username}:\n{run.stdout[-6000:]}"
            assert "passed" in run.stdout
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, log.read_text()[-3000:]
