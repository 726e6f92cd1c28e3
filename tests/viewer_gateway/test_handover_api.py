"""Hand-over through the API (REGULATION.md R27, R28): by schedule and by hand, each switch an event
and a register entry, pushed to open sessions; rights follow at once."""

from __future__ import annotations

import asyncio
import json
from contextlib import aclosing

import asyncpg
import pytest
import websockets
from vigie.plumbing.bus.subjects import BusNames

from services.viewer_gateway.auth import COOKIE
from tests.conftest import events_seen
from tests.harness import eventually
from tests.viewer_gateway.conftest import GatewayUnderTest

pytestmark = pytest.mark.integration


def _switch_events(names: BusNames) -> list[dict[str, object]]:
    return [json.loads(d) for s, d in events_seen()
            if s.startswith(names.root + ".") and s.endswith(".handover.switched")]


async def test_a_supervisor_switches_by_hand_and_an_open_operator_session_is_told_within_2_s_R27(
    gateway: GatewayUnderTest, db: asyncpg.Pool, streams: BusNames,
) -> None:
    operator = await gateway.login("operator")
    token = operator.cookies[COOKIE]
    ws_url = gateway.url.replace("http", "ws") + "/api/session/events"
    async with aclosing(operator), websockets.connect(
            ws_url, additional_headers={"Cookie": f"{COOKIE}={token}"}) as socket:
        assert json.loads(await socket.recv())["type"] == "hello"
        rights = (await operator.get("/api/cameras/palaiseau/gare/rights")).json()["rights"]
        assert rights["live"]["allowed"] is True
        async with aclosing(await gateway.login("supervisor")) as supervisor:
            no_reason = await supervisor.post("/api/communes/palaiseau/handover",
                                              json={"holder": "national_police", "reason": " "})
            assert no_reason.status_code == 422
            switched = await supervisor.post("/api/communes/palaiseau/handover", json={
                "holder": "national_police", "reason": "intervention en cours, renfort PN"})
            assert switched.status_code == 200, switched.text
            assert switched.json()["holder"] == "national_police"
            assert switched.json()["by"] == "manual"
            pushed = json.loads(await asyncio.wait_for(socket.recv(), timeout=2))
            assert pushed == {"type": "rights_changed", "commune": "palaiseau",
                              "holder": "national_police", "by": "manual",
                              "reason": "intervention en cours, renfort PN"}
            rights = (await operator.get("/api/cameras/palaiseau/gare/rights")).json()["rights"]
            assert rights["live"]["allowed"] is False
            assert "national police hold palaiseau" in rights["live"]["reason"]
            async with aclosing(await gateway.login("national-police")) as national:
                theirs = (await national.get("/api/cameras/palaiseau/gare/rights")).json()
                assert theirs["rights"]["live"]["allowed"] is True
            ended = await supervisor.post("/api/communes/palaiseau/handover/end",
                                          json={"reason": "fin de l'intervention"})
            assert ended.status_code == 200 and ended.json()["holder"] == "municipal_police"
            back = json.loads(await asyncio.wait_for(socket.recv(), timeout=2))
            assert back["holder"] == "municipal_police"
            again = await supervisor.post("/api/communes/palaiseau/handover/end",
                                          json={"reason": "encore"})
            assert again.status_code == 409
    events = await eventually(lambda: len(_switch_events(streams)) >= 2 and _switch_events(streams),
                              timeout_s=5, message="no handover.switched events")
    assert [(e["to"], e["by"]) for e in events] == [("national_police", "manual"),
                                                    ("municipal_police", "schedule")]
    entries = await db.fetch("SELECT actor, action, reason FROM audit_log "
                             "WHERE action LIKE 'handover.%' ORDER BY id")
    assert [(e["actor"], e["action"]) for e in entries] == [
        ("supervisor", "handover.manual_switch"), ("supervisor", "handover.switched"),
        ("supervisor", "handover.manual_end"), ("supervisor", "handover.switched")]


async def test_the_schedule_switches_when_hours_change_and_only_once(
    gateway: GatewayUnderTest, db: asyncpg.Pool, streams: BusNames,
) -> None:
    async with aclosing(await gateway.login("admin")) as admin:
        bad = await admin.put("/api/communes/palaiseau/hours",
                              json={"police_hours": {"lundi": [["08:00", "20:00"]]}})
        assert bad.status_code == 400 and "unknown days" in bad.json()["detail"]
        # No municipal hours at all: the national police hold Palaiseau around the clock.
        changed = await admin.put("/api/communes/palaiseau/hours", json={"police_hours": {}})
        assert changed.status_code == 200
        assert changed.json()["handover"]["holder"] == "national_police"
    await asyncio.sleep(1)  # several evaluation rounds of the background watcher
    switches = await db.fetchval("SELECT count(*) FROM audit_log WHERE action = "
                                 "'handover.switched' AND commune = 'palaiseau'")
    assert switches == 1
    assert [e["to"] for e in _switch_events(streams)] == ["national_police"]


async def test_a_commune_or_camera_of_another_commune_is_not_found_R9(
    gateway: GatewayUnderTest,
) -> None:
    async with aclosing(await gateway.login("supervisor")) as supervisor:
        for url in ("/api/communes/ballainvilliers", "/api/cameras/ballainvilliers/mairie/rights"):
            assert (await supervisor.get(url)).status_code == 404
        other = await supervisor.post("/api/communes/ballainvilliers/handover",
                                      json={"holder": "national_police", "reason": "x"})
        assert other.status_code == 404
        cameras = (await supervisor.get("/api/cameras")).json()
        assert {c["commune"] for c in cameras} == {"palaiseau"}
        assert all("rtsp" not in json.dumps(c) for c in cameras)


async def test_a_switch_and_concurrent_evaluations_make_one_attributed_entry_each_way_R27(
    gateway: GatewayUnderTest, db: asyncpg.Pool,
) -> None:
    """The scheduled evaluation runs all the time (and on every replica): while a supervisor
    switches and ends, evaluations hammering the same commune neither take the credit for the
    switch nor switch back from a stale read."""
    stop = asyncio.Event()

    async def hammer() -> None:
        while not stop.is_set():
            await gateway.gw.handover.evaluate("palaiseau")

    hammers = [asyncio.create_task(hammer()) for _ in range(4)]
    try:
        async with aclosing(await gateway.login("supervisor")) as supervisor:
            for _ in range(3):
                switched = await supervisor.post("/api/communes/palaiseau/handover", json={
                    "holder": "national_police", "reason": "relève"})
                assert switched.status_code == 200
                ended = await supervisor.post("/api/communes/palaiseau/handover/end",
                                              json={"reason": "fin"})
                assert ended.status_code == 200
    finally:
        stop.set()
        await asyncio.gather(*hammers)
    entries = await db.fetch("SELECT actor, details FROM audit_log "
                             "WHERE action = 'handover.switched' ORDER BY id")
    assert [(e["actor"], json.loads(e["details"])["to"]) for e in entries] == [
        ("supervisor", "national_police"), ("supervisor", "municipal_police")] * 3
    assert await db.fetchval("SELECT holder FROM handover_state WHERE commune = 'palaiseau'") == \
        "municipal_police"
