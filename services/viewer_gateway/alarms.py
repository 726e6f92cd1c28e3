"""The alarm list (issue 18): a camera lost, masking failed, recordings late, a prefectoral
authorisation about to expire, a camera below the technical norms (R35). The gateway raises an
alarm when its cause appears and clears it when the cause is gone; an agent acknowledges it by
name. Several gateways may run the same round: the database keeps one open alarm per camera and
cause, and each gateway pushes to its own sessions the alarms it has not announced yet."""

from __future__ import annotations

from datetime import timedelta

from vigie.plumbing.log import get_logger
from vigie.service import Runtime

from services.viewer_gateway.handlers import Notifier

log = get_logger(__name__)

# Each cause as SQL over cameras c, camera_health h: (kind, condition, detail).
CAUSES = {
    # Offline for a while: a camera still connecting at start-up is not « lost » (it flapped).
    "camera_lost": ("h.online IS FALSE AND coalesce(h.last_frame_at, c.created_at) < "
                    "now() - $1::interval AND EXISTS (SELECT 1 FROM camera_sources s "
                    "WHERE s.camera_id = c.id)",
                    "'no image from the camera since ' || coalesce(h.last_frame_at::text, '?')"),
    "masking_failed": ("h.masking_ok IS FALSE AND h.masking_detail NOT LIKE 'starting%' "
                       "AND h.masking_detail NOT LIKE 'unauthorised%'", "h.masking_detail"),
    "recorder_late": ("h.online AND (SELECT max(end_time) FROM segments g WHERE g.camera_id = c.id)"
                      " < now() - $1::interval",
                      "'last recording ended at ' || (SELECT max(end_time) FROM segments g "
                      "WHERE g.camera_id = c.id)::text"),
    "authorisation_expiring": ("(SELECT a.valid_until >= current_date AND "
                               "a.valid_until < current_date + $1::int "
                               "FROM authorisations a WHERE a.id = c.authorisation_id)",
                               "(SELECT 'authorisation ' || a.reference || ' expires on ' || "
                               "a.valid_until::text FROM authorisations a "
                               "WHERE a.id = c.authorisation_id)"),
    # R35: stored resolution or frame rate below the arrêté's floors (masking checks each window).
    "below_norms": ("h.below_norms IS NOT NULL", "h.below_norms"),
    # R3: no valid authorisation, nothing recorded or shown (masking stops the camera).
    "unauthorised": ("(SELECT authorisation_state <> 'valid' FROM camera_authorisation ca "
                     "WHERE ca.camera_id = c.id)",
                     "(SELECT CASE authorisation_state WHEN 'missing' THEN 'no prefectoral "
                     "authorisation attached' ELSE 'authorisation ' || reference || ' ' || "
                     "replace(authorisation_state, '_', ' ') END FROM camera_authorisation ca "
                     "WHERE ca.camera_id = c.id)"),
}

RAISE_SQL = """
INSERT INTO alarms (commune, camera_id, kind, detail)
SELECT c.commune, c.id, '{kind}', {detail}
FROM cameras c LEFT JOIN camera_health h ON h.camera_id = c.id
WHERE c.state = 'active' AND ({condition})
ON CONFLICT (camera_id, kind) WHERE cleared_at IS NULL DO NOTHING
"""

CLEAR_SQL = """
UPDATE alarms a SET cleared_at = now()
WHERE a.cleared_at IS NULL AND a.kind = '{kind}' AND NOT EXISTS (
    SELECT 1 FROM cameras c LEFT JOIN camera_health h ON h.camera_id = c.id
    WHERE c.id = a.camera_id AND c.state = 'active' AND ({condition}))
"""

OPEN_SQL = """
SELECT a.*, c.slug AS camera, c.name AS camera_name FROM alarms a
JOIN cameras c ON c.id = a.camera_id WHERE a.cleared_at IS NULL ORDER BY a.id
"""


class Alarms:
    def __init__(self, rt: Runtime, notifier: Notifier, *, recorder_late_s: float,
                 authorisation_warning_days: int, camera_lost_s: float) -> None:
        self._rt, self._notifier = rt, notifier
        self._late = timedelta(seconds=recorder_late_s)
        self._lost = timedelta(seconds=camera_lost_s)
        self._days = authorisation_warning_days
        self._announced: set[int] | None = None  # open alarms this gateway's sessions were told of

    async def round(self) -> None:
        pool = self._rt.require_pool()
        async with pool.acquire() as conn, conn.transaction():
            for kind, (condition, detail) in CAUSES.items():
                arg = {"camera_lost": self._lost, "recorder_late": self._late,
                       "authorisation_expiring": self._days}
                args = [arg[kind]] if kind in arg else []
                await conn.execute(CLEAR_SQL.format(kind=kind, condition=condition), *args)
                await conn.execute(RAISE_SQL.format(kind=kind, condition=condition,
                                                    detail=detail), *args)
        rows = await pool.fetch(OPEN_SQL)
        first_round = self._announced is None
        announced = self._announced or set()
        for row in rows:
            if row["id"] not in announced and not first_round:
                log.info("alarm_raised", commune=row["commune"], camera=row["camera"],
                         kind=row["kind"])
                self._notifier.to_commune(row["commune"], {
                    "type": "alarm", "id": row["id"], "kind": row["kind"],
                    "commune": row["commune"], "camera": row["camera"],
                    "camera_name": row["camera_name"], "raised_at": row["raised_at"].isoformat()})
        self._announced = {row["id"] for row in rows}
