"""The arrows of the code point one way (issue 19): libs ← services ← entry points. The shared
package never imports a service or the tests; a service imports no other service; the benchmarks
do not lean on the test suite."""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.harness import REPO

pytestmark = pytest.mark.unit


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
    return found


def _offenders(folder: Path, forbidden: Callable[[Path, str], bool]) -> dict[str, list[str]]:
    result = {}
    for path in sorted(folder.rglob("*.py")):
        bad = sorted(m for m in _imports(path) if forbidden(path, m))
        if bad:
            result[str(path.relative_to(REPO))] = bad
    return result


def _top(module: str) -> str:
    return module.split(".")[0]


def test_libs_import_neither_services_nor_tests() -> None:
    assert _offenders(REPO / "libs", lambda _p, m: _top(m) in ("services", "tests", "bench")) == {}


def test_a_service_imports_no_other_service_and_no_test() -> None:
    def forbidden(path: Path, module: str) -> bool:
        own = path.relative_to(REPO / "services").parts[0]
        parts = module.split(".")
        return parts[0] in ("tests", "bench") or (
            parts[0] == "services" and len(parts) > 1 and parts[1] != own)

    assert _offenders(REPO / "services", forbidden) == {}


def test_benchmarks_do_not_import_the_tests() -> None:
    assert _offenders(REPO / "bench", lambda _p, m: _top(m) == "tests") == {}


def test_the_tests_do_not_import_the_benchmarks() -> None:
    """Issue 37: what both need (the oracle of what the recorder must store) is in libs/."""
    assert _offenders(REPO / "tests", lambda _p, m: _top(m) == "bench") == {}
