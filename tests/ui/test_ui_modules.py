"""The web UI's modules as code (issue 21): no import cycle (app.js ↔ login.js was one), and every
screen that loads what it shows goes through api.js's one "latest answer wins" helper rather than
a hand-written guard of its own."""

from __future__ import annotations

import re
from graphlib import CycleError, TopologicalSorter

import pytest

from tests.harness import REPO

pytestmark = pytest.mark.unit

UI = REPO / "services" / "viewer_gateway" / "ui" / "js"
IMPORT = re.compile(r"""^\s*import\s[^;]*?from\s+["']\./([\w-]+\.js)["']""", re.M)
DYNAMIC = re.compile(r"""import\(\s*["']\./([\w-]+\.js)["']\s*\)""")
GUARDS = re.compile(r"\+\+(generation|seekGen|asked)\b|const asked = slug\(\)")


def _imports(static_only: bool) -> dict[str, set[str]]:
    graph = {}
    for module in UI.glob("*.js"):
        text = module.read_text()
        found = set(IMPORT.findall(text))
        if not static_only:
            found |= set(DYNAMIC.findall(text))
        graph[module.name] = found
    return graph


def test_the_ui_modules_import_one_another_without_a_cycle() -> None:
    graph = _imports(static_only=False)
    assert "app.js" not in graph["login.js"], "login.js is told what to do once signed in"
    try:
        order = list(TopologicalSorter(graph).static_order())
    except CycleError as exc:
        raise AssertionError(f"import cycle: {exc.args[1]}") from None
    assert order.index("api.js") < order.index("app.js")


def test_every_screen_that_loads_data_uses_the_latest_answer_helper() -> None:
    screens = re.findall(r'"\./([\w-]+\.js)"\]', (UI / "app.js").read_text())
    assert len(screens) >= 8, screens
    for name in [*screens, "app.js"]:
        text = (UI / name).read_text()
        if "api.get(" not in text and "latest(" not in text:
            continue  # a screen that loads nothing (the account page)
        assert re.search(r"\blatest\b[^;]*\} from \"\./api\.js\"", text), name
        assert "latest()" in text, name
        assert not GUARDS.search(text), f"{name} keeps a hand-written guard"
