"""Holes found by attacking the running gateway (issue 17), each closed and proved here: commune
scope of user administration and of the register (R9), roles that must not meet (R9, R27), login
throttling under a concurrent burst and TOTP codes spent once (R38), bounded input refused before
it costs anything, control characters, holds reaching into the future (R4), CSV formulas (R14)."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import time
from contextlib import aclosing
from datetime import UTC, date, datetime, timedelta

import asyncpg
import pytest
from vigie.records.spreadsheet import spreadsheet_cell
from vigie.security.accounts import create_user

from tests.viewer_gateway.conftest import PASSWORD, GatewayUnderTest

pytestmark = pytest.mark.integration


async def _account(db: asyncpg.Pool, username: str, roles: list[str], communes: list[str]) -> str:
    user = await create_user(db, username=username, full_name=username, password=PASSWORD,
                             roles=roles, communes=communes, designated_by="le maire",
                             designation_expires=date.today() + timedelta(days=30),
                             trained_on=date.today())
    return user.totp_secret or ""


async def test_user_administration_is_scoped_to_the_administrators_communes_R9(
    gateway: GatewayUnderTest, db: asyncpg.Pool,
) -> None:
    await _account(db, "agent.ballain", ["operator"], ["ballainvilliers"])
    await _account(db, "agent.both", ["operator"], ["palaiseau", "ballainvilliers"])
    async with aclosing(await gateway.login("admin")) as admin:
        listed = {u["username"] for u in (await admin.get("/api/users")).json()}
        assert "operator" in listed and "admin" in listed
        assert not {"agent.ballain", "agent.both"} & listed, "another commune's accounts listed"
        for other in ("agent.ballain", "agent.both"):
            for method, path, body in (
                    ("PATCH", f"/api/users/{other}", {"disabled": True}),
                    ("PATCH", f"/api/users/{other}", {"roles": ["admin"]}),
                    ("PATCH", f"/api/users/{other}",
                     {"designation_expires": str(date.today() + timedelta(days=900))}),
                    ("POST", f"/api/users/{other}/totp", None)):
                refused = await admin.request(method, path, json=body)
                assert refused.status_code == 404, (method, path, refused.text)
                assert "secret" not in refused.text
        row = await db.fetchrow("SELECT * FROM users WHERE username = 'agent.ballain'")
        assert row["disabled"] is False and row["roles"] == ["operator"]
        assert row["totp_secret"] is None
        # Nobody extends their own designation, nor resets their own second factor.
        own = await admin.patch("/api/users/admin", json={
            "designation_expires": str(date.today() + timedelta(days=3650))})
        assert own.status_code == 409, own.text
        assert (await admin.post("/api/users/admin/totp")).status_code == 409
        # An account created here belongs to at least one of the administrator's communes.
        orphan = await admin.post("/api/users", json={
            "username": "agent.nul", "full_name": "Nul", "password": PASSWORD,
            "roles": ["operator"], "communes": [], "designated_by": "le maire"})
        assert orphan.status_code == 422


async def test_one_account_is_never_municipal_and_national_police_R9_R27(
    gateway: GatewayUnderTest, db: asyncpg.Pool,
) -> None:
    async with aclosing(await gateway.login("admin")) as admin:
        both = await admin.post("/api/users", json={
            "username": "agent.double", "full_name": "Double", "password": PASSWORD,
            "roles": ["operator", "national_police"], "communes": ["palaiseau"],
            "designated_by": "le maire"})
        assert both.status_code == 400 and "national-police" in both.json()["detail"]
        assert both.json()["code"] == "account.national_police_alone"  # issue 37
        added = await admin.patch("/api/users/operator",
                                  json={"roles": ["operator", "national_police"]})
        assert added.status_code == 400, added.text
    assert await db.fetchval("SELECT roles FROM users WHERE username = 'operator'") == ["operator"]
    with pytest.raises(asyncpg.CheckViolationError):  # the database refuses it too
        await db.execute("UPDATE users SET roles = '{supervisor,national_police}' "
                         "WHERE username = 'supervisor'")


async def test_a_concurrent_burst_of_wrong_passwords_counts_at_most_the_limit_R38(
    gateway: GatewayUnderTest, db: asyncpg.Pool,
) -> None:
    async with gateway.client() as client:
        answers = await asyncio.gather(*(
            client.post("/api/session", json={"username": "operator",
                                              "password": f"wrong password {i}"})
            for i in range(50)))
    statuses = [a.status_code for a in answers]
    assert statuses.count(401) <= 5, f"{statuses.count(401)} passwords were tried"
    assert statuses.count(429) >= 45
    rows = await db.fetch("SELECT outcome FROM audit_log WHERE action = 'login' ORDER BY id")
    outcomes = [r["outcome"] for r in rows]
    assert outcomes.count("wrong_password") <= 5
    assert outcomes.count("throttled") == 1, "throttled attempts are journaled once per window"


async def test_throttled_attempts_write_a_bounded_number_of_register_rows(
    gateway: GatewayUnderTest, db: asyncpg.Pool,
) -> None:
    async with gateway.client() as client:
        for i in range(40):  # many accounts from one address: the address limit (20) holds
            await client.post("/api/session", json={"username": f"nobody{i}",
                                                    "password": "wrong password"})
    count = await db.fetchval("SELECT count(*) FROM audit_log WHERE action = 'login'")
    assert count <= 20 + 1, f"{count} register rows for 40 attempts"


async def test_anonymous_callers_get_401_whatever_the_body_and_huge_bodies_413(
    gateway: GatewayUnderTest,
) -> None:
    async with gateway.client() as anonymous:
        for body in (b"{not json", b"[]", b'{"masks": 5}'):
            answer = await anonymous.post("/api/cameras/palaiseau/gare/masks", content=body,
                                          headers={"Content-Type": "application/json"})
            assert answer.status_code == 401, answer.text
        huge = b'{"masks": [' + b"1," * 600_000 + b"1]}"
        assert (await anonymous.post("/api/users", content=huge)).status_code == 413

        async def chunks():  # no declared length: counted as it comes
            for _ in range(40):
                yield b" " * 65536

    async with aclosing(await gateway.login("mask-admin")) as mask_admin:
        chunked = await mask_admin.post("/api/cameras/palaiseau/chantier/masks",
                                        content=chunks(),
                                        headers={"Content-Type": "application/json"})
        assert chunked.status_code == 413
        square = [[0.1, 0.1], [0.2, 0.1], [0.2, 0.2], [0.1, 0.2]]
        many_points = [[0.5, 0.5]] * 3000
        started = time.monotonic()
        for masks in ([{"points": many_points}], [{"points": square}] * 201):
            refused = await mask_admin.post("/api/cameras/palaiseau/chantier/masks",
                                            json={"masks": masks})
            assert refused.status_code == 422, refused.text
        assert time.monotonic() - started < 2, "bounded input is refused without the O(n²) check"
        ok = await mask_admin.post("/api/cameras/palaiseau/chantier/masks",
                                   json={"masks": [{"points": square}]})
        assert ok.status_code == 201, ok.text


async def test_control_characters_are_refused_in_bodies_and_queries(
    gateway: GatewayUnderTest,
) -> None:
    async with aclosing(await gateway.login("supervisor")) as supervisor:
        for reason in ("relève\x00PN", "relève\x1b[2JPN", "a\x7f"):
            refused = await supervisor.post("/api/communes/palaiseau/handover", json={
                "holder": "national_police", "reason": reason})
            assert refused.status_code == 422, (reason, refused.text)
    async with aclosing(await gateway.login("auditor")) as auditor:
        refused = await auditor.get("/api/register", params={"actor": "x\ny"})
        assert refused.status_code == 422


async def test_a_hold_reaching_into_the_future_is_refused_R4(gateway: GatewayUnderTest) -> None:
    now = datetime.now(UTC)
    async with aclosing(await gateway.login("supervisor")) as supervisor:
        refused = await supervisor.post("/api/holds", json={
            "kind": "judicial_requisition", "reference": "PV 1", "commune": "palaiseau",
            "cameras": ["gare"], "period_start": (now - timedelta(hours=1)).isoformat(),
            "period_end": (now + timedelta(days=365)).isoformat(), "reason": "vol",
            "review_on": str(date.today() + timedelta(days=30))})
        assert refused.status_code in (400, 422) and "ends in the future" in refused.text


async def test_csv_export_neutralises_formulas_typed_by_anyone_R14(
    gateway: GatewayUnderTest, db: asyncpg.Pool,
) -> None:
    async with gateway.client() as attacker:  # typed at the login screen by anybody
        await attacker.post("/api/session", json={
            "username": '=HYPERLINK("http://x","clic")', "password": "wrong password"})
    # That row has no commune nor known author: the auditor does not see it (R9); a mask
    # administrator's note in Palaiseau is in the auditor's export.
    async with aclosing(await gateway.login("mask-admin")) as mask_admin:
        await mask_admin.post("/api/cameras/palaiseau/chantier/masks", json={
            "masks": [], "note": "@SUM(1+1)"})
    async with aclosing(await gateway.login("auditor")) as auditor:
        text = (await auditor.get("/api/register/export.csv")).text
    cells = [c for row in csv.reader(io.StringIO(text)) for c in row]
    assert "'@SUM(1+1)" in cells
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@")], "a cell starts a formula"
    assert spreadsheet_cell("-2+3") == "'-2+3" and spreadsheet_cell("PV 12") == "PV 12"


async def test_an_auditor_sees_no_other_communes_rows_nor_unscoped_logins_R9(
    gateway: GatewayUnderTest, db: asyncpg.Pool,
) -> None:
    await _account(db, "agent.ballain", ["operator"], ["ballainvilliers"])
    for username in ("agent.ballain", "operator"):
        async with aclosing(await gateway.login(username)):
            pass
    async with aclosing(await gateway.login("auditor")) as auditor:
        rows = (await auditor.get("/api/register", params={"limit": 1000})).json()["rows"]
    actors = {r["actor"] for r in rows}
    assert "operator" in actors, "the auditor's own commune's logins are shown"
    assert "agent.ballain" not in actors, "another commune's logins (address, post) leak"
    assert all(r["commune"] in (None, "palaiseau") for r in rows)


async def test_a_hand_over_reason_reaches_only_that_communes_sessions_R9(
    gateway: GatewayUnderTest, db: asyncpg.Pool,
) -> None:
    import websockets

    from services.viewer_gateway.auth import COOKIE

    await _account(db, "sup.ballain", ["supervisor"], ["ballainvilliers"])
    async with aclosing(await gateway.login("operator")) as operator, \
            aclosing(await gateway.login("sup.ballain")) as other:
        url = gateway.url.replace("http", "ws") + "/api/session/events"
        async with websockets.connect(url, additional_headers={
                "Cookie": f"{COOKIE}={operator.cookies[COOKIE]}"}) as events:
            assert json.loads(await events.recv())["type"] == "hello"
            switched = await other.post("/api/communes/ballainvilliers/handover", json={
                "holder": "national_police", "reason": "secret de Ballainvilliers"})
            assert switched.status_code == 200, switched.text
            with pytest.raises(TimeoutError):
                message = await asyncio.wait_for(events.recv(), timeout=1.5)
                pytest.fail(f"a Palaiseau session was told {message}")


async def test_expired_sessions_and_old_login_failures_are_purged(
    gateway: GatewayUnderTest, db: asyncpg.Pool,
) -> None:
    from services.viewer_gateway.handlers import purge_expired

    async with gateway.client() as client:
        await client.post("/api/session", json={"username": "operator", "password": "nope nope"})
    async with aclosing(await gateway.login("operator")):
        pass
    await db.execute("UPDATE sessions SET expires_at = now() - interval '2 days'")
    await db.execute("UPDATE login_failures SET at = now() - interval '2 hours'")
    await purge_expired(db, gateway.gw.settings)
    assert await db.fetchval("SELECT count(*) FROM sessions") == 0
    assert await db.fetchval("SELECT count(*) FROM login_failures") == 0


async def test_argon2_does_not_stall_the_event_loop(gateway: GatewayUnderTest) -> None:
    """Ten logins at once while another request is served: it is not queued behind them."""
    async with aclosing(await gateway.login("operator")) as operator, gateway.client() as other:
        logins = [asyncio.create_task(other.post("/api/session", json={
            "username": "supervisor", "password": PASSWORD})) for _ in range(4)]
        await asyncio.sleep(0.02)
        loop_lag = []
        for _ in range(5):
            t0 = time.monotonic()
            await asyncio.sleep(0.01)
            loop_lag.append(time.monotonic() - t0 - 0.01)
        answer = await operator.get("/api/session")
        assert answer.status_code == 200
        await asyncio.gather(*logins)
    # The gateway shares this test's loop: argon2 on it would delay these sleeps by ~50 ms each.
    assert max(loop_lag) < 0.15, loop_lag

