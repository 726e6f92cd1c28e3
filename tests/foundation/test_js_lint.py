"""The web UI's JavaScript passes ESLint (issue 37): a name used but never imported, an import
left behind, a value assigned for nothing — what the browser only says when the screen breaks."""

from __future__ import annotations

import subprocess

import pytest

from tests.harness import REPO

pytestmark = pytest.mark.unit

ESLINT = REPO / "tools" / "eslint" / "node_modules" / ".bin" / "eslint"
CONFIG = REPO / "tools" / "eslint" / "eslint.config.js"
UI_JS = REPO / "services" / "viewer_gateway" / "ui" / "js"


def _lint(*args: str, source: str | None = None) -> subprocess.CompletedProcess[str]:
    assert ESLINT.exists(), "ESLint is installed by `make setup` (tools/eslint)"
    return subprocess.run([str(ESLINT), "--config", str(CONFIG), *args], cwd=REPO, input=source,
                          capture_output=True, text=True, timeout=120)


def test_the_web_ui_passes_eslint() -> None:
    checked = _lint(str(UI_JS.relative_to(REPO)))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_eslint_sees_a_name_never_imported() -> None:
    checked = _lint("--stdin", "--stdin-filename", str((UI_JS / "probe.js").relative_to(REPO)),
                    source='import { h } from "./dom.js";\nexport const x = frDate("2026-01-01");\n')
    assert checked.returncode == 1
    assert "'frDate' is not defined" in checked.stdout and "'h' is defined but never used" in \
        checked.stdout
