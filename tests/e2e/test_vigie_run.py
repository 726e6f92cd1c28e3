"""`vigie run`, the embedded default, end to end: everything healthy, a killed child restarted,
a clean stop with nothing left behind, the same data on a second start, and clear bad-input errors."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import jsonschema
import pyotp
import pytest
import yaml
from vigie.plumbing.bus.asyncapi import schemas_by_event_type

from tests.deploy.monitoring import exported_families, referenced_families
from tests.e2e.stack import free_port_base, pid_alive, start_stack
from tests.harness import REPO, wait_for_sync

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_vigie_run_end_to_end(tmp_path: Path) -> None:
    data = tmp_path / "var"
    stack = start_stack(data)
    try:
        out = stack.output()
        assert "First administrator: login 'admin', password '" in out
        assert "Demo agent listed for vidéo-verbalisation (Palaiseau): login 'agent.vv'" in out
        assert f"http://127.0.0.1:{stack.web_port}/" in out
        assert "refused the lifecycle rules" not in out
        code, status = stack.status()
        assert code == 0, status
        assert set(status["services"]) == {"ingest", "masking", "recorder", "viewer-gateway",
                                           "verbalisation", "retention"}
        assert all(s["healthy"] and s["ready"] for s in status["services"].values())
        ids = {c["id"] for c in status["cameras"]}
        assert {"palaiseau/rue-de-paris", "palaiseau/carrefour-gare",
                "ballainvilliers/parking-mairie"} <= ids
        assert all("segments_last_5m" in c and "online" in c for c in status["cameras"])
        # Ingest and masking run for every demo camera: online, masked.
        wait_for_sync(lambda: all(c["online"] and c["masking_ok"]
                                  for c in stack.status()[1].get("cameras", [{}])),
                      timeout_s=90, message="demo cameras not online and masked")
        # …and the recorder stores their segments (invariant 2 in the embedded default).
        wait_for_sync(lambda: all(c["segments_last_5m"] > 0
                                  for c in stack.status()[1].get("cameras", [{}])),
                      timeout_s=60, message="demo cameras not recorded")
        # SeaweedFS takes the lifecycle rules: the backstop is there (issue 20), and its lifecycle
        # worker runs as a server of the supervisor.
        wait_for_sync(lambda: stack.status()[1].get("lifecycle_backstop") is True,
                      timeout_s=30, message="status does not report the lifecycle backstop")
        assert stack.status()[1]["servers"]["s3-lifecycle"]["alive"]
        # Every metric deploy/'s alert rules and dashboard use is exported by a running service
        # (masking's from its worker processes) once the cameras flow (issue 20).
        run_ports = json.loads((data / "run.json").read_text())["ports"]
        # …and NATS's, from `vigie nats-exporter` beside it (issue 36).
        ports = {**run_ports["services"], "nats-metrics": run_ports["metrics"]["nats"]}

        def exported() -> set[str]:
            found: set[str] = set()
            for port in ports.values():
                found |= exported_families(
                    httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text)
            return found

        wait_for_sync(lambda: referenced_families() <= exported(), timeout_s=90,
                      message="alert rules or dashboard panels on metrics nobody exports: "
                      f"{sorted(referenced_families() - exported())}")
        # The first administrator signs in to the gateway's API with the printed password and
        # TOTP secret (issue 9: the API runs in `make run`).
        password = re.search(r"login 'admin', password '([^']+)'", out).group(1)  # type: ignore[union-attr]
        secret = re.search(r"secret ([A-Z2-7]+)", out).group(1)  # type: ignore[union-attr]
        with httpx.Client(base_url=f"http://127.0.0.1:{stack.web_port}", timeout=10) as web:
            signed_in = web.post("/api/session", json={
                "username": "admin", "password": password, "totp": pyotp.TOTP(secret).now()})
            assert signed_in.status_code == 200, signed_in.text
            assert {c["slug"] for c in web.get("/api/cameras").json()} >= {"rue-de-paris"}
        # A requisition export from the command line, on the demo's real recordings (issue 21):
        # the package verifies with the standard tools alone.
        started = datetime.now(UTC) - timedelta(minutes=10)
        export = subprocess.run(
            [sys.executable, "-m", "vigie.cli.main", "export", "create", "--camera",
             "palaiseau/rue-de-paris", "--from", started.isoformat(), "--to", "now",
             "--requisition", "PV 2026/77", "--officer", "OPJ Durand, CSP Massy",
             "--recipient", "CSP Massy", "--medium", "transfert 42", "--reason", "vol",
             "--by", "admin", "--out", str(tmp_path / "exports"), "--json", "--data", str(data)],
            capture_output=True, text=True, timeout=120,
            env={k: v for k, v in os.environ.items() if not k.startswith("VIGIE_")})
        assert export.returncode == 0, export.stderr
        package = Path(json.loads(export.stdout)["folder"])
        assert subprocess.run(["sha256sum", "-c", "--quiet", "SHA256SUMS"], cwd=package,
                              timeout=60).returncode == 0
        assert list((package / "videos").glob("palaiseau-rue-de-paris-*.mp4"))
        # Operator commands find the running embedded default by its data folder.
        holds = subprocess.run([sys.executable, "-m", "vigie.cli.main", "hold", "list", "--json",
                                "--data", str(data)], capture_output=True, text=True, timeout=60,
                               env={k: v for k, v in os.environ.items()
                                    if not k.startswith("VIGIE_")})
        assert holds.returncode == 0, holds.stderr
        assert [(h["kind"], h["reference"]) for h in json.loads(holds.stdout)] == [
            ("judicial_requisition", "PV 2026/77")], "the export's hold, and only it"
        # The demo's signs: one camera left uncovered, to show the flag (R26).
        signs = subprocess.run([sys.executable, "-m", "vigie.cli.main", "commune", "signs",
                                "palaiseau", "--data", str(data)], capture_output=True, text=True,
                               timeout=60, env={k: v for k, v in os.environ.items()
                                                if not k.startswith("VIGIE_")})
        assert signs.returncode == 1, signs.stderr
        assert [f["camera"] for f in json.loads(signs.stdout)["flagged"]] == ["rue-de-paris"]

        # A police system subscribes to the running embedded default (issue 39): one command
        # gives it its certificate, its NATS user (the nats-servers reload) and its consumer;
        # it reads its commune's events over TLS and nothing of another commune.
        added = subprocess.run(
            [sys.executable, "-m", "vigie.cli.main", "subscriber", "add", "prefecture-91",
             "--communes", "palaiseau", "--data", str(data)], capture_output=True, text=True,
            timeout=60, env={k: v for k, v in os.environ.items() if not k.startswith("VIGIE_")})
        assert added.returncode == 0, added.stderr
        assert "_INBOX_prefecture-91" in added.stdout and "subscriber_prefecture-91" in added.stdout
        received, refused = asyncio.run(_police_system(data, stack.base + 1))
        seen = [subject for subject, _ in received]
        assert seen and all(s.startswith(("vigie.events.palaiseau.", "vigie.events._system."))
                            for s in seen), seen
        # What it receives is what docs/asyncapi.yaml says it receives (issue 39).
        schemas = schemas_by_event_type(yaml.safe_load((REPO / "docs" / "asyncapi.yaml")
                                                       .read_text()))
        for subject, payload in received:
            jsonschema.validate(json.loads(payload), schemas[".".join(subject.split(".")[3:5])])
        assert any(s.startswith("vigie.events.palaiseau.") for s in seen), seen
        assert any("permissions violation" in e for e in refused), refused

        # A child killed with SIGKILL is restarted by the supervisor and reported by status.
        victim = stack.state()["services"]["retention"]["pid"]
        os.kill(victim, signal.SIGKILL)
        wait_for_sync(lambda: stack.status()[1].get("services", {}).get("retention", {})
                      .get("restarts", 0) >= 1, timeout_s=30, message="child not restarted")
        wait_for_sync(stack.all_ready, timeout_s=60, message="restarted child never ready")
        assert stack.state()["services"]["retention"]["pid"] != victim
        assert "child_died" in stack.output() and "child_restarted" in stack.output()

        pids = [p for p in stack.state()["servers"].values()] + \
               [s["pid"] for s in stack.state()["services"].values()]
    finally:
        elapsed = stack.stop()
    assert elapsed < 30
    assert stack.proc.returncode == 0
    assert not [p for p in pids if pid_alive(p)], "processes left behind after SIGINT"

    # Second start: same data, nothing seeded twice, no new administrator password.
    again = start_stack(data)
    try:
        assert "First administrator" not in again.output()
        code, status = again.status()
        assert code == 0
        assert {c["id"] for c in status["cameras"]} == ids
        password = (data / "postgres" / "pg-password").read_text().strip()
        dsn = f"postgresql://vigie:{password}@127.0.0.1:{again.base + 3}/vigie"

        async def counts() -> tuple[int, int, int]:
            conn = await asyncpg.connect(dsn)
            try:
                return (await conn.fetchval("SELECT count(*) FROM communes"),
                        await conn.fetchval("SELECT count(*) FROM cameras"),
                        await conn.fetchval("SELECT count(*) FROM users"))
            finally:
                await conn.close()

        assert asyncio.run(counts()) == (2, len(ids), 2)  # the administrator, the demo's agent
    finally:
        again.stop()


async def _police_system(data: Path, port: int) -> tuple[list[tuple[str, bytes]], list[str]]:
    """A client knowing only what `vigie subscriber add` printed: the CA, its certificate and
    key, the inbox prefix, the consumer's name."""
    import ssl

    import nats

    folder = data / "pki"
    context = ssl.create_default_context(cafile=str(folder / "ca.pem"))
    context.load_cert_chain(str(folder / "subscribers" / "prefecture-91.pem"),
                            str(folder / "subscribers" / "prefecture-91.key"))
    errors: list[str] = []

    async def on_error(exc: Exception) -> None:
        errors.append(str(exc).lower())

    nc = await nats.connect(f"tls://127.0.0.1:{port}", tls=context, error_cb=on_error,
                            inbox_prefix="_INBOX_prefecture-91", allow_reconnect=False)
    try:
        consumer = await nc.jetstream().pull_subscribe_bind("subscriber_prefecture-91",
                                                            stream="EVENTS")
        seen: list[tuple[str, bytes]] = []
        for _ in range(5):
            for msg in await consumer.fetch(1, timeout=10):
                seen.append((msg.subject, msg.data))
                await msg.ack_sync()

        async def ignore(_msg: object) -> None:
            pass

        await nc.subscribe("vigie.events.ballainvilliers.>", cb=ignore)
        await nc.flush()
        await asyncio.sleep(0.5)
        return seen, errors
    finally:
        await nc.close()


def test_unwritable_data_folder_is_one_clear_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = subprocess.run([sys.executable, "-m", "vigie.cli.main", "run", "--data",
                             str(blocker / "var"), "--port-base", str(free_port_base())],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot write to data folder" in lines[0]


@contextlib.contextmanager
def _busy_postgres_port() -> Iterator[tuple[socket.socket, int]]:
    """A base whose PostgreSQL port something else holds: ours. Another process may take the
    port between the base's check and our bind (seen in CI): then another base."""
    for _ in range(20):
        base = free_port_base()
        busy = socket.socket()
        try:
            busy.bind(("127.0.0.1", base + 3))
        except OSError:
            busy.close()
            continue
        busy.listen()
        with busy:
            yield busy, base
        return
    raise RuntimeError("no port to hold")


def test_busy_port_is_one_clear_line_and_nothing_runs(tmp_path: Path) -> None:
    with _busy_postgres_port() as (busy, base):
        t0 = time.monotonic()
        result = subprocess.run([sys.executable, "-m", "vigie.cli.main", "run", "--data",
                                 str(tmp_path / "var"), "--port-base", str(base),
                                 "--http-port", str(base + 20)],
                                capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"port {base + 3} (postgres) is already in use" in lines[0]
    assert time.monotonic() - t0 < 30
    assert not (tmp_path / "var" / "nats").exists(), "nothing may have been started"


def test_a_killed_nats_server_comes_back_and_a_killed_supervisor_leaves_no_orphan(
    tmp_path: Path,
) -> None:
    """Found by breaking `make run` (issue 17): a nats-server killed with SIGKILL was never
    restarted, and, restarted by hand, came back without RAW (a memory stream), so ingest
    crash-looped; the supervisor killed with SIGKILL left every child running."""
    stack = start_stack(tmp_path / "var")
    try:
        nats_pid = stack.state()["servers"]["nats-server"]
        os.kill(nats_pid, signal.SIGKILL)
        wait_for_sync(lambda: stack.state().get("server_restarts", {}).get("nats-server", 0) >= 1,
                      timeout_s=30, message="nats-server not restarted")

        def flowing_again() -> bool:
            code, status = stack.status()
            return code == 0 and bool(status.get("cameras")) and all(
                c["last_frame_age_s"] is not None and c["last_frame_age_s"] < 3
                for c in status["cameras"]) and all(
                s["restarts"] == 0 for name, s in status["services"].items() if name == "ingest")

        wait_for_sync(flowing_again, timeout_s=60,
                      message="cameras did not come back after the nats-server restart")
        pids = [*stack.state()["servers"].values(),
                *(s["pid"] for s in stack.state()["services"].values())]
    finally:
        stack.proc.kill()  # SIGKILL: no shutdown sequence at all
        stack.proc.wait(timeout=10)
    # 30 s: SeaweedFS's filer, sent SIGTERM, waits up to 15 s for its gRPC streams to end.
    wait_for_sync(lambda: not [p for p in pids if pid_alive(p)], timeout_s=30,
                  message="children outlived the supervisor killed with SIGKILL")
