"""Holds against real PostgreSQL and S3 (REGULATION.md R18 judicial requisitions, R21 right-of-access
requests, R7 deletions journaled, R16 what was held and destroyed): copies with their hashes in the
evidence bucket, kept past retention, erased at the next sweep after release."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable, Sequence
from datetime import date, timedelta
from typing import Any

import asyncpg
import pytest
from nats.aio.client import Client as NATS
from vigie.custody.holds import (
    HoldError,
    HoldRequest,
    copy_covered,
    create_hold,
    list_holds,
    register_hold,
    release_hold,
)
from vigie.plumbing.bus.subjects import BusNames
from vigie.plumbing.storage.objects import Buckets, ObjectStore

from services.retention.handlers import sweep
from services.retention.settings import RetentionSettings
from tests.retention.helpers import ago, camera, commune, keys, runtime, segment

pytestmark = pytest.mark.integration


def _request(**overrides: Any) -> HoldRequest:
    values: dict[str, Any] = dict(
        kind="judicial_requisition", reference="PV 2026/1234 — TJ Évry", commune="palaiseau",
        cameras=["gare"], period_start=ago(14, minutes=30), period_end=ago(14),
        requested_by="opj.martin", reason="dégradations du mobilier urbain",
        review_on=date.today() + timedelta(days=90))
    values.update(overrides)
    return HoldRequest.parse(values)


async def test_hold_copies_with_hashes_outlives_retention_then_release_erases_R18_R7(
    service_db: Callable[[str], Awaitable[asyncpg.Pool]],
    service_store: Callable[[str], ObjectStore],
    db: asyncpg.Pool, store: tuple[ObjectStore, Buckets], probe_nc: NATS, streams: BusNames,
) -> None:
    objects, buckets = store
    await commune(db, "palaiseau", 15)
    cid = await camera(db, "gare")
    other = await camera(db, "mairie")
    # Ten contiguous minutes at 14 days, inside the period; one segment of another camera.
    held = [await segment(db, objects, buckets.recordings, cid, slug="gare",
                          end=ago(14, minutes=20 - i)) for i in range(10)]
    await segment(db, objects, buckets.recordings, other, slug="mairie", end=ago(14, minutes=15))
    report = await create_hold(db, objects, recordings=buckets.recordings,
                               holds=buckets.holds, request=_request())
    assert [c.camera for c in report.coverage] == ["gare"]
    assert report.coverage[0].copied == 10
    # Before and after the ten minutes nothing was recorded: said, not hidden.
    assert [m.why for m in report.coverage[0].missing] == ["not_recorded", "not_recorded"]
    copies = await db.fetch("SELECT * FROM hold_items WHERE hold_id = $1 ORDER BY segment_start",
                            report.hold_id)
    assert [c["source_key"] for c in copies] == held
    for c in copies:
        data = await objects.get(buckets.holds, c["evidence_key"])
        assert hashlib.sha256(data).hexdigest() == c["sha256"]
        assert c["evidence_key"].startswith(f"holds/{report.hold_id}/")
        # Under a legal hold: not even the store's administrator can erase it (issue 25).
        assert await objects.legal_hold(buckets.holds, c["evidence_key"])

    # The camera's retention drops to 2 days: the originals expire, the copies stay.
    await db.execute("UPDATE cameras SET retention_days = 2 WHERE id = $1", cid)
    rt = await runtime(streams, probe_nc, service_db, service_store("retention"), buckets)
    await sweep(rt, RetentionSettings())
    assert not set(held) & await keys(objects, buckets.recordings), "originals expire as usual"
    assert {c["evidence_key"] for c in copies} <= await keys(objects, buckets.holds), \
        "the held copies survive"

    with pytest.raises(HoldError, match="who releases"):
        await release_hold(db, hold_id=report.hold_id,
                           released_by="", reason="")
    # A copy no row names: its holder was killed between the put and the insert.
    leftover = f"holds/{report.hold_id}/palaiseau/gare/killed-holder.mp4"
    await objects.put_held(buckets.holds, leftover, b"copy")
    count = await release_hold(db, hold_id=report.hold_id,
                               released_by="procureur", reason="classement sans suite")
    assert count == 10
    with pytest.raises(HoldError, match="already released"):
        await release_hold(db, hold_id=report.hold_id,
                           released_by="procureur", reason="encore")
    await sweep(rt, RetentionSettings(batch=4))
    # Erased for good, the leftover too: no version, no delete marker hiding one (R4).
    assert await objects.versions(buckets.holds, "") == []
    assert await db.fetchval("SELECT copies_erased_at FROM holds") is not None
    journal = await db.fetch("SELECT * FROM audit_log WHERE reason = 'hold_released'")
    assert sum(json.loads(j["details"])["segments"] for j in journal) == 10
    assert all(json.loads(j["details"])["hold_id"] == report.hold_id for j in journal)
    [listed] = await list_holds(db)
    assert (listed["state"], listed["copies_kept"], listed["copies_erased"]) == ("released", 0, 10)
    actions = [r["action"] for r in await db.fetch("SELECT action FROM audit_log ORDER BY id")]
    assert actions.index("hold.created") < actions.index("hold.released")


async def test_a_hold_on_footage_already_erased_says_what_was_found_and_what_was_not(
    service_db: Callable[[str], Awaitable[asyncpg.Pool]],
    service_store: Callable[[str], ObjectStore],
    db: asyncpg.Pool, store: tuple[ObjectStore, Buckets], probe_nc: NATS, streams: BusNames,
) -> None:
    objects, buckets = store
    await commune(db, "palaiseau", 15)
    cid = await camera(db, "gare")
    await segment(db, objects, buckets.recordings, cid, slug="gare", end=ago(15, minutes=10))
    kept = await segment(db, objects, buckets.recordings, cid, slug="gare", end=ago(14, minutes=55))
    rt = await runtime(streams, probe_nc, service_db, service_store("retention"), buckets)
    await sweep(rt, RetentionSettings())
    report = await create_hold(
        db, objects, recordings=buckets.recordings, holds=buckets.holds,
        request=_request(kind="right_of_access", reference="DDA-2026-0042",
                         period_start=ago(15, minutes=12), period_end=ago(14, minutes=55)))
    [coverage] = report.coverage
    assert coverage.copied == 1 and not report.complete
    erased = [m for m in coverage.missing if m.why == "erased"]
    assert len(erased) == 1
    assert erased[0].start <= ago(15, minutes=11) and erased[0].end >= ago(15, minutes=10)
    assert (await db.fetchval("SELECT source_key FROM hold_items")) == kept


async def test_a_sweep_paused_after_selecting_deletes_nothing_a_new_hold_covers(
    service_db: Callable[[str], Awaitable[asyncpg.Pool]],
    service_store: Callable[[str], ObjectStore],
    db: asyncpg.Pool, store: tuple[ObjectStore, Buckets], probe_nc: NATS, streams: BusNames,
) -> None:
    objects, buckets = store
    await commune(db, "palaiseau", 15)
    cid = await camera(db, "gare", days=2)
    originals = [await segment(db, objects, buckets.recordings, cid, slug="gare",
                               end=ago(3, minutes=10 - i)) for i in range(5)]
    selected, resume = asyncio.Event(), asyncio.Event()

    async def pause(rows: Sequence[asyncpg.Record]) -> None:
        selected.set()
        await resume.wait()

    rt = await runtime(streams, probe_nc, service_db, service_store("retention"), buckets)
    sweeping = asyncio.create_task(sweep(rt, RetentionSettings(), after_select=pause))
    await asyncio.wait_for(selected.wait(), timeout=10)
    # The hold registers while the sweep holds the selected rows, before it copies anything.
    request = _request(period_start=ago(3, minutes=20), period_end=ago(3))
    hold_id, _ = await asyncio.wait_for(register_hold(db, request), timeout=10)
    resume.set()
    assert await asyncio.wait_for(sweeping, timeout=30) == 0, "nothing deleted: awaiting copies"
    assert set(originals) <= await keys(objects, buckets.recordings)
    report = await copy_covered(db, objects, hold_id, recordings=buckets.recordings,
                                holds=buckets.holds)
    assert report.coverage[0].copied == 5
    assert await sweep(rt, RetentionSettings()) == 5, "once copied, the originals expire"
    assert len(await keys(objects, buckets.holds)) == 5


@pytest.mark.parametrize(("change", "reason"), [
    ({"reference": "  "}, "reference: must not be empty"),
    ({"period_start": ago(1), "period_end": ago(2)}, "the period ends before it starts"),
    ({"period_start": ago(-1), "period_end": ago(-2)}, "starts in the future"),
    # Issue 17, R4: a period reaching into the future would keep the camera's later segments.
    ({"period_start": ago(1), "period_end": ago(-1)}, "ends in the future"),
    ({"cameras": []}, "cameras"),
    ({"review_on": date.today() - timedelta(days=1)}, "review date is in the past"),
    ({"kind": "curiosity"}, "kind"),
])
def test_a_hold_without_reference_or_with_a_reversed_period_is_refused_R18(
    change: dict[str, Any], reason: str,
) -> None:
    with pytest.raises(HoldError, match=reason):
        _request(**change)


async def test_unknown_cameras_are_named_and_nothing_is_registered(
    db: asyncpg.Pool, store: tuple[ObjectStore, Buckets],
) -> None:
    objects, buckets = store
    await commune(db, "palaiseau", 15)
    await camera(db, "gare")
    with pytest.raises(HoldError, match="unknown camera.*: parvis"):
        await create_hold(db, objects, recordings=buckets.recordings, holds=buckets.holds,
                          request=_request(cameras=["gare", "parvis"]))
    assert await db.fetchval("SELECT count(*) FROM holds") == 0
