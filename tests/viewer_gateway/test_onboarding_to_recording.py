"""Issue 24's « done when »: a deployment administrator onboards a commune from nothing to a camera
sending masked video without SQL — the commune, its administrator and mask administrator over the
API, its prefectoral order recorded, its camera added and attached, its masks approved — and the
camera films only once all of it is there (R3, R8, R11)."""

from __future__ import annotations

from contextlib import aclosing
from datetime import date, timedelta

import asyncpg
import pytest
from vigie.local import servers
from vigie.plumbing.bus.frames import Frame

from tests.harness import eventually
from tests.masking.conftest import (  # noqa: F401 - fixtures
    COVER,
    MaskingHarness,
    marker_cameras,
    masking_harness,
)
from tests.viewer_gateway.conftest import PASSWORD, GatewayUnderTest

pytestmark = pytest.mark.integration


async def test_a_commune_goes_from_nothing_to_a_recording_camera_without_sql_R3(
    gateway: GatewayUnderTest, masking_harness: MaskingHarness,  # noqa: F811
    marker_cameras: servers.RtspCameras, db: asyncpg.Pool,  # noqa: F811
) -> None:
    frames: list[Frame] = []

    async def seen(msg) -> None:  # type: ignore[no-untyped-def]
        frames.append(Frame.from_message(msg.headers, msg.data))

    sub = await masking_harness.nc.subscribe(masking_harness.names.video("orsay", "parvis"),
                                             cb=seen)
    trained = str(date.today() - timedelta(days=3))
    async with aclosing(await gateway.login("deployment-admin")) as deployer:
        made = await deployer.post("/api/communes", json={
            "slug": "orsay", "name": "Orsay", "retention_days": 20,
            "controller": "le maire d'Orsay", "rights_contact": "Mairie d'Orsay"})
        assert made.status_code == 201, made.text
        for username, role in (("admin.orsay", "admin"), ("masques.orsay", "mask_admin")):
            created = await deployer.post("/api/users", json={
                "username": username, "full_name": username, "password": PASSWORD,
                "roles": [role], "communes": ["orsay"], "designated_by": "le maire d'Orsay",
                "designation_act": "arrêté du maire d'Orsay n° 2026-7",
                "with_totp": role == "admin", "trained_on": trained})
            assert created.status_code == 201, created.text
        enrolled = await deployer.post("/api/users/admin.orsay/totp")
        assert enrolled.status_code == 200, enrolled.text
        gateway.totp["admin.orsay"] = enrolled.json()["secret"]

    async with aclosing(await gateway.login("admin.orsay")) as admin:
        camera = await admin.post("/api/cameras", json={
            "commune": "orsay", "slug": "parvis", "name": "Parvis de la mairie",
            "rtsp_url": marker_cameras.url("m1"), "purposes": ["protection des bâtiments publics"]})
        assert camera.status_code == 201, camera.text
        assert camera.json()["authorisation"] == "missing"
        order = await admin.post("/api/communes/orsay/authorisations", json={
            "reference": "AP 2026-091-0101", "granted_on": str(date.today() - timedelta(days=1)),
            "valid_until": str(date.today() + timedelta(days=4 * 365)),
            "purposes": ["protection des bâtiments publics"], "recipients": ["municipal_police"],
            "retention_max_days": 20, "cameras": ["parvis"]})
        assert order.status_code == 201, order.text

    assert frames == [], "video before its masks were approved"
    async with aclosing(await gateway.login("masques.orsay")) as masks:
        # Its password was the deployment administrator's choice: it sets its own first (R8).
        own = await masks.post("/api/session/password", json={
            "current_password": PASSWORD, "new_password": "masques-orsay-secret"})
        assert own.status_code == 204, own.text
        base = "/api/cameras/orsay/parvis/masks"
        saved = await masks.post(base, json={"masks": [{"label": "fenêtre", "mode": "fill",
                                                        "points": COVER}]})
        assert saved.status_code == 201, saved.text
        approved = await masks.post(f"{base}/1/approve", json={})
        assert approved.status_code == 200 and approved.json()["applied"], approved.text

    await eventually(lambda: len(frames) >= 25, timeout_s=20,
                     message="the onboarded camera sends no masked video")
    assert frames[0].keyframe and {f.mask_version for f in frames} == {1}
    await sub.unsubscribe()
    assert await db.fetchval("SELECT state FROM cameras WHERE slug = 'parvis'") == "active"
