"""Scratch folders of background builds (requisition exports, right-of-access copies), named with
the builder's process id: a builder killed mid-build (kill -9, the OOM killer) cannot remove its
own, so the next builder removes every folder whose process is gone — none piles up."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


def make(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-"))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process: alive
    return True


def sweep(prefix: str) -> int:
    """Remove the folders `prefix<pid>-…` whose process no longer runs; returns how many."""
    removed = 0
    for folder in Path(tempfile.gettempdir()).glob(f"{prefix}*"):
        pid = folder.name[len(prefix):].partition("-")[0]
        if pid.isdigit() and folder.is_dir() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
    return removed
