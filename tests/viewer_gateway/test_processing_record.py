"""R40: the record of processing and the impact assessment's inputs, read from the system — what is
configured shows, a change shows at once, what Vigie cannot see is said, never claimed; for the
auditor of the commune only, journaled (R9, R14)."""

from __future__ import annotations

import json
from contextlib import aclosing

import asyncpg
import pytest

from tests.harness import authorise
from tests.viewer_gateway.conftest import GatewayUnderTest

pytestmark = pytest.mark.integration
URL = "/api/register/processing-record"


async def test_the_processing_record_lists_what_is_configured_R40(
    gateway: GatewayUnderTest, db: asyncpg.Pool,
) -> None:
    gare = await db.fetchval("SELECT id FROM cameras WHERE slug = 'gare'")
    await db.execute("UPDATE cameras SET purposes = '{protection des bâtiments publics}' "
                     "WHERE id = $1", gare)
    await authorise(db, "palaiseau", ["gare"], reference="AP-2025-7")
    await db.execute("INSERT INTO masks (camera_id, version, document, author, approved_by, "
                     "approved_at) VALUES ($1, 3, '{}'::jsonb, 'x', 'y', now())", gare)
    async with aclosing(await gateway.login("auditor")) as auditor:
        first = await auditor.get(URL, params={"commune": "palaiseau"})
        assert first.status_code == 200, first.text
        record = first.json()
        assert [c["slug"] for c in record["cameras"]] == ["ancienne", "chantier", "gare"]
        masks = record["security_measures"]["privacy_masks"]
        assert (masks["cameras"], masks["with_approved_masks"]) == (3, 1)
        assert record["purposes"] == ["protection des bâtiments publics"]
        assert record["retention"]["commune_days"] == 15
        orders = {a["reference"]: a for a in record["authorisations"]}
        assert orders["AP-2025-7"]["cameras"] == ["gare"]
        assert orders["AP-2025-7"]["state"] == "valid"
        assert any("police nationale" in r for r in record["recipients"]), "hand-over hours set"
        assert "admin" in record["security_measures"]["second_factor_required_for"]
        # The links and the object lock are read from the gateway itself (issue 25): the suite
        # runs it on one machine, in clear, against SeaweedFS's holds bucket with object lock.
        in_force = record["security_measures"]["in_force"]
        assert in_force["hold_copies_under_object_lock"] is True
        assert in_force["object_store"] == "plain HTTP (one machine)"
        assert in_force["production_mode"] is False
        assert not any("TLS" in x for x in record["security_measures"]["not_seen_by_vigie"])
        assert any("backups" in x for x in record["security_measures"]["not_seen_by_vigie"])
        roles = {a["role"]: a["accounts"] for a in record["security_measures"]["accounts"]}
        assert roles["operator"] == 1 and roles["auditor"] == 1
        # A change in the configuration is in the next record: nothing is typed.
        await db.execute("UPDATE cameras SET retention_days = 7 WHERE id = $1", gare)
        again = (await auditor.get(URL, params={"commune": "palaiseau"})).json()
        assert 7 in again["retention"]["cameras_days"]
        page = await auditor.get(URL, params={"commune": "palaiseau", "format": "html"})
        assert page.headers["content-type"].startswith("text/html")
        assert "Fiche de registre des traitements" in page.text and "AP-2025-7" in page.text
        assert "Copies des gels sous verrouillage d'objet (rétention légale S3) : oui" in page.text
        assert "(heure de Paris)" in page.text
        # R35 (issue 40): a camera masking measured below the norms says so in the record.
        await db.execute("INSERT INTO camera_health (camera_id, below_norms) VALUES ($1, "
                         "'320x240 at 25.0 fps, below 352x288 at 6 fps')", gare)
        normed = await auditor.get(URL, params={"commune": "palaiseau", "format": "html"})
        assert "non : 320x240 at 25.0 fps, below 352x288 at 6 fps" in normed.text
        # An overseas commune's record is dated in its own legal time (issue 37).
        await db.execute("UPDATE communes SET time_zone = 'America/Cayenne' "
                         "WHERE slug = 'palaiseau'")
        cayenne = await auditor.get(URL, params={"commune": "palaiseau", "format": "html"})
        assert "(heure légale, America/Cayenne)" in cayenne.text
        assert "heure de Paris" not in cayenne.text
        other = await auditor.get(URL, params={"commune": "ballainvilliers"})
        assert other.status_code == 404
    async with aclosing(await gateway.login("operator")) as operator:
        assert (await operator.get(URL, params={"commune": "palaiseau"})).status_code == 403
    async with gateway.client() as anonymous:
        assert (await anonymous.get(URL, params={"commune": "palaiseau"})).status_code == 401
    made = [json.loads(r["details"]) for r in await db.fetch(
        "SELECT details FROM audit_log WHERE action = 'register.exported'")]
    assert [d["register"] for d in made] == ["processing_record"] * 5
