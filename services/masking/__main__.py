"""Run the masking service: `vigie service masking` or `python -m services.masking`.

The service process supervises worker processes (one per core by default) and replaces one that
dies; its cameras resume from their next keyframe.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys

from prometheus_client import Counter
from vigie.log import get_logger
from vigie.metrics import expose_worker_metrics, forget_worker_metrics, worker_ended
from vigie.service import Runtime, service_main

from services.masking.settings import MaskingSettings

log = get_logger(__name__)
RESTARTS = Counter("vigie_masking_worker_restarts_total", "Masking workers replaced after dying")


async def work(rt: Runtime, settings: MaskingSettings) -> None:
    count = settings.workers
    procs: dict[int, asyncio.subprocess.Process] = {}
    env = expose_worker_metrics("masking")  # frames, latency, ownership: counted in the workers

    async def spawn(index: int) -> None:
        procs[index] = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "services.masking.worker", "--index", str(index),
            "--parent-pid", str(os.getpid()), env=env)
        log.info("masking_worker_started", index=index, pid=procs[index].pid)

    for i in range(count):
        await spawn(i)
    rt.state["workers"] = procs
    backoff = dict.fromkeys(range(count), 0.5)
    try:
        while not rt.stop.is_set():
            for index, proc in list(procs.items()):
                if proc.returncode is not None:
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


def main() -> int:
    return service_main(service="masking", settings_cls=MaskingSettings, work=work,
                        needs=frozenset({"nats", "postgres"}))


if __name__ == "__main__":
    sys.exit(main())
