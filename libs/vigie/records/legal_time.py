"""The legal time a commune's documents are written in (its `communes.time_zone`): a ticket's
still, an extraction's subtitles. Paris's for the metropolis; an overseas commune's own
(America/Cayenne, Indian/Reunion…), never Paris's written in the code (issue 37)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

DEFAULT_TIME_ZONE = "Europe/Paris"


def label(time_zone: str) -> str:
    """How a document names the time it shows."""
    return "heure de Paris" if time_zone == DEFAULT_TIME_ZONE else f"heure légale, {time_zone}"


def local(moment: datetime, time_zone: str) -> datetime:
    return moment.astimezone(ZoneInfo(time_zone))


async def time_zones(db: Any, communes: list[str]) -> dict[str, str]:
    """Each commune's time zone (`db`: an asyncpg pool or connection); a commune not found, or
    a row of no commune, is read in the default's."""
    rows = await db.fetch("SELECT slug, time_zone FROM communes WHERE slug = ANY($1::text[])",
                          communes)
    return {r["slug"]: r["time_zone"] for r in rows}


def zone_of(zones: dict[str, str], commune: str | None) -> str:
    return zones.get(commune or "", DEFAULT_TIME_ZONE)
