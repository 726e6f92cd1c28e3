"""One refusal type (issue 37): every domain refusal carries a stable code, becomes an HTTP
problem by its kind in one place, and each code raised anywhere has its French sentence in the
web UI (so rewording the English never shows English to an agent)."""

from __future__ import annotations

import ast
import re

import pytest
from vigie.custody.holds import HoldConflict, HoldError
from vigie.plumbing.refusals import KIND_STATUS, NotFound, Refusal
from vigie.security.accounts import AccountError, check_roles

from tests.harness import REPO

pytestmark = pytest.mark.unit

FR_JS = REPO / "services" / "viewer_gateway" / "ui" / "js" / "fr.js"


def _raised_codes() -> dict[str, list[str]]:
    """Every `code="…"` given to a raise in libs/ and services/, and every code of the gateway's
    policy decisions (`Decision(False, reason, code)`) → where."""
    found: dict[str, list[str]] = {}
    for folder in (REPO / "libs", REPO / "services"):
        for path in sorted(folder.rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                codes: list[ast.expr] = []
                if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
                    codes = [k.value for k in node.exc.keywords if k.arg == "code"]
                elif isinstance(node, ast.Call) and getattr(node.func, "id", "") == "Decision":
                    codes = node.args[2:3]
                for code in codes:
                    if isinstance(code, ast.Constant) and isinstance(code.value, str):
                        found.setdefault(code.value, []).append(
                            f"{path.relative_to(REPO)}:{node.lineno}")
    return found


def _french_codes(text: str) -> set[str]:
    block = text[text.index("export const CODES = {"):]
    block = block[:block.index("\n};")]
    return set(re.findall(r'^  "([a-z_]+\.[a-z_]+)":', block, re.M))


def test_every_code_raised_has_its_french_sentence_in_the_ui() -> None:
    raised = _raised_codes()
    assert len(raised) >= 100 and "permission.missing" in raised  # the scan finds them
    missing = {code: where for code, where in raised.items()
               if code not in _french_codes(FR_JS.read_text(encoding="utf-8"))}
    assert missing == {}, "write the French of these codes in fr.js's CODES"


def test_the_french_check_sees_a_missing_sentence() -> None:
    text = FR_JS.read_text(encoding="utf-8")
    assert "hold.not_pending" in _french_codes(text)
    assert "hold.not_pending" not in _french_codes(text.replace('  "hold.not_pending":', '  '))


def test_a_refusal_is_a_problem_with_its_code_params_and_status() -> None:
    refused = HoldConflict("hold 3 is active: only a pending hold is approved",
                           code="hold.not_pending", state="active")
    assert isinstance(refused, HoldError) and isinstance(refused, ValueError)
    assert refused.status == 409
    assert refused.problem() == {"detail": "hold 3 is active: only a pending hold is approved",
                                 "code": "hold.not_pending", "params": {"state": "active"}}
    plain = HoldError("unknown commune 'x'")
    assert (plain.status, plain.code) == (400, "hold.refused")  # no code yet: the domain's
    gone = NotFound("no hold 9 in your communes")
    assert isinstance(gone, LookupError) and gone.status == 404
    assert set(KIND_STATUS.values()) <= {400, 403, 404, 409, 410, 422, 429, 503}


def test_a_domain_refusal_keeps_its_code_through_the_library() -> None:
    with pytest.raises(AccountError) as refused:
        check_roles(["operator", "national_police"])
    assert isinstance(refused.value, Refusal)
    assert refused.value.code == "account.national_police_alone"
