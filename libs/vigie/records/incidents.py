"""Personal-data breaches (R39; GDPR art. 33): declared when found — what happened, when it was
found, the data and the people concerned, the likely consequences, the measures taken — with the
72-hour deadline from discovery to notify the CNIL, shown and evented (soon due, overdue); the
notification's content prepared from the record; the notification recorded with the CNIL's
reference. A breach unlikely to result in a risk for people is not notified, with the reason
recorded (art. 33(1) and (5)). Every step journaled."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import asyncpg

from vigie.plumbing.refusals import NotFound, Refusal
from vigie.records import legal_time
from vigie.records.audit_register import Entry, record
from vigie.records.legal_time import DEFAULT_TIME_ZONE

DEADLINE = timedelta(hours=72)
SOON = timedelta(hours=24)  # « bientôt dû »: the last day before the deadline
Risk = Literal["unlikely", "risk", "high_risk"]


class IncidentError(Refusal):
    """A refused step, with what to correct."""

    domain = "incident"


class IncidentConflict(IncidentError):
    """The record's state does not allow it now (HTTP 409)."""

    kind = "conflict"


@dataclass(frozen=True)
class Declaration:
    commune: str
    summary: str
    discovered_at: datetime
    data_concerned: str
    people_concerned: str
    measures: str
    risk: Risk
    consequences: str = ""
    no_notice_reason: str = ""


async def declare(pool: asyncpg.Pool, d: Declaration, *, by: str) -> int:
    now = datetime.now(UTC)
    if d.discovered_at.tzinfo is None:
        raise IncidentError("the discovery time needs its offset (…+01:00)",
                            code="period.no_offset")
    if d.discovered_at > now + timedelta(minutes=5):
        raise IncidentError("the breach cannot have been found in the future",
                            code="incident.found_in_future")
    for field, label, value in (("summary", "what happened", d.summary),
                                ("data_concerned", "the data concerned", d.data_concerned),
                                ("people_concerned", "the people concerned", d.people_concerned),
                                ("measures", "the measures taken or proposed", d.measures)):
        if not value.strip():
            raise IncidentError(f"{label} is required (art. 33(3))",
                                code="incident.required", field=field)
    if d.risk == "unlikely" and not d.no_notice_reason.strip():
        raise IncidentError("a breach not notified says why it is unlikely to result in a risk "
                            "for people (art. 33(5))", code="incident.no_notice_reason")
    due = d.discovered_at + DEADLINE
    async with pool.acquire() as conn, conn.transaction():
        incident = int(await conn.fetchval(
            "INSERT INTO incidents (commune, summary, discovered_at, data_concerned, "
            "people_concerned, consequences, measures, risk, no_notice_reason, due_at, "
            "created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
            d.commune, d.summary.strip(), d.discovered_at, d.data_concerned.strip(),
            d.people_concerned.strip(), d.consequences.strip(), d.measures.strip(), d.risk,
            d.no_notice_reason.strip() or None, due, by))
        await record(conn, Entry(actor=by, action="incident.declared", commune=d.commune,
                                 reason=d.summary.strip()[:200],
                                 details={"incident": incident, "risk": d.risk,
                                          "due_at": due.isoformat(),
                                          "discovered_at": d.discovered_at.isoformat()}))
    return incident


async def notified(pool: asyncpg.Pool, incident: int, *, reference: str, at: datetime,
                   by: str, communes: tuple[str, ...]) -> str:
    """The CNIL was notified (its teleservice's reference); returns the commune."""
    if not reference.strip():
        raise IncidentError("the CNIL's reference of the notification is required",
                            code="incident.cnil_reference_required")
    if at > datetime.now(UTC) + timedelta(minutes=5):
        raise IncidentError("the notification cannot be in the future",
                            code="incident.notified_in_future")
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow("SELECT * FROM incidents WHERE id = $1 FOR UPDATE", incident)
        if row is None or row["commune"] not in communes:
            raise NotFound(f"no incident {incident} in your communes",
                           code="incident.not_found", id=incident)
        if row["notified_at"] is not None:
            raise IncidentConflict("the notification is recorded already",
                                   code="incident.already_notified")
        if at < row["discovered_at"]:
            raise IncidentError("the notification cannot precede the discovery",
                                code="incident.notified_before_found")
        await conn.execute("UPDATE incidents SET notified_at = $2, notification_ref = $3 "
                           "WHERE id = $1", incident, at, reference.strip())
        late = at > row["due_at"]
        await record(conn, Entry(actor=by, action="incident.notified", commune=row["commune"],
                                 details={"incident": incident, "reference": reference.strip(),
                                          "late": late}))
    return str(row["commune"])


LIST_SQL = """
SELECT i.*, CASE WHEN i.notified_at IS NOT NULL THEN 'notified'
                 WHEN i.risk = 'unlikely' THEN 'not_to_notify'
                 WHEN i.due_at < now() THEN 'overdue'
                 WHEN i.due_at < now() + $2::interval THEN 'due_soon'
                 ELSE 'on_time' END AS urgency
FROM incidents i WHERE i.commune = ANY($1::text[]) AND ($3::bigint IS NULL OR i.id = $3)
ORDER BY i.due_at DESC LIMIT 500
"""
NOTICE_SQL = """
UPDATE incidents i SET due_notice = n.notice
FROM (SELECT id, CASE WHEN due_at < now() THEN 'overdue' ELSE 'due_soon' END AS notice
      FROM incidents WHERE notified_at IS NULL AND risk <> 'unlikely'
        AND due_at < now() + $1::interval) n
WHERE i.id = n.id AND i.due_notice IS DISTINCT FROM n.notice
RETURNING i.id, i.commune, i.due_at, n.notice
"""


async def list_incidents(pool: asyncpg.Pool, communes: tuple[str, ...],
                         incident: int | None = None) -> list[dict[str, Any]]:
    return [dict(r) for r in await pool.fetch(LIST_SQL, list(communes), SOON, incident)]


async def newly_due(pool: asyncpg.Pool) -> list[asyncpg.Record]:
    """Incidents whose notification became due within a day, or overdue: each told once per
    stage (the caller publishes the event)."""
    return list(await pool.fetch(NOTICE_SQL, SOON))


def notification_text(row: dict[str, Any], *, commune_name: str, controller: str,
                      contact: str, time_zone: str = DEFAULT_TIME_ZONE) -> str:
    """What the CNIL's notification asks (art. 33(3)), prepared from the record, in French,
    its times in the commune's legal time."""
    def t(moment: datetime) -> str:
        return f"{legal_time.local(moment, time_zone):%d/%m/%Y à %H:%M} ({legal_time.label(time_zone)})"

    late = ""
    if datetime.now(UTC) > row["due_at"]:
        late = ("\nMotif du retard (notification au-delà de 72 heures, art. 33(1)) : "
                "… (à compléter)\n")
    return f"""Notification de violation de données à caractère personnel — CNIL
Responsable du traitement : {controller or '… (à compléter)'} (commune de {commune_name})
Contact (délégué à la protection des données) : {contact or '… (à compléter)'}
Traitement concerné : vidéoprotection de la voie publique (Vigie)

Nature de la violation : {row['summary']}
Découverte le {t(row['discovered_at'])} ; déclarée dans Vigie le {t(row['declared_at'])}.
Données concernées (catégories, nombre approximatif d'enregistrements) : {row['data_concerned']}
Personnes concernées (catégories, nombre approximatif) : {row['people_concerned']}
Conséquences probables : {row['consequences'] or '… (à compléter)'}
Mesures prises ou envisagées : {row['measures']}
Risque pour les personnes : {dict(unlikely='peu probable', risk='risque',
                                   high_risk='risque élevé')[row['risk']]}{
    " — les personnes concernées doivent aussi être informées (art. 34)"
    if row['risk'] == 'high_risk' else ''}
{late}
Échéance de notification : {t(row['due_at'])} (72 heures après la découverte).
"""
