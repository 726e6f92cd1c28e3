"""Demo data for the embedded default: two communes, cameras on the footage clips, an admin.

Seeding is idempotent: a second start finds everything and adds nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import asyncpg

from vigie.local.servers import ClipMount, PatternMount, probe_codec
from vigie.security.accounts import create_user, generate_password
from vigie.verbalisation.messages import TRAFFIC_PURPOSE

# Mon–Sat 07:00–20:00 municipal-police hours (Europe/Paris); outside them, national police.
POLICE_HOURS = {d: [["07:00", "20:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat")}


@dataclass(frozen=True)
class DemoCamera:
    commune: str
    slug: str
    name: str
    location: str
    clip: str  # file name in the footage folder
    masks: list[dict[str, object]]
    traffic: bool = False  # authorised for vidéo-verbalisation (R32)


@dataclass(frozen=True)
class Seeded:
    """Credentials made by this seed (shown once)."""
    admin_password: str
    admin_totp: str | None
    agent_password: str


DEMO_PURPOSES = ["protection des bâtiments publics"]
# The demo's agent listed for vidéo-verbalisation (R32), on Palaiseau's traffic camera.
DEMO_AGENT = "agent.vv"


DEMO_COMMUNES = [("palaiseau", "Palaiseau", 15), ("ballainvilliers", "Ballainvilliers", 30)]

# Masks hide the private spaces in each clip's field (shop windows above the street, a doorway).
DEMO_CAMERAS = [
    DemoCamera("palaiseau", "rue-de-paris", "Rue de Paris", "Rue de Paris, devant le n°12",
               "shopfront-door-cctv-timestamp-640x360.mp4",
               [{"label": "vitrine et porte", "mode": "fill",
                 "points": [[0.0, 0.0], [0.30, 0.0], [0.30, 0.55], [0.0, 0.55]]}]),
    DemoCamera("palaiseau", "carrefour-gare", "Carrefour de la gare", "Place de la Gare",
               "traffic-intersection-cctv-timestamp-640x480.mp4",
               [{"label": "fenêtres immeuble", "mode": "pixelate",
                 "points": [[0.70, 0.0], [1.0, 0.0], [1.0, 0.30], [0.70, 0.30]]}], traffic=True),
    DemoCamera("ballainvilliers", "parking-mairie", "Parking de la mairie", "Parking de la mairie",
               "parking-lot-overhead-cars-768x432.mp4", []),
]
PATTERN_CAMERAS = [
    DemoCamera("palaiseau", "mire", "Mire de test", "Salle serveur", "", [], traffic=True),
    DemoCamera("ballainvilliers", "mire", "Mire de test", "Salle serveur", "", []),
]


def demo_cameras(footage: Path | None) -> list[DemoCamera]:
    if footage and all((footage / c.clip).exists() for c in DEMO_CAMERAS):
        return DEMO_CAMERAS
    return PATTERN_CAMERAS


def camera_mounts(
    cameras: list[DemoCamera], footage: Path | None
) -> tuple[list[ClipMount], list[PatternMount]]:
    clips, patterns = [], []
    for cam in cameras:
        mount = f"{cam.commune}-{cam.slug}"
        if cam.clip and footage:
            path = footage / cam.clip
            clips.append(ClipMount(mount, path, probe_codec(path)))
        else:
            patterns.append(PatternMount(mount, 640, 360, 25))
    return clips, patterns


# Days from today to each demo commune's authorisation's last day: Ballainvilliers's ends within
# the month, to show the warning (R3) — renew it from « Conformité » before the demo runs that long.
AUTHORISATION_ENDS = (4 * 365, 20)


async def _authorisation(conn: asyncpg.Connection, commune: str, days: int, ends_in: int) -> int:
    """The demo commune's prefectoral order (made up, said so), naming both police forces, and
    the hand-over profile resting on it (R27, R28)."""
    found = await conn.fetchval("SELECT id FROM authorisations WHERE commune = $1 "
                                "AND reference LIKE 'DEMO-%'", commune)
    if found is not None:
        return int(found)
    aid = int(await conn.fetchval(
        """INSERT INTO authorisations (commune, reference, granted_on, valid_until, purposes,
                                       recipients, retention_max_days, created_by)
           VALUES ($1, $2, current_date + $3::int - 365 * 5, current_date + $3::int, $4,
                   ARRAY['municipal_police', 'national_police'], $5, 'vigie run (démonstration)')
           RETURNING id""",
        commune, f"DEMO-AP-{commune.upper()} (démonstration)", ends_in,
        DEMO_PURPOSES + [TRAFFIC_PURPOSE], days))
    await conn.execute("UPDATE communes SET handover_authorisation_id = $1, "
                       "coordination_convention = $2 WHERE slug = $3", aid,
                       "Convention de coordination PM/PN (démonstration)", commune)
    return aid


# A demo camera left without a sign, so that « Conformité » shows what a flag looks like (R26).
UNSIGNED = ("palaiseau", "rue-de-paris")


async def _sign(conn: asyncpg.Connection, commune: str, name: str) -> None:
    """One complete sign (vidéo-verbalisation mention included) per demo commune, covering its
    cameras but UNSIGNED."""
    if await conn.fetchval("SELECT 1 FROM signs WHERE commune = $1", commune):
        return
    sign_id = await conn.fetchval(
        "INSERT INTO signs (commune, place, installed_on, pictogram, controller, purposes, rights, "
        "cnil_complaint, verbalisation, created_by) VALUES ($1, $2, current_date - 30, true, "
        "true, true, true, true, true, 'vigie run (démonstration)') RETURNING id",
        commune, f"Entrée de ville de {name} (démonstration)")
    await conn.execute("INSERT INTO sign_cameras (sign_id, camera_id) SELECT $1, id FROM cameras "
                       "WHERE commune = $2 AND (commune, slug) <> ($3, $4)", sign_id, commune,
                       *UNSIGNED)


async def seed(
    conn: asyncpg.Connection, cameras: list[DemoCamera], rtsp_url: dict[str, str]
) -> Seeded | None:
    """Seed once; returns the credentials it made (the first administrator, the demo agent)."""
    async with conn.transaction():
        for slug, name, days in DEMO_COMMUNES:
            await conn.execute(
                """INSERT INTO communes (slug, name, retention_days, police_hours, controller,
                                         rights_contact)
                   VALUES ($1, $2, $3, $4::jsonb, $5, $6) ON CONFLICT (slug) DO NOTHING""",
                slug, name, days, json.dumps(POLICE_HOURS), f"le maire de {name}",
                f"Mairie de {name}, service vidéoprotection (démonstration)",
            )
        authorisations = {slug: await _authorisation(conn, slug, days, ends_in)
                          for (slug, _, days), ends_in in zip(DEMO_COMMUNES, AUTHORISATION_ENDS,
                                                              strict=True)}
        for cam in cameras:
            camera_id = await conn.fetchval(
                """INSERT INTO cameras (commune, slug, name, location, state, authorisation_id,
                                        purposes)
                   VALUES ($1, $2, $3, $4, 'active', $5, $6)
                   ON CONFLICT (commune, slug) DO NOTHING RETURNING id""",
                cam.commune, cam.slug, cam.name, cam.location, authorisations[cam.commune],
                DEMO_PURPOSES + ([TRAFFIC_PURPOSE] if cam.traffic else []),
            )
            if camera_id is None:
                continue
            await conn.execute(
                "INSERT INTO camera_sources (camera_id, rtsp_url) VALUES ($1, $2)",
                camera_id, rtsp_url[f"{cam.commune}-{cam.slug}"],
            )
            document = {"schema_version": 1, "camera": f"{cam.commune}/{cam.slug}", "version": 1,
                        "masks": cam.masks}
            await conn.execute(
                """INSERT INTO masks (camera_id, version, document, author, approved_by, approved_at)
                   VALUES ($1, 1, $2::jsonb, 'vigie-demo', 'vigie-demo', now())""",
                camera_id, json.dumps(document),
            )
        for slug, name, _ in DEMO_COMMUNES:
            await _sign(conn, slug, name)
        if await conn.fetchval("SELECT count(*) FROM users") == 0:
            password = generate_password()
            admin = await create_user(
                conn, username="admin", full_name="Administrateur Vigie", password=password,
                roles=["admin"], communes=[c[0] for c in DEMO_COMMUNES],
                designated_by="vigie run (démonstration)",
            )
            agent_password = generate_password()
            await create_user(
                conn, username=DEMO_AGENT, full_name="Agent de démonstration (vidéo-verbalisation)",
                password=agent_password, roles=["operator"], communes=["palaiseau"],
                designated_by="vigie run (démonstration)", agent_number="PM-0421",
                trained_on=date.today())
            await conn.execute(
                "UPDATE users SET verbalisation_power = 'police_municipale', "
                "verbalisation_designation = 'Arrêté du maire n° 2026-042 (démonstration)' "
                "WHERE username = $1", DEMO_AGENT)
            return Seeded(password, admin.totp_secret, agent_password)
    return None
