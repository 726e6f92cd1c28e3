"""Start and stop `vigie run` as a subprocess for end-to-end tests."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from vigie.local.servers import port_is_free

from tests.harness import demo_footage, wait_for_sync


def free_port_base() -> int:
    """A base with base+1 … base+70 all free (replicas, NATS nodes and SeaweedFS's own ports go
    up to base+66), below Linux's ephemeral range (32768–60999): a port checked free there could
    be taken by any outgoing connection before `vigie run` binds it (seen in CI)."""
    for _ in range(200):
        base = random.randrange(20000, 32600, 100)
        if all(port_is_free(base + i) for i in range(1, 71)):
            return base
    raise RuntimeError("no free port range")


@dataclass
class Stack:
    data: Path
    base: int
    proc: subprocess.Popen[str]
    log: Path

    @property
    def web_port(self) -> int:
        return self.base + 20

    def state(self) -> dict[str, Any]:
        return dict(json.loads((self.data / "run.json").read_text()))

    def status(self) -> tuple[int, dict[str, Any]]:
        result = subprocess.run([sys.executable, "-m", "vigie.cli.main", "status", "--data",
                                 str(self.data), "--json"], capture_output=True, text=True,
                                timeout=60)
        try:
            return result.returncode, json.loads(result.stdout)
        except json.JSONDecodeError:
            return result.returncode, {"error": result.stdout + result.stderr}

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def all_ready(self) -> bool:
        try:
            ports = self.state()["ports"]["services"]
        except (FileNotFoundError, json.JSONDecodeError, KeyError):
            return False
        for port in ports.values():
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code != 200:
                    return False
            except httpx.HTTPError:
                return False
        return True

    def stop(self, timeout_s: float = 30) -> float:
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(timeout=timeout_s)
        return time.monotonic() - t0


def start_stack(data: Path, base: int | None = None, *, wait_ready_s: float = 180,
                replicas: int = 1, nats_cluster: int = 1,
                env: dict[str, str] | None = None) -> Stack:
    base = base or free_port_base()
    log = data.parent / f"{data.name}-run-{int(time.time() * 1000)}.log"
    # Short segments so that recording shows within the test's patience.
    env = {**os.environ, "VIGIE_FOOTAGE": str(demo_footage()), "VIGIE_RECORDER_SEGMENT_S": "4",
           **(env or {})}
    proc = subprocess.Popen(
        [sys.executable, "-m", "vigie.cli.main", "run", "--data", str(data), "--port-base",
         str(base), "--http-port", str(base + 20), "--replicas", str(replicas),
         "--nats-cluster", str(nats_cluster)],
        stdout=open(log, "w"), stderr=subprocess.STDOUT, text=True, env=env,
    )
    stack = Stack(data, base, proc, log)
    if wait_ready_s:
        try:
            wait_for_sync(lambda: stack.all_ready() or proc.poll() is not None,
                          timeout_s=wait_ready_s, message="stack never became ready")
            assert proc.poll() is None, stack.output()[-3000:]
        except BaseException:
            # The caller gets no stack to stop: stop it here (a supervisor left running with its
            # servers was found after a failed CI run).
            try:
                stack.stop(timeout_s=60)
            except subprocess.TimeoutExpired:
                proc.kill()  # its children and servers die with it (lifelines)
            raise
    return stack


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is not alive
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False
