"""docs/ui.md shows only screenshots that exist and that a browser test takes (issue 11): a screen
the tests stop drawing cannot stay in the documentation with an old picture."""

from __future__ import annotations

import re

import pytest

from tests.harness import REPO

pytestmark = pytest.mark.unit


def test_every_screenshot_in_the_ui_docs_exists_and_is_taken_by_a_browser_test() -> None:
    shown = set(re.findall(r"\(ui/([a-z0-9-]+)\.png\)", (REPO / "docs" / "ui.md").read_text()))
    taken = {name for test in (REPO / "tests" / "ui").glob("test_*.py")
             for name in re.findall(r'shoot\(\w+, "([a-z0-9-]+)"\)', test.read_text())}
    on_disk = {png.stem for png in (REPO / "docs" / "ui").glob("*.png")}
    assert shown, "docs/ui.md shows no screenshot"
    assert shown <= on_disk, f"missing in docs/ui/: {sorted(shown - on_disk)}"
    assert shown <= taken, f"no browser test takes: {sorted(shown - taken)}"
    assert on_disk <= shown, f"in docs/ui/ but not shown: {sorted(on_disk - shown)}"
