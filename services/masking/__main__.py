"""Run the masking service: `vigie service masking` or `python -m services.masking`.

The service process supervises worker processes (one per core by default) and replaces one that
dies, or that stops beating (frozen, stuck in a call: its heartbeat file grows old); its cameras
move to the other workers and replicas, and resume after the last frame VIDEO holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

from prometheus_client import Counter
from vigie.plumbing.log import get_logger
from vigie.plumbing.metrics import expose_worker_metrics, forget_worker_metrics, worker_ended
from vigie.service import Runtime, service_main

from services.masking.settings import MaskingSettings

log = get_logger(__name__)
RESTARTS = Counter("vigie_masking_worker_restarts_total", "Masking workers replaced after dying")
STUCK = Counter("vigie_masking_worker_stuck_total",
                "Masking workers killed because their camera loop stopped going round")


async def work(rt: Runtime, settings: MaskingSettings) -> None:
    count = settings.workers
    procs: dict[int, asyncio.subprocess.Process] = {}
    env = expose_worker_metrics("masking")  # frames, latency, ownership: counted in the workers
    beats = Path(tempfile.mkdtemp(prefix="vigie-masking-beats-"))
    started: dict[int, float] = {}

    async def spawn(index: int) -> None:
        heartbeat = beats / f"w{index}"
        heartbeat.unlink(missing_ok=True)
        procs[index] = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "services.masking.worker", "--index", str(index),
            "--parent-pid", str(os.getpid()), "--heartbeat", str(heartbeat), env=env)
        started[index] = time.time()
        log.info("masking_worker_started", index=index, pid=procs[index].pid)

    def kill_if_stuck(index: int, proc: asyncio.subprocess.Process) -> None:
        try:
            last_beat = (beats / f"w{index}").stat().st_mtime
        except FileNotFoundError:
            last_beat = started[index]  # not beating yet: starting counts as a beat
        silent_s = time.time() - max(last_beat, started[index])
        if silent_s > settings.worker_stuck_after_s:
            log.error("masking_worker_stuck", index=index, pid=proc.pid,
                      silent_s=round(silent_s, 1))
            STUCK.inc()
            proc.kill()  # SIGKILL also ends a stopped process; the loop replaces it

    for i in range(count):
        await spawn(i)
    rt.state["workers"] = procs
    backoff = dict.fromkeys(range(count), 0.5)
    try:
        while not rt.stop.is_set():
            for index, proc in list(procs.items()):
                if proc.returncode is None:
                    kill_if_stuck(index, proc)
                else:
                    log.warning("masking_worker_died", index=index, exit_code=proc.returncode,
                                restart_in_s=backoff[index])
                    RESTARTS.inc()
                    worker_ended(env, proc.pid)
                    await asyncio.sleep(backoff[index])
                    backoff[index] = min(30.0, backoff[index] * 2)
                    await spawn(index)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(rt.stop.wait(), timeout=0.5)
    finally:
        for proc in procs.values():
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs.values():
            try:
                await asyncio.wait_for(proc.wait(), timeout=rt.common.shutdown_grace_s)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        forget_worker_metrics(env)
        shutil.rmtree(beats, ignore_errors=True)


def main() -> int:
    return service_main(service="masking", settings_cls=MaskingSettings, work=work,
                        needs=frozenset({"nats", "postgres"}))


if __name__ == "__main__":
    sys.exit(main())
