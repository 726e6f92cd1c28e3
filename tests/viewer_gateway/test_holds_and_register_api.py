"""Holds and the register through the API (issue 8's POST /api/holds; REGULATION.md R14 search and
CSV export for auditors, R18 holds with a reference)."""

from __future__ import annotations

import csv
import io
import json
from contextlib import aclosing
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from vigie.plumbing.storage.objects import Buckets, ObjectStore
from vigie.service import Runtime

from tests.harness import eventually
from tests.retention.helpers import segment
from tests.viewer_gateway.conftest import PASSWORD, GatewayUnderTest, copy_holds

pytestmark = pytest.mark.integration


def _hold(**overrides: object) -> dict[str, object]:
    now = datetime.now(UTC)
    body: dict[str, object] = {
        "kind": "judicial_requisition", "reference": "PV 2026/77", "commune": "palaiseau",
        "cameras": ["gare"], "period_start": (now - timedelta(hours=2)).isoformat(),
        "period_end": (now - timedelta(hours=1)).isoformat(), "reason": "vol",
        "review_on": str(date.today() + timedelta(days=60))}
    body.update(overrides)
    return body


async def test_post_hold_refuses_bad_input_with_a_reason_and_copies_when_good_R18(
    gateway: GatewayUnderTest, db: asyncpg.Pool, store: tuple[ObjectStore, Buckets],
    as_retention: Runtime,
) -> None:
    objects, buckets = store
    cid = await db.fetchval("SELECT id FROM cameras WHERE slug = 'gare'")
    await segment(db, objects, buckets.recordings, cid, slug="gare",
                  end=datetime.now(UTC) - timedelta(minutes=90))
    now = datetime.now(UTC)
    async with aclosing(await gateway.login("supervisor")) as client:
        for body, reason in (
                (_hold(reference=""), "reference"),
                (_hold(period_start=now.isoformat(),
                       period_end=(now - timedelta(hours=1)).isoformat()),
                 "the period ends before it starts"),
                (_hold(cameras=["parvis"]), "unknown camera"),
                (_hold(kind="curiosité"), "kind")):
            refused = await client.post("/api/holds", json=body)
            assert 400 <= refused.status_code < 500, refused.text
            assert reason in refused.text
        other = await client.post("/api/holds", json=_hold(commune="ballainvilliers",
                                                           cameras=["mairie"]))
        assert other.status_code == 403 and "R9" in other.json()["detail"]
        created = await client.post("/api/holds", json=_hold())
        assert created.status_code == 201, created.text
        body = created.json()
        assert body["hold"]["requested_by"] == "supervisor" and body["pending"] is False
        # Copied in the background by the retention service, under its own identity (the
        # gateway may not write the holds bucket); the screen follows copy_state.
        assert body["hold"]["state"] == "active" and body["hold"]["copy_state"] == "queued"
        assert body["hold"]["copies_kept"] == 0
        assert await copy_holds(as_retention) == 1
        listed = (await client.get("/api/holds")).json()
        assert [h["id"] for h in listed] == [body["hold"]["id"]]
        assert listed[0]["copy_state"] == "done" and listed[0]["copies_kept"] == 1
        assert listed[0]["coverage"][0]["segments_copied"] == 1
        assert listed[0]["coverage"][0]["missing"], "the period is not fully recorded"
        released = await client.post(f"/api/holds/{body['hold']['id']}/release",
                                     json={"reason": "classement"})
        assert released.status_code == 200 and released.json()["state"] == "released"
        twice = await client.post(f"/api/holds/{body['hold']['id']}/release",
                                  json={"reason": "classement"})
        assert twice.status_code == 409
    assert await db.fetchval("SELECT count(*) FROM holds") == 1


async def test_holds_keep_only_what_can_exist_and_a_large_one_waits_for_a_second_person_issue_34(
    gateway: GatewayUnderTest, db: asyncpg.Pool, store: tuple[ObjectStore, Buckets],
    as_retention: Runtime,
) -> None:
    """A 10-year hold over every camera was accepted and copied inside the gateway's request.
    Now a hold covers what can still exist (the commune's retention back from now: R4), and one
    over the camera-hours limit keeps and copies nothing until someone else approves it."""
    from vigie.custody.holds import SECOND_APPROVAL_CAMERA_HOURS
    from vigie.security.accounts import create_user

    objects, buckets = store
    cid = await db.fetchval("SELECT id FROM cameras WHERE slug = 'gare'")
    old = datetime.now(UTC) - timedelta(days=3)
    await segment(db, objects, buckets.recordings, cid, slug="gare", end=old)
    await create_user(db, username="supervisor-2", full_name="Second", password=PASSWORD,
                      roles=["supervisor"], communes=["palaiseau"], designated_by="le maire",
                      trained_on=date.today() - timedelta(days=10))
    now = datetime.now(UTC)
    async with aclosing(await gateway.login("supervisor")) as client:
        gone = await client.post("/api/holds", json=_hold(
            period_start=(now - timedelta(days=3650)).isoformat(),
            period_end=(now - timedelta(days=20)).isoformat()))
        assert gone.status_code == 400 and "keeps its recordings 15 days" in gone.text
        # Issue 37: the reason's code and its values, what the UI writes its French from.
        assert gone.json()["code"] == "hold.nothing_left"
        assert gone.json()["params"] == {"commune": "palaiseau", "days": 15}
        decade = (await client.post("/api/holds", json=_hold(
            cameras=["gare", "ancienne"],
            period_start=(now - timedelta(days=3650)).isoformat(),
            period_end=now.isoformat()))).json()
        hold = decade["hold"]
        assert decade["pending"] is True and hold["state"] == "pending"
        kept_from = datetime.fromisoformat(hold["period_start"])
        assert abs((kept_from - (now - timedelta(days=15))).total_seconds()) < 60
        assert hold["camera_hours"] > SECOND_APPROVAL_CAMERA_HOURS
        assert hold["copy_state"] is None and await copy_holds(as_retention) == 0
        alone = await client.post(f"/api/holds/{hold['id']}/approve")
        assert alone.status_code == 409 and "someone other" in alone.text
        assert alone.json()["code"] == "approval.same_person"
    async with aclosing(await gateway.login("supervisor-2")) as second:
        approved = await second.post(f"/api/holds/{hold['id']}/approve")
        assert approved.status_code == 200, approved.text
        assert approved.json()["state"] == "active"
        assert approved.json()["approved_by"] == "supervisor-2"
        again = await second.post(f"/api/holds/{hold['id']}/approve")
        assert again.status_code == 409
        assert (again.json()["code"], again.json()["params"]) == ("hold.not_pending",
                                                                  {"state": "active"})
        assert await copy_holds(as_retention) == 1
        done = [h for h in (await second.get("/api/holds")).json() if h["id"] == hold["id"]][0]
        assert done["copy_state"] == "done" and done["copies_kept"] == 1
    rows = await db.fetch("SELECT action, actor FROM audit_log WHERE action LIKE 'hold.%' "
                          "ORDER BY id")
    assert [(r["action"], r["actor"]) for r in rows] == [
        ("hold.created", "supervisor"), ("hold.approved", "supervisor-2")]


async def test_auditor_searches_exports_csv_and_verifies_the_register_R14(
    gateway: GatewayUnderTest, db: asyncpg.Pool,
) -> None:
    async with aclosing(await gateway.login("operator")):
        pass
    async with aclosing(await gateway.login("auditor")) as auditor:
        page = (await auditor.get("/api/register", params={"actor": "operator"})).json()
        assert [r["action"] for r in page["rows"]] == ["login"] and page["more"] is False
        naive = await auditor.get("/api/register", params={"start": "2026-01-01T00:00:00"})
        assert naive.status_code == 400 and "time zone" in naive.json()["detail"]
        exported = await auditor.get("/api/register/export.csv", params={"action": "login"})
        assert exported.status_code == 200
        assert exported.headers["content-type"].startswith("text/csv")
        assert exported.headers["cache-control"] == "no-store"
        rows = list(csv.DictReader(io.StringIO(exported.text)))
        assert {r["actor"] for r in rows} == {"operator", "auditor"}
        assert all(len(r["hash"]) == 64 for r in rows)
        # The French convention (issue 18): a French spreadsheet opens it as is.
        french = await auditor.get("/api/register/export.csv",
                                   params={"action": "login", "format": "fr"})
        assert french.status_code == 200 and french.text.startswith("\ufeff")
        table = list(csv.DictReader(io.StringIO(french.text.lstrip("\ufeff")), delimiter=";"))
        assert {r["Agent"] for r in table} == {"operator", "auditor"}
        # A login is of no commune: Paris's legal time, the default.
        paris = datetime.strptime(table[0]["Date (heure légale de la commune)"],
                                  "%d/%m/%Y %H:%M:%S")
        utc = datetime.fromisoformat(rows[0]["at"]).astimezone(ZoneInfo("Europe/Paris"))
        assert paris == utc.replace(tzinfo=None, microsecond=0)
        refused = await auditor.get("/api/register/export.csv", params={"format": "xlsx"})
        assert refused.status_code == 422
        verified = (await auditor.get("/api/register/verify")).json()
        assert verified["ok"] is True and verified["rows"] >= 3
    assert await db.fetchval("SELECT count(*) FROM audit_log WHERE action = "
                             "'register.exported' AND actor = 'auditor'") == 2


async def test_auditor_gets_the_register_of_recordings_as_csv_R16(
    gateway: GatewayUnderTest, db: asyncpg.Pool, store: tuple[ObjectStore, Buckets],
) -> None:
    objects, buckets = store
    cid = await db.fetchval("SELECT id FROM cameras WHERE slug = 'gare'")
    await segment(db, objects, buckets.recordings, cid, slug="gare",
                  end=datetime.now(UTC) - timedelta(minutes=90))
    day = {"start": (datetime.now(UTC) - timedelta(days=1)).isoformat(),
           "end": datetime.now(UTC).isoformat()}
    async with aclosing(await gateway.login("auditor")) as auditor:
        answer = await auditor.get("/api/register/recordings.csv", params={**day, "format": "fr"})
        assert answer.status_code == 200 and answer.headers["cache-control"] == "no-store"
        table = list(csv.DictReader(io.StringIO(answer.text.lstrip("\ufeff")), delimiter=";"))
        assert [(r["Caméra"], r["Nature"]) for r in table] == [
            ("palaiseau/gare", "enregistré et conservé")]
        naive = await auditor.get("/api/register/recordings.csv",
                                  params={**day, "start": "2026-01-01T00:00:00"})
        assert naive.status_code == 400
    async with aclosing(await gateway.login("operator")) as operator:
        assert (await operator.get("/api/register/recordings.csv",
                                   params=day)).status_code == 403


@pytest.mark.parametrize("days", [0, 31])
async def test_a_retention_outside_1_to_30_days_is_refused_by_the_api_R4(
    gateway: GatewayUnderTest, db: asyncpg.Pool, days: int,
) -> None:
    async with aclosing(await gateway.login("admin")) as admin:
        refused = await admin.put("/api/communes/palaiseau/retention", json={"days": days})
        assert refused.status_code == 422
        assert ("greater than or equal to 1" if days == 0 else "less than or equal to 30") \
            in refused.text
        accepted = await admin.put("/api/communes/palaiseau/retention",
                                   json={"days": 10, "reason": "arrêté 2026-114"})
        assert accepted.status_code == 200 and accepted.json()["retention_days"] == 10
    assert await db.fetchval("SELECT retention_days FROM communes WHERE slug = 'palaiseau'") == 10


def test_each_rows_time_is_its_communes_legal_time_in_the_french_csv() -> None:
    """Issue 37: the register's French CSV wrote every time in Paris's; an overseas commune's
    rows are in its own (a row of no commune in the default's)."""
    from services.viewer_gateway.api.register import _csv

    at = datetime(2026, 3, 1, 12, 0, 5, tzinfo=ZoneInfo("UTC"))
    row = {"id": 1, "at": at, "actor": "a", "action": "live.viewed", "cameras": [],
           "period_start": None, "period_end": None, "reason": None, "recipients": None,
           "outcome": None, "details": None, "hash": "h"}
    text = _csv([{**row, "commune": "kourou"}, {**row, "id": 2, "commune": None}], french=True,
                zones={"kourou": "America/Cayenne"})
    table = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff")), delimiter=";"))
    assert [r["Date (heure légale de la commune)"] for r in table] == [
        "01/03/2026 09:00:05", "01/03/2026 13:00:05"]


async def test_a_holds_review_date_is_told_before_it_and_once_past_R18(
    gateway: GatewayUnderTest, db: asyncpg.Pool, as_retention: Runtime,
) -> None:
    """Issue 40: a hold's review date did nothing. The holds' list says when it is near or past
    (the console shows it), and the retention service tells it as an event once per stage."""
    from services.retention.handlers import announce_hold_reviews
    from tests.conftest import events_seen

    def told(hold: int) -> list[dict[str, object]]:
        subject = f"{gateway.rt.names.root}.events.palaiseau.hold.review_due"
        return [e for s, d in events_seen() if s == subject
                and (e := json.loads(d))["hold"] == hold]

    async with aclosing(await gateway.login("supervisor")) as client:
        created = await client.post("/api/holds", json=_hold(
            review_on=str(date.today() + timedelta(days=30))))
        assert created.status_code == 201, created.text
        hold = created.json()["hold"]["id"]
        assert (await client.get("/api/holds")).json()[0]["review_due"] is None
        await announce_hold_reviews(as_retention)
        await db.execute("UPDATE holds SET review_on = current_date + 3 WHERE id = $1", hold)
        assert (await client.get("/api/holds")).json()[0]["review_due"] == "due_soon"
        await announce_hold_reviews(as_retention)
        await announce_hold_reviews(as_retention)  # once per stage
        soon = await eventually(lambda: told(hold), timeout_s=10, message="no hold.review_due")
        assert len(soon) == 1 and soon[0]["overdue"] is False
        assert soon[0]["reference"] == "PV 2026/77"
        await db.execute("UPDATE holds SET review_on = current_date - 1 WHERE id = $1", hold)
        assert (await client.get("/api/holds")).json()[0]["review_due"] == "overdue"
        await announce_hold_reviews(as_retention)
        both = await eventually(lambda: len(told(hold)) == 2 and told(hold), timeout_s=10,
                                message="the overdue stage was not told")
        assert both[1]["overdue"] is True
        await client.post(f"/api/holds/{hold}/release", json={"reason": "classement"})
        assert (await client.get("/api/holds")).json()[0]["review_due"] is None
