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


# Issue 37: the library's groups, bottom to top. A group imports only groups of a lower layer
# (or itself); a new folder or root module must be placed here before it can be imported.
LAYERS: tuple[frozenset[str], ...] = (
    frozenset({"plumbing"}),
    frozenset({"media", "security", "cameras"}),
    frozenset({"records"}),
    frozenset({"custody", "verbalisation"}),
    frozenset({"service", "operations"}),
    frozenset({"local"}),
    frozenset({"cli"}),
)
LIBRARY = REPO / "libs" / "vigie"


def _group(module: str) -> str | None:
    """`vigie.custody.holds` → custody; `vigie.service` → service; `vigie` itself → None."""
    parts = module.split(".")
    return parts[1] if parts[0] == "vigie" and len(parts) > 1 else None


def _library_imports(library: Path = LIBRARY) -> dict[tuple[str, str], list[str]]:
    """(importing group, imported group) → the files that make the arrow."""
    arrows: dict[tuple[str, str], list[str]] = {}
    for path in sorted(library.rglob("*.py")):
        parts = path.relative_to(library).with_suffix("").parts
        if parts == ("__init__",):
            continue
        own = parts[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                targets = ([f"vigie.{a.name}" for a in node.names] if node.module == "vigie"
                           else [node.module])
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            for target in targets:
                group = _group(target)
                if group and group != own:
                    arrows.setdefault((own, group), []).append(str(path.relative_to(library)))
    return arrows


def _rank(group: str) -> int:
    return next(i for i, layer in enumerate(LAYERS) if group in layer)


def test_the_library_is_a_handful_of_groups_each_placed_in_a_layer() -> None:
    root_modules = sorted(p.name for p in LIBRARY.glob("*.py") if p.name != "__init__.py")
    assert len(root_modules) <= 10, root_modules
    groups = {p.name for p in LIBRARY.iterdir() if (p / "__init__.py").exists()}
    groups |= {Path(name).stem for name in root_modules}
    placed = frozenset().union(*LAYERS)
    assert groups - placed == set(), "place each new group in LAYERS (and docs/architecture.md)"
    assert placed - groups == set(), "a layer names a group that no longer exists"


def _upward(arrows: dict[tuple[str, str], list[str]]) -> dict[str, list[str]]:
    return {f"{a} → {b}": files for (a, b), files in arrows.items() if _rank(b) >= _rank(a)}


def test_each_group_imports_only_the_layers_below_it_so_there_is_no_cycle() -> None:
    assert _upward(_library_imports()) == {}


def test_the_layer_check_sees_an_arrow_pointing_up(tmp_path: Path) -> None:
    """The check above is only worth something if it can fail: a plumbing module that imports
    custody, in any of the three spellings, is an arrow up."""
    (tmp_path / "plumbing").mkdir()
    (tmp_path / "plumbing" / "a.py").write_text("from vigie.custody import holds\n")
    (tmp_path / "plumbing" / "b.py").write_text("from vigie import custody\n")
    (tmp_path / "plumbing" / "c.py").write_text("import vigie.records.communes\n")
    (tmp_path / "plumbing" / "d.py").write_text("from vigie.plumbing import log\n")
    assert _upward(_library_imports(tmp_path)) == {
        "plumbing → custody": ["plumbing/a.py", "plumbing/b.py"],
        "plumbing → records": ["plumbing/c.py"]}
