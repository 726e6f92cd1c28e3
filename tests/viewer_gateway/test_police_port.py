"""R30: the national police's posts reach the gateway over mutually authenticated TLS (issue 25).
The gateway serves HTTPS on its public port and on a police port that demands a client
certificate of the police CA; a national-police account signs in and works through that port only,
so its password and TOTP code — or its session cookie — are worth nothing elsewhere. Certificates
are made in the test; the real gateway app, database role and object-store identity."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from nats.aio.client import Client as NATS
from vigie.plumbing import certs
from vigie.plumbing.bus.connection import jetstream
from vigie.plumbing.bus.subjects import BusNames
from vigie.plumbing.http import HttpServer
from vigie.plumbing.settings import CommonSettings
from vigie.plumbing.storage.objects import Buckets, ObjectStore
from vigie.service import Runtime

from services.viewer_gateway.api import create_app
from services.viewer_gateway.settings import ViewerGatewaySettings
from tests.viewer_gateway.conftest import (
    PASSWORD,
    TOTP_KEY,
    fresh_totp_code,
    seed_communes,
    seed_users,
)

pytestmark = pytest.mark.integration


async def test_national_police_sign_in_only_with_their_posts_certificate_R30(
    tmp_path: Path, settings_for: Callable[..., CommonSettings], probe_nc: NATS,
    streams: BusNames, db: asyncpg.Pool, service_db: Callable[[str], Awaitable[asyncpg.Pool]],
    store: tuple[ObjectStore, Buckets], service_store: Callable[[str], ObjectStore],
) -> None:
    pki = tmp_path / "pki"
    ca = certs.make_ca("Vigie test CA")
    ca_pem, _ = ca.write(pki, "ca")
    cert, key = certs.issue(ca, "gateway", hosts=("127.0.0.1",), server=True).write(pki, "gw")
    post_cert, post_key = certs.issue(ca, "commissariat-palaiseau", client=True,
                                      kind=certs.POST).write(pki, "post")
    other_post = certs.issue(ca, "commissariat-massy", client=True, kind=certs.POST).write(
        pki, "other-post")
    # Certificates of the same CA that are not a post's: a service's, a subscriber's (issue 34).
    not_posts = [certs.issue(ca, "retention", client=True, kind=certs.SERVICE).write(
                     pki, "retention"),
                 certs.issue(ca, "prefecture-91", client=True, kind=certs.SUBSCRIBER).write(
                     pki, "prefecture"),
                 certs.issue(ca, "commissariat-palaiseau", client=True).write(pki, "no-kind")]
    rogue = certs.make_ca("Someone else's CA")
    rogue_cert, rogue_key = certs.issue(rogue, "commissariat-palaiseau", client=True,
                                        kind=certs.POST).write(tmp_path / "rogue", "post")

    _, buckets = store
    rt = Runtime(service="viewer-gateway", common=settings_for("gateway", totp_key=TOTP_KEY), names=streams,
                 stop=asyncio.Event(), nc=probe_nc, js=jetstream(probe_nc),
                 pool=await service_db("viewer-gateway"),
                 store=service_store("viewer-gateway"), buckets=buckets)
    settings = ViewerGatewaySettings(http_port=0, tls_certificate=cert, tls_key=key,
                                     police_port=0, police_client_ca=ca_pem)
    app = create_app(rt, settings)
    public = HttpServer(app, host="127.0.0.1", port=0, ssl_certfile=str(cert),
                        ssl_keyfile=str(key))
    police = HttpServer(app, host="127.0.0.1", port=0, ssl_certfile=str(cert),
                        ssl_keyfile=str(key), client_ca=str(ca_pem))
    await public.start()
    await police.start()
    rt.state["police_port"] = police.port  # as the service runner records it
    await seed_communes(db)
    totp = await seed_users(db)
    used: dict[str, int] = {}

    def client(port: int, cert_pair: tuple[Path, Path] | None = None) -> httpx.AsyncClient:
        context = ssl.create_default_context(cafile=str(ca_pem))
        if cert_pair:
            context.load_cert_chain(str(cert_pair[0]), str(cert_pair[1]))
        return httpx.AsyncClient(base_url=f"https://127.0.0.1:{port}", verify=context, timeout=10)

    async def sign_in(http: httpx.AsyncClient, username: str, *,
                      with_code: bool = True) -> httpx.Response:
        body = {"username": username, "password": PASSWORD, "post": "commissariat"}
        if username in totp and with_code:  # a code is spent once: the next one is 30 s away
            body["totp"] = await fresh_totp_code(totp[username], used, username)
        return await http.post("/api/session", json=body)

    try:
        # On the public port, right password and code: refused as a wrong password is — no
        # oracle (issue 34) —, and journaled for what it is.
        async with client(public.port) as http:
            refused = await sign_in(http, "national-police", with_code=False)
            wrong = await http.post("/api/session", json={
                "username": "national-police", "password": "not-the-password", "post": "x"})
            assert refused.status_code == wrong.status_code == 401
            assert refused.json() == wrong.json()
            assert (await sign_in(http, "operator")).status_code == 200, "others are unchanged"
        assert await db.fetchval("SELECT count(*) FROM audit_log WHERE action = 'login' AND "
                                 "outcome = 'no_client_certificate'") == 1

        # On the police port, a certificate of the same CA that is not a post's: the same.
        for pair in not_posts:
            async with client(police.port, pair) as http:
                refused = await sign_in(http, "national-police", with_code=False)
                assert refused.status_code == 401 and refused.json() == wrong.json(), pair
        assert await db.fetchval("SELECT count(*) FROM audit_log WHERE action = 'login' AND "
                                 "outcome = 'no_client_certificate'") == 1 + len(not_posts)
        # Each of those counted as a failed login: forgotten here, the throttle is tested apart.
        await db.execute("DELETE FROM login_failures")

        # Without a certificate, or with another CA's, the police port does not even answer.
        for pair in (None, (rogue_cert, rogue_key)):
            async with client(police.port, pair) as http:
                with pytest.raises((httpx.ConnectError, httpx.ReadError,
                                    httpx.RemoteProtocolError)):
                    await http.get("/api/session")

        # With the post's certificate: in; its session works there and nowhere else.
        async with client(police.port, (post_cert, post_key)) as http:
            signed_in = await sign_in(http, "national-police")
            assert signed_in.status_code == 200, signed_in.text
            assert (await http.get("/api/session")).json()["username"] == "national-police"
            cookie = http.cookies.get("vigie_session")
        assert cookie
        # The post is the certificate's, not the "commissariat" the client typed.
        assert await db.fetchval(
            "SELECT s.post FROM sessions s JOIN users u ON u.id = s.user_id "
            "WHERE u.username = 'national-police'") == "commissariat-palaiseau"
        async with client(public.port) as http:
            http.cookies.set("vigie_session", cookie)
            stolen = await http.get("/api/session")
            assert stolen.status_code == 401, "the cookie alone does not open their view"
        async with client(police.port, other_post) as http:
            http.cookies.set("vigie_session", cookie)
            moved = await http.get("/api/session")
            assert moved.status_code == 401, "another post's certificate does not carry it"
    finally:
        rt.stop.set()
        with contextlib.suppress(Exception):
            await app.state.gateway.tiles.close()
        await police.stop()
        await public.stop()


def test_the_police_port_needs_its_ca_and_tls() -> None:
    with pytest.raises(ValueError, match="needs both"):
        ViewerGatewaySettings(police_port=8443)
    with pytest.raises(ValueError, match="is HTTPS"):
        ViewerGatewaySettings(police_port=8443, police_client_ca=Path("ca.pem"))


def _vigie_certs(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vigie.cli.main", "certs", *args],
                          capture_output=True, text=True, timeout=60)


async def test_a_revoked_posts_certificate_is_refused_at_the_handshake_R30(tmp_path: Path) -> None:
    """A post's certificate lost or stolen: `vigie certs revoke` lists it, and the police port
    given the list refuses it while another post's still passes."""
    pki = tmp_path / "certs"
    assert _vigie_certs("init", "--out", str(pki)).returncode == 0
    for post in ("poste-palaiseau", "poste-massy"):
        assert _vigie_certs("post", post, "--out", str(pki)).returncode == 0
    revoked = _vigie_certs("revoke", "poste-massy", "--out", str(pki))
    assert revoked.returncode == 0, revoked.stderr
    again = _vigie_certs("revoke", "poste-massy", "--out", str(pki))
    assert again.returncode == 2 and "already revoked" in again.stderr
    assert _vigie_certs("revoke", "nobody", "--out", str(pki)).returncode == 2
    ca = certs.load(pki, "ca")
    cert, key = certs.issue(ca, "gateway", hosts=("127.0.0.1",), server=True).write(pki, "gw")
    app = FastAPI()
    app.get("/ping")(lambda: {"ok": True})
    police = HttpServer(app, host="127.0.0.1", port=0, ssl_certfile=str(cert),
                        ssl_keyfile=str(key), client_ca=str(pki / "ca.pem"),
                        client_crl=str(pki / "crl.pem"))
    await police.start()
    try:
        async def ping(post: str) -> int:
            context = ssl.create_default_context(cafile=str(pki / "ca.pem"))
            context.load_cert_chain(str(pki / f"{post}.pem"), str(pki / f"{post}.key"))
            async with httpx.AsyncClient(base_url=f"https://127.0.0.1:{police.port}",
                                         verify=context, timeout=10) as http:
                return (await http.get("/ping")).status_code

        assert await ping("poste-palaiseau") == 200
        with pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)):
            await ping("poste-massy")
    finally:
        await police.stop()
