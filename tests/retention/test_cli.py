"""`vigie commune set-retention` and `vigie hold …` as the people running Vigie use them: refused input
exits 2 with its reason and changes nothing (REGULATION.md R4, R18)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import date, timedelta

import asyncpg
import pytest
from vigie.plumbing.settings import CommonSettings
from vigie.plumbing.storage.objects import Buckets, ObjectStore

from tests.conftest import settings_env
from tests.retention.helpers import ago, camera, commune, segment

pytestmark = pytest.mark.integration


def _vigie(settings: CommonSettings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **settings_env(settings)}
    return subprocess.run([sys.executable, "-m", "vigie.cli.main", *args], env=env,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("days", ["0", "31", "-3"])
async def test_retention_outside_1_to_30_days_is_refused_R4(
    settings_for: Callable[..., CommonSettings], db: asyncpg.Pool, days: str,
) -> None:
    await commune(db, "palaiseau", 15)
    result = _vigie(settings_for(), "commune", "set-retention", "palaiseau", days, "--by", "dgs")
    assert result.returncode == 2
    assert f"retention must be 1 to 30 days (R4: one month at most), not {days}" in result.stderr
    assert await db.fetchval("SELECT retention_days FROM communes") == 15


async def test_retention_change_is_applied_and_registered(
    settings_for: Callable[..., CommonSettings], db: asyncpg.Pool,
) -> None:
    await commune(db, "palaiseau", 15)
    result = _vigie(settings_for(), "commune", "set-retention", "palaiseau", "10", "--by", "dgs",
                    "--reason", "arrêté préfectoral 2026-114")
    assert result.returncode == 0, result.stderr
    assert await db.fetchval("SELECT retention_days FROM communes") == 10
    row = await db.fetchrow("SELECT * FROM audit_log WHERE action = 'commune.retention_changed'")
    assert row["actor"] == "dgs" and json.loads(row["details"]) == {"from_days": 15, "to_days": 10}
    unknown = _vigie(settings_for(), "commune", "set-retention", "massy", "10", "--by", "dgs")
    assert unknown.returncode == 2 and "unknown commune 'massy'" in unknown.stderr


def _hold_args(**overrides: str) -> list[str]:
    values = {"--kind": "judicial_requisition", "--reference": "PV-2026-77",
              "--commune": "palaiseau", "--camera": "gare",
              "--start": ago(1, minutes=10).isoformat(), "--end": ago(1).isoformat(),
              "--by": "opj.durand", "--reason": "vol à l'arraché",
              "--review": (date.today() + timedelta(days=30)).isoformat()}
    values.update(overrides)
    return ["hold", "create", *[x for kv in values.items() for x in kv]]


@pytest.mark.parametrize(("overrides", "reason"), [
    ({"--reference": ""}, "reference: must not be empty"),
    ({"--start": ago(1).isoformat(), "--end": ago(2).isoformat()},
     "the period ends before it starts"),
    ({"--start": "2026-03-14T08:00"}, "has no time zone"),
    ({"--start": "hier"}, "is not a date and time"),
])
async def test_a_refused_hold_exits_2_with_its_reason_and_registers_nothing_R18(
    settings_for: Callable[..., CommonSettings], db: asyncpg.Pool, overrides: dict[str, str],
    reason: str,
) -> None:
    await commune(db, "palaiseau", 15)
    await camera(db, "gare")
    result = _vigie(settings_for(), *_hold_args(**overrides))
    assert result.returncode == 2, result.stdout
    assert reason in result.stderr
    assert await db.fetchval("SELECT count(*) FROM holds") == 0


async def test_hold_create_list_release_from_the_command_line(
    settings_for: Callable[..., CommonSettings], db: asyncpg.Pool,
    store: tuple[ObjectStore, Buckets],
) -> None:
    objects, buckets = store
    await commune(db, "palaiseau", 15)
    cid = await camera(db, "gare")
    await segment(db, objects, buckets.recordings, cid, slug="gare", end=ago(1, minutes=5))
    created = _vigie(settings_for(), *_hold_args(), "--json")
    assert created.returncode == 0, created.stderr
    report = json.loads(created.stdout)
    assert report["cameras"][0]["segments_copied"] == 1 and not report["complete"]
    listed = json.loads(_vigie(settings_for(), "hold", "list", "--json").stdout)
    assert [(h["id"], h["state"], h["copies_kept"]) for h in listed] == [
        (report["hold_id"], "active", 1)]
    released = _vigie(settings_for(), "hold", "release", str(report["hold_id"]), "--by", "parquet",
                      "--reason", "affaire classée")
    assert released.returncode == 0 and "1 copies will be erased" in released.stdout
    again = _vigie(settings_for(), "hold", "release", str(report["hold_id"]), "--by", "parquet",
                   "--reason", "affaire classée")
    assert again.returncode == 2 and "already released" in again.stderr


async def test_an_interrupted_hold_is_finished_by_hold_copy(
    settings_for: Callable[..., CommonSettings], db: asyncpg.Pool,
    store: tuple[ObjectStore, Buckets],
) -> None:
    from vigie.custody.holds import HoldRequest, register_hold

    objects, buckets = store
    await commune(db, "palaiseau", 15)
    cid = await camera(db, "gare")
    await segment(db, objects, buckets.recordings, cid, slug="gare", end=ago(1, minutes=5))
    # Registered, then the process died before copying anything.
    hold_id, _ = await register_hold(db, HoldRequest.parse(dict(
        kind="right_of_access", reference="DDA-9", commune="palaiseau", cameras=["gare"],
        period_start=ago(1, minutes=10), period_end=ago(1), requested_by="dpo", reason="accès",
        review_on=date.today())))
    assert await db.fetchval("SELECT count(*) FROM hold_items") == 0
    copied = _vigie(settings_for(), "hold", "copy", str(hold_id), "--json")
    assert copied.returncode == 0, copied.stderr
    assert json.loads(copied.stdout)["cameras"][0]["segments_copied"] == 1
    assert await db.fetchval("SELECT count(*) FROM hold_items") == 1
    unknown = _vigie(settings_for(), "hold", "copy", "999")
    assert unknown.returncode == 2 and "unknown" in unknown.stderr


async def test_the_register_of_recordings_from_the_command_line_R16(
    settings_for: Callable[..., CommonSettings], db: asyncpg.Pool,
    store: tuple[ObjectStore, Buckets],
) -> None:
    objects, buckets = store
    await commune(db, "palaiseau", 15)
    cid = await camera(db, "gare")
    await segment(db, objects, buckets.recordings, cid, slug="gare", end=ago(1))
    result = _vigie(settings_for(), "audit", "recordings", "--from", ago(2).isoformat(), "--to",
                    "now", "--by", "dpo", "--format", "fr")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("\ufeffCaméra;Nature;Début;Fin;Date;Détail")
    assert "palaiseau/gare;enregistré et conservé;" in result.stdout
    assert await db.fetchval("SELECT actor FROM audit_log WHERE action = 'register.exported'") \
        == "dpo"
    backwards = _vigie(settings_for(), "audit", "recordings", "--from", "now", "--to",
                       ago(2).isoformat(), "--by", "dpo")
    assert backwards.returncode == 2 and "ends before it starts" in backwards.stderr


async def test_a_commune_is_created_from_the_command_line_and_its_lifecycle_rule_follows_R4(
    settings_for: Callable[..., CommonSettings], db: asyncpg.Pool,
) -> None:
    """Issue 24: onboarding without SQL; a slug already used, a retention past 30 days, a missing
    controller or a time zone that is none: refused, exit 2, nothing written."""
    from vigie.operations.provision import recordings_expiry_rules

    base = ["commune", "create", "orsay", "--name", "Orsay", "--retention-days", "20",
            "--controller", "le maire d'Orsay", "--rights-contact", "Mairie d'Orsay, 2 place du "
            "Général Leclerc, dpo@mairie-orsay.fr", "--by", "exploitant"]
    for change, reason in (
            ({"--retention-days": "31"}, "retention must be 1 to 30 days"),
            ({"--controller": " "}, "the controller (responsable du traitement) is required"),
            ({"--time-zone": "Mars/Olympus"}, "is not a time zone"),
            ({"orsay": "Orsay!"}, "a slug is lowercase letters")):
        args = list(base)
        for flag, value in change.items():
            if flag in args and flag.startswith("--"):
                args[args.index(flag) + 1] = value
            elif flag in args:
                args[args.index(flag)] = value
            else:
                args += [flag, value]
        refused = _vigie(settings_for(), *args)
        assert refused.returncode == 2 and reason in refused.stderr, (reason, refused.stderr)
    assert await db.fetchval("SELECT count(*) FROM communes") == 0
    made = _vigie(settings_for(), *base)
    assert made.returncode == 0, made.stderr
    row = await db.fetchrow("SELECT * FROM communes WHERE slug = 'orsay'")
    assert (row["name"], row["retention_days"], row["controller"]) == (
        "Orsay", 20, "le maire d'Orsay")
    assert (await recordings_expiry_rules(db))["orsay/"] == 20, "its lifecycle rule follows"
    assert await db.fetchval("SELECT actor FROM audit_log WHERE action = 'commune.created'") == \
        "exploitant"
    again = _vigie(settings_for(), *base)
    assert again.returncode == 2 and "already used" in again.stderr


async def test_the_processing_record_from_the_command_line_R40(
    settings_for: Callable[..., CommonSettings], db: asyncpg.Pool,
) -> None:
    await commune(db, "palaiseau", 15)
    await camera(db, "gare")
    made = _vigie(settings_for(), "commune", "record", "palaiseau", "--by", "dpo")
    assert made.returncode == 0, made.stderr
    record = json.loads(made.stdout)
    assert record["format"] == "vigie-processing-record/1"
    assert [c["slug"] for c in record["cameras"]] == ["gare"]
    assert record["security_measures"]["in_force"]["nats"] == "plain (one machine)"
    page = _vigie(settings_for(), "commune", "record", "palaiseau", "--html")
    assert "Fiche de registre des traitements" in page.stdout
    unknown = _vigie(settings_for(), "commune", "record", "massy")
    assert unknown.returncode == 2 and "unknown commune" in unknown.stderr


async def test_authorisations_from_the_command_line_keep_their_bounds_R3_R5(
    settings_for: Callable[..., CommonSettings], db: asyncpg.Pool,
) -> None:
    await commune(db, "palaiseau", 15)
    await camera(db, "gare")
    order = ["commune", "authorisation", "palaiseau", "--reference", "AP 2026-7",
             "--granted-on", str(date.today() - timedelta(days=3)),
             "--valid-until", str(date.today() + timedelta(days=365)),
             "--purpose", "protection des bâtiments publics", "--recipient", "municipal_police",
             "--by", "dgs"]
    narrow = _vigie(settings_for(), *order, "--retention-max", "7", "--camera", "gare")
    assert narrow.returncode == 2 and "outside authorisation AP 2026-7's bounds" in narrow.stderr
    assert await db.fetchval("SELECT count(*) FROM authorisations") == 0
    long = _vigie(settings_for(), *order[:5], "--granted-on", "2020-01-01", "--valid-until",
                  "2026-01-02", *order[9:], "--retention-max", "30")
    assert long.returncode == 2 and "five years at most" in long.stderr
    made = _vigie(settings_for(), *order, "--retention-max", "20")
    assert made.returncode == 0, made.stderr
    attached = _vigie(settings_for(), "commune", "attach", "palaiseau", "AP 2026-7", "--camera",
                      "gare", "--by", "dgs")
    assert attached.returncode == 0, attached.stderr
    listed = _vigie(settings_for(), "commune", "authorisations", "palaiseau")
    found = json.loads(listed.stdout)
    assert found["authorisations"][0]["cameras"] == ["gare"] and found["unauthorised"] == []
    wider = _vigie(settings_for(), "commune", "set-retention", "palaiseau", "25", "--by", "dgs")
    assert wider.returncode == 2 and "bounds" in wider.stderr
    assert await db.fetchval("SELECT retention_days FROM communes") == 15
    signs = _vigie(settings_for(), "commune", "signs", "palaiseau")
    assert signs.returncode == 1 and json.loads(signs.stdout)["flagged"][0]["camera"] == "gare"


async def test_a_sign_taken_down_and_a_new_controller_from_the_command_line_R25_R26(
    settings_for: Callable[..., CommonSettings], db: asyncpg.Pool,
) -> None:
    await commune(db, "palaiseau", 15)
    gare = await camera(db, "gare")
    sign = await db.fetchval(
        "INSERT INTO signs (commune, place, installed_on, pictogram, controller, purposes, rights, "
        "cnil_complaint, created_by) VALUES ('palaiseau', 'Gare', '2026-01-05', true, true, true, "
        "true, true, 'x') RETURNING id")
    await db.execute("INSERT INTO sign_cameras VALUES ($1, $2)", sign, gare)
    assert _vigie(settings_for(), "commune", "signs", "palaiseau").returncode == 0
    base = ["commune", "remove-sign", "palaiseau", str(sign), "--reason", "volé", "--by", "pm"]
    early = _vigie(settings_for(), *base, "--on", "2026-01-01")
    assert early.returncode == 2 and "before it was installed" in early.stderr
    unknown = _vigie(settings_for(), *base[:3], "999999", *base[4:], "--on", str(date.today()))
    assert unknown.returncode == 2 and "no sign 999999" in unknown.stderr
    done = _vigie(settings_for(), *base, "--on", str(date.today()))
    assert done.returncode == 0 and "flagged now: gare" in done.stdout, done.stderr
    assert _vigie(settings_for(), "commune", "signs", "palaiseau").returncode == 1
    empty = _vigie(settings_for(), "commune", "set-identity", "palaiseau", "--by", "dgs")
    assert empty.returncode == 2 and "say what changes" in empty.stderr
    changed = _vigie(settings_for(), "commune", "set-identity", "palaiseau", "--controller",
                     "le maire de Palaiseau", "--by", "dgs")
    assert changed.returncode == 0 and "controller changed" in changed.stdout, changed.stderr
    assert await db.fetchval("SELECT controller FROM communes") == "le maire de Palaiseau"
