"""Accounts and sessions over HTTP (REGULATION.md R8 designation, R10 deny by default, R12 logins
in the register, R38 second factor for administrators and national police)."""

from __future__ import annotations

import json
from contextlib import aclosing
from datetime import date, timedelta

import asyncpg
import pyotp
import pytest

from tests.viewer_gateway.conftest import PASSWORD, GatewayUnderTest

pytestmark = pytest.mark.integration


async def test_login_sets_a_strict_http_only_cookie_and_logout_ends_the_session_R12(
    gateway: GatewayUnderTest, db: asyncpg.Pool,
) -> None:
    async with gateway.client() as client:
        assert (await client.get("/api/session")).status_code == 401
        response = await client.post("/api/session", json={
            "username": "operator", "password": PASSWORD, "post": "CSU poste 2"})
        assert response.status_code == 200, response.text
        cookie = response.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "secure" not in cookie
        me = (await client.get("/api/session")).json()
        assert me["permissions"] == ["live", "playback", "verbalisation"]
        assert me["designation"]["designated_by"] == "le maire" and me["post"] == "CSU poste 2"
        assert (await client.delete("/api/session")).status_code == 204
        assert (await client.get("/api/session")).status_code == 401
    rows = await db.fetch("SELECT actor, action, outcome, details FROM audit_log ORDER BY id")
    assert [(r["action"], r["outcome"]) for r in rows if r["actor"] == "operator"] == [
        ("login", "ok"), ("logout", "ok")]
    assert json.loads(rows[0]["details"])["post"] == "CSU poste 2"


async def test_wrong_password_then_throttling_per_account(
    gateway: GatewayUnderTest, db: asyncpg.Pool,
) -> None:
    async with gateway.client() as client:
        for _ in range(5):
            wrong = await client.post("/api/session", json={"username": "operator",
                                                            "password": "wrong password!"})
            assert wrong.status_code == 401 and wrong.json()["detail"] == \
                "wrong username or password"
        throttled = await client.post("/api/session", json={"username": "operator",
                                                            "password": PASSWORD})
        assert throttled.status_code == 429 and int(throttled.headers["retry-after"]) > 0
        # Another account from the same address is not locked out by these five.
        assert (await client.post("/api/session", json={
            "username": "supervisor", "password": PASSWORD})).status_code == 200
    outcomes = [r["outcome"] for r in await db.fetch(
        "SELECT outcome FROM audit_log WHERE actor = 'operator' ORDER BY id")]
    assert outcomes == ["wrong_password"] * 5 + ["throttled"]


async def test_unknown_user_gets_the_same_answer_as_a_wrong_password(
    gateway: GatewayUnderTest,
) -> None:
    async with gateway.client() as client:
        response = await client.post("/api/session", json={"username": "nobody",
                                                           "password": PASSWORD})
        assert response.status_code == 401
        assert response.json()["detail"] == "wrong username or password"


async def test_an_expired_designation_cannot_log_in_R8(
    gateway: GatewayUnderTest, db: asyncpg.Pool,
) -> None:
    await db.execute("UPDATE users SET designation_expires = $1 WHERE username = 'operator'",
                     date.today() - timedelta(days=1))
    async with gateway.client() as client:
        response = await client.post("/api/session", json={"username": "operator",
                                                           "password": PASSWORD})
        assert response.status_code == 403
        assert "designation expired" in response.json()["detail"]


async def test_an_open_session_ends_when_the_designation_expires_R8(
    gateway: GatewayUnderTest, db: asyncpg.Pool,
) -> None:
    async with aclosing(await gateway.login("operator")) as client:
        await db.execute("UPDATE users SET designation_expires = $1 WHERE username = 'operator'",
                         date.today() - timedelta(days=1))
        assert (await client.get("/api/cameras")).status_code == 401


@pytest.mark.parametrize("username", ["admin", "national-police"])
async def test_totp_is_required_for_administrators_and_national_police_R38(
    gateway: GatewayUnderTest, username: str,
) -> None:
    async with gateway.client() as client:
        first = await client.post("/api/session", json={"username": username,
                                                        "password": PASSWORD})
        assert first.status_code == 401 and first.json()["totp_required"] is True
        wrong = await client.post("/api/session", json={"username": username,
                                                        "password": PASSWORD, "totp": "000000"})
        assert wrong.status_code == 401 and "authenticator code" in wrong.json()["detail"]
        code = pyotp.TOTP(gateway.totp[username]).now()
        ok = await client.post("/api/session", json={"username": username, "password": PASSWORD,
                                                     "totp": code})
        assert ok.status_code == 200 and ok.json()["totp_enabled"] is True


async def test_operator_without_totp_logs_in_with_a_password_alone(
    gateway: GatewayUnderTest,
) -> None:
    assert "operator" not in gateway.totp
    async with aclosing(await gateway.login("operator")) as client:
        assert (await client.get("/api/session")).json()["totp_enabled"] is False


async def test_administrator_creates_an_account_and_disabling_it_ends_its_sessions(
    gateway: GatewayUnderTest, db: asyncpg.Pool,
) -> None:
    async with aclosing(await gateway.login("admin")) as admin:
        created = await admin.post("/api/users", json={
            "username": "agent.dupont", "full_name": "Agent Dupont", "password": PASSWORD,
            "roles": ["operator"], "communes": ["palaiseau"], "designated_by": "le maire",
            "designation_expires": str(date.today() + timedelta(days=30)),
            "agent_number": "PM-42"})
        assert created.status_code == 201, created.text
        assert "password" not in created.text and "totp_secret" not in created.text
        outside = await admin.post("/api/users", json={
            "username": "agent.x", "full_name": "X", "password": PASSWORD, "roles": ["operator"],
            "communes": ["ballainvilliers"], "designated_by": "le maire"})
        assert outside.status_code == 403 and "R9" in outside.json()["detail"]
        taken = await admin.post("/api/users", json={
            "username": "agent.dupont", "full_name": "Again", "password": PASSWORD,
            "roles": ["operator"], "designated_by": "le maire"})
        assert taken.status_code == 409
        async with aclosing(await gateway.login("agent.dupont")) as agent:
            assert (await agent.get("/api/cameras")).status_code == 200
            off = await admin.patch("/api/users/agent.dupont", json={"disabled": True})
            assert off.status_code == 200 and off.json()["disabled"] is True
            assert (await agent.get("/api/cameras")).status_code == 401
        self_disable = await admin.patch("/api/users/admin", json={"disabled": True})
        assert self_disable.status_code == 409
    actions = [r["action"] for r in await db.fetch(
        "SELECT action FROM audit_log WHERE actor = 'admin' ORDER BY id")]
    assert "user.created" in actions and "user.changed" in actions
