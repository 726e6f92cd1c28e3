"""Shared helpers of the benchmarks: CPU time of this process and of children, percentiles."""

from __future__ import annotations

import resource
import statistics
import subprocess
import time
from collections.abc import Sequence


def cpu_self_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def cpu_children_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def percentile(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def timed_child(argv: list[str], timeout_s: float) -> tuple[float, float]:
    """Run a command; return (wall seconds, CPU seconds it used)."""
    before = cpu_children_s()
    t0 = time.monotonic()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=timeout_s,
                   check=False)
    return time.monotonic() - t0, cpu_children_s() - before
