"""A filmed person's right of access over the API (issue 23): intake with the identity check (never
a copy), the period held at once (R21), the deadline and its extension (R20), the answers —
on-site viewing booked then done, refusal with grounds and the CNIL mention (R23) —, closing that
releases the hold, the proof-of-deletion extract for a filmed period (R24), the due events."""

from __future__ import annotations

import asyncio
import json
from contextlib import aclosing
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from vigie.plumbing.storage.objects import Buckets, ObjectStore
from vigie.records.audit_register import Entry, record
from vigie.service import Runtime

from services.retention.handlers import announce_due_requests
from tests.conftest import events_seen
from tests.viewer_gateway.conftest import GatewayUnderTest, copy_holds
from tests.viewer_gateway.recordings import record_minute

pytestmark = pytest.mark.integration


def _intake(start: datetime, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "commune": "palaiseau", "requester": "Mme Claire Dubois",
        "contact": "12 rue des Lilas, 91120 Palaiseau", "identity_document": "carte_identite",
        "identity_checked_by": "brigadier Morel", "cameras": ["gare"],
        "period_start": start.isoformat(), "period_end": (start + timedelta(seconds=30)).isoformat(),
        "description": "manteau rouge, vers 14 h, devant la gare"}
    body.update(overrides)
    return body


def _events(gateway: GatewayUnderTest, name: str) -> list[dict[str, Any]]:
    root = gateway.rt.names.root + ".events.palaiseau.access_request." + name
    return [json.loads(d) for s, d in events_seen() if s == root]


async def test_a_request_is_held_at_once_answered_and_closed_R20_R21_R23(
    gateway: GatewayUnderTest, db: asyncpg.Pool, store: tuple[ObjectStore, Buckets],
    as_retention: Runtime,
) -> None:
    objects, buckets = store
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    await record_minute(db, objects, buckets.recordings, start_ns=int(start.timestamp() * 1e9),
                        seconds=30)
    async with aclosing(await gateway.login("supervisor")) as supervisor:
        made = await supervisor.post("/api/access-requests", json=_intake(start))
        assert made.status_code == 201, made.text
        request = made.json()
        rid = request["id"]
        received = datetime.fromisoformat(request["received_at"])
        assert datetime.fromisoformat(request["due_at"]) == received.replace(
            month=received.month % 12 + 1, year=received.year + received.month // 12), "a month"
        assert request["state"] == "open" and request["urgency"] == "on_time"
        # R21: the hold is there already (the sweep keeps what it covers from now on); its
        # copies are made by the retention service, under its own identity.
        hold = await db.fetchrow("SELECT * FROM holds WHERE id = $1", request["hold_id"])
        assert (hold["kind"], hold["reference"], hold["state"]) == (
            "right_of_access", f"DA-{rid}", "active")
        assert request["hold_state"] == "active"
        assert await copy_holds(as_retention) == 1
        assert await db.fetchval("SELECT count(*) FROM hold_items WHERE hold_id = $1",
                                 hold["id"]) == 3
        # R20: extended by a month, then two; never past three months from receipt.
        longer = await supervisor.post(f"/api/access-requests/{rid}/extension",
                                       json={"months": 1, "reason": "nombreuses caméras"})
        assert longer.status_code == 200
        assert datetime.fromisoformat(longer.json()["due_at"]) > datetime.fromisoformat(
            request["due_at"]) + timedelta(days=27)
        more = await supervisor.post(f"/api/access-requests/{rid}/extension",
                                     json={"months": 2, "reason": "recherche complexe"})
        assert more.status_code == 200
        again = await supervisor.post(f"/api/access-requests/{rid}/extension",
                                      json={"months": 2, "reason": "encore"})
        assert again.status_code == 409 and "already" in again.json()["detail"]
        assert (await supervisor.post(f"/api/access-requests/{rid}/extension",
                                      json={"months": 3, "reason": "x"})).status_code == 422
        # An on-site viewing: booked, then recorded as done (who watched what).
        # Issue 37: a missing date is the request's fault (400), a closed request's state 409.
        assert (await supervisor.post(f"/api/access-requests/{rid}/answer",
                                      json={"kind": "viewing"})).status_code == 400
        booked = await supervisor.post(f"/api/access-requests/{rid}/answer", json={
            "kind": "viewing", "viewing_at": (datetime.now(UTC) + timedelta(days=3)).isoformat()})
        assert booked.status_code == 200 and booked.json()["state"] == "answered"
        done = await supervisor.post(f"/api/access-requests/{rid}/answer", json={
            "kind": "viewing", "viewing_report": "Mme Dubois a visionné gare, 14:00–14:00:30, "
            "en présence du brigadier Morel"})
        assert done.json()["viewing_done_at"] is not None
        closed = await supervisor.post(f"/api/access-requests/{rid}/close")
        assert closed.status_code == 200 and closed.json()["state"] == "closed"
        assert (await supervisor.post(f"/api/access-requests/{rid}/close")).status_code == 409
    assert await db.fetchval("SELECT state FROM holds WHERE id = $1", hold["id"]) == "released"
    actions = [r["action"] for r in await db.fetch(
        "SELECT action FROM audit_log WHERE action LIKE 'access_request.%' ORDER BY id")]
    assert actions == ["access_request.opened", "access_request.extended",
                       "access_request.extended", "access_request.answered",
                       "access_request.viewing_done", "access_request.closed"]
    # Events for police systems and the CSU: no personal data in them.
    for name in ("opened", "answered", "closed"):
        found = _events(gateway, name)
        assert len(found) >= 1 and all(e["request"] == rid for e in found), name
        assert all("Dubois" not in json.dumps(e) and "Lilas" not in json.dumps(e) for e in found)


async def test_refusal_grounds_and_bad_requests_are_refused_with_the_reason_R23(
    gateway: GatewayUnderTest, db: asyncpg.Pool,
) -> None:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    async with aclosing(await gateway.login("supervisor")) as supervisor:
        for body, status, words in (
                (_intake(start, period_start=(start + timedelta(days=1)).isoformat(),
                         period_end=(start + timedelta(days=2)).isoformat()), 400, "future"),
                (_intake(start, period_end=(start - timedelta(hours=1)).isoformat()), 400,
                 "before it starts"),
                (_intake(start, received_at=(datetime.now(UTC) + timedelta(days=2)).isoformat()),
                 400, "future"),
                (_intake(start, cameras=["nowhere"]), 404, "no camera"),
                (_intake(start, commune="ballainvilliers", cameras=["mairie"]), 403, "R9"),
                (_intake(start, identity_document="photocopie"), 422, "identity_document"),
                (_intake(start, requester=""), 422, "requester")):
            refused = await supervisor.post("/api/access-requests", json=body)
            assert refused.status_code == status, (body, refused.text)
            assert words in refused.text, refused.text
        assert await db.fetchval("SELECT count(*) FROM access_requests") == 0
        assert await db.fetchval("SELECT count(*) FROM holds") == 0, "nothing half-made"
        rid = (await supervisor.post("/api/access-requests", json=_intake(start))).json()["id"]
        assert (await supervisor.post(f"/api/access-requests/{rid}/close")).status_code == 409
        bare = await supervisor.post(f"/api/access-requests/{rid}/answer",
                                     json={"kind": "refusal"})
        assert bare.status_code == 400 and "grounds" in bare.json()["detail"]
        refused = await supervisor.post(f"/api/access-requests/{rid}/answer", json={
            "kind": "refusal", "grounds": "procédure judiciaire en cours (PV 2026/77)"})
        grounds = refused.json()["answer_grounds"]
        assert "procédure judiciaire" in grounds and "CNIL" in grounds and \
            "commission départementale" in grounds
    async with aclosing(await gateway.login("operator")) as operator:
        assert (await operator.get("/api/access-requests")).status_code == 403
    async with gateway.client() as anonymous:
        assert (await anonymous.get(f"/api/access-requests/{rid}")).status_code == 401


async def test_proof_of_deletion_for_a_filmed_period_R24(
    gateway: GatewayUnderTest, db: asyncpg.Pool, store: tuple[ObjectStore, Buckets],
) -> None:
    objects, buckets = store
    filmed = datetime.now(UTC).replace(microsecond=0) - timedelta(days=20)
    kept = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
    await record_minute(db, objects, buckets.recordings, start_ns=int(kept.timestamp() * 1e9),
                        seconds=20)
    # Retention erased, today, what was filmed 20 days ago: the journal row is dated today, its
    # filmed period is 20 days ago — the extract goes by the filmed period.
    await record(db, Entry(actor="retention", action="deletion", commune="palaiseau",
                           cameras=["palaiseau/gare"], period_start=filmed,
                           period_end=filmed + timedelta(hours=1), reason="retention",
                           details={"segments": 60, "objects": 60}))
    async with aclosing(await gateway.login("supervisor")) as supervisor:
        def ask(start: datetime, end: datetime, fmt: str = "html") -> Any:
            return supervisor.get("/api/access-requests/deletion-proof", params={
                "commune": "palaiseau", "cameras": "gare", "start": start.isoformat(),
                "end": end.isoformat(), "format": fmt})
        page = await ask(filmed - timedelta(minutes=10), filmed + timedelta(minutes=30))
        assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
        assert "attestation d'effacement" in page.text.lower()
        assert "effacé" in page.text and "durée de conservation écoulée" in page.text
        assert "(heure de Paris)" in page.text
        # Issue 37: an overseas commune's extract is in its own legal time, not Paris's.
        await db.execute("UPDATE communes SET time_zone = 'Indian/Reunion' "
                         "WHERE slug = 'palaiseau'")
        reunion = await ask(filmed - timedelta(minutes=10), filmed + timedelta(minutes=30))
        start_there = (filmed - timedelta(minutes=10)).astimezone(ZoneInfo("Indian/Reunion"))
        assert "(heure légale, Indian/Reunion)" in reunion.text
        assert f"du {start_there:%d/%m/%Y %H:%M:%S} au" in reunion.text
        await db.execute("UPDATE communes SET time_zone = 'Europe/Paris' "
                         "WHERE slug = 'palaiseau'")
        today = await ask(datetime.now(UTC) - timedelta(hours=1), datetime.now(UTC))
        assert "Aucun enregistrement ni effacement" in today.text, "by filmed time, not row time"
        csv = await ask(kept - timedelta(minutes=1), kept + timedelta(minutes=1), "fr")
        assert csv.status_code == 200 and "enregistré et conservé" in csv.text
        assert (await ask(kept, kept - timedelta(hours=1))).status_code == 400
        other = await supervisor.get("/api/access-requests/deletion-proof", params={
            "commune": "ballainvilliers", "cameras": "mairie", "start": kept.isoformat(),
            "end": (kept + timedelta(hours=1)).isoformat()})
        assert other.status_code == 403
    assert await db.fetchval("SELECT count(*) FROM audit_log WHERE action = 'register.exported' "
                             "AND details->>'register' = 'deletion_proof'") == 4


async def test_overdue_and_soon_due_requests_raise_one_event_each_R20(
    gateway: GatewayUnderTest, db: asyncpg.Pool,
) -> None:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=40)
    async with aclosing(await gateway.login("supervisor")) as supervisor:
        late = await supervisor.post("/api/access-requests", json=_intake(
            start, received_at=(datetime.now(UTC) - timedelta(days=35)).isoformat()))
        soon = await supervisor.post("/api/access-requests", json=_intake(
            start, received_at=(datetime.now(UTC) - timedelta(days=26)).isoformat()))
        fresh = await supervisor.post("/api/access-requests", json=_intake(start))
        urgency = {r["id"]: r["urgency"] for r in
                   (await supervisor.get("/api/access-requests")).json()}
    assert urgency == {late.json()["id"]: "overdue", soon.json()["id"]: "due_soon",
                       fresh.json()["id"]: "on_time"}
    await announce_due_requests(gateway.rt)
    await announce_due_requests(gateway.rt)  # told once, not at every sweep
    await asyncio.sleep(0.5)
    due = _events(gateway, "due")
    assert sorted((e["request"], e["overdue"]) for e in due) == sorted(
        [(late.json()["id"], True), (soon.json()["id"], False)])
