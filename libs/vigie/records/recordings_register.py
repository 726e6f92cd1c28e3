"""R16: the register of recordings — per camera, what is recorded and kept (stretches without a
gap), when recordings were destroyed (the register's deletions) and why, which periods are held
(holds) and which were transmitted (exports delivered, to whom). One chronology a commune shows the
prefect or the parquet, as CSV from the API (`/api/register/recordings.csv`) and the command line
(`vigie audit recordings`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from vigie.records import legal_time, spreadsheet
from vigie.records.spreadsheet import when

JOIN_S = 2.0  # the recorder's gap rule: segments closer than this are one stretch

# Stretches of stored segments: a new stretch starts where a segment begins after a gap.
KEPT_SQL = """
WITH s AS (
  SELECT c.commune, c.slug, s.start_time, s.end_time,
         CASE WHEN s.start_time <= lag(s.end_time) OVER w + make_interval(secs => $4)
              THEN 0 ELSE 1 END AS starts
  FROM segments s JOIN cameras c ON c.id = s.camera_id
  WHERE c.commune = ANY($1::text[]) AND s.end_time > $2 AND s.start_time < $3
  WINDOW w AS (PARTITION BY s.camera_id ORDER BY s.start_time)
), runs AS (
  SELECT *, sum(starts) OVER (PARTITION BY commune, slug ORDER BY start_time) AS run FROM s
)
SELECT commune, slug, min(start_time) AS period_start, max(end_time) AS period_end,
       count(*) AS segments
FROM runs GROUP BY commune, slug, run
"""
DELETED_SQL = """
SELECT a.commune, a.cameras, a.period_start, a.period_end, a.at, a.reason, a.details
FROM audit_log a
WHERE a.action = 'deletion' AND a.commune = ANY($1::text[])
  AND a.period_end > $2 AND a.period_start < $3
"""
HELD_SQL = """
SELECT h.commune, c.slug, h.period_start, h.period_end, h.created_at, h.reference, h.kind,
       h.state, h.released_at
FROM holds h JOIN hold_cameras hc ON hc.hold_id = h.id JOIN cameras c ON c.id = hc.camera_id
WHERE h.commune = ANY($1::text[]) AND h.period_end > $2 AND h.period_start < $3
"""
SENT_SQL = """
SELECT e.commune, unnest(e.cameras) AS slug, e.period_start, e.period_end, e.delivered_at,
       e.delivered_to, e.delivered_medium, e.reference
FROM exports e
WHERE e.commune = ANY($1::text[]) AND e.delivered_at IS NOT NULL
  AND e.period_end > $2 AND e.period_start < $3
"""


@dataclass(frozen=True)
class RegisterLine:
    camera: str  # commune/slug
    what: str  # recorded | destroyed | held | transmitted
    period_start: datetime
    period_end: datetime
    at: datetime | None  # when destroyed, held or transmitted
    detail: str


async def recordings_register(pool: asyncpg.Pool, communes: list[str], start: datetime,
                              end: datetime) -> list[RegisterLine]:
    lines: list[RegisterLine] = []
    for r in await pool.fetch(KEPT_SQL, communes, start, end, JOIN_S):
        lines.append(RegisterLine(f"{r['commune']}/{r['slug']}", "recorded", r["period_start"],
                                  r["period_end"], None, f"{r['segments']} segment(s) kept"))
    for r in await pool.fetch(DELETED_SQL, communes, start, end):
        details = json.loads(r["details"])
        cause = f"{r['reason'] or ''}: {details.get('segments', 0)} segment(s)"
        for camera in r["cameras"]:
            lines.append(RegisterLine(camera, "destroyed", r["period_start"], r["period_end"],
                                      r["at"], cause))
    for r in await pool.fetch(HELD_SQL, communes, start, end):
        state = (f"released {r['released_at'].isoformat()}" if r["released_at"] is not None
                 else "active")
        lines.append(RegisterLine(f"{r['commune']}/{r['slug']}", "held", r["period_start"],
                                  r["period_end"], r["created_at"],
                                  f"{r['kind']} {r['reference']} ({state})"))
    for r in await pool.fetch(SENT_SQL, communes, start, end):
        lines.append(RegisterLine(f"{r['commune']}/{r['slug']}", "transmitted", r["period_start"],
                                  r["period_end"], r["delivered_at"],
                                  f"{r['reference']} to {r['delivered_to']} "
                                  f"({r['delivered_medium']})"))
    return sorted(lines, key=lambda x: (x.camera, x.period_start, x.what))


FRENCH = {"recorded": "enregistré et conservé", "destroyed": "détruit", "held": "gelé",
          "transmitted": "transmis"}


def to_csv(lines: list[RegisterLine], *, french: bool, zones: dict[str, str] | None = None) -> str:
    """Standard or French-spreadsheet CSV, as the register's own export (vigie.records.spreadsheet);
    French times in each camera's commune's legal time (`zones`: commune → time zone)."""
    def at(moment: datetime | None, camera: str) -> str:
        return when(moment, french=french,
                    time_zone=legal_time.zone_of(zones or {}, camera.split("/", 1)[0]))

    headers = (["Caméra", "Nature", "Début", "Fin", "Date", "Détail"] if french
               else ["camera", "what", "period_start", "period_end", "at", "detail"])
    return spreadsheet.to_csv(headers, ([
        x.camera, FRENCH[x.what] if french else x.what, at(x.period_start, x.camera),
        at(x.period_end, x.camera), at(x.at, x.camera), x.detail] for x in lines),
        french=french)
