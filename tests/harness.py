"""Helpers the tests share: unique names, settings for a test, waiting without sleeping blindly."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
FOOTAGE = Path(
    __import__("os").environ.get("VIGIE_FOOTAGE", str(REPO.parent / "shared" / "footage"))
)


def unique(prefix: str = "t") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


async def eventually(
    check: Callable[[], Awaitable[Any]] | Callable[[], Any],
    *,
    timeout_s: float = 10.0,
    interval_s: float = 0.05,
    message: str = "condition not met",
) -> Any:
    """Poll ``check`` until it returns something truthy; fail with ``message`` after the timeout."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if asyncio.iscoroutine(last):
            last = await last
        if last:
            return last
        await asyncio.sleep(interval_s)
    raise AssertionError(f"{message} (after {timeout_s} s; last value {last!r})")


def wait_for_sync(check: Callable[[], Any], *, timeout_s: float, message: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"{message} (after {timeout_s} s)")
