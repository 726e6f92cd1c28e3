"""R39: a breach declared with what the CNIL's notification asks, the 72-hour deadline from its
discovery shown and evented once per stage, the notification's text prepared, the notification
recorded once; bad input refused, other communes and other roles kept out, every step journaled."""

from __future__ import annotations

import json
from contextlib import aclosing
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from services.retention.handlers import announce_due_incidents
from tests.conftest import events_seen
from tests.harness import eventually
from tests.viewer_gateway.conftest import GatewayUnderTest

pytestmark = pytest.mark.integration


def _breach(found: datetime, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "commune": "palaiseau", "summary": "clé USB d'extraction perdue dans le train",
        "discovered_at": found.isoformat(), "data_concerned": "1 extraction, 2 caméras, 30 min",
        "people_concerned": "passants filmés, nombre inconnu (quelques dizaines)",
        "measures": "plainte déposée, clé chiffrée ? à vérifier", "risk": "risk"}
    body.update(overrides)
    return body


def _seen(gateway: GatewayUnderTest, name: str) -> list[dict[str, Any]]:
    subject = gateway.rt.names.root + ".events.palaiseau.incident." + name
    return [json.loads(d) for s, d in events_seen() if s == subject]


async def test_a_breach_is_declared_its_72_hours_shown_and_its_notification_recorded_R39(
    gateway: GatewayUnderTest, db: asyncpg.Pool,
) -> None:
    found = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=60)
    async with aclosing(await gateway.login("auditor")) as auditor:
        for body, status, reason in (
                (_breach(found + timedelta(days=2, hours=13)), 400, "in the future"),
                (_breach(found, risk="unlikely"), 400, "art. 33(5)"),
                (_breach(found, measures=" "), 422, "at least 1"),
                (_breach(found, commune="ballainvilliers"), 403, "R9"),
                (_breach(found, risk="minor"), 422, "unlikely")):
            refused = await auditor.post("/api/incidents", json=body)
            assert refused.status_code == status and reason in refused.text, (reason,
                                                                               refused.text)
        assert await db.fetchval("SELECT count(*) FROM incidents") == 0
        made = await auditor.post("/api/incidents", json=_breach(found))
        assert made.status_code == 201, made.text
        incident = made.json()
        assert datetime.fromisoformat(incident["due_at"]) == found + timedelta(hours=72)
        assert incident["urgency"] == "due_soon", "12 hours left"
        await eventually(lambda: bool(_seen(gateway, "declared")), timeout_s=10)
        assert _seen(gateway, "declared")[0]["incident"] == incident["id"]
        assert "clé USB" not in json.dumps(_seen(gateway, "declared")), "no content in events"

        await announce_due_incidents(gateway.rt)
        await announce_due_incidents(gateway.rt)  # told once per stage
        await db.execute("UPDATE incidents SET discovered_at = discovered_at - interval '1 day', "
                         "due_at = due_at - interval '1 day'")
        await announce_due_incidents(gateway.rt)
        await eventually(lambda: len(_seen(gateway, "due")) >= 2, timeout_s=10)
        assert [e["overdue"] for e in _seen(gateway, "due")] == [False, True]
        late = (await auditor.get(f"/api/incidents/{incident['id']}")).json()
        assert late["urgency"] == "overdue"

        text = await auditor.get(f"/api/incidents/{incident['id']}/notification")
        assert text.status_code == 200
        for part in ("Notification de violation", "clé USB d'extraction perdue",
                     "passants filmés", "Motif du retard", "(heure de Paris)"):
            assert part in text.text, part
        # Issue 37: times in the commune's legal time (an overseas commune's own).
        await db.execute("UPDATE communes SET time_zone = 'America/Cayenne'")
        cayenne = await auditor.get(f"/api/incidents/{incident['id']}/notification")
        assert "(heure légale, America/Cayenne)" in cayenne.text
        assert "heure de Paris" not in cayenne.text
        await db.execute("UPDATE communes SET time_zone = 'Europe/Paris'")
        url = f"/api/incidents/{incident['id']}/notified"
        early = await auditor.post(url, json={"reference": "CNIL-2026-123",
                                              "notified_at": (found - timedelta(days=2))
                                              .isoformat()})
        assert early.status_code == 400 and "precede" in early.text  # the input's fault
        done = await auditor.post(url, json={"reference": "CNIL-2026-123",
                                             "notified_at": datetime.now(UTC).isoformat()})
        assert done.status_code == 200 and done.json()["urgency"] == "notified"
        again = await auditor.post(url, json={"reference": "x",
                                              "notified_at": datetime.now(UTC).isoformat()})
        assert again.status_code == 409 and "already" in again.text
        unlikely = await auditor.post("/api/incidents", json=_breach(
            found, risk="unlikely", no_notice_reason="images floutées, clé chiffrée AES"))
        assert unlikely.json()["urgency"] == "not_to_notify"
    actions = [r["action"] for r in await db.fetch(
        "SELECT action FROM audit_log WHERE action LIKE 'incident.%' ORDER BY id")]
    assert actions == ["incident.declared", "incident.notified", "incident.declared"]
    notified = await db.fetchval("SELECT details FROM audit_log WHERE action = "
                                 "'incident.notified'")
    assert json.loads(notified)["late"] is True
    async with aclosing(await gateway.login("operator")) as operator:
        assert (await operator.get("/api/incidents")).status_code == 403
    async with gateway.client() as anonymous:
        assert (await anonymous.get("/api/incidents")).status_code == 401
