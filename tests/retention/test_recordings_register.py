"""R16: the register of recordings — per camera, the stretches kept, the periods destroyed (from
the sweep's own journal), held and transmitted — from real segments, a real sweep and a real hold,
and as the auditor's CSV (both conventions)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from nats.aio.client import Client as NATS
from vigie.custody.exports.jobs import ExportRequest, request_export
from vigie.custody.exports.package import Requisition
from vigie.custody.holds import HoldRequest, create_hold
from vigie.plumbing.bus.subjects import BusNames
from vigie.plumbing.storage.objects import Buckets, ObjectStore
from vigie.records.recordings_register import recordings_register, to_csv

from services.retention.handlers import sweep
from services.retention.settings import RetentionSettings
from tests.retention.helpers import ago, camera, commune, runtime, segment

pytestmark = pytest.mark.integration


async def test_the_register_of_recordings_lists_kept_destroyed_held_and_transmitted_R16(
    service_db: Callable[[str], Awaitable[asyncpg.Pool]],
    service_store: Callable[[str], ObjectStore],
    db: asyncpg.Pool, store: tuple[ObjectStore, Buckets], probe_nc: NATS, streams: BusNames,
) -> None:
    objects, buckets = store
    await commune(db, "palaiseau", 15)
    cid = await camera(db, "gare")
    # Two stretches kept (three contiguous minutes, then one after a gap), one minute expired.
    for i in range(3):
        await segment(db, objects, buckets.recordings, cid, slug="gare", end=ago(2, minutes=10 - i))
    await segment(db, objects, buckets.recordings, cid, slug="gare", end=ago(2, minutes=2))
    await segment(db, objects, buckets.recordings, cid, slug="gare", end=ago(20))
    rt = await runtime(streams, probe_nc, service_db, service_store("retention"), buckets)
    await sweep(rt, RetentionSettings())
    await create_hold(db, objects, recordings=buckets.recordings, holds=buckets.holds,
                      request=HoldRequest.parse(dict(
                          kind="judicial_requisition", reference="PV 16", commune="palaiseau",
                          cameras=["gare"], period_start=ago(2, minutes=12),
                          period_end=ago(2, minutes=8), requested_by="superviseur",
                          reason="vol", review_on=date.today())))
    export = await request_export(db, ExportRequest(
        commune="palaiseau", cameras=["gare"], start=ago(2, minutes=12), end=ago(2, minutes=8),
        requisition=Requisition("PV 16", "OPJ Roux", "Parquet d'Évry", "clé 1", "vol", "sup")))
    await db.execute("UPDATE exports SET state = 'ready', delivered_at = now(), delivered_to = "
                     "'Parquet d''Évry', delivered_medium = 'clé 1', delivered_by = 'sup' "
                     "WHERE id = $1", export)

    lines = await recordings_register(db, ["palaiseau"], ago(30), datetime.now(UTC))
    kinds = [(x.what, x.detail) for x in lines]
    assert [d for w, d in kinds if w == "recorded"] == ["3 segment(s) kept", "1 segment(s) kept"]
    [destroyed] = [x for x in lines if x.what == "destroyed"]
    assert destroyed.camera == "palaiseau/gare" and destroyed.detail == "retention: 1 segment(s)"
    assert destroyed.at is not None and destroyed.period_end < ago(19)
    [held] = [x for x in lines if x.what == "held"]
    assert "PV 16" in held.detail and "active" in held.detail
    [sent] = [x for x in lines if x.what == "transmitted"]
    assert sent.detail == "PV 16 to Parquet d'Évry (clé 1)"
    assert all(x.camera == "palaiseau/gare" for x in lines)
    assert await recordings_register(db, ["ballainvilliers"], ago(30), datetime.now(UTC)) == []

    french = to_csv(lines, french=True)
    assert french.startswith("\ufeffCaméra;Nature;Début;Fin;Date;Détail")
    assert "détruit" in french and "transmis" in french and "gelé" in french
    assert to_csv(lines, french=False).count("\n") == len(lines) + 1
    # Each line in its camera's commune's legal time (issue 37: Paris's was written in the code).
    first = lines[0].period_start
    paris = first.astimezone(ZoneInfo("Europe/Paris")).strftime("%d/%m/%Y %H:%M:%S")
    cayenne = first.astimezone(ZoneInfo("America/Cayenne")).strftime("%d/%m/%Y %H:%M:%S")
    assert paris in french.splitlines()[1]
    overseas = to_csv(lines, french=True, zones={"palaiseau": "America/Cayenne"})
    assert cayenne in overseas.splitlines()[1] and paris not in overseas.splitlines()[1]
