"""docs/authorization.md is the expected behaviour, written by hand: every cell of its decision
table checked through the HTTP API, every route of the API in its route table, every guarded route
refused to an account without the permission (REGULATION.md R8–R10, R27; invariant 5)."""

from __future__ import annotations

import re
from contextlib import aclosing
from pathlib import Path

import asyncpg
import httpx
import pytest
from fastapi.routing import APIWebSocketRoute

from services.viewer_gateway.api import ROUTERS
from services.viewer_gateway.policy import ACTIONS, ROLE_PERMISSIONS
from tests.harness import REPO
from tests.viewer_gateway.conftest import ROLES, GatewayUnderTest

pytestmark = pytest.mark.integration
DOC = REPO / "docs" / "authorization.md"
CAMERA_STATES = ("active", "commissioning", "disabled")


def _table(text: str, header: str) -> list[list[str]]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip("|").split("|")])
    return rows


def _matches(cell: str, value: str) -> bool:
    return cell == "*" or value in [v.strip() for v in cell.split(",")]


def expected(rules: list[list[str]], role: str, action: str, commune: str, holder: str,
             camera: str) -> str:
    for rule in rules:
        if all(_matches(c, v) for c, v in zip(rule[:5], (role, action, commune, holder, camera),
                                               strict=True)):
            return rule[5]
    raise AssertionError("the table has no final catch-all row")


def test_the_table_only_names_known_roles_actions_and_states() -> None:
    rules = _table(DOC.read_text(), "| role | action | commune |")
    known = [set(ROLES), set(ACTIONS), {"own", "other"}, {"municipal", "national"},
             set(CAMERA_STATES), {"allow", "deny"}]
    for rule in rules:
        for cell, allowed in zip(rule, known, strict=True):
            values = {v.strip() for v in cell.split(",")} - {"*"}
            assert values <= allowed, f"unknown {values - allowed} in {rule}"
    roles = _table(DOC.read_text(), "| role | permissions |")
    assert {r[0] for r in roles} == set(ROLES)
    for role, perms in roles:
        listed = {p.strip() for p in re.sub(r"\(.*?\)|—.*", "", perms).split(",") if p.strip()}
        assert listed == set(ROLE_PERMISSIONS[role]), role


async def test_every_cell_of_the_decision_table_through_the_api_R9_R10_R27(
    gateway: GatewayUnderTest, db: asyncpg.Pool,
) -> None:
    rules = _table(DOC.read_text(), "| role | action | commune |")
    # Ballainvilliers' camera is "other" for these Palaiseau accounts; its state is varied too.
    await db.execute("INSERT INTO cameras (commune, slug, name, state) VALUES "
                     "('ballainvilliers', 'chantier', 'c', 'commissioning'), "
                     "('ballainvilliers', 'ancienne', 'a', 'disabled')")
    cameras = {("own", "active"): "palaiseau/gare", ("own", "commissioning"): "palaiseau/chantier",
               ("own", "disabled"): "palaiseau/ancienne",
               ("other", "active"): "ballainvilliers/mairie",
               ("other", "commissioning"): "ballainvilliers/chantier",
               ("other", "disabled"): "ballainvilliers/ancienne"}
    checked = 0
    mismatches = []
    for holder in ("municipal", "national"):
        await db.execute(
            "INSERT INTO handover_state (commune, holder) SELECT slug, $1 FROM communes "
            "ON CONFLICT (commune) DO UPDATE SET holder = excluded.holder",
            f"{holder}_police")
        gateway.rt.stop.set()  # the schedule must not switch it back while we look
        for role in ROLES:
            async with aclosing(await gateway.login(role.replace("_", "-"))) as client:
                for (commune, state), camera in cameras.items():
                    response = await client.get(f"/api/cameras/{camera}/rights")
                    if commune == "other":
                        # Another commune's camera does not exist for this account (R9).
                        assert response.status_code == 404, response.text
                        got = {a: "deny" for a in ACTIONS}
                    else:
                        assert response.status_code == 200, response.text
                        body = response.json()
                        assert body["holder"] == f"{holder}_police"
                        got = {a: "allow" if d["allowed"] else "deny"
                               for a, d in body["rights"].items()}
                        assert all(d["reason"] for d in body["rights"].values())
                    for action in ACTIONS:
                        want = expected(rules, role, action, commune, holder, state)
                        checked += 1
                        if got[action] != want:
                            mismatches.append((role, action, commune, holder, state, got[action]))
    assert checked == len(ROLES) * len(ACTIONS) * 2 * 2 * 3 == 1008
    assert not mismatches, mismatches[:10]


def _routes_in_doc() -> dict[str, str]:
    return {r[0]: r[1] for r in _table(DOC.read_text(), "| route | permission |")}


async def test_every_route_of_the_api_is_in_the_table_and_guarded_as_it_says(
    gateway: GatewayUnderTest,
) -> None:
    documented = _routes_in_doc()
    async with gateway.client() as anonymous:
        spec = (await anonymous.get("/openapi.json")).json()
    app_routes = {f"{method.upper()} {path}" for path, ops in spec["paths"].items()
                  for method in ops}
    app_routes |= {f"WEBSOCKET {r.path}" for router in ROUTERS for r in router.routes
                   if isinstance(r, APIWebSocketRoute)}
    app_routes |= {"GET /healthz", "GET /readyz", "GET /metrics"}  # added by the service runner
    missing = sorted(app_routes - set(documented))
    assert not missing, f"routes the authorization table lacks: {missing}"
    stale = sorted(set(documented) - app_routes)
    assert not stale, f"routes in the table the API no longer has: {stale}"

    # One session per role for the whole walk: accounts with a second factor can sign in only
    # once per 30-s step (R38), and a login per route made this test last over three minutes.
    sessions: dict[str, httpx.AsyncClient] = {}

    async def session_of(role: str) -> httpx.AsyncClient:
        if role not in sessions:
            sessions[role] = await gateway.login(role.replace("_", "-"))
        return sessions[role]

    try:
        for route, permission in documented.items():
            method, path = route.split(" ", 1)
            if method == "WEBSOCKET" or permission == "public" or path in (
                    "/healthz", "/readyz", "/metrics"):
                continue
            url = path.format(commune="palaiseau", camera="gare", username="nobody", hold_id=999,
                              version=1, view_id="00000000-0000-0000-0000-000000000000",
                              alarm_id=999, export_id=999, offence_id=999, n=1, request_id=999,
                              copy_id=999, incident_id=999, authorisation_id=999,
                              sign_id=999)
            async with gateway.client() as anonymous:
                assert (await anonymous.request(method, url)).status_code == 401, route
            if permission == "session":
                continue
            without = next(r for r in ROLES if permission not in ROLE_PERMISSIONS[r])
            holder_of = next(r for r in ROLES if permission in ROLE_PERMISSIONS[r])
            refused = await (await session_of(without)).request(method, url, json={})
            assert refused.status_code == 403, (route, without, refused.text)
            assert permission in refused.json()["detail"]
            passed = await (await session_of(holder_of)).request(method, url, json={})
            assert passed.status_code != 403 or "R10" not in passed.text, (route, passed.text)
    finally:
        for client in sessions.values():
            await client.aclose()


def test_every_action_has_a_permission_row() -> None:
    rows = _table(DOC.read_text(), "| permission | what it allows |")
    assert [r[0].strip("`") for r in rows] == list(ACTIONS)
    assert Path(DOC).exists()
