"""Prefectoral authorisations as records (issue 24): recorded and attached over the API, their
bounds kept by the database (R4, R5), the camera's state saying when it may not film (R3), the
6/3/1-month warnings told once each, and the hand-over to the national police only where an
authorisation names them and a coordination convention is recorded (R27, R28). Bad input refused
with nothing written; another commune's administrator, an operator and an anonymous caller
refused."""

from __future__ import annotations

import json
from contextlib import aclosing
from datetime import date, timedelta
from typing import Any

import asyncpg
import pytest
from vigie.records.purposes import TRAFFIC

from services.retention.handlers import announce_expiring_authorisations
from tests.conftest import events_seen
from tests.harness import eventually
from tests.viewer_gateway.conftest import GatewayUnderTest

pytestmark = pytest.mark.integration
URL = "/api/communes/palaiseau/authorisations"
PUBLIC_BUILDINGS = "protection des bâtiments publics"


def _order(**overrides: Any) -> dict[str, Any]:
    today = date.today()
    body: dict[str, Any] = {
        "reference": "AP 2026-091-0007", "granted_on": str(today - timedelta(days=10)),
        "valid_until": str(today + timedelta(days=5 * 365 - 20)),
        "purposes": [PUBLIC_BUILDINGS, TRAFFIC], "recipients": ["municipal_police"],
        "retention_max_days": 15}
    body.update(overrides)
    return body


async def test_orders_are_recorded_checked_and_attached_with_their_bounds_R3_R4_R5(
    gateway: GatewayUnderTest, db: asyncpg.Pool,
) -> None:
    today = date.today()
    async with aclosing(await gateway.login("admin")) as admin:
        before = await db.fetchval("SELECT count(*) FROM authorisations")
        for body, status, reason in (
                (_order(valid_until=str(today - timedelta(days=20))), 400, "ends after"),
                (_order(valid_until=str(today + timedelta(days=6 * 365))), 400, "five years"),
                (_order(purposes=["surveillance des voisins"]), 400, "unknown purposes"),
                (_order(recipients=["other"]), 400, "name the other recipients"),
                (_order(recipients=["la presse"]), 422, "recipients"),
                (_order(retention_max_days=31), 422, "retention_max_days"),
                (_order(retention_min_days=10, retention_max_days=5), 400, "minimum first"),
                (_order(cameras=["mairie"]), 400, "unknown cameras in palaiseau: mairie"),
                (_order(reference=""), 422, "reference"),
                (_order(reference="AP-palaiseau"), 400, "recorded already")):
            refused = await admin.post(URL, json=body)
            assert refused.status_code == status and reason in refused.text, (reason,
                                                                               refused.text)
        assert await db.fetchval("SELECT count(*) FROM authorisations") == before

        # R5: Palaiseau keeps 15 days; an order allowing 7 at most cannot take its cameras.
        short = await admin.post(URL, json=_order(reference="AP-court", retention_max_days=7,
                                                  cameras=["gare"]))
        assert short.status_code == 400 and "outside authorisation AP-court's bounds" in \
            short.text, short.text
        made = await admin.post(URL, json=_order(cameras=["gare"]))
        assert made.status_code == 201, made.text
        order = next(a for a in made.json()["authorisations"]
                     if a["reference"] == "AP 2026-091-0007")
        assert order["cameras"] == ["gare"] and order["state"] == "valid"
        assert order["warning"] is None
        # The commune's retention moves within its cameras' orders only (R4, R5).
        wider = await admin.put("/api/communes/palaiseau/retention", json={"days": 20})
        assert wider.status_code == 400 and "bounds" in wider.text, wider.text
        # A camera's purposes are among its order's.
        changed = await admin.patch("/api/cameras/palaiseau/gare", json={
            "purposes": ["prévention d'actes de terrorisme"]})
        assert changed.status_code == 400 and "not all named" in changed.text, changed.text
        # Orders are never edited: a renewal is a new record.
        with pytest.raises(asyncpg.CheckViolationError):
            await db.execute("UPDATE authorisations SET valid_until = valid_until + 1")

        # Attached over the camera API by reference too; an unknown one is refused.
        unknown = await admin.patch("/api/cameras/palaiseau/gare",
                                    json={"authorisation_ref": "AP-inconnue"})
        assert unknown.status_code == 400 and "no authorisation 'AP-inconnue'" in unknown.text
        camera = (await admin.patch("/api/cameras/palaiseau/gare",
                                    json={"authorisation_ref": "AP-palaiseau"})).json()
        assert camera["authorisation_ref"] == "AP-palaiseau" and camera["authorisation"] == "valid"

        # No order: the camera says it films nothing, everywhere (R3).
        await db.execute("UPDATE cameras SET authorisation_id = NULL WHERE slug = 'gare'")
        gare = next(c for c in (await admin.get("/api/cameras")).json() if c["slug"] == "gare")
        assert (gare["status"], gare["authorisation"]) == ("unauthorised", "missing")
        listed = (await admin.get(URL)).json()
        assert [c["slug"] for c in listed["unauthorised"]] == ["gare"]
        journal = {r["action"] for r in await db.fetch(
            "SELECT action FROM audit_log WHERE action LIKE 'authorisation.%'")}
        assert journal == {"authorisation.recorded", "authorisation.attached"}


async def test_authorisations_are_another_communes_business_only_to_their_own_R9_R10(
    gateway: GatewayUnderTest, db: asyncpg.Pool,
) -> None:
    async with gateway.client() as anonymous:
        assert (await anonymous.get(URL)).status_code == 401
        assert (await anonymous.post(URL, json=_order())).status_code == 401
    async with aclosing(await gateway.login("operator")) as operator:
        assert (await operator.get(URL)).status_code == 403
        assert (await operator.post(URL, json=_order())).status_code == 403
    async with aclosing(await gateway.login("admin")) as admin:
        theirs = "/api/communes/ballainvilliers/authorisations"
        assert (await admin.get(theirs)).status_code == 404
        assert (await admin.post(theirs, json=_order())).status_code == 404
        other = await db.fetchval("SELECT id FROM authorisations WHERE commune = "
                                  "'ballainvilliers'")
        attach = await admin.post(f"{URL}/{other}/cameras", json={"cameras": ["gare"]})
        assert attach.status_code == 404, attach.text
        profile = await admin.put("/api/communes/palaiseau/handover/profile", json={
            "authorisation_id": other, "coordination_convention": "Convention"})
        assert profile.status_code == 404
    assert await db.fetchval("SELECT count(*) FROM cameras WHERE authorisation_id = $1 "
                             "AND commune = 'palaiseau'", other) == 0


def _warnings(gateway: GatewayUnderTest) -> list[dict[str, Any]]:
    subject = gateway.rt.names.root + ".events.palaiseau.authorisation.expiring"
    return [json.loads(d) for s, d in events_seen() if s == subject]


async def test_expiry_is_warned_at_six_three_and_one_month_then_at_its_end_once_each_R3(
    gateway: GatewayUnderTest, db: asyncpg.Pool,
) -> None:
    today = date.today()
    aid = await db.fetchval(
        "INSERT INTO authorisations (commune, reference, granted_on, valid_until, purposes, "
        "recipients, retention_max_days, created_by) VALUES ('palaiseau', 'AP-fin', $1, $2, "
        "'{protection des bâtiments publics}', '{municipal_police}', 30, 't') RETURNING id",
        today - timedelta(days=1000), today + timedelta(days=170))
    await db.execute("UPDATE cameras SET authorisation_id = $1 WHERE slug = 'gare'", aid)
    await announce_expiring_authorisations(gateway.rt)
    await announce_expiring_authorisations(gateway.rt)  # told once per stage
    # Time passes: the stages are read from the days left, so move the order's end instead.
    for days_left in (80, 25, -1):
        await db.execute("ALTER TABLE authorisations DISABLE TRIGGER authorisations_immutable")
        await db.execute("UPDATE authorisations SET valid_until = $1 WHERE id = $2",
                         today + timedelta(days=days_left), aid)
        await db.execute("ALTER TABLE authorisations ENABLE TRIGGER authorisations_immutable")
        await announce_expiring_authorisations(gateway.rt)
        await announce_expiring_authorisations(gateway.rt)
    await eventually(lambda: len(_warnings(gateway)) >= 4, timeout_s=10)
    warned = [w for w in _warnings(gateway) if w["reference"] == "AP-fin"]
    assert [w["stage"] for w in warned] == ["6_months", "3_months", "1_month", "expired"]
    assert all(w["cameras"] == 1 for w in warned)
    async with aclosing(await gateway.login("admin")) as admin:
        gare = next(c for c in (await admin.get("/api/cameras")).json() if c["slug"] == "gare")
        assert gare["authorisation_expired"] and gare["status"] == "unauthorised"
    await gateway.gw.alarms.round()
    assert await db.fetchval("SELECT detail FROM alarms WHERE kind = 'unauthorised' "
                             "AND cleared_at IS NULL") == "authorisation AP-fin expired"
    # The public is told the camera films no more (R25).
    async with gateway.client() as anonymous:
        table = (await anonymous.get("/public/palaiseau/cameras.csv")).text
    gare_row = next(line for line in table.splitlines() if ";gare;" in line).split(";")
    assert (gare_row[7], gare_row[10]) == ("AP-fin", "non")


async def test_no_hand_over_without_an_order_naming_the_national_police_R27_R28(
    gateway: GatewayUnderTest, db: asyncpg.Pool,
) -> None:
    await db.execute("UPDATE communes SET handover_authorisation_id = NULL, "
                     "coordination_convention = NULL WHERE slug = 'palaiseau'")
    async with aclosing(await gateway.login("supervisor")) as supervisor, \
            aclosing(await gateway.login("admin")) as admin:
        switch = {"holder": "national_police", "reason": "renfort de nuit"}
        refused = await supervisor.post("/api/communes/palaiseau/handover", json=switch)
        assert refused.status_code == 409 and "R27" in refused.text, refused.text
        # The schedule would hand over (no municipal hours): the municipal police keep it.
        await db.execute("UPDATE communes SET police_hours = '{}' WHERE slug = 'palaiseau'")
        await gateway.gw.handover.evaluate("palaiseau")
        state = (await supervisor.get("/api/communes/palaiseau/handover")).json()
        assert (state["holder"], state["by"]) == ("municipal_police", "authorisation")

        municipal_only = (await admin.post(URL, json=_order(reference="AP-pm"))).json()
        pm = next(a["id"] for a in municipal_only["authorisations"] if a["reference"] == "AP-pm")
        profile = "/api/communes/palaiseau/handover/profile"
        wrong = await admin.put(profile, json={"authorisation_id": pm,
                                               "coordination_convention": "Convention 2026"})
        assert wrong.status_code == 400 and "does not name the national police" in wrong.text
        both = await db.fetchval("SELECT id FROM authorisations WHERE reference = "
                                 "'AP-palaiseau'")
        blank = await admin.put(profile, json={"authorisation_id": both,
                                               "coordination_convention": ""})
        assert blank.status_code == 422
        made = await admin.put(profile, json={"authorisation_id": both,
                                              "coordination_convention": "Convention 2026"})
        assert made.status_code == 200, made.text
        commune = made.json()
        assert commune["handover_authorisation"] == "AP-palaiseau"
        assert commune["coordination_convention"] == "Convention 2026"
        assert commune["handover"]["holder"] == "national_police"
