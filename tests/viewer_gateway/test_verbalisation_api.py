"""Vidéo-verbalisation end to end over the API (issue 22): an agent listed for it notes an offence
from the live image of a camera authorised for traffic offences, its stills made by the
verbalisation service from the masked VIDEO stream, picks the offence within its powers, types the
plate, hands it over to the PVe tool as a signed file; the stills are erased when due. Every refusal
the law asks for, each with its R-number (R31–R34)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import json
import zipfile
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio
import websockets
from PIL import Image
from vigie.custody.exports.verify import verify_package
from vigie.plumbing.storage.objects import Buckets, ObjectStore
from vigie.verbalisation.messages import TRAFFIC_PURPOSE, HandoverRequest

from services.verbalisation.handlers import Verbalisation
from services.viewer_gateway.auth import COOKIE
from tests.conftest import events_seen
from tests.harness import eventually
from tests.viewer_gateway.conftest import PASSWORD, VERBALISATION_KEY, GatewayUnderTest

pytestmark = pytest.mark.integration


@pytest_asyncio.fixture
async def verbalisation(verbalisation_service: Verbalisation, db: asyncpg.Pool,
                        gateway: GatewayUnderTest) -> Verbalisation:
    """Palaiseau's gare authorised for traffic offences, `operator` listed (municipal police),
    `asvp` listed (ASVP)."""
    await db.execute("UPDATE cameras SET purposes = $1, location = 'Place de la gare' "
                     "WHERE slug = 'gare'", [TRAFFIC_PURPOSE])
    await db.execute("UPDATE users SET verbalisation_power = 'police_municipale', "
                     "verbalisation_designation = 'arrêté n° 2026-42' WHERE username = 'operator'")
    await db.execute("INSERT INTO users (username, full_name, password_hash, roles, communes, "
                     "agent_number, verbalisation_power, verbalisation_designation, trained_on) "
                     "SELECT 'asvp', 'ASVP', password_hash, roles, communes, 'ASVP-7', 'asvp', "
                     "'arrêté n° 2026-43', trained_on FROM users WHERE username = 'operator'")
    return verbalisation_service


@contextlib.asynccontextmanager
async def _watching(gateway: GatewayUnderTest, client: httpx.AsyncClient,
                    query: str = "") -> AsyncIterator[None]:
    """The agent's live view of palaiseau/gare, open (and receiving) while inside."""
    url = gateway.url.replace("http", "ws") + "/api/cameras/palaiseau/gare/live" + query
    async with websockets.connect(url, additional_headers={
            "Cookie": f"{COOKIE}={client.cookies[COOKIE]}"}, max_size=None) as socket:
        first = json.loads(await asyncio.wait_for(socket.recv(), timeout=5))
        assert first["type"] == "init", first
        reader = asyncio.create_task(_drain(socket))
        try:
            yield
        finally:
            reader.cancel()


async def _drain(socket: websockets.ClientConnection) -> None:
    with contextlib.suppress(websockets.ConnectionClosed):
        async for _ in socket:
            pass


def _now(seconds: float = 0) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


def _refused(response: httpx.Response, status: int, *words: str) -> None:
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert all(w in detail for w in words), detail


async def test_an_agent_notes_an_offence_from_the_live_image_and_hands_it_over_R31_R33_R34(
    gateway: GatewayUnderTest, verbalisation: Verbalisation, live_camera: None,
    db: asyncpg.Pool, store: tuple[ObjectStore, Buckets], tmp_path: Path,
) -> None:
    objects, buckets = store
    async with aclosing(await gateway.login("operator")) as agent, _watching(gateway, agent):
        made = await agent.post("/api/cameras/palaiseau/gare/offences",
                                json={"capture_times": [_now(-1.0), _now(-0.5)]})
        assert made.status_code == 201, made.text
        offence = made.json()
        oid = offence["id"]
        assert offence["state"] == "draft" and offence["agent_number"] == "A-1"
        assert offence["place"] == "Place de la gare" and len(offence["stills"]) == 2
        # Each still: a JPEG at the camera's resolution, its SHA-256 recorded (R34).
        for still in offence["stills"]:
            picture = await agent.get(f"/api/offences/{oid}/stills/{still['n']}")
            assert picture.status_code == 200
            assert picture.headers["cache-control"] == "no-store"
            assert hashlib.sha256(picture.content).hexdigest() == still["sha256"]
            image = Image.open(io.BytesIO(picture.content))
            assert (image.format, image.size) == ("JPEG", (160, 120))
            assert still["mask_version"] == 1
        asked = datetime.fromisoformat(offence["stills"][1]["capture_time"])
        assert abs((asked - datetime.now(UTC)).total_seconds()) < 5
        third = await agent.post(f"/api/offences/{oid}/stills", json={"capture_time": _now(-0.2)})
        assert third.status_code == 201 and len(third.json()["stills"]) == 3
        _refused(await agent.post(f"/api/offences/{oid}/stills",
                                  json={"capture_time": _now(-0.1)}), 409, "at most 3")

        # The offence list of the agent's powers (R33); the plate typed, checked, normalised.
        listed = (await agent.get("/api/offences/catalogue")).json()
        assert listed["power"] == "police_municipale" and listed["year"] == 2026
        assert {"traffic", "parking", "parking_dangerous", "waste"} == {
            o["category"] for o in listed["offences"]}
        _refused(await agent.patch(f"/api/offences/{oid}", json={"state": "ready"}), 409,
                 "the offence", "the plate")
        updated = await agent.patch(f"/api/offences/{oid}", json={
            "offence_code": "CR-R417-11-TROTTOIR", "plate": "ab 123 cd", "plate_country": "FR"})
        assert updated.status_code == 200, updated.text
        assert (updated.json()["plate"], updated.json()["offence_article"]) == (
            "AB-123-CD", "Code de la route, R417-11")
        ready = await agent.patch(f"/api/offences/{oid}", json={"state": "ready"})
        assert ready.status_code == 200 and ready.json()["state"] == "ready"
        _refused(await agent.patch(f"/api/offences/{oid}", json={"plate": "EF-456-GH"}), 409,
                 "draft only")

        # The hand-over file: sealed like an export, verified by the same tools (R34).
        handed = await agent.get(f"/api/offences/{oid}/handover")
        assert handed.status_code == 200, handed.text
        assert handed.headers["cache-control"] == "no-store"
        archive = tmp_path / "remise.zip"
        archive.write_bytes(handed.content)
        verdict = verify_package(archive, trusted_fingerprint=VERBALISATION_KEY.fingerprint())
        assert verdict.ok, verdict.problems
        with zipfile.ZipFile(archive) as z:
            document = json.loads(z.read(f"infraction-{oid}/offence.json"))
            for still in document["stills"]:
                data = z.read(f"infraction-{oid}/{still['file']}")
                assert hashlib.sha256(data).hexdigest() == still["sha256"]
        assert document["vehicle"] == {"plate": "AB-123-CD", "country": "FR"}
        assert document["offence"]["code"] == "CR-R417-11-TROTTOIR"
        assert document["agent"] == {"number": "A-1"} and document["noted_from"] == "live"
        again = await agent.get(f"/api/offences/{oid}/handover")
        assert again.content == handed.content, "one file, fetched again"
        closed = await agent.patch(f"/api/offences/{oid}", json={"state": "closed"})
        assert closed.json()["state"] == "closed"

    # Police systems hear of it, without the plate (AsyncAPI: offence.recorded, handed_over).
    root = gateway.rt.names.root + ".events.palaiseau.offence."
    found = await eventually(lambda: _events(root, 2), timeout_s=5,
                             message="offence events not published")
    assert [e["_subject"].rsplit(".", 1)[-1] for e in found] == ["recorded", "handed_over"]
    assert all("AB-123-CD" not in json.dumps(e) for e in found)
    assert found[0]["offence_code"] == "CR-R417-11-TROTTOIR" and found[0]["agent_number"] == "A-1"

    # Every step journaled (R12), and the register never holds the plate.
    journal = await db.fetch("SELECT action, details::text AS details FROM audit_log "
                             "WHERE action LIKE 'offence.%' ORDER BY id")
    actions = [r["action"] for r in journal]
    for expected in ("offence.created", "offence.still_added", "offence.updated",
                     "offence.ready", "offence.handed_over", "offence.handover_downloaded",
                     "offence.closed", "offence.still_viewed"):
        assert expected in actions, expected
    assert all("AB-123-CD" not in r["details"] for r in journal)

    # Erased after hand-over plus the delay (never past a month): here the delay has passed.
    row = await db.fetchrow("SELECT handed_over_at, stills_erase_at FROM offences WHERE id = $1",
                            oid)
    assert row["stills_erase_at"] - row["handed_over_at"] == pytest.approx(
        timedelta(days=7), abs=timedelta(seconds=5))
    await db.execute("UPDATE offences SET stills_erase_at = now() WHERE id = $1", oid)
    await verbalisation.erase_due()
    for n in (1, 2, 3):
        assert await objects.stat(buckets.evidence, f"offences/palaiseau/{oid}/{n}.jpg") is None
    assert await objects.stat(buckets.evidence,
                              f"offences/palaiseau/{oid}/remise-{oid}.zip") is None
    erased = await db.fetchrow("SELECT * FROM audit_log WHERE action = 'deletion' "
                               "ORDER BY id DESC LIMIT 1")
    assert erased["reason"] == "offence_handed_over" and erased["actor"] == "verbalisation"
    assert json.loads(erased["details"]) == {"kind": "offence_stills", "offence": oid,
                                             "objects": 4}
    async with aclosing(await gateway.login("operator")) as agent:
        _refused(await agent.get(f"/api/offences/{oid}/stills/1"), 410, "erased")
        listing = (await agent.get("/api/offences")).json()
        assert [o["id"] for o in listing] == [oid] and listing[0]["stills_erased_at"]
        assert listing[0]["plate"] is None, "the plate goes with the stills (R34)"
        assert listing[0]["offence_code"] == "CR-R417-11-TROTTOIR", "what was noted stays"


async def _events(root: str, count: int) -> list[dict[str, Any]] | None:
    found = [{**json.loads(d), "_subject": s} for s, d in events_seen() if s.startswith(root)]
    return found if len(found) >= count else None


async def test_only_from_the_live_image_of_an_authorised_camera_by_a_listed_agent_R31_R32(
    gateway: GatewayUnderTest, verbalisation: Verbalisation, live_camera: None,
    db: asyncpg.Pool,
) -> None:
    body = {"capture_times": [_now(-0.5)]}
    async with aclosing(await gateway.login("operator")) as agent:
        # R31: no live view open — a playback screen or nothing — is refused.
        _refused(await agent.post("/api/cameras/palaiseau/gare/offences", json=body), 409,
                 "live image only", "R31")
        # An instant replay is not the live image either.
        async with _watching(gateway, agent, "?replay_s=30&reason=contr%C3%B4le"):
            _refused(await agent.post("/api/cameras/palaiseau/gare/offences", json=body), 409,
                     "R31")
        async with _watching(gateway, agent):
            # A capture time from a recording (a minute ago), or in the future: refused.
            _refused(await agent.post("/api/cameras/palaiseau/gare/offences",
                                      json={"capture_times": [_now(-60)]}), 422, "live", "R31")
            _refused(await agent.post("/api/cameras/palaiseau/gare/offences",
                                      json={"capture_times": [_now(30)]}), 422, "future")
            _refused(await agent.post("/api/cameras/palaiseau/gare/offences", json={
                "capture_times": [_now(-0.4), _now(-0.3), _now(-0.2), _now(-0.1)]}), 422)
            # Another commune's camera does not exist for this account (R9).
            _refused(await agent.post("/api/cameras/ballainvilliers/mairie/offences", json=body),
                     404)
        # R32: a camera whose authorisation lacks the traffic purpose.
        await db.execute("INSERT INTO cameras (commune, slug, name, state) VALUES "
                         "('palaiseau', 'parvis', 'Parvis', 'active')")
        _refused(await agent.post("/api/cameras/palaiseau/parvis/offences", json=body), 403,
                 "R32")
    # R32: an agent with the permission but not listed for vidéo-verbalisation.
    async with aclosing(await gateway.login("supervisor")) as other:
        _refused(await other.get("/api/offences/catalogue"), 403, "not listed", "R32")
        _refused(await other.post("/api/cameras/palaiseau/gare/offences", json=body), 403, "R32")
    # Roles without the permission at all, and anonymous callers.
    async with aclosing(await gateway.login("auditor")) as auditor:
        _refused(await auditor.get("/api/offences"), 403, "verbalisation")
    async with gateway.client() as anonymous:
        assert (await anonymous.get("/api/offences")).status_code == 401
    assert await db.fetchval("SELECT count(*) FROM offences") == 0, "nothing half-made"


async def test_powers_the_offence_list_plates_and_cancelling_R33_R34(
    gateway: GatewayUnderTest, verbalisation: Verbalisation, live_camera: None,
    db: asyncpg.Pool, store: tuple[ObjectStore, Buckets],
) -> None:
    objects, buckets = store
    async with aclosing(await gateway.login("asvp", PASSWORD)) as asvp, _watching(gateway, asvp):
        listed = (await asvp.get("/api/offences/catalogue")).json()
        assert listed["power"] == "asvp"
        assert {o["category"] for o in listed["offences"]} == {"parking"}, "parking only (R33)"
        made = await asvp.post("/api/cameras/palaiseau/gare/offences",
                               json={"capture_times": [_now(-1.0), _now(-0.5)]})
        assert made.status_code == 201, made.text
        oid = made.json()["id"]
        for code, status, words in (("CR-R412-30", 403, ("beyond your powers", "R33")),
                                    ("CR-R417-9", 403, ("beyond your powers",)),  # dangerous
                                    ("XX-NOT-A-CODE", 422, ("not in the offence list", "R33"))):
            _refused(await asvp.patch(f"/api/offences/{oid}", json={"offence_code": code}),
                     status, *words)
        for plate, country, words in (("AI-123-BC", "FR", ("not a French plate",)),  # no I
                                      ("AB-000-CD", "FR", ("not a French plate",)),
                                      ("12345 ABCD 91", "FR", ("not a French plate",)),
                                      ("B-XY-123", "XX", ("unknown country",))):
            _refused(await asvp.patch(f"/api/offences/{oid}", json={
                "plate": plate, "plate_country": country}), 422, *words)
        for plate, country, canonical in (("1234 ab 91", "FR", "1234 AB 91"),
                                          ("2-ABC-123", "BE", "2ABC123")):
            ok = await asvp.patch(f"/api/offences/{oid}", json={"plate": plate,
                                                              "plate_country": country})
            assert ok.status_code == 200 and ok.json()["plate"] == canonical, ok.text
        ok = await asvp.patch(f"/api/offences/{oid}", json={"offence_code": "CR-R417-11-PMR"})
        assert ok.json()["offence_label"].startswith("Stationnement très gênant")
    # Another agent cannot change it.
    async with aclosing(await gateway.login("operator")) as operator:
        _refused(await operator.patch(f"/api/offences/{oid}", json={"plate": "AB-123-CD"}), 403,
                 "only the agent")
    async with aclosing(await gateway.login("asvp", PASSWORD)) as asvp:
        _refused(await asvp.patch(f"/api/offences/{oid}", json={"state": "cancelled"}), 422,
                 "reason")
        _refused(await asvp.get(f"/api/offences/{oid}/handover"), 409, "ready")
        cancelled = await asvp.patch(f"/api/offences/{oid}", json={
            "state": "cancelled", "cancel_reason": "véhicule de secours en intervention"})
        assert cancelled.json()["state"] == "cancelled"
    # A cancelled draft's stills go at once (R34), journaled.
    for n in (1, 2):
        assert await objects.stat(buckets.evidence, f"offences/palaiseau/{oid}/{n}.jpg") is None
    erased = await db.fetchrow("SELECT reason, details FROM audit_log WHERE action = 'deletion'")
    assert erased["reason"] == "offence_cancelled"
    assert json.loads(erased["details"])["offence"] == oid


async def test_an_administrator_lists_an_agent_with_powers_and_it_is_journaled_R32(
    gateway: GatewayUnderTest, db: asyncpg.Pool,
) -> None:
    async with aclosing(await gateway.login("admin")) as admin:
        listing = {"power": "asvp", "designation": "arrêté du maire n° 2026-51"}
        changed = await admin.patch("/api/users/operator", json={"verbalisation": listing})
        assert changed.status_code == 200, changed.text
        assert changed.json()["verbalisation"] == listing
        for bad in ({"power": "gendarme", "designation": "x"}, {"power": "asvp"},
                    {"power": "asvp", "designation": ""}):
            assert (await admin.patch("/api/users/operator",
                                      json={"verbalisation": bad})).status_code == 422, bad
        _refused(await admin.patch("/api/users/admin", json={"verbalisation": listing}), 409,
                 "your own")
        removed = await admin.patch("/api/users/operator", json={"verbalisation": None})
        assert removed.json()["verbalisation"] is None
    rows = await db.fetch("SELECT details FROM audit_log WHERE action = 'user.changed' "
                          "ORDER BY id")
    details = [json.loads(r["details"]) for r in rows]
    assert details[0]["verbalisation_power"] == "asvp"
    assert details[-1]["verbalisation_power"] is None
    async with aclosing(await gateway.login("operator")) as agent:
        me = (await agent.get("/api/session")).json()
        assert me["verbalisation_power"] is None
        _refused(await agent.get("/api/offences"), 403, "not listed")


async def test_two_replicas_asked_at_once_seal_one_hand_over_file_R34(
    gateway: GatewayUnderTest, verbalisation: Verbalisation, live_camera: None,
    db: asyncpg.Pool, service_db: Callable[[str], Awaitable[asyncpg.Pool]],
    store: tuple[ObjectStore, Buckets],
) -> None:
    """The file a PVe tool receives is sealed once, whichever replica is asked and however many
    times at once (a lock in the database, not in one process)."""
    objects, buckets = store
    async with aclosing(await gateway.login("operator")) as agent, _watching(gateway, agent):
        made = await agent.post("/api/cameras/palaiseau/gare/offences",
                                json={"capture_times": [_now(-1.0), _now(-0.5)]})
        assert made.status_code == 201, made.text
        oid = made.json()["id"]
        typed = await agent.patch(f"/api/offences/{oid}", json={
            "offence_code": "CR-R417-11-TROTTOIR", "plate": "AB-123-CD", "plate_country": "FR"})
        assert typed.status_code == 200, typed.text
        ready = await agent.patch(f"/api/offences/{oid}", json={"state": "ready"})
        assert ready.status_code == 200, ready.text
    other_rt = replace(verbalisation.rt, pool=await service_db("verbalisation"))
    other = Verbalisation(other_rt, verbalisation.settings, VERBALISATION_KEY)
    request = HandoverRequest(agent="operator", offence_id=oid)
    sealed = await asyncio.gather(verbalisation.hand_over(request), other.hand_over(request),
                                  other.hand_over(request), verbalisation.hand_over(request))
    assert len({s["package_sha256"] for s in sealed}) == 1, "one file, the same bytes"
    assert [o.key for o in await objects.list_objects(
        buckets.evidence, f"offences/palaiseau/{oid}/remise")] == [sealed[0]["package_key"]]
    assert await db.fetchval("SELECT count(*) FROM audit_log WHERE action = "
                             "'offence.handed_over'") == 1


async def test_a_live_view_counts_as_open_only_while_a_gateway_serves_it_R31(
    gateway: GatewayUnderTest, verbalisation: Verbalisation, live_camera: None,
    db: asyncpg.Pool,
) -> None:
    """Issue 34: "the agent has the live view open" was inferred from the register; after a
    gateway crash (no `live.ended` written) a view counted as open for 24 hours. Now it is the
    gateway's open views, renewed every few seconds while the socket lives."""
    from vigie.records.audit_register import Entry, record

    body = {"capture_times": [_now(-0.5)]}
    # What a crashed gateway leaves: a view journaled as opened, never as ended.
    await record(db, Entry(actor="operator", action="live.view", commune="palaiseau",
                           cameras=["palaiseau/gare"], details={"view": "lost", "replay_s": 0}))
    async with aclosing(await gateway.login("operator")) as agent:
        _refused(await agent.post("/api/cameras/palaiseau/gare/offences", json=body), 409, "R31")
        async with _watching(gateway, agent):
            [view] = await db.fetch("SELECT * FROM live_views")
            assert (view["username"], view["camera"], view["replay_s"]) == (
                "operator", "palaiseau/gare", 0)
            # Its gateway stops beating (frozen, killed): within seconds it no longer counts.
            await db.execute("UPDATE live_views SET beat_at = now() - interval '1 minute'")
            _refused(await agent.post("/api/cameras/palaiseau/gare/offences", json=body), 409,
                     "R31")
        await eventually(lambda: db.fetchval("SELECT count(*) = 0 FROM live_views"),
                         timeout_s=5, message="the view's row outlived its socket")
