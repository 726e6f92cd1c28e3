"""What /metrics exposes: this process's metrics, and those of the worker processes it started.

Masking decodes and encodes in worker processes: their counters live there. The service gives
them a folder (prometheus_client's multiprocess mode, set through the environment before they
import it) and its /metrics reads that folder beside its own registry. A family both define (the
bus consumer's, say) is taken from the workers, who are the ones that use it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from prometheus_client import REGISTRY, CollectorRegistry, Gauge
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# A certificate that expires stops a service cold (NATS refuses it, the police port too): the date
# is exported so that an alert says so a month ahead (issue 36).
CERTIFICATE_NOT_AFTER = Gauge("vigie_certificate_not_after_timestamp_seconds",
                              "When a certificate this process presents stops being valid",
                              ["certificate"], multiprocess_mode="min")


def export_certificate_expiry(certificates: dict[str, Path | None]) -> None:
    """The end of validity of each certificate given (unreadable ones are left to the TLS code,
    which refuses them with a clear error)."""
    from cryptography import x509

    for name, path in certificates.items():
        if path is None:
            continue
        try:
            cert = x509.load_pem_x509_certificate(path.read_bytes())
        except (OSError, ValueError):
            continue
        CERTIFICATE_NOT_AFTER.labels(name).set(cert.not_valid_after_utc.timestamp())

_exposed: CollectorRegistry = REGISTRY


def exposed_registry() -> CollectorRegistry:
    return _exposed


class _WithWorkers:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def collect(self) -> Iterator[Metric]:
        workers = list(MultiProcessCollector(None, path=str(self.folder)).collect())
        names = {m.name for m in workers}
        yield from workers
        yield from (m for m in REGISTRY.collect() if m.name not in names)


def expose_worker_metrics(service: str) -> dict[str, str]:
    """A fresh folder for the workers' metrics, read by this process's /metrics from now on.
    Returns the environment the workers must be started with."""
    global _exposed
    folder = Path(tempfile.mkdtemp(prefix=f"vigie-{service}-metrics-"))
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_WithWorkers(folder))  # type: ignore[arg-type]
    _exposed = registry
    return {**os.environ, MULTIPROC_ENV: str(folder)}


def forget_worker_metrics(env: dict[str, str]) -> None:
    folder = env.get(MULTIPROC_ENV)
    if folder:
        shutil.rmtree(folder, ignore_errors=True)


def worker_ended(env: dict[str, str], pid: int) -> None:
    """A worker died: its gauges leave the figures (its counters stay: they count what it did)."""
    folder = env.get(MULTIPROC_ENV)
    if folder:
        mark_process_dead(pid, folder)
