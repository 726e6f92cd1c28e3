"""Issue 24: the camera API sets everything the services already know — purposes (CSI L251-2,
checked against the list), coordinates (in pairs), one sensor of a multi-sensor device (once),
narrow field, encoder overrides (the encoder's bounds) — with the database's validation, so a
commune is onboarded without SQL; what it sets reaches the public register (R3, R25, R35)."""

from __future__ import annotations

import json
from contextlib import aclosing
from typing import Any

import asyncpg
import pytest
from vigie.records.purposes import TRAFFIC

from tests.viewer_gateway.conftest import GatewayUnderTest

pytestmark = pytest.mark.integration


def _camera(slug: str, **extra: Any) -> dict[str, Any]:
    return {"commune": "palaiseau", "slug": slug, "name": f"Caméra {slug}",
            "location": "Rue de Paris", "rtsp_url": "rtsp://10.0.0.9/stream", **extra}


async def test_a_camera_is_set_up_entirely_over_the_api_R3_R25_R35(
    gateway: GatewayUnderTest, db: asyncpg.Pool,
) -> None:
    async with aclosing(await gateway.login("admin")) as admin:
        made = await admin.post("/api/cameras", json=_camera(
            "mairie-nord", purposes=[TRAFFIC, "protection des bâtiments publics"],
            latitude=48.7141, longitude=2.2452, device_id="AXIS-Q3819-0042", sensor_index=0,
            narrow_field=True, encoder={"crf": 20, "max_bitrate_kbps": 4000}))
        assert made.status_code == 201, made.text
        view = made.json()
        assert (view["latitude"], view["longitude"], view["sensor_index"], view["narrow_field"]) \
            == (48.7141, 2.2452, 0, True)
        assert view["purposes"] == [TRAFFIC, "protection des bâtiments publics"]
        assert view["encoder"] == {"crf": 20, "max_bitrate_kbps": 4000}
        second = await admin.post("/api/cameras", json=_camera(
            "mairie-sud", device_id="AXIS-Q3819-0042", sensor_index=1))
        assert second.status_code == 201, second.text
        for body, status, reason in (
                (_camera("x1", device_id="AXIS-Q3819-0042", sensor_index=1), 409,
                 "another camera"),
                (_camera("x2", purposes=["surveillance des voisins"]), 400,
                 "not a purpose of CSI L251-2: surveillance des voisins"),
                (_camera("x3", latitude=48.7), 400, "latitude and longitude go together"),
                (_camera("x4", latitude=91, longitude=2), 422, "less than or equal to 90"),
                (_camera("x5", encoder={"crf": 60}), 422, "less than or equal to 51"),
                (_camera("x6", encoder={"preset": "placebo"}), 422, "preset"),
                (_camera("x7", encoder={"rtsp": "x"}), 422, "extra")):
            refused = await admin.post("/api/cameras", json=body)
            assert refused.status_code == status and reason in refused.text, (reason,
                                                                               refused.text)
        assert await db.fetchval("SELECT count(*) FROM cameras WHERE slug LIKE 'x%'") == 0

        url = "/api/cameras/palaiseau/mairie-sud"
        alone = await admin.patch(url, json={"longitude": 2.3})
        assert alone.status_code == 400 and "go together" in alone.text
        both = await admin.patch(url, json={"latitude": 48.71, "longitude": 2.3,
                                            "encoder": {"gop": 50}, "narrow_field": False})
        assert both.status_code == 200, both.text
        assert (both.json()["latitude"], both.json()["encoder"]) == (48.71, {"gop": 50})
        cleared = await admin.patch(url, json={"latitude": None, "longitude": None})
        assert cleared.status_code == 200 and cleared.json()["latitude"] is None
        taken = await admin.patch(url, json={"sensor_index": 0})
        assert taken.status_code == 409
        row = await db.fetchrow("SELECT encoder, narrow_field FROM cameras WHERE slug = "
                                "'mairie-nord'")
        assert json.loads(row["encoder"]) == {"crf": 20, "max_bitrate_kbps": 4000}
        changed = await db.fetchval("SELECT details FROM audit_log WHERE action = "
                                    "'camera.changed' ORDER BY id LIMIT 1")
        assert "latitude" in changed
    async with gateway.client() as anonymous:
        geo = (await anonymous.get("/public/palaiseau/cameras.geojson")).json()
    assert [f["properties"]["camera"] for f in geo["features"]] == ["mairie-nord"]
    assert TRAFFIC in geo["features"][0]["properties"]["purposes"]
