"""The lifecycle backstop (invariant 3): one expiry rule per commune prefix, kept in step with the
communes' retention against moto's S3 server; released evidence expires by tag; the embedded
default's rclone refuses rules and `vigie status` says there is no backstop (R4)."""

from __future__ import annotations

from datetime import date

import asyncpg
import pytest
from vigie.holds import HoldRequest, create_hold, release_hold
from vigie.local import servers
from vigie.local.status import BACKSTOP_SQL, render_text
from vigie.storage.objects import Buckets, ObjectStore

from services.retention.handlers import Lifecycle
from tests.harness import unique
from tests.retention.helpers import ago, camera, commune, segment

pytestmark = pytest.mark.integration


async def test_rules_follow_a_retention_change_on_moto_R4(
    db: asyncpg.Pool, moto_server: servers.S3Server,
) -> None:
    objects = ObjectStore(moto_server.endpoint, moto_server.access_key, moto_server.secret_key)
    buckets = Buckets.with_prefix(unique("lc"))
    await objects.ensure_buckets(buckets.all())
    await commune(db, "palaiseau", 15)
    await commune(db, "ballainvilliers", 30)
    lifecycle = Lifecycle(db, objects, buckets)
    await lifecycle.sync()
    assert lifecycle.supported is True
    assert await objects.get_expiry_rules(buckets.recordings) == {
        "ballainvilliers/": 30, "palaiseau/": 15}
    await db.execute("UPDATE communes SET retention_days = 10 WHERE slug = 'palaiseau'")
    await lifecycle.sync()
    assert await objects.get_expiry_rules(buckets.recordings) == {
        "ballainvilliers/": 30, "palaiseau/": 10}
    assert await db.fetchval(BACKSTOP_SQL) is True
    # Evidence: only copies tagged released expire; moto stores tags without rewriting objects.
    assert await objects.supports_tagging(buckets.evidence)
    assert await objects.get_tag_expiry_rules(buckets.evidence) == {
        ("vigie-hold-state", "released"): 1}
    cid = await camera(db, "gare")
    await segment(db, objects, buckets.recordings, cid, slug="gare", end=ago(1, minutes=5))
    request = HoldRequest.parse(dict(
        kind="right_of_access", reference="DDA-7", commune="palaiseau", cameras=["gare"],
        period_start=ago(1, minutes=10), period_end=ago(1), requested_by="dpo",
        reason="demande d'accès", review_on=date.today()))
    report = await create_hold(db, objects, recordings=buckets.recordings,
                               evidence=buckets.evidence, request=request)
    key = await db.fetchval("SELECT evidence_key FROM hold_items")
    assert await objects.get_tags(buckets.evidence, key) == {
        "vigie-hold": str(report.hold_id), "vigie-hold-state": "active"}
    await release_hold(db, objects, evidence=buckets.evidence, hold_id=report.hold_id,
                       released_by="dpo", reason="réponse envoyée")
    assert (await objects.get_tags(buckets.evidence, key))["vigie-hold-state"] == "released"


async def test_the_embedded_default_reports_no_backstop(
    db: asyncpg.Pool, store: tuple[ObjectStore, Buckets],
) -> None:
    objects, buckets = store  # rclone, as in `make run`
    await commune(db, "palaiseau", 15)
    await camera(db, "gare")
    lifecycle = Lifecycle(db, objects, buckets)
    await lifecycle.sync()
    assert lifecycle.supported is False
    backstop = await db.fetchval(BACKSTOP_SQL)
    assert backstop is False
    text = render_text({"web": "-", "services": {}, "cameras": [], "lifecycle_backstop": backstop})
    assert "NO BACKSTOP" in text and "retention service alone erases" in text


async def test_a_refused_lifecycle_call_is_tried_again_not_given_up_R4(
    db: asyncpg.Pool, moto_server: servers.S3Server,
) -> None:
    """Issue 17: one failed lifecycle call disabled the backstop until the service restarted."""
    objects = ObjectStore(moto_server.endpoint, moto_server.access_key, moto_server.secret_key)
    buckets = Buckets.with_prefix(unique("lc"))
    await commune(db, "palaiseau", 15)
    now = [1000.0]
    lifecycle = Lifecycle(db, objects, buckets, retry_s=600, clock=lambda: now[0])
    await lifecycle.sync()  # the bucket is not there yet: the endpoint refuses
    assert lifecycle.supported is False and await db.fetchval(BACKSTOP_SQL) is False
    await objects.ensure_buckets(buckets.all())
    now[0] += 60
    await lifecycle.sync()
    assert lifecycle.supported is False, "not hammered: tried again after the retry delay"
    now[0] += 600
    await lifecycle.sync()
    assert lifecycle.supported is True and await db.fetchval(BACKSTOP_SQL) is True
    assert await objects.get_expiry_rules(buckets.recordings) == {"palaiseau/": 15}
