"""A filmed person's request for their images (docs/right-of-access.md; R20, R21, R23, R24).

Intake records who asked and how their identity was checked (never a copy of the document), the
place and times they give, how to answer them; the reply is due a month after receipt, extended
by at most two more months with a reason. Opening the request places a right-of-access hold on
what it covers at once (R21), before any search, so nothing asked for is erased while it is open;
closing it releases the hold. The answer is a copy, an on-site viewing (booked, then recorded as
done), or a refusal or restriction with its grounds and the mention of the CNIL and the
departmental commission (R23). Every step is journaled.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html import escape
from typing import Any, Literal

import asyncpg

from vigie.cameras.named import named_cameras
from vigie.custody.holds import HoldError, HoldRequest, NothingLeftToHold, register_hold, release_hold
from vigie.plumbing.refusals import NotFound, Refusal
from vigie.records import legal_time
from vigie.records.audit_register import Entry, record
from vigie.records.legal_time import DEFAULT_TIME_ZONE
from vigie.records.recordings_register import RegisterLine, recordings_register

Answer = Literal["copy", "viewing", "refusal", "restriction"]
Document = Literal["carte_identite", "passeport", "titre_sejour", "permis_conduire", "autre"]
SOON = timedelta(days=7)  # « bientôt dû »: shown and evented this long before the deadline
REFERRAL = ("Vous pouvez saisir la Commission nationale de l'informatique et des libertés (CNIL, "
            "www.cnil.fr) ou la commission départementale de vidéoprotection.")


class AccessRequestError(Refusal):
    """A refused step, with the reason a person can act on."""

    domain = "access_request"


class AccessRequestConflict(AccessRequestError):
    """The record's state does not allow it now (HTTP 409)."""

    kind = "conflict"


@dataclass(frozen=True)
class Intake:
    commune: str
    requester: str
    contact: str
    identity_document: Document
    identity_checked_by: str
    cameras: list[str]
    period_start: datetime
    period_end: datetime
    description: str
    created_by: str
    received_at: datetime | None = None  # the letter's date when entered later; now by default


def add_months(moment: datetime, months: int) -> datetime:
    """The same day `months` later (the month's last day when it has fewer: 31 Jan → 28 Feb)."""
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    return moment.replace(year=year, month=month,
                          day=min(moment.day, calendar.monthrange(year, month)[1]))


def due_date(received: datetime, extra_months: int = 0) -> datetime:
    """A month after receipt, plus the extension (GDPR art. 12(3))."""
    return add_months(received, 1 + extra_months)


async def open_request(pool: asyncpg.Pool, intake: Intake) -> int:
    """Record the request and hold what it covers, in that order, journaled; returns its id.
    The hold's copies are made by the retention service (vigie.custody.holds)."""
    received = intake.received_at or datetime.now(UTC)
    if received > datetime.now(UTC) + timedelta(minutes=5):
        raise AccessRequestError("the request cannot have been received in the future",
                                 code="access_request.received_in_future")
    for field, label, value in (("requester", "the requester", intake.requester),
                                ("contact", "how to answer them", intake.contact),
                                ("identity_checked_by", "who checked the identity",
                                 intake.identity_checked_by)):
        if not value.strip():
            raise AccessRequestError(f"{label} is required",
                                     code="access_request.required", field=field)
    if intake.period_end <= intake.period_start:
        raise AccessRequestError("the period ends before it starts", code="period.ends_before_start")
    if intake.period_start > datetime.now(UTC):
        raise AccessRequestError("the period is in the future: nothing was filmed yet",
                                 code="period.in_future")
    await named_cameras(pool, intake.commune, intake.cameras, refusal=AccessRequestError)
    async with pool.acquire() as conn, conn.transaction():
        request_id = int(await conn.fetchval(
            "INSERT INTO access_requests (commune, requester, contact, identity_document, "
            "identity_checked_by, cameras, period_start, period_end, description, received_at, "
            "due_at, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) "
            "RETURNING id", intake.commune, intake.requester.strip(), intake.contact.strip(),
            intake.identity_document, intake.identity_checked_by.strip(),
            sorted(set(intake.cameras)), intake.period_start, intake.period_end,
            intake.description, received, due_date(received), intake.created_by))
        await record(conn, Entry(
            actor=intake.created_by, action="access_request.opened", commune=intake.commune,
            cameras=[f"{intake.commune}/{c}" for c in sorted(set(intake.cameras))],
            period_start=intake.period_start, period_end=intake.period_end,
            details={"request": request_id, "due_at": due_date(received).isoformat(),
                     "identity_document": intake.identity_document}))
    # The hold: what was filmed up to now (a hold cannot reach into the future, R4).
    end = min(intake.period_end, datetime.now(UTC))
    hold_id = None
    if end > intake.period_start:
        try:
            hold_id, _ = await register_hold(pool, HoldRequest.parse(dict(
                kind="right_of_access", reference=f"DA-{request_id}", commune=intake.commune,
                cameras=intake.cameras, period_start=intake.period_start, period_end=end,
                requested_by=intake.created_by, reason=f"demande d'accès n° {request_id}",
                review_on=due_date(received, 2).date())), queue_copy=True)
        except NothingLeftToHold:
            pass  # erased already: the request stands, its answer says so (R24's extract)
        except HoldError as exc:
            raise AccessRequestError.carrying(exc) from None
        if hold_id is not None:
            await pool.execute("UPDATE access_requests SET hold_id = $2 WHERE id = $1",
                               request_id, hold_id)
    return request_id


async def _locked(conn: asyncpg.Connection, request_id: int, commune_scope: tuple[str, ...],
                  ) -> asyncpg.Record:
    row = await conn.fetchrow("SELECT * FROM access_requests WHERE id = $1 FOR UPDATE",
                              request_id)
    if row is None or row["commune"] not in commune_scope:
        raise NotFound(f"no access request {request_id} in your communes",
                       code="access_request.not_found", id=request_id)
    return row


async def extend(pool: asyncpg.Pool, request_id: int, *, months: int, reason: str, by: str,
                 communes: tuple[str, ...]) -> None:
    """Up to two more months, with the reason given to the person (GDPR art. 12(3))."""
    if months not in (1, 2):
        raise AccessRequestError("an extension is one or two months (three in all at most)",
                                 code="access_request.extension_months")
    if not reason.strip():
        raise AccessRequestError("an extension needs its reason (told to the person)",
                                 code="access_request.extension_reason_required")
    async with pool.acquire() as conn, conn.transaction():
        row = await _locked(conn, request_id, communes)
        if row["state"] == "closed":
            raise AccessRequestConflict("the request is closed", code="access_request.closed")
        due = due_date(row["received_at"], months)
        if due <= row["due_at"]:
            raise AccessRequestConflict("the deadline is already that far",
                                        code="access_request.deadline_already")
        if due > due_date(row["received_at"], 2):
            raise AccessRequestConflict("an extension cannot go past three months from receipt",
                                        code="access_request.extension_past_three_months")
        await conn.execute("UPDATE access_requests SET due_at = $2, extension_reason = $3 "
                           "WHERE id = $1", request_id, due, reason.strip())
        await record(conn, Entry(actor=by, action="access_request.extended",
                                 commune=row["commune"], reason=reason.strip(),
                                 details={"request": request_id, "due_at": due.isoformat()}))


async def answer(pool: asyncpg.Pool, request_id: int, *, kind: Answer, by: str,
                 communes: tuple[str, ...], grounds: str = "",
                 viewing_at: datetime | None = None, viewing_report: str = "") -> dict[str, Any]:
    """A refusal or restriction needs its grounds (ongoing proceedings, public security, third
    parties' rights) and says the person may refer to the CNIL or the commission (R23). A viewing
    is booked (viewing_at), then recorded as done (viewing_report: who watched what)."""
    if kind in ("refusal", "restriction") and not grounds.strip():
        raise AccessRequestError("a refusal or a restriction states its grounds (R23)",
                                 code="access_request.grounds_required")
    async with pool.acquire() as conn, conn.transaction():
        row = await _locked(conn, request_id, communes)
        if row["state"] == "closed":
            raise AccessRequestConflict("the request is closed", code="access_request.closed")
        if kind == "copy" and not await conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM access_copies WHERE request_id = $1 "
                "AND state = 'approved' AND erased_at IS NULL)", request_id):
            raise AccessRequestConflict("answer with a copy once one is approved: make it, watch "
                                     "its preview, approve it (R22)",
                                     code="access_request.copy_not_approved")
        text = grounds.strip()
        if kind in ("refusal", "restriction"):
            text = f"{text} — {REFERRAL}"
        changes: dict[str, Any] = {"answer": kind, "answer_grounds": text or None,
                                   "answered_at": datetime.now(UTC), "answered_by": by,
                                   "state": "answered"}
        action = "access_request.answered"
        if kind == "viewing":
            if viewing_report.strip():
                if row["viewing_at"] is None and viewing_at is None:
                    raise AccessRequestConflict("book the viewing before recording it as done",
                                                code="access_request.viewing_not_booked")
                changes.update(viewing_done_at=datetime.now(UTC),
                               viewing_report=viewing_report.strip())
                action = "access_request.viewing_done"
            elif viewing_at is None:
                raise AccessRequestError("an on-site viewing is booked with its date and time",
                                         code="access_request.viewing_time_required")
            if viewing_at is not None:
                changes["viewing_at"] = viewing_at
        sets = ", ".join(f"{k} = ${i}" for i, k in enumerate(changes, start=2))
        await conn.execute(f"UPDATE access_requests SET {sets} WHERE id = $1", request_id,
                           *changes.values())
        await record(conn, Entry(actor=by, action=action, commune=row["commune"],
                                 cameras=[f"{row['commune']}/{c}" for c in row["cameras"]],
                                 reason=text or None,
                                 details={"request": request_id, "answer": kind}))
    return {"commune": row["commune"], "answer": kind}


async def close(pool: asyncpg.Pool, request_id: int, *, by: str,
                communes: tuple[str, ...]) -> str:
    """Closing releases the hold (its copies return to erasure); an unanswered request cannot be
    closed. Returns the commune."""
    async with pool.acquire() as conn, conn.transaction():
        row = await _locked(conn, request_id, communes)
        if row["state"] == "closed":
            raise AccessRequestConflict("the request is closed already",
                                        code="access_request.closed")
        if row["state"] != "answered":
            raise AccessRequestConflict("answer the request before closing it",
                                        code="access_request.unanswered")
        await conn.execute("UPDATE access_requests SET state = 'closed', closed_at = now(), "
                           "closed_by = $2 WHERE id = $1", request_id, by)
        await record(conn, Entry(actor=by, action="access_request.closed",
                                 commune=row["commune"], details={"request": request_id}))
    if row["hold_id"] is not None:
        held = await pool.fetchval("SELECT state <> 'released' FROM holds WHERE id = $1",
                                   row["hold_id"])
        if held:
            await release_hold(pool, hold_id=row["hold_id"],
                               released_by=by,
                               reason=f"demande d'accès n° {request_id} close")
    return str(row["commune"])


LIST_SQL = """
SELECT r.*, CASE WHEN r.state <> 'closed' AND r.due_at < now() THEN 'overdue'
                 WHEN r.state <> 'closed' AND r.due_at < now() + $2::interval THEN 'due_soon'
                 ELSE 'on_time' END AS urgency,
       (SELECT h.state FROM holds h WHERE h.id = r.hold_id) AS hold_state
FROM access_requests r WHERE r.commune = ANY($1::text[]) AND ($3::bigint IS NULL OR r.id = $3)
ORDER BY r.due_at LIMIT 500
"""


async def list_requests(pool: asyncpg.Pool, communes: tuple[str, ...],
                        request_id: int | None = None) -> list[dict[str, Any]]:
    """The communes' requests with their urgency (or the one asked for, if in them)."""
    return [dict(r) for r in await pool.fetch(LIST_SQL, list(communes), SOON, request_id)]


NOTICE_SQL = """
UPDATE access_requests r SET due_notice = n.notice
FROM (SELECT id, CASE WHEN due_at < now() THEN 'overdue' ELSE 'due_soon' END AS notice
      FROM access_requests WHERE state <> 'closed' AND due_at < now() + $1::interval) n
WHERE r.id = n.id AND r.due_notice IS DISTINCT FROM n.notice
RETURNING r.id, r.commune, r.due_at, n.notice
"""


async def newly_due(pool: asyncpg.Pool) -> list[asyncpg.Record]:
    """Requests that became due soon or overdue since last asked: each is told once per stage
    (the caller publishes the event)."""
    return list(await pool.fetch(NOTICE_SQL, SOON))


async def deletion_proof(pool: asyncpg.Pool, commune: str, cameras: list[str], start: datetime,
                         end: datetime) -> list[RegisterLine]:
    """R24: for a place and a **filmed** period (not when the journal rows were written), what
    was recorded, kept, held, transmitted and destroyed there — when and by which cause — from
    the register of recordings."""
    if end <= start:
        raise AccessRequestError("the period ends before it starts", code="period.ends_before_start")
    wanted = {f"{commune}/{c}" for c in cameras}
    return [line for line in await recordings_register(pool, [commune], start, end)
            if line.camera in wanted]


FRENCH_WHAT = {"recorded": "enregistré, conservé", "destroyed": "effacé", "held": "gelé",
               "transmitted": "transmis"}
CAUSES = {"retention": "durée de conservation écoulée", "hold_released": "gel levé",
          "orphan": "fichier sans enregistrement", "offence_handed_over": "clichés remis",
          "offence_cancelled": "infraction annulée", "offence_expired": "délai d'un mois"}


def proof_html(lines: list[RegisterLine], *, commune: str, cameras: list[str], start: datetime,
               end: datetime, made_by: str, time_zone: str = DEFAULT_TIME_ZONE) -> str:
    """The extract as a page the commune prints or sends (French, times in the commune's legal
    time)."""
    def t(moment: datetime | None) -> str:
        return f"{legal_time.local(moment, time_zone):%d/%m/%Y %H:%M:%S}" if moment else "—"

    def cause(detail: str) -> str:
        head, _, rest = detail.partition(":")
        return escape(f"{CAUSES.get(head, head)}{':' + rest if rest else ''}")

    rows = "\n".join(
        f"<tr><td>{escape(x.camera)}</td><td>{FRENCH_WHAT[x.what]}</td><td>{t(x.period_start)}"
        f"</td><td>{t(x.period_end)}</td><td>{t(x.at)}</td><td>{cause(x.detail)}</td></tr>"
        for x in lines)
    return f"""<!doctype html>
<html lang="fr"><head><meta charset="utf-8"><title>Attestation d'effacement</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;width:100%}}
td,th{{border:1px solid #999;padding:.3em .5em;text-align:left}}@media print{{button{{display:none}}}}
</style></head><body>
<h1>Extrait du registre des enregistrements — attestation d'effacement</h1>
<p>Commune : {escape(commune)}. Caméras : {escape(', '.join(cameras))}.<br>
Période filmée : du {t(start)} au {t(end)} ({legal_time.label(time_zone)}).<br>
Extrait établi le {t(datetime.now(UTC))} par {escape(made_by)}, depuis le registre des accès et
des enregistrements de Vigie (chaîné et signé).</p>
<table><thead><tr><th>Caméra</th><th>Nature</th><th>Début filmé</th><th>Fin filmée</th>
<th>Date de l'opération</th><th>Cause</th></tr></thead><tbody>
{rows or '<tr><td colspan="6">Aucun enregistrement ni effacement sur cette période.</td></tr>'}
</tbody></table>
<p>Les images effacées ne peuvent plus être communiquées : elles n'existent plus.</p>
</body></html>
"""
