"""Accounts and sessions over HTTP (REGULATION.md R8 designation, R10 deny by default, R12 logins
in the register, R38 second factor for administrators and national police)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Callable
from contextlib import aclosing
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest
from vigie.plumbing.http import HttpServer
from vigie.plumbing.settings import CommonSettings
from vigie.security.accounts import (
    SEALED,
    TotpKey,
    TotpKeyError,
    readable_totp,
    seal_clear_totp_secrets,
)

from services.viewer_gateway.api import create_app
from services.viewer_gateway.settings import ViewerGatewaySettings
from tests.conftest import settings_env
from tests.viewer_gateway.conftest import PASSWORD, TOTP_KEY, GatewayUnderTest

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
        code = await gateway.totp_code(username)
        ok = await client.post("/api/session", json={"username": username, "password": PASSWORD,
                                                     "totp": code})
        assert ok.status_code == 200 and ok.json()["totp_enabled"] is True
    async with gateway.client() as thief:
        # The same code, seen over a shoulder, a second time: refused (issue 17, R38).
        replayed = await thief.post("/api/session", json={"username": username,
                                                          "password": PASSWORD, "totp": code})
        assert replayed.status_code == 401 and "used already" in replayed.json()["detail"]


async def test_operator_without_totp_logs_in_with_a_password_alone(
    gateway: GatewayUnderTest,
) -> None:
    assert "operator" not in gateway.totp
    async with aclosing(await gateway.login("operator")) as client:
        assert (await client.get("/api/session")).json()["totp_enabled"] is False


async def _sets_own_password(agent: httpx.AsyncClient) -> None:
    """What an account created by an administrator does first (issue 34, R8)."""
    me = (await agent.get("/api/session")).json()
    assert me["password_change_required"] is True
    assert (await agent.get("/api/cameras")).status_code == 403
    assert (await agent.post("/api/bookmarks", json={})).status_code == 403
    same = await agent.post("/api/session/password", json={
        "current_password": PASSWORD, "new_password": PASSWORD})
    assert same.status_code == 400 and "differ" in same.text
    wrong = await agent.post("/api/session/password", json={
        "current_password": "not-the-password", "new_password": "mon-propre-secret-42"})
    assert wrong.status_code == 400
    done = await agent.post("/api/session/password", json={
        "current_password": PASSWORD, "new_password": "mon-propre-secret-42"})
    assert done.status_code == 204, done.text
    assert (await agent.get("/api/session")).json()["password_change_required"] is False


async def test_image_rights_are_given_on_a_journaled_act_and_used_with_the_agents_own_password_R8(
    gateway: GatewayUnderTest, db: asyncpg.Pool,
) -> None:
    """Issue 34: an administrator minted accounts with image rights alone — password, training
    date and designation typed by the same person. The designating act is required and journaled,
    the typed password opens only the first sign-in, and widening the rights needs an act too."""
    async with aclosing(await gateway.login("admin")) as admin:
        created = await admin.post("/api/users", json={
            "username": "agent.martin", "full_name": "Agent Martin", "password": PASSWORD,
            "roles": ["operator"], "communes": ["palaiseau"], "designated_by": "le maire",
            "designation_act": "arrêté du maire n° 2026-118", "trained_on": str(date.today())})
        assert created.status_code == 201, created.text
        entry = await db.fetchrow("SELECT details FROM audit_log WHERE action = 'user.created' "
                                  "ORDER BY id DESC LIMIT 1")
        details = json.loads(entry["details"])
        assert details["designation_act"] == "arrêté du maire n° 2026-118"
        assert details["image_rights"] == ["operator"]
        async with gateway.client() as agent:
            signed = await agent.post("/api/session", json={"username": "agent.martin",
                                                            "password": PASSWORD})
            assert signed.status_code == 200 and signed.json()["password_change_required"]
            url = gateway.url.replace("http", "ws") + "/api/cameras/palaiseau/gare/live"
            import websockets
            with pytest.raises(websockets.InvalidStatus):  # no live picture either
                async with websockets.connect(url, additional_headers={
                        "Cookie": f"vigie_session={agent.cookies['vigie_session']}"}):
                    pass
            await _sets_own_password(agent)
        assert await db.fetchval("SELECT count(*) FROM audit_log WHERE action = "
                                 "'user.password_set' AND actor = 'agent.martin'") == 1
        widened = await admin.patch("/api/users/agent.martin",
                                    json={"roles": ["operator", "supervisor"]})
        assert widened.status_code == 400 and "designating act" in widened.text
        assert widened.json()["code"] == "account.wider_rights_need_act"  # issue 37
        widened = await admin.patch("/api/users/agent.martin", json={
            "roles": ["operator", "supervisor"], "designation_act": "arrêté n° 2026-140"})
        assert widened.status_code == 200, widened.text
        entry = await db.fetchrow("SELECT details FROM audit_log WHERE action = 'user.changed' "
                                  "ORDER BY id DESC LIMIT 1")
        assert json.loads(entry["details"])["image_rights_widened"] == "role supervisor"
        # A change that adds no picture needs no act.
        renamed = await admin.patch("/api/users/agent.martin", json={"full_name": "A. Martin"})
        assert renamed.status_code == 200, renamed.text


async def test_administrator_creates_an_account_and_disabling_it_ends_its_sessions(
    gateway: GatewayUnderTest, db: asyncpg.Pool,
) -> None:
    async with aclosing(await gateway.login("admin")) as admin:
        account = {
            "username": "agent.dupont", "full_name": "Agent Dupont", "password": PASSWORD,
            "roles": ["operator"], "communes": ["palaiseau"], "designated_by": "le maire",
            "designation_expires": str(date.today() + timedelta(days=30)),
            "agent_number": "PM-42"}
        no_act = await admin.post("/api/users", json=account)
        assert no_act.status_code == 400 and "designating act" in no_act.text, no_act.text
        assert no_act.json()["code"] == "account.designation_act_required"
        created = await admin.post("/api/users", json={
            **account, "designation_act": "arrêté du maire n° 2026-117"})
        assert created.status_code == 201, created.text
        assert "password" not in created.text and "totp_secret" not in created.text
        outside = await admin.post("/api/users", json={
            "username": "agent.x", "full_name": "X", "password": PASSWORD, "roles": ["operator"],
            "communes": ["ballainvilliers"], "designated_by": "le maire"})
        assert outside.status_code == 403 and "R9" in outside.json()["detail"]
        taken = await admin.post("/api/users", json={
            "username": "agent.dupont", "full_name": "Again", "password": PASSWORD,
            "roles": ["operator"], "communes": ["palaiseau"], "designated_by": "le maire",
            "designation_act": "arrêté n° 1"})
        assert taken.status_code == 409
        async with aclosing(await gateway.login("agent.dupont")) as agent:
            await _sets_own_password(agent)
            assert (await agent.get("/api/cameras")).status_code == 200
            off = await admin.patch("/api/users/agent.dupont", json={"disabled": True})
            assert off.status_code == 200 and off.json()["disabled"] is True
            assert (await agent.get("/api/cameras")).status_code == 401
        self_disable = await admin.patch("/api/users/admin", json={"disabled": True})
        assert self_disable.status_code == 409
    actions = [r["action"] for r in await db.fetch(
        "SELECT action FROM audit_log WHERE actor = 'admin' ORDER BY id")]
    assert "user.created" in actions and "user.changed" in actions


async def test_with_tls_the_session_cookie_is_secure_R38(
    gateway: GatewayUnderTest, tmp_path: Path,
) -> None:
    cert, key = _self_signed(tmp_path)
    settings = ViewerGatewaySettings(http_port=0, tls_certificate=cert, tls_key=key)
    app = create_app(gateway.rt, settings)
    server = HttpServer(app, host="127.0.0.1", port=0, ssl_certfile=str(cert),
                        ssl_keyfile=str(key))
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=f"https://127.0.0.1:{server.port}",
                                     verify=False) as client:
            response = await client.post("/api/session", json={"username": "operator",
                                                               "password": PASSWORD})
            assert response.status_code == 200
            assert "secure" in response.headers["set-cookie"].lower()
    finally:
        await server.stop()


def _self_signed(folder: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1).not_valid_before(now)
            .not_valid_after(now + timedelta(days=1)).sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


async def test_rtsp_urls_and_credentials_are_write_only(
    gateway: GatewayUnderTest, db: asyncpg.Pool,
) -> None:
    secret_url = "rtsp://camera:S3cr3t-pw@10.0.0.12/stream1"
    async with aclosing(await gateway.login("admin")) as admin:
        created = await admin.post("/api/cameras", json={
            "commune": "palaiseau", "slug": "parvis", "name": "Parvis", "rtsp_url": secret_url,
            "authorisation_ref": "AP-palaiseau"})
        assert created.status_code == 201, created.text
        assert created.json()["has_source"] is True and created.json()["state"] == "commissioning"
        changed = await admin.patch("/api/cameras/palaiseau/parvis", json={
            "rtsp_url": "rtsp://camera:N3w-pw@10.0.0.12/stream1", "name": None})
        assert changed.status_code == 200 and changed.json()["name"] == "Parvis"
        listed = await admin.get("/api/cameras")
        for text in (created.text, changed.text, listed.text):
            assert "S3cr3t" not in text and "N3w-pw" not in text and "rtsp" not in text
    register = " ".join(r["details"] for r in await db.fetch("SELECT details FROM audit_log"))
    assert "S3cr3t" not in register and "N3w-pw" not in register


async def test_totp_secrets_are_sealed_at_rest_and_open_only_with_the_gateways_key_R38(
    gateway: GatewayUnderTest, db: asyncpg.Pool,
) -> None:
    """Issue 34: TOTP secrets were in clear in `users`, readable by every service and in every
    dump. Sealed under the gateway's key, bound to their account; an old clear one is sealed at
    the gateway's start; with another key, or moved to another account, no code is accepted."""
    rows = {r["username"]: r["totp_secret"] for r in await db.fetch(
        "SELECT username, totp_secret FROM users WHERE totp_secret IS NOT NULL")}
    assert rows and all(v.startswith(SEALED) for v in rows.values()), rows
    assert not any(gateway.totp[u] in v for u, v in rows.items())
    # Another account's sealed secret copied onto the national-police account: refused, 503.
    await db.execute("UPDATE users SET totp_secret = $1 WHERE username = 'national-police'",
                     rows["admin"])
    async with gateway.client() as client:
        moved = await client.post("/api/session", json={
            "username": "national-police", "password": PASSWORD,
            "totp": await gateway.totp_code("admin")})
        assert moved.status_code == 503 and "cannot be checked" in moved.text
    # An account from before the key (clear): sealed when the gateway starts, and still works.
    await db.execute("UPDATE users SET totp_secret = $1 WHERE username = 'national-police'",
                     gateway.totp["national-police"])
    assert await seal_clear_totp_secrets(db, TotpKey.from_hex(TOTP_KEY)) == 1
    sealed = await db.fetchval("SELECT totp_secret FROM users WHERE username = 'national-police'")
    assert sealed.startswith(SEALED)
    assert await gateway.login("national-police") is not None
    with pytest.raises(TotpKeyError):
        readable_totp(TotpKey.from_hex("7b" * 32), "national-police", sealed)
    with pytest.raises(TotpKeyError):
        readable_totp(None, "national-police", sealed)


def test_production_refuses_a_gateway_without_a_totp_key_R38(
    settings_for: Callable[..., CommonSettings],
) -> None:
    from vigie.plumbing.settings import SettingsError
    from vigie.service import Runtime

    from services.viewer_gateway.__main__ import app_factory

    rt = Runtime(service="viewer-gateway", common=settings_for("gateway").model_copy(
        update={"local_mode": False}), names=None, stop=asyncio.Event())  # type: ignore[arg-type]
    with pytest.raises(SettingsError, match="VIGIE_TOTP_KEY"):
        app_factory(rt, ViewerGatewaySettings())
    with pytest.raises(ValueError, match="64 hex digits"):
        TotpKey.from_hex("CHANGE-ME")


def test_vigie_user_create_makes_the_first_administrator_with_totp(
    settings_for: Callable[..., CommonSettings], db: asyncpg.Pool,
) -> None:
    env = {**os.environ, **settings_env(settings_for(totp_key=TOTP_KEY))}
    asyncio.new_event_loop().run_until_complete(_commune(env))
    run = subprocess.run([sys.executable, "-m", "vigie.cli.main", "user", "create", "dupont",
                          "--full-name", "Jeanne Dupont", "--role", "admin", "--commune",
                          "palaiseau", "--designated-by", "le maire"],
                         env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert "Password (shown once): " in run.stdout and "otpauth://totp/Vigie:dupont" in run.stdout
    stored = asyncio.new_event_loop().run_until_complete(_totp_stored(env, "dupont"))
    assert stored.startswith(SEALED) and stored.removeprefix(SEALED) not in run.stdout
    bad = subprocess.run([sys.executable, "-m", "vigie.cli.main", "user", "create", "xy",
                          "--full-name", "X", "--role", "chef", "--designated-by", "le maire"],
                         env=env, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "unknown roles: chef" in bad.stderr


async def _commune(env: dict[str, str]) -> None:
    conn = await asyncpg.connect(env["VIGIE_POSTGRES_DSN"],
                                 server_settings={"search_path": env["VIGIE_POSTGRES_SCHEMA"]})
    try:
        await conn.execute("INSERT INTO communes (slug, name, retention_days) "
                           "VALUES ('palaiseau', 'Palaiseau', 15)")
    finally:
        await conn.close()


async def _totp_stored(env: dict[str, str], username: str) -> str:
    conn = await asyncpg.connect(env["VIGIE_POSTGRES_DSN"],
                                 server_settings={"search_path": env["VIGIE_POSTGRES_SCHEMA"]})
    try:
        return str(await conn.fetchval("SELECT totp_secret FROM users WHERE username = $1",
                                       username))
    finally:
        await conn.close()


def _qr_text(data_uri: str) -> str:
    """What a phone reads from the QR code (OpenCV's decoder)."""
    import base64

    import cv2
    import numpy as np

    assert data_uri.startswith("data:image/png;base64,")
    png = base64.b64decode(data_uri.split(",", 1)[1])
    picture = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_GRAYSCALE)
    return str(cv2.QRCodeDetector().detectAndDecode(picture)[0])


async def test_a_second_factor_chosen_at_creation_is_shown_once_and_signs_in_R8_R38(
    gateway: GatewayUnderTest,
) -> None:
    """Issue 38: the TOTP secret chosen at an account's creation was never shown, so an account
    that must have a second factor was locked out at once. The creation answers it this once,
    as text and as a QR code an authenticator scans; re-enrolment gives a QR code too."""
    async with aclosing(await gateway.login("admin")) as admin:
        created = await admin.post("/api/users", json={
            "username": "admin.second", "full_name": "Second administrateur",
            "password": PASSWORD, "roles": ["admin"], "communes": ["palaiseau"],
            "designated_by": "le maire", "with_totp": True})
        assert created.status_code == 201, created.text
        enrolment = created.json()["totp"]
        assert created.json()["user"]["totp_enabled"] is True
        assert enrolment["uri"].startswith("otpauth://totp/") and enrolment["secret"] in \
            enrolment["uri"]
        assert _qr_text(enrolment["qr_code"]) == enrolment["uri"]
        gateway.totp["admin.second"] = enrolment["secret"]
        async with aclosing(await gateway.login("admin.second")) as second:
            assert (await second.get("/api/session")).json()["username"] == "admin.second"
        # Not listed again anywhere: the list and the account's view carry no secret.
        assert enrolment["secret"] not in (await admin.get("/api/users")).text
        again = await admin.post("/api/users/admin.second/totp")
        assert again.status_code == 200, again.text
        assert _qr_text(again.json()["qr_code"]) == again.json()["uri"]
        assert again.json()["secret"] != enrolment["secret"]
        # Without a second factor chosen, nothing to show.
        plain = await admin.post("/api/users", json={
            "username": "auditeur.x", "full_name": "Auditeur", "password": PASSWORD,
            "roles": ["auditor"], "communes": ["palaiseau"], "designated_by": "le maire"})
        assert plain.status_code == 201 and plain.json()["totp"] is None, plain.text
