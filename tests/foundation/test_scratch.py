"""Scratch folders of background builds: a builder killed mid-build leaves its folder, and the next
builder removes it — never one of a builder still running (found under `make run`: a retention
service killed while making a right-of-access copy left its decoded segments in /tmp)."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from vigie.custody import scratch

pytestmark = pytest.mark.integration


def test_only_the_folders_of_builders_gone_are_removed(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    left = tmp_path / f"vigie-copy-{dead}-abc"
    left.mkdir()
    (left / "00000.mp4").write_bytes(b"x" * 100)
    mine = scratch.make("vigie-copy-")
    other = tmp_path / "vigie-export-1-xyz"  # another kind of build: not this sweep's
    other.mkdir()
    assert scratch.sweep("vigie-copy-") == 1
    assert not left.exists() and mine.is_dir() and other.is_dir()
